"""ISA/GS/ST envelopes: generic parsing with count checks, and writing with computed counts."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rcm_x12.errors import X12BuildError, X12EnvelopeError, X12StructureError
from rcm_x12.reader import model_errors
from rcm_x12.segments import (
    ISA_WIDTHS,
    Delimiters,
    Segment,
    format_date,
    tokenize,
)

ISA_QUALIFIERS = frozenset({"01", "14", "20", "27", "28", "29", "30", "33", "ZZ"})
_TRANSACTION_CONTROL = re.compile(r"[A-Za-z0-9]{4,9}")
_ISA_ID = re.compile(r"[ -~]{1,15}")
_PARTY_ID = re.compile(r"[A-Za-z0-9][ -~]{0,13}[A-Za-z0-9]")
_APPLICATION_CODE = re.compile(r"[!-~][ -~]{0,13}[!-~]")


def naive_minutes(value: datetime) -> datetime:
    """X12 stamps are HHMM without zone; anything finer cannot survive a round trip."""
    if value.tzinfo is not None:
        raise ValueError("X12 times carry no zone: pass a naive local datetime")
    return value.replace(second=0, microsecond=0)


class Envelope(BaseModel):
    """Who sends to whom, with which control numbers: the ISA and GS of one document."""

    model_config = ConfigDict(frozen=True)

    # GS02/GS03 copy them and need 2-15 characters.
    sender_id: str = Field(pattern=rf"^{_PARTY_ID.pattern}$")
    receiver_id: str = Field(pattern=rf"^{_PARTY_ID.pattern}$")
    sender_qualifier: str = "ZZ"
    receiver_qualifier: str = "ZZ"
    # GS02/GS03; they default to the ISA ids.
    application_sender_code: str = Field(default="", pattern=rf"^{_APPLICATION_CODE.pattern}$")
    application_receiver_code: str = Field(default="", pattern=rf"^{_APPLICATION_CODE.pattern}$")
    control_number: int = Field(ge=1, le=999_999_999)
    group_control_number: int = Field(ge=1, le=999_999_999)
    created: datetime
    usage: Literal["T", "P"] = "T"
    acknowledgment_requested: bool = False
    delimiters: Delimiters = Delimiters()

    @field_validator("sender_qualifier", "receiver_qualifier")
    @classmethod
    def _known_qualifier(cls, value: str) -> str:
        if value not in ISA_QUALIFIERS:
            raise ValueError(f"ISA id qualifier must be one of {sorted(ISA_QUALIFIERS)}")
        return value

    _created = field_validator("created")(naive_minutes)

    @model_validator(mode="before")
    @classmethod
    def _default_application_codes(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            if not data.get("application_sender_code"):
                data["application_sender_code"] = data.get("sender_id", "")
            if not data.get("application_receiver_code"):
                data["application_receiver_code"] = data.get("receiver_id", "")
        return data


@dataclass(frozen=True)
class InterchangeHeader:
    sender_qualifier: str
    sender_id: str
    receiver_qualifier: str
    receiver_id: str
    date: date
    time: time
    control_number: int
    version: str
    usage: str
    acknowledgment_requested: bool
    delimiters: Delimiters


@dataclass(frozen=True)
class TransactionSet:
    transaction_id: str
    control_number: str
    implementation_reference: str | None
    header: Segment
    body: tuple[Segment, ...]
    trailer: Segment


@dataclass(frozen=True)
class FunctionalGroup:
    functional_id: str
    application_sender_code: str
    application_receiver_code: str
    date: date
    time: time
    control_number: int
    version: str
    header: Segment
    transactions: tuple[TransactionSet, ...]
    trailer: Segment


@dataclass(frozen=True)
class Interchange:
    header: InterchangeHeader
    groups: tuple[FunctionalGroup, ...]
    segments: tuple[Segment, ...]


def parse_interchange(data: str | bytes) -> Interchange:
    """Tokenise and check the envelopes: counts, control numbers, pairing of headers."""
    _, segments = tokenize(data)
    header = _read_isa(segments[0])
    reader = _EnvelopeReader(segments)
    reader.index = 1
    groups: list[FunctionalGroup] = []
    seen_groups: set[int] = set()
    while reader.peek_id() == "GS":
        group = reader.read_group()
        if group.control_number in seen_groups:
            raise group.header.error(
                X12EnvelopeError, f"group control number {group.control_number} is repeated"
            )
        seen_groups.add(group.control_number)
        groups.append(group)
    iea = reader.take("IEA", "GS or IEA")
    if not groups:
        raise iea.error(X12EnvelopeError, "the interchange holds no functional group")
    if iea.integer(1) != len(groups):
        raise iea.error(
            X12EnvelopeError, f"IEA01 says {iea.get(1)} groups, the interchange has {len(groups)}"
        )
    if iea.get(2) != segments[0].get(13):
        raise iea.error(
            X12EnvelopeError, f"IEA02 {iea.get(2)!r} does not match ISA13 {segments[0].get(13)!r}"
        )
    if reader.index < len(segments):
        extra = segments[reader.index]
        raise extra.error(X12EnvelopeError, "segment after IEA (one interchange per text)")
    return Interchange(header, tuple(groups), tuple(segments))


def _read_isa(isa: Segment) -> InterchangeHeader:
    if len(isa.elements) != 16 or any(
        len(value) != width for value, width in zip(isa.elements, ISA_WIDTHS, strict=True)
    ):
        raise isa.error(X12EnvelopeError, "ISA fields must be present with their fixed widths")
    isa.code(1, ("00", "03"))
    isa.code(3, ("00", "01"))
    isa.code(5, ISA_QUALIFIERS)
    isa.code(7, ISA_QUALIFIERS)
    isa.code(12, ("00501",))
    if not isa.get(13).isdigit():
        raise isa.error(X12EnvelopeError, f"ISA13 {isa.get(13)!r} is not a 9-digit number")
    ack = isa.code(14, ("0", "1"))
    usage = isa.code(15, ("T", "P"))
    for n in (6, 8):
        if not _PARTY_ID.fullmatch(isa.get(n).rstrip()):
            raise isa.error(
                X12EnvelopeError, f"{isa.ref(n)} must be 2-15 letters/digits (left-aligned)"
            )
    return InterchangeHeader(
        sender_qualifier=isa.get(5),
        sender_id=isa.get(6).rstrip(),
        receiver_qualifier=isa.get(7),
        receiver_id=isa.get(8).rstrip(),
        date=isa.date_from_yymmdd(9),
        time=isa.time(10),
        control_number=int(isa.get(13)),
        version=isa.get(12),
        usage=usage,
        acknowledgment_requested=ack == "1",
        delimiters=isa.delimiters,
    )


class _EnvelopeReader:
    def __init__(self, segments: list[Segment]) -> None:
        self.segments = segments
        self.index = 0

    def peek_id(self) -> str | None:
        return self.segments[self.index].id if self.index < len(self.segments) else None

    def take(self, seg_id: str, expected: str) -> Segment:
        if self.index >= len(self.segments):
            last = self.segments[-1]
            raise last.error(X12EnvelopeError, f"text ends here, {expected} expected (truncated?)")
        seg = self.segments[self.index]
        if seg.id != seg_id:
            raise seg.error(X12EnvelopeError, f"{expected} expected, found {seg.id}")
        self.index += 1
        return seg

    def read_group(self) -> FunctionalGroup:
        gs = self.take("GS", "GS")
        for n in range(1, 9):
            gs.require(n)
        if len(gs.elements) > 8:
            raise gs.error(X12EnvelopeError, "GS has more than 8 elements")
        gs.code(7, ("X",))
        for n in (2, 3):
            if not _APPLICATION_CODE.fullmatch(gs.get(n)):
                raise gs.error(X12EnvelopeError, f"{gs.ref(n)} must be 2-15 characters")
        control = gs.integer(6)
        transactions: list[TransactionSet] = []
        seen: set[str] = set()
        while self.peek_id() == "ST":
            transaction = self.read_transaction()
            if transaction.control_number in seen:
                raise transaction.header.error(
                    X12EnvelopeError,
                    f"transaction control number {transaction.control_number} is repeated",
                )
            seen.add(transaction.control_number)
            transactions.append(transaction)
        ge = self.take("GE", "ST or GE")
        if not transactions:
            raise ge.error(X12EnvelopeError, "the functional group holds no transaction set")
        if ge.integer(1) != len(transactions):
            raise ge.error(
                X12EnvelopeError,
                f"GE01 says {ge.get(1)} transaction sets, the group has {len(transactions)}",
            )
        if ge.integer(2) != control:
            raise ge.error(
                X12EnvelopeError, f"GE02 {ge.get(2)!r} does not match GS06 {gs.get(6)!r}"
            )
        return FunctionalGroup(
            functional_id=gs.get(1),
            application_sender_code=gs.get(2),
            application_receiver_code=gs.get(3),
            date=gs.date(4),
            time=gs.time(5),
            control_number=control,
            version=gs.get(8),
            header=gs,
            transactions=tuple(transactions),
            trailer=ge,
        )

    def read_transaction(self) -> TransactionSet:
        st = self.take("ST", "ST")
        st.require(1)
        control = st.require(2)
        if not _TRANSACTION_CONTROL.fullmatch(control):
            raise st.error(X12EnvelopeError, f"ST02 {control!r} must be 4-9 letters or digits")
        start = self.index
        while self.peek_id() not in ("SE", None, "ST", "GE", "GS", "IEA", "ISA"):
            self.index += 1
        body = tuple(self.segments[start : self.index])
        se = self.take("SE", f"SE closing ST {control}")
        if se.integer(1) != len(body) + 2:
            raise se.error(
                X12EnvelopeError,
                f"SE01 says {se.get(1)} segments, transaction {control} has {len(body) + 2}",
            )
        if se.get(2) != control:
            raise se.error(X12EnvelopeError, f"SE02 {se.get(2)!r} does not match ST02 {control!r}")
        return TransactionSet(
            transaction_id=st.get(1),
            control_number=control,
            implementation_reference=st.optional(3),
            header=st,
            body=body,
            trailer=se,
        )


def typed_transactions(
    interchange: Interchange, functional_id: str, version: str, transaction_id: str
) -> list[TransactionSet]:
    """Every transaction of the interchange, which must all be of one kind."""
    found: list[TransactionSet] = []
    for group in interchange.groups:
        if group.functional_id != functional_id or group.version != version:
            raise group.header.error(
                X12StructureError,
                f"group is {group.functional_id}/{group.version}, "
                f"expected {functional_id}/{version}",
            )
        for transaction in group.transactions:
            if transaction.transaction_id != transaction_id:
                raise transaction.header.error(
                    X12StructureError,
                    f"transaction set is {transaction.transaction_id}, expected {transaction_id}",
                )
            found.append(transaction)
    return found


def envelope_of(interchange: Interchange) -> Envelope:
    """The `Envelope` a typed document was written with (first group for GS values)."""
    header = interchange.header
    group = interchange.groups[0]
    with model_errors(interchange.segments[0]):
        return Envelope(
            sender_id=header.sender_id,
            receiver_id=header.receiver_id,
            sender_qualifier=header.sender_qualifier,
            receiver_qualifier=header.receiver_qualifier,
            application_sender_code=group.application_sender_code,
            application_receiver_code=group.application_receiver_code,
            control_number=header.control_number,
            group_control_number=group.control_number,
            created=datetime.combine(group.date, group.time),
            usage="P" if header.usage == "P" else "T",
            acknowledgment_requested=header.acknowledgment_requested,
            delimiters=header.delimiters,
        )


# --- writing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Repeated:
    """An element whose values are joined with the repetition separator (e.g. 271 EB03)."""

    values: tuple[str, ...]


OutElement = str | None | tuple[str | None, ...] | Repeated


@dataclass(frozen=True)
class OutSegment:
    id: str
    elements: tuple[OutElement, ...]


def seg(seg_id: str, *elements: OutElement) -> OutSegment:
    """A segment to write: str elements, None for empty, tuples for composites."""
    return OutSegment(seg_id, elements)


@dataclass(frozen=True)
class OutTransaction:
    transaction_id: str
    control_number: str
    implementation_reference: str | None
    segments: Sequence[OutSegment]


@dataclass(frozen=True)
class OutGroup:
    functional_id: str
    version: str
    transactions: Sequence[OutTransaction]


def write_interchange(
    envelope: Envelope, groups: Sequence[OutGroup], *, newline: bool = True
) -> str:
    """Serialise with computed SE01/GE01/IEA01 and a fixed-width ISA.

    Groups are numbered from `envelope.group_control_number` upwards.
    """
    if not groups:
        raise X12BuildError("an interchange needs at least one functional group")
    writer = _Writer(envelope.delimiters, newline)
    writer.write_isa(envelope)
    for offset, group in enumerate(groups):
        if not group.transactions:
            raise X12BuildError(f"functional group {group.functional_id} has no transaction set")
        control = str(envelope.group_control_number + offset)
        stamp = envelope.created
        writer.write(
            seg(
                "GS",
                group.functional_id,
                envelope.application_sender_code,
                envelope.application_receiver_code,
                format_date(stamp.date()),
                stamp.strftime("%H%M"),
                control,
                "X",
                group.version,
            )
        )
        for transaction in group.transactions:
            if not _TRANSACTION_CONTROL.fullmatch(transaction.control_number):
                raise X12BuildError(
                    f"ST02 {transaction.control_number!r} must be 4-9 letters or digits"
                )
            st = seg(
                "ST",
                transaction.transaction_id,
                transaction.control_number,
                transaction.implementation_reference,
            )
            writer.write(st)
            for segment in transaction.segments:
                writer.write(segment)
            count = len(transaction.segments) + 2
            writer.write(seg("SE", str(count), transaction.control_number))
        writer.write(seg("GE", str(len(group.transactions)), control))
    writer.write(seg("IEA", str(len(groups)), f"{envelope.control_number:09d}"))
    return "".join(writer.parts)


class _Writer:
    def __init__(self, delimiters: Delimiters, newline: bool) -> None:
        self.d = delimiters
        self.end = delimiters.segment + ("\n" if newline else "")
        self.parts: list[str] = []
        self.reserved = {delimiters.element, delimiters.component, delimiters.repetition}
        self.reserved.add(delimiters.segment)
        self.count = 0

    def write_isa(self, envelope: Envelope) -> None:
        for value in (envelope.sender_id, envelope.receiver_id):
            if not _ISA_ID.fullmatch(value):
                raise X12BuildError(f"ISA id {value!r} must be 1-15 printable characters")
        fields = (
            "00",
            " " * 10,
            "00",
            " " * 10,
            envelope.sender_qualifier,
            envelope.sender_id.ljust(15),
            envelope.receiver_qualifier,
            envelope.receiver_id.ljust(15),
            envelope.created.strftime("%y%m%d"),
            envelope.created.strftime("%H%M"),
            self.d.repetition,
            "00501",
            f"{envelope.control_number:09d}",
            "1" if envelope.acknowledgment_requested else "0",
            envelope.usage,
            self.d.component,
        )
        for number, value in enumerate(fields[:10] + fields[11:15], start=1):
            self._check("ISA", number, value)
        self.count += 1
        self.parts.append("ISA" + "".join(self.d.element + f for f in fields) + self.end)

    def write(self, segment: OutSegment) -> None:
        self.count += 1
        rendered = [self._element(segment.id, n, e) for n, e in enumerate(segment.elements, 1)]
        while rendered and not rendered[-1]:
            rendered.pop()
        self.parts.append(self.d.element.join([segment.id, *rendered]) + self.end)

    def _element(self, seg_id: str, number: int, element: OutElement) -> str:
        if element is None:
            return ""
        if isinstance(element, str):
            return self._check(seg_id, number, element)
        if isinstance(element, Repeated):
            return self.d.repetition.join(self._check(seg_id, number, v) for v in element.values)
        parts = [self._check(seg_id, number, v or "") for v in element]
        while parts and not parts[-1]:
            parts.pop()
        return self.d.component.join(parts)

    def _check(self, seg_id: str, number: int, value: str) -> str:
        bad = [c for c in value if c in self.reserved or not (" " <= c <= "~")]
        if bad:
            raise X12BuildError(
                f"{seg_id}{number:02d} value {value!r} contains {bad[0]!r}, "
                "a delimiter or a character X12 cannot carry",
                segment_id=seg_id,
                position=self.count,
            )
        return value

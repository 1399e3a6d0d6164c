"""277CA Claim Acknowledgment (005010X214): models, build and parse.

Per claim the payer says accepted into adjudication (STC category A1/A2...) or rejected
(A3/A6/A7/A8...) with a status code giving the reason.
"""

from __future__ import annotations

from datetime import date, datetime
from itertools import groupby
from typing import Annotated

from pydantic import Field, StringConstraints, field_validator, model_validator

from rcm_x12.common import (
    ControlNumber,
    IdCode,
    Identifier,
    Name35,
    Name60,
    Npi,
    X12Model,
    unique_control_numbers,
)
from rcm_x12.envelope import (
    Envelope,
    OutGroup,
    OutSegment,
    OutTransaction,
    TransactionSet,
    envelope_of,
    naive_minutes,
    parse_interchange,
    seg,
    typed_transactions,
    write_interchange,
)
from rcm_x12.errors import X12StructureError, X12ValueError
from rcm_x12.money import cents_to_x12
from rcm_x12.reader import Block, Cursor, model_errors, slot
from rcm_x12.segments import Segment, format_date

VERSION = "005010X214"
# Categories that mean "in the payer's adjudication system"; the rest are rejections.
ACCEPTED_CATEGORIES = frozenset({"A0", "A1", "A2", "A5"})


class StatusCode(X12Model):
    """An STC composite: category (A1, A3, A7...), status code (reason) and entity."""

    category: Annotated[str, StringConstraints(pattern=r"^[A-Z][0-9A-Z]{1,2}$")]
    code: Annotated[str, StringConstraints(pattern=r"^[0-9A-Z]{1,5}$")]
    entity: Annotated[str, StringConstraints(pattern=r"^[0-9A-Z]{2,3}$")] | None = None


class ClaimAcknowledgmentEntry(X12Model):
    """Loop 2000D/2200D: the verdict on one claim."""

    patient_control_number: Identifier = Field(max_length=50)
    patient_last_name: Name60
    patient_first_name: Name35 | None = None
    patient_member_id: IdCode
    billing_provider_name: Name60
    billing_provider_npi: Npi
    status: StatusCode
    additional_statuses: list[StatusCode] = Field(default_factory=list)
    effective_date: date
    total_charge_cents: int
    payer_claim_control_number: Identifier | None = Field(default=None, max_length=50)
    service_date: date
    service_date_end: date | None = None
    message: Annotated[str, StringConstraints(pattern=r"^[!-~](?:[ -~]*[!-~])?$")] | None = Field(
        default=None, max_length=264
    )

    @property
    def accepted(self) -> bool:
        return self.status.category in ACCEPTED_CATEGORIES

    @model_validator(mode="after")
    def _additional_agree(self) -> ClaimAcknowledgmentEntry:
        for extra in self.additional_statuses:
            if (extra.category in ACCEPTED_CATEGORIES) != self.accepted:
                raise ValueError("additional statuses must agree with accept/reject of status")
        return self


class ClaimAcknowledgment(X12Model):
    """One 277CA transaction set."""

    control_number: ControlNumber
    reference_id: Identifier = Field(max_length=50)  # BHT03
    created: datetime
    payer_name: Name60
    payer_id: IdCode
    receiver_name: Name60  # the submitter of the claims (NM1*41)
    receiver_id: IdCode
    source_trace: Identifier = Field(max_length=50)  # 2200A TRN*1
    receipt_date: date
    process_date: date
    batch_trace: Identifier = Field(max_length=50)  # 2200B TRN*2, the 837 batch
    claims: list[ClaimAcknowledgmentEntry] = Field(min_length=1)

    _created = field_validator("created")(naive_minutes)


class ClaimAcknowledgmentDocument(X12Model):
    envelope: Envelope
    transactions: list[ClaimAcknowledgment] = Field(min_length=1)

    _unique = field_validator("transactions")(unique_control_numbers)


def build_277ca(document: ClaimAcknowledgmentDocument, *, newline: bool = True) -> str:
    transactions = [
        OutTransaction("277", a.control_number, VERSION, _segments(a))
        for a in document.transactions
    ]
    return write_interchange(
        document.envelope, [OutGroup("HN", VERSION, transactions)], newline=newline
    )


def _composite(status: StatusCode) -> tuple[str | None, ...]:
    return (status.category, status.code, status.entity)


def _totals(claims: list[ClaimAcknowledgmentEntry], quantity: tuple[str, str]) -> list[OutSegment]:
    accepted = [c for c in claims if c.accepted]
    rejected = [c for c in claims if not c.accepted]
    out: list[OutSegment] = []
    for qualifier, group in zip(quantity, (accepted, rejected), strict=True):
        if group:
            out.append(seg("QTY", qualifier, str(len(group))))
    for qualifier, group in (("YU", accepted), ("YY", rejected)):
        if group:
            out.append(
                seg("AMT", qualifier, cents_to_x12(sum(c.total_charge_cents for c in group)))
            )
    return out


def _segments(ack: ClaimAcknowledgment) -> list[OutSegment]:
    total = cents_to_x12(sum(c.total_charge_cents for c in ack.claims))
    out = [
        seg(
            "BHT",
            "0085",
            "08",
            ack.reference_id,
            format_date(ack.created.date()),
            ack.created.strftime("%H%M"),
            "TH",
        ),
        seg("HL", "1", None, "20", "1"),
        seg("NM1", "PR", "2", ack.payer_name, None, None, None, None, "PI", ack.payer_id),
        seg("TRN", "1", ack.source_trace),
        seg("DTP", "050", "D8", format_date(ack.receipt_date)),
        seg("DTP", "009", "D8", format_date(ack.process_date)),
        seg("HL", "2", "1", "21", "1"),
        seg("NM1", "41", "2", ack.receiver_name, None, None, None, None, "46", ack.receiver_id),
        seg("TRN", "2", ack.batch_trace),
        seg("STC", ("A1", "19", "PR"), format_date(ack.process_date), "WQ", total),
        *_totals(ack.claims, ("90", "AA")),
    ]
    hl = 2
    for (name, npi), claims_iter in groupby(
        ack.claims, key=lambda c: (c.billing_provider_name, c.billing_provider_npi)
    ):
        claims = list(claims_iter)
        hl += 1
        provider_hl = hl
        provider_total = cents_to_x12(sum(c.total_charge_cents for c in claims))
        out += [
            seg("HL", str(provider_hl), "2", "19", "1"),
            seg("NM1", "85", "2", name, None, None, None, None, "XX", npi),
            seg("TRN", "1", "0"),
            seg("STC", ("A1", "19", "PR"), None, "WQ", provider_total),
            *_totals(claims, ("QA", "QC")),
        ]
        for claim in claims:
            hl += 1
            out += _claim_segments(hl, provider_hl, claim)
    return out


def _claim_segments(hl: int, parent: int, c: ClaimAcknowledgmentEntry) -> list[OutSegment]:
    out = [
        seg("HL", str(hl), str(parent), "PT"),
        seg(
            "NM1",
            "QC",
            "1",
            c.patient_last_name,
            c.patient_first_name,
            None,
            None,
            None,
            "MI",
            c.patient_member_id,
        ),
        seg("TRN", "2", c.patient_control_number),
    ]
    statuses = [c.status, *c.additional_statuses]
    action = "WQ" if c.accepted else "U"
    for start in range(0, len(statuses), 3):
        chunk: list[tuple[str | None, ...] | None] = [None, None, None]
        for i, status in enumerate(statuses[start : start + 3]):
            chunk[i] = _composite(status)
        message = c.message if start == 0 else None
        out.append(
            seg(
                "STC",
                chunk[0],
                format_date(c.effective_date),
                action,
                cents_to_x12(c.total_charge_cents),
                None,
                None,
                None,
                None,
                None,
                chunk[1],
                chunk[2],
                message,
            )
        )
    if c.payer_claim_control_number is not None:
        out.append(seg("REF", "1K", c.payer_claim_control_number))
    if c.service_date_end is None:
        out.append(seg("DTP", "472", "D8", format_date(c.service_date)))
    else:
        period = f"{format_date(c.service_date)}-{format_date(c.service_date_end)}"
        out.append(seg("DTP", "472", "RD8", period))
    return out


# --- parsing ----------------------------------------------------------------------------

_SOURCE = [
    slot("HL", "hl", required=True),
    slot("NM1", "nm1", "PR", "AY", required=True),
    slot("TRN", "trn", "1", required=True),
    slot("DTP", "received", "050", required=True),
    slot("DTP", "processed", "009", required=True),
]
_TOTALS = [
    slot("QTY", "accepted_qty", "90", "QA"),
    slot("QTY", "rejected_qty", "AA", "QC"),
    slot("AMT", "accepted_amt", "YU"),
    slot("AMT", "rejected_amt", "YY"),
]
_RECEIVER = [
    slot("HL", "hl", required=True),
    slot("NM1", "nm1", "41", required=True),
    slot("TRN", "trn", "2", required=True),
    slot("STC", "stc", required=True, max_use=999),
    *_TOTALS,
]
_PROVIDER = [
    slot("HL", "hl", required=True),
    slot("NM1", "nm1", "85", required=True),
    slot("TRN", "trn", "1", required=True),
    slot("STC", "stc", required=True, max_use=999),
    slot("REF", None, "0B", "1G", "G2", "LU", "SY", "TJ"),
    *_TOTALS,
]
_PATIENT = [slot("HL", "hl", required=True), slot("NM1", "nm1", "QC", required=True)]
_CLAIM = [
    slot("TRN", "trn", "2", required=True),
    slot("STC", "stc", required=True, max_use=999),
    slot("REF", "1k", "1K"),
    slot("REF", None, "D9"),
    slot("REF", None, "BLT"),
    slot("DTP", "date", "472", required=True),
]
_SERVICE_LINE = [
    slot("SVC", None, required=True),
    slot("STC", None, required=True),
    slot("REF", None, "FJ"),
    slot("REF", None, "XZ"),
    slot("DTP", None, "472"),
]


def parse_277ca(data: str | bytes) -> ClaimAcknowledgmentDocument:
    interchange = parse_interchange(data)
    acks = [_parse(t) for t in typed_transactions(interchange, "HN", VERSION, "277")]
    return ClaimAcknowledgmentDocument(envelope=envelope_of(interchange), transactions=acks)


class _Levels:
    def __init__(self) -> None:
        self.count = 0

    def check(self, hl: Segment, level: str, parent: int | None) -> int:
        self.count += 1
        if hl.integer(1) != self.count:
            raise hl.error(X12StructureError, f"HL01 should be {self.count}")
        if hl.get(2) != ("" if parent is None else str(parent)):
            raise hl.error(X12StructureError, f"HL02 should be {parent or 'empty'}")
        if hl.get(3) != level:
            raise hl.error(X12StructureError, f"HL03 should be {level}")
        return self.count


def _parse(transaction: TransactionSet) -> ClaimAcknowledgment:
    cursor = Cursor(transaction.body, transaction.trailer)
    bht = cursor.block("header", [slot("BHT", "bht", "0085", required=True)]).one("bht")
    bht.code(2, ("08",))
    bht.code(6, ("TH",))
    levels = _Levels()
    source = cursor.block("2000A", _SOURCE)
    levels.check(source.one("hl"), "20", None)
    receiver = cursor.block("2000B", _RECEIVER)
    receiver_hl = levels.check(receiver.one("hl"), "21", 1)
    claims: list[ClaimAcknowledgmentEntry] = []
    while cursor.at("HL"):
        provider = cursor.block("2000C", _PROVIDER)
        provider_hl = levels.check(provider.one("hl"), "19", receiver_hl)
        provider_nm1 = provider.one("nm1")
        provider_nm1.code(8, ("XX",))
        provider_claims: list[ClaimAcknowledgmentEntry] = []
        if not (cursor.at("HL") and (cursor.peek() or provider_nm1).get(3) == "PT"):
            raise cursor.unexpected("where a patient HL (PT) must start")
        while cursor.at("HL") and (cursor.peek() or provider_nm1).get(3) == "PT":
            patient = cursor.block("2000D", _PATIENT)
            levels.check(patient.one("hl"), "PT", provider_hl)
            if not cursor.at("TRN"):
                raise cursor.unexpected("where the claim TRN*2 must start")
            while cursor.at("TRN"):
                provider_claims.append(_parse_claim(cursor, patient.one("nm1"), provider_nm1))
        _check_totals(provider, provider_claims)
        claims += provider_claims
    cursor.expect_end("in the 277CA")
    if not claims:
        raise transaction.trailer.error(X12StructureError, "the 277CA acknowledges no claim")
    _check_totals(receiver, claims)
    payer = source.one("nm1")
    payer.code(8, ("PI",))
    receiver_nm1 = receiver.one("nm1")
    receiver_nm1.code(8, ("46",))
    for dtp in (source.one("received"), source.one("processed")):
        dtp.code(2, ("D8",))
    with model_errors(bht):
        return ClaimAcknowledgment(
            control_number=transaction.control_number,
            reference_id=bht.require(3),
            created=datetime.combine(bht.date(4), bht.time(5)),
            payer_name=payer.require(3),
            payer_id=payer.require(9),
            receiver_name=receiver_nm1.require(3),
            receiver_id=receiver_nm1.require(9),
            source_trace=source.one("trn").require(2),
            receipt_date=source.one("received").date(3),
            process_date=source.one("processed").date(3),
            batch_trace=receiver.one("trn").require(2),
            claims=claims,
        )


def _check_totals(block: Block, claims: list[ClaimAcknowledgmentEntry]) -> None:
    stc = block.one("stc")
    total = sum(c.total_charge_cents for c in claims)
    if stc.money(4) != total:
        raise stc.error(X12ValueError, f"STC04 should be the claims' total, {total} cents")
    accepted = [c for c in claims if c.accepted]
    rejected = [c for c in claims if not c.accepted]
    for key, group in (("accepted_qty", accepted), ("rejected_qty", rejected)):
        segment = block.opt(key)
        if segment is not None and segment.integer(2) != len(group):
            raise segment.error(X12ValueError, f"QTY02 should be {len(group)}")
    for key, group in (("accepted_amt", accepted), ("rejected_amt", rejected)):
        segment = block.opt(key)
        expected = sum(c.total_charge_cents for c in group)
        if segment is not None and segment.money(2) != expected:
            raise segment.error(X12ValueError, f"AMT02 should be {expected} cents")


def _statuses(stc: Segment) -> list[StatusCode]:
    found: list[StatusCode] = []
    for n in (1, 10, 11):
        parts = stc.components(n)
        if not parts:
            if n == 1:
                raise stc.error(X12StructureError, "STC01 is required")
            continue
        if len(parts) > 4 or len(parts) < 2:
            raise stc.error(X12ValueError, f"{stc.ref(n)} must be category:code[:entity]")
        entity = parts[2] if len(parts) > 2 and parts[2] else None
        with model_errors(stc):
            found.append(StatusCode(category=parts[0], code=parts[1], entity=entity))
    return found


def _parse_claim(cursor: Cursor, patient: Segment, provider: Segment) -> ClaimAcknowledgmentEntry:
    block = cursor.block("2200D", _CLAIM)
    while cursor.at("SVC"):
        cursor.block("2220D", _SERVICE_LINE)
    stcs = block.all("stc")
    statuses = [s for stc in stcs for s in _statuses(stc)]
    first = stcs[0]
    accepted = statuses[0].category in ACCEPTED_CATEGORIES
    for stc in stcs:
        stc.code(3, ("WQ",) if accepted else ("U",))
    patient.code(8, ("II", "MI"))
    dtp = block.one("date")
    start, end = dtp.period(2)
    one_k = block.opt("1k")
    with model_errors(first):
        return ClaimAcknowledgmentEntry(
            patient_control_number=block.one("trn").require(2),
            patient_last_name=patient.require(3),
            patient_first_name=patient.optional(4),
            patient_member_id=patient.require(9),
            billing_provider_name=provider.require(3),
            billing_provider_npi=provider.require(9),
            status=statuses[0],
            additional_statuses=statuses[1:],
            effective_date=first.date(2),
            total_charge_cents=first.money(4),
            payer_claim_control_number=one_k.require(2) if one_k else None,
            service_date=start,
            service_date_end=end,
            message=first.optional(12),
        )

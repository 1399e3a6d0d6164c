"""270/271 Eligibility Inquiry and Response (005010X279A1): models, build and parse.

One patient per transaction set (several inquiries travel as several ST/SE): the
subscriber (2000C), or a dependent (2000D) under the subscriber whose member id covers
them. pyx12 has no 5010 map for these, so they are checked by this parser alone.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import Field, field_validator, model_validator

from rcm_x12.common import (
    Code,
    CompanyId,
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
    Repeated,
    TransactionSet,
    envelope_of,
    naive_minutes,
    parse_interchange,
    seg,
    typed_transactions,
    write_interchange,
)
from rcm_x12.errors import X12StructureError, X12ValueError
from rcm_x12.money import cents_to_x12, decimal_to_x12
from rcm_x12.reader import Block, Cursor, Slot, model_errors, slot
from rcm_x12.segments import Segment, format_date

VERSION = "005010X279A1"
HEALTH_BENEFIT_PLAN_COVERAGE = "30"


class EligibilityProvider(X12Model):
    """Loop 2100B (NM1*1P): the provider asking."""

    entity_type: Literal["1", "2"] = "2"
    last_name: Name60  # the organisation name when entity_type is 2
    first_name: Name35 | None = None
    npi: Npi


Gender = Literal["F", "M", "U"]
# INS02 of loop 2100D: spouse, child, other adult, other relationship.
DependentRelationship = Literal["01", "19", "34", "G8"]


class _Demographics(X12Model):
    last_name: Name60
    first_name: Name35 | None = None
    birth_date: date | None = None
    gender: Gender | None = None

    @model_validator(mode="after")
    def _gender_needs_birth_date(self) -> _Demographics:
        if self.gender is not None and self.birth_date is None:
            raise ValueError("DMG carries gender only with the birth date")
        return self


class EligibilitySubscriber(_Demographics):
    """Loop 2100C: the member id's holder."""

    member_id: IdCode


class EligibilityDependent(_Demographics):
    """Loop 2100D: the patient when not the subscriber (NM1*03 has no id of its own; the
    payer finds them under the subscriber's member id)."""

    relationship: DependentRelationship | None = None  # INS*N*<relationship>


class _Eligibility(X12Model):
    control_number: ControlNumber
    reference_id: Identifier = Field(max_length=50)  # BHT03
    created: datetime
    payer_name: Name60
    payer_id: IdCode
    provider: EligibilityProvider
    subscriber: EligibilitySubscriber
    dependent: EligibilityDependent | None = None  # the patient, when not the subscriber
    trace_number: Identifier = Field(max_length=50)  # TRN02, echoed by the 271
    trace_originator: CompanyId  # TRN03

    _created = field_validator("created")(naive_minutes)


class EligibilityInquiry(_Eligibility):
    """One 270 transaction set."""

    service_date: date
    service_types: list[Code] = Field(
        default_factory=lambda: [HEALTH_BENEFIT_PLAN_COVERAGE], min_length=1, max_length=99
    )


class Coverage(X12Model):
    """The 271's answer for service type 30, individual level, in network."""

    active: bool  # EB*1 vs EB*6
    plan_name: Name60 | None = None
    insurance_type: Code | None = None
    copay_cents: int | None = Field(default=None, ge=0)  # EB*B
    deductible_cents: int | None = Field(default=None, ge=0)  # EB*C, period 23
    deductible_remaining_cents: int | None = Field(default=None, ge=0)  # EB*C, period 29
    coinsurance_percent: Decimal | None = Field(default=None, ge=0, le=100, decimal_places=2)
    out_of_pocket_cents: int | None = Field(default=None, ge=0)  # EB*G, period 23
    out_of_pocket_remaining_cents: int | None = Field(default=None, ge=0)  # EB*G, period 29


class Rejection(X12Model):
    """AAA: the request could not be answered (e.g. reason 75, subscriber not found)."""

    level: Literal["payer", "provider", "subscriber", "dependent"] = "subscriber"
    valid_request: bool = False
    reason: Code
    follow_up: Literal["C", "N", "P", "R", "S", "W", "X", "Y"] = "C"


class EligibilityResponse(_Eligibility):
    """One 271 transaction set: either coverage or a rejection."""

    coverage: Coverage | None = None
    rejection: Rejection | None = None

    @model_validator(mode="after")
    def _one_outcome(self) -> EligibilityResponse:
        if (self.coverage is None) == (self.rejection is None):
            raise ValueError("a 271 answers with coverage or with a rejection (AAA), not both")
        rejected_level = None if self.rejection is None else self.rejection.level
        if rejected_level == "dependent" and self.dependent is None:
            raise ValueError("a rejection at the dependent level needs the dependent")
        return self

    @property
    def found(self) -> bool:
        return self.rejection is None


class EligibilityInquiryDocument(X12Model):
    envelope: Envelope
    transactions: list[EligibilityInquiry] = Field(min_length=1)

    _unique = field_validator("transactions")(unique_control_numbers)


class EligibilityResponseDocument(X12Model):
    envelope: Envelope
    transactions: list[EligibilityResponse] = Field(min_length=1)

    _unique = field_validator("transactions")(unique_control_numbers)


def build_270(document: EligibilityInquiryDocument, *, newline: bool = True) -> str:
    transactions = [
        OutTransaction("270", t.control_number, VERSION, _inquiry_segments(t))
        for t in document.transactions
    ]
    return write_interchange(
        document.envelope, [OutGroup("HS", VERSION, transactions)], newline=newline
    )


def build_271(document: EligibilityResponseDocument, *, newline: bool = True) -> str:
    transactions = [
        OutTransaction("271", t.control_number, VERSION, _response_segments(t))
        for t in document.transactions
    ]
    return write_interchange(
        document.envelope, [OutGroup("HB", VERSION, transactions)], newline=newline
    )


def _aaa(rejection: Rejection) -> OutSegment:
    valid = "Y" if rejection.valid_request else "N"
    return seg("AAA", valid, None, rejection.reason, rejection.follow_up)


def _common_segments(
    t: _Eligibility, purpose: str, trace_type: str, rejection: Rejection | None
) -> list[OutSegment]:
    p, s, d = t.provider, t.subscriber, t.dependent

    def rejected_at(level: str) -> list[OutSegment]:
        return [_aaa(rejection)] if rejection is not None and rejection.level == level else []

    out = [
        seg(
            "BHT",
            "0022",
            purpose,
            t.reference_id,
            format_date(t.created.date()),
            t.created.strftime("%H%M"),
        ),
        seg("HL", "1", None, "20", "1"),
        seg("NM1", "PR", "2", t.payer_name, None, None, None, None, "PI", t.payer_id),
        *rejected_at("payer"),
        seg("HL", "2", "1", "21", "1"),
        seg("NM1", "1P", p.entity_type, p.last_name, p.first_name, None, None, None, "XX", p.npi),
        *rejected_at("provider"),
        seg("HL", "3", "2", "22", "0" if d is None else "1"),
    ]
    trace = seg("TRN", trace_type, t.trace_number, t.trace_originator)
    # The trace, the date and the benefits belong to the patient's level.
    if d is None:
        out.append(trace)
    out.append(
        seg("NM1", "IL", "1", s.last_name, s.first_name, None, None, None, "MI", s.member_id)
    )
    out += rejected_at("subscriber")
    if s.birth_date is not None:
        out.append(seg("DMG", "D8", format_date(s.birth_date), s.gender))
    if d is None:
        return out
    out += [
        seg("HL", "4", "3", "23", "0"),
        trace,
        seg("NM1", "03", "1", d.last_name, d.first_name),
        *rejected_at("dependent"),
    ]
    if d.birth_date is not None:
        out.append(seg("DMG", "D8", format_date(d.birth_date), d.gender))
    if d.relationship is not None:
        out.append(seg("INS", "N", d.relationship))
    return out


def _inquiry_segments(t: EligibilityInquiry) -> list[OutSegment]:
    return [
        *_common_segments(t, "13", "1", None),
        seg("DTP", "291", "D8", format_date(t.service_date)),
        seg("EQ", Repeated(tuple(t.service_types))),
    ]


def _response_segments(t: EligibilityResponse) -> list[OutSegment]:
    out = _common_segments(t, "11", "2", t.rejection)
    c = t.coverage
    if c is None:
        return out

    def benefit(
        code: str,
        *,
        period: str | None = None,
        cents: int | None = None,
        percent: Decimal | None = None,
    ) -> OutSegment:
        amount = None if cents is None else cents_to_x12(cents)
        rate = None if percent is None else decimal_to_x12(percent / 100)
        return seg(
            "EB", code, "IND", HEALTH_BENEFIT_PLAN_COVERAGE, None, None, period, amount, rate
        )

    out.append(
        seg(
            "EB",
            "1" if c.active else "6",
            "IND",
            HEALTH_BENEFIT_PLAN_COVERAGE,
            c.insurance_type,
            c.plan_name,
        )
    )
    if c.copay_cents is not None:
        out.append(benefit("B", cents=c.copay_cents))
    for code, period, cents in (
        ("C", "23", c.deductible_cents),
        ("C", "29", c.deductible_remaining_cents),
        ("G", "23", c.out_of_pocket_cents),
        ("G", "29", c.out_of_pocket_remaining_cents),
    ):
        if cents is not None:
            out.append(benefit(code, period=period, cents=cents))
    if c.coinsurance_percent is not None:
        out.append(benefit("A", percent=c.coinsurance_percent))
    return out


# --- parsing ----------------------------------------------------------------------------


def _level(nm1: str, *extra: Slot) -> list[Slot]:
    return [
        slot("HL", "hl", required=True),
        slot("TRN", "trn", max_use=3),
        slot("NM1", "nm1", nm1, required=True),
        slot("REF", None, max_use=9),
        slot("N3", None),
        slot("N4", None),
        slot("AAA", "aaa", max_use=9),
        slot("PRV", None),
        *extra,
    ]


_SOURCE = _level("PR", slot("PER", None, max_use=3))
_RECEIVER = _level("1P")
_SUBSCRIBER = _level(
    "IL",
    slot("DMG", "dmg", "D8"),
    slot("INS", None),
    slot("HI", None),
    slot("DTP", "dtp", max_use=9),
    slot("MPI", None),
    slot("EQ", "eq", max_use=99),
)
_DEPENDENT = _level(
    "03",
    slot("DMG", "dmg", "D8"),
    slot("INS", "ins"),
    slot("HI", None),
    slot("DTP", "dtp", max_use=9),
    slot("MPI", None),
    slot("EQ", "eq", max_use=99),
)
_BENEFIT = [
    slot("EB", "eb", required=True),
    slot("HSD", None, max_use=9),
    slot("REF", None, max_use=9),
    slot("DTP", None, max_use=20),
    slot("AAA", None, max_use=9),
    slot("MSG", None, max_use=10),
]


def parse_270(data: str | bytes) -> EligibilityInquiryDocument:
    interchange = parse_interchange(data)
    inquiries = [_parse_inquiry(t) for t in typed_transactions(interchange, "HS", VERSION, "270")]
    return EligibilityInquiryDocument(envelope=envelope_of(interchange), transactions=inquiries)


def parse_271(data: str | bytes) -> EligibilityResponseDocument:
    interchange = parse_interchange(data)
    responses = [_parse_response(t) for t in typed_transactions(interchange, "HB", VERSION, "271")]
    return EligibilityResponseDocument(envelope=envelope_of(interchange), transactions=responses)


class _Parsed:
    """The hierarchical levels every 270 and 271 share: source, receiver, subscriber and,
    when the patient is not the subscriber, the dependent."""

    def __init__(self, transaction: TransactionSet, purpose: str, trace_type: str) -> None:
        if transaction.implementation_reference not in (None, VERSION):
            raise transaction.header.error(X12ValueError, f"ST03 must be {VERSION}")
        self.cursor = Cursor(transaction.body, transaction.trailer)
        self.bht = self.cursor.block("header", [slot("BHT", "bht", "0022", required=True)]).one(
            "bht"
        )
        self.bht.code(2, (purpose,))
        self.source = self._level("2000A", _SOURCE, "1", "", "20", ("1",))
        self.receiver = self._level("2000B", _RECEIVER, "2", "1", "21", ("1",))
        self.subscriber = self._level("2000C", _SUBSCRIBER, "3", "2", "22", ("0", "1"))
        self.dependent: Block | None = None
        if self.subscriber.one("hl").get(4) == "1":
            self.dependent = self._level("2000D", _DEPENDENT, "4", "3", "23", ("0",))
            for key, what in (("eq", "EQ"), ("dtp", "DTP")):
                if self.subscriber.all(key):
                    raise self.subscriber.all(key)[0].error(
                        X12StructureError, f"{what} belongs to the dependent's level (2100D)"
                    )
        # The patient's level: the trace, the date and the benefits are theirs.
        self.patient = self.dependent or self.subscriber
        trns = [t for t in self.patient.all("trn") if t.get(1) == trace_type]
        if len(trns) != 1:
            raise self.patient.one("nm1").error(
                X12StructureError, f"exactly one TRN*{trace_type} expected for the patient"
            )
        if self.dependent is not None and self.subscriber.all("trn"):
            raise self.subscriber.all("trn")[0].error(
                X12StructureError, "TRN belongs to the dependent's level (2000D)"
            )
        self.trn = trns[0]

    def _level(
        self,
        loop: str,
        slots: list[Slot],
        hl_id: str,
        parent: str,
        code: str,
        child_codes: tuple[str, ...],
    ) -> Block:
        if not self.cursor.at("HL"):
            raise self.cursor.unexpected(f"where loop {loop} (HL) must start")
        block = self.cursor.block(loop, slots)
        hl = block.one("hl")
        if (hl.get(1), hl.get(2), hl.get(3)) != (hl_id, parent, code):
            raise hl.error(
                X12StructureError,
                f"HL should be {hl_id}*{parent}*{code} (one patient per transaction: the "
                "subscriber, or one dependent under them)",
            )
        hl.code(4, child_codes)
        return block

    def common(self) -> dict[str, object]:
        payer = self.source.one("nm1")
        payer.code(8, ("PI",))
        provider = self.receiver.one("nm1")
        provider.code(8, ("XX",))
        subscriber = self.subscriber.one("nm1")
        subscriber.code(8, ("MI",))
        dmg = self.subscriber.opt("dmg")
        with model_errors(provider):
            provider_model = EligibilityProvider(
                entity_type=provider.code(2, ("1", "2")),
                last_name=provider.require(3),
                first_name=provider.optional(4),
                npi=provider.require(9),
            )
        with model_errors(subscriber):
            subscriber_model = EligibilitySubscriber(
                member_id=subscriber.require(9),
                last_name=subscriber.require(3),
                first_name=subscriber.optional(4),
                birth_date=dmg.date(2) if dmg else None,
                gender=dmg.optional(3) if dmg else None,
            )
        return {
            "reference_id": self.bht.require(3),
            "created": datetime.combine(self.bht.date(4), self.bht.time(5)),
            "payer_name": payer.require(3),
            "payer_id": payer.require(9),
            "provider": provider_model,
            "subscriber": subscriber_model,
            "dependent": None if self.dependent is None else _dependent(self.dependent),
            "trace_number": self.trn.require(2),
            "trace_originator": self.trn.require(3),
        }

    @property
    def levels(self) -> list[Block]:
        levels = [self.source, self.receiver, self.subscriber]
        return levels if self.dependent is None else [*levels, self.dependent]


def _dependent(block: Block) -> EligibilityDependent:
    nm1, dmg, ins = block.one("nm1"), block.opt("dmg"), block.opt("ins")
    nm1.code(2, ("1",))
    if nm1.get(8) or nm1.get(9):
        raise nm1.error(X12ValueError, "NM108/NM109 are not used for a dependent (2100D)")
    if ins is not None:
        ins.code(1, ("N",))
    with model_errors(nm1):
        return EligibilityDependent(
            last_name=nm1.require(3),
            first_name=nm1.optional(4),
            birth_date=dmg.date(2) if dmg else None,
            gender=dmg.optional(3) if dmg else None,
            relationship=ins.require(2) if ins else None,
        )


def _parse_inquiry(transaction: TransactionSet) -> EligibilityInquiry:
    parsed = _Parsed(transaction, "13", "1")
    parsed.cursor.expect_end("in the 270")
    for block in parsed.levels:
        if block.all("aaa"):
            raise block.all("aaa")[0].error(X12StructureError, "AAA belongs in a 271")
    dates = [d for d in parsed.patient.all("dtp") if d.get(1) == "291"]
    eqs = parsed.patient.all("eq")
    anchor = parsed.patient.one("nm1")
    if len(dates) != 1 or len(eqs) != 1:
        raise anchor.error(X12StructureError, "a 270 needs one DTP*291 and one EQ")
    dates[0].code(2, ("D8",))
    with model_errors(anchor):
        return EligibilityInquiry(
            control_number=transaction.control_number,
            service_date=dates[0].date(3),
            service_types=eqs[0].repetitions(1),
            **parsed.common(),
        )


def _parse_response(transaction: TransactionSet) -> EligibilityResponse:
    parsed = _Parsed(transaction, "11", "2")
    benefits: list[Segment] = []
    while parsed.cursor.at("EB"):
        benefits.append(parsed.cursor.block("2110C", _BENEFIT).one("eb"))
        _skip_benefit_details(parsed.cursor)
    parsed.cursor.expect_end("in the 271")
    if parsed.patient.all("eq"):
        raise parsed.patient.all("eq")[0].error(X12StructureError, "EQ belongs in a 270")
    rejection = _rejection(parsed)
    coverage = _coverage(benefits, parsed.patient.one("nm1")) if rejection is None else None
    if rejection is not None and benefits:
        raise benefits[0].error(X12StructureError, "a rejected 271 carries no benefits")
    with model_errors(parsed.patient.one("nm1")):
        return EligibilityResponse(
            control_number=transaction.control_number,
            coverage=coverage,
            rejection=rejection,
            **parsed.common(),
        )


def _skip_benefit_details(cursor: Cursor) -> None:
    """Loops 2115C (III) and 2120C (LS ... LE) hold details this model does not carry."""
    while cursor.at("III"):
        cursor.block("2115C", [slot("III", None, required=True), slot("LS", None)])
    if cursor.at("LS"):
        cursor.block("2120C", [slot("LS", None, required=True)])
        while (segment := cursor.peek()) is not None and segment.id in (
            "NM1",
            "N3",
            "N4",
            "PER",
            "PRV",
        ):
            cursor.block("2120C", [slot(segment.id, None)])
        cursor.block("2120C", [slot("LE", None, required=True)])


def _rejection(parsed: _Parsed) -> Rejection | None:
    levels: list[tuple[Literal["payer", "provider", "subscriber", "dependent"], Block]] = [
        ("payer", parsed.source),
        ("provider", parsed.receiver),
        ("subscriber", parsed.subscriber),
    ]
    if parsed.dependent is not None:
        levels.append(("dependent", parsed.dependent))
    found = [(level, aaa) for level, block in levels for aaa in block.all("aaa")]
    if not found:
        return None
    level, aaa = found[0]
    with model_errors(aaa):
        return Rejection(
            level=level,
            valid_request=aaa.code(1, ("Y", "N")) == "Y",
            reason=aaa.require(3),
            follow_up=aaa.require(4),
        )


_CATEGORIES = {
    ("B", ""): "copay_cents",
    ("C", "23"): "deductible_cents",
    ("C", "29"): "deductible_remaining_cents",
    ("G", "23"): "out_of_pocket_cents",
    ("G", "29"): "out_of_pocket_remaining_cents",
}


def _coverage(benefits: list[Segment], anchor: Segment) -> Coverage:
    values: dict[str, object] = {}
    status: Segment | None = None
    for eb in benefits:
        service_types = eb.repetitions(3)
        relevant = (
            eb.get(2) in ("", "IND")
            and (not service_types or HEALTH_BENEFIT_PLAN_COVERAGE in service_types)
            and eb.get(12) != "N"
        )
        if not relevant:
            continue
        code = eb.require(1)
        if code in ("1", "6"):
            if status is not None:
                raise eb.error(X12StructureError, "coverage status (EB*1/EB*6) given twice")
            status = eb
            continue
        value: Decimal | int
        if code == "A":
            key, value = "coinsurance_percent", eb.number(8) * 100
        elif (code, eb.get(6)) in _CATEGORIES:
            key, value = _CATEGORIES[(code, eb.get(6))], eb.money(7)
        else:
            continue  # other benefit kinds are outside this model
        if key in values:
            raise eb.error(X12StructureError, f"{key} given twice for service type 30")
        values[key] = value
    if status is None:
        raise anchor.error(
            X12StructureError, "271 without AAA needs EB*1 or EB*6 for service type 30"
        )
    with model_errors(status):
        return Coverage(
            active=status.get(1) == "1",
            plan_name=status.optional(5),
            insurance_type=status.optional(4),
            **values,
        )

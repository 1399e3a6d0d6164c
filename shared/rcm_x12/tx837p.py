"""837P Health Care Claim: Professional (005010X222A1): build and parse."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from itertools import groupby

from rcm_x12.claims import (
    BillingProvider,
    ClaimBatch,
    ClaimSubmission,
    LineAdjudication,
    Patient,
    Payer,
    PriorPayer,
    ProfessionalClaim,
    Receiver,
    RenderingProvider,
    ServiceLine,
    Submitter,
    Subscriber,
)
from rcm_x12.common import (
    Address,
    address_segments,
    cas_segments,
    procedure_composite,
    read_address,
    read_cas,
    read_procedure,
)
from rcm_x12.contact import per_segment, read_per
from rcm_x12.envelope import (
    OutGroup,
    OutSegment,
    OutTransaction,
    TransactionSet,
    envelope_of,
    parse_interchange,
    seg,
    typed_transactions,
    write_interchange,
)
from rcm_x12.errors import X12StructureError, X12ValueError
from rcm_x12.money import cents_to_x12, decimal_to_x12
from rcm_x12.reader import Block, Cursor, Slot, model_errors, slot
from rcm_x12.segments import Segment, format_date

VERSION = "005010X222A1"
_PROCEDURE_QUALIFIERS = ("ER", "HC", "IV", "WK")


def build_837p(batch: ClaimBatch, *, newline: bool = True) -> str:
    """X12 text for the claims. Consecutive claims with the same billing provider share a
    2000A loop, with the same subscriber and payer a 2000B loop, and with the same
    dependent patient a 2000C loop under it."""
    transactions = [
        OutTransaction("837", t.control_number, VERSION, _submission_segments(t))
        for t in batch.transactions
    ]
    return write_interchange(
        batch.envelope, [OutGroup("HC", VERSION, transactions)], newline=newline
    )


def _submission_segments(t: ClaimSubmission) -> list[OutSegment]:
    out = [
        seg(
            "BHT",
            "0019",
            t.purpose,
            t.batch_id,
            format_date(t.created.date()),
            t.created.strftime("%H%M"),
            t.claim_type,
        ),
        _nm1("41", "2", t.submitter.name, None, None, "46", t.submitter.identifier),
        per_segment("IC", t.submitter.contact),
        _nm1("40", "2", t.receiver.name, None, None, "46", t.receiver.identifier),
    ]
    hl = 0
    for provider, by_provider in groupby(t.claims, key=lambda c: c.billing_provider):
        hl += 1
        provider_hl = hl
        out.append(seg("HL", str(provider_hl), None, "20", "1"))
        out += _billing_provider_segments(provider)
        for (subscriber, payer), by_subscriber in groupby(
            by_provider, key=lambda c: (c.subscriber, c.payer)
        ):
            hl += 1
            subscriber_hl = hl
            # A claim has a patient loop exactly when SBR02 is blank, the same for the group.
            has_patients = subscriber.relationship is None
            out.append(seg("HL", str(hl), str(provider_hl), "22", "1" if has_patients else "0"))
            out += _subscriber_segments(subscriber, payer)
            for patient, claims in groupby(by_subscriber, key=lambda c: c.patient):
                if patient is not None:
                    hl += 1
                    out.append(seg("HL", str(hl), str(subscriber_hl), "23", "0"))
                    out += _patient_segments(patient)
                for claim in claims:
                    out += _claim_segments(claim)
    return out


def _nm1(
    code: str,
    entity: str,
    last: str,
    first: str | None,
    middle: str | None,
    qualifier: str | None,
    identifier: str | None,
) -> OutSegment:
    return seg("NM1", code, entity, last, first, middle, None, None, qualifier, identifier)


def _billing_provider_segments(p: BillingProvider) -> list[OutSegment]:
    out = [seg("PRV", "BI", "PXC", p.taxonomy)] if p.taxonomy else []
    out.append(_nm1("85", "2", p.name, None, None, "XX", p.npi))
    out += address_segments(p.address)
    out.append(seg("REF", "EI", p.tax_id))
    return out


def _subscriber_segments(s: Subscriber, payer: Payer) -> list[OutSegment]:
    out = [
        seg(
            "SBR",
            s.payer_responsibility,
            s.relationship,
            s.group_number,
            s.group_name,
            s.insurance_type,
            None,
            None,
            None,
            s.filing_indicator,
        ),
        _nm1("IL", "1", s.last_name, s.first_name, s.middle_name, "MI", s.member_id),
    ]
    if s.address is not None:
        out += address_segments(s.address)
    if s.birth_date is not None:
        out.append(seg("DMG", "D8", format_date(s.birth_date), s.gender))
    out.append(_nm1("PR", "2", payer.name, None, None, "PI", payer.payer_id))
    if payer.address is not None:
        out += address_segments(payer.address)
    return out


def _patient_segments(p: Patient) -> list[OutSegment]:
    return [
        seg("PAT", p.relationship),
        _nm1("QC", "1", p.last_name, p.first_name, p.middle_name, None, None),
        *address_segments(p.address),
        seg("DMG", "D8", format_date(p.birth_date), p.gender),
    ]


def _claim_segments(c: ProfessionalClaim) -> list[OutSegment]:
    out = [
        seg(
            "CLM",
            c.patient_control_number,
            cents_to_x12(c.total_charge_cents),
            None,
            None,
            (c.place_of_service, "B", c.frequency_code),
            c.provider_signature,
            c.assignment,
            c.benefits_assignment,
            c.release_of_information,
        )
    ]
    if c.prior_authorization is not None:
        out.append(seg("REF", "G1", c.prior_authorization))
    if c.payer_claim_control_number is not None:
        out.append(seg("REF", "F8", c.payer_claim_control_number))
    codes = [("ABK" if i == 0 else "ABF", code) for i, code in enumerate(c.diagnoses)]
    out.append(seg("HI", *codes))
    if c.rendering_provider is not None:
        out += _rendering_segments(c.rendering_provider)
    for prior in c.prior_payers:
        out += _prior_payer_segments(prior)
    for number, line in enumerate(c.lines, start=1):
        out += _line_segments(number, line)
    return out


def _rendering_segments(r: RenderingProvider) -> list[OutSegment]:
    out = [_nm1("82", r.entity_type, r.last_name, r.first_name, None, "XX", r.npi)]
    if r.taxonomy is not None:
        out.append(seg("PRV", "PE", "PXC", r.taxonomy))
    return out


def _money(cents: int | None) -> str | None:
    return None if cents is None else cents_to_x12(cents)


def _prior_payer_segments(p: PriorPayer) -> list[OutSegment]:
    out = [
        seg(
            "SBR",
            p.payer_responsibility,
            p.relationship,
            p.group_number,
            None,
            p.insurance_type,
            None,
            None,
            None,
            p.filing_indicator,
        )
    ]
    out += cas_segments(p.adjustments)
    for qualifier, cents in (
        ("D", p.paid_cents),
        ("A8", p.non_covered_cents),
        ("EAF", p.remaining_patient_liability_cents),
    ):
        if cents is not None:
            out.append(seg("AMT", qualifier, cents_to_x12(cents)))
    out.append(seg("OI", None, None, p.benefits_assignment, None, None, p.release_of_information))
    out.append(
        _nm1(
            "IL",
            "1",
            p.subscriber_last_name,
            p.subscriber_first_name,
            None,
            "MI",
            p.subscriber_member_id,
        )
    )
    out.append(_nm1("PR", "2", p.payer_name, None, None, "PI", p.payer_id))
    if p.adjudication_date is not None:
        out.append(seg("DTP", "573", "D8", format_date(p.adjudication_date)))
    if p.payer_claim_control_number is not None:
        out.append(seg("REF", "F8", p.payer_claim_control_number))
    return out


def _line_segments(number: int, line: ServiceLine) -> list[OutSegment]:
    pointers = tuple(str(p) for p in line.diagnosis_pointers)
    out = [
        seg("LX", str(number)),
        seg(
            "SV1",
            procedure_composite(line.procedure),
            cents_to_x12(line.charge_cents),
            line.unit_basis,
            decimal_to_x12(line.units),
            line.place_of_service,
            None,
            pointers,
        ),
    ]
    if line.service_date_end is None:
        out.append(seg("DTP", "472", "D8", format_date(line.service_date)))
    else:
        period = f"{format_date(line.service_date)}-{format_date(line.service_date_end)}"
        out.append(seg("DTP", "472", "RD8", period))
    if line.line_control_number is not None:
        out.append(seg("REF", "6R", line.line_control_number))
    if line.rendering_provider is not None:
        out += _rendering_segments(line.rendering_provider)
    for a in line.adjudications:
        out.append(
            seg(
                "SVD",
                a.payer_id,
                cents_to_x12(a.paid_cents),
                procedure_composite(a.procedure),
                None,
                decimal_to_x12(a.paid_units),
                None if a.bundled_line_number is None else str(a.bundled_line_number),
            )
        )
        out += cas_segments(a.adjustments)
        out.append(seg("DTP", "573", "D8", format_date(a.adjudication_date)))
        if a.remaining_patient_liability_cents is not None:
            out.append(seg("AMT", "EAF", cents_to_x12(a.remaining_patient_liability_cents)))
    return out


# --- parsing ----------------------------------------------------------------------------


def _loop(*parts: Slot) -> list[Slot]:
    return list(parts)


_NM1_ADDRESS = (slot("N3", "n3"), slot("N4", "n4"))
_SUBMITTER = _loop(
    slot("NM1", "nm1", "41", required=True), slot("PER", "per", "IC", required=True, max_use=2)
)
_RECEIVER = _loop(slot("NM1", "nm1", "40", required=True))
_BILLING_HL = _loop(slot("HL", "hl", required=True), slot("PRV", "prv", "BI"), slot("CUR", None))
_BILLING = _loop(
    slot("NM1", "nm1", "85", required=True),
    slot("N3", "n3", required=True),
    slot("N4", "n4", required=True),
    slot("REF", "tax", "EI", "SY", required=True),
    slot("REF", None, "0B", "1G", max_use=2),
    slot("PER", None, "IC", max_use=2),
)
# Pay-to address/plan and the other optional name loops: legal, not modelled.
_IGNORED_LOOPS: dict[str, list[Slot]] = {
    "87": _loop(slot("NM1", None, "87"), slot("N3", None), slot("N4", None)),
    "PE": _loop(slot("NM1", None, "PE"), slot("N3", None), slot("N4", None),
                slot("REF", None, max_use=2)),
    "DN": _loop(slot("NM1", None, "DN", "P3"), slot("REF", None, max_use=3)),
    "77": _loop(slot("NM1", None, "77"), slot("N3", None), slot("N4", None),
                slot("REF", None, max_use=3), slot("PER", None)),
    "DQ": _loop(slot("NM1", None, "DQ"), slot("REF", None, max_use=20)),
    "PW": _loop(slot("NM1", None, "PW"), slot("N3", None), slot("N4", None)),
    "45": _loop(slot("NM1", None, "45"), slot("N3", None), slot("N4", None)),
    "QB": _loop(slot("NM1", None, "QB"), slot("REF", None, max_use=20)),
    "DK": _loop(slot("NM1", None, "DK"), slot("N3", None), slot("N4", None),
                slot("REF", None, max_use=20), slot("PER", None)),
}  # fmt: skip
_IGNORED_LOOPS["P3"] = _IGNORED_LOOPS["DN"]
_SUBSCRIBER_HL = _loop(slot("HL", "hl", required=True), slot("SBR", "sbr", required=True),
                       slot("PAT", None))  # fmt: skip
_PATIENT_HL = _loop(slot("HL", "hl", required=True), slot("PAT", "pat", required=True))
_PATIENT = _loop(
    slot("NM1", "nm1", "QC", required=True),
    slot("N3", "n3", required=True),
    slot("N4", "n4", required=True),
    slot("DMG", "dmg", "D8", required=True),
    slot("REF", None, "Y4"),
    slot("REF", None, "1W", "SY"),
    slot("PER", None, "IC"),
)
_SUBSCRIBER = _loop(
    slot("NM1", "nm1", "IL", required=True),
    *_NM1_ADDRESS,
    slot("DMG", "dmg", "D8"),
    slot("REF", None, "SY"),
    slot("REF", None, "Y4"),
    slot("PER", None, "IC"),
)
_PAYER = _loop(
    slot("NM1", "nm1", "PR", required=True),
    *_NM1_ADDRESS,
    slot("REF", None, "2U", "EI", "FY", "NF", max_use=3),
    slot("REF", None, "G2", "LU", max_use=2),
)
_CLAIM = _loop(
    slot("CLM", "clm", required=True),
    slot("DTP", None, max_use=20),
    slot("PWK", None, max_use=10),
    slot("CN1", None),
    slot("AMT", None, "F5"),
    slot("REF", None, "4N"),
    slot("REF", None, "F5"),
    slot("REF", None, "EW"),
    slot("REF", None, "9F"),
    slot("REF", "prior_auth", "G1"),
    slot("REF", "f8", "F8"),
    slot("REF", None, "X4"),
    slot("REF", None, "9A"),
    slot("REF", None, "9C"),
    slot("REF", None, "LX"),
    slot("REF", None, "D9"),
    slot("REF", None, "EA"),
    slot("REF", None, "P4"),
    slot("REF", None, "1J"),
    slot("K3", None, max_use=10),
    slot("NTE", None),
    slot("CR1", None),
    slot("CR2", None),
    slot("CRC", None, max_use=8),
    slot("HI", "hi", required=True, max_use=4),
    slot("HCP", None),
)
_RENDERING = _loop(slot("NM1", "nm1", "82", required=True), slot("PRV", "prv", "PE"),
                   slot("REF", None, max_use=20))  # fmt: skip
_PRIOR_PAYER = _loop(
    slot("SBR", "sbr", required=True),
    slot("CAS", "cas", max_use=5),
    slot("AMT", "paid", "D"),
    slot("AMT", "non_covered", "A8"),
    slot("AMT", "remaining", "EAF"),
    slot("OI", "oi", required=True),
    slot("MOA", None),
)
_PRIOR_SUBSCRIBER = _loop(
    slot("NM1", "nm1", "IL", required=True), *_NM1_ADDRESS, slot("REF", None, "SY")
)
_PRIOR_PAYER_NAME = _loop(
    slot("NM1", "nm1", "PR", required=True),
    *_NM1_ADDRESS,
    slot("DTP", "date", "573"),
    slot("REF", None, "2U", "EI", "FY", "NF", max_use=2),
    slot("REF", None, "G1"),
    slot("REF", None, "9F"),
    slot("REF", None, "T4"),
    slot("REF", "f8", "F8"),
)
_PRIOR_PAYER_PROVIDERS = ("DN", "P3", "82", "77", "DQ", "85")
_LINE = _loop(
    slot("LX", "lx", required=True),
    slot("SV1", "sv1", required=True),
    slot("SV5", None),
    slot("PWK", None, max_use=11),
    slot("CR1", None),
    slot("CR3", None),
    slot("CRC", None, max_use=5),
    slot("DTP", "date", "472", required=True),
    slot(
        "DTP",
        None,
        "471",
        "607",
        "463",
        "461",
        "304",
        "738",
        "739",
        "011",
        "455",
        "454",
        max_use=11,
    ),
    slot("QTY", None, max_use=2),
    slot("MEA", None, max_use=5),
    slot("CN1", None),
    slot("REF", None, "9B"),
    slot("REF", None, "9D"),
    slot("REF", None, "G1", max_use=5),
    slot("REF", "control", "6R"),
    slot("REF", None, "EW", "X4", "F4", "BT", "9F", max_use=13),
    slot("AMT", None, "T", "F4", max_use=2),
    slot("K3", None, max_use=10),
    slot("NTE", None, max_use=2),
    slot("PS1", None),
    slot("HCP", None),
)
_DRUG = _loop(slot("LIN", None, required=True), slot("CTP", None, required=True),
              slot("REF", None))  # fmt: skip
_LINE_ADJUDICATION = _loop(
    slot("SVD", "svd", required=True),
    slot("CAS", "cas", max_use=5),
    slot("DTP", "date", "573", required=True),
    slot("AMT", "remaining", "EAF"),
)
_FORM = _loop(slot("LQ", None, required=True), slot("FRM", None, required=True, max_use=99))


def parse_837p(data: str | bytes) -> ClaimBatch:
    """Parse an 837P interchange into claims (each carrying provider, subscriber, payer)."""
    interchange = parse_interchange(data)
    submissions = [
        _parse_submission(t) for t in typed_transactions(interchange, "HC", VERSION, "837")
    ]
    return ClaimBatch(envelope=envelope_of(interchange), transactions=submissions)


class _Hierarchy:
    """HL01 must count up from 1 and HL02 must name an existing parent."""

    def __init__(self) -> None:
        self.count = 0

    def check(self, hl: Segment, level: str, parent: int | None, *children: str) -> int:
        self.count += 1
        if hl.integer(1) != self.count:
            raise hl.error(X12StructureError, f"HL01 should be {self.count}")
        expected_parent = "" if parent is None else str(parent)
        if hl.get(2) != expected_parent:
            raise hl.error(X12StructureError, f"HL02 should be {expected_parent or 'empty'}")
        if hl.get(3) != level:
            raise hl.error(
                X12StructureError,
                f"HL03 is {hl.get(3)!r}, expected {level}",
            )
        hl.code(4, children)
        return self.count


def _parse_submission(transaction: TransactionSet) -> ClaimSubmission:
    cursor = Cursor(transaction.body, transaction.trailer)
    bht = cursor.block("header", [slot("BHT", "bht", "0019", required=True)]).one("bht")
    submitter_block = cursor.block("1000A", _SUBMITTER)
    receiver_nm1 = cursor.block("1000B", _RECEIVER).one("nm1")
    claims: list[ProfessionalClaim] = []
    hierarchy = _Hierarchy()
    if not cursor.at("HL"):
        raise cursor.unexpected("where the billing provider HL must start")
    while cursor.at("HL"):
        provider_hl = cursor.block("2000A", _BILLING_HL)
        provider_id = hierarchy.check(provider_hl.one("hl"), "20", None, "1")
        provider = _parse_billing_provider(cursor, provider_hl.opt("prv"))
        if not cursor.at("HL"):
            raise cursor.unexpected("where a subscriber HL must start")
        while cursor.at("HL", str(hierarchy.count + 1)) and _hl_level(cursor) == "22":
            subscriber_hl = cursor.block("2000B", _SUBSCRIBER_HL)
            subscriber_id = hierarchy.check(subscriber_hl.one("hl"), "22", provider_id, "0", "1")
            subscriber = _parse_subscriber(subscriber_hl.one("sbr"), cursor)
            payer = _parse_payer(cursor)
            if subscriber_hl.one("hl").get(4) == "0":
                claims += _parse_claims(cursor, provider, subscriber, None, payer)
                continue
            if cursor.at("CLM"):
                raise cursor.unexpected("where the subscriber's HL04 = 1 says patient loops follow")
            if not (cursor.at("HL") and _hl_level(cursor) == "23"):
                raise cursor.unexpected("where a patient HL (2000C) must start")
            while cursor.at("HL", str(hierarchy.count + 1)) and _hl_level(cursor) == "23":
                patient_hl = cursor.block("2000C", _PATIENT_HL)
                hierarchy.check(patient_hl.one("hl"), "23", subscriber_id, "0")
                patient = _parse_patient(patient_hl.one("pat"), cursor)
                claims += _parse_claims(cursor, provider, subscriber, patient, payer)
    cursor.expect_end("in the 837P")
    submitter_nm1 = submitter_block.one("nm1")
    submitter_nm1.code(8, ("46",))
    receiver_nm1.code(8, ("46",))
    with model_errors(bht):
        submitter = Submitter(
            name=submitter_nm1.require(3),
            identifier=submitter_nm1.require(9),
            contact=read_per(submitter_block.all("per")[0]),
        )
        receiver = Receiver(name=receiver_nm1.require(3), identifier=receiver_nm1.require(9))
        created = bht.date(4)
        stamp = bht.time(5)
        return ClaimSubmission(
            control_number=transaction.control_number,
            batch_id=bht.require(3),
            created=datetime.combine(created, stamp),
            purpose=bht.code(2, ("00", "18")),
            claim_type=bht.code(6, ("CH", "RP")),
            submitter=submitter,
            receiver=receiver,
            claims=claims,
        )


def _parse_claims(
    cursor: Cursor,
    provider: BillingProvider,
    subscriber: Subscriber,
    patient: Patient | None,
    payer: Payer,
) -> list[ProfessionalClaim]:
    if not cursor.at("CLM"):
        raise cursor.unexpected("where a claim (CLM) must start")
    claims = []
    while cursor.at("CLM"):
        claims.append(_parse_claim(cursor, provider, subscriber, patient, payer))
    return claims


def _hl_level(cursor: Cursor) -> str:
    segment = cursor.peek()
    return segment.get(3) if segment else ""


def _skip_name_loops(cursor: Cursor, codes: Sequence[str]) -> None:
    while (segment := cursor.peek()) is not None and segment.id == "NM1":
        code = segment.get(1)
        if code not in codes:
            return
        cursor.block(f"NM1*{code}", _IGNORED_LOOPS[code])


def _parse_billing_provider(cursor: Cursor, prv: Segment | None) -> BillingProvider:
    block = cursor.block("2010AA", _BILLING)
    _skip_name_loops(cursor, ("87", "PE"))
    nm1 = block.one("nm1")
    nm1.code(2, ("2",))
    nm1.code(8, ("XX",))
    tax = block.one("tax")
    tax.code(1, ("EI",))
    with model_errors(nm1):
        return BillingProvider(
            name=nm1.require(3),
            npi=nm1.require(9),
            tax_id=tax.require(2),
            address=read_address(block.one("n3"), block.one("n4")),
            taxonomy=_taxonomy(prv),
        )


def _taxonomy(prv: Segment | None) -> str | None:
    if prv is None:
        return None
    prv.code(2, ("PXC",))
    return prv.require(3)


def _optional_address(block: Block, anchor: Segment) -> Address | None:
    n3, n4 = block.opt("n3"), block.opt("n4")
    if (n3 is None) != (n4 is None):
        raise anchor.error(X12StructureError, "an address needs both N3 and N4")
    return read_address(n3, n4) if n3 is not None and n4 is not None else None


def _parse_subscriber(sbr: Segment, cursor: Cursor) -> Subscriber:
    block = cursor.block("2010BA", _SUBSCRIBER)
    nm1 = block.one("nm1")
    dmg = block.opt("dmg")
    relationship = sbr.optional(2)
    if dmg is None and relationship == "18":
        raise nm1.error(X12StructureError, "DMG is required when the patient is the subscriber")
    nm1.code(2, ("1",))
    nm1.code(8, ("MI",))
    with model_errors(sbr):
        return Subscriber(
            member_id=nm1.require(9),
            last_name=nm1.require(3),
            first_name=nm1.optional(4),
            middle_name=nm1.optional(5),
            birth_date=dmg.date(2) if dmg else None,
            gender=dmg.require(3) if dmg else None,
            address=_optional_address(block, nm1),
            relationship=relationship,
            payer_responsibility=sbr.require(1),
            group_number=sbr.optional(3),
            group_name=sbr.optional(4),
            insurance_type=sbr.optional(5),
            filing_indicator=sbr.require(9),
        )


def _parse_patient(pat: Segment, cursor: Cursor) -> Patient:
    block = cursor.block("2010CA", _PATIENT)
    nm1, dmg = block.one("nm1"), block.one("dmg")
    nm1.code(2, ("1",))
    if nm1.get(8) or nm1.get(9):
        raise nm1.error(X12ValueError, "NM108/NM109 are not used for the patient (2010CA)")
    with model_errors(pat):
        return Patient(
            relationship=pat.require(1),
            last_name=nm1.require(3),
            first_name=nm1.optional(4),
            middle_name=nm1.optional(5),
            address=read_address(block.one("n3"), block.one("n4")),
            birth_date=dmg.date(2),
            gender=dmg.require(3),
        )


def _parse_payer(cursor: Cursor) -> Payer:
    block = cursor.block("2010BB", _PAYER)
    nm1 = block.one("nm1")
    nm1.code(8, ("PI",))
    with model_errors(nm1):
        return Payer(
            name=nm1.require(3),
            payer_id=nm1.require(9),
            address=_optional_address(block, nm1),
        )


def _parse_rendering(cursor: Cursor) -> RenderingProvider:
    block = cursor.block("2310B/2420A", _RENDERING)
    nm1 = block.one("nm1")
    nm1.code(8, ("XX",))
    with model_errors(nm1):
        return RenderingProvider(
            entity_type=nm1.code(2, ("1", "2")),
            last_name=nm1.require(3),
            first_name=nm1.optional(4),
            npi=nm1.require(9),
            taxonomy=_taxonomy(block.opt("prv")),
        )


def _parse_claim(
    cursor: Cursor,
    provider: BillingProvider,
    subscriber: Subscriber,
    patient: Patient | None,
    payer: Payer,
) -> ProfessionalClaim:
    block = cursor.block("2300", _CLAIM)
    clm = block.one("clm")
    diagnoses = _parse_diagnoses(block.all("hi"))
    _skip_name_loops(cursor, ("DN", "P3"))
    rendering = _parse_rendering(cursor) if cursor.at("NM1", "82") else None
    _skip_name_loops(cursor, ("77", "DQ", "PW", "45"))
    prior_payers: list[PriorPayer] = []
    while cursor.at("SBR"):
        prior_payers.append(_parse_prior_payer(cursor))
    lines: list[ServiceLine] = []
    if not cursor.at("LX"):
        raise cursor.unexpected("where the first service line (LX) must start")
    while cursor.at("LX"):
        lines.append(_parse_line(cursor, len(lines) + 1))
    location = clm.components(5)
    if len(location) != 3 or location[1] != "B":
        raise clm.error(X12ValueError, "CLM05 must be place-of-service:B:frequency")
    prior_auth, f8 = block.opt("prior_auth"), block.opt("f8")
    with model_errors(clm):
        return ProfessionalClaim(
            billing_provider=provider,
            subscriber=subscriber,
            patient=patient,
            payer=payer,
            patient_control_number=clm.require(1),
            total_charge_cents=clm.money(2),
            place_of_service=location[0],
            frequency_code=location[2],
            payer_claim_control_number=f8.require(2) if f8 else None,
            provider_signature=clm.require(6),
            assignment=clm.require(7),
            benefits_assignment=clm.require(8),
            release_of_information=clm.require(9),
            prior_authorization=prior_auth.require(2) if prior_auth else None,
            diagnoses=diagnoses,
            rendering_provider=rendering,
            prior_payers=prior_payers,
            lines=lines,
        )


def _parse_diagnoses(his: list[Segment]) -> list[str]:
    first = his[0]
    codes: list[str] = []
    for n in range(1, len(first.elements) + 1):
        parts = first.components(n)
        expected = "ABK" if n == 1 else "ABF"
        if len(parts) != 2 or parts[0] != expected:
            raise first.error(
                X12ValueError,
                f"{first.ref(n)} must be {expected}:<ICD-10 code> (ICD-9 BK/BF is not accepted)",
            )
        codes.append(parts[1])
    for other in his[1:]:
        if other.components(1)[:1] in (["ABK"], ["ABF"], ["BK"], ["BF"]):
            raise other.error(X12StructureError, "diagnoses belong in one HI segment")
    return codes


def _parse_prior_payer(cursor: Cursor) -> PriorPayer:
    block = cursor.block("2320", _PRIOR_PAYER)
    sbr, oi = block.one("sbr"), block.one("oi")
    subscriber = cursor.block("2330A", _PRIOR_SUBSCRIBER).one("nm1")
    payer_block = cursor.block("2330B", _PRIOR_PAYER_NAME)
    payer = payer_block.one("nm1")
    _skip_name_loops(cursor, _PRIOR_PAYER_PROVIDERS)
    subscriber.code(8, ("MI",))
    payer.code(8, ("PI",))
    date_segment, f8 = payer_block.opt("date"), payer_block.opt("f8")
    paid, non_covered = block.opt("paid"), block.opt("non_covered")
    remaining = block.opt("remaining")
    if date_segment is not None:
        date_segment.code(2, ("D8",))
    with model_errors(sbr):
        return PriorPayer(
            payer_responsibility=sbr.require(1),
            relationship=sbr.require(2),
            group_number=sbr.optional(3),
            insurance_type=sbr.optional(5),
            filing_indicator=sbr.optional(9),
            adjustments=[a for cas in block.all("cas") for a in read_cas(cas)],
            paid_cents=paid.money(2) if paid else None,
            non_covered_cents=non_covered.money(2) if non_covered else None,
            remaining_patient_liability_cents=remaining.money(2) if remaining else None,
            benefits_assignment=oi.require(3),
            release_of_information=oi.require(6),
            subscriber_last_name=subscriber.require(3),
            subscriber_first_name=subscriber.optional(4),
            subscriber_member_id=subscriber.require(9),
            payer_name=payer.require(3),
            payer_id=payer.require(9),
            adjudication_date=date_segment.date(3) if date_segment else None,
            payer_claim_control_number=f8.require(2) if f8 else None,
        )


def _parse_line(cursor: Cursor, number: int) -> ServiceLine:
    block = cursor.block("2400", _LINE)
    lx, sv1, dtp = block.one("lx"), block.one("sv1"), block.one("date")
    if lx.integer(1) != number:
        raise lx.error(X12StructureError, f"LX01 should be {number}")
    while cursor.at("LIN"):
        cursor.block("2410", _DRUG)
    rendering = _parse_rendering(cursor) if cursor.at("NM1", "82") else None
    _skip_name_loops(cursor, ("QB", "77", "DQ", "DK", "DN", "P3", "PW", "45"))
    adjudications: list[LineAdjudication] = []
    while cursor.at("SVD"):
        adjudications.append(_parse_line_adjudication(cursor))
    while cursor.at("LQ"):
        cursor.block("2440", _FORM)
    start, end = dtp.period(2)
    pointers = sv1.components(7)
    if not pointers or not all(p.isdigit() for p in pointers):
        raise sv1.error(X12ValueError, "SV107 must list 1-4 numeric diagnosis pointers")
    procedure = read_procedure(sv1, 1, _PROCEDURE_QUALIFIERS)
    control = block.opt("control")
    with model_errors(sv1):
        return ServiceLine(
            procedure=procedure,
            charge_cents=sv1.money(2),
            unit_basis=sv1.require(3),
            units=sv1.number(4),
            place_of_service=sv1.optional(5),
            diagnosis_pointers=[int(p) for p in pointers],
            service_date=start,
            service_date_end=end,
            line_control_number=control.require(2) if control else None,
            rendering_provider=rendering,
            adjudications=adjudications,
        )


def _parse_line_adjudication(cursor: Cursor) -> LineAdjudication:
    block = cursor.block("2430", _LINE_ADJUDICATION)
    svd, dtp, remaining = block.one("svd"), block.one("date"), block.opt("remaining")
    dtp.code(2, ("D8",))
    procedure = read_procedure(svd, 3, _PROCEDURE_QUALIFIERS)
    bundled = svd.integer(6) if svd.get(6) else None
    with model_errors(svd):
        return LineAdjudication(
            payer_id=svd.require(1),
            paid_cents=svd.money(2),
            procedure=procedure,
            paid_units=svd.number(5),
            bundled_line_number=bundled,
            adjustments=[a for cas in block.all("cas") for a in read_cas(cas)],
            adjudication_date=dtp.date(3),
            remaining_patient_liability_cents=remaining.money(2) if remaining else None,
        )

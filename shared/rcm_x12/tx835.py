"""835 Health Care Claim Payment/Advice (005010X221A1): build and parse."""

from __future__ import annotations

from rcm_x12.common import (
    Adjustment,
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
from rcm_x12.errors import X12BalanceError, X12ValueError
from rcm_x12.money import cents_to_x12, decimal_to_x12
from rcm_x12.reader import Block, Cursor, model_errors, slot
from rcm_x12.remittance import (
    CrossoverCarrier,
    EftDetails,
    InpatientAdjudication,
    OutpatientAdjudication,
    ProviderAdjustment,
    Remittance,
    RemittanceClaim,
    RemittanceDocument,
    RemittanceLine,
    RemittanceParty,
    RemittancePayee,
    RemittancePayer,
    check_835_balance,
)
from rcm_x12.segments import Segment, format_date

VERSION = "005010X221A1"
_SVC_QUALIFIERS = ("AD", "ER", "HC", "HP", "IV", "N4", "NU", "WK")


def build_835(
    document: RemittanceDocument, *, newline: bool = True, check_balance: bool = True
) -> str:
    """X12 text for the remittances; refuses an unbalanced one unless told not to check."""
    if check_balance:
        imbalances = check_835_balance(document)
        if imbalances:
            raise X12BalanceError(imbalances)
    transactions = [
        OutTransaction("835", r.control_number, None, _remittance_segments(r))
        for r in document.transactions
    ]
    return write_interchange(
        document.envelope, [OutGroup("HP", VERSION, transactions)], newline=newline
    )


def _remittance_segments(r: Remittance) -> list[OutSegment]:
    eft = r.eft
    bank: tuple[str | None, ...] = (None,) * 11
    if eft is not None:
        bank = (
            eft.payment_format,
            eft.sender_dfi_qualifier,
            eft.sender_dfi_id,
            "DA",
            eft.sender_account,
            eft.originating_company_id,
            None,
            eft.receiver_dfi_qualifier,
            eft.receiver_dfi_id,
            eft.receiver_account_qualifier,
            eft.receiver_account,
        )
    out = [
        seg(
            "BPR",
            r.handling,
            cents_to_x12(r.payment_cents),
            r.credit_debit,
            r.payment_method,
            *bank,
            format_date(r.payment_date),
        ),
        seg("TRN", "1", r.trace_number, r.payer_trace_id),
    ]
    if r.production_date is not None:
        out.append(seg("DTM", "405", format_date(r.production_date)))
    payer = r.payer
    out.append(seg("N1", "PR", payer.name, "XV" if payer.identifier else None, payer.identifier))
    out += address_segments(payer.address)
    out.append(per_segment("BL", payer.technical_contact))
    payee = r.payee
    out.append(seg("N1", "PE", payee.name, "XX", payee.npi))
    if payee.address is not None:
        out += address_segments(payee.address)
    if payee.tax_id is not None:
        out.append(seg("REF", "TJ", payee.tax_id))
    if r.claims:
        out.append(seg("LX", "1"))
    for claim in r.claims:
        out += _claim_segments(claim)
    out += _plb_segments(r.provider_adjustments)
    return out


def _money(cents: int | None) -> str | None:
    return None if cents is None else cents_to_x12(cents)


def _party(code: str, party: RemittanceParty) -> OutSegment:
    return seg(
        "NM1",
        code,
        party.entity_type,
        party.last_name,
        party.first_name,
        party.middle_name,
        None,
        None,
        party.id_qualifier,
        party.identifier,
    )


def _claim_segments(claim: RemittanceClaim) -> list[OutSegment]:
    out = [
        seg(
            "CLP",
            claim.patient_control_number,
            claim.status,
            cents_to_x12(claim.charge_cents),
            cents_to_x12(claim.paid_cents),
            _money(claim.patient_responsibility_cents),
            claim.filing_indicator,
            claim.payer_claim_control_number,
            claim.facility_type_code,
            claim.frequency_code,
        )
    ]
    out += cas_segments(claim.adjustments)
    out.append(_party("QC", claim.patient))
    if claim.insured is not None:
        out.append(_party("IL", claim.insured))
    if claim.rendering_provider is not None:
        out.append(_party("82", claim.rendering_provider))
    carrier = claim.crossover_carrier
    if carrier is not None:
        out.append(
            seg("NM1", "TT", "2", carrier.name, None, None, None, None, carrier.id_qualifier,
                carrier.identifier)
        )  # fmt: skip
    if claim.inpatient is not None:
        mia = claim.inpatient
        remarks = [*mia.remark_codes, None, None, None, None, None]
        out.append(
            seg(
                "MIA",
                decimal_to_x12(mia.covered_days),
                _money(mia.pps_operating_outlier_cents),
                None if mia.lifetime_psychiatric_days is None
                else decimal_to_x12(mia.lifetime_psychiatric_days),
                _money(mia.drg_amount_cents),
                remarks[0],
                *([None] * 14),
                *remarks[1:5],
            )
        )  # fmt: skip
    if claim.outpatient is not None:
        moa = claim.outpatient
        remarks = [*moa.remark_codes, None, None, None, None, None]
        rate = None if moa.reimbursement_rate is None else decimal_to_x12(moa.reimbursement_rate)
        out.append(
            seg(
                "MOA",
                rate,
                _money(moa.hcpcs_payable_cents),
                *remarks[:5],
                _money(moa.esrd_payment_cents),
                _money(moa.nonpayable_professional_cents),
            )
        )
    if claim.statement_start is not None:
        out.append(seg("DTM", "232", format_date(claim.statement_start)))
    if claim.statement_end is not None:
        out.append(seg("DTM", "233", format_date(claim.statement_end)))
    for line in claim.lines:
        out += _line_segments(line)
    return out


def _line_segments(line: RemittanceLine) -> list[OutSegment]:
    original = procedure_composite(line.original_procedure) if line.original_procedure else None
    out = [
        seg(
            "SVC",
            procedure_composite(line.procedure),
            cents_to_x12(line.charge_cents),
            cents_to_x12(line.paid_cents),
            line.revenue_code,
            None if line.units_paid is None else decimal_to_x12(line.units_paid),
            original,
            None if line.original_units is None else decimal_to_x12(line.original_units),
        )
    ]
    if line.service_date is not None:
        out.append(seg("DTM", "472", format_date(line.service_date)))
    if line.service_start is not None:
        out.append(seg("DTM", "150", format_date(line.service_start)))
    if line.service_end is not None:
        out.append(seg("DTM", "151", format_date(line.service_end)))
    out += cas_segments(line.adjustments)
    if line.line_control_number is not None:
        out.append(seg("REF", "6R", line.line_control_number))
    if line.allowed_cents is not None:
        out.append(seg("AMT", "B6", cents_to_x12(line.allowed_cents)))
    out += [seg("LQ", "HE", code) for code in line.remark_codes]
    return out


def _plb_segments(adjustments: list[ProviderAdjustment]) -> list[OutSegment]:
    out: list[OutSegment] = []
    run: list[ProviderAdjustment] = []

    def flush() -> None:
        elements: list[str | tuple[str | None, ...] | None] = [
            run[0].provider_id,
            format_date(run[0].fiscal_period_date),
        ]
        for p in run:
            elements += [(p.reason, p.reference), cents_to_x12(p.amount_cents)]
        out.append(seg("PLB", *elements))

    for adjustment in adjustments:
        key = (adjustment.provider_id, adjustment.fiscal_period_date)
        if run and ((run[0].provider_id, run[0].fiscal_period_date) != key or len(run) == 6):
            flush()
            run = []
        run.append(adjustment)
    if run:
        flush()
    return out


# --- parsing ----------------------------------------------------------------------------

_HEADER = [
    slot("BPR", "bpr", required=True),
    slot("TRN", "trn", "1", required=True),
    slot("CUR", None, "PR"),
    slot("REF", None, "EV"),
    slot("REF", None, "F2"),
    slot("DTM", "production", "405"),
]
_PAYER = [
    slot("N1", "n1", "PR", required=True),
    slot("N3", "n3", required=True),
    slot("N4", "n4", required=True),
    slot("REF", None, "2U", "EO", "HI", "NF", max_use=4),
    slot("PER", None, "CX"),
    slot("PER", "bl", "BL", required=True, max_use=99),
    slot("PER", None, "IC"),
]
_PAYEE = [
    slot("N1", "n1", "PE", required=True),
    slot("N3", "n3"),
    slot("N4", "n4"),
    slot("REF", "ref", "0B", "D3", "PQ", "TJ", max_use=99),
    slot("RDM", None),
]
_HEADER_NUMBER = [slot("LX", "lx", required=True), slot("TS3", None), slot("TS2", None)]
_CLAIM = [
    slot("CLP", "clp", required=True),
    slot("CAS", "cas", max_use=99),
    slot("NM1", "patient", "QC", required=True),
    slot("NM1", "insured", "IL"),
    slot("NM1", None, "74"),
    slot("NM1", "rendering", "82"),
    slot("NM1", "crossover", "TT"),
    slot("NM1", None, "PR"),
    slot("NM1", None, "GB"),
    slot("MIA", "mia"),
    slot("MOA", "moa"),
    slot("REF", None, "1L", "1W", "28", "6P", "9A", "9C", "BB", "CE", "EA", "F8", "G1", "G3",
         "IG", "SY", max_use=5),
    slot("REF", None, "0B", "1A", "1B", "1C", "1D", "1G", "1H", "1J", "D3", "G2", "LU",
         max_use=10),
    slot("DTM", "statement", "232", "233", max_use=2),
    slot("DTM", None, "036"),
    slot("DTM", None, "050"),
    slot("PER", None, "CX", max_use=2),
    slot("AMT", None, max_use=13),
    slot("QTY", None, max_use=14),
]  # fmt: skip
_LINE = [
    slot("SVC", "svc", required=True),
    slot("DTM", "dates", "150", "151", "472", max_use=2),
    slot("CAS", "cas", max_use=99),
    slot("REF", None, "1S", "APC", "BB", "E9", "G1", "G3", "LU", "RB", max_use=8),
    slot("REF", "control", "6R"),
    slot("REF", None, "0B", "1A", "1B", "1C", "1D", "1G", "1H", "1J", "D3", "G2", "HPI", "SY",
         "TJ", max_use=10),
    slot("REF", None, "0K", max_use=5),
    slot("AMT", "amt", max_use=9),
    slot("QTY", None, max_use=6),
    slot("LQ", "lq", "HE", "RX", max_use=99),
]  # fmt: skip
_FOOTER = [slot("PLB", "plb", max_use=999_999)]


def parse_835(data: str | bytes, *, check_balance: bool = True) -> RemittanceDocument:
    """Parse and check an 835 interchange, including its money rules.

    Raises X12BalanceError (with every imbalance) when a remittance does not balance;
    with check_balance=False the caller checks each remittance (`check_835_balance`),
    e.g. to post the balanced transactions of an interchange and hold the others.
    """
    interchange = parse_interchange(data)
    transactions = typed_transactions(interchange, "HP", VERSION, "835")
    remittances: list[Remittance] = []
    for transaction in transactions:
        places: dict[tuple[int | None, int | None], Segment] = {}
        remittance = _parse_remittance(transaction, places)
        imbalances = check_835_balance(remittance) if check_balance else []
        if imbalances:
            first = imbalances[0]
            where = places.get((first.claim_index, first.line_number))
            if where is None:  # transaction rule: point at BPR
                where = transaction.body[0]
            raise X12BalanceError(imbalances, segment_id=where.id, position=where.position)
        remittances.append(remittance)
    return RemittanceDocument(envelope=envelope_of(interchange), transactions=remittances)


def _parse_remittance(
    transaction: TransactionSet, places: dict[tuple[int | None, int | None], Segment]
) -> Remittance:
    cursor = Cursor(transaction.body, transaction.trailer)
    header = cursor.block("835 header", _HEADER)
    bpr, trn = header.one("bpr"), header.one("trn")
    payer_block = cursor.block("1000A", _PAYER)
    payee_block = cursor.block("1000B", _PAYEE)
    claims: list[RemittanceClaim] = []
    while cursor.at("LX"):
        cursor.block("2000", _HEADER_NUMBER)
        if not cursor.at("CLP"):
            raise cursor.unexpected("after LX (a CLP must follow)")
        while cursor.at("CLP"):
            claims.append(_parse_claim(cursor, len(claims), places))
    footer = cursor.block("835 footer", _FOOTER)
    cursor.expect_end("in the 835 (claims go under LX, PLB at the end)")

    n1 = payer_block.one("n1")
    if n1.get(3) not in ("", "XV"):
        raise n1.error(X12ValueError, "N103 must be XV for the payer")
    with model_errors(n1):
        payer = RemittancePayer(
            name=n1.require(2),
            identifier=n1.optional(4),
            address=read_address(payer_block.one("n3"), payer_block.one("n4")),
            technical_contact=read_per(payer_block.all("bl")[0]),
        )
    payee = _parse_payee(payee_block.one("n1"), payee_block)
    production = header.opt("production")
    method = bpr.code(4, ("ACH", "BOP", "CHK", "FWT", "NON"))
    eft = _parse_eft(bpr) if method == "ACH" else None
    if eft is None and any(bpr.get(n) for n in range(5, 16)):
        raise bpr.error(X12ValueError, "BPR05-BPR15 (bank details) are only for ACH")
    with model_errors(bpr):
        return Remittance(
            control_number=transaction.control_number,
            handling=bpr.code(1, ("C", "D", "H", "I", "P", "U", "X")),
            payment_cents=bpr.money(2),
            credit_debit=bpr.code(3, ("C", "D")),
            payment_method=method,
            eft=eft,
            payment_date=bpr.date(16),
            trace_number=trn.require(2),
            payer_trace_id=trn.require(3),
            production_date=production.date(2) if production else None,
            payer=payer,
            payee=payee,
            claims=claims,
            provider_adjustments=[p for s in footer.all("plb") for p in _parse_plb(s)],
        )


def _parse_eft(bpr: Segment) -> EftDetails:
    bpr.code(8, ("DA",))
    with model_errors(bpr):
        return EftDetails(
            payment_format=bpr.code(5, ("CCP", "CTX")),
            sender_dfi_qualifier=bpr.code(6, ("01", "04")),
            sender_dfi_id=bpr.require(7),
            sender_account=bpr.require(9),
            originating_company_id=bpr.require(10),
            receiver_dfi_qualifier=bpr.code(12, ("01", "04")),
            receiver_dfi_id=bpr.require(13),
            receiver_account_qualifier=bpr.code(14, ("DA", "SG")),
            receiver_account=bpr.require(15),
        )


def _parse_payee(n1: Segment, block: Block) -> RemittancePayee:
    n1.code(3, ("XX",))
    n3, n4 = block.opt("n3"), block.opt("n4")
    if (n3 is None) != (n4 is None):
        raise n1.error(X12ValueError, "payee address needs both N3 and N4")
    tax_ids = [r for r in block.all("ref") if r.get(1) == "TJ"]
    with model_errors(n1):
        return RemittancePayee(
            name=n1.require(2),
            npi=n1.require(4),
            address=read_address(n3, n4) if n3 and n4 else None,
            tax_id=tax_ids[0].require(2) if tax_ids else None,
        )


def _parse_party(nm1: Segment) -> RemittanceParty:
    if nm1.get(6):
        raise nm1.error(X12ValueError, "NM106 is not used")
    with model_errors(nm1):
        return RemittanceParty(
            entity_type=nm1.code(2, ("1", "2")),
            last_name=nm1.optional(3),
            first_name=nm1.optional(4),
            middle_name=nm1.optional(5),
            id_qualifier=nm1.optional(8),
            identifier=nm1.optional(9),
        )


def _parse_claim(
    cursor: Cursor, index: int, places: dict[tuple[int | None, int | None], Segment]
) -> RemittanceClaim:
    block = cursor.block("2100", _CLAIM)
    clp = block.one("clp")
    places[(index, None)] = clp
    lines: list[RemittanceLine] = []
    while cursor.at("SVC"):
        line_block = cursor.block("2110", _LINE)
        places[(index, len(lines) + 1)] = line_block.one("svc")
        lines.append(_parse_line(line_block))
    statement = {s.get(1): s for s in block.all("statement")}
    if len(statement) != len(block.all("statement")):
        raise clp.error(X12ValueError, "DTM*232/233 repeated")
    carrier = block.opt("crossover")
    crossover = None
    if carrier is not None:
        with model_errors(carrier):
            crossover = CrossoverCarrier(
                name=carrier.require(3),
                id_qualifier=carrier.require(8),
                identifier=carrier.require(9),
            )
    insured, rendering = block.opt("insured"), block.opt("rendering")
    mia, moa = block.opt("mia"), block.opt("moa")
    with model_errors(clp):
        return RemittanceClaim(
            patient_control_number=clp.require(1),
            status=clp.require(2),
            charge_cents=clp.money(3),
            paid_cents=clp.money(4),
            patient_responsibility_cents=clp.money_opt(5),
            filing_indicator=clp.require(6),
            payer_claim_control_number=clp.require(7),
            facility_type_code=clp.optional(8),
            frequency_code=clp.optional(9),
            adjustments=[a for cas in block.all("cas") for a in read_cas(cas)],
            patient=_parse_party(block.one("patient")),
            insured=_parse_party(insured) if insured else None,
            rendering_provider=_parse_party(rendering) if rendering else None,
            crossover_carrier=crossover,
            inpatient=_parse_mia(mia) if mia else None,
            outpatient=_parse_moa(moa) if moa else None,
            statement_start=statement["232"].date(2) if "232" in statement else None,
            statement_end=statement["233"].date(2) if "233" in statement else None,
            lines=lines,
        )


def _parse_mia(mia: Segment) -> InpatientAdjudication:
    remarks = [mia.get(n) for n in (5, 20, 21, 22, 23) if mia.get(n)]
    with model_errors(mia):
        return InpatientAdjudication(
            covered_days=mia.number(1),
            pps_operating_outlier_cents=mia.money_opt(2),
            lifetime_psychiatric_days=mia.number_opt(3),
            drg_amount_cents=mia.money_opt(4),
            remark_codes=remarks,
        )


def _parse_moa(moa: Segment) -> OutpatientAdjudication:
    with model_errors(moa):
        return OutpatientAdjudication(
            reimbursement_rate=moa.number_opt(1),
            hcpcs_payable_cents=moa.money_opt(2),
            remark_codes=[moa.get(n) for n in range(3, 8) if moa.get(n)],
            esrd_payment_cents=moa.money_opt(8),
            nonpayable_professional_cents=moa.money_opt(9),
        )


def _parse_line(block: Block) -> RemittanceLine:
    svc = block.one("svc")
    dates = {s.get(1): s for s in block.all("dates")}
    if len(dates) != len(block.all("dates")):
        raise svc.error(X12ValueError, "service DTM repeated")
    allowed = [a for a in block.all("amt") if a.get(1) == "B6"]
    if len(allowed) > 1:
        raise allowed[1].error(X12ValueError, "AMT*B6 repeated")
    control = block.opt("control")
    original = read_procedure(svc, 6, _SVC_QUALIFIERS) if svc.get(6) else None
    adjustments: list[Adjustment] = [a for cas in block.all("cas") for a in read_cas(cas)]
    with model_errors(svc):
        return RemittanceLine(
            procedure=read_procedure(svc, 1, (*_SVC_QUALIFIERS, "N6", "UI")),
            charge_cents=svc.money(2),
            paid_cents=svc.money(3),
            revenue_code=svc.optional(4),
            units_paid=svc.number_opt(5),
            original_procedure=original,
            original_units=svc.number_opt(7),
            service_date=dates["472"].date(2) if "472" in dates else None,
            service_start=dates["150"].date(2) if "150" in dates else None,
            service_end=dates["151"].date(2) if "151" in dates else None,
            adjustments=adjustments,
            line_control_number=control.require(2) if control else None,
            allowed_cents=allowed[0].money(2) if allowed else None,
            remark_codes=[lq.require(2) for lq in block.all("lq") if lq.get(1) == "HE"],
        )


def _parse_plb(plb: Segment) -> list[ProviderAdjustment]:
    provider, fiscal = plb.require(1), plb.date(2)
    if len(plb.elements) > 14:
        raise plb.error(X12ValueError, "PLB holds at most six adjustments")
    found: list[ProviderAdjustment] = []
    for first in range(3, 15, 2):
        if not plb.get(first):
            if plb.get(first + 1):
                raise plb.error(X12ValueError, f"{plb.ref(first)} adjustment reason missing")
            continue
        parts = plb.components(first)
        if len(parts) > 2 or not parts[0]:
            raise plb.error(X12ValueError, f"{plb.ref(first)} must be reason[:reference]")
        amount = plb.money(first + 1)
        with model_errors(plb):
            found.append(
                ProviderAdjustment(
                    provider_id=provider,
                    fiscal_period_date=fiscal,
                    reason=parts[0],
                    reference=parts[1] if len(parts) == 2 and parts[1] else None,
                    amount_cents=amount,
                )
            )
    if not found:
        raise plb.error(X12ValueError, "PLB without any adjustment")
    return found

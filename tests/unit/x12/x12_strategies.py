"""Hypothesis strategies producing valid X12 models (shared by the x12 tests)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from hypothesis import strategies as st
from rcm_x12 import (
    AcknowledgmentDocument,
    Address,
    Adjustment,
    BillingProvider,
    ClaimAcknowledgment,
    ClaimAcknowledgmentDocument,
    ClaimAcknowledgmentEntry,
    ClaimBatch,
    ClaimSubmission,
    Contact,
    Coverage,
    CrossoverCarrier,
    Delimiters,
    EftDetails,
    ElementIssue,
    EligibilityDependent,
    EligibilityInquiry,
    EligibilityInquiryDocument,
    EligibilityProvider,
    EligibilityResponse,
    EligibilityResponseDocument,
    EligibilitySubscriber,
    Envelope,
    ImplementationAcknowledgment,
    InpatientAdjudication,
    LineAdjudication,
    OutpatientAdjudication,
    Patient,
    Payer,
    PriorPayer,
    Procedure,
    ProfessionalClaim,
    ProviderAdjustment,
    Receiver,
    Rejection,
    Remittance,
    RemittanceClaim,
    RemittanceDocument,
    RemittanceLine,
    RemittanceParty,
    RemittancePayee,
    RemittancePayer,
    RenderingProvider,
    SegmentIssue,
    ServiceLine,
    StatusCode,
    Submitter,
    Subscriber,
    TransactionSetResponse,
)

# Valid check digits; the NPI checksum is enforced by the models.
NPIS = ["1234567893", "1987654328", "1456789019", "1765432103", "1333444556", "1600000008"]
# Codes pyx12 checks against its own lists.
STATES = ["MA", "NY", "CT", "FL", "CA", "TX"]
REMARKS = ["MA01", "MA18", "MA130", "N130", "M15", "N20"]
CARCS = ["1", "2", "3", "16", "23", "45", "50", "97", "197", "253", "B7"]
PLB_REASONS = ["WO", "L6", "72", "FB", "CS"]
ICD10 = ["J069", "R05", "Z23", "M545", "I10", "E119", "S8290XA", "F411", "K219", "N390"]
CLAIM_STATUS_CODES = ["19", "20", "21", "33", "35", "116", "145", "164", "454", "562"]
POS = ["11", "02", "10", "21", "22", "23", "81"]

DELIMITER_SETS = [
    Delimiters(),
    Delimiters(element="|", repetition="!", component=">", segment="~"),
    Delimiters(element="*", repetition="^", component=">", segment="'"),
]

_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def words(
    max_size: int = 20, alphabet: str = _ALNUM + " -", min_size: int = 1
) -> st.SearchStrategy[str]:
    """Printable text without leading/trailing blanks and without any delimiter."""
    core = st.text(alphabet=alphabet, min_size=min_size, max_size=max_size)
    return core.map(str.strip).filter(lambda w: len(w) >= min_size)


def idents(max_size: int = 12) -> st.SearchStrategy[str]:
    return st.text(alphabet=_ALNUM, min_size=2, max_size=max_size)


def control_numbers() -> st.SearchStrategy[str]:
    return st.integers(1, 999_999_999).map(lambda n: f"{n:04d}")


def dates() -> st.SearchStrategy[date]:
    return st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31))


def stamps() -> st.SearchStrategy[datetime]:
    # X12 stamps carry no zone, so the models take naive datetimes.
    low, high = datetime(2000, 1, 1), datetime(2099, 12, 31)  # noqa: DTZ001
    return st.datetimes(min_value=low, max_value=high)


def cents(low: int = 0, high: int = 5_000_00) -> st.SearchStrategy[int]:
    return st.integers(low, high)


def quantities() -> st.SearchStrategy[Decimal]:
    return st.decimals(min_value=Decimal("0.001"), max_value=Decimal(999), places=3)


def envelopes(delimiters: list[Delimiters] | None = None) -> st.SearchStrategy[Envelope]:
    return st.builds(
        Envelope,
        sender_id=idents(15),
        receiver_id=idents(15),
        control_number=st.integers(1, 999_999_999),
        group_control_number=st.integers(1, 999_999_000),
        created=stamps(),
        usage=st.sampled_from(["T", "P"]),
        acknowledgment_requested=st.booleans(),
        delimiters=st.sampled_from(delimiters or DELIMITER_SETS),
    )


def addresses() -> st.SearchStrategy[Address]:
    return st.builds(
        Address,
        line1=words(30),
        line2=st.none() | words(20),
        city=words(20, min_size=2),
        state=st.sampled_from(STATES),
        postal_code=st.from_regex(r"\A[0-9]{5}([0-9]{4})?\Z"),
    )


def procedures(qualifiers: tuple[str, ...] = ("HC",)) -> st.SearchStrategy[Procedure]:
    return st.builds(
        Procedure,
        qualifier=st.sampled_from(qualifiers),
        code=st.from_regex(r"\A[0-9]{5}\Z") | st.from_regex(r"\A[A-Z][0-9]{4}\Z"),
        modifiers=st.lists(st.from_regex(r"\A[A-Z0-9]{2}\Z"), max_size=4),
    )


def adjustments(max_size: int = 4) -> st.SearchStrategy[list[Adjustment]]:
    return st.lists(
        st.builds(
            Adjustment,
            group=st.sampled_from(["CO", "PR", "OA", "PI"]),
            reason=st.sampled_from(CARCS),
            amount_cents=cents(-50_000, 200_000),
            quantity=st.none() | quantities(),
        ),
        max_size=max_size,
    )


# --- 835 ---------------------------------------------------------------------------------


@st.composite
def remittance_lines(draw: st.DrawFn) -> RemittanceLine:
    charge = draw(cents(-100_000, 500_000))
    adjusted = draw(adjustments())
    dated = draw(st.sampled_from(["single", "period", "none"]))
    service_date = draw(dates()) if dated == "single" else None
    start = draw(dates()) if dated == "period" else None
    return RemittanceLine(
        procedure=draw(procedures(("HC", "AD", "ER", "IV", "N4", "NU"))),
        charge_cents=charge,
        paid_cents=charge - sum(a.amount_cents for a in adjusted),
        revenue_code=draw(st.none() | st.from_regex(r"\A0[0-9]{3}\Z")),
        units_paid=draw(st.none() | quantities()),
        original_procedure=draw(st.none() | procedures()),
        original_units=draw(st.none() | quantities()),
        service_date=service_date,
        service_start=start,
        service_end=start,
        adjustments=adjusted,
        line_control_number=draw(st.none() | idents()),
        allowed_cents=draw(st.none() | cents()),
        remark_codes=draw(st.lists(st.sampled_from(REMARKS), max_size=2)),
    )


def parties(qualifiers: tuple[str, ...] = ("MI", "HN", "II")) -> st.SearchStrategy[RemittanceParty]:
    return st.builds(
        RemittanceParty,
        entity_type=st.just("1"),
        last_name=words(20),
        first_name=st.none() | words(10),
        middle_name=st.none() | words(1, _ALNUM),
        id_qualifier=st.sampled_from(qualifiers),
        identifier=idents(),
    )


@st.composite
def remittance_claims(draw: st.DrawFn) -> RemittanceClaim:
    lines = draw(st.lists(remittance_lines(), max_size=3))
    claim_adjustments = draw(adjustments(3))
    charge = draw(cents(-200_000, 900_000))
    total_adjusted = sum(a.amount_cents for a in claim_adjustments) + sum(
        a.amount_cents for line in lines for a in line.adjustments
    )
    start = draw(st.none() | dates())
    return RemittanceClaim(
        patient_control_number=draw(idents(20)),
        status=draw(st.sampled_from(["1", "2", "3", "4", "19", "20", "22"])),
        charge_cents=charge,
        paid_cents=charge - total_adjusted,
        patient_responsibility_cents=draw(st.none() | cents()),
        filing_indicator=draw(
            st.sampled_from(["12", "13", "MB", "MC", "CI", "HM"]).filter(lambda c: c != "CI")
        ),
        payer_claim_control_number=draw(idents(20)),
        facility_type_code=draw(st.none() | st.sampled_from(POS)),
        frequency_code=draw(st.none() | st.sampled_from(["1", "7", "8"])),
        adjustments=claim_adjustments,
        patient=draw(parties()),
        insured=draw(st.none() | parties(("MI",))),
        rendering_provider=draw(
            st.none()
            | st.builds(
                RemittanceParty,
                entity_type=st.just("1"),
                last_name=words(20),
                id_qualifier=st.just("XX"),
                identifier=st.sampled_from(NPIS),
            )
        ),
        crossover_carrier=draw(
            st.none() | st.builds(CrossoverCarrier, name=words(30), identifier=idents())
        ),
        inpatient=draw(
            st.none()
            | st.builds(
                InpatientAdjudication,
                covered_days=st.decimals(min_value=0, max_value=400, places=0),
                pps_operating_outlier_cents=st.none() | cents(),
                lifetime_psychiatric_days=st.none() | st.decimals(0, 190, places=0),
                drg_amount_cents=st.none() | cents(),
                remark_codes=st.lists(st.sampled_from(REMARKS), max_size=5),
            )
        ),
        outpatient=draw(
            st.none()
            | st.builds(
                OutpatientAdjudication,
                reimbursement_rate=st.none() | st.decimals(min_value=0, max_value=1, places=2),
                hcpcs_payable_cents=st.none() | cents(),
                remark_codes=st.lists(st.sampled_from(REMARKS), min_size=1, max_size=5),
            )
        ),
        statement_start=start,
        statement_end=start,
        lines=lines,
    )


@st.composite
def remittances(draw: st.DrawFn, control_number: str = "0001") -> Remittance:
    claims = draw(st.lists(remittance_claims(), max_size=3))
    # One provider and fiscal date, at most six: a single PLB segment, because pyx12
    # wrongly refuses a second PLB ("Loop FOOTER exceeded max count").
    provider_adjustments = draw(
        st.lists(
            st.builds(
                ProviderAdjustment,
                provider_id=st.just(NPIS[0]),
                fiscal_period_date=st.just(date(2026, 12, 31)),
                reason=st.sampled_from(PLB_REASONS),
                reference=st.none() | idents(),
                amount_cents=cents(-50_000, 50_000),
            ),
            max_size=5,
        )
    )
    total = sum(c.paid_cents for c in claims) - sum(p.amount_cents for p in provider_adjustments)
    if total < 0:  # a payment cannot be negative: carry the rest as a provider adjustment
        provider_adjustments.append(
            ProviderAdjustment(
                provider_id=NPIS[0],
                fiscal_period_date=date(2026, 12, 31),
                reason="FB",
                amount_cents=total,
            )
        )
        total = 0
    method = draw(st.sampled_from(["CHK", "ACH", "NON"]))
    eft = None
    if method == "ACH":
        eft = EftDetails(
            sender_dfi_id="011000015",
            sender_account="123456789",
            originating_company_id="1512345678",
            receiver_dfi_id="021000021",
            receiver_account="987654321",
        )
    return Remittance(
        control_number=control_number,
        handling="I" if total else "H",
        payment_cents=total,
        payment_method=method,
        eft=eft,
        payment_date=draw(dates()),
        trace_number=draw(idents(20)),
        payer_trace_id="1512345678",
        production_date=draw(st.none() | dates()),
        payer=RemittancePayer(
            name=draw(words(30)),
            identifier=draw(st.none() | idents()),
            address=draw(addresses()),
            technical_contact=Contact(name=draw(st.none() | words(20)), phone="8005550199"),
        ),
        payee=RemittancePayee(
            name=draw(words(30)),
            npi=draw(st.sampled_from(NPIS)),
            address=draw(st.none() | addresses()),
            tax_id=draw(st.none() | st.from_regex(r"\A[0-9]{9}\Z")),
        ),
        claims=claims,
        provider_adjustments=provider_adjustments,
    )


@st.composite
def remittance_documents(
    draw: st.DrawFn, delimiters: list[Delimiters] | None = None
) -> RemittanceDocument:
    count = draw(st.integers(1, 2))
    return RemittanceDocument(
        envelope=draw(envelopes(delimiters)),
        transactions=[draw(remittances(f"{n + 1:04d}")) for n in range(count)],
    )


# --- 837P --------------------------------------------------------------------------------

BILLING_PROVIDERS = [
    BillingProvider(
        name="GOOD CLINIC PC",
        npi="1234567893",
        tax_id="043214321",
        address=Address(line1="1 MAIN ST", city="BOSTON", state="MA", postal_code="021101234"),
        taxonomy="207Q00000X",
    ),
    BillingProvider(
        name="NORTH CLINIC LLC",
        npi="1456789019",
        tax_id="045556666",
        address=Address(line1="4 NORTH AVE", city="LOWELL", state="MA", postal_code="018521111"),
    ),
]


def rendering_providers() -> st.SearchStrategy[RenderingProvider]:
    return st.builds(
        RenderingProvider,
        last_name=words(20),
        first_name=st.none() | words(10),
        npi=st.sampled_from(NPIS),
        taxonomy=st.none() | st.just("207Q00000X"),
    )


@st.composite
def prior_payers(draw: st.DrawFn) -> PriorPayer:
    return PriorPayer(
        payer_responsibility="P",
        group_number=draw(st.none() | idents()),
        filing_indicator=draw(st.none() | st.sampled_from(["CI", "MB", "12"])),
        adjustments=draw(adjustments(3)),
        paid_cents=draw(st.none() | cents()),
        non_covered_cents=draw(st.none() | cents()),
        remaining_patient_liability_cents=draw(st.none() | cents()),
        subscriber_last_name=draw(words(20)),
        subscriber_first_name=draw(st.none() | words(10)),
        subscriber_member_id=draw(idents()),
        payer_name=draw(words(30)),
        payer_id="PRIOR1",
        adjudication_date=draw(st.none() | dates()),
        payer_claim_control_number=draw(st.none() | idents()),
    )


@st.composite
def service_lines(draw: st.DrawFn, diagnoses: int, secondary: bool) -> ServiceLine:
    start = draw(dates())
    pointers = draw(
        st.lists(st.integers(1, diagnoses), min_size=1, max_size=min(4, diagnoses), unique=True)
    )
    adjudications = []
    if secondary and draw(st.booleans()):
        adjudications.append(
            LineAdjudication(
                payer_id="PRIOR1",
                paid_cents=draw(cents()),
                procedure=draw(procedures()),
                paid_units=draw(quantities()),
                adjustments=draw(adjustments(3)),
                adjudication_date=draw(dates()),
                remaining_patient_liability_cents=draw(st.none() | cents()),
            )
        )
    return ServiceLine(
        procedure=draw(procedures(("HC",))),
        charge_cents=draw(cents(0, 300_000)),
        units=draw(quantities()),
        place_of_service=draw(st.none() | st.sampled_from(POS)),
        diagnosis_pointers=pointers,
        service_date=start,
        service_date_end=draw(st.none() | st.just(start)),
        line_control_number=draw(st.none() | idents()),
        rendering_provider=draw(st.none() | rendering_providers()),
        adjudications=adjudications,
    )


@st.composite
def professional_claims(draw: st.DrawFn) -> ProfessionalClaim:
    diagnoses = draw(st.lists(st.sampled_from(ICD10), min_size=1, max_size=5, unique=True))
    secondary = draw(st.booleans())
    lines = draw(st.lists(service_lines(len(diagnoses), secondary), min_size=1, max_size=3))
    frequency = draw(st.sampled_from(["1", "7", "8"]))
    dependent = draw(st.booleans())
    # A dependent's subscriber may be sent without DMG; the patient never is.
    born = draw(st.none() | dates()) if dependent else draw(dates())
    subscriber = Subscriber(
        member_id=draw(st.sampled_from(["M1", "M2"])),
        last_name=draw(st.sampled_from(["DOE", "ROE"])),
        first_name=draw(st.none() | st.just("JANE")),
        birth_date=born,
        gender=None if born is None else draw(st.sampled_from(["F", "M", "U"])),
        address=draw(st.none() | addresses()),
        relationship=None if dependent else "18",
        payer_responsibility="S" if secondary else "P",
        group_number=draw(st.none() | idents()),
        filing_indicator=draw(st.sampled_from(["CI", "MB", "12", "BL"])),
    )
    patient = None
    if dependent:
        patient = Patient(
            relationship=draw(st.sampled_from(["01", "19", "20", "21", "53", "G8"])),
            last_name=draw(st.sampled_from(["DOE", "ROE"])),
            first_name=draw(st.none() | st.sampled_from(["LUCIA", "TEO"])),
            middle_name=draw(st.none() | st.just("Q")),
            address=draw(addresses()),
            birth_date=draw(dates()),
            gender=draw(st.sampled_from(["F", "M", "U"])),
        )
    return ProfessionalClaim(
        billing_provider=draw(st.sampled_from(BILLING_PROVIDERS)),
        subscriber=subscriber,
        patient=patient,
        payer=Payer(name="ACME HEALTH", payer_id="ACME01", address=draw(st.none() | addresses())),
        patient_control_number=draw(idents(20)),
        total_charge_cents=sum(line.charge_cents for line in lines),
        place_of_service=draw(st.sampled_from(POS)),
        frequency_code=frequency,
        payer_claim_control_number=draw(idents()) if frequency != "1" else None,
        prior_authorization=draw(st.none() | idents()),
        diagnoses=diagnoses,
        rendering_provider=draw(st.none() | rendering_providers()),
        prior_payers=[draw(prior_payers())] if secondary else [],
        lines=lines,
    )


@st.composite
def claim_batches(draw: st.DrawFn, delimiters: list[Delimiters] | None = None) -> ClaimBatch:
    count = draw(st.integers(1, 2))
    transactions = [
        ClaimSubmission(
            control_number=f"{n + 1:04d}",
            batch_id=draw(idents()),
            created=draw(stamps()),
            purpose=draw(st.sampled_from(["00", "18"])),
            submitter=Submitter(
                name="GOOD CLINIC PC",
                identifier="GOODCLINIC",
                contact=Contact(name=draw(st.none() | words(10)), phone="6175550123"),
            ),
            receiver=Receiver(name="ACME HEALTH", identifier="ACME01"),
            claims=draw(st.lists(professional_claims(), min_size=1, max_size=3)),
        )
        for n in range(count)
    ]
    return ClaimBatch(envelope=draw(envelopes(delimiters)), transactions=transactions)


# --- 999 ---------------------------------------------------------------------------------


def set_responses() -> st.SearchStrategy[TransactionSetResponse]:
    issues = st.lists(
        st.builds(
            SegmentIssue,
            segment_id=st.sampled_from(["NM1", "CLM", "SV1", "DTP", "HI"]),
            position=st.integers(1, 9999),
            loop_id=st.none() | st.sampled_from(["2300", "2400", "2010"]),
            error_code=st.none() | st.sampled_from(["1", "2", "3", "8", "I4"]),
            element_issues=st.lists(
                st.builds(
                    ElementIssue,
                    position=st.integers(1, 20),
                    component_position=st.none() | st.integers(1, 5),
                    data_element_reference=st.none() | st.integers(1, 1999),
                    error_code=st.sampled_from(["1", "2", "6", "7", "8", "I10"]),
                    bad_value=st.none() | idents(),
                ),
                max_size=2,
            ),
        ),
        max_size=2,
    )
    return st.builds(
        TransactionSetResponse,
        transaction_id=st.just("837"),
        control_number=control_numbers(),
        implementation_reference=st.none() | st.just("005010X222A1"),
        status=st.sampled_from(["A", "E", "R"]),
        segment_issues=issues,
        error_codes=st.lists(st.sampled_from(["1", "2", "5", "I5"]), max_size=3),
    )


@st.composite
def acknowledgment_documents(
    draw: st.DrawFn, delimiters: list[Delimiters] | None = None
) -> AcknowledgmentDocument:
    responses = draw(st.lists(set_responses(), max_size=3))
    accepted = sum(r.accepted for r in responses)
    ack = ImplementationAcknowledgment(
        control_number=draw(control_numbers()),
        functional_id="HC",
        group_control_number=draw(st.integers(1, 999_999_999)),
        version="005010X222A1",
        responses=responses,
        status=draw(st.sampled_from(["A", "E", "P", "R"])),
        included_count=len(responses),
        received_count=len(responses),
        accepted_count=accepted,
        error_codes=draw(st.lists(st.sampled_from(["1", "2", "5"]), max_size=2)),
    )
    return AcknowledgmentDocument(envelope=draw(envelopes(delimiters)), transactions=[ack])


# --- 277CA -------------------------------------------------------------------------------


@st.composite
def acknowledgment_entries(draw: st.DrawFn) -> ClaimAcknowledgmentEntry:
    accepted = draw(st.booleans())
    categories = ["A1", "A2"] if accepted else ["A3", "A6", "A7", "A8"]

    def status(entities: list[str]) -> st.SearchStrategy[StatusCode]:
        return st.builds(
            StatusCode,
            category=st.sampled_from(categories),
            code=st.sampled_from(CLAIM_STATUS_CODES),
            entity=st.none() | st.sampled_from(entities),
        )

    provider = draw(st.sampled_from(BILLING_PROVIDERS))
    start = draw(dates())
    return ClaimAcknowledgmentEntry(
        patient_control_number=draw(idents(20)),
        patient_last_name=draw(words(20)),
        patient_first_name=draw(st.none() | words(10)),
        patient_member_id=draw(idents()),
        billing_provider_name=provider.name,
        billing_provider_npi=provider.npi,
        status=draw(status(["PR", "85", "41", "IL", "QC"])),
        # pyx12 checks STC10/STC11 entities against a list without PR and 41.
        additional_statuses=draw(st.lists(status(["85", "IL", "QC", "82"]), max_size=3)),
        effective_date=draw(dates()),
        total_charge_cents=draw(cents()),
        payer_claim_control_number=draw(idents()) if accepted else None,
        service_date=start,
        service_date_end=draw(st.none() | st.just(start)),
        message=draw(st.none() | words(30)),
    )


@st.composite
def claim_acknowledgment_documents(
    draw: st.DrawFn, delimiters: list[Delimiters] | None = None
) -> ClaimAcknowledgmentDocument:
    ack = ClaimAcknowledgment(
        control_number=draw(control_numbers()),
        reference_id=draw(idents()),
        created=draw(stamps()),
        payer_name=draw(words(30)),
        payer_id=draw(idents()),
        receiver_name=draw(words(30)),
        receiver_id=draw(idents()),
        source_trace=draw(idents()),
        receipt_date=draw(dates()),
        process_date=draw(dates()),
        batch_trace=draw(idents()),
        claims=draw(st.lists(acknowledgment_entries(), min_size=1, max_size=4)),
    )
    return ClaimAcknowledgmentDocument(envelope=draw(envelopes(delimiters)), transactions=[ack])


# --- 270/271 -----------------------------------------------------------------------------


def _eligibility_common() -> dict[str, st.SearchStrategy[object]]:
    return {
        "control_number": control_numbers(),
        "reference_id": idents(),
        "created": stamps(),
        "payer_name": words(30),
        "payer_id": idents(),
        "provider": st.builds(
            EligibilityProvider,
            entity_type=st.sampled_from(["1", "2"]),
            last_name=words(30),
            npi=st.sampled_from(NPIS),
        ),
        "subscriber": st.builds(
            EligibilitySubscriber,
            member_id=idents(),
            last_name=words(20),
            first_name=st.none() | words(10),
            birth_date=dates(),
            gender=st.none() | st.sampled_from(["F", "M", "U"]),
        ),
        "dependent": st.none()
        | st.builds(
            EligibilityDependent,
            last_name=words(20),
            first_name=st.none() | words(10),
            birth_date=dates(),
            gender=st.none() | st.sampled_from(["F", "M", "U"]),
            relationship=st.none() | st.sampled_from(["01", "19", "34", "G8"]),
        ),
        "trace_number": idents(),
        "trace_originator": st.from_regex(r"\A9[0-9]{9}\Z"),
    }


def inquiry_documents() -> st.SearchStrategy[EligibilityInquiryDocument]:
    inquiry = st.builds(
        EligibilityInquiry,
        service_date=dates(),
        service_types=st.lists(
            st.sampled_from(["30", "98", "1", "33", "AL"]), min_size=1, max_size=3
        ),
        **_eligibility_common(),
    )
    return st.builds(
        EligibilityInquiryDocument,
        envelope=envelopes(),
        transactions=st.lists(
            inquiry, min_size=1, max_size=2, unique_by=lambda t: t.control_number
        ),
    )


def response_documents() -> st.SearchStrategy[EligibilityResponseDocument]:
    optional_cents = st.none() | cents()
    coverage = st.builds(
        Coverage,
        active=st.booleans(),
        plan_name=st.none() | words(30),
        insurance_type=st.none() | st.sampled_from(["PR", "HM", "MB", "C1"]),
        copay_cents=optional_cents,
        deductible_cents=optional_cents,
        deductible_remaining_cents=optional_cents,
        coinsurance_percent=st.none() | st.decimals(min_value=0, max_value=100, places=2),
        out_of_pocket_cents=optional_cents,
        out_of_pocket_remaining_cents=optional_cents,
    )
    rejection = st.builds(
        Rejection,
        level=st.sampled_from(["payer", "provider", "subscriber", "dependent"]),
        valid_request=st.booleans(),
        reason=st.sampled_from(["72", "73", "75", "42", "58"]),
        follow_up=st.sampled_from(["C", "N", "R"]),
    )
    outcome = st.one_of(
        st.fixed_dictionaries({"coverage": coverage}),
        st.fixed_dictionaries({"rejection": rejection}),
    )

    def response_of(common: dict[str, object], result: dict[str, Rejection]) -> EligibilityResponse:
        rejection = result.get("rejection")
        if rejection is not None and rejection.level == "dependent" and not common["dependent"]:
            result = {"rejection": rejection.model_copy(update={"level": "subscriber"})}
        return EligibilityResponse(**common, **result)  # type: ignore[arg-type]

    response = st.builds(
        response_of,
        st.fixed_dictionaries(_eligibility_common()),
        outcome,
    )
    return st.builds(
        EligibilityResponseDocument,
        envelope=envelopes(),
        transactions=st.lists(
            response, min_size=1, max_size=2, unique_by=lambda t: t.control_number
        ),
    )

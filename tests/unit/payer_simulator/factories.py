"""Claims, batches and inquiries for the payer simulator tests, built with rcm_x12."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from rcm_x12 import (
    Address,
    Adjustment,
    BillingProvider,
    ClaimBatch,
    ClaimSubmission,
    Contact,
    EligibilityInquiry,
    EligibilityInquiryDocument,
    EligibilityProvider,
    EligibilitySubscriber,
    Envelope,
    LineAdjudication,
    Payer,
    PriorPayer,
    Procedure,
    ProfessionalClaim,
    Receiver,
    RemittanceClaim,
    RenderingProvider,
    ServiceLine,
    Submitter,
    Subscriber,
    build_270,
    build_837p,
)
from rcm_x12.common import AdjustmentGroup

PARTNER = "RCMPLATFORM"
CLEARINGHOUSE = "RCMCLEARING"
SERVICE_DATE = date(2026, 3, 2)
STAMP = datetime(2026, 3, 2, 9, 30)  # noqa: DTZ001 - X12 stamps are naive
PAYER_NAMES = {
    "ACME01": "ACME HEALTH PLAN",
    "SUMMIT": "SUMMIT MUTUAL",
    "BLUEPK": "BLUE PEAK INSURANCE",
    "MERIDN": "MERIDIAN CARE",
}
BILLING = BillingProvider(
    name="RIVERSIDE FAMILY MEDICINE",
    npi="1100000003",
    tax_id="123456789",
    address=Address(line1="12 RIVER RD", city="BOSTON", state="MA", postal_code="02110"),
)
RENDERING = RenderingProvider(last_name="SMITH", first_name="ANNA", npi="1234567893")

Line = tuple[str, int] | tuple[str, int, Decimal]


def service_lines(claim_id: str, lines: Sequence[Line]) -> list[ServiceLine]:
    out = []
    for number, spec in enumerate(lines, start=1):
        code, charge = spec[0], spec[1]
        units = spec[2] if len(spec) == 3 else Decimal(1)
        out.append(
            ServiceLine(
                procedure=Procedure(code=code, modifiers=["25"] if code.startswith("992") else []),
                charge_cents=charge,
                units=units,
                diagnosis_pointers=[1],
                service_date=SERVICE_DATE,
                line_control_number=f"{claim_id}-L{number}",
            )
        )
    return out


def claim(
    claim_id: str,
    lines: Sequence[Line] = (("99213", 150_00), ("36415", 20_00)),
    *,
    payer_id: str = "ACME01",
    member_id: str = "AB123456789",
    frequency: Literal["1", "7", "8"] = "1",
    replaces: str | None = None,
    responsibility: Literal["P", "S", "T"] = "P",
    prior_payers: Sequence[PriorPayer] = (),
    line_adjudications: Sequence[Sequence[LineAdjudication]] = (),
) -> ProfessionalClaim:
    built = service_lines(claim_id, lines)
    if line_adjudications:
        built = [
            line.model_copy(update={"adjudications": list(adjudications)})
            for line, adjudications in zip(built, line_adjudications, strict=True)
        ]
    return ProfessionalClaim(
        billing_provider=BILLING,
        subscriber=Subscriber(
            member_id=member_id,
            last_name="DOE",
            first_name="JANE",
            birth_date=date(1980, 5, 1),
            gender="F",
            payer_responsibility=responsibility,
        ),
        payer=Payer(name=PAYER_NAMES.get(payer_id, "SOME PAYER"), payer_id=payer_id),
        patient_control_number=claim_id,
        total_charge_cents=sum(line.charge_cents for line in built),
        place_of_service="11",
        frequency_code=frequency,
        payer_claim_control_number=replaces,
        diagnoses=["J069"],
        rendering_provider=RENDERING,
        prior_payers=list(prior_payers),
        lines=built,
    )


def secondary_claim(
    claim_id: str,
    primary: ProfessionalClaim,
    primary_remit: RemittanceClaim,
    *,
    payer_id: str = "SUMMIT",
    member_id: str = "CD987654321",
    line_level: bool = True,
) -> ProfessionalClaim:
    """The claim to the secondary payer after the primary's 835 (2320 and maybe 2430)."""
    claim_adjustments = [a for line in primary_remit.lines for a in line.adjustments]
    claim_adjustments += primary_remit.adjustments
    prior = PriorPayer(
        payer_responsibility="P",
        adjustments=[] if line_level else _merged(claim_adjustments),
        paid_cents=primary_remit.paid_cents,
        subscriber_last_name="DOE",
        subscriber_first_name="JANE",
        subscriber_member_id=primary.subscriber.member_id,
        payer_name=primary.payer.name,
        payer_id=primary.payer.payer_id,
        adjudication_date=SERVICE_DATE,
        payer_claim_control_number=primary_remit.payer_claim_control_number,
    )
    adjudications: list[list[LineAdjudication]] = []
    if line_level:
        for line in primary_remit.lines:
            adjudications.append(
                [
                    LineAdjudication(
                        payer_id=primary.payer.payer_id,
                        paid_cents=line.paid_cents,
                        procedure=line.procedure,
                        paid_units=line.units_paid or Decimal(1),
                        adjustments=line.adjustments,
                        adjudication_date=SERVICE_DATE,
                    )
                ]
            )
    lines: list[Line] = [
        (line.procedure.code, line.charge_cents, line.units) for line in primary.lines
    ]
    return claim(
        claim_id,
        lines,
        payer_id=payer_id,
        member_id=member_id,
        responsibility="S",
        prior_payers=[prior],
        line_adjudications=adjudications,
    )


def _merged(adjustments: list[Adjustment]) -> list[Adjustment]:
    """The primary's adjustments summed per group and reason, as a 2320 CAS carries them."""
    totals: dict[tuple[AdjustmentGroup, str], int] = {}
    for a in adjustments:
        totals[(a.group, a.reason)] = totals.get((a.group, a.reason), 0) + a.amount_cents
    return [Adjustment(group=g, reason=r, amount_cents=c) for (g, r), c in totals.items()]


def batch_837(
    claims: Sequence[ProfessionalClaim],
    *,
    control_number: int = 1,
    sender: str = PARTNER,
) -> str:
    return build_837p(
        ClaimBatch(
            envelope=Envelope(
                sender_id=sender,
                receiver_id=CLEARINGHOUSE,
                control_number=control_number,
                group_control_number=control_number,
                created=STAMP,
            ),
            transactions=[
                ClaimSubmission(
                    control_number="0001",
                    batch_id=f"BATCH{control_number}",
                    created=STAMP,
                    submitter=Submitter(
                        name="RIVERSIDE FAMILY MEDICINE",
                        identifier=sender,
                        contact=Contact(name="BILLING", phone="6175550123"),
                    ),
                    receiver=Receiver(name="RCM CLEARINGHOUSE", identifier=CLEARINGHOUSE),
                    claims=list(claims),
                )
            ],
        )
    )


def inquiry_270(
    member_id: str, payer_id: str = "ACME01", *, control_number: int = 1, trace: str = "T1"
) -> str:
    return build_270(
        EligibilityInquiryDocument(
            envelope=Envelope(
                sender_id=PARTNER,
                receiver_id=CLEARINGHOUSE,
                control_number=control_number,
                group_control_number=control_number,
                created=STAMP,
            ),
            transactions=[
                EligibilityInquiry(
                    control_number="0001",
                    reference_id=f"ELIG{control_number}",
                    created=STAMP,
                    payer_name=PAYER_NAMES.get(payer_id, "SOME PAYER"),
                    payer_id=payer_id,
                    provider=EligibilityProvider(last_name="RIVERSIDE", npi="1100000003"),
                    subscriber=EligibilitySubscriber(
                        member_id=member_id,
                        last_name="DOE",
                        first_name="JANE",
                        birth_date=date(1980, 5, 1),
                        gender="F",
                    ),
                    trace_number=trace,
                    trace_originator="1123456789",
                    service_date=SERVICE_DATE,
                )
            ],
        )
    )

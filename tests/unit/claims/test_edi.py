"""The claims service's X12: what it builds passes pyx12; 999/277CA verdicts per claim."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from pydantic import ValidationError
from rcm_claims import domain, edi
from rcm_claims.app import Settings
from rcm_x12 import (
    AcknowledgmentDocument,
    ClaimAcknowledgment,
    ClaimAcknowledgmentDocument,
    ClaimAcknowledgmentEntry,
    ElementIssue,
    Envelope,
    ImplementationAcknowledgment,
    ProfessionalClaim,
    SegmentIssue,
    StatusCode,
    TransactionSetResponse,
    build_277ca,
    build_999,
    parse_277ca,
    parse_837p,
    parse_999,
    validate_with_pyx12,
)

from .builders import CONFIG, EPISODE, NOW, billed, paid_posting, submit

STAMP = datetime(2026, 3, 3, 9, 30)  # noqa: DTZ001 - X12 stamps carry no zone
ENVELOPE = Envelope(
    sender_id="RCMCLEARING",
    receiver_id="RCMPLATFORM",
    control_number=5,
    group_control_number=5,
    created=STAMP,
)


def partners() -> edi.Partners:
    return Settings().partners()


def claims_of_an_episode() -> list[ProfessionalClaim]:
    """The primary claim and, after its payment, the secondary with 2320/2430."""
    memory = billed()
    submit(memory)
    memory.apply(domain.payment_posted, paid_posting(f"{EPISODE}-1"), CONFIG, NOW)
    return [ProfessionalClaim.model_validate(c.x12) for c in memory.episode.claims]


def test_primary_and_secondary_claims_pass_pyx12_in_one_interchange() -> None:
    claims = claims_of_an_episode()
    text = edi.interchange(partners(), 123, NOW, [("0001", claims[0]), ("0002", claims[1])])
    ok, errors = validate_with_pyx12(text)
    assert ok, errors
    assert text.startswith("ISA*")
    assert "*000000123*" in text.splitlines()[0]
    batch = parse_837p(text)
    assert batch.envelope.group_control_number == 123
    assert [t.control_number for t in batch.transactions] == ["0001", "0002"]
    assert batch.transactions[1].claims[0] == claims[1]  # written and read back unchanged


def test_pyx12_refuses_what_the_models_let_through() -> None:
    (claim, _) = claims_of_an_episode()
    odd = claim.model_copy(update={"place_of_service": "00"})
    ok, errors = validate_with_pyx12(edi.interchange(partners(), 1, NOW, [("0001", odd)]))
    assert not ok
    assert any("Place of Service" in error for error in errors)


def test_x12_text_is_plain_upper_case_ascii_without_delimiters() -> None:
    assert edi.x12_text("José  O'Brien*Jr~", 60) == "JOSE O'BRIEN JR"
    assert edi.x12_text("Ångström:^x", 5) == "ANGST"


def test_aggregate_adjustments_are_totals_per_group_and_reason() -> None:
    from .builders import adjustment

    totals = edi._aggregate(
        [
            adjustment("PR", "1", 100, "L1"),
            adjustment("CO", "45", 50, "L1"),
            adjustment("PR", "1", 25, "L2"),
            adjustment("OA", "23", 0),
        ]
    )
    assert [(a.group, a.reason, a.amount_cents) for a in totals] == [
        ("CO", "45", 50),
        ("PR", "1", 125),
    ]


def ack(
    responses: list[TransactionSetResponse], status: str, group: int = 77
) -> ImplementationAcknowledgment:
    return ImplementationAcknowledgment(
        control_number="0001",
        functional_id="HC",
        group_control_number=group,
        version="005010X222A1",
        responses=responses,
        status=status,
        included_count=2,
        received_count=2,
        accepted_count=sum(r.accepted for r in responses),
    )


def test_999_verdicts_per_transaction_set() -> None:
    rejected = TransactionSetResponse(
        transaction_id="837",
        control_number="0002",
        status="R",
        segment_issues=[
            SegmentIssue(
                segment_id="NM1",
                position=15,
                loop_id="2010",
                error_code="8",
                element_issues=[ElementIssue(position=9, error_code="7", bad_value="SECRET")],
            )
        ],
        error_codes=["5"],
    )
    accepted = TransactionSetResponse(transaction_id="837", control_number="0001", status="A")
    text = build_999(
        AcknowledgmentDocument(envelope=ENVELOPE, transactions=[ack([accepted, rejected], "P")])
    )
    ((icn, parsed),) = edi.verdicts_999(parse_999(text))
    assert icn == 77
    assert edi.verdict_999(parsed, "0001").accepted
    no = edi.verdict_999(parsed, "0002")
    assert not no.accepted
    assert no.status_codes == ("IK502:5", "IK3:NM1:8", "IK4:9:7")
    assert "SECRET" not in no.message
    assert edi.verdict_999(parsed, "0003").accepted  # not named: the group was accepted


def test_a_rejected_group_rejects_every_set_it_does_not_name() -> None:
    verdict = edi.verdict_999(ack([], "R"), "0001")
    assert not verdict.accepted
    assert verdict.status_codes == ("AK901:R",)


def entry(pcn: str, category: str, code: str, pccn: str | None) -> ClaimAcknowledgmentEntry:
    return ClaimAcknowledgmentEntry(
        patient_control_number=pcn,
        patient_last_name="DOE",
        patient_member_id="AB123456789",
        billing_provider_name="RCM MEDICAL GROUP",
        billing_provider_npi="1100000003",
        status=StatusCode(category=category, code=code, entity="PR"),
        effective_date=date(2026, 3, 3),
        total_charge_cents=17500,
        payer_claim_control_number=pccn,
        service_date=date(2026, 3, 2),
        message=None if pccn else "SUBSCRIBER DOE AB123456789 NOT FOUND",
    )


def test_277ca_verdicts_by_claim_id() -> None:
    document = ClaimAcknowledgmentDocument(
        envelope=ENVELOPE,
        transactions=[
            ClaimAcknowledgment(
                control_number="0001",
                reference_id="ACK1",
                created=STAMP,
                payer_name="ACME HEALTH PLAN",
                payer_id="ACME01",
                receiver_name="RCM MEDICAL GROUP",
                receiver_id="RCMPLATFORM",
                source_trace="S1",
                receipt_date=date(2026, 3, 3),
                process_date=date(2026, 3, 3),
                batch_trace="000000077",
                claims=[
                    entry(f"{EPISODE}-1", "A1", "20", "ACME000001"),
                    entry(f"{EPISODE}-2", "A7", "164", None),
                ],
            )
        ],
    )
    verdicts = edi.verdicts_277ca(parse_277ca(build_277ca(document)))
    first, second = verdicts[f"{EPISODE}-1"], verdicts[f"{EPISODE}-2"]
    assert (first.accepted, first.payer_claim_control_number) == (True, "ACME000001")
    # The payer's free text (STC12) may quote the claim's data: only the codes are kept.
    assert (second.accepted, second.status_codes, second.message) == (
        False,
        ("A7:164",),
        "277CA rejected the claim (A7:164)",
    )


def test_default_settings_make_valid_parties() -> None:
    settings = Settings()
    config = settings.billing_config()
    assert config.provider.npi == "1100000003"
    assert config.provider.tax_id == "123456789"
    assert sorted(config.rendering) == ["1234567893", "1543219871", "1678901236", "1987654328"]
    assert settings.batch_interval_s == 1.0
    assert settings.http_port == 8004


def test_a_bad_npi_in_the_settings_fails_at_start() -> None:
    with pytest.raises(ValidationError, match="NPI"):
        Settings(billing_provider_npi="1100000004")

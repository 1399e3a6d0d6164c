"""Hand-written realistic files: parse each and check the values that matter."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from rcm_x12 import (
    Adjustment,
    Delimiters,
    X12BalanceError,
    check_835_balance,
    parse_270,
    parse_271,
    parse_277ca,
    parse_835,
    parse_837p,
    parse_999,
    parse_interchange,
)

CORPUS = Path(__file__).parents[2] / "corpus" / "x12"


def read(name: str) -> str:
    # newline="" keeps CRLF files as they are on disk
    with (CORPUS / name).open(newline="") as handle:
        return handle.read()


def test_835_two_groups_three_payers() -> None:
    text = read("835_multi_payer_two_groups.x12")
    interchange = parse_interchange(text)
    assert [g.control_number for g in interchange.groups] == [101, 102]
    assert [len(g.transactions) for g in interchange.groups] == [2, 1]

    document = parse_835(text)
    assert document.envelope.usage == "P"
    assert document.envelope.control_number == 4711
    acme, blue, sunshine = document.transactions
    assert (acme.payer.name, acme.payment_cents, acme.payment_method) == (
        "ACME HEALTH PLAN",
        227_40,
        "CHK",
    )
    assert acme.payer.technical_contact.email == "edi@acmehealth.example"
    assert acme.payee.npi == "1234567893"
    assert acme.payee.tax_id == "043214321"
    assert acme.production_date == date(2026, 1, 14)
    first = acme.claims[0]
    assert (first.charge_cents, first.paid_cents, first.patient_responsibility_cents) == (
        250_00,
        162_40,
        20_00,
    )
    assert first.rendering_provider is not None
    assert first.rendering_provider.identifier == "1987654328"
    assert [line.procedure.code for line in first.lines] == ["99214", "85025"]
    assert first.lines[0].procedure.modifiers == ["25"]
    assert first.lines[0].allowed_cents == 140_00
    assert first.lines[1].adjustments == [Adjustment(group="CO", reason="45", amount_cents=27_60)]
    assert first.lines[1].line_control_number == "PCN1001-2"
    assert blue.claims[0].status == "2"
    assert blue.claims[0].lines[0].adjustments[0].group == "OA"
    assert sunshine.payment_method == "ACH"
    assert sunshine.eft is not None
    assert sunshine.eft.receiver_account == "987654321"
    assert check_835_balance(document) == []


def test_835_denials_with_pipe_delimiters_and_no_newlines() -> None:
    text = read("835_denials_pipe_delimiters.x12")
    assert "\n" not in text
    interchange = parse_interchange(text)
    assert interchange.header.delimiters == Delimiters(
        element="|", repetition="!", component=">", segment="~"
    )
    remittance = parse_835(text).transactions[0]
    assert (remittance.handling, remittance.payment_method, remittance.payment_cents) == (
        "H",
        "NON",
        0,
    )
    assert all(c.is_denied and c.paid_cents == 0 for c in remittance.claims)
    reasons = [
        {(a.group, a.reason) for a in c.adjustments + [a for ln in c.lines for a in ln.adjustments]}
        for c in remittance.claims
    ]
    assert reasons == [{("CO", "16")}, {("CO", "97")}, {("CO", "197")}, {("CO", "50")}]
    assert remittance.claims[0].lines[0].remark_codes == ["MA130"]
    assert remittance.claims[1].lines[1].procedure.modifiers == ["GP"]
    assert remittance.claims[1].lines[1].units_paid == Decimal(2)
    assert remittance.claims[2].lines == []
    assert remittance.claims[3].outpatient is not None
    assert remittance.claims[3].outpatient.remark_codes == ["N130"]


def test_835_reversal_then_repost_with_crlf() -> None:
    text = read("835_reversal_repost_crlf.x12")
    assert "\r\n" in text
    remittance = parse_835(text).transactions[0]
    reversal, repost = remittance.claims
    assert reversal.is_reversal
    assert (reversal.charge_cents, reversal.paid_cents) == (-150_00, -100_00)
    assert reversal.lines[0].adjustments[0].amount_cents == -50_00
    assert reversal.lines[0].units_paid == Decimal(-1)
    assert reversal.patient_control_number == repost.patient_control_number == "PCN3001"
    assert (repost.status, repost.paid_cents) == ("1", 120_00)
    assert remittance.payment_cents == 20_00


def test_835_crossover_and_recoded_line() -> None:
    remittance = parse_835(read("835_crossover_recode.x12")).transactions[0]
    crossed, recoded = remittance.claims
    assert crossed.status == "19"
    assert crossed.crossover_carrier is not None
    assert (crossed.crossover_carrier.name, crossed.crossover_carrier.identifier) == (
        "MEDIGAP PLUS",
        "MGP01",
    )
    assert crossed.outpatient is not None
    assert crossed.outpatient.remark_codes == ["MA18"]
    assert (crossed.statement_start, crossed.statement_end) == (date(2026, 1, 10),) * 2
    line = recoded.lines[0]
    assert line.procedure.code == "99214"
    assert line.original_procedure is not None
    assert line.original_procedure.code == "99215"
    assert line.remark_codes == ["N20"]
    assert remittance.payment_cents == 230_00


def test_835_provider_adjustments_recoupment_interest_return() -> None:
    remittance = parse_835(read("835_plb_recoupment_interest.x12")).transactions[0]
    plb = [(p.reason, p.reference, p.amount_cents) for p in remittance.provider_adjustments]
    assert plb == [
        ("WO", "ACME2512010099", 150_00),
        ("L6", None, -12_34),
        ("72", "RET0001", 25_00),
    ]
    assert remittance.provider_adjustments[0].fiscal_period_date == date(2026, 12, 31)
    assert remittance.claims[0].paid_cents == 400_00
    assert remittance.payment_cents == 237_34  # 400 - (150 - 12.34 + 25)


def test_835_zero_payment_to_deductible_is_paid_not_denied() -> None:
    remittance = parse_835(read("835_zero_pay_deductible.x12")).transactions[0]
    claim = remittance.claims[0]
    assert claim.status == "1"
    assert not claim.is_denied
    assert claim.paid_cents == 0
    assert claim.patient_responsibility_cents == 180_00
    assert claim.lines[0].adjustments == [Adjustment(group="PR", reason="1", amount_cents=180_00)]
    assert remittance.payment_cents == 0


def test_835_unbalanced_file_is_refused_with_the_exact_place() -> None:
    with pytest.raises(X12BalanceError) as caught:
        parse_835(read("835_unbalanced_line.x12"))
    error = caught.value
    line, claim = error.imbalances
    assert (line.rule, line.transaction_control_number, line.patient_control_number) == (
        "line",
        "7001",
        "PCN7001",
    )
    assert (line.line_number, line.expected_cents, line.actual_cents) == (2, 70_00, 60_00)
    assert (claim.rule, claim.expected_cents, claim.actual_cents) == ("claim", 160_00, 150_00)
    assert (error.segment_id, error.position) == ("SVC", 17)
    message = str(error)
    assert "transaction 7001" in message
    assert "claim 'PCN7001' line 2" in message
    assert "expected 7000 cents, got 6000 cents" in message


def test_837p_batch_groups_two_providers_and_subscribers() -> None:
    batch = parse_837p(read("837p_batch_two_providers.x12"))
    assert batch.envelope.acknowledgment_requested
    submission = batch.transactions[0]
    assert submission.submitter.contact.email == "billing@goodclinic.example"
    claims = submission.claims
    assert [c.patient_control_number for c in claims] == [
        "PCN1001",
        "PCN1002",
        "PCN1005",
        "PCN1006",
    ]
    assert [c.billing_provider.npi for c in claims] == ["1234567893"] * 2 + ["1456789019"] * 2
    assert claims[0].billing_provider.taxonomy == "207Q00000X"
    assert claims[0].diagnoses == ["J069", "R05", "Z23"]
    assert claims[0].lines[0].diagnosis_pointers == [1, 2]
    assert claims[0].subscriber.address is not None
    assert claims[1].prior_authorization == "AUTH7788"
    assert claims[2].payer.payer_id == "15202"
    assert claims[2].subscriber.filing_indicator == "MB"
    assert claims[3].total_charge_cents == 75_50
    assert claims[3].lines[0].service_date_end == date(2026, 1, 9)
    assert all(c.frequency_code == "1" for c in claims)


def test_837p_secondary_claim_with_prior_payer_loops() -> None:
    claim = parse_837p(read("837p_secondary_cob_pipe.x12")).transactions[0].claims[0]
    assert claim.subscriber.payer_responsibility == "S"
    prior = claim.prior_payers[0]
    assert (prior.payer_id, prior.paid_cents) == ("ACME01", 38_00)
    assert prior.adjustments == [
        Adjustment(group="PR", reason="1", amount_cents=40_00, quantity=Decimal(1)),
        Adjustment(group="PR", reason="2", amount_cents=12_00),
    ]
    assert prior.adjudication_date == date(2026, 1, 15)
    assert prior.payer_claim_control_number == "ACME26011500003"
    assert prior.benefits_assignment == "Y"
    adjudication = claim.lines[0].adjudications[0]
    assert (adjudication.payer_id, adjudication.paid_cents) == ("ACME01", 38_00)
    assert [a.reason for a in adjudication.adjustments] == ["45", "1", "2"]
    assert adjudication.remaining_patient_liability_cents == 52_00


def test_837p_corrected_and_void_claims() -> None:
    corrected, void = parse_837p(read("837p_corrected_and_void.x12")).transactions[0].claims
    assert (corrected.frequency_code, corrected.payer_claim_control_number) == (
        "7",
        "ACME26011500001",
    )
    assert (void.frequency_code, void.payer_claim_control_number) == ("8", "ACME26012000012")
    assert corrected.total_charge_cents == 265_00


def test_999_accepted() -> None:
    ack = parse_999(read("999_accepted.x12")).transactions[0]
    assert ack.accepted
    assert (ack.functional_id, ack.group_control_number) == ("HC", 901)
    assert [r.status for r in ack.responses] == ["A"]


def test_999_rejected_with_error_codes() -> None:
    ack = parse_999(read("999_rejected.x12")).transactions[0]
    assert not ack.accepted
    assert (ack.received_count, ack.accepted_count) == (2, 0)
    first, second = ack.responses
    assert not first.accepted
    assert first.error_codes == ["5"]
    assert [(i.segment_id, i.position, i.loop_id) for i in first.segment_issues] == [
        ("NM1", 15, "2010"),
        ("DTP", 30, "2400"),
    ]
    assert first.segment_issues[1].element_issues[0].bad_value == "20261307"
    assert second.segment_issues[0].element_issues[0].error_code == "6"


def test_277ca_mixed_accept_and_reject() -> None:
    ack = parse_277ca(read("277ca_mixed.x12")).transactions[0]
    verdicts = [(c.patient_control_number, c.accepted, c.status.category) for c in ack.claims]
    assert verdicts == [
        ("PCN1001", True, "A2"),
        ("PCN1002", True, "A1"),
        ("PCN1005", False, "A7"),
        ("PCN1006", True, "A2"),
    ]
    rejected = ack.claims[2]
    assert (rejected.status.code, rejected.status.entity) == ("562", "85")
    assert rejected.additional_statuses[0].code == "21"
    assert rejected.message == "BILLING PROVIDER NPI NOT ON FILE"
    assert rejected.payer_claim_control_number is None
    assert ack.claims[0].payer_claim_control_number == "ACME26011300001"
    assert ack.claims[3].total_charge_cents == 75_50
    assert ack.batch_trace == "BATCH20260112A"


def test_270_two_inquiries() -> None:
    first, second = parse_270(read("270_inquiry.x12")).transactions
    assert first.subscriber.member_id == "ACM123456789"
    assert first.subscriber.birth_date == date(1980, 5, 1)
    assert first.service_types == ["30"]
    assert second.provider.entity_type == "1"
    assert second.service_types == ["30", "98"]


def test_271_active_coverage_picks_individual_in_network_service_30() -> None:
    response = parse_271(read("271_active.x12")).transactions[0]
    assert response.found
    coverage = response.coverage
    assert coverage is not None
    assert coverage.active
    assert coverage.plan_name == "GOLD PPO 1500"
    assert coverage.copay_cents == 25_00  # not the service-type-98 copay of 40
    assert (coverage.deductible_cents, coverage.deductible_remaining_cents) == (1500_00, 1200_00)
    assert coverage.coinsurance_percent == Decimal(20)
    assert (coverage.out_of_pocket_cents, coverage.out_of_pocket_remaining_cents) == (
        5000_00,
        4650_75,
    )
    assert response.trace_number == "EQ0001"


def test_271_inactive() -> None:
    response = parse_271(read("271_inactive_pipe.x12")).transactions[0]
    assert response.coverage is not None
    assert not response.coverage.active


def test_271_subscriber_not_found() -> None:
    response = parse_271(read("271_not_found.x12")).transactions[0]
    assert not response.found
    assert response.rejection is not None
    assert (response.rejection.reason, response.rejection.follow_up) == ("75", "C")
    assert response.rejection.level == "subscriber"

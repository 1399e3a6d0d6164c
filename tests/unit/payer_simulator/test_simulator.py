"""The simulator as a whole, without HTTP: what lands in the mailbox, and when."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import pytest
from rcm_payer_simulator import adjudication as rules
from rcm_payer_simulator.payers import PAYERS
from rcm_payer_simulator.simulator import Simulator
from rcm_x12 import (
    ClaimAcknowledgmentEntry,
    Coverage,
    ProfessionalClaim,
    Rejection,
    RemittanceClaim,
    RemittanceDocument,
    X12Error,
    check_835_balance,
    parse_271,
    parse_277ca,
    parse_835,
    parse_999,
    validate_with_pyx12,
)

from .factories import PARTNER, SERVICE_DATE, batch_837, claim, inquiry_270, secondary_claim

SEED = 20261125
NOW = datetime(2026, 3, 9, 14, 30, tzinfo=UTC)


def simulator(seed: int = SEED) -> Simulator:
    return Simulator(
        seed=seed, ack_delay_s=1, remit_delay_s=5, clock=lambda: NOW, first_control_number=500
    )


def first(predicate: Callable[[str], bool], template: str = "E{:012x}-1") -> str:
    return next(i for n in range(100_000) if predicate(i := template.format(n)))


def ordinary(claim_id: str) -> bool:
    """Any id: the payer decides by a claim's content, never by its id."""
    return bool(claim_id)


def active(member_id: str, payer_id: str = "ACME01") -> bool:
    """Covered on the date of service (not only active in the 271)."""
    return rules.covered_on(SEED, payer_id, member_id, SERVICE_DATE)


MEMBER = first(active, "AB{:09d}")


def texts(sim: Simulator, kind: str) -> list[str]:
    return [d.text for d in sim.mailbox.waiting(PARTNER, [kind])]


def acknowledgments(sim: Simulator) -> dict[str, ClaimAcknowledgmentEntry]:
    return {
        entry.patient_control_number: entry
        for text in texts(sim, "277CA")
        for t in parse_277ca(text).transactions
        for entry in t.claims
    }


def remittances(sim: Simulator) -> list[RemittanceDocument]:
    return [parse_835(text) for text in texts(sim, "835")]


def remitted(sim: Simulator) -> list[RemittanceClaim]:
    return [c for d in remittances(sim) for t in d.transactions for c in t.claims]


def run(
    sim: Simulator, *claims_in_batches: Sequence[ProfessionalClaim], start: float = 0.0
) -> None:
    """Each batch, its 277CA one second later, its 835 five seconds after that."""
    for offset, claims in enumerate(claims_in_batches):
        sim.receive_837(batch_837(claims, control_number=offset + 1), start + offset * 10)
        sim.tick(start + offset * 10 + 1)
        sim.tick(start + offset * 10 + 6)


# --- eligibility -------------------------------------------------------------------------


def test_271_answers_each_member_outcome() -> None:
    sim = simulator()
    not_found = first(lambda m: rules.member_status(SEED, "ACME01", m) == "not-found", "AB{:09d}")
    inactive = first(lambda m: rules.member_status(SEED, "ACME01", m) == "inactive", "AB{:09d}")
    answers = {
        member: parse_271(sim.answer_270(inquiry_270(member))).transactions[0]
        for member in (not_found, inactive, MEMBER)
    }
    assert answers[not_found].rejection == Rejection(level="subscriber", reason="75")
    assert answers[inactive].coverage == Coverage(active=False)
    coverage = answers[MEMBER].coverage
    plan = rules.member_benefits(SEED, PAYERS["ACME01"], MEMBER)
    assert coverage is not None
    assert coverage.active
    assert coverage.copay_cents == plan.copay_cents
    assert coverage.deductible_cents == plan.deductible_cents
    assert coverage.deductible_remaining_cents == plan.deductible_cents - plan.deductible_met_cents
    assert coverage.coinsurance_percent == plan.coinsurance_percent
    assert answers[MEMBER].trace_number == "T1"
    unknown = parse_271(sim.answer_270(inquiry_270(MEMBER, "NOPAYR"))).transactions[0]
    assert unknown.rejection is not None
    assert unknown.rejection.level == "payer"
    assert sim.stats.eligibility == {
        "not-found": 1,
        "inactive": 1,
        "active": 1,
        "unknown-payer": 1,
    }


def test_the_deductible_met_by_a_claim_shows_in_the_next_271() -> None:
    member = first(
        lambda m: (
            active(m)
            and rules.member_benefits(SEED, PAYERS["ACME01"], m)
            .starting_accumulators()
            .deductible_remaining_cents
            > 0
        ),
        "AB{:09d}",
    )
    sim = simulator()
    before = parse_271(sim.answer_270(inquiry_270(member))).transactions[0].coverage
    run(sim, [claim(first(ordinary), member_id=member)])
    after = parse_271(sim.answer_270(inquiry_270(member))).transactions[0].coverage
    assert before is not None
    assert after is not None
    assert before.deductible_remaining_cents is not None
    (paid,) = remitted(sim)
    deductible = sum(
        a.amount_cents for line in paid.lines for a in line.adjustments if a.reason == "1"
    )
    assert deductible > 0
    assert after.deductible_remaining_cents == before.deductible_remaining_cents - deductible


def test_a_broken_270_or_837_is_refused() -> None:
    sim = simulator()
    with pytest.raises(X12Error):
        sim.answer_270(inquiry_270(MEMBER).replace("EQ*30", "EQ"))
    with pytest.raises(X12Error):
        sim.receive_837(batch_837([claim("E1-1")]).replace("SV1*", "SVX*"), 0)
    assert len(sim.mailbox) == 0


# --- claims ------------------------------------------------------------------------------


def test_a_batch_gets_its_999_at_once_its_277ca_and_835_when_due() -> None:
    sim = simulator()
    ids = ["E000000000001-1", "E000000000002-1", "E000000000003-1"]
    # The second's member id cannot be one of the payer's; the third bills the first again.
    members = [MEMBER, "ZZ1234", MEMBER]
    sim.receive_837(
        batch_837([claim(i, member_id=m) for i, m in zip(ids, members, strict=True)]), 100.0
    )
    (ack,) = [parse_999(t) for t in texts(sim, "999")]
    assert ack.transactions[0].accepted
    sim.tick(100.5)
    assert texts(sim, "277CA") == []
    sim.tick(101.0)
    verdicts = acknowledgments(sim)
    assert [verdicts[i].accepted for i in ids] == [True, False, True]
    assert verdicts[ids[1]].payer_claim_control_number is None
    sim.tick(105.9)
    assert texts(sim, "835") == []
    sim.tick(106.0)
    (document,) = remittances(sim)
    assert check_835_balance(document) == []
    claims = {c.patient_control_number: c for c in document.transactions[0].claims}
    assert set(claims) == {ids[0], ids[2]}
    assert claims[ids[0]].status == "1"
    assert claims[ids[2]].status == "4"
    assert [a.reason for a in claims[ids[2]].adjustments] == ["18"]
    for i in (ids[0], ids[2]):
        assert claims[i].payer_claim_control_number == verdicts[i].payer_claim_control_number
    for kind in ("999", "277CA", "835"):
        ok, errors = validate_with_pyx12(texts(sim, kind)[0])
        assert ok, (kind, errors)
    stats = sim.stats.as_dict()
    assert (stats["claims_received"], stats["rejected"], stats["paid"]) == (3, 1, 1)
    assert stats["denied_by_carc"] == {"18": 1}
    assert stats["paid_cents"] == claims[ids[0]].paid_cents


def test_one_835_per_payer_with_every_claim_due() -> None:
    sim = simulator()
    acme_ids: list[str] = []
    for _ in range(3):
        acme_ids.append(first(lambda i: ordinary(i) and i not in acme_ids))
    acme = [claim(i, member_id=MEMBER) for i in acme_ids]
    summit_member = first(lambda m: active(m, "SUMMIT"), "CD{:09d}")
    summit = [claim(first(ordinary, "S{:012x}-1"), payer_id="SUMMIT", member_id=summit_member)]
    run(sim, [*acme, *summit])
    documents = remittances(sim)
    payer_ids = sorted(d.transactions[0].payer.identifier or "" for d in documents)
    assert payer_ids == ["ACME01", "SUMMIT"]
    by_payer = {d.transactions[0].payer.identifier: d.transactions[0].claims for d in documents}
    assert len(by_payer["ACME01"]) == 3
    assert len(by_payer["SUMMIT"]) == 1


def test_unknown_payers_members_and_originals_are_rejected() -> None:
    sim = simulator()
    not_found = first(lambda m: rules.member_status(SEED, "ACME01", m) == "not-found", "AB{:09d}")
    run(
        sim,
        [
            claim(first(ordinary), payer_id="NOPAYR", member_id=MEMBER),
            claim(first(ordinary, "F{:012x}-1"), member_id=not_found),
            claim("E9-2", member_id=MEMBER, frequency="7", replaces="AC000000000000"),
        ],
    )
    verdicts = acknowledgments(sim)
    assert [(v.status.category, v.status.code) for v in verdicts.values()] == [
        ("A3", "116"),
        ("A7", "164"),
        ("A7", "21"),
    ]
    ok, errors = validate_with_pyx12(texts(sim, "277CA")[0])
    assert ok, errors
    assert texts(sim, "835") == []


def test_a_corrected_claim_reverses_the_denial_in_the_same_835_and_is_paid() -> None:
    sim = simulator()
    member = first(lambda m: active(m, "SUMMIT"), "CD{:09d}")
    denied_id = "E000000000007-1"
    # Summit authorizes imaging first: the film without an authorization is denied.
    lines = [("99213", 150_00), ("73610", 95_00)]
    run(sim, [claim(denied_id, lines, payer_id="SUMMIT", member_id=member)])
    (denial,) = remitted(sim)
    assert (denial.status, [a.reason for a in denial.adjustments]) == ("4", ["197"])
    corrected_id = denied_id.replace("-1", "-2")
    corrected = claim(
        corrected_id,
        lines,
        payer_id="SUMMIT",
        member_id=member,
        frequency="7",
        replaces=denial.payer_claim_control_number,
    ).model_copy(update={"prior_authorization": "AUTH778812"})
    run(sim, [corrected], start=100)
    *_, document = remittances(sim)
    reversal, paid = document.transactions[0].claims
    assert (reversal.status, reversal.patient_control_number) == ("22", denied_id)
    assert reversal.payer_claim_control_number == denial.payer_claim_control_number
    assert reversal.charge_cents == -denial.charge_cents
    assert (paid.status, paid.patient_control_number, paid.frequency_code) == (
        "1",
        corrected_id,
        "7",
    )
    assert paid.payer_claim_control_number != denial.payer_claim_control_number
    assert check_835_balance(document) == []
    # The same PCCN cannot be replaced twice.
    again = corrected.model_copy(update={"patient_control_number": "E9-3"})
    run(sim, [again], start=200)
    assert not acknowledgments(sim)["E9-3"].accepted


def test_a_reversal_gives_the_member_the_deductible_back() -> None:
    member = first(
        lambda m: (
            active(m)
            and rules.member_benefits(SEED, PAYERS["ACME01"], m)
            .starting_accumulators()
            .deductible_remaining_cents
            >= 500_00
        ),
        "AB{:09d}",
    )
    sim = simulator()
    original_id = first(ordinary)
    run(sim, [claim(original_id, member_id=member)])
    (original,) = remitted(sim)
    replacement = claim(
        "E9-2", member_id=member, frequency="7", replaces=original.payer_claim_control_number
    )
    run(sim, [replacement], start=100)
    reversal, again = remittances(sim)[-1].transactions[0].claims
    assert reversal.paid_cents == -original.paid_cents
    # Same lines, same member, deductible restored first: the same money again.
    assert [line.adjustments for line in again.lines] == [
        line.adjustments for line in original.lines
    ]


def test_a_resent_batch_is_acknowledged_again_but_paid_once() -> None:
    sim = simulator()
    claims = [claim(first(ordinary), member_id=MEMBER)]
    run(sim, claims)
    run(sim, claims, start=100)
    first_ack, second_ack = texts(sim, "277CA")
    pccns = [
        parse_277ca(t).transactions[0].claims[0].payer_claim_control_number
        for t in (first_ack, second_ack)
    ]
    assert pccns[0] is not None
    assert pccns[0] == pccns[1]
    assert len(remitted(sim)) == 1
    assert sim.stats.duplicates == 1


def test_a_secondary_claim_pays_what_the_primary_left_to_the_patient() -> None:
    member = first(
        lambda m: (
            active(m) and rules.member_benefits(SEED, PAYERS["ACME01"], m).coinsurance_percent > 0
        ),
        "AB{:09d}",
    )
    secondary_member = first(lambda m: active(m, "SUMMIT"), "CD{:09d}")
    sim = simulator()
    primary = claim(first(ordinary), member_id=member)
    run(sim, [primary])
    (primary_paid,) = remitted(sim)
    second = secondary_claim(
        first(ordinary, "S{:012x}-1"), primary, primary_paid, member_id=secondary_member
    )
    run(sim, [second], start=100)
    document = remittances(sim)[-1]
    assert document.transactions[0].payer.identifier == "SUMMIT"
    (paid,) = document.transactions[0].claims
    assert paid.status == "2"
    pr = [a for line in primary_paid.lines for a in line.adjustments if a.group == "PR"]
    assert paid.paid_cents == sum(a.amount_cents for a in pr if a.reason in ("1", "2")) > 0
    assert check_835_balance(document) == []
    ok, errors = validate_with_pyx12(texts(sim, "835")[-1])
    assert ok, errors


def test_same_seed_same_documents() -> None:
    claims = [claim(f"E{n:012x}-1", member_id=f"AB{n:09d}") for n in range(40)]
    outputs = []
    for _ in range(2):
        sim = simulator()
        run(sim, claims)
        outputs.append([d.text for d in sim.mailbox.waiting(PARTNER)])
    assert outputs[0] == outputs[1]
    other = simulator(seed=SEED + 1)
    run(other, claims)
    assert [d.text for d in other.mailbox.waiting(PARTNER)] != outputs[0]


def test_an_unbalanced_835_is_logged_and_not_sent(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    honest = rules.adjudicate

    def off_by_a_cent(*args: object, **kwargs: object) -> rules.Adjudication:
        result = honest(*args, **kwargs)  # type: ignore[arg-type]
        wrong = result.claim.model_copy(update={"paid_cents": result.claim.paid_cents + 1})
        return rules.Adjudication(wrong, result.accumulators)

    monkeypatch.setattr(rules, "adjudicate", off_by_a_cent)
    sim = simulator()
    with caplog.at_level(logging.ERROR):
        run(sim, [claim(first(ordinary), member_id=MEMBER)])
    assert texts(sim, "835") == []
    assert sim.stats.unbalanced == 1
    assert "does not balance" in caplog.text


def test_mailbox_lists_oldest_first_by_kind_and_forgets_acknowledged() -> None:
    sim = simulator()
    run(sim, [claim(first(ordinary), member_id=MEMBER)])
    kinds = [d.kind for d in sim.mailbox.waiting(PARTNER)]
    assert kinds == ["999", "277CA", "835"]
    assert [d.kind for d in sim.mailbox.waiting(PARTNER, ["835", "999"])] == ["999", "835"]
    assert sim.mailbox.waiting("SOMEONEELSE") == []
    oldest = sim.mailbox.waiting(PARTNER)[0].id
    assert sim.mailbox.remove(PARTNER, oldest)
    assert not sim.mailbox.remove(PARTNER, oldest)
    assert sim.mailbox.get(PARTNER, oldest) is None
    assert len(sim.mailbox) == 2

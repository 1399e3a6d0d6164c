"""The payers deny by a claim's content and their own rules, never by its id."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from rcm_payer_simulator import adjudication as rules
from rcm_payer_simulator.payers import PAYERS
from rcm_payer_simulator.rules import PAYER_RULES
from rcm_payer_simulator.simulator import Simulator
from rcm_x12 import ProfessionalClaim, RemittanceClaim, check_835_balance, parse_835

from .factories import PARTNER, SERVICE_DATE, batch_837, claim

SEED = 20261125
RECEIVED = SERVICE_DATE + timedelta(days=7)


def covered(payer_id: str, template: str = "AB{:09d}") -> str:
    return next(
        m
        for n in range(100_000)
        if rules.covered_on(SEED, payer_id, m := template.format(n), SERVICE_DATE)
    )


def decide(submitted: ProfessionalClaim, received: date = RECEIVED) -> str | None:
    denial = rules.claim_denial(SEED, submitted, PAYERS[submitted.payer.payer_id], received, False)
    return None if denial is None else denial.reason


def with_modifiers(
    submitted: ProfessionalClaim, code: str, modifiers: list[str]
) -> ProfessionalClaim:
    lines = [
        line.model_copy(
            update={"procedure": line.procedure.model_copy(update={"modifiers": modifiers})}
        )
        if line.procedure.code == code
        else line
        for line in submitted.lines
    ]
    return submitted.model_copy(update={"lines": lines})


STRAPPING_VISIT = [("99203", 175_00), ("29540", 50_00)]


def test_a_pair_on_the_edit_table_without_its_modifier_denies_the_column_2_line() -> None:
    acme = PAYERS["ACME01"]
    billed = with_modifiers(claim("E1-1", STRAPPING_VISIT), "99203", [])
    assert decide(billed) is None  # the claim itself is paid
    denied = rules.line_denials(billed, acme)
    assert {i: (d.reason, d.remark) for i, d in denied.items()} == {0: ("97", "N20")}
    result = rules.adjudicate(
        billed, acme, "AC1", rules.member_benefits(SEED, acme, "AB1"),
        rules.Accumulators(0, 0), denied,
    )  # fmt: skip
    visit, strapping = result.claim.lines
    assert (visit.paid_cents, visit.remark_codes) == (0, ["N20"])
    assert [(a.group, a.reason, a.amount_cents) for a in visit.adjustments] == [
        ("CO", "97", 175_00)
    ]
    assert strapping.paid_cents > 0
    assert result.claim.status == "1"


def test_the_allowed_modifier_or_another_day_lets_both_be_paid() -> None:
    acme = PAYERS["ACME01"]
    assert (
        rules.line_denials(with_modifiers(claim("E1-1", STRAPPING_VISIT), "99203", ["25"]), acme)
        == {}
    )
    billed = with_modifiers(claim("E1-1", STRAPPING_VISIT), "99203", [])
    later = billed.lines[1].model_copy(update={"service_date": SERVICE_DATE + timedelta(days=1)})
    assert (
        rules.line_denials(billed.model_copy(update={"lines": [billed.lines[0], later]}), acme)
        == {}
    )
    # Blue Peak has no strapping edit: its own table decides.
    assert rules.line_denials(billed, PAYERS["BLUEPK"]) == {}


def test_a_pair_never_paid_together_is_denied_whatever_the_modifier() -> None:
    billed = with_modifiers(claim("E1-1", [("96372", 45_00), ("G0008", 35_00)]), "G0008", ["59"])
    denied = rules.line_denials(billed, PAYERS["MERIDN"])
    assert {i: (d.reason, d.remark) for i, d in denied.items()} == {1: ("97", "M80")}
    assert rules.line_denials(billed, PAYERS["ACME01"]) == {}


def test_a_procedure_needing_authorization_is_denied_without_one() -> None:
    member = covered("SUMMIT")
    film = claim("E1-1", [("99213", 150_00), ("73610", 95_00)], payer_id="SUMMIT", member_id=member)
    assert decide(film) == "197"
    assert decide(film.model_copy(update={"prior_authorization": "A99887"})) is None
    # Acme pays the same film without an authorization.
    assert (
        decide(
            film.model_copy(
                update={
                    "payer": film.payer.model_copy(update={"payer_id": "ACME01"}),
                    "subscriber": film.subscriber.model_copy(
                        update={"member_id": covered("ACME01")}
                    ),
                }
            )
        )
        is None
    )


@pytest.mark.parametrize("payer_id", list(PAYER_RULES))
def test_a_claim_past_the_timely_filing_limit_is_denied(payer_id: str) -> None:
    submitted = claim("E1-1", payer_id=payer_id, member_id=covered(payer_id))
    limit = PAYER_RULES[payer_id].timely_filing_days
    assert decide(submitted, SERVICE_DATE + timedelta(days=limit)) is None
    assert decide(submitted, SERVICE_DATE + timedelta(days=limit + 1)) == "29"


def test_services_after_a_retroactive_termination_are_denied() -> None:
    member, terminated = next(
        (m, day)
        for n in range(100_000)
        if (day := rules.retro_termination(SEED, "ACME01", m := f"AB{n:09d}")) is not None
    )
    assert rules.member_status(SEED, "ACME01", member) == "active"  # what the 271 said
    submitted = claim("E1-1", member_id=member)
    on = terminated - timedelta(days=1)
    lines_on = [line.model_copy(update={"service_date": on}) for line in submitted.lines]
    lines_after = [line.model_copy(update={"service_date": terminated}) for line in submitted.lines]
    assert decide(submitted.model_copy(update={"lines": lines_on}), on) is None
    assert decide(submitted.model_copy(update={"lines": lines_after}), terminated) == "27"


def test_the_front_end_rejects_what_cannot_be_a_member_or_a_service_yet() -> None:
    assert rules.claim_rejection(claim("E1-1"), RECEIVED) is None
    assert (
        rules.claim_rejection(claim("E1-1", member_id="ZZ1234"), RECEIVED) == rules.INVALID_MEMBER
    )
    early = SERVICE_DATE - timedelta(days=1)
    assert rules.claim_rejection(claim("E1-1"), early) == rules.MISSING_INFORMATION


def test_the_same_services_billed_again_as_an_original_are_a_duplicate() -> None:
    now = datetime.combine(RECEIVED, datetime.min.time(), tzinfo=UTC)
    sim = Simulator(seed=SEED, ack_delay_s=1, remit_delay_s=5, clock=lambda: now)
    member = covered("ACME01")
    first = claim("E1-1", member_id=member)
    again = claim("E2-1", member_id=member)  # another claim id, the same content
    other_charge = claim("E3-1", [("99213", 150_00), ("36415", 25_00)], member_id=member)
    for n, submitted in enumerate((first, again, other_charge)):
        sim.receive_837(batch_837([submitted]), n * 10)
        sim.tick(n * 10 + 1)
        sim.tick(n * 10 + 6)
    remitted: dict[str, RemittanceClaim] = {}
    for document in sim.mailbox.waiting(PARTNER, ["835"]):
        parsed = parse_835(document.text)
        assert check_835_balance(parsed) == []
        remitted.update(
            {c.patient_control_number: c for t in parsed.transactions for c in t.claims}
        )
    assert remitted["E1-1"].status == "1"
    assert (remitted["E2-1"].status, [a.reason for a in remitted["E2-1"].adjustments]) == (
        "4",
        ["18"],
    )
    assert remitted["E3-1"].status == "1"
    assert sim.stats.as_dict()["denied_by_carc"] == {"18": 1}
    assert (
        rules.claim_content(first)
        == rules.claim_content(again)
        != rules.claim_content(other_charge)
    )

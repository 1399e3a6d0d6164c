"""A dependent's claim at the simulator: adjudicated under the subscriber's member id,
acknowledged and remitted naming the dependent as the patient."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

from rcm_payer_simulator import adjudication as rules
from rcm_payer_simulator.simulator import Simulator
from rcm_x12 import (
    Address,
    Patient,
    check_835_balance,
    parse_277ca,
    parse_835,
    validate_with_pyx12,
)

from .factories import PARTNER, SERVICE_DATE, batch_837, claim

SEED = 20261125
NOW = datetime(2026, 3, 9, 14, 30, tzinfo=UTC)
CHILD = Patient(
    relationship="19",
    last_name="DOE",
    first_name="TEO",
    address=Address(line1="12 ELM ST", city="BOSTON", state="MA", postal_code="02110"),
    birth_date=date(2016, 4, 2),
    gender="M",
)


def first(predicate: Callable[[str], bool], template: str) -> str:
    return next(i for n in range(100_000) if predicate(i := template.format(n)))


def test_a_childs_claim_is_paid_under_the_parents_member_id_and_names_the_child() -> None:
    sim = Simulator(seed=SEED, ack_delay_s=1, remit_delay_s=5, clock=lambda: NOW)
    member = first(lambda m: rules.covered_on(SEED, "ACME01", m, SERVICE_DATE), "AB{:09d}")
    claim_id = "E000000000001-1"
    parent = claim(claim_id, member_id=member)
    dependent = parent.model_copy(
        update={
            "subscriber": parent.subscriber.model_copy(update={"relationship": None}),
            "patient": CHILD,
        }
    )
    sim.receive_837(batch_837([dependent]), 100.0)
    sim.tick(101.0)
    sim.tick(106.0)
    (ack_text,) = [d.text for d in sim.mailbox.waiting(PARTNER, ["277CA"])]
    (entry,) = parse_277ca(ack_text).transactions[0].claims
    assert entry.accepted
    assert (entry.patient_first_name, entry.patient_member_id) == ("TEO", member)

    (remit_text,) = [d.text for d in sim.mailbox.waiting(PARTNER, ["835"])]
    ok, errors = validate_with_pyx12(remit_text)
    assert ok, errors
    document = parse_835(remit_text)
    assert check_835_balance(document) == []
    (paid,) = document.transactions[0].claims
    assert paid.status == "1"
    assert paid.charge_cents == dependent.total_charge_cents  # processed as primary (status 1)
    assert (paid.patient.first_name, paid.patient.identifier) == ("TEO", member)
    assert paid.insured is not None
    assert (paid.insured.first_name, paid.insured.identifier) == ("JANE", member)
    # Cost sharing ran against the subscriber's plan (their member's accumulators).
    assert list(sim._members) == [rules.member_key("ACME01", member)]

"""Issue 11: the simulator denies one line on demand (Simulator.deny with a line), the
rest of the claim paid by its rules, in a balanced 835."""

from __future__ import annotations

from rcm_x12 import check_835_balance

from tests.unit.payer_simulator.factories import batch_837, claim
from tests.unit.payer_simulator.test_simulator import MEMBER, remittances, remitted, simulator


def test_one_line_is_denied_for_coding_and_the_rest_paid() -> None:
    sim = simulator()
    claim_id = "E000000000011-1"
    sim.receive_837(batch_837([claim(claim_id, member_id=MEMBER)]), 0)
    sim.tick(1)
    assert not sim.deny(claim_id, "97", line_id=f"{claim_id}-L9")  # no such line
    assert sim.deny(claim_id, "97", line_id=f"{claim_id}-L2")
    (paid,) = remitted(sim)
    assert paid.status == "1"
    visit, venipuncture = paid.lines
    assert visit.allowed_cents
    assert "97" not in [a.reason for a in visit.adjustments]
    assert venipuncture.paid_cents == 0
    assert [(a.group, a.reason, a.amount_cents) for a in venipuncture.adjustments] == [
        ("CO", "97", 20_00)
    ]
    assert venipuncture.remark_codes == ["N20"]
    (document,) = remittances(sim)
    assert check_835_balance(document) == []
    sim.tick(100)  # nothing else is remitted for it
    assert len(remitted(sim)) == 1
    assert not sim.deny(claim_id, "97", line_id=f"{claim_id}-L2")  # answered already

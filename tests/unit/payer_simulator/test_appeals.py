"""The payer's answers to appeals: its rules, and the 835 that reprocesses an overturned
claim."""

from __future__ import annotations

import base64
import hashlib

import pytest
from rcm_payer_simulator.appeals import AppealRequest, SentDocument, decide
from rcm_payer_simulator.simulator import Simulator
from rcm_x12 import RemittanceClaim, check_835_balance

from .factories import batch_837, claim
from .test_simulator import MEMBER, remittances, remitted, simulator

TEXT = b"progress note for the visit"


def document(content: bytes = TEXT, digest: str | None = None) -> SentDocument:
    return SentDocument(
        document_id="DOC-1",
        sha256=digest or hashlib.sha256(content).hexdigest(),
        content_type="text/plain",
        content_base64=base64.b64encode(content).decode(),
    )


def appeal(**fields: object) -> AppealRequest:
    values: dict[str, object] = {
        "appeal_id": "AP-1",
        "claim_id": "E1-1",
        "payer_id": "ACME01",
        "reason": "see the records",
    }
    values.update(fields)
    return AppealRequest.model_validate(values)


@pytest.mark.parametrize(
    ("carc", "fields", "outcome"),
    [
        ("16", {"documents": [document()]}, "overturned"),
        ("16", {}, "upheld"),
        ("16", {"documents": [document(digest="0" * 64)]}, "upheld"),  # not what was sent
        ("50", {"documents": [document()]}, "overturned"),
        ("197", {"authorization_number": "AUTH-77"}, "overturned"),
        ("197", {"documents": [document()]}, "upheld"),
        ("29", {"timely_filing_proof": True, "documents": [document()]}, "overturned"),
        ("29", {"documents": [document()]}, "upheld"),
        ("27", {"documents": [document()], "authorization_number": "A1"}, "upheld"),
        ("18", {"documents": [document()]}, "upheld"),
        ("97", {"documents": [document()]}, "upheld"),
    ],
)
def test_the_payers_rules(carc: str, fields: dict[str, object], outcome: str) -> None:
    decision = decide(carc, appeal(**fields))
    assert decision.outcome == outcome
    assert decision.reason.startswith(f"CO-{carc}")


def denied(carc: str) -> tuple[Simulator, str, RemittanceClaim]:
    """A simulator that accepted a claim and denied it for `carc` (Simulator.deny): which
    claims its own rules deny is not what these tests are about."""
    for n in range(100):
        sim, claim_id = simulator(), f"E{n:012x}-1"
        sim.receive_837(batch_837([claim(claim_id, member_id=MEMBER)]), 0)
        sim.tick(1)  # its 277CA: accepted, unless the payer rejected it
        if sim.deny(claim_id, carc):
            (denial,) = remitted(sim)
            return sim, claim_id, denial
    raise AssertionError("no claim accepted")


def test_a_claim_is_denied_on_demand_once_and_only_while_it_waits_for_its_835() -> None:
    sim, claim_id, denial = denied("16")
    assert (denial.status, denial.paid_cents) == ("4", 0)
    assert [a.reason for a in denial.adjustments] == ["16"]
    (document,) = remittances(sim)
    assert check_835_balance(document) == []
    assert sim.deny(claim_id, "16") is False  # remitted already
    assert sim.deny("E999999999999-1", "16") is False  # never received
    sim.tick(1000)
    assert len(remitted(sim)) == 1  # not adjudicated again by the rules


def test_an_overturned_appeal_reverses_the_denial_and_pays_in_the_next_835() -> None:
    sim, denied_id, denial = denied("16")
    request = appeal(
        claim_id=denied_id,
        payer_claim_control_number=denial.payer_claim_control_number,
        documents=[document()],
    )
    answer = sim.appeal(request, 100)
    assert answer is not None
    assert answer.outcome == "overturned"
    assert sim.appeal(request, 101) == answer  # the same appeal: the same answer
    sim.tick(104)
    assert len(remittances(sim)) == 1  # reprocessed after the usual delay
    sim.tick(105)
    *_, reprocessed = remittances(sim)
    reversal, paid = reprocessed.transactions[0].claims
    assert (reversal.status, reversal.charge_cents) == ("22", -denial.charge_cents)
    assert paid.status == "1"
    assert paid.patient_control_number == denied_id
    assert all(a.reason != "16" for a in paid.adjustments)  # adjudicated, not denied
    assert check_835_balance(reprocessed) == []
    sim.tick(200)
    assert len(remittances(sim)) == 2  # paid once
    # Overturned already: another appeal finds no denied claim.
    assert (
        sim.appeal(appeal(appeal_id="AP-2", **request.model_dump(exclude={"appeal_id"})), 300)
        is None
    )


def test_an_upheld_appeal_sends_nothing_and_unknown_claims_are_not_found() -> None:
    sim, denied_id, denial = denied("197")
    request = appeal(
        claim_id=denied_id, payer_claim_control_number=denial.payer_claim_control_number
    )
    answer = sim.appeal(request, 100)
    assert answer is not None
    assert answer.outcome == "upheld"
    sim.tick(1000)
    assert len(remittances(sim)) == 1
    assert sim.appeal(appeal(appeal_id="AP-9", payer_claim_control_number="NOPE"), 100) is None
    other_payer = request.model_copy(update={"appeal_id": "AP-3", "payer_id": "SUMMIT"})
    assert sim.appeal(other_payer, 100) is None

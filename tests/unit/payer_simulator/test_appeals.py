"""The payer's answers to appeals: its rules, and the 835 that reprocesses an overturned
claim."""

from __future__ import annotations

import base64
import hashlib

import pytest
from rcm_payer_simulator.appeals import AppealRequest, SentDocument, decide
from rcm_x12 import ProfessionalClaim, check_835_balance

from .factories import claim
from .test_rules import covered
from .test_simulator import remittances, remitted, run, simulator

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


def film_without_authorization(claim_id: str = "E1-1") -> ProfessionalClaim:
    """An x-ray Summit pays only with a prior authorization, billed without one: CO-197."""
    member = covered("SUMMIT")
    lines = [("99213", 150_00), ("73610", 95_00)]
    return claim(claim_id, lines, payer_id="SUMMIT", member_id=member)


def test_an_overturned_appeal_reverses_the_denial_and_pays_in_the_next_835() -> None:
    sim = simulator()
    denied_id = "E1-1"
    run(sim, [film_without_authorization(denied_id)])
    (denial,) = remitted(sim)
    assert denial.status == "4"
    assert [a.reason for a in denial.adjustments] == ["197"]
    request = appeal(
        claim_id=denied_id,
        payer_id="SUMMIT",
        payer_claim_control_number=denial.payer_claim_control_number,
        authorization_number="AUTH-77",
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
    assert all(a.reason != "197" for a in paid.adjustments)  # adjudicated, not denied
    assert check_835_balance(reprocessed) == []
    sim.tick(200)
    assert len(remittances(sim)) == 2  # paid once
    # Overturned already: another appeal finds no denied claim.
    assert (
        sim.appeal(appeal(appeal_id="AP-2", **request.model_dump(exclude={"appeal_id"})), 300)
        is None
    )


def test_an_upheld_appeal_sends_nothing_and_unknown_claims_are_not_found() -> None:
    sim = simulator()
    denied_id = "E1-1"
    run(sim, [film_without_authorization(denied_id)])
    (denial,) = remitted(sim)
    request = appeal(
        claim_id=denied_id,
        payer_id="SUMMIT",
        payer_claim_control_number=denial.payer_claim_control_number,
        documents=[document()],  # no authorization number: the denial stands
    )
    answer = sim.appeal(request, 100)
    assert answer is not None
    assert answer.outcome == "upheld"
    sim.tick(1000)
    assert len(remittances(sim)) == 1
    assert sim.appeal(appeal(appeal_id="AP-9", payer_claim_control_number="NOPE"), 100) is None
    other_payer = request.model_copy(update={"appeal_id": "AP-3", "payer_id": "ACME01"})
    assert sim.appeal(other_payer, 100) is None

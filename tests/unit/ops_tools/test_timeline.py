"""Timeline summaries, PHI redaction and ordering, on records built in memory."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from rcm_contracts.base import Event
from rcm_contracts.claims import ClaimFrequency, ClaimSubmitted, SubmittedLine
from rcm_contracts.collections import EpisodeClosed, LedgerTotals
from rcm_contracts.eligibility import EligibilityFailed, EligibilityFailureReason
from rcm_contracts.registration import (
    Address,
    ClinicalDocumentation,
    Coverage,
    CoverageRank,
    CoverageUpdated,
    DocumentedDiagnosis,
    DocumentedProcedure,
    EncounterCompleted,
    PatientRegistered,
    Person,
    Sex,
)
from rcm_ops.timeline import (
    Message,
    dollars,
    episode_timeline,
    is_event_topic,
    redact,
    summarize,
    trace_id_of,
)
from rcm_shared.envelope import Envelope

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PERSON = Person(
    first_name="Zelda",
    last_name="Quackenbush",
    birth_date=date(1980, 2, 3),
    sex=Sex.FEMALE,
    address=Address(line1="1 Secret Lane", city="Springfield", state="IL", postal_code="62701"),
)


def message(event: Event, at: datetime, topic_offset: int = 0, **extra: str) -> Message:
    envelope = Envelope(data=event, source=f"rcm/{event.event_type.split('.')[1]}", time=at)
    headers = {**envelope.headers(), "traceparent": f"00-{TRACE}-00f067aa0ba902b7-01", **extra}
    return Message(
        topic=f"t1.{event.event_type}",
        partition=0,
        offset=topic_offset,
        key=event.key.encode(),
        value=envelope.value(),
        headers=headers,
        timestamp_ms=int(at.timestamp() * 1000),
    )


def registered(episode: str) -> PatientRegistered:
    return PatientRegistered(
        episode_id=episode, patient_id="P000000000001", patient=PERSON, guarantor_id="G1"
    )


def encounter(episode: str) -> EncounterCompleted:
    return EncounterCompleted(
        episode_id=episode,
        encounter_id="N000000000001",
        patient_id="P000000000001",
        date_of_service=date(2026, 11, 25),
        place_of_service="11",
        rendering_provider_npi="1234567893",
        documentation=ClinicalDocumentation(
            note="Zelda reports ankle pain after a fall",
            diagnoses=[
                DocumentedDiagnosis(description="sprain of left ankle", icd10_hint="S93402A")
            ],
            procedures=[DocumentedProcedure(description="office visit", code_hint="99213")],
        ),
    )


def submitted(episode: str) -> ClaimSubmitted:
    return ClaimSubmitted(
        episode_id=episode,
        claim_id=f"{episode}-1",
        payer_id="ACME01",
        rank=CoverageRank.PRIMARY,
        frequency=ClaimFrequency.ORIGINAL,
        total_charge_cents=123456,
        lines=[SubmittedLine(line_id="L1", procedure_code="99213", units=1, charge_cents=123456)],
        interchange_control_number="000000001",
        submitted_at=T0,
    )


def test_dollars_keep_every_cent() -> None:
    assert dollars(0) == "$0.00"
    assert dollars(5) == "$0.05"
    assert dollars(123456) == "$1,234.56"
    assert dollars(-500) == "-$5.00"
    assert dollars(None) == "?"
    assert dollars(True) == "?"


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_dollars_round_trip(cents: int) -> None:
    text = dollars(cents)
    back = int(text.replace("$", "").replace(",", "").replace(".", ""))
    assert back == cents


def test_summaries_show_ids_money_and_status() -> None:
    data = json.loads(submitted("E1").model_dump_json())
    assert summarize(ClaimSubmitted.event_type, data) == (
        "claim E1-1 to ACME01 (primary, original) $1,234.56, 1 line(s)"
    )
    closed = EpisodeClosed(
        episode_id="E1",
        totals=LedgerTotals(
            charges_cents=20000,
            payer_paid_cents=12000,
            adjustments_cents=5000,
            patient_paid_cents=2500,
            written_off_cents=500,
            balance_cents=0,
        ),
        closed_at=T0,
    )
    summary = summarize(EpisodeClosed.event_type, closed.model_dump(mode="json"))
    assert "charges $200.00" in summary
    assert "written off $5.00" in summary
    assert summary.endswith("balance $0.00")
    failed = EligibilityFailed(
        episode_id="E1", reason=EligibilityFailureReason.INACTIVE, payer_id="SUMMIT", checked_at=T0
    )
    assert (
        summarize(failed.event_type, failed.model_dump(mode="json")) == "SUMMIT inactive, self-pay"
    )


def test_summaries_never_carry_names_or_notes() -> None:
    coverage = CoverageUpdated(
        episode_id="E1",
        patient_id="P1",
        coverages=[
            Coverage(
                coverage_id="V1",
                rank=CoverageRank.PRIMARY,
                payer_id="ACME01",
                payer_name="Acme Health Plan",
                member_id="AB123456789",
                subscriber=PERSON,
            )
        ],
    )
    for event in (registered("E1"), encounter("E1"), coverage):
        data = event.model_dump(mode="json")
        text = summarize(event.event_type, data) + json.dumps(redact(data, event.event_type))
        for secret in ("Zelda", "Quackenbush", "Secret Lane", "1980", "ankle", "AB123456789"):
            assert secret not in text, (event.event_type, secret)
    assert summarize(coverage.event_type, coverage.model_dump(mode="json")) == (
        "1 coverage(s): primary ACME01"
    )


def test_redaction_keeps_contract_codes_and_drops_free_text() -> None:
    failed = {"episode_id": "E1", "reason": "inactive", "detail": "member told us X"}
    assert redact(failed, EligibilityFailed.event_type) == {
        "episode_id": "E1",
        "reason": "inactive",
    }
    cancelled = {"episode_id": "E1", "appointment_id": "A1", "reason": "patient has the flu"}
    assert redact(cancelled, "rcm.registration.appointment-cancelled.v1") == {
        "episode_id": "E1",
        "appointment_id": "A1",
    }


def test_unexpected_payloads_do_not_break_the_summary() -> None:
    assert summarize("rcm.claims.claim-submitted.v1", None) == "(payload is not a JSON object)"
    assert summarize("rcm.claims.claim-submitted.v1", {"lines": 5}) == (
        "(payload does not have the expected shape)"
    )
    assert summarize("rcm.other.thing.v1", {}) == "(no summary for this event type)"


def test_trace_id_from_traceparent() -> None:
    assert trace_id_of(f"00-{TRACE}-00f067aa0ba902b7-01") == TRACE
    assert trace_id_of(None) is None
    assert trace_id_of("garbage") is None
    assert trace_id_of(f"00-{'0' * 32}-00f067aa0ba902b7-01") is None


def test_topics_of_the_prefix_without_dead_letters_unless_asked() -> None:
    assert is_event_topic("t1.rcm.claims.claim-paid.v1", "t1.")
    assert not is_event_topic("t2.rcm.claims.claim-paid.v1", "t1.")
    assert not is_event_topic("t1.rcm.claims.claim-paid.v1.dlq", "t1.")
    assert is_event_topic("t1.rcm.claims.claim-paid.v1.dlq", "t1.", with_dead_letters=True)
    assert not is_event_topic("t1.rcm.claims.claim-paid.v1.dlq.replayed", "t1.", True)
    assert is_event_topic("rcm.claims.claim-paid.v1", "")
    assert not is_event_topic("__consumer_offsets", "")


def test_timeline_orders_by_event_time_and_keeps_one_episode() -> None:
    messages = [
        message(submitted("E1"), T0 + timedelta(seconds=3), 0),
        message(submitted("E2"), T0 + timedelta(seconds=1), 1),
        message(registered("E1"), T0 + timedelta(seconds=1), 0),
        message(encounter("E1"), T0 + timedelta(seconds=2), 0),
    ]
    entries = episode_timeline(messages, "E1")
    assert [e.event_type.split(".")[2] for e in entries] == [
        "patient-registered",
        "encounter-completed",
        "claim-submitted",
    ]
    assert all(e.trace_id == TRACE for e in entries)
    assert entries[0].source == "rcm/registration"
    rendered: list[dict[str, Any]] = [e.as_json() for e in entries]
    assert "Zelda" not in json.dumps(rendered)
    assert rendered[2]["data"]["total_charge_cents"] == 123456


def test_subject_falls_back_to_the_key() -> None:
    record = message(submitted("E9"), T0)
    headers = {k: v for k, v in record.headers.items() if k != "ce_subject"}
    keyed = Message(record.topic, 0, 0, b"E9", record.value, headers, record.timestamp_ms)
    assert [e.event_id for e in episode_timeline([keyed], "E9")] == [headers["ce_id"]]


def test_dead_letters_are_marked_and_dated_when_they_failed() -> None:
    failed_at = T0 + timedelta(minutes=5)
    record = message(
        submitted("E1"),
        T0,
        dlq_original_topic="t1.rcm.claims.claim-submitted.v1",
        dlq_consumer_group="t1.payments",
        dlq_exception_class="rcm_shared.errors.PermanentError",
        dlq_exception_message="no such payer",
        dlq_failed_at=failed_at.isoformat(),
    )
    (entry,) = episode_timeline([record], "E1")
    assert entry.dead_letter
    assert entry.time == failed_at
    assert entry.summary == "DEAD LETTER in t1.payments: PermanentError: no such payer"


def test_a_replay_is_dated_when_it_was_re_published() -> None:
    replayed_at = T0 + timedelta(minutes=9)
    original = message(submitted("E1"), T0, 0)
    replay = Message(
        original.topic,
        0,
        7,
        original.key,
        original.value,
        {**original.headers, "replayed_from": "t1.x.dlq:0:3"},
        int(replayed_at.timestamp() * 1000),
    )
    first, second = episode_timeline([replay, original], "E1")
    assert (first.offset, second.offset) == (0, 7)
    assert second.time == replayed_at
    assert "replay of dead letter t1.x.dlq:0:3" in second.summary

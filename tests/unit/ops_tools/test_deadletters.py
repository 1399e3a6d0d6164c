"""Which dead letters a replay publishes, skips or folds, and with which headers."""

from __future__ import annotations

import json

from rcm_ops.deadletters import (
    DeadLetter,
    companion_of,
    dlq_topic_of,
    plan_replay,
    replays_of,
)
from rcm_ops.timeline import Message

TOPIC = "t1.rcm.payments.patient-payment-received.v1"
DLQ = f"{TOPIC}.dlq"


def dead_letter(
    offset: int, ce_id: str, original_offset: int, group: str = "t1.collections"
) -> DeadLetter:
    headers = {
        "ce_id": ce_id,
        "ce_type": "rcm.payments.patient-payment-received.v1",
        "ce_subject": "E1",
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "replayed_from": f"{DLQ}:0:0",  # it had been replayed before and failed again
        "dlq_original_topic": TOPIC,
        "dlq_original_partition": "2",
        "dlq_original_offset": str(original_offset),
        "dlq_consumer_group": group,
        "dlq_exception_class": "rcm_shared.errors.PermanentError",
        "dlq_exception_message": "broken rule",
        "dlq_failed_at": "2026-11-25T09:00:00+00:00",
    }
    letter = DeadLetter.of(Message(DLQ, 1, offset, b"E1", b"{}", headers, 0))
    assert letter is not None
    return letter


def test_only_records_with_provenance_are_dead_letters() -> None:
    assert DeadLetter.of(Message(DLQ, 0, 0, None, b"", {"ce_id": "x"}, 0)) is None


def test_replay_headers_drop_provenance_and_say_where_from() -> None:
    letter = dead_letter(7, "ev-1", 40)
    headers = dict(letter.replay_headers())
    assert not any(name.startswith("dlq_") for name in headers)
    assert headers["ce_id"] == b"ev-1"
    assert headers["traceparent"].startswith(b"00-4bf9")
    assert headers["replayed_from"] == f"{DLQ}:1:7".encode()
    assert [name for name, _ in letter.replay_headers()].count("replayed_from") == 1


def test_everything_not_replayed_yet_in_original_order() -> None:
    letters = [dead_letter(0, "ev-b", 50), dead_letter(1, "ev-a", 40), dead_letter(2, "ev-c", 60)]
    plan = plan_replay(letters, replayed={f"{DLQ}:1:0": {}})
    assert [[d.event_id for d in batch] for batch in plan.batches] == [["ev-a"], ["ev-c"]]
    assert [d.event_id for d in plan.skipped] == ["ev-b"]
    assert plan.missing_ids == []


def test_selected_ids_and_unknown_ids() -> None:
    letters = [dead_letter(0, "ev-a", 40), dead_letter(1, "ev-b", 41)]
    plan = plan_replay(letters, replayed={}, ids=["ev-b", "ev-zz", "ev-b"])
    assert [[d.event_id for d in batch] for batch in plan.batches] == [["ev-b"]]
    assert plan.missing_ids == ["ev-zz"]


def test_already_replayed_is_skipped_unless_forced() -> None:
    letters = [dead_letter(0, "ev-a", 40)]
    replayed = {f"{DLQ}:1:0": {"replayed_at": "earlier"}}
    refused = plan_replay(letters, replayed, ids=["ev-a"])
    assert refused.batches == []
    assert [d.position for d in refused.skipped] == [f"{DLQ}:1:0"]
    forced = plan_replay(letters, replayed, ids=["ev-a"], force=True)
    assert [[d.position for d in b] for b in forced.batches] == [[f"{DLQ}:1:0"]]


def test_a_new_failure_of_a_replayed_event_is_a_new_dead_letter() -> None:
    first, again = dead_letter(0, "ev-a", 40), dead_letter(5, "ev-a", 90)
    plan = plan_replay([first, again], replayed={first.position: {}}, ids=["ev-a"])
    assert [[d.position for d in b] for b in plan.batches] == [[again.position]]


def test_dead_letters_of_one_record_in_several_groups_are_published_once() -> None:
    letters = [
        dead_letter(0, "ev-a", 40, group="t1.collections"),
        dead_letter(1, "ev-a", 40, group="t1.claims"),
        dead_letter(2, "ev-b", 41),
    ]
    plan = plan_replay(letters, replayed={})
    assert [[d.group for d in batch] for batch in plan.batches] == [
        ["t1.collections", "t1.claims"],
        ["t1.collections"],
    ]


def test_recorded_replays_are_read_by_position() -> None:
    records = [
        Message(companion_of(DLQ), 0, 0, f"{DLQ}:1:0".encode(), b'{"forced": false}', {}, 0),
        Message(companion_of(DLQ), 0, 1, f"{DLQ}:1:0".encode(), b'{"forced": true}', {}, 0),
        Message(companion_of(DLQ), 0, 2, f"{DLQ}:1:3".encode(), b"not json", {}, 0),
        Message(companion_of(DLQ), 0, 3, None, b"{}", {}, 0),
    ]
    assert replays_of(records) == {f"{DLQ}:1:0": {"forced": True}, f"{DLQ}:1:3": {}}


def test_topic_names() -> None:
    assert dlq_topic_of(TOPIC) == DLQ
    assert dlq_topic_of(DLQ) == DLQ
    assert companion_of(DLQ) == f"{DLQ}.replayed"
    assert json.loads(json.dumps(dead_letter(3, "ev", 1).as_json()))["original_offset"] == 1

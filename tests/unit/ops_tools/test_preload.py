"""The preload's pure parts: the plan, new episode ids, rewriting and batching the clones,
and a bench report that leaves the warm-up's episodes out."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from bson import ObjectId
from hypothesis import given
from hypothesis import strategies as st
from rcm_ops.bench import report_of
from rcm_ops.preload import (
    BATCH_DOCUMENTS,
    CollectionSource,
    IdRewriter,
    PreloadPlan,
    PreloadReport,
    batches,
    clone_id,
    unique_id,
)
from rcm_ops.timeline import Message

E1, E2 = "E1a2b3c4d5e6f", "E0f0e0d0c0b0a"
T0 = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)


def test_the_plan_preloads_whole_copies_of_the_warm_up() -> None:
    plan = PreloadPlan(10_000, warmup=20)
    assert (plan.warmup_episodes, plan.copies, plan.episodes) == (20, 499, 10_000)
    uneven = PreloadPlan(250, warmup=20)
    assert (uneven.copies, uneven.episodes) == (12, 260)  # at least what was asked
    small = PreloadPlan(5, warmup=20)
    assert (small.warmup_episodes, small.copies, small.episodes) == (5, 0, 5)
    with pytest.raises(ValueError, match="at least one"):
        PreloadPlan(0)


def test_clone_ids_look_like_episode_ids_and_differ_per_copy() -> None:
    ids = {clone_id(E1, copy) for copy in range(1, 1001)}
    assert len(ids) == 1000
    assert all(len(i) == len(E1) and i.startswith("E") for i in ids)
    assert all(int(i[1:], 16) >= 0 for i in ids)  # hex, like the real ones
    assert clone_id(E1, 3) == clone_id(E1, 3)
    assert clone_id(E1, 3) != clone_id(E2, 3)
    assert E1 not in ids


def document() -> dict[str, object]:
    return {
        "_id": E1,
        "episode_id": E1,
        "claims": [{"claim_id": f"{E1}-1"}, {"claim_id": f"{E1}-2", "amount_cents": 1200}],
        "note": f"batch with {E1}-1 and {E2}-1",
        "by_episode": {E2: {"open": False}},
        "payer": {"payer_id": "ACME01", "lines": [1, 2, 3]},
        "opened_at": T0,
        "version": 7,
    }


def test_every_episode_id_is_rewritten_wherever_it_occurs() -> None:
    rewriter = IdRewriter([E1, E2])
    mapping = rewriter.mapping(4)
    original = document()
    before = json.dumps(original, default=str)
    clone = rewriter.clone(original, 4, mapping)
    new1, new2 = clone_id(E1, 4), clone_id(E2, 4)
    assert clone["_id"] == new1
    assert clone["episode_id"] == new1
    assert clone["claims"] == [
        {"claim_id": f"{new1}-1"},
        {"claim_id": f"{new1}-2", "amount_cents": 1200},
    ]
    assert clone["note"] == f"batch with {new1}-1 and {new2}-1"
    assert clone["by_episode"] == {new2: {"open": False}}  # field names too
    assert clone["opened_at"] == T0
    assert clone["version"] == 7
    text = json.dumps(clone, default=str)
    assert E1 not in text
    assert E2 not in text
    # Parts without an episode id are shared, not copied; the original is untouched.
    assert clone["payer"] is original["payer"]
    assert json.dumps(original, default=str) == before


def test_a_document_whose_id_names_no_episode_gets_a_unique_id() -> None:
    rewriter = IdRewriter([E1])
    counter = {"_id": "isa-control-number", "next": 42}
    clones = [rewriter.clone(counter, copy, rewriter.mapping(copy)) for copy in (1, 2)]
    assert [c["_id"] for c in clones] == [
        "isa-control-number~preload-1",
        "isa-control-number~preload-2",
    ]
    assert all(c["next"] == 42 for c in clones)
    batch = {"_id": "B000123", "claim_ids": [f"{E1}-1"]}
    clone = rewriter.clone(batch, 1, rewriter.mapping(1))
    assert clone == {"_id": "B000123~preload-1", "claim_ids": [f"{clone_id(E1, 1)}-1"]}
    oid = ObjectId()
    assert isinstance(unique_id(oid, 1), ObjectId)
    assert unique_id(oid, 1) != oid
    assert unique_id(7, 2) == {"preloaded_from": 7, "copy": 2}


def test_an_id_that_contains_another_is_replaced_whole() -> None:
    short, long = "E1a2b3", "E1a2b3c4d5e6f"
    rewriter = IdRewriter([short, long])
    mapping = rewriter.mapping(1)
    assert rewriter.rewrite(f"{long}/{short}", mapping) == f"{mapping[long]}/{mapping[short]}"


@given(
    st.recursive(
        st.none() | st.integers() | st.text(alphabet="E0123456789abcdef-x ", max_size=40),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(alphabet="ab_E1", max_size=6), children, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_no_warm_up_id_survives_a_rewrite(value: object) -> None:
    rewriter = IdRewriter([E1, E2])
    wrapped = {"_id": "x", "value": value, "also": [f"{E1}-1", {E2: value}]}
    clone = rewriter.clone(wrapped, 9, rewriter.mapping(9))
    assert not rewriter.mentions(clone)
    assert clone["_id"] == "x~preload-9"


def test_clones_are_batched_per_collection_copy_by_copy() -> None:
    rewriter = IdRewriter([E1])
    sources = [
        CollectionSource("run_x_claims", "claims", [{"_id": f"{E1}-{n}"} for n in range(60)]),
        CollectionSource("run_x_coding", "cases", [{"_id": "K1", "episode_id": E1}]),
    ]
    produced = list(batches(sources, rewriter, copies=3))
    assert all(0 < len(docs) <= BATCH_DOCUMENTS for _, docs in produced)
    assert sum(len(docs) for _, docs in produced) == 61 * 3
    assert [len(docs) for source, docs in produced[:4]] == [25, 25, 10, 1]
    ids = [doc["_id"] for _, docs in produced for doc in docs]
    assert len(set(ids)) == len(ids)  # every insert is new
    first_copy = [doc for _, docs in produced[:4] for doc in docs]
    assert {doc["_id"].split("-")[0] for doc in first_copy[:60]} == {clone_id(E1, 1)}
    with pytest.raises(ValueError, match="batch size"):
        list(batches(sources, rewriter, copies=1, size=0))


def message(episode: str, event: str, seconds: float) -> Message:
    return Message(
        topic=f"run-x.rcm.s.{event}.v1",
        partition=0,
        offset=int(seconds * 10),
        key=episode.encode(),
        value=b"{}",
        headers={
            "ce_type": f"rcm.s.{event}.v1",
            "ce_subject": episode,
            "ce_time": (T0 + timedelta(seconds=seconds)).isoformat(),
        },
        timestamp_ms=0,
    )


def test_the_bench_report_leaves_the_warm_up_out_and_says_what_was_preloaded() -> None:
    warm = [
        message("Ewarm", "appointment-scheduled", 0),
        message("Ewarm", "episode-closed", 100),
    ]
    measured = [
        message("Emeasured", "appointment-scheduled", 200),
        message("Emeasured", "episode-closed", 210),
    ]
    options = SimpleNamespace(
        episodes=1, concurrency=1, coders=1, ack_delay_s=0, remit_delay_s=0, replicas=2
    )
    preload = PreloadReport(
        requested=40, episodes=40, warmup_episodes=2, copies=19, warmup_episode_ids=["Ewarm"]
    )
    report = report_of({"ok": True}, warm + measured, {}, options, preload.as_json())
    assert report["run"]["events"] == 2
    assert report["run"]["window_s"] == 10
    assert report["run"]["episodes_closed"] == 1
    assert report["run"]["replicas"] == 2
    assert report["preload"]["episodes"] == 40
    assert "warmup_episode_ids" not in report["preload"]
    plain = report_of({"ok": True}, measured, {}, options)
    assert plain["preload"]["episodes"] == 0
    assert set(plain) == set(report)


def test_a_per_day_counter_counts_an_earlier_day_in_each_copy() -> None:
    rewriter = IdRewriter([E1])
    rollup = {"_id": "2026-12-01|ACME01|p1", "day": "2026-12-01", "counts": {"claims": 3}}
    template = rewriter.template(rollup)
    copies = [template(copy, rewriter.mapping(copy)) for copy in (1, 2)]
    assert [(c["_id"], c["day"]) for c in copies] == [
        ("2026-12-01|ACME01|p1~preload-1", "2026-11-30"),
        ("2026-12-01|ACME01|p1~preload-2", "2026-11-29"),
    ]
    assert all(c["counts"] == {"claims": 3} for c in copies)
    assert template(1, rewriter.mapping(1)) is not rollup
    assert rollup["day"] == "2026-12-01"  # the warm-up's own stays on its day

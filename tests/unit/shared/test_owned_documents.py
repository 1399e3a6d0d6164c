"""The owner's copies of its aggregates' documents: kept only while owned, and never
kept from a read begun under another ownership."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from bson.codec_options import CodecOptions
from pydantic import BaseModel
from pymongo import AsyncMongoClient
from rcm_shared.ownership import Ownership, partition_of
from rcm_shared.store import MongoAggregates, OwnedDocuments

PARTITIONS = 6
CODEC: CodecOptions[dict[str, object]] = CodecOptions(tz_aware=True)


def owning(*partitions: int) -> Ownership:
    ownership = Ownership(PARTITIONS)
    ownership.owned = frozenset(partitions)
    return ownership


def key_in(partition: int, n: int = 0) -> str:
    found = [
        k for k in (f"ep-{i}" for i in range(1000)) if partition_of(k, PARTITIONS) == partition
    ]
    return found[n]


def assignment(*partitions: int) -> list[SimpleNamespace]:
    return [SimpleNamespace(topic="t", partition=p) for p in partitions]


def test_a_copy_is_kept_only_for_an_owned_aggregate() -> None:
    ownership = owning(0)
    copies = OwnedDocuments(ownership, 10, CODEC)
    mine, theirs = key_in(0), key_in(1)
    copies.keep(mine, {"_id": mine, "version": 1}, ownership.generation)
    copies.keep(theirs, {"_id": theirs, "version": 1}, ownership.generation)
    assert copies.get(mine) == {"_id": mine, "version": 1}
    assert copies.get(theirs) is None


def test_each_use_gets_its_own_objects_as_a_read_would_give_them() -> None:
    ownership = owning(0)
    copies = OwnedDocuments(ownership, 10, CODEC)
    key = key_in(0)
    at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    copies.keep(key, {"_id": key, "items": [1, 2], "at": at}, ownership.generation)
    first = copies.get(key)
    assert first is not None
    first["items"].append(3)  # a decision changing what it was given, in place
    again = copies.get(key)
    assert again is not None
    assert again["items"] == [1, 2]
    assert again["at"] == at.replace(microsecond=678000)  # BSON keeps milliseconds


async def test_a_revoked_partition_s_copies_are_dropped_and_others_kept() -> None:
    ownership = owning(0, 1)
    copies = OwnedDocuments(ownership, 10, CODEC)
    lost, kept = key_in(0), key_in(1)
    for key in (lost, kept):
        copies.keep(key, {"_id": key}, ownership.generation)
    copies.forget(frozenset({0}))
    assert copies.get(lost) is None
    assert copies.get(kept) == {"_id": kept}


async def test_a_revocation_drops_every_copy_of_what_this_process_owned() -> None:
    ownership = owning(0, 1)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        "mongodb://127.0.0.1:9/", connect=False, tz_aware=True
    )
    copies = MongoAggregates(client["unused"], "c", "rcm/test", BaseModel, ownership, 10).owned
    keys = [key_in(0), key_in(1)]
    for key in keys:
        copies.keep(key, {"_id": key}, ownership.generation)
    await ownership.on_partitions_revoked(assignment(0, 1))
    await ownership.on_partitions_assigned(assignment(0, 1))  # the same ones come back
    assert [copies.get(key) for key in keys] == [None, None]


async def test_a_read_begun_before_ownership_changed_is_not_kept() -> None:
    ownership = owning(0)
    copies = OwnedDocuments(ownership, 10, CODEC)
    key = key_in(0)
    copies.keep(key, {"_id": key, "version": 1}, ownership.generation)
    began = ownership.generation  # a read or write of the aggregate starts here ...
    await ownership.on_partitions_revoked(assignment(0))
    await ownership.on_partitions_assigned(assignment(0))  # ... and ends after a hand-over
    copies.keep(key, {"_id": key, "version": 2}, began)
    assert copies.get(key) is None


def test_an_update_of_the_outbox_changes_only_a_copy_that_is_kept() -> None:
    ownership = owning(0)
    copies = OwnedDocuments(ownership, 10, CODEC)
    key = key_in(0)
    copies.replace(key, {"_id": key, "outbox": []})
    assert copies.get(key) is None
    copies.keep(key, {"_id": key, "outbox": [{"id": "e1"}]}, ownership.generation)
    copies.replace(key, {"_id": key, "outbox": []})
    assert copies.get(key) == {"_id": key, "outbox": []}


def test_the_least_recently_used_copy_goes_first() -> None:
    ownership = owning(0)
    copies = OwnedDocuments(ownership, 2, CODEC)
    a, b, c = (key_in(0, n) for n in range(3))
    copies.keep(a, {"_id": a}, ownership.generation)
    copies.keep(b, {"_id": b}, ownership.generation)
    assert copies.get(a) is not None  # a is used again: b is now the oldest
    copies.keep(c, {"_id": c}, ownership.generation)
    assert (copies.get(a), copies.get(b), copies.get(c)) == ({"_id": a}, None, {"_id": c})
    assert len(copies) == 2


def test_nothing_is_kept_without_ownership_or_capacity() -> None:
    for copies in (
        OwnedDocuments(None, 10, CODEC),
        OwnedDocuments(owning(*range(PARTITIONS)), 0, CODEC),
    ):
        copies.keep("ep-1", {"_id": "ep-1"}, copies.generation)
        assert copies.get("ep-1") is None

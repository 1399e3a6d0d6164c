"""Bulk actions (one request per item, keys derived from the bulk's) and finding an
archived X12 document by its reference and time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rcm_shared.archive_lookup import find_archived
from rcm_shared.bulk import item_key, run_bulk, unique
from rcm_shared.clearinghouse import X12Archive
from rcm_shared.errors import Conflict, NotFound, TransientError
from rcm_shared.requests import Reply

NOW = datetime(2026, 3, 10, 23, 59, 59, tzinfo=UTC)


def test_an_item_key_is_the_same_for_a_retry_and_differs_by_item_and_bulk() -> None:
    assert item_key("K1", "C-1") == item_key("K1", "C-1")
    assert len({item_key("K1", "C-1"), item_key("K1", "C-2"), item_key("K2", "C-1")}) == 3
    assert len(item_key("K" * 200, "C-1")) <= 64  # an Id, whatever the bulk key's length


def test_an_id_twice_in_one_bulk_is_one_item() -> None:
    assert unique(["B", "A", "B", "C", "A"]) == ["B", "A", "C"]


async def test_each_item_ends_done_refused_or_unanswered_with_its_own_key() -> None:
    asked: list[tuple[str, str]] = []

    async def ask(item: str, key: str) -> Reply:
        asked.append((item, key))
        await asyncio.sleep(0)
        if item == "gone":
            raise NotFound("claim gone not found")
        if item == "closed":
            raise Conflict("claim closed is closed (paid)")
        if item == "slow":
            raise TransientError("no answer")
        return Reply(202, {"claim_id": item})

    answer = await run_bulk(["ok", "gone", "closed", "slow"], "K1", ask)
    assert (answer["count"], answer["done"], answer["refused"], answer["unanswered"]) == (
        4,
        1,
        2,
        1,
    )
    by_id = {item["id"]: item for item in answer["items"]}
    assert by_id["ok"] == {
        "id": "ok",
        "outcome": "done",
        "status": 202,
        "answer": {"claim_id": "ok"},
    }
    assert by_id["gone"]["status"] == 404
    assert by_id["closed"]["reason"] == "claim closed is closed (paid)"
    assert by_id["slow"]["outcome"] == "unanswered"
    assert [item["id"] for item in answer["items"]] == ["ok", "gone", "closed", "slow"]
    assert sorted(asked) == sorted((item, item_key("K1", item)) for item in by_id)


def test_an_archived_document_is_found_by_reference_near_its_time(tmp_path: Path) -> None:
    archive = X12Archive(tmp_path, "claims", clock=lambda: NOW)
    kept = archive.keep("sent", "837P", "000000042", "ISA*...~")
    archive.keep("sent", "837P", "000000043", "ISA*other~")
    later = NOW + timedelta(seconds=2)  # recorded just after midnight: the next day
    assert find_archived(tmp_path, "claims", "sent", "837P", "000000042", [later]) == kept
    assert find_archived(tmp_path, "claims", "received", "837P", "000000042", [NOW]) is None
    assert find_archived(tmp_path, "claims", "sent", "999", "000000042", [NOW]) is None
    far = NOW + timedelta(days=3)
    assert find_archived(tmp_path, "claims", "sent", "837P", "000000042", [far]) is None


def test_a_reference_is_looked_up_as_the_archive_wrote_it(tmp_path: Path) -> None:
    archive = X12Archive(tmp_path, "claims", clock=lambda: NOW)
    kept = archive.keep("received", "277CA", "mail/box 1", "ISA*~")
    assert find_archived(tmp_path, "claims", "received", "277CA", "mail/box 1", [NOW]) == kept

"""The worklists at the end of `rcm run`, read through the services' APIs as the teams
read them: the coding queue, the billers' work queue by stage, unpostables, open appeals,
and the collectors' accounts with a balance (an open statement or a credit).

When every episode closed at zero, none of the run's episodes may be left in any of them:
an item left there is work a person would be asked to do on a closed account, so the run
fails and names it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import httpx
from rcm_shared.auth import Role
from rich.table import Table


class Clients(Protocol):
    """What reads the worklists: `rcm_ops.platform.Platform` (or a test's services)."""

    def client(
        self, name: str, user: str, role: Role, timeout_s: float = 10.0
    ) -> httpx.AsyncClient: ...


USER = "rcm-run"
QUEUED = ("open", "in-progress")  # a coding case not done yet


@dataclass
class Worklist:
    """One worklist: how many items it holds (all of them, by a breakdown where it has
    one) and which of the run's episodes are among them."""

    name: str
    items: int = 0
    breakdown: dict[str, int] = field(default_factory=dict)
    episodes: list[str] = field(default_factory=list)  # the run's episodes left in it
    error: str | None = None


def episode_of_claim(claim_id: Any) -> str | None:
    """Claims' ids are `<episode id>-<n>`."""
    if not isinstance(claim_id, str):
        return None
    episode_id, _, number = claim_id.rpartition("-")
    return episode_id if episode_id and number.isdigit() else None


def worklist(
    name: str,
    rows: Iterable[Mapping[str, Any]],
    run_episodes: Iterable[str],
    by: str | None = None,
) -> Worklist:
    listed = list(rows)
    ours = set(run_episodes)
    found = {
        episode_id
        for row in listed
        if (episode_id := row.get("episode_id") or episode_of_claim(row.get("claim_id"))) in ours
    }
    breakdown = Counter(str(row.get(by) or "-") for row in listed) if by else Counter()
    return Worklist(name, len(listed), dict(sorted(breakdown.items())), sorted(found))


def failed(name: str, answer: Any) -> Worklist | None:
    if isinstance(answer, Mapping) and "error" in answer and len(answer) <= 2:
        return Worklist(name, error=str(answer["error"]))
    return None


def open_appeals(claims_by_episode: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Appeals sent and not answered yet, from each episode's claims."""
    found = []
    for episode_id, view in claims_by_episode.items():
        claims = view.get("claims") if isinstance(view, Mapping) else None
        for claim in claims or []:
            for appeal in claim.get("appeals") or []:
                if appeal.get("status") == "sent":
                    found.append({"episode_id": episode_id, "claim_id": claim.get("claim_id")})
    return found


async def _get(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    try:
        response = await client.get(path, params=params or None)
    except httpx.HTTPError as error:
        return {"error": type(error).__name__}
    if response.status_code != 200:
        return {"error": f"HTTP {response.status_code}"}
    return response.json()


async def _each(client: httpx.AsyncClient, paths: Mapping[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    keys = list(paths)
    for start in range(0, len(keys), 20):
        batch = keys[start : start + 20]
        answers = await asyncio.gather(*(_get(client, paths[key]) for key in batch))
        found.update(zip(batch, answers, strict=True))
    return found


async def read_worklists(platform: Clients, run_episodes: Sequence[str]) -> list[Worklist]:
    """Each team's worklists, read with that team's role."""
    async with (
        platform.client("coding", USER, Role.CODING_LEAD) as coding,
        platform.client("claims", USER, Role.BILLER) as claims,
        platform.client("payments", USER, Role.BILLER) as payments,
        platform.client("collections", USER, Role.COLLECTOR) as collections,
    ):
        queue = {status: await _get(coding, "/queue", status=status) for status in QUEUED}
        work = await _get(claims, "/work-queue")
        unpostables = await _get(payments, "/unpostables", limit=10_000)
        episode_claims = await _each(
            claims, {episode_id: f"/episodes/{episode_id}/claims" for episode_id in run_episodes}
        )
        statements = await _get(collections, "/statements", status="open", limit=10_000)
        credits = await _get(collections, "/credit-balances", limit=10_000)

    lists: list[Worklist] = []
    for status, answer in queue.items():
        name = f"coding queue, {status}"
        lists.append(failed(name, answer) or worklist(name, answer, run_episodes))
    lists.append(
        failed("billers' work queue", work)
        or worklist("billers' work queue", work.get("items") or [], run_episodes, by="stage")
    )
    lists.append(
        failed("unpostables", unpostables)
        or worklist("unpostables", unpostables, run_episodes, by="kind")
    )
    lists.append(worklist("open appeals", open_appeals(episode_claims), run_episodes))
    name = "accounts with a balance"
    balance_error = failed(name, statements) or failed(name, credits)
    if balance_error is not None:
        lists.append(balance_error)
    else:
        rows = [*(statements.get("statements") or []), *(credits.get("accounts") or [])]
        lists.append(worklist(name, _one_per_account(rows), run_episodes))
    return lists


def _one_per_account(rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return list({str(row.get("episode_id")): row for row in rows}.values())


def left_over(lists: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """The run's episodes left in a worklist, by worklist (of `as_json`'s lists)."""
    return {item["name"]: list(item["episodes"]) for item in lists if item.get("episodes")}


def as_json(lists: Iterable[Worklist]) -> list[dict[str, Any]]:
    return [asdict(item) for item in lists]


def worklist_table(lists: Sequence[Mapping[str, Any]]) -> Table:
    table = Table(title="worklists at the end of the run", title_justify="left")
    table.add_column("worklist")
    table.add_column("items", justify="right")
    table.add_column("of this run's episodes", justify="right")
    table.add_column("by")
    for item in lists:
        if item.get("error"):
            table.add_row(item["name"], "-", "-", f"[yellow]not read: {item['error']}[/]")
            continue
        by = ", ".join(f"{k} {v}" for k, v in item["breakdown"].items())
        table.add_row(item["name"], str(item["items"]), str(len(item["episodes"])), by)
    return table

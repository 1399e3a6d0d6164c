"""The worklists at the end of `rcm run`: read as each team reads them, counted, and a run
fails when every episode closed at zero yet one of them is still in a worklist."""

from __future__ import annotations

from typing import Any

import httpx
from rcm_ops.run import render_summary, with_worklists
from rcm_ops.worklist_summary import as_json, episode_of_claim, left_over, read_worklists
from rcm_shared.auth import Role
from rich.console import Console

RUN = ["E00000000000a", "E00000000000b", "E00000000000c"]
OTHER = "E0000000000ff"  # not this run's (a bench's preload)


def answers(left: bool) -> dict[tuple[str, str], Any]:
    """What each service answers, keyed by (service, path); `left` leaves run episodes in
    every worklist, else only another run's."""
    ours = RUN[0] if left else OTHER
    return {
        ("coding", "/queue?status=open"): [{"case_id": "C1", "episode_id": ours}],
        ("coding", "/queue?status=in-progress"): [],
        ("claims", "/work-queue"): {
            "items": [
                {"claim_id": f"{ours}-1", "episode_id": ours, "stage": "835"},
                {"claim_id": f"{OTHER}-2", "episode_id": OTHER, "stage": "277CA"},
                {"claim_id": f"{OTHER}-3", "episode_id": OTHER, "stage": "277CA"},
            ]
        },
        ("payments", "/unpostables?limit=10000"): [
            {
                "unpostable_id": "U1",
                "kind": "no-claim",
                "claim_id": f"{RUN[1] if left else OTHER}-1",
            },
            {"unpostable_id": "U2", "kind": "unreadable", "claim_id": None},
        ],
        **{
            ("claims", f"/episodes/{episode_id}/claims"): {
                "claims": [
                    {
                        "claim_id": f"{episode_id}-1",
                        "appeals": [
                            {"status": "sent" if left and episode_id == RUN[2] else "upheld"}
                        ],
                    }
                ]
            }
            for episode_id in RUN
        },
        ("collections", "/statements?status=open&limit=10000"): {
            "statements": [{"episode_id": ours, "statement_id": "S1"}]
        },
        ("collections", "/credit-balances?limit=10000"): {
            "accounts": [{"episode_id": ours}, {"episode_id": OTHER}]
        },
    }


# Who may read each service's worklists (docs/roles.md).
READERS = {
    "coding": Role.CODING_LEAD,
    "claims": Role.BILLER,
    "payments": Role.BILLER,
    "collections": Role.COLLECTOR,
}


class Services:
    """Each service as an httpx mock, refusing a role its endpoint would refuse."""

    def __init__(self, answers: dict[tuple[str, str], Any]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, str]] = []

    def client(
        self, name: str, user: str, role: Role, timeout_s: float = 10.0
    ) -> httpx.AsyncClient:
        def answer(request: httpx.Request) -> httpx.Response:
            path = request.url.raw_path.decode()
            self.asked.append((name, path))
            if role is not READERS[name]:
                return httpx.Response(403)
            if (name, path) not in self.answers:
                return httpx.Response(404)
            return httpx.Response(200, json=self.answers[(name, path)])

        return httpx.AsyncClient(base_url=f"http://{name}", transport=httpx.MockTransport(answer))


def summary(stuck: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"stuck": stuck or [], "ok": not stuck}


async def test_every_worklist_is_read_counted_and_the_run_s_episodes_named() -> None:
    lists = as_json(await read_worklists(Services(answers(left=True)), RUN))
    by_name = {item["name"]: item for item in lists}
    assert by_name["coding queue, open"]["episodes"] == [RUN[0]]
    assert by_name["coding queue, in-progress"]["items"] == 0
    assert by_name["billers' work queue"]["breakdown"] == {"277CA": 2, "835": 1}
    assert by_name["billers' work queue"]["episodes"] == [RUN[0]]
    assert by_name["unpostables"]["episodes"] == [RUN[1]]  # by the claim's id
    assert by_name["unpostables"]["items"] == 2
    assert by_name["open appeals"]["episodes"] == [RUN[2]]
    assert by_name["accounts with a balance"] == {
        "name": "accounts with a balance",
        "items": 2,
        "breakdown": {},
        "episodes": [RUN[0]],
        "error": None,
    }


async def test_a_run_whose_worklists_hold_only_others_work_passes() -> None:
    lists = as_json(await read_worklists(Services(answers(left=False)), RUN))
    assert left_over(lists) == {}
    done = summary()
    with_worklists(done, lists)
    assert done["ok"] is True


async def test_an_episode_left_in_a_worklist_fails_a_run_that_closed_everything() -> None:
    lists = as_json(await read_worklists(Services(answers(left=True)), RUN))
    done = summary()
    with_worklists(done, lists)
    assert done["ok"] is False
    assert set(done["left_in_worklists"]) == {
        "coding queue, open",
        "billers' work queue",
        "unpostables",
        "open appeals",
        "accounts with a balance",
    }
    console = Console(record=True, width=200)
    render_summary_tail(done, console)
    said = console.export_text()
    assert "worklists at the end of the run" in said
    assert "3 of them are still in a worklist" in said
    assert f"open appeals: {RUN[2]}" in said


async def test_with_episodes_stuck_the_worklists_are_shown_and_not_counted_twice() -> None:
    lists = as_json(await read_worklists(Services(answers(left=True)), RUN))
    stuck = summary([{"episode": "e1", "episode_id": RUN[0]}])
    with_worklists(stuck, lists)
    assert stuck["ok"] is False
    assert stuck["left_in_worklists"] == {}


async def test_a_worklist_that_cannot_be_read_is_said_not_guessed() -> None:
    broken = answers(left=False)
    del broken[("claims", "/work-queue")]
    lists = as_json(await read_worklists(Services(broken), RUN))
    (work,) = [item for item in lists if item["name"] == "billers' work queue"]
    assert work["error"] == "HTTP 404"


def test_claim_ids_name_their_episode() -> None:
    assert episode_of_claim("E00000000000a-12") == "E00000000000a"
    assert episode_of_claim("E00000000000a") is None
    assert episode_of_claim(None) is None


def render_summary_tail(done: dict[str, Any], console: Console) -> None:
    """render_summary with the rest of a summary filled in as an empty run's."""
    render_summary(
        {
            "episodes_by_state": {"closed": 3},
            "claims": {},
            "money_cents": {},
            "stage_times": [],
            "resources": {},
            "restarts": {},
            "bots": {},
            "dead_letters": {},
            "elapsed_s": 1.0,
            "timed_out": False,
            "stalled": False,
            "episodes": 3,
            "run_id": "r1",
            **done,
        },
        console,
    )

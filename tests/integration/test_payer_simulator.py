"""The payer simulator served by uvicorn, driven over HTTP by the ClearinghouseClient the
services use. No Kafka or MongoDB: the simulator keeps its state in memory."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from rcm_payer_simulator import adjudication as rules
from rcm_payer_simulator.app import Settings, build
from rcm_shared.clearinghouse import ClearinghouseClient, Kind, X12Archive
from rcm_shared.errors import PermanentError
from rcm_x12 import (
    ProfessionalClaim,
    RemittanceClaim,
    check_835_balance,
    parse_271,
    parse_277ca,
    parse_835,
    parse_999,
)

from tests.integration.helpers import eventually, serving
from tests.unit.payer_simulator.factories import PARTNER, batch_837, claim, inquiry_270

pytestmark = pytest.mark.integration

SEED = 20261125


@pytest.fixture
async def simulator(tmp_path: Path) -> AsyncIterator[tuple[str, ClearinghouseClient, Path]]:
    archive_dir = tmp_path / "simulator"
    settings = Settings(seed=SEED, ack_delay_s=0.1, remit_delay_s=0.3, x12_archive_dir=archive_dir)
    async with serving(build(settings), lifespan="on") as url:
        client = ClearinghouseClient(url, PARTNER, X12Archive(tmp_path / "client", "test"))
        try:
            yield url, client, archive_dir / "payer-simulator"
        finally:
            await client.close()


def archived(root: Path) -> list[tuple[str, str, str]]:
    """(direction, kind, text) of every archived document, oldest first."""
    out = []
    for path in sorted(root.glob("*/*.x12")):
        _, direction, kind, _ = path.name.split("-", 3)
        out.append((direction, kind, path.read_text(encoding="utf-8")))
    return out


async def test_eligibility_in_real_time(
    simulator: tuple[str, ClearinghouseClient, Path],
) -> None:
    url, client, archive = simulator
    member = next(
        m for n in range(1000) if rules.member_status(SEED, "ACME01", m := f"AB{n:09d}") == "active"
    )
    inquiry = inquiry_270(member)
    answer = parse_271(await client.realtime(inquiry, "test")).transactions[0]
    assert answer.coverage is not None
    assert answer.coverage.active
    assert answer.subscriber.member_id == member
    with pytest.raises(PermanentError, match="400"):
        await client.realtime(inquiry.replace("NM1*IL", "NM1*XX"), "broken")
    async with httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/health/ready")).status_code == 200
        payers = (await http.get("/payers")).json()
        assert [p["payer_id"] for p in payers] == ["ACME01", "SUMMIT", "BLUEPK", "MERIDN"]
        assert (await http.get("/stats")).json()["eligibility"] == {"active": 1}
    kinds = [(direction, kind) for direction, kind, _ in archived(archive)]
    assert kinds == [("received", "270"), ("sent", "271"), ("received", "270")]


async def test_a_batch_comes_back_as_999_277ca_and_835_in_the_mailbox(
    simulator: tuple[str, ClearinghouseClient, Path],
) -> None:
    url, client, archive = simulator
    claims = [claim(f"E{n:012x}-1", member_id=f"AB{n:09d}") for n in range(12)]
    batch = batch_837(claims)
    await client.submit_batch(batch, "batch-1")

    async def everything_arrived() -> bool:
        return [kind for _, kind in await client.waiting()] == ["999", "277CA", "835"]

    await eventually(everything_arrived, timeout_s=15)
    documents: dict[Kind, str] = {}
    for document_id, kind in await client.waiting("999", "277CA", "835"):
        documents[kind] = await client.fetch(document_id, kind)
    assert parse_999(documents["999"]).transactions[0].accepted
    verdicts = {
        c.patient_control_number: c
        for t in parse_277ca(documents["277CA"]).transactions
        for c in t.claims
    }
    assert set(verdicts) == {c.patient_control_number for c in claims}
    remittance = parse_835(documents["835"])
    assert check_835_balance(remittance) == []
    remitted = {c.patient_control_number for t in remittance.transactions for c in t.claims}
    assert remitted == {pcn for pcn, verdict in verdicts.items() if verdict.accepted}

    for document_id, _ in await client.waiting():
        await client.acknowledge(document_id)
    assert await client.waiting() == []
    await client.acknowledge("835-000000001")  # unknown: the client treats 404 as done
    async with httpx.AsyncClient(base_url=url) as http:
        gone = await http.get(f"/mailbox/{PARTNER}/{document_id}")
        assert gone.status_code == 404
        stats = (await http.get("/stats")).json()
    assert stats["claims_received"] == len(claims)
    assert stats["accepted"] + stats["rejected"] == len(claims)
    assert stats["mailbox_waiting"] == 0

    kept = archived(archive)
    assert [(d, k) for d, k, _ in kept] == [
        ("received", "837P"),
        ("sent", "999"),
        ("sent", "277CA"),
        ("sent", "835"),
    ]
    assert kept[0][2] == batch
    assert [text for _, _, text in kept[1:]] == [documents[k] for k in ("999", "277CA", "835")]


def billed_on(submitted: ProfessionalClaim, day: date, **changes: Any) -> ProfessionalClaim:
    lines = [line.model_copy(update={"service_date": day}) for line in submitted.lines]
    return submitted.model_copy(update={"lines": lines, **changes})


def member_of(payer_id: str, wanted: Callable[[str], bool]) -> str:
    return next(m for n in range(100_000) if wanted(m := f"AB{n:09d}"))


async def test_the_835s_deny_by_the_payers_rules(
    simulator: tuple[str, ClearinghouseClient, Path],
) -> None:
    url, client, _ = simulator
    today = datetime.now(UTC).date()

    def covered(payer_id: str) -> str:
        return member_of(payer_id, lambda m: rules.covered_on(SEED, payer_id, m, today))

    lapsed = member_of(
        "ACME01",
        lambda m: (day := rules.retro_termination(SEED, "ACME01", m)) is not None and day <= today,
    )
    acme, summit = covered("ACME01"), covered("SUMMIT")
    # Another member: the same film for the same member would be a duplicate (CO-18).
    authorized = member_of(
        "SUMMIT", lambda m: m != summit and rules.covered_on(SEED, "SUMMIT", m, today)
    )
    visit = [("99213", 150_00), ("36415", 20_00)]
    film = [("99213", 150_00), ("73610", 95_00)]
    strapping = [("99203", 175_00), ("29540", 50_00)]
    claims = {
        "paid": billed_on(claim("E000000000001-1", visit, member_id=acme), today),
        "pair": billed_on(claim("E000000000002-1", strapping, member_id=acme), today),
        "authorization": billed_on(
            claim("E000000000003-1", film, payer_id="SUMMIT", member_id=summit), today
        ),
        "authorized": billed_on(
            claim("E000000000004-1", film, payer_id="SUMMIT", member_id=authorized),
            today,
            prior_authorization="AUTH4471",
        ),
        "late": billed_on(
            claim("E000000000005-1", visit, payer_id="SUMMIT", member_id=summit),
            today - timedelta(days=91),
        ),
        "lapsed": billed_on(claim("E000000000006-1", visit, member_id=lapsed), today),
        "duplicate": billed_on(claim("E000000000007-1", visit, member_id=acme), today),
    }
    # The strapping visit without 25 on the E/M line breaks Acme's pair edit.
    pair = claims["pair"]
    claims["pair"] = pair.model_copy(
        update={
            "lines": [
                line.model_copy(
                    update={"procedure": line.procedure.model_copy(update={"modifiers": []})}
                )
                for line in pair.lines
            ]
        }
    )
    await client.submit_batch(batch_837(list(claims.values())), "rules-1")

    remitted: dict[str, RemittanceClaim] = {}

    async def every_claim_remitted() -> bool:
        for document_id, kind in await client.waiting("835"):
            document = parse_835(await client.fetch(document_id, kind))
            assert check_835_balance(document) == []
            for transaction in document.transactions:
                remitted.update({c.patient_control_number: c for c in transaction.claims})
            await client.acknowledge(document_id)
        return len(remitted) == len(claims)

    await eventually(every_claim_remitted, timeout_s=15)
    by_case = {case: remitted[c.patient_control_number] for case, c in claims.items()}

    def denial(case: str) -> tuple[str, list[str]]:
        answered = by_case[case]
        return answered.status, [f"{a.group}-{a.reason}" for a in answered.adjustments]

    assert denial("paid") == ("1", [])
    assert all(line.allowed_cents for line in by_case["paid"].lines)  # the patient may owe it
    assert denial("authorized")[0] == "1"
    assert denial("authorization") == ("4", ["CO-197"])
    assert denial("late") == ("4", ["CO-29"])
    assert denial("lapsed") == ("4", ["CO-27"])
    assert denial("duplicate") == ("4", ["CO-18"])
    visit_line, strapping_line = by_case["pair"].lines
    assert by_case["pair"].status == "1"
    assert (visit_line.paid_cents, visit_line.remark_codes) == (0, ["N20"])
    assert [f"{a.group}-{a.reason}" for a in visit_line.adjustments] == ["CO-97"]
    assert strapping_line.allowed_cents
    assert "CO-97" not in [f"{a.group}-{a.reason}" for a in strapping_line.adjustments]
    async with httpx.AsyncClient(base_url=url) as http:
        stats = (await http.get("/stats")).json()
    assert stats["denied_by_carc"] == {"197": 1, "29": 1, "27": 1, "18": 1}
    assert stats["denied_lines_by_carc"] == {"97": 1}


async def test_a_broken_batch_is_refused_with_the_reason(
    simulator: tuple[str, ClearinghouseClient, Path],
) -> None:
    _, client, archive = simulator
    broken = batch_837([claim("E1-1")]).replace("CLM*E1-1*170", "CLM*E1-1*171")
    with pytest.raises(PermanentError, match="HTTP 400") as refused:
        await client.submit_batch(broken, "broken")
    # The reason may quote the claim's elements: the client archives it, never says it.
    assert "CLM02" not in str(refused.value)
    assert await client.waiting() == []
    assert [(d, k) for d, k, _ in archived(archive)] == [("received", "837P")]
    ours = archived(archive.parent.parent / "client" / "test")
    assert [(d, k) for d, k, _ in ours] == [("sent", "837P"), ("received", "refusal")]
    assert "CLM02" in ours[1][2]


async def test_python_m_runs_the_simulator_from_its_environment(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a free port for the child to listen on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "RCM_HTTP_PORT": str(port),
        "RCM_SIMULATOR_SEED": "7",
        "RCM_SIMULATOR_ACK_DELAY_S": "0.05",
        "RCM_X12_ARCHIVE_DIR": str(tmp_path),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rcm_payer_simulator",
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:

            async def ready() -> bool:
                if process.returncode is not None:
                    assert process.stderr is not None
                    raise AssertionError((await process.stderr.read()).decode())
                with contextlib.suppress(httpx.HTTPError):
                    return (await http.get("/health/ready")).status_code == 200
                return False

            await eventually(ready, timeout_s=20)
            answer = await http.post("/x12/realtime", content=inquiry_270("AB000000001"))
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith("application/edi-x12")
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=10)
    assert [(d, k) for d, k, _ in archived(tmp_path / "payer-simulator")] == [
        ("received", "270"),
        ("sent", "271"),
    ]

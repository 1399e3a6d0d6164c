"""The web console in a real browser (Debian's chromium, driven by Playwright) against a
small running platform: a few episodes played by the bots until claims are paid and
statements exist, one case left in the coding queue, one poison message dead-lettered.
Each role signs in through the sign-in page and walks its pages; what a page shows is
checked against the services' own answers, read with the same role.

With RCM_CONSOLE_SCREENSHOTS=<dir> every page visited is also saved there as a PNG
(docs/console/ holds the ones the README shows). Under CI (env CI set) a missing
chromium fails the module; elsewhere it skips, saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from playwright.async_api import BrowserContext, Page, async_playwright, expect
from rcm_contracts.payments import PaymentPosted
from rcm_ops.platform import InfraUrls, Platform, PlatformConfig, SimulatorKnobs
from rcm_ops.run import drive_episodes
from rcm_ops.synthetic import EpisodeGenerator
from rcm_ops.worklist_summary import as_json, left_over, read_worklists
from rcm_shared.auth import Role
from rcm_shared.kafka import Topics
from rcm_shared.topology import CONSOLE

from tests.conftest import TEST_ISSUER, Infra, drop_topics
from tests.integration.helpers import eventually, read_topic

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.integration]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PORT_OFFSET = 700  # beside `make run` (0), the fault tests (500) and the e2e tests (900, 950)
EPISODES = 5
SEED = 23


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    reason = (
        f"{CHROMIUM} is missing: as root run "
        "'apt-get install -y --no-install-recommends chromium' (deploy/local/infra.sh "
        "provision does it)"
    )
    if os.environ.get("CI"):
        pytest.fail(f"under CI no browser test skips: {reason}")
    pytest.skip(reason)


@dataclass
class World:
    platform: Platform
    console: str
    paid_claim_ids: list[str]
    billed_episode_ids: list[str]
    open_case_id: str
    poison_topic: str

    async def answer(self, service: str, role: Role, path: str, **params: Any) -> Any:
        """What the service itself says, to the same role the page is shown to."""
        async with self.platform.client(service, f"check-{role}", role) as client:
            response = await client.get(path, params=params or None)
        assert response.status_code == 200, (service, path, response.status_code)
        return response.json()


async def publish_poison(kafka: str, topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka)
    await producer.start()
    try:
        await producer.send_and_wait(
            topic,
            b"{not json",
            key=b"poison-for-the-console",
            headers=[("ce_type", PaymentPosted.event_type.encode())],
        )
    finally:
        await producer.stop()


async def open_coding_cases(platform: Platform) -> list[dict[str, Any]]:
    async with platform.client("coding", "lead", Role.CODING_LEAD) as client:
        with contextlib.suppress(httpx.HTTPError):
            rows = (await client.get("/queue", params={"limit": 200})).json()
            return [row for row in rows if row.get("status") == "open"]
    return []


@pytest.fixture(scope="module")
async def world(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    require_chromium()
    config = PlatformConfig(
        infra=InfraUrls(infra.kafka, infra.mongodb_url),
        port_offset=PORT_OFFSET,
        runs_dir=tmp_path_factory.mktemp("runs"),
        simulator=SimulatorKnobs(seed=SEED, ack_delay_s=0.2, remit_delay_s=0.5),
        extra_env={
            "RCM_RELAY_INTERVAL_S": "0.2",
            "RCM_MAILBOX_POLL_S": "0.3",
            "RCM_CONSOLE_DEV_SIGNIN": "true",  # this platform only: the dev form is tested
        },
        issuer=TEST_ISSUER,
    )
    topics = Topics(config.topic_prefix)
    try:
        async with Platform(config) as platform:
            # One generator for both drives: the bots key episodes by their place in it.
            *played, left_for_the_coder = EpisodeGenerator(SEED, datetime.now(UTC).date()).episodes(
                EPISODES + 1
            )
            outcome = await drive_episodes(
                platform, played, timeout_s=300, rate_per_s=5.0, stall_s=60
            )
            assert not outcome.timed_out, outcome
            assert not outcome.stalled, outcome
            episode_ids = list(outcome.ledger.episode_ids())
            async with platform.client("claims", "check", Role.BILLER) as claims:
                found = [
                    (await claims.get(f"/episodes/{episode_id}/claims")).json()
                    for episode_id in episode_ids
                ]
            paid = [
                claim["claim_id"]
                for listed in found
                for claim in (listed if isinstance(listed, list) else listed.get("claims", []))
                if claim.get("paid_cents", 0) > 0
            ]
            assert paid, "no claim was paid: the pages would have nothing to show"

            # One more episode, with no coder bot: it waits in the coding queue.
            leftover = asyncio.create_task(
                drive_episodes(platform, [left_for_the_coder], coders=0, timeout_s=120)
            )

            async def a_case_waits() -> bool:
                assert not leftover.done(), leftover
                return bool(await open_coding_cases(platform))

            await eventually(a_case_waits, timeout_s=90)
            leftover.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await leftover
            (case,) = await open_coding_cases(platform)

            poison_topic = topics.of(PaymentPosted)
            await publish_poison(infra.kafka, poison_topic)
            await read_topic(infra.kafka, poison_topic + ".dlq", 1)
            yield World(
                platform,
                platform.url(CONSOLE.name),
                paid,
                episode_ids,
                case["case_id"],
                poison_topic,
            )
    finally:
        await drop_topics(infra.kafka, topics.prefix)


@pytest.fixture(scope="module")
async def browser(
    world: World, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[BrowserContext]:
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("chromium-profile"),  # a fresh user-data-dir
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 860},
        )
        try:
            yield context
        finally:
            await context.close()


SCREENSHOTS = os.environ.get("RCM_CONSOLE_SCREENSHOTS")


async def shoot(page: Page, name: str) -> None:
    if SCREENSHOTS:  # Playwright creates the directory
        await page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"))


async def signed_in(browser: BrowserContext, world: World, user: str, role: Role) -> Page:
    """A fresh page of a person who pasted a token of the identity provider."""
    await browser.clear_cookies()
    page = await browser.new_page()
    await page.goto(f"{world.console}/")
    assert page.url.startswith(f"{world.console}/sign-in"), page.url
    await page.fill("#token", TEST_ISSUER.token(user, [role]))
    await page.click("form[action='/sign-in'] button[type=submit]")
    await page.wait_for_url(f"{world.console}/")
    assert user in await page.inner_text("header")
    return page


async def visit(page: Page, world: World, path: str, status: int = 200) -> str:
    response = await page.goto(f"{world.console}{path}")
    assert response is not None, path
    assert response.status == status, (path, response.status)
    return await page.inner_text("main")


def dollars(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}${whole:,}.{part:02d}"


async def test_sign_in_page_and_dev_sign_in(world: World, browser: BrowserContext) -> None:
    await browser.clear_cookies()
    page = await browser.new_page()
    await page.goto(f"{world.console}/sign-in")
    await shoot(page, "sign-in")
    await page.fill("#user", "dana")
    await page.select_option("#role", "ops")
    await page.click("form[action='/sign-in/dev'] button[type=submit]")
    await page.wait_for_url(f"{world.console}/")
    assert "dana" in await page.inner_text("header")
    assert "KPI board" in await page.inner_text("main")
    await page.close()


async def test_a_coder_takes_a_case_from_the_queue(world: World, browser: BrowserContext) -> None:
    page = await signed_in(browser, world, "casey", Role.CODER)
    await shoot(page, "home-coder")
    main = await visit(page, world, "/worklists/coding")
    assert world.open_case_id in main
    await shoot(page, "coding-queue")
    await page.click("form[action='/cases/next'] button")
    await page.wait_for_url(re.compile(r".*/cases/.+"))
    case_id = page.url.rsplit("/", 1)[-1]
    case = await world.answer("coding", Role.CODER, f"/cases/{case_id}")
    assert case["coder_id"] == "casey"
    main = await page.inner_text("main")
    assert case_id in main
    assert case["episode_id"] in main
    assert await page.is_enabled("form[action$='/codes'] button")  # the case is mine now
    await shoot(page, "coding-case")
    await visit(page, world, "/accounts", status=403)
    await page.close()


async def test_a_biller_sees_worklists_and_a_claims_history(
    world: World, browser: BrowserContext
) -> None:
    page = await signed_in(browser, world, "bill", Role.BILLER)
    work = await world.answer("claims", Role.BILLER, "/work-queue")
    main = await visit(page, world, "/worklists/claims-work")
    assert f"{len(work['items'])} item(s)" in main
    await shoot(page, "biller-work-queue")
    unpostables = await world.answer("payments", Role.BILLER, "/unpostables", limit=1000)
    main = await visit(page, world, "/worklists/unpostables")
    assert f"{len(unpostables)} item(s)" in main
    await shoot(page, "unpostables")

    claim_id = world.paid_claim_ids[0]
    claim = await world.answer("claims", Role.BILLER, f"/claims/{claim_id}")
    main = await visit(page, world, f"/claims/{claim_id}")
    assert claim_id in main
    assert claim["status"] in main
    assert dollars(claim["paid_cents"]) in main
    assert dollars(claim["total_charge_cents"]) in main
    assert await page.locator("ol.timeline li").count() >= 3
    await shoot(page, "claim-history")

    # A biller may read all four services the timeline asks.
    await visit(page, world, f"/episodes/{claim['episode_id']}")
    main = await page.inner_text("main")
    for service in ("registration", "eligibility", "claims", "collections"):
        assert f"{service}: answered" in main
    services = await page.locator("main table tbody tr td:nth-child(2)").all_inner_texts()
    assert {"registration", "eligibility", "claims", "collections"} <= set(services)
    await visit(page, world, "/dead-letters", status=403)
    await page.close()


async def test_a_collector_sees_accounts_and_one_ledger(
    world: World, browser: BrowserContext
) -> None:
    page = await signed_in(browser, world, "colette", Role.COLLECTOR)
    main = await visit(page, world, "/accounts")
    await shoot(page, "accounts")
    episode_id = world.billed_episode_ids[0]
    account = await world.answer("collections", Role.COLLECTOR, f"/accounts/{episode_id}")
    main = await visit(page, world, f"/accounts/{episode_id}")
    assert episode_id in main
    assert f"balance owed by the patient {dollars(account['patient_balance_cents'])}" in main
    assert "ledger balances" in main
    await shoot(page, "account")
    await visit(page, world, "/worklists/coding", status=403)
    await page.close()


async def test_ops_see_kpis_dead_letters_and_a_timeline(
    world: World, browser: BrowserContext
) -> None:
    page = await signed_in(browser, world, "otto", Role.OPS)
    report = await world.answer("kpis", Role.OPS, "/kpis")
    main = await visit(page, world, "/kpis")
    adjudicated = report["totals"]["denial_rate"]["adjudicated_cents"]
    assert adjudicated > 0
    assert dollars(adjudicated) in main
    await shoot(page, "kpis")
    main = await visit(page, world, "/dead-letters")
    assert PaymentPosted.event_type in main
    assert "poison-for-the-console" in main
    assert "{not json" not in await page.content()  # never the payload
    assert main.count("InvalidEnvelope:") == 2  # said once for each consumer's dead letter
    await shoot(page, "dead-letters")
    await page.close()


async def test_front_desk_sees_an_episode_timeline(world: World, browser: BrowserContext) -> None:
    page = await signed_in(browser, world, "frida", Role.FRONT_DESK)
    await visit(page, world, "/episodes")
    episode_id = world.billed_episode_ids[0]
    await page.fill("#episode_id", episode_id)
    await page.click("form[action='/episodes'] button")
    await page.wait_for_url(f"{world.console}/episodes/{episode_id}")
    main = await page.inner_text("main")
    assert "registration: answered" in main
    assert await page.locator("main table tbody tr").count() >= 2
    await shoot(page, "timeline")
    await visit(page, world, "/kpis", status=403)
    await page.close()


async def test_ops_follow_an_episode_s_timeline_without_patient_values(
    world: World, browser: BrowserContext
) -> None:
    page = await signed_in(browser, world, "otto", Role.OPS)
    episode_id = world.billed_episode_ids[0]
    main = await visit(page, world, f"/episodes/{episode_id}")
    for service in ("registration", "eligibility", "claims", "collections"):
        assert f"{service}: answered" in main
    services = await page.locator("main table tbody tr td:nth-child(2)").all_inner_texts()
    assert {"registration", "eligibility", "claims", "collections"} <= set(services)
    # What ops are shown is the services' flow views, and those hold no patient value.
    registration = await world.answer("registration", Role.FRONT_DESK, f"/episodes/{episode_id}")
    patient = registration["patient"]
    flow = await world.answer("registration", Role.OPS, f"/episodes/{episode_id}/flow")
    assert flow["status"] == registration["status"]
    html = await page.content()
    for value in (patient["last_name"], patient["birth_date"], patient["address"]["line1"]):
        assert value not in html
        assert value not in str(flow)
    claims = await world.answer("claims", Role.OPS, f"/episodes/{episode_id}/claims/flow")
    assert claims["claims"][0]["claim_id"] in main
    await shoot(page, "timeline-ops")
    await page.close()


async def test_an_auditor_searches_the_audit_trail(world: World, browser: BrowserContext) -> None:
    page = await signed_in(browser, world, "audrey", Role.AUDITOR)
    assert "Audit trail" in await page.inner_text("main")
    for path in ("/worklists/coding", "/accounts", "/kpis", "/dead-letters", "/episodes"):
        await visit(page, world, path, status=403)
    # A biller reads a claim; the audit service keeps the record once it is consumed.
    async with world.platform.client("claims", "bill-audited", Role.BILLER) as claims:
        assert (await claims.get(f"/claims/{world.paid_claim_ids[0]}")).status_code == 200

    async def recorded() -> bool:
        found = await world.answer("audit", Role.AUDITOR, "/records", actor="bill-audited")
        return bool(found["records"])

    await eventually(recorded, timeout_s=30)
    trail = await world.answer("audit", Role.AUDITOR, "/records", actor="bill-audited")
    main = await visit(page, world, "/audit?page_size=25")
    assert "record(s), newest first" in main
    await shoot(page, "audit")
    await page.fill("#actor", "bill-audited")
    await page.fill("#service", "claims")
    await page.click("form[action='/audit'] button")
    await page.wait_for_url(re.compile(r".*/audit\?.*actor=bill-audited.*"))
    assert len(trail["records"]) == 1
    rows = page.locator("main table tbody tr")
    # htmx may change the address before it swaps the answer in: wait for the rows.
    await expect(rows).to_have_count(1)
    cells = await rows.first.locator("td").all_inner_texts()
    assert cells[1:5] == ["bill-audited", "biller", "claims", "GET /claims/{claim_id}"]
    assert cells[6] == "200"
    newest = trail["records"][0]
    assert newest["request_id"] in await page.inner_text("main")
    # A filter the audit service refuses comes back as its reason, not as an error page.
    main = await visit(page, world, "/audit?status=42", status=422)
    assert "status" in main
    await page.close()


@pytest.mark.parametrize("role", [r for r in Role if r is not Role.AUDITOR])
async def test_the_audit_page_is_for_auditors_only(
    world: World, browser: BrowserContext, role: Role
) -> None:
    page = await signed_in(browser, world, "nosy", role)
    await visit(page, world, "/audit", status=403)
    await page.close()


async def test_make_run_s_worklists_read_from_the_services(world: World) -> None:
    """What `rcm run` reads at its end, from these real services: the episodes the bots
    closed are in no worklist, and the one left for a coder is in the coding queue."""
    case = await world.answer("coding", Role.CODER, f"/cases/{world.open_case_id}")
    waiting = case["episode_id"]
    lists = as_json(await read_worklists(world.platform, [*world.billed_episode_ids, waiting]))
    assert [item["name"] for item in lists if item["error"]] == []
    left = left_over(lists)
    queued = {name: episodes for name, episodes in left.items() if name.startswith("coding")}
    assert list(queued.values()) == [[waiting]], left
    assert {name: e for name, e in left.items() if name not in queued} == {}


async def test_a_form_without_its_csrf_token_is_refused(
    world: World, browser: BrowserContext
) -> None:
    page = await signed_in(browser, world, "casey", Role.CODER)
    await visit(page, world, "/worklists/coding")
    await page.eval_on_selector("form[action='/cases/next'] input[name=csrf]", "e => e.remove()")
    async with page.expect_response(f"{world.console}/cases/next") as answered:
        await page.click("form[action='/cases/next'] button")
    assert (await answered.value).status == 403
    # htmx swaps the refusal in after the answer arrives: wait for it, not for the answer.
    await expect(page.locator("main")).to_contain_text("this form has expired")
    await page.close()

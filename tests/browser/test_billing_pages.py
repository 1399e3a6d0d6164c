"""The billers' console pages in a real browser (Debian's chromium, Playwright) against a
small running platform whose payer answers (277CA) but does not pay yet, so claims stay
on the A/R follow-up list. A biller filters the list, acts on a claim in bulk, reads the
claim's X12 history and one document, and records a follow-up; what the pages show is
checked against claims' own answers to the same role."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.async_api import BrowserContext, async_playwright
from rcm_ops.platform import InfraUrls, Platform, PlatformConfig, SimulatorKnobs
from rcm_ops.run import drive_episodes
from rcm_ops.synthetic import EpisodeGenerator
from rcm_shared.auth import Role
from rcm_shared.kafka import Topics
from rcm_shared.topology import CONSOLE

from tests.conftest import TEST_ISSUER, Infra, drop_topics
from tests.integration.helpers import eventually

from .test_console import CHROMIUM, CHROMIUM_FLAGS, require_chromium, shoot

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.integration]

PORT_OFFSET = 730  # beside the console's browser tests (700)
EPISODES = 3
SEED = 29


@dataclass
class World:
    platform: Platform
    console: str

    async def answer(self, path: str, **params: Any) -> Any:
        async with self.platform.client("claims", "check-biller", Role.BILLER) as client:
            response = await client.get(path, params=params or None)
        assert response.status_code == 200, (path, response.status_code)
        return response.json()


@pytest.fixture(scope="module")
async def world(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    require_chromium()
    config = PlatformConfig(
        infra=InfraUrls(infra.kafka, infra.mongodb_url),
        port_offset=PORT_OFFSET,
        runs_dir=tmp_path_factory.mktemp("runs"),
        # The payer accepts at once and pays long after the test: claims stay open.
        simulator=SimulatorKnobs(seed=SEED, ack_delay_s=0.2, remit_delay_s=3600.0),
        extra_env={"RCM_RELAY_INTERVAL_S": "0.2", "RCM_MAILBOX_POLL_S": "0.3"},
        issuer=TEST_ISSUER,
    )
    topics = Topics(config.topic_prefix)
    try:
        async with Platform(config) as platform:
            episodes = EpisodeGenerator(SEED, datetime.now(UTC).date()).episodes(EPISODES)
            driving = asyncio.create_task(drive_episodes(platform, episodes, timeout_s=600))
            world = World(platform, platform.url(CONSOLE.name))

            async def on_the_list() -> bool:
                assert not driving.done(), driving
                rows = (await world.answer("/ar-followup"))["rows"]
                answered = [r for r in rows if r["status"] == "accepted"]
                return len(answered) >= 2

            try:
                await eventually(on_the_list, timeout_s=240)
            finally:
                driving.cancel()  # the episodes cannot close: their payer has not paid
                with contextlib.suppress(asyncio.CancelledError):
                    await driving
            yield world
    finally:
        await drop_topics(infra.kafka, topics.prefix)


@pytest.fixture(scope="module")
async def browser(
    world: World, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[BrowserContext]:
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 860},
        )
        try:
            yield context
        finally:
            await context.close()


async def test_a_biller_works_the_ar_list_a_claims_history_and_a_follow_up(
    world: World, browser: BrowserContext
) -> None:
    await browser.clear_cookies()
    page = await browser.new_page()
    await page.goto(f"{world.console}/billing/ar-followup")
    await page.fill("#token", TEST_ISSUER.token("bill", [Role.BILLER]))
    await page.click("form[action='/sign-in'] button[type=submit]")
    await page.wait_for_url(f"{world.console}/billing/ar-followup")

    listed = (await world.answer("/ar-followup"))["rows"]
    shown = await page.locator("main table tbody input[name=claim_id]").count()
    assert shown == len(listed)
    await shoot(page, "ar-followup")
    payer = listed[0]["payer_id"]
    await page.fill("input[name=payer_id]", payer)
    await page.click("form.filters button[type=submit]")
    await page.wait_for_url(f"**/billing/ar-followup?payer_id={payer}*")
    of_payer = (await world.answer("/ar-followup", payer_id=payer))["rows"]
    assert await page.locator("main table tbody input[name=claim_id]").count() == len(of_payer)

    # Bulk: an accepted claim has no work item to assign, and the page says why.
    claim_id = of_payer[0]["claim_id"]
    await page.check(f"input[name=claim_id][value='{claim_id}']")
    await page.check("input[name=action][value=reassign]")
    await page.fill("form#bulk input[name=assigned_to]", "biller-9")
    await page.click("form#bulk button[type=submit]")
    await page.wait_for_url("**/billing/bulk")
    main = await page.inner_text("main")
    assert "0 done, 1 refused" in main
    assert f"claim {claim_id} has no open work item" in main

    # The claim's history, one document's text, a follow-up.
    await page.goto(f"{world.console}/billing/claims/{claim_id}/history")
    history = await world.answer(f"/claims/{claim_id}/history")
    assert await page.locator("table.documents tbody tr").count() == history["count"] >= 3
    await shoot(page, "claim-x12-history")
    await page.click("text=open 837P")
    await page.wait_for_url("**/documents/837P.*")
    text = await page.inner_text("pre.x12")
    assert "ST*837*" in text
    assert f"CLM*{claim_id}*" in text
    await page.go_back()
    await page.fill("textarea[name=note]", "Called the payer: in process")
    await page.fill("input[name=next_action_on]", "2031-02-03")
    await page.click("form[action$='/follow-ups'] button[type=submit]")
    await page.wait_for_url("**/history?notice=*")
    assert "Follow-up recorded." in await page.inner_text("main")
    await page.goto(f"{world.console}/billing/ar-followup?payer_id={payer}")
    main = await page.inner_text("main")
    assert "2031-02-03 · Called the payer: in process" in main
    await page.close()


async def test_the_billing_pages_are_not_a_coders(world: World, browser: BrowserContext) -> None:
    await browser.clear_cookies()
    page = await browser.new_page()
    await page.goto(f"{world.console}/sign-in")
    await page.fill("#token", TEST_ISSUER.token("cody", [Role.CODER]))
    await page.click("form[action='/sign-in'] button[type=submit]")
    await page.wait_for_url(f"{world.console}/")
    response = await page.goto(f"{world.console}/billing/ar-followup")
    assert response is not None
    assert response.status == 403
    await page.close()

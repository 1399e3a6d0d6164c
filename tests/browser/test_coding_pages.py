"""The coders' worklist pages in a real browser (Debian's chromium, Playwright), against
the console served over HTTP and a coding service on real Kafka and FerretDB: a coder
holds a case with a physician query, the query is answered from its page, a lead reviews
the sampled case, reads productivity and sets a coder's specialties. Lighter than
test_console.py: only coding runs, the console reaches it in-process."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.async_api import BrowserContext, Page, async_playwright
from rcm_coding.app import Settings as CodingSettings
from rcm_coding.app import build as build_coding
from rcm_console import app as console_app
from rcm_console.upstream import Upstream
from rcm_shared.auth import Role
from rcm_shared.envelope import Envelope
from rcm_shared.kafka import Topics

from tests.conftest import TEST_ISSUER, Infra
from tests.integration.services import running, settings_for, signed_in
from tests.integration.test_coding import VALID, encounter, opened_case

from .test_console import CHROMIUM, CHROMIUM_FLAGS, require_chromium, shoot

pytestmark = [pytest.mark.browser, pytest.mark.integration]

QUESTION = "Which ankle was imaged?"
ANSWER = "Addendum: the right ankle."


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def console_on(port: int, coding_app: Any) -> AsyncIterator[str]:
    """The console over HTTP, asking the in-process coding service."""

    def to_coding(service_urls: dict[str, str]) -> Upstream:
        upstream = Upstream(service_urls)
        upstream.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=coding_app))
        return upstream

    settings = console_app.Settings(
        auth_jwks_url=TEST_ISSUER.jwks_url,
        auth_issuer=TEST_ISSUER.issuer,
        console_secret="browser-test",
        service_urls={"coding": "http://coding"},
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(console_app, "Upstream", to_coding)
        app = console_app.build(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done(), "the console did not start"
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


async def sign_in(browser: BrowserContext, console: str, user: str, role: Role) -> Page:
    await browser.clear_cookies()
    page = await browser.new_page()
    await page.goto(f"{console}/sign-in")
    await page.fill("#token", TEST_ISSUER.token(user, [role]))
    await page.click("form[action='/sign-in'] button[type=submit]")
    await page.wait_for_url(f"{console}/")
    return page


async def main_of(page: Page, url: str) -> str:
    response = await page.goto(url)
    assert response is not None
    assert response.status == 200, (url, response.status)
    return await page.inner_text("main")


async def test_a_query_a_review_productivity_and_specialties_in_the_browser(
    infra: Infra, topics: Topics, database: Any, tmp_path: Any
) -> None:
    require_chromium()
    episode = "E" + uuid.uuid4().hex[:12]
    settings = settings_for(
        CodingSettings, infra, topics.prefix, database.name, audit_sample_rate=1.0
    )
    assert isinstance(settings, CodingSettings)
    coding = build_coding(settings)
    async with (
        running(coding) as api,
        console_on(free_port(), coding.api) as console,
        async_playwright() as playwright,
    ):
        await coding.publisher.publish(Envelope(data=encounter(episode), source="rcm/test"))
        case_id = (await opened_case(api, episode))["case_id"]
        browser = await playwright.chromium.launch_persistent_context(
            tmp_path / "profile", executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            page = await sign_in(browser, console, "casey", Role.CODER)
            await page.goto(f"{console}/worklists/coding")
            await page.click("form[action='/cases/next'] button")
            await page.wait_for_url(f"{console}/cases/{case_id}")
            await page.select_option("#reason", "laterality")
            await page.fill("#question", QUESTION)
            await page.click(f"form[action='/cases/{case_id}/queries'] button")
            await page.wait_for_url(f"{console}/cases/{case_id}")
            assert (await page.inner_text("strong.status")).lower() == "on-hold"

            queries = await main_of(page, f"{console}/coding/queries")
            assert case_id in queries
            assert QUESTION in queries
            await shoot(page, "coding-queries")
            await page.fill("textarea[name=answer]", ANSWER)
            await page.click("form[action$='/answer'] button")
            await page.wait_for_url(f"{console}/coding/queries")
            assert "No open physician query" in await page.inner_text("main")
            case = await main_of(page, f"{console}/cases/{case_id}")
            assert ANSWER in case  # the addendum
            assert (await page.inner_text("strong.status")).lower() == "in-progress"

            coded = await api.post(
                f"/cases/{case_id}/codes", json=VALID, headers=signed_in("casey", Role.CODER)
            )
            assert coded.status_code == 200, coded.text

            lead = await sign_in(browser, console, "lee", Role.CODING_LEAD)
            assert case_id in await main_of(lead, f"{console}/coding/reviews")
            await shoot(lead, "coding-reviews")
            await lead.goto(f"{console}/cases/{case_id}")
            await lead.check("input[name=agreed][value=yes]")
            await lead.click(f"form[action='/cases/{case_id}/review'] button")
            await lead.wait_for_url(f"{console}/coding/reviews")
            assert "No sampled case waits" in await lead.inner_text("main")

            figures = await main_of(lead, f"{console}/coding/productivity")
            assert "casey" in figures
            assert "100%" in figures  # one review, agreed
            await shoot(lead, "coding-productivity")

            await lead.goto(f"{console}/coding/coders")
            await lead.fill("#coder_id", "casey")
            await lead.check("input[name=specialties][value=radiology]")
            await lead.click("form[action='/coding/coders'] button")
            await lead.wait_for_url(f"{console}/coding/coders")
            assert "radiology" in await lead.inner_text("table")
            profiles = (await api.get("/coders")).json()
            assert [(p["coder_id"], p["specialties"]) for p in profiles] == [
                ("casey", ["radiology"])
            ]
        finally:
            await browser.close()

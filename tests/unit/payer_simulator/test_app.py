"""Configuration from the environment and the operational endpoints."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError
from rcm_payer_simulator.app import Settings, build

VARIABLES = (
    "RCM_HTTP_PORT",
    "RCM_SIMULATOR_SEED",
    "RCM_SIMULATOR_ACK_DELAY_S",
    "RCM_SIMULATOR_REMIT_DELAY_S",
    "RCM_X12_ARCHIVE_DIR",
    "RCM_X12_ARCHIVE_RETENTION_DAYS",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_defaults() -> None:
    settings = Settings()
    assert (settings.service_name, settings.http_port, settings.seed) == (
        "payer-simulator",
        8010,
        20261125,
    )
    assert (settings.ack_delay_s, settings.remit_delay_s) == (0.2, 1.0)
    assert settings.x12_archive_dir == Path("var/x12")
    assert settings.x12_archive_retention_days == 2555


def test_knobs_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    values = ("8099", "7", "0.05", "2.5", "/tmp/x12", "400")
    for name, value in zip(VARIABLES, values, strict=True):
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert (settings.http_port, settings.seed) == (8099, 7)
    assert (settings.ack_delay_s, settings.remit_delay_s) == (0.05, 2.5)
    assert settings.x12_archive_dir == Path("/tmp/x12")
    assert settings.x12_archive_retention_days == 400


def test_a_negative_delay_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RCM_SIMULATOR_REMIT_DELAY_S", "-1")
    with pytest.raises(ValidationError, match="RCM_SIMULATOR_REMIT_DELAY_S"):
        Settings()


async def test_ready_only_while_the_clock_runs(tmp_path: Path) -> None:
    app = build(Settings(x12_archive_dir=tmp_path))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://simulator") as http:
        assert (await http.get("/health/live")).status_code == 200
        assert (await http.get("/health/ready")).status_code == 503
        async with app.router.lifespan_context(app):
            assert (await http.get("/health/ready")).status_code == 200
            metrics = (await http.get("/metrics")).text
            assert "rcm_simulator_claims_received_total 0.0" in metrics
        assert (await http.get("/health/ready")).status_code == 503


async def test_the_archive_is_purged_while_it_runs(tmp_path: Path) -> None:
    old = tmp_path / "payer-simulator" / "2001-01-01" / "000000-sent-835-835-1.x12"
    old.parent.mkdir(parents=True)
    old.write_text("ISA*~")
    long_ago = time.time() - 400 * 86400
    os.utime(old, (long_ago, long_ago))
    app = build(Settings(x12_archive_dir=tmp_path, x12_archive_retention_days=365))
    async with app.router.lifespan_context(app):
        for _ in range(100):
            if not old.exists():
                break
            await asyncio.sleep(0.02)
    assert not old.exists()
    assert not old.parent.exists()

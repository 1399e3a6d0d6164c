"""Bad configuration stops a service at start with a clear message."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def test_bad_configuration_exits_with_a_clear_message() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from rcm_shared.settings import ServiceSettings, load_settings;"
            "load_settings(ServiceSettings, service_name='claims')",
        ],
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": "no-port", "MONGODB_URL": "http://x"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "invalid configuration for ServiceSettings" in result.stderr
    assert "KAFKA_BOOTSTRAP_SERVERS: Value error, expected host:port" in result.stderr
    assert "MONGODB_URL: Value error, must start with mongodb://" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_service_listens_on_its_topology_port_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rcm_claims.app import Settings
    from rcm_shared.topology import SERVICES

    monkeypatch.delenv("RCM_HTTP_PORT", raising=False)
    claims = next(process for process in SERVICES if process.name == "claims")
    assert Settings().http_port == claims.http_port
    monkeypatch.setenv("RCM_HTTP_PORT", "18004")
    assert Settings().http_port == 18004

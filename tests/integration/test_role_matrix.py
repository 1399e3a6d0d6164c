"""Every endpoint of every service, called with no token, a bad one, each role outside its
column of the matrix and each role inside it (docs/roles.md)."""

from __future__ import annotations

import importlib
import re
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from rcm_ops.roles import OPEN_PATHS, Rule, rules
from rcm_shared.auth import DevIssuer, Role
from rcm_shared.kafka import Topics
from rcm_shared.topology import SERVICES

from tests.conftest import TEST_ISSUER, Infra

from .services import running, settings_for, signed_in

pytestmark = pytest.mark.integration

NOBODY_KNOWS = "E000000000000"  # a well-formed id that names nothing


def url_of(rule: Rule) -> str:
    return re.sub(r"\{[^}]+\}", NOBODY_KNOWS, rule.path)


async def call(client: httpx.AsyncClient, rule: Rule, headers: dict[str, str]) -> int:
    # An empty body: enough to get past sign-in, which comes before validation.
    body: Any = {} if rule.method in ("POST", "PUT") else None
    response = await client.request(rule.method, url_of(rule), json=body, headers=headers)
    return response.status_code


def forged_tokens(tmp_path: Path) -> dict[str, str]:
    """Tokens a service must refuse (401): each is wrong in one way only."""
    now = int(time.time())
    claims = {"iss": TEST_ISSUER.issuer, "aud": TEST_ISSUER.audience, "sub": "mallory"}
    claims |= {"roles": list(Role), "iat": now, "exp": now + 600}
    stranger = DevIssuer(tmp_path / "another-issuer")  # same issuer name, another key
    return {
        "expired": TEST_ISSUER.token("mallory", list(Role), ttl_s=-120),
        "unknown key's": stranger.token("mallory", list(Role)),
        "symmetric": jwt.encode(claims, "a-secret-anyone-could-share", algorithm="HS256"),
        "unsigned": jwt.encode(claims, None, algorithm="none"),
        "garbage": "not-a-token",
    }


@pytest.mark.parametrize("service", [process.name for process in SERVICES])
async def test_who_may_call_what(
    service: str, infra: Infra, topics: Topics, database: Any, tmp_path: Path
) -> None:
    process = next(p for p in SERVICES if p.name == service)
    app_module = importlib.import_module(f"{process.module}.app")
    settings = settings_for(
        app_module.Settings, infra, topics.prefix, database.name, request_timeout_s=5.0
    )
    built = app_module.build(settings)
    async with running(built) as client:
        table = [rule for rule in rules(service, built.api) if rule.path not in OPEN_PATHS]
        assert table
        for rule in table:
            what = f"{service}: {rule.method} {rule.path}"
            assert await call(client, rule, {"Authorization": ""}) == 401, what
            assert rule.roles is not None
            for role in Role:
                status = await call(client, rule, signed_in(f"someone-{role}", role))
                if role in rule.roles:
                    assert status not in (401, 403), f"{what} as {role}: {status}"
                else:
                    assert status == 403, f"{what} as {role}: {status}"
        first = table[0]
        for kind, token in forged_tokens(tmp_path).items():
            status = await call(client, first, {"Authorization": f"Bearer {token}"})
            assert status == 401, f"{service}: a {kind} token got {status}"

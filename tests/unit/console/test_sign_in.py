"""The console's sign-in and form guards, without the services: cookie, CSRF, Origin, roles."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from rcm_console.app import Settings, _cents, _line, build
from rcm_console.deadletters import reason_of
from rcm_shared.auth import DevIssuer, Role

ORIGIN = "http://testserver"


@pytest.fixture
def issuer(tmp_path: Path) -> DevIssuer:
    return DevIssuer(tmp_path / "issuer")


def console(issuer: DevIssuer, dev_signin: bool = False) -> TestClient:
    settings = Settings(
        auth_jwks_url=issuer.jwks_url,
        auth_issuer=issuer.issuer,
        dev_signin=dev_signin,
        dev_issuer_dir=issuer.directory,
        console_secret="test-secret",
    )
    return TestClient(build(settings), follow_redirects=False)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "no CSRF field on the page"
    return found[1]


def sign_in(client: TestClient, token: str) -> None:
    page = client.get("/sign-in")
    answer = client.post(
        "/sign-in",
        data={"token": token, "csrf": csrf_of(page.text), "next": "/"},
        headers={"Origin": ORIGIN},
    )
    assert answer.status_code == 303


def test_pages_send_the_unsigned_to_sign_in(issuer: DevIssuer) -> None:
    answer = console(issuer).get("/worklists/coding")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/sign-in?next=/worklists/coding"


def test_a_pasted_token_becomes_an_httponly_strict_cookie(issuer: DevIssuer) -> None:
    client = console(issuer)
    page = client.get("/sign-in")
    answer = client.post(
        "/sign-in",
        data={"token": issuer.token("alice", [Role.OPS]), "csrf": csrf_of(page.text)},
        headers={"Origin": ORIGIN},
    )
    cookie = answer.headers["set-cookie"]
    assert "rcm_console_token=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie.replace("Strict", "strict")
    home = client.get("/")
    assert "Dead letters" in home.text  # ops' page
    assert "Coding queue" not in home.text  # not ops'


def test_a_page_outside_the_roles_is_403(issuer: DevIssuer) -> None:
    client = console(issuer)
    sign_in(client, issuer.token("carol", [Role.COLLECTOR]))
    assert client.get("/dead-letters").status_code == 403
    assert client.get("/worklists/coding").status_code == 403


def test_forms_need_the_csrf_token_and_our_origin(issuer: DevIssuer) -> None:
    client = console(issuer)
    page = client.get("/sign-in")
    token = issuer.token("alice", [Role.CODER])
    missing = client.post("/sign-in", data={"token": token}, headers={"Origin": ORIGIN})
    foreign = client.post(
        "/sign-in",
        data={"token": token, "csrf": csrf_of(page.text)},
        headers={"Origin": "https://evil.example"},
    )
    assert missing.status_code == 403
    assert foreign.status_code == 403
    assert "rcm_console_token" not in client.cookies


def test_a_token_of_another_issuer_is_refused(issuer: DevIssuer, tmp_path: Path) -> None:
    stranger = DevIssuer(tmp_path / "stranger", issuer="someone-else")
    client = console(issuer)
    page = client.get("/sign-in")
    answer = client.post(
        "/sign-in",
        data={"token": stranger.token("mallory", [Role.OPS]), "csrf": csrf_of(page.text)},
        headers={"Origin": ORIGIN},
    )
    assert answer.status_code == 401
    assert "rcm_console_token" not in client.cookies


def test_dev_sign_in_is_off_unless_asked_for(issuer: DevIssuer) -> None:
    off = console(issuer)
    page = off.get("/sign-in")
    assert "Development sign-in" not in page.text
    answer = off.post(
        "/sign-in/dev",
        data={"user": "alice", "role": "ops", "csrf": csrf_of(page.text)},
        headers={"Origin": ORIGIN},
    )
    assert answer.status_code == 404
    on = console(issuer, dev_signin=True)
    page = on.get("/sign-in")
    answer = on.post(
        "/sign-in/dev",
        data={"user": "alice", "role": "ops", "csrf": csrf_of(page.text)},
        headers={"Origin": ORIGIN},
    )
    assert answer.status_code == 303
    assert "Dead letters" in on.get("/").text


def test_sign_in_sends_only_to_our_own_pages(issuer: DevIssuer) -> None:
    client = console(issuer)
    page = client.get("/sign-in")
    answer = client.post(
        "/sign-in",
        data={
            "token": issuer.token("alice", [Role.OPS]),
            "csrf": csrf_of(page.text),
            "next": "//evil.example/",
        },
        headers={"Origin": ORIGIN},
    )
    assert answer.headers["location"] == "/"


def test_amounts_are_read_as_cents_without_floats() -> None:
    assert _cents("12.34") == 1234
    assert _cents("$1,200") == 120000
    assert _cents("0.5") == 50
    with pytest.raises(ValueError, match="dollars and cents"):
        _cents("1.234")


def test_a_coded_line_is_code_modifiers_units_pointers() -> None:
    assert _line("99213 25 1 1,2") == {
        "procedure_code": "99213",
        "modifiers": ["25"],
        "units": 1,
        "diagnosis_pointers": [1, 2],
    }
    assert _line("99213 - 2")["modifiers"] == []
    with pytest.raises(ValueError, match="CODE MODIFIERS UNITS POINTERS"):
        _line("99213")


def test_a_dead_letters_reason_names_its_exception_once() -> None:
    assert reason_of("rcm_shared.x.InvalidEnvelope", "InvalidEnvelope: missing header") == (
        "InvalidEnvelope: missing header"
    )
    assert reason_of("builtins.KeyError", "'claim_id'") == "KeyError: 'claim_id'"
    assert len(reason_of("E", "x" * 1000)) == 400

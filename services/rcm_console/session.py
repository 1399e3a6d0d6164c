"""Who is signed in: the bearer token in an HttpOnly cookie, verified on every request.

The console keeps no session of its own: the cookie holds the identity provider's token,
`rcm_shared.auth.Verifier` checks it each time, and the services get the same token, so
their role checks hold whatever the console shows. State-changing forms carry a CSRF
token signed with the console's secret and bound to the signed-in token (or, before
sign-in, to a random cookie), and must come from the console's own origin.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import HTTPException, Request, Response
from rcm_shared.auth import Actor, Role, Verifier

TOKEN_COOKIE = "rcm_console_token"
PRE_SIGNIN_COOKIE = "rcm_console_presign"
CSRF_FIELD = "csrf"


class SignInNeeded(Exception):
    """No token, or one that no longer verifies: back to the sign-in page."""


@dataclass(frozen=True)
class Viewer:
    actor: Actor
    token: str = ""

    @property
    def subject(self) -> str:
        return self.actor.subject

    def may(self, roles: frozenset[Role]) -> bool:
        return not self.actor.roles.isdisjoint(roles)


class Sessions:
    def __init__(self, verifier: Verifier, secret: bytes) -> None:
        self.verifier = verifier
        self.secret = secret

    async def viewer(self, request: Request) -> Viewer:
        token = request.cookies.get(TOKEN_COOKIE)
        if not token:
            raise SignInNeeded
        try:
            actor = await self.verifier.actor(token)
        except HTTPException as refused:
            if refused.status_code == 401:
                raise SignInNeeded from None  # expired or not ours
            raise
        return Viewer(actor, token)

    async def verify(self, token: str) -> Actor:
        """The token's actor, or 401 (HTTPException) when it does not verify."""
        return await self.verifier.actor(token)

    def csrf_token(self, request: Request) -> str:
        return self._sign(self._binding(request))

    def check_form(self, request: Request, submitted: str | None) -> None:
        """A POST must come from our own origin and carry the CSRF token of its session."""
        check_origin(request)
        expected = self._sign(self._binding(request))
        if not submitted or not hmac.compare_digest(submitted, expected):
            raise HTTPException(403, "this form has expired: reload the page and try again")

    def _binding(self, request: Request) -> str:
        token = request.cookies.get(TOKEN_COOKIE)
        if token:
            return "session:" + hashlib.sha256(token.encode()).hexdigest()
        return "pre:" + request.cookies.get(PRE_SIGNIN_COOKIE, "")

    def _sign(self, binding: str) -> str:
        return hmac.new(self.secret, binding.encode(), hashlib.sha256).hexdigest()


def check_origin(request: Request) -> None:
    """Browsers send Origin on every POST form; a missing or foreign one is refused."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin:
        raise HTTPException(403, "no Origin on this form: refused")
    sent = urlsplit(origin)
    own = request.url
    if (sent.scheme, sent.netloc) != (own.scheme, own.netloc):
        raise HTTPException(403, "this form came from another site: refused")


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def set_token(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        TOKEN_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
        path="/",
    )


def ensure_pre_signin_cookie(request: Request, response: Response) -> None:
    if not request.cookies.get(PRE_SIGNIN_COOKIE):
        value = secrets.token_urlsafe(24)
        request.cookies[PRE_SIGNIN_COOKIE] = value  # the form rendered now binds to it
        response.set_cookie(
            PRE_SIGNIN_COOKIE,
            value,
            httponly=True,
            samesite="strict",
            secure=is_https(request),
            path="/",
        )


def clear(response: Response) -> None:
    response.delete_cookie(TOKEN_COOKIE, path="/")

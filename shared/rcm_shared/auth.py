"""Sign-in and roles: every HTTP call carries an OAuth2 bearer token (a JWT) from the
organization's identity provider, verified here against its published keys (JWKS).

The actor of a command is the token's subject, never a field of the body. A route says who
may call it with `allow(Role...)`; the same declaration is what the role matrix (docs/
roles.md) and its test read. For local runs and tests, `DevIssuer` plays the identity
provider: a signing key and a JWKS file in a directory (`rcm token` prints tokens from it).
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import hashlib
import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

# Asymmetric only: a shared secret (HS*) would let every service mint tokens, and "none"
# would let anyone.
ALGORITHMS = ("ES256", "RS256", "PS256")
LEEWAY_S = 30  # clock skew between the identity provider and us
KEYS_TTL_S = 300.0
REFRESH_COOLDOWN_S = 30.0  # an unknown key id refreshes the keys at most this often
DEV_ISSUER = "rcm-dev-issuer"


class Role(StrEnum):
    FRONT_DESK = "front-desk"
    CODER = "coder"
    CODING_LEAD = "coding-lead"
    BILLER = "biller"
    COLLECTOR = "collector"
    OPS = "ops"
    AUDITOR = "auditor"


@dataclass(frozen=True)
class Actor:
    """Who calls: the token's subject and the platform roles it holds."""

    subject: str
    roles: frozenset[Role]


class KeySet:
    """The identity provider's public keys, fetched (https://) or read (file://) and kept
    for a while; a token signed with a key we do not know yet refreshes them."""

    def __init__(self, url: str) -> None:
        if not url.startswith(("https://", "http://", "file://")):
            raise ValueError("the JWKS URL must be https://, http:// or file://")
        self.url = url
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = -float("inf")
        self._lock = asyncio.Lock()

    async def key(self, key_id: str) -> jwt.PyJWK | None:
        age = time.monotonic() - self._fetched_at
        if age > KEYS_TTL_S or (key_id not in self._keys and age > REFRESH_COOLDOWN_S):
            async with self._lock:  # concurrent requests wait for one fetch
                if time.monotonic() - self._fetched_at > REFRESH_COOLDOWN_S:
                    await self._refresh()
        return self._keys.get(key_id)

    async def _refresh(self) -> None:
        if self.url.startswith("file://"):
            path = Path(self.url.removeprefix("file://"))
            document = json.loads(await asyncio.to_thread(path.read_text))
        else:
            async with httpx.AsyncClient(timeout=5.0) as client:
                response = await client.get(self.url)
                response.raise_for_status()
                document = response.json()
        keys = jwt.PyJWKSet.from_dict(document).keys
        self._keys = {key.key_id: key for key in keys if key.key_id}
        self._fetched_at = time.monotonic()


class Verifier:
    """Turns a bearer token into an Actor, or refuses it (401)."""

    def __init__(self, keys: KeySet, issuer: str, audience: str, roles_claim: str) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.roles_path = roles_claim.split(".")

    async def actor(self, token: str) -> Actor:
        try:
            header = jwt.get_unverified_header(token)
            key = await self.keys.key(str(header.get("kid", "")))
            if key is None:
                raise jwt.InvalidTokenError("signed with an unknown key")
            claims = jwt.decode(
                token,
                key=key,
                algorithms=list(ALGORITHMS),
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.InvalidTokenError as error:
            raise unauthorized(f"invalid token: {error}") from None
        except (OSError, httpx.HTTPError, ValueError):
            raise HTTPException(503, "the identity provider's keys are unavailable") from None
        return Actor(subject=claims["sub"], roles=frozenset(self._roles(claims)))

    def _roles(self, claims: Mapping[str, Any]) -> Iterable[Role]:
        found: Any = claims
        for part in self.roles_path:
            found = found.get(part) if isinstance(found, Mapping) else None
        known = {role.value for role in Role}
        return [Role(name) for name in found or () if isinstance(name, str) and name in known]


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


BEARER = HTTPBearer(auto_error=False, description="An access token of the identity provider.")

Allow = Callable[..., Awaitable[Actor]]


def allow(*roles: Role) -> Allow:
    """A route dependency: the caller's Actor, if signed in (else 401) with one of `roles`
    (else 403). The actor is also left on `request.state` for the audit trail."""

    async def signed_in_as(
        request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(BEARER)
    ) -> Actor:
        if credentials is None:
            raise unauthorized("sign in: this call needs a bearer token")
        verifier: Verifier = request.app.state.verifier
        actor = await verifier.actor(credentials.credentials)
        request.state.actor = actor
        if actor.roles.isdisjoint(roles):
            raise HTTPException(403, f"this call is for {', '.join(sorted(roles))}")
        return actor

    signed_in_as.roles = frozenset(roles)  # type: ignore[attr-defined]  # the role matrix
    return signed_in_as


def allowed_roles(dependency: object) -> frozenset[Role] | None:
    """The roles an `allow(...)` dependency admits (None: not such a dependency)."""
    return getattr(dependency, "roles", None)


class DevIssuer:
    """An identity provider for one machine: an EC P-256 signing key (0600) and its JWKS in
    `directory`, created on first use. Never for production: whoever can read the key can
    sign in as anyone."""

    KEY_FILE = "signing-key.pem"
    JWKS_FILE = "jwks.json"

    def __init__(
        self, directory: Path, issuer: str = DEV_ISSUER, audience: str = "rcm-platform"
    ) -> None:
        self.directory = directory
        self.issuer = issuer
        self.audience = audience
        self._key = self._load_or_create()
        self.key_id = _public_jwk(self._key)["kid"]

    @property
    def jwks_url(self) -> str:
        return (self.directory / self.JWKS_FILE).resolve().as_uri()

    def token(self, subject: str, roles: Iterable[Role | str], ttl_s: int = 3600) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "roles": [str(role) for role in roles],
            "iat": now,
            "exp": now + ttl_s,
            "jti": str(uuid.uuid4()),
        }
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": self.key_id})

    def _load_or_create(self) -> ec.EllipticCurvePrivateKey:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        key_path = self.directory / self.KEY_FILE
        with open(self.directory / ".lock", "a") as lock:  # concurrent first uses: one key
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not key_path.exists():
                created = ec.generate_private_key(ec.SECP256R1())
                pem = created.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
                descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(descriptor, "wb") as file:
                    file.write(pem)
                jwks = {"keys": [_public_jwk(created)]}
                (self.directory / self.JWKS_FILE).write_text(json.dumps(jwks))
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key_path} is not an EC private key")
        return key


def _public_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    # RFC 7638: the key's id is the hash of its required members.
    members = json.dumps(
        {name: jwk[name] for name in ("crv", "kty", "x", "y")}, separators=(",", ":")
    )
    digest = hashlib.sha256(members.encode()).digest()
    jwk.update(use="sig", alg="ES256", kid=base64.urlsafe_b64encode(digest).rstrip(b"=").decode())
    return jwk

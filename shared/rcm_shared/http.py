"""HTTP guards every service's API shares: the body size limit, request bodies and path
ids the database can take, the bounds of money a person may send, and the
Idempotency-Key that every command moving money must carry."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from pydantic_core import PydanticCustomError
from rcm_contracts.base import Id
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import NotFound

# FerretDB keeps documents in PostgreSQL, which cannot hold U+0000 in text: a string
# with it fails every write and every query (a 500), so no request may carry one.
NUL = "\x00"


def _holds_nul(value: object) -> bool:
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return any(_holds_nul(item) for item in value)
    return False


class Body(BaseModel):
    """A request body: no field a person did not mean (extra fields are refused) and no
    NUL character anywhere in it, nested models included (422, without echoing it)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        if _holds_nul(data):
            raise PydanticCustomError("nul_character", "text may not contain U+0000 (NUL)")
        return data


ID: TypeAdapter[str] = TypeAdapter(Id)


def path_id(value: str, what: str) -> str:
    """The id a path names, when it can be an id at all (rcm_contracts' Id); else it names
    no such thing: 404, as for any unknown id, before the database is asked (a NUL would
    fail the query). Not echoed: it may be anything typed by mistake."""
    try:
        return ID.validate_python(value)
    except ValidationError:
        raise NotFound(f"no {what} with a malformed id") from None


# The most one amount in a person's request may be: $10,000,000.00. Far above any
# episode's bill, and far below what a BSON int64 holds, so that sums stay exact.
MAX_AMOUNT_CENTS = 1_000_000_000

AmountCents = Annotated[
    int,
    Field(
        strict=True,
        gt=0,
        le=MAX_AMOUNT_CENTS,
        description=f"Integer cents, 1 to {MAX_AMOUNT_CENTS:_} ($10,000,000.00).",
    ),
]

IDEMPOTENCY_KEY_MAX_LENGTH = 200
# What a command that moves money answers without an Idempotency-Key. 400, as the IETF
# draft of the header says (draft-ietf-httpapi-idempotency-key-header, error scenarios).
KEY_MISSING_STATUS = 400
KEY_MISSING = (
    "this command moves money: send an Idempotency-Key header (a value unique to this "
    "command, up to 200 characters) and the same key again when you retry it"
)
KEY_REQUIRED_RESPONSES: dict[int | str, dict[str, Any]] = {
    KEY_MISSING_STATUS: {"description": "No Idempotency-Key header: " + KEY_MISSING}
}


async def _idempotency_key(
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=IDEMPOTENCY_KEY_MAX_LENGTH,
            description="Required: a retry under the same key is applied once.",
        ),
    ] = None,
) -> str:
    # Declared optional so that its absence gets this answer, not a validation error.
    if idempotency_key is None:
        raise HTTPException(KEY_MISSING_STATUS, KEY_MISSING)
    return idempotency_key


# A route parameter: the request's Idempotency-Key, which it cannot be sent without.
RequiredIdempotencyKey = Annotated[str, Depends(_idempotency_key)]


class BodyLimit:
    """Refuses bodies larger than `max_bytes` with 413: a declared Content-Length before
    anything is read, a chunked body as soon as it grows past the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._too_large()(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                # Reaches FastAPI while it reads the body, which answers it as it is.
                raise HTTPException(413, self._detail())
            return message

        await self.app(scope, counted, send)

    def _too_large(self) -> Any:
        return JSONResponse({"detail": self._detail()}, status_code=413)

    def _detail(self) -> str:
        return f"the body is larger than {self.max_bytes} bytes"

"""HTTP guards every service's API shares."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


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

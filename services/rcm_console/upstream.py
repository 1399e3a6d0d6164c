"""Calls to the services, always with the signed-in person's own token.

Refusals keep their meaning: the service's 401 sends the person back to sign in, 403 and
404 are answered as they are, 409/422 come back to the page as the service's reasons
(which name ids and rules, never patient values), anything else is a 502 naming the
service. Logs say service, method, status and time, never a body.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import HTTPException

from .session import SignInNeeded, Viewer

log = logging.getLogger(__name__)


@dataclass
class Refused(Exception):
    """The service said no to a command (409 or 422); `reasons` are its words."""

    status: int
    reasons: list[str] = field(default_factory=list)


def reasons_of(body: Any) -> list[str]:
    """The service's `detail` as lines: a message, its `reasons`, or FastAPI's problems."""
    detail = body.get("detail") if isinstance(body, dict) else body
    if isinstance(detail, str):
        return [detail]
    if isinstance(detail, dict):
        lines = [str(detail["message"])] if detail.get("message") else []
        lines += [str(reason) for reason in detail.get("reasons") or []]
        return lines or [str(detail)]
    if isinstance(detail, list):
        return [
            f"{'.'.join(str(p) for p in item.get('loc', []))}: {item.get('msg', '')}"
            if isinstance(item, dict)
            else str(item)
            for item in detail
        ]
    return ["the service refused without saying why"]


class Upstream:
    def __init__(self, service_urls: dict[str, str], timeout_s: float = 15.0) -> None:
        self.service_urls = service_urls
        self.client = httpx.AsyncClient(timeout=timeout_s)

    async def close(self) -> None:
        await self.client.aclose()

    async def get(self, viewer: Viewer, service: str, path: str, /, **params: Any) -> Any:
        # Positional-only: a query parameter may be called `service` or `path` (the audit's).
        return await self._call(viewer, "GET", service, path, params=params or None)

    async def post(
        self,
        viewer: Viewer,
        service: str,
        path: str,
        body: Any = None,
        idempotency_key: str | None = None,
    ) -> Any:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return await self._call(viewer, "POST", service, path, json=body, headers=headers)

    async def put(
        self, viewer: Viewer, service: str, path: str, body: Any, idempotency_key: str
    ) -> Any:
        headers = {"Idempotency-Key": idempotency_key}
        return await self._call(viewer, "PUT", service, path, json=body, headers=headers)

    async def text(self, viewer: Viewer, service: str, path: str) -> str:
        """A text answer (an archived X12 document), refused as JSON answers are."""
        return str(await self._call(viewer, "GET", service, path, as_text=True))

    async def _call(
        self,
        viewer: Viewer,
        method: str,
        service: str,
        path: str,
        as_text: bool = False,
        **options: Any,
    ) -> Any:
        base = self.service_urls.get(service)
        if base is None:
            raise HTTPException(502, f"the console does not know where {service} is")
        headers = {"Authorization": f"Bearer {viewer.token}", **options.pop("headers", {})}
        started = time.monotonic()
        try:
            response = await self.client.request(
                method, f"{base.rstrip('/')}{path}", headers=headers, **options
            )
        except httpx.HTTPError as error:
            log.warning("%s %s unreachable: %s", method, service, type(error).__name__)
            raise HTTPException(502, f"{service} did not answer") from None
        log.info(
            "%s %s -> %s in %.0f ms",
            method,
            service,
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        status = response.status_code
        if status == 204:
            return None
        if status < 300 and as_text:
            return response.text
        body = _json(response)
        if status < 300:
            return body
        if status == 401:
            raise SignInNeeded
        if status in (403, 404):
            raise HTTPException(status, "; ".join(reasons_of(body)))
        if status in (400, 409, 422):
            raise Refused(status, reasons_of(body))
        raise HTTPException(502, f"{service} answered {status}")


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None

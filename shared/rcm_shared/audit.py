"""The audit trail: every signed-in HTTP call, allowed or refused, becomes an
`AccessRecorded` event on the audit topic before it is answered.

A call whose record cannot be written is answered 503 instead ("no record, no answer"):
a read of patient data nobody can account for must not happen. A command's effect may
already be stored then; its retry with the same Idempotency-Key answers it again, and is
recorded. Calls without a valid token have no actor to record; they are counted as 401s
by the HTTP metrics.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from rcm_contracts.audit import AccessRecorded

from .auth import Actor
from .clock import Clock, utc_now
from .envelope import Envelope
from .kafka import EventPublisher
from .redact import describe

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


class AuditTrail:
    def __init__(
        self, service_name: str, publisher: EventPublisher, clock: Clock = utc_now
    ) -> None:
        self.service_name = service_name
        self.publisher = publisher
        self.clock = clock

    async def around(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        """HTTP middleware: answer the call, record it, then send the answer."""
        given = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = given if REQUEST_ID.match(given) else str(uuid.uuid4())
        response = await call_next(request)
        actor: Actor | None = getattr(request.state, "actor", None)
        if actor is not None:
            try:
                await self.record(request, actor, response.status_code, request_id)
            except Exception as error:
                log.error("audit record not written, answering 503: %s", describe(error))
                response = JSONResponse({"detail": "busy, try again"}, status_code=503)
        response.headers[REQUEST_ID_HEADER] = request_id
        return response

    async def record(self, request: Request, actor: Actor, status: int, request_id: str) -> None:
        route = request.scope.get("route")
        template = getattr(route, "path_format", None) or request.url.path
        params = ",".join(f"{name}={value}" for name, value in request.path_params.items())
        access = AccessRecorded(
            record_id=str(uuid.uuid4()),
            actor=actor.subject,
            roles=sorted(actor.roles),
            service=self.service_name,
            action=f"{request.method} {template}",
            resource=params[:200] or None,
            status=status,
            resources=getattr(request.state, "audit_resources", None),
            request_id=request_id,
            recorded_at=self.clock(),
        )
        await self.publisher.publish(Envelope(data=access, source=f"rcm/{self.service_name}"))

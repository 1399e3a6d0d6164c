"""The audit trail: who did or read what, recorded by every service for every signed-in
call. Append-only; the audit service keeps it and answers auditors."""

from __future__ import annotations

from pydantic import Field

from .base import Event, Id, UtcDatetime, event


@event("rcm.audit.access-recorded.v1")
class AccessRecorded(Event):
    """One signed-in HTTP call, allowed or refused. Names ids, never patient values."""

    record_id: Id
    actor: str = Field(min_length=1, max_length=255, description="The token's subject.")
    roles: list[str] = Field(max_length=20, description="The platform roles the token held.")
    service: Id
    action: str = Field(
        min_length=1, max_length=120, description="The call: '<method> <route template>'."
    )
    resource: str | None = Field(
        default=None, max_length=200, description="What it touched, e.g. 'episode_id=ep-1'."
    )
    status: int = Field(ge=100, le=599, description="The HTTP status answered.")
    resources: list[Id] | None = Field(
        default=None,
        max_length=500,
        description="Every id a call about many touched (a bulk action's items).",
    )
    request_id: str = Field(min_length=1, max_length=100)
    recorded_at: UtcDatetime

    @property
    def key(self) -> str:
        return self.actor  # one person's trail stays in order

"""The audit trail as auditors read it: one record per signed-in HTTP call of any service
(rcm_contracts.audit.AccessRecorded), kept as it was published and never changed.

Pure: the record an event becomes, what a second delivery under the same record id may
be, and what a query of the trail may ask. No I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from rcm_contracts.audit import AccessRecorded
from rcm_shared.errors import Conflict

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000  # every query is bounded: on FerretDB it reads the collection (store.py)
# An id, or one `name=value` part of a record's resource (AuditTrail writes path
# parameters as `name=value,name=value`). Characters of ids only, so the regular
# expression built from it (store.py) means the same in every MongoDB dialect.
RESOURCE_PART = r"^[A-Za-z0-9._:@-]+(=[A-Za-z0-9._:@-]+)?$"
SERVICE_NAME = r"^[a-z][a-z0-9-]*$"


class AuditRecord(BaseModel):
    """One signed-in call, allowed or refused: who, with which roles, did what to which
    resource in which service, how it was answered, and when."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    record_id: str
    recorded_at: datetime
    actor: str
    roles: list[str]
    service: str
    action: str
    resource: str | None
    status: int
    request_id: str
    resources: list[str] | None = None  # a bulk action's items


class RecordPage(BaseModel):
    """The newest records that match, and whether older ones match too."""

    records: list[AuditRecord]
    more: bool = Field(
        description="Older records match as well: narrow the filters, or ask again with "
        "`until` = the oldest record's `recorded_at`."
    )


def record_of(event: AccessRecorded) -> AuditRecord:
    """The record as the store keeps it. Its time is cut to the millisecond, BSON's
    precision, so the record a redelivery builds equals the one read back."""
    at = event.recorded_at
    return AuditRecord.model_validate(
        {
            **event.model_dump(),
            "recorded_at": at.replace(microsecond=at.microsecond // 1000 * 1000),
        }
    )


def check_redelivery(kept: AuditRecord, arriving: AuditRecord) -> None:
    """A record id already kept: the same record again is a redelivery (nothing to do);
    other content under that id is refused (dead-lettered), and the first record stays."""
    if kept != arriving:
        raise Conflict(f"audit record {arriving.record_id} is kept already, with other content")


class RecordQuery(BaseModel):
    """What an auditor may ask of the trail (GET /records): every filter given must hold.
    Unknown filters are refused rather than ignored: a misspelt one would widen the
    answer without saying so."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    actor: str | None = Field(
        default=None, min_length=1, max_length=255, description="Exactly this subject."
    )
    service: str | None = Field(
        default=None,
        max_length=64,
        pattern=SERVICE_NAME,
        description="Exactly this service, e.g. 'collections'.",
    )
    action: str | None = Field(
        default=None,
        min_length=1,
        max_length=120,
        description="Exactly this call, '<method> <route template>', e.g. "
        "'GET /accounts/{episode_id}'.",
    )
    resource: str | None = Field(
        default=None,
        max_length=200,
        pattern=RESOURCE_PART,
        description="An id ('E1') or a 'name=value' pair ('episode_id=E1'): records whose "
        "resource holds it as a whole part (E1 finds 'episode_id=E1', not 'episode_id=E12').",
    )
    status: int | None = Field(
        default=None, ge=100, le=599, description="Exactly this HTTP status."
    )
    since: AwareDatetime | None = Field(
        default=None, description="Recorded at or after this time (with its UTC offset)."
    )
    until: AwareDatetime | None = Field(
        default=None, description="Recorded before this time (with its UTC offset)."
    )
    limit: int = Field(
        default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="At most this many, newest first."
    )

    @model_validator(mode="after")
    def _since_before_until(self) -> Self:
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValueError("since must be before until")
        return self

"""Building blocks shared by every event contract.

Events are the only thing services share. Each is a frozen pydantic model bound to
one versioned type name (`rcm.<service>.<event>.v<major>`), which is also its topic.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

Cents = Annotated[int, Field(strict=True, description="Money in integer US cents.")]
NonNegativeCents = Annotated[
    int, Field(strict=True, ge=0, description="Money in integer US cents, >= 0.")
]
Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
Npi = Annotated[str, StringConstraints(pattern=r"^\d{10}$")]


def _require_utc(value: datetime) -> datetime:
    if value.utcoffset() != timedelta(0):
        raise ValueError("times are UTC (offset +00:00)")
    return value


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_require_utc)]


class Contract(BaseModel):
    """Base for event payloads and their parts.

    Readers ignore fields they do not know (a newer producer may add optional ones);
    models are frozen so an event cannot be changed after it is built.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)


class Event(Contract):
    """An event payload, bound to its versioned type name by `@event`."""

    event_type: ClassVar[str]

    @property
    def key(self) -> str:
        """Kafka key and CloudEvents subject: events with one key keep their order."""
        raise NotImplementedError


class EpisodeEvent(Event):
    """An event about one patient episode; keyed by it, so an episode keeps its order."""

    episode_id: Id = Field(description="The patient episode this event belongs to.")

    @property
    def key(self) -> str:
        return self.episode_id


class Request(Event):
    """A person's command, sent through Kafka to the one process that owns its key, which
    applies it in order with that key's events and answers the asker (rcm_shared.requests).
    Only the service that owns the key consumes it."""

    requested_by: Id = Field(description="Who asked: the signed-in user's id.")


class EpisodeRequest(EpisodeEvent, Request):
    """A command about one patient episode."""


E = TypeVar("E", bound=type[Event])

CATALOG: dict[str, type[Event]] = {}


def event(event_type: str) -> Any:
    """Register an event model under its versioned type name."""
    parts = event_type.split(".")
    if len(parts) != 4 or parts[0] != "rcm" or not parts[3].startswith("v"):
        raise ValueError(f"event type must look like rcm.<service>.<event>.v<n>: {event_type}")

    def register(model: E) -> E:
        if event_type in CATALOG:
            raise ValueError(f"event type registered twice: {event_type}")
        model.event_type = event_type
        CATALOG[event_type] = model
        return model

    return register

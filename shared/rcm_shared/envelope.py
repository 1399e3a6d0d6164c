"""CloudEvents 1.0 in Kafka binary mode.

The value is the event's JSON; the attributes travel as `ce_*` headers, the key and
`ce_subject` are the event's key (the episode id for episode events), and the W3C
`traceparent` header is added by the telemetry middleware.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Generic, TypeVar

from pydantic import ValidationError
from rcm_contracts import CATALOG, Event

from .redact import Redacted, problems

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"

E = TypeVar("E", bound=Event)


class InvalidEnvelope(Redacted, ValueError):
    """A message that is not a well-formed v1 CloudEvent of a known type: permanent."""


@dataclass(frozen=True)
class Envelope(Generic[E]):
    data: E
    source: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def type(self) -> str:
        return self.data.event_type

    @property
    def subject(self) -> str:
        return self.data.key

    def headers(self) -> dict[str, str]:
        return {
            "ce_specversion": SPEC_VERSION,
            "ce_id": self.id,
            "ce_source": self.source,
            "ce_type": self.type,
            "ce_time": self.time.isoformat().replace("+00:00", "Z"),
            "ce_subject": self.subject,
            "content-type": CONTENT_TYPE,
        }

    def value(self) -> bytes:
        return self.data.model_dump_json().encode()


def _text(headers: dict[str, str | bytes], name: str) -> str:
    raw = headers.get(name)
    if raw is None:
        raise InvalidEnvelope(f"missing header {name}")
    return raw.decode() if isinstance(raw, bytes) else raw


def decode(
    headers: dict[str, str | bytes], value: bytes, expected: type[E] | None = None
) -> Envelope[E]:
    """Parse a Kafka message into an envelope; anything malformed is InvalidEnvelope."""
    if _text(headers, "ce_specversion") != SPEC_VERSION:
        raise InvalidEnvelope(f"unsupported ce_specversion {_text(headers, 'ce_specversion')!r}")
    content_type = _text(headers, "content-type")
    if content_type.split(";")[0].strip() != CONTENT_TYPE:
        raise InvalidEnvelope(f"unsupported content-type {content_type!r}")
    event_type = _text(headers, "ce_type")
    model = CATALOG.get(event_type)
    if model is None:
        raise InvalidEnvelope(f"unknown event type {event_type!r}")
    if expected is not None and model is not expected:
        raise InvalidEnvelope(f"expected {expected.event_type}, got {event_type}")
    try:
        data = model.model_validate_json(value)
    except ValidationError as error:
        raise InvalidEnvelope(f"invalid {event_type}: {problems(error)}") from None
    try:
        time = datetime.fromisoformat(_text(headers, "ce_time"))
    except ValueError:
        raise InvalidEnvelope("ce_time is not an ISO 8601 time") from None
    if time.tzinfo is None:
        raise InvalidEnvelope("ce_time has no time zone")
    subject = _text(headers, "ce_subject")
    if subject != data.key:
        raise InvalidEnvelope(f"ce_subject {subject!r} does not match the event key {data.key!r}")
    return Envelope(
        data=data,  # type: ignore[arg-type]
        source=_text(headers, "ce_source"),
        id=_text(headers, "ce_id"),
        time=time,
    )

"""CloudEvents 1.0 in Kafka binary mode.

The value is the event's JSON; the attributes travel as `ce_*` headers, the key and
`ce_subject` are the event's key (the episode id for episode events), and the W3C
`traceparent` header is added by the telemetry middleware.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Generic, TypeVar

from pydantic import ValidationError
from rcm_contracts import CATALOG, Event

from .redact import Redacted, problems

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
# Ids are stored with every cause an aggregate applied and written to logs: a bound keeps
# a hostile producer from bloating documents, printable characters from forging log lines.
MAX_ID_LENGTH = 128
QUOTED_LENGTH = 64  # header values quoted in a refusal: enough to recognise, no more

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


Headers = Mapping[str, str | bytes | None]


def _quoted(value: str) -> str:
    return repr(value if len(value) <= QUOTED_LENGTH else f"{value[:QUOTED_LENGTH]}...")


def _readable(headers: Headers) -> None:
    """Every header must be text: a null or undecodable value is a broken (or hostile)
    producer, whichever header it is in."""
    for name, raw in headers.items():
        if raw is None:
            raise InvalidEnvelope(f"header {_quoted(name)} has no value")
        if isinstance(raw, bytes):
            try:
                raw.decode()
            except UnicodeDecodeError:
                raise InvalidEnvelope(f"header {_quoted(name)} is not UTF-8") from None


def _text(headers: Headers, name: str) -> str:
    raw = headers.get(name)
    if raw is None:
        raise InvalidEnvelope(f"missing header {name}")
    return raw.decode() if isinstance(raw, bytes) else raw


def _id(headers: Headers) -> str:
    event_id = _text(headers, "ce_id")
    if not event_id:
        raise InvalidEnvelope("ce_id is empty")
    if len(event_id) > MAX_ID_LENGTH:
        raise InvalidEnvelope(f"ce_id is longer than {MAX_ID_LENGTH} characters")
    if not event_id.isprintable():
        raise InvalidEnvelope("ce_id holds control characters")
    return event_id


def decode(headers: Headers, value: bytes, expected: type[E] | None = None) -> Envelope[E]:
    """Parse a Kafka message into an envelope; anything malformed is InvalidEnvelope."""
    _readable(headers)
    specversion = _text(headers, "ce_specversion")
    if specversion != SPEC_VERSION:
        raise InvalidEnvelope(f"unsupported ce_specversion {_quoted(specversion)}")
    content_type = _text(headers, "content-type")
    if content_type.split(";")[0].strip() != CONTENT_TYPE:
        raise InvalidEnvelope(f"unsupported content-type {_quoted(content_type)}")
    event_id = _id(headers)
    event_type = _text(headers, "ce_type")
    model = CATALOG.get(event_type)
    if model is None:
        raise InvalidEnvelope(f"unknown event type {_quoted(event_type)}")
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
        raise InvalidEnvelope(
            f"ce_subject {_quoted(subject)} does not match the event key {data.key!r}"
        )
    return Envelope(
        data=data,  # type: ignore[arg-type]
        source=_text(headers, "ce_source"),
        id=event_id,
        time=time,
    )

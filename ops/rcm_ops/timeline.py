"""`rcm episode timeline`: one episode's events across every topic, in time order.

Reads each `rcm.*` topic of a prefix from the beginning with a throwaway consumer (no
group, nothing committed) up to the end offsets seen at start, keeps the records whose
`ce_subject` (or key) is the episode, and prints them with who produced them, a one-line
money/status summary and the trace id (to look the trace up in Jaeger).

Minimum necessary PHI: summaries are built from ids, codes, money and status only, and
the JSON output drops patient, person, documentation and free-text fields.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import typer
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from rcm_contracts import CATALOG
from rcm_shared.kafka import DLQ_SUFFIX
from rich.console import Console
from rich.table import Table

from .transport import kafka_options

REPLAYED_SUFFIX = ".replayed"
REPLAYED_FROM = "replayed_from"  # header of a re-published dead letter
READ_TIMEOUT_S = 120.0

app = typer.Typer(help="One patient episode across services.", no_args_is_help=True)

BOOTSTRAP = typer.Option(
    "127.0.0.1:9092", "--bootstrap", envvar="KAFKA_BOOTSTRAP_SERVERS", help="Kafka servers."
)
PREFIX = typer.Option(
    "", "--prefix", envvar="RCM_TOPIC_PREFIX", help="Topic prefix of the platform, e.g. 'demo.'."
)


# ---------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Message:
    """A Kafka record as the tools need it (decoded headers), independent of the client."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Mapping[str, str]
    timestamp_ms: int

    @classmethod
    def of(cls, record: Any) -> Message:
        return cls(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            headers={name: raw.decode(errors="replace") for name, raw in record.headers or ()},
            timestamp_ms=record.timestamp,
        )

    @property
    def subject(self) -> str | None:
        """The episode (or other aggregate) the record is about: ce_subject, else the key."""
        subject = self.headers.get("ce_subject")
        if subject:
            return subject
        return self.key.decode(errors="replace") if self.key else None

    @property
    def time(self) -> datetime:
        """When the producer made the event (ce_time); the Kafka timestamp if unreadable."""
        try:
            made = datetime.fromisoformat(self.headers["ce_time"])
            if made.tzinfo is not None:
                return made.astimezone(UTC)
        except (KeyError, ValueError):
            pass
        return datetime.fromtimestamp(self.timestamp_ms / 1000, UTC)

    def payload(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.value or b"")
        except ValueError:
            return None
        return data if isinstance(data, dict) else None


def is_event_topic(topic: str, prefix: str, with_dead_letters: bool = False) -> bool:
    """An `rcm.*` topic of the prefix; dead-letter topics only when asked for."""
    if not topic.startswith(f"{prefix}rcm.") or topic.endswith(REPLAYED_SUFFIX):
        return False
    return with_dead_letters or not topic.endswith(DLQ_SUFFIX)


async def list_topics(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **kafka_options())
    await admin.start()
    try:
        return sorted(await admin.list_topics())
    finally:
        await admin.close()


async def partitions_of(bootstrap: str, topics: Iterable[str]) -> list[TopicPartition]:
    """The partitions of the topics that exist. Missing ones are left out and not asked
    about: a metadata request for a missing topic creates it where auto-create is on."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **kafka_options())
    await admin.start()
    try:
        existing = sorted(set(topics) & set(await admin.list_topics()))
        described = await admin.describe_topics(existing) if existing else []
    finally:
        await admin.close()
    return [
        TopicPartition(topic["topic"], partition["partition"])
        for topic in described
        if topic["error_code"] == 0
        for partition in sorted(topic["partitions"], key=lambda p: p["partition"])
    ]


async def read_topics(
    bootstrap: str, topics: Iterable[str], timeout_s: float = READ_TIMEOUT_S
) -> list[Message]:
    """Every record of the topics from the beginning to the end offsets read at start.

    No consumer group: nothing is committed and no running consumer is disturbed.
    """
    topics = list(topics)
    partitions = await partitions_of(bootstrap, topics) if topics else []
    if not partitions:
        return []
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        client_id="rcm-ops-reader",
        **kafka_options(),
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        remaining = {tp for tp in partitions if ends[tp] > starts[tp]}
        await consumer.seek_to_beginning(*partitions)
        messages: list[Message] = []
        deadline = time.monotonic() + timeout_s
        while remaining:
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {len(remaining)} partitions to their end")
            batch = await consumer.getmany(*remaining, timeout_ms=500)
            for tp, records in batch.items():
                messages.extend(Message.of(r) for r in records if r.offset < ends[tp])
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return messages
    finally:
        await consumer.stop()


# ---------------------------------------------------------------------------- summaries


def dollars(cents: Any) -> str:
    """Integer cents as dollars with cents: 123456 -> $1,234.56; -500 -> -$5.00."""
    if not isinstance(cents, int) or isinstance(cents, bool):
        return "?"
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}${whole:,}.{part:02d}"


def short_type(event_type: str) -> str:
    """rcm.claims.claim-paid.v1 -> claim-paid (other shapes are kept as they are)."""
    parts = event_type.split(".")
    return parts[2] if len(parts) == 4 and parts[0] == "rcm" else event_type


def _percent(basis_points: Any) -> str:
    return f"{basis_points / 100:g}%" if isinstance(basis_points, int) else "?"


def _claim_ref(data: Mapping[str, Any]) -> str:
    return f"claim {data.get('claim_id', '?')}"


def _coverages(data: Mapping[str, Any]) -> str:
    coverages = data.get("coverages") or []
    if not coverages:
        return "no coverage (self-pay)"
    ranked = ", ".join(f"{c.get('rank', '?')} {c.get('payer_id', '?')}" for c in coverages)
    return f"{len(coverages)} coverage(s): {ranked}"


def _eligibility_verified(data: Mapping[str, Any]) -> str:
    return (
        f"{data.get('rank', '?')} {data.get('payer_id', '?')} active: "
        f"copay {dollars(data.get('copay_cents'))}, "
        f"deductible left {dollars(data.get('deductible_remaining_cents'))}, "
        f"coinsurance {_percent(data.get('coinsurance_basis_points'))}"
    )


def _eligibility_failed(data: Mapping[str, Any]) -> str:
    payer = data.get("payer_id") or "no payer"
    self_pay = ", self-pay" if data.get("self_pay") else ""
    return f"{payer} {data.get('reason', '?')}{self_pay}"


def _coded(data: Mapping[str, Any]) -> str:
    lines = data.get("charge_lines") or []
    codes = " ".join(str(line.get("procedure_code", "?")) for line in lines)
    text = (
        f"case {data.get('coding_case_id', '?')}: {len(lines)} line(s) {codes}, "
        f"total {dollars(data.get('total_charge_cents'))}"
    )
    return f"{text}, {data['reason']}" if data.get("reason") else text


def _claim_submitted(data: Mapping[str, Any]) -> str:
    frequency = {"1": "original", "7": "corrected", "8": "void"}.get(
        str(data.get("frequency")), "?"
    )
    return (
        f"{_claim_ref(data)} to {data.get('payer_id', '?')} ({data.get('rank', '?')}, "
        f"{frequency}) {dollars(data.get('total_charge_cents'))}, "
        f"{len(data.get('lines') or [])} line(s)"
    )


def _claim_rejected(data: Mapping[str, Any]) -> str:
    codes = ",".join(str(code) for code in data.get("status_codes") or [])
    return f"{_claim_ref(data)} rejected at {data.get('stage', '?')}: {codes}"


def _claim_denied(data: Mapping[str, Any]) -> str:
    reasons = ", ".join(
        f"{r.get('group_code', '?')}-{r.get('reason_code', '?')} {dollars(r.get('amount_cents'))}"
        for r in data.get("reasons") or []
    )
    return (
        f"{_claim_ref(data)} denied by {data.get('payer_id', '?')}: "
        f"{data.get('category', '?')} ({reasons})"
    )


def _claim_paid(data: Mapping[str, Any]) -> str:
    return (
        f"{_claim_ref(data)} paid {dollars(data.get('paid_cents'))} by "
        f"{data.get('payer_id', '?')} ({data.get('rank', '?')}), patient owes "
        f"{dollars(data.get('patient_responsibility_cents'))}"
    )


def _claim_closed(data: Mapping[str, Any]) -> str:
    return (
        f"{_claim_ref(data)} closed {data.get('outcome', '?')}; "
        f"{data.get('open_claims', '?')} open, sequence {data.get('sequence', '?')}"
    )


def _payment_posted(data: Mapping[str, Any]) -> str:
    responsibility = data.get("patient_responsibility") or {}
    owed = sum(
        value
        for value in responsibility.values()
        if isinstance(value, int) and not isinstance(value, bool)
    )
    allowed = data.get("allowed_cents")
    allowed_text = f", allowed {dollars(allowed)}" if allowed is not None else ""
    return (
        f"{_claim_ref(data)} {data.get('status', '?')} by {data.get('payer_id', '?')} "
        f"({data.get('rank', '?')}): charge {dollars(data.get('charge_cents'))}, "
        f"paid {dollars(data.get('paid_cents'))}{allowed_text}, patient {dollars(owed)}; "
        f"posting {data.get('posting_id', '?')}"
    )


def _episode_closed(data: Mapping[str, Any]) -> str:
    totals = data.get("totals") or {}
    return (
        f"closed: charges {dollars(totals.get('charges_cents'))}, "
        f"payer paid {dollars(totals.get('payer_paid_cents'))}, "
        f"adjustments {dollars(totals.get('adjustments_cents'))}, "
        f"patient paid {dollars(totals.get('patient_paid_cents'))}, "
        f"written off {dollars(totals.get('written_off_cents'))}, "
        f"balance {dollars(totals.get('balance_cents'))}"
    )


SUMMARIES: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "appointment-scheduled": lambda d: (
        f"appointment {d.get('appointment_id', '?')} ({d.get('visit_type', '?')}) "
        f"at {d.get('scheduled_start', '?')}"
    ),
    "appointment-cancelled": lambda d: f"appointment {d.get('appointment_id', '?')} cancelled",
    "patient-registered": lambda d: (
        f"patient {d.get('patient_id', '?')}, guarantor {d.get('guarantor_id', '?')}"
    ),
    "coverage-updated": _coverages,
    "patient-checked-in": lambda d: f"appointment {d.get('appointment_id', '?')} checked in",
    "encounter-completed": lambda d: (
        f"encounter {d.get('encounter_id', '?')} on {d.get('date_of_service', '?')}, "
        f"place of service {d.get('place_of_service', '?')}"
    ),
    "eligibility-verified": _eligibility_verified,
    "eligibility-failed": _eligibility_failed,
    "coding-completed": _coded,
    "coding-corrected": _coded,
    "claim-submitted": _claim_submitted,
    "claim-accepted": lambda d: f"{_claim_ref(d)} accepted at {d.get('stage', '?')}",
    "claim-rejected": _claim_rejected,
    "claim-denied": _claim_denied,
    "claim-resubmitted": lambda d: (
        f"{_claim_ref(d)} replaces {d.get('replaces_claim_id', '?')} "
        f"(frequency {d.get('frequency', '?')})"
    ),
    "claim-appealed": lambda d: f"{_claim_ref(d)} appealed ({d.get('appeal_id', '?')})",
    "claim-paid": _claim_paid,
    "claim-closed": _claim_closed,
    "payment-posted": _payment_posted,
    "remittance-processed": lambda d: (
        f"remittance {d.get('remittance_id', '?')} from {d.get('payer_id', '?')}: "
        f"{dollars(d.get('payment_cents'))}, {d.get('claims_posted', '?')} posted, "
        f"{d.get('claims_unpostable', '?')} unpostable"
    ),
    "patient-payment-received": lambda d: (
        f"payment {d.get('payment_id', '?')} {dollars(d.get('amount_cents'))} "
        f"by {d.get('method', '?')}"
    ),
    "refund-issued": lambda d: (
        f"refund {d.get('refund_id', '?')} {dollars(d.get('amount_cents'))} "
        f"to {d.get('recipient', '?')}"
    ),
    "statement-issued": lambda d: (
        f"statement {d.get('statement_id', '?')} #{d.get('sequence', '?')}: "
        f"{dollars(d.get('amount_due_cents'))} due {d.get('due_date', '?')}"
    ),
    "payment-plan-created": lambda d: (
        f"plan {d.get('plan_id', '?')}: {dollars(d.get('total_cents'))} in "
        f"{d.get('installments', '?')} x {dollars(d.get('installment_cents'))}"
    ),
    "balance-written-off": lambda d: (
        f"wrote off {dollars(d.get('amount_cents'))} ({d.get('reason', '?')})"
    ),
    "episode-closed": _episode_closed,
}


def summarize(event_type: str, data: Mapping[str, Any] | None) -> str:
    """One line of ids, codes, money and status; never names, notes or diagnoses."""
    if data is None:
        return "(payload is not a JSON object)"
    summary = SUMMARIES.get(short_type(event_type))
    if summary is None:
        return "(no summary for this event type)"
    try:
        return summary(data)
    except (AttributeError, TypeError, ValueError):
        return "(payload does not have the expected shape)"


# Removed at any depth from machine output: identify or describe the patient.
PHI_FIELDS = frozenset(
    {
        "patient",
        "person",
        "subscriber",
        "documentation",
        "note",
        "address",
        "first_name",
        "last_name",
        "birth_date",
        "member_id",
        "group_number",
        "diagnoses",
    }
)
# Free text people typed may say anything; kept only where the contract makes it a code.
FREE_TEXT_FIELDS = frozenset({"reason", "detail", "message"})


def _is_enum_field(event_type: str, name: str) -> bool:
    model = CATALOG.get(event_type)
    field = model.model_fields.get(name) if model is not None else None
    annotation = field.annotation if field is not None else None
    return isinstance(annotation, type) and issubclass(annotation, str) and annotation is not str


def redact(value: Any, event_type: str = "", top: bool = True) -> Any:
    """A payload without PHI fields and free text (codes of the contract are kept)."""
    if isinstance(value, list):
        return [redact(item, event_type, top=False) for item in value]
    if not isinstance(value, dict):
        return value
    kept: dict[str, Any] = {}
    for name, item in value.items():
        if name in PHI_FIELDS:
            continue
        if name in FREE_TEXT_FIELDS and not (top and _is_enum_field(event_type, name)):
            continue
        kept[name] = redact(item, event_type, top=False)
    return kept


# ---------------------------------------------------------------------------- timeline


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id of a W3C traceparent (version-traceid-spanid-flags), if well-formed."""
    if not traceparent:
        return None
    parts = traceparent.strip().split("-")
    if len(parts) < 4 or len(parts[1]) != 32:
        return None
    trace_id = parts[1].lower()
    if trace_id == "0" * 32 or any(c not in "0123456789abcdef" for c in trace_id):
        return None
    return trace_id


@dataclass(frozen=True)
class Entry:
    time: datetime
    source: str
    event_type: str
    summary: str
    trace_id: str | None
    event_id: str | None
    topic: str
    partition: int
    offset: int
    data: Mapping[str, Any] | None
    dead_letter: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "time": self.time.isoformat().replace("+00:00", "Z"),
            "source": self.source,
            "type": self.event_type,
            "summary": self.summary,
            "trace_id": self.trace_id,
            "event_id": self.event_id,
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "dead_letter": self.dead_letter,
            "data": redact(self.data, self.event_type) if self.data is not None else None,
        }


def entry_of(message: Message) -> Entry:
    headers = message.headers
    event_type = headers.get("ce_type", "?")
    data = message.payload()
    summary = summarize(event_type, data)
    dead_letter = "dlq_original_topic" in headers
    when = message.time
    if dead_letter:
        group = headers.get("dlq_consumer_group", "?")
        error = headers.get("dlq_exception_class", "?").rsplit(".", 1)[-1]
        reason = headers.get("dlq_exception_message", "")[:200]
        summary = f"DEAD LETTER in {group}: {error}: {reason}"
        with contextlib.suppress(KeyError, ValueError):
            when = datetime.fromisoformat(headers["dlq_failed_at"]).astimezone(UTC)
    if REPLAYED_FROM in headers:
        # Dated when it was re-published, so it follows the dead letter it came from.
        made = when.isoformat().replace("+00:00", "Z")
        summary = f"{summary} (replay of dead letter {headers[REPLAYED_FROM]}, made {made})"
        when = datetime.fromtimestamp(message.timestamp_ms / 1000, UTC)
    return Entry(
        time=when,
        source=headers.get("ce_source", "?"),
        event_type=event_type,
        summary=summary,
        trace_id=trace_id_of(headers.get("traceparent")),
        event_id=headers.get("ce_id"),
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        data=data,
        dead_letter=dead_letter,
    )


def episode_timeline(messages: Iterable[Message], episode_id: str) -> list[Entry]:
    """The episode's records as entries, oldest first (ties keep topic/offset order)."""
    entries = [entry_of(m) for m in messages if m.subject == episode_id]
    return sorted(entries, key=lambda e: (e.time, e.topic, e.partition, e.offset))


async def read_episode(
    bootstrap: str, episode_id: str, prefix: str = "", with_dead_letters: bool = False
) -> list[Entry]:
    topics = [
        t for t in await list_topics(bootstrap) if is_event_topic(t, prefix, with_dead_letters)
    ]
    return episode_timeline(await read_topics(bootstrap, topics), episode_id)


def render(entries: list[Entry], episode_id: str, console: Console) -> None:
    table = Table(title=f"episode {episode_id}: {len(entries)} event(s)", title_justify="left")
    table.add_column("time (UTC)", no_wrap=True)
    table.add_column("service", no_wrap=True)
    table.add_column("event", overflow="fold")
    table.add_column("summary", overflow="fold")
    table.add_column("trace id", no_wrap=True, style="dim")
    for entry in entries:
        table.add_row(
            entry.time.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
            entry.source.removeprefix("rcm/"),
            short_type(entry.event_type),
            entry.summary,
            entry.trace_id or "-",
            style="red" if entry.dead_letter else None,
        )
    console.print(table)


@app.command()
def timeline(
    episode_id: str = typer.Argument(..., help="The episode id (E + 12 hex digits)."),
    prefix: str = PREFIX,
    bootstrap: str = BOOTSTRAP,
    with_dead_letters: bool = typer.Option(
        False, "--with-dead-letters", help="Also read the .dlq topics."
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Every event of one episode across services, in time order, with trace ids."""
    entries = asyncio.run(read_episode(bootstrap, episode_id, prefix, with_dead_letters))
    if as_json:
        print(json.dumps([e.as_json() for e in entries], indent=2))
    else:
        render(entries, episode_id, Console())
    if not entries:
        raise typer.Exit(1)

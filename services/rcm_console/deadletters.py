"""The dead-letter queue as ops sees it, read from Kafka without a consumer group.

Only the dead letter's type, reason (the failure as `rcm_shared.redact` said it), time,
key and offsets are shown; the payload is never read into a page.
"""

from __future__ import annotations

from dataclasses import dataclass

from rcm_ops.deadletters import dead_letter_topics, load


@dataclass(frozen=True)
class Row:
    event_type: str
    reason: str
    failed_at: str
    key: str
    original: str  # topic:partition:offset
    position: str  # where it sits on the .dlq topic
    group: str
    replayed: str


async def read(bootstrap: str, prefix: str, limit: int = 500) -> list[Row]:
    dead_letters, replays = await load(bootstrap, await dead_letter_topics(bootstrap, prefix, None))
    rows = []
    for dead in dead_letters:
        topic, partition, offset = dead.original_position
        replay = replays.get(dead.position)
        key = dead.message.key
        rows.append(
            Row(
                event_type=dead.event_type or "(not a CloudEvent)",
                reason=reason_of(dead.exception_class, dead.exception_message),
                failed_at=dead.failed_at,
                key=key.decode(errors="replace")[:80] if key else "-",
                original=f"{topic.removeprefix(prefix)}:{partition}:{offset}",
                position=dead.position.removeprefix(prefix),
                group=dead.group.removeprefix(prefix),
                replayed=str(replay.get("replayed_at", "yes")) if replay else "no",
            )
        )
    rows.sort(key=lambda row: row.failed_at, reverse=True)
    return rows[:limit]


def reason_of(exception_class: str, message: str) -> str:
    """`Class: message`, once: some consumers already put the class in the message."""
    name = exception_class.rsplit(".", 1)[-1]
    said = message if message.startswith(f"{name}:") else f"{name}: {message}"
    return said[:400]

"""People's commands through Kafka: the owner answers, refuses, or says it could not."""

from __future__ import annotations

from typing import Any

import pytest
from rcm_contracts.collections import PaymentPlanRequested
from rcm_shared.envelope import Envelope
from rcm_shared.errors import Conflict
from rcm_shared.kafka import Consumer, EventPublisher, Topics, ensure_topics, make_broker
from rcm_shared.ownership import Ownership
from rcm_shared.requests import Replies, Reply, Requester

from tests.conftest import Infra

from .helpers import eventually, read_topic

pytestmark = pytest.mark.integration

PARTITIONS = 6


def plan(installments: int, episode: str = "E0000000000a1") -> PaymentPlanRequested:
    return PaymentPlanRequested(
        episode_id=episode, requested_by="collector-1", installments=installments
    )


async def test_owner_answers_refuses_or_reports_and_keys_stay_with_their_request(
    infra: Infra, topics: Topics, database: Any
) -> None:
    await ensure_topics(infra.kafka, [topics.of(PaymentPlanRequested)], PARTITIONS, 1)
    broker = make_broker(infra.kafka, "test-requests")
    ownership = Ownership(PARTITIONS)
    consumer = Consumer(broker, topics, f"{topics.prefix}collections", ownership=ownership)
    consumer.replies = Replies(database)
    handled: list[str] = []

    @consumer.on(PaymentPlanRequested)
    async def create(envelope: Envelope[PaymentPlanRequested]) -> object:
        handled.append(envelope.id)
        if envelope.data.installments == 13:
            raise Conflict("episode E0000000000a1 has no open statement")
        if envelope.data.installments == 14:
            raise RuntimeError("a bug")
        return Reply(201, {"installments": envelope.data.installments})

    requester = Requester(
        EventPublisher(broker, topics), consumer.replies, database, "rcm/test", timeout_s=30
    )
    consumer.start()
    await broker.start()
    try:

        async def assigned() -> bool:
            return bool(ownership.owned)

        await eventually(assigned, timeout_s=60)
        assert await requester.ask(plan(3)) == Reply(201, {"installments": 3})
        assert await requester.ask(plan(13)) == Reply(
            409, "episode E0000000000a1 has no open statement"
        )
        failed = await requester.ask(plan(14))
        assert failed.status == 500
        (dead,) = await read_topic(infra.kafka, f"{topics.of(PaymentPlanRequested)}.dlq", 1)
        # Where it failed, not what it said: an exception's text may quote patient data.
        reason = dict(dead.headers)["dlq_exception_message"]
        assert reason.startswith(b"RuntimeError at test_requests.py:"), reason
        assert b"a bug" not in reason

        first = await requester.ask(plan(4), idempotency_key="k-1")
        again = await requester.ask(plan(4), idempotency_key="k-1")
        assert first == again == Reply(201, {"installments": 4})
        assert len(handled) == 5
        assert len(set(handled)) == 4  # the retry is the same request, answered again
        with pytest.raises(Conflict, match="Idempotency-Key"):
            await requester.ask(plan(5), idempotency_key="k-1")
        assert len(handled) == 5  # refused before it was sent
    finally:
        await broker.stop()

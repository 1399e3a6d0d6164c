"""Every service's HTTP API, fuzzed from its own OpenAPI document with schemathesis.

Each of the six services is built with its schema served (`api_docs=True`) and run
against real Kafka and FerretDB (`running`); schemathesis generates requests that fit the
schema and requests that do not, signed in with every role, and no answer may be a
server error. Commands reach their owner through Kafka and come back, as in production.

Random ids name nothing, so most commands would stop at a 404. Each service is given
something that exists first (an episode, an account with a statement, a coding case),
and half of the generated requests name it: their bodies reach the owner's decisions.

A 503 is what a command answers when its owner did not answer within
`request_timeout_s`. It is not counted as a failure only when it is transient: the same
request (same Idempotency-Key, when it has one) sent again is then answered without a
server error. A request that keeps answering 503 (an owner that cannot apply it, or a
consumer stuck on it) fails the test like a 500 does. The timeout is short here so that
such a request costs seconds, not minutes.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from rcm_claims import app as claims
from rcm_coding import app as coding
from rcm_collections import app as collections
from rcm_contracts.registration import AppointmentScheduled
from rcm_eligibility import app as eligibility
from rcm_payments import app as payments
from rcm_registration import app as registration
from rcm_shared.auth import Role
from rcm_shared.envelope import Envelope
from rcm_shared.kafka import Topics
from rcm_shared.service import Service
from rcm_shared.settings import ServiceSettings
from schemathesis.checks import not_a_server_error
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.conftest import Infra

from .helpers import eventually, serving
from .services import running, settings_for, signed_in
from .test_coding import encounter, opened_case
from .test_collections import Episode, account_when
from .test_registration import APPOINTMENT

pytestmark = [
    pytest.mark.integration,
    # schemathesis' strategies use `random` inside; hypothesis warns about it on every run.
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning"),
]

# Generated examples per operation (after its boundary cases), fitting the schema or not,
# naming what is known or not: the six services stay within about two minutes on two cores.
EXAMPLES = 20
REQUEST_TIMEOUT_S = 3.0
RETRIES_OF_A_503 = 3

Known = dict[str, str]  # ids of what exists: path parameter or body field -> value


async def scheduled_episode(service: Service, client: httpx.AsyncClient, _: Topics) -> Known:
    response = await client.post("/appointments", json=APPOINTMENT)
    assert response.status_code == 201, response.text
    return {"episode_id": response.json()["episode_id"]}


async def open_coding_case(service: Service, client: httpx.AsyncClient, _: Topics) -> Known:
    episode_id = "Efuzz0000c0d"
    await service.publisher.publish(Envelope(data=encounter(episode_id), source="rcm/test"))
    return {"case_id": (await opened_case(client, episode_id))["case_id"]}


async def billed_account(service: Service, client: httpx.AsyncClient, topics: Topics) -> Known:
    episode = Episode(service, topics, "Efuzz0000ac1")
    await episode.self_pay()
    await episode.registered()
    await episode.coded(900_00)
    await account_when(client, episode.id, lambda account: account["statements"])
    return {"episode_id": episode.id}


async def opened_episode(service: Service, client: httpx.AsyncClient, _: Topics) -> Known:
    episode_id = "Efuzz0000pa1"
    event = AppointmentScheduled(
        episode_id=episode_id, appointment_id="Afuzz0000pa1", patient_id="Pfuzz0000pa1",
        scheduled_start=datetime(2026, 3, 2, 14, 30, tzinfo=UTC),
        rendering_provider_npi="1234567893",
        visit_type="office-visit",
    )  # fmt: skip
    await service.publisher.publish(Envelope(data=event, source="rcm/test"))

    async def known() -> bool:
        return await service.database["episodes"].find_one({"_id": episode_id}) is not None

    await eventually(known)
    return {"episode_id": episode_id}


async def nothing(service: Service, client: httpx.AsyncClient, _: Topics) -> Known:
    return {}


Seed = Callable[[Service, httpx.AsyncClient, Topics], Awaitable[Known]]
SEEDS: dict[str, Seed] = {
    "registration": scheduled_episode,
    "coding": open_coding_case,
    "collections": billed_account,
    "payments": opened_episode,
}

SERVICES: dict[str, tuple[type[ServiceSettings], Callable[[Any], Service]]] = {
    "registration": (registration.Settings, registration.build),
    "eligibility": (eligibility.Settings, eligibility.build),
    "coding": (coding.Settings, coding.build),
    "claims": (claims.Settings, claims.build),
    "payments": (payments.Settings, payments.build),
    "collections": (collections.Settings, collections.build),
}
CLEARINGHOUSE_USERS = {"eligibility", "claims", "payments"}


def empty_clearinghouse() -> FastAPI:
    """A mailbox with nothing in it, so the services' pollers stay quiet."""
    app = FastAPI()

    @app.get("/mailbox/{partner}")
    async def waiting(partner: str) -> list[dict[str, str]]:
        return []

    return app


class OnLoop:
    """The service's ASGI app, run on the test's event loop (where its Kafka and MongoDB
    clients live) for schemathesis, which calls it from its own thread and loop. The
    service's lifespan is the test's (`running`), so it is only acknowledged here."""

    def __init__(self, app: ASGIApp, loop: asyncio.AbstractEventLoop) -> None:
        self.app = app
        self.loop = loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": f"{message['type']}.complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        sent = await asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(self._answer(scope, body), self.loop)
        )
        for message in sent:
            await send(message)

    async def _answer(self, scope: Scope, body: bytes) -> list[Message]:
        sent: list[Message] = []
        answered = asyncio.Event()
        delivered = False

        async def receive() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await answered.wait()  # as a server does: the client leaves after the answer
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                answered.set()

        await self.app(scope, receive, send)
        return sent


def answer(case: schemathesis.Case, statuses: Counter[int]) -> schemathesis.Response:
    """The case's answer; a 503 is sent again, as a client retries it."""
    response = case.call()
    statuses[response.status_code] += 1
    for _ in range(RETRIES_OF_A_503):
        if response.status_code != 503:
            break
        time.sleep(1.0)
        response = case.call()  # the same request again: no longer 503 if it was transient
    return response


def naming(known: Known) -> Callable[[schemathesis.Case], schemathesis.Case]:
    """A generated case made to name what is known, where its body has such a field."""

    def name(case: schemathesis.Case) -> schemathesis.Case:
        if isinstance(case.body, dict):
            case.body = {
                field: known.get(field, value) if isinstance(value, str) else value
                for field, value in case.body.items()
            }
        return case

    return name


def fuzz(app: OnLoop, headers: dict[str, str], known: Known) -> tuple[list[str], Counter[int]]:
    """Every operation of the app's schema: its boundary cases (schemathesis' coverage
    phase), then generated ones, half of them naming what is known. The first failure of
    each operation, and how often each status was the first answer."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    modes = list(schemathesis.GenerationMode)
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        coverage = schema.iter_coverage_cases(
            operation,
            generation_modes=modes,
            generation_config=schema.config.generation_for(operation=operation, phase="coverage"),
        )
        in_path = {
            name: known[name] for name in re.findall(r"{(\w+)}", operation.path) if name in known
        }
        strategy = st.one_of(
            *(operation.as_strategy(mode, headers=headers) for mode in modes),
            *(
                operation.as_strategy(mode, headers=headers, path_parameters=in_path).map(
                    naming(known)
                )
                for mode in modes
            ),
        )

        @hypothesis.settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],  # no shrinking: each call is a request
            suppress_health_check=list(HealthCheck),
        )
        @hypothesis.given(case=strategy)
        def no_server_error(case: schemathesis.Case) -> None:
            case.validate_response(answer(case, statuses), checks=[not_a_server_error])

        try:
            for case in coverage:
                case.headers = {**(case.headers or {}), **headers}
                case.validate_response(answer(case, statuses), checks=[not_a_server_error])
            no_server_error()
        except Exception as error:
            failures.append(f"{operation.label}: {error}")
    return failures, statuses


@pytest.mark.parametrize("name", sorted(SERVICES))
async def test_no_request_gets_a_server_error(
    name: str, infra: Infra, topics: Topics, database: Any, tmp_path: Path
) -> None:
    settings_class, build = SERVICES[name]
    overrides: dict[str, object] = {"api_docs": True, "request_timeout_s": REQUEST_TIMEOUT_S}
    async with serving(empty_clearinghouse()) as clearinghouse_url:
        if name in CLEARINGHOUSE_USERS:
            overrides |= {
                "RCM_CLEARINGHOUSE_URL": clearinghouse_url,
                "RCM_X12_ARCHIVE_DIR": str(tmp_path / "x12"),
            }
        service = build(
            settings_for(settings_class, infra, topics.prefix, database.name, **overrides)
        )
        async with running(service) as client:
            known = await SEEDS.get(name, nothing)(service, client, topics)
            app = OnLoop(service.api, asyncio.get_running_loop())
            failures, statuses = await asyncio.to_thread(
                fuzz, app, signed_in("fuzzer", *Role), known
            )
    assert not failures, "\n\n".join(failures)
    # Signed in with every role, the requests reached the routes, and some were taken.
    assert statuses[401] == statuses[403] == 0, statuses
    assert sum(n for status, n in statuses.items() if status < 300) > 0, statuses

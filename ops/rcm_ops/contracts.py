"""`rcm contracts ...`: regenerate committed JSON Schemas and the AsyncAPI document."""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import typer
import yaml
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from rcm_contracts import CATALOG, Event
from rcm_contracts.schemas import (
    SCHEMA_DIR,
    compare_with_committed,
    path_of,
    render,
    schema_of,
)
from rcm_shared.topology import SERVICES
from rich.console import Console

app = typer.Typer(help="Event contracts: JSON Schemas and the AsyncAPI document.")
console = Console(stderr=True)

ASYNCAPI_PATH = SCHEMA_DIR.parent / "asyncapi.yaml"


def subscriptions() -> dict[str, list[type[Event]]]:
    """What each service consumes: the keys of its subscription table."""
    tables: dict[str, list[type[Event]]] = {}
    for process in SERVICES:
        handlers = importlib.import_module(f"{process.module}.handlers")
        # A service may keep a part's handlers beside its own (payments: refunds, deposits).
        consumed = {*handlers.SUBSCRIPTIONS, *getattr(handlers, "OTHER_SUBSCRIPTIONS", {})}
        tables[process.name] = sorted(consumed, key=lambda e: e.event_type)
    return tables


def _receiver(model: type[Event]) -> Callable[..., Awaitable[None]]:
    async def receive(message: Any) -> None:
        """Documentation only: the service's one subscriber dispatches on ce_type."""

    receive.__annotations__ = {"message": model, "return": None}
    return receive


def catalog_broker() -> KafkaBroker:
    """A broker that declares every v1 event as a published channel, with its payload,
    and each service's subscriptions (consumer group = service) as receiving channels."""
    broker = KafkaBroker("kafka:9092", description="Kafka, CloudEvents 1.0 in binary mode.")
    for event_type, model in sorted(CATALOG.items()):
        broker.publisher(
            event_type,
            title=event_type,
            description=(model.__doc__ or "").strip() or None,
            schema=model,
        )
    for service, consumed in subscriptions().items():
        for model in consumed:
            broker.subscriber(
                model.event_type,
                group_id=service,
                title=f"{model.event_type}:{service}",
                description=f"Consumed by the {service} service (consumer group {service}).",
            )(_receiver(model))
    return broker


def asyncapi_yaml() -> str:
    specification = AsyncAPI(
        catalog_broker(),
        title="RCM platform events",
        version="1",
        description=(
            "Every event of the revenue-cycle platform. Topic = event type; key and "
            "ce_subject = episode id (remittance id for remittance events); headers "
            "ce_id, ce_source, ce_type, ce_specversion, ce_time, ce_subject, content-type, "
            "traceparent. Money is integer cents. Breaking changes get a new .v2 topic."
        ),
        schema_version="3.0.0",
    )
    # FastStream's channel order varies between runs; sorted keys keep the file stable.
    return yaml.safe_dump(specification.to_specification().to_jsonable(), sort_keys=True)


@app.command()
def schemas(
    check: bool = typer.Option(False, help="Only check the committed files are up to date."),
    directory: Path = typer.Option(SCHEMA_DIR, help="Where the schemas live."),
) -> None:
    """Write contracts/schemas/<type>.json; refuse a change that breaks consumers."""
    directory.mkdir(parents=True, exist_ok=True)
    breaking, stale = compare_with_committed(directory)
    if breaking:
        console.print("[red]breaking changes to v1 contracts (publish a .v2 event instead):[/]")
        for problem in breaking:
            console.print(f"  {problem}")
        raise typer.Exit(1)
    if check:
        if stale:
            console.print(f"[red]out of date, run `make schemas`:[/] {', '.join(stale)}")
            raise typer.Exit(1)
        console.print(f"{len(CATALOG)} schemas up to date")
        return
    for event_type in stale:
        path_of(event_type, directory).write_text(render(schema_of(event_type)))
    console.print(f"wrote {len(stale)} of {len(CATALOG)} schemas to {directory}")


@app.command()
def asyncapi(output: Path = typer.Option(ASYNCAPI_PATH, help="Where to write it.")) -> None:
    """Write the AsyncAPI 3 document of every event channel."""
    output.write_text(asyncapi_yaml())
    console.print(f"wrote {output}")


@app.command()
def roles(
    check: bool = typer.Option(False, help="Only check docs/roles.md is up to date."),
) -> None:
    """Write docs/roles.md, the role matrix of every service's HTTP API."""
    from .roles import ROLES_DOC, matrix_markdown

    matrix = matrix_markdown()
    if check:
        if ROLES_DOC.read_text() != matrix:
            console.print("[red]docs/roles.md is out of date, run `rcm contracts roles`[/]")
            raise typer.Exit(1)
        console.print("docs/roles.md up to date")
        return
    ROLES_DOC.write_text(matrix)
    console.print(f"wrote {ROLES_DOC}")

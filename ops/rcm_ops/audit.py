"""`rcm audit`: read the audit trail (who did or read what, in which service, how it was
answered, when) from the audit service's HTTP API, newest first.

It signs in as an auditor with this machine's dev identity provider, the one `rcm run`
gives the services; against a deployment with a real identity provider, call
GET /records with that provider's token instead. The query is itself recorded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import typer
from rcm_shared.auth import Role
from rich.console import Console
from rich.table import Table

DEFAULT_URL = "http://127.0.0.1:8007"
DEFAULT_USER = "auditor-cli"
MAX_LIMIT = 1000  # what the audit service answers at most
AGO = re.compile(r"^(\d+)([smhd])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
TIME_HELP = "UTC unless an offset is given (2025-03-03T15:00:00Z, 2025-03-03), or ago: 90m, 2h, 7d."


class AuditError(RuntimeError):
    """Why the trail could not be read; the message is for the person at the terminal."""


def parse_time(text: str, now: datetime) -> datetime:
    """An ISO 8601 time or date (UTC when it has no offset), or a span ago ('2h')."""
    ago = AGO.match(text.strip())
    if ago:
        return now - timedelta(**{UNITS[ago[2]]: int(ago[1])})
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(f"not a time: {text!r} ({TIME_HELP})") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def query_params(
    *,
    actor: str | None = None,
    service: str | None = None,
    resource: str | None = None,
    action: str | None = None,
    status: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> dict[str, str]:
    """GET /records' query: only the filters given."""
    given: dict[str, object | None] = {
        "actor": actor,
        "service": service,
        "resource": resource,
        "action": action,
        "status": status,
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "limit": limit,
    }
    return {name: str(value) for name, value in given.items() if value is not None}


def fetch(client: httpx.Client, params: Mapping[str, str]) -> dict[str, Any]:
    """The page of records GET /records answers, or AuditError saying why not."""
    try:
        response = client.get("/records", params=params)
    except httpx.TransportError as error:
        raise AuditError(
            f"the audit service at {client.base_url} is not reachable "
            f"({type(error).__name__}); is the platform running (`make run`, "
            "`docker compose up`)? Else point --url at it."
        ) from None
    if response.status_code == 200:
        page: dict[str, Any] = response.json()
        return page
    detail = _detail(response)
    if response.status_code == 401:
        raise AuditError(
            f"not signed in ({detail}): the audit service does not trust this machine's "
            "dev identity provider (RCM_DEV_ISSUER_DIR)"
        )
    if response.status_code == 403:
        raise AuditError(f"refused: {detail}")
    if response.status_code == 422:
        raise AuditError(f"the audit service refused the filters: {detail}")
    raise AuditError(f"the audit service answered {response.status_code}: {detail}")


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return response.text[:200] or response.reason_phrase
    if isinstance(detail, list):  # validation problems: where and what
        return "; ".join(
            f"{'.'.join(str(part) for part in problem.get('loc', [])[1:]) or 'query'}: "
            f"{problem.get('msg')}"
            for problem in detail
            if isinstance(problem, dict)
        )
    return str(detail)


def records_table(page: Mapping[str, Any]) -> Table:
    records = page.get("records", [])
    more = "; older ones match too: narrow the filters or raise --limit" if page.get("more") else ""
    table = Table(
        title="audit trail, newest first",
        title_justify="left",
        caption=f"{len(records)} record{'' if len(records) == 1 else 's'}{more}",
        caption_justify="left",
    )
    # The time and status whole on a narrow terminal; the others wrap rather than cut.
    table.add_column("time (UTC)", no_wrap=True)
    for column in ("actor", "roles", "service", "action", "resource"):
        table.add_column(column, overflow="fold")
    table.add_column("status", justify="right", no_wrap=True)
    table.add_column("request id", overflow="fold")
    for record in records:
        status = int(record["status"])
        style = "green" if status < 400 else "yellow" if status < 500 else "red"
        table.add_row(
            _utc(record["recorded_at"]),
            record["actor"],
            ", ".join(record["roles"]),
            record["service"],
            record["action"],
            record.get("resource") or "",
            f"[{style}]{status}[/]",
            record["request_id"],
        )
    return table


def _utc(text: str) -> str:
    at = datetime.fromisoformat(text).astimezone(UTC)
    return f"{at:%Y-%m-%d %H:%M:%S}.{at.microsecond // 1000:03d}"


def command(
    actor: str | None = typer.Option(None, help="Exactly this subject (who signed in)."),
    service: str | None = typer.Option(None, help="Exactly this service, e.g. collections."),
    resource: str | None = typer.Option(
        None, help="An id (E1) or a name=value pair (episode_id=E1) the call touched."
    ),
    action: str | None = typer.Option(
        None, help="Exactly this call: '<method> <route>', e.g. 'GET /accounts/{episode_id}'."
    ),
    status: int | None = typer.Option(None, min=100, max=599, help="Exactly this HTTP status."),
    since: str | None = typer.Option(None, help=f"Recorded at or after. {TIME_HELP}"),
    until: str | None = typer.Option(None, help=f"Recorded before. {TIME_HELP}"),
    limit: int = typer.Option(100, min=1, max=MAX_LIMIT, help="At most this many records."),
    url: str = typer.Option(DEFAULT_URL, help="The audit service."),
    user: str = typer.Option(DEFAULT_USER, help="Who signs in (as an auditor)."),
    json_output: bool = typer.Option(False, "--json", help="The answer as JSON, not a table."),
) -> None:
    """Who did or read what, where, and how it was answered: the audit trail of every
    service, newest first, filtered. Signs in as an auditor with this machine's dev
    identity provider; the query is recorded too."""
    from .platform import Bearer, dev_issuer

    now = datetime.now(UTC)
    params = query_params(
        actor=actor,
        service=service,
        resource=resource,
        action=action,
        status=status,
        since=parse_time(since, now) if since else None,
        until=parse_time(until, now) if until else None,
        limit=limit,
    )
    auth = Bearer(dev_issuer(), user, Role.AUDITOR)
    try:
        with httpx.Client(base_url=url, auth=auth, timeout=10.0) as client:
            page = fetch(client, params)
    except AuditError as error:
        typer.echo(f"rcm audit: {error}", err=True)
        raise typer.Exit(1) from None
    if json_output:
        typer.echo(json.dumps(page, indent=2))
    else:
        Console().print(records_table(page))

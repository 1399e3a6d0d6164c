"""The pages the console has, who may open each, and the worklists, declared as data.

A worklist is one GET of a service shown as a table: adding one is adding a `Worklist`
here (service, path, where the rows are, the columns and where a row leads). Its roles
are those of the endpoint in docs/roles.md; the service checks them again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from fastapi import Request
from fastapi.responses import HTMLResponse
from rcm_shared.auth import Role

from .session import Viewer

CODERS = frozenset({Role.CODER, Role.CODING_LEAD})
BILLERS = frozenset({Role.BILLER})
COLLECTORS = frozenset({Role.COLLECTOR})
OPS = frozenset({Role.OPS})
AUDITORS = frozenset({Role.AUDITOR})
KPI_READERS = frozenset({Role.OPS, Role.BILLER, Role.COLLECTOR, Role.CODING_LEAD})


@dataclass(frozen=True)
class TimelineSource:
    """One service's answer about an episode: the full view for the roles that work it,
    else its `/flow` view (ids, times, statuses) for ops, who follow events, not patients."""

    service: str
    path: str  # with {episode_id}
    roles: frozenset[Role]  # the full view's, as in docs/roles.md

    def path_for(self, roles: frozenset[Role], episode_id: str) -> str | None:
        full = self.path.format(episode_id=episode_id)
        if not roles.isdisjoint(self.roles):
            return full
        return f"{full}/flow" if Role.OPS in roles else None


TIMELINE_SOURCES = (
    TimelineSource(
        "registration",
        "/episodes/{episode_id}",
        frozenset({Role.FRONT_DESK, Role.CODER, Role.CODING_LEAD, Role.BILLER, Role.COLLECTOR}),
    ),
    TimelineSource(
        "eligibility", "/verifications/{episode_id}", frozenset({Role.FRONT_DESK, Role.BILLER})
    ),
    TimelineSource(
        "claims", "/episodes/{episode_id}/claims", frozenset({Role.BILLER, Role.COLLECTOR})
    ),
    TimelineSource(
        "collections", "/accounts/{episode_id}", frozenset({Role.COLLECTOR, Role.BILLER})
    ),
)
# Whoever may read one of the services an episode timeline asks (ops: the flow views).
TIMELINE_READERS = frozenset().union(*(source.roles for source in TIMELINE_SOURCES)) | OPS


@dataclass(frozen=True)
class Page:
    path: str
    title: str
    team: str
    roles: frozenset[Role]


@dataclass(frozen=True)
class Column:
    key: str  # dotted path into the row
    label: str
    link: str | None = None  # a path with {field} placeholders of the row


@dataclass(frozen=True)
class Action:
    """A button above the table: a POST to a console route."""

    label: str
    path: str


@dataclass(frozen=True)
class Worklist:
    name: str
    title: str
    team: str
    roles: frozenset[Role]
    service: str
    path: str
    columns: tuple[Column, ...]
    rows: Callable[[Any], list[dict[str, Any]]] = lambda body: list(body or [])
    params: dict[str, Any] = field(default_factory=dict)
    actions: tuple[Action, ...] = ()
    empty: str = "Nothing to work on."

    @property
    def page(self) -> Page:
        return Page(f"/worklists/{self.name}", self.title, self.team, self.roles)


def _key(name: str) -> Callable[[Any], list[dict[str, Any]]]:
    return lambda body: list((body or {}).get(name) or [])


WORKLISTS = (
    Worklist(
        name="coding",
        title="Coding queue",
        team="Coders",
        roles=CODERS,
        service="coding",
        path="/queue",
        params={"limit": 200},
        columns=(
            Column("case_id", "Case", "/cases/{case_id}"),
            Column("episode_id", "Episode", "/episodes/{episode_id}"),
            Column("status", "Status"),
            Column("coder_id", "Coder"),
            Column("date_of_service", "Date of service"),
            Column("opened_at", "Opened"),
        ),
        actions=(Action("Take the next case", "/cases/next"),),
        empty="The coding queue is empty.",
    ),
    Worklist(
        name="claims-work",
        title="Rejections and denials",
        team="Billers",
        roles=BILLERS,
        service="claims",
        path="/work-queue",
        rows=_key("items"),
        columns=(
            Column("claim_id", "Claim", "/claims/{claim_id}"),
            Column("kind", "Kind"),
            Column("payer_id", "Payer"),
            Column("rank", "Rank"),
            Column("status", "Status"),
            Column("stage", "Stage"),
            Column("category", "Category"),
            Column("status_codes", "Status codes"),
            Column("message", "Message"),
            Column("opened_at", "Opened"),
        ),
        empty="No open rejection or denial.",
    ),
    Worklist(
        name="unpostables",
        title="Unpostables",
        team="Billers",
        roles=BILLERS,
        service="payments",
        path="/unpostables",
        params={"limit": 1000},
        columns=(
            Column("unpostable_id", "Unpostable"),
            Column("kind", "Kind"),
            Column("remittance_id", "Remittance"),
            Column("claim_id", "Claim", "/claims/{claim_id}"),
            Column("reason", "Reason"),
            Column("created_at", "Since"),
        ),
        empty="No open unpostable.",
    ),
    Worklist(
        name="remittance-copies",
        title="Remittance copies",
        team="Billers",
        roles=BILLERS,
        service="payments",
        path="/remittance-copies",
        columns=(
            Column("remittance_id", "Remittance"),
            Column("payer_id", "Payer"),
            Column("payment_trace_number", "Trace number"),
            Column("payment_cents", "Payment"),
            Column("posted_from.received_at", "Posted from (received)"),
            Column("copies", "Copies"),
        ),
        empty="No remittance was sent twice.",
    ),
    Worklist(
        name="statements",
        title="Accounts with an open statement",
        team="Collectors",
        roles=COLLECTORS,
        service="collections",
        path="/statements",
        params={"status": "open", "limit": 1000},
        rows=_key("statements"),
        columns=(
            Column("episode_id", "Account", "/accounts/{episode_id}"),
            Column("statement_id", "Statement"),
            Column("sequence", "#"),
            Column("amount_due_cents", "Due now"),
            Column("issued_amount_cents", "Issued for"),
            Column("due_date", "Due date"),
            Column("plan_id", "Plan"),
        ),
        empty="No open statement.",
    ),
    Worklist(
        name="credit-balances",
        title="Credit balances",
        team="Collectors",
        roles=frozenset({Role.COLLECTOR, Role.BILLER}),
        service="collections",
        path="/credit-balances",
        rows=_key("accounts"),
        columns=(
            Column("episode_id", "Account", "/accounts/{episode_id}"),
            Column("state", "State"),
            Column("credit_balance_cents", "Credit"),
            Column("refundable_cents", "Refundable"),
            Column("pending_refund_id", "Pending refund"),
        ),
        empty="No account owes money back.",
    ),
)
BY_NAME = {worklist.name: worklist for worklist in WORKLISTS}

PAGES = (
    *(worklist.page for worklist in WORKLISTS[:1]),
    *(worklist.page for worklist in WORKLISTS[1:4]),
    Page("/accounts", "Accounts", "Collectors", frozenset({Role.COLLECTOR, Role.OPS})),
    *(worklist.page for worklist in WORKLISTS[4:]),
    Page("/kpis", "KPI board", "Leaders", KPI_READERS),
    Page("/episodes", "Episode timeline", "Everyone", TIMELINE_READERS),
    Page("/dead-letters", "Dead letters", "Ops", OPS),
    Page("/audit", "Audit trail", "Auditors", AUDITORS),
)
CASE = Page("/cases", "Coding case", "Coders", CODERS)
CLAIM = Page("/claims", "Claim", "Billers", BILLERS)
ACCOUNT = Page("/accounts", "Account", "Collectors", frozenset({Role.COLLECTOR, Role.BILLER}))


class Render(Protocol):
    """The console's page renderer (app.py): a template with the viewer's navigation."""

    def __call__(
        self, request: Request, name: str, viewer: Viewer | None, status: int = 200, **context: Any
    ) -> HTMLResponse: ...


# ---------------------------------------------------------------------------- values


def pick(row: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        row = row.get(part) if isinstance(row, dict) else None
    return row


def dollars(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}${whole:,}.{part:02d}"


def show(value: Any, key: str = "") -> str:
    """A value as a cell says it: money in dollars, times to the second, lists joined."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) and key.endswith("_cents"):
        return dollars(value)
    if isinstance(value, dict):
        if key.endswith("_cents"):
            return ", ".join(f"{k} {show(v, key)}" for k, v in value.items())
        return ", ".join(f"{k}: {show(v, k)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(show(item, key) for item in value) if value else "-"
    if isinstance(value, str) and (key == "at" or key.endswith("_at")):
        return value.replace("T", " ")[:19]
    return str(value)


def cell(row: dict[str, Any], column: Column) -> tuple[str, str | None]:
    value = pick(row, column.key)
    link = None
    if column.link and value:
        try:
            link = column.link.format(**row)
        except (KeyError, IndexError):
            link = None
    return show(value, column.key.rsplit(".", 1)[-1]), link


# ---------------------------------------------------------------------------- timeline


@dataclass(frozen=True)
class Moment:
    at: datetime
    service: str
    about: str
    what: str
    who: str | None = None


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) < 19:
        return None
    try:
        found = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return found if found.tzinfo is not None else None


# Ids that name the patient's insurance membership rather than our records.
NOT_SAID = frozenset({"member_id", "subscriber_id", "group_number", "episode_id"})


def _about(node: dict[str, Any], around: str) -> str:
    for key, value in node.items():
        if key.endswith("_id") and isinstance(value, str) and key not in NOT_SAID:
            return f"{key.removesuffix('_id').replace('_', ' ')} {value}"
    return around


def moments(service: str, document: Any, around: str = "") -> list[Moment]:
    """Every dated fact of a service's answer: `<thing>_at` fields and audit entries
    (`at` with an action), each said with the id of what it is about. Only ids, names
    of fields and actions: never a value of the patient."""
    found: list[Moment] = []
    if isinstance(document, list):
        for item in document:
            found += moments(service, item, around)
        return found
    if not isinstance(document, dict):
        return found
    about = _about(document, around)
    for key, value in document.items():
        when = _when(value)
        if when is not None and key == "at":
            what = str(document.get("action") or document.get("kind") or "recorded")
            who = document.get("who")
            found.append(Moment(when, service, about, what, who if isinstance(who, str) else None))
        elif when is not None and key.endswith("_at"):
            found.append(Moment(when, service, about, key.removesuffix("_at").replace("_", " ")))
        elif isinstance(value, dict | list):
            found += moments(service, value, about)
    return found

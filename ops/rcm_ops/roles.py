"""The role matrix: who may call what, read from the routes' `allow(...)` declarations, so
the document (docs/roles.md) and the test of every endpoint cannot drift from the code."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from rcm_shared.auth import Role, allowed_roles
from rcm_shared.topology import SERVICES
from starlette.routing import BaseRoute

ROLES_DOC = Path(__file__).resolve().parents[2] / "docs" / "roles.md"
# Probes answer orchestrators, which hold no token; they say nothing about patients.
OPEN_PATHS = frozenset({"/health/live", "/health/ready"})


@dataclass(frozen=True)
class Rule:
    service: str
    method: str
    path: str
    roles: frozenset[Role] | None  # None: open (or, for a path not in OPEN_PATHS, a bug)


def service_app(name: str) -> FastAPI:
    """A service's HTTP app as it is composed, without starting anything."""
    process = next(p for p in SERVICES if p.name == name)
    module = importlib.import_module(f"{process.module}.app")
    settings = module.Settings(auth_jwks_url="file:///dev/null", auth_issuer="role-matrix")
    api: FastAPI = module.build(settings).api
    return api


def rules(name: str, api: FastAPI) -> list[Rule]:
    found = []
    for path, route in _api_routes(api.routes):
        roles = _roles(route.dependant)
        for method in sorted(route.methods or ()):
            found.append(Rule(name, method, path, roles))
    return sorted(found, key=lambda rule: (rule.path, rule.method))


def _api_routes(routes: Iterable[BaseRoute], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    for route in routes:
        included: Any = route  # FastAPI keeps an included router as a route of its own
        if hasattr(included, "original_router"):
            inner_prefix = prefix + included.include_context.prefix
            yield from _api_routes(included.original_router.routes, inner_prefix)
        elif isinstance(route, APIRoute):
            yield prefix + route.path, route


def _roles(dependant: Dependant) -> frozenset[Role] | None:
    for dependency in dependant.dependencies:
        roles = allowed_roles(dependency.call)
        if roles is not None:
            return roles
        nested = _roles(dependency)
        if nested is not None:
            return nested
    return None


def matrix_markdown() -> str:
    columns = list(Role)
    lines = [
        "# Who may call what",
        "",
        "Generated from the routes' `allow(...)` declarations by `rcm contracts roles`; a",
        "test keeps it current and calls every endpoint with no token (401), each role",
        "outside its column (403) and each role inside it. Every call with a valid token,",
        "allowed or refused, is on the audit trail. The health probes need no token.",
        "",
    ]
    for process in SERVICES:
        lines += [f"## {process.name}", ""]
        lines.append("| call | " + " | ".join(role.value for role in columns) + " |")
        lines.append("|---|" + "---|" * len(columns))
        for rule in rules(process.name, service_app(process.name)):
            if rule.path in OPEN_PATHS:
                continue
            marks = ["x" if rule.roles and role in rule.roles else "" for role in columns]
            lines.append(f"| `{rule.method} {rule.path}` | " + " | ".join(marks) + " |")
        lines.append("")
    return "\n".join(lines)

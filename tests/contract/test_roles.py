"""The role matrix: every endpoint says who may call it, and docs/roles.md says the same."""

from __future__ import annotations

import pytest
from rcm_ops.roles import OPEN_PATHS, ROLES_DOC, matrix_markdown, rules, service_app
from rcm_shared.topology import SERVICES


@pytest.mark.parametrize("service", [process.name for process in SERVICES])
def test_every_endpoint_but_the_probes_needs_a_role(service: str) -> None:
    found = rules(service, service_app(service))
    assert {rule.path for rule in found} >= OPEN_PATHS
    unguarded = [
        f"{r.method} {r.path}" for r in found if r.roles is None and r.path not in OPEN_PATHS
    ]
    assert unguarded == []
    assert all(rule.roles for rule in found if rule.path not in OPEN_PATHS)  # none empty


def test_the_committed_matrix_is_the_code_s() -> None:
    assert ROLES_DOC.read_text() == matrix_markdown(), "run `rcm contracts roles`"

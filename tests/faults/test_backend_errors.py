"""What FerretDB answers while its PostgreSQL crashes is transient (retried, never
dead-lettered); its other internal errors are not. The messages are FerretDB 1.24's, as
seen while `infra.sh kill postgresql` ran under load (trimmed)."""

from __future__ import annotations

import pytest
from pymongo.errors import OperationFailure
from rcm_shared.errors import is_transient

WHILE_POSTGRESQL_CRASHES = [
    "[msg_insert.go:168 handler.(*Handler).MsgInsert] failed to connect to `user=postgres "
    "database=ferretdb`:\n\t127.0.0.1:54339 (127.0.0.1): dial error: dial tcp "
    "127.0.0.1:54339: connect: connection refused",
    "[msg_find.go:344 handler.handleMaxTimeMSError] [collection.go:109 "
    "postgresql.(*collection).Query] failed to connect to `user=postgres database=ferretdb`:"
    "\n\t127.0.0.1:54339 (127.0.0.1): server error: FATAL: the database system is starting "
    "up (SQLSTATE 57P03)",
    "[msg_update.go:133 handler.(*Handler).updateDocument] [update.go:114 "
    "common.UpdateDocument] [collection.go:227 postgresql.(*collection).UpdateAll] FATAL: "
    "terminating connection due to unexpected postmaster exit (SQLSTATE 57P01)",
    "[msg_insert.go:168 handler.(*Handler).MsgInsert] unexpected EOF",
    "[msg_update.go:133 handler.(*Handler).updateDocument] [collection.go:227 "
    "postgresql.(*collection).UpdateAll] read tcp 127.0.0.1:56562->127.0.0.1:54339: read: "
    "connection reset by peer",
]


def internal_error(message: str) -> OperationFailure:
    return OperationFailure(
        message,
        code=1,
        details={"ok": 0.0, "errmsg": message, "code": 1, "codeName": "InternalError"},
    )


@pytest.mark.parametrize("message", WHILE_POSTGRESQL_CRASHES)
def test_an_unreachable_postgresql_is_transient(message: str) -> None:
    assert is_transient(internal_error(message))


def test_other_internal_errors_and_refusals_are_not() -> None:
    assert not is_transient(internal_error("[msg_find.go:344] unsupported operator $where"))
    # the same words under another code: a command FerretDB refused, not a lost backend
    assert not is_transient(OperationFailure("failed to connect to the moon", code=2))

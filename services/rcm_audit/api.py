"""HTTP for auditors: the audit trail, filtered, newest first. Only auditors read it, and
their reading is recorded too (every signed-in call is, by rcm_shared.audit)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from rcm_shared.auth import Role, allow

from .domain import RecordPage, RecordQuery
from .store import MongoRecords


def router(records: MongoRecords) -> APIRouter:
    api = APIRouter(tags=["audit"])

    @api.get("/records", dependencies=[Depends(allow(Role.AUDITOR))])
    async def find_records(query: Annotated[RecordQuery, Query()]) -> RecordPage:
        """Who did or read what, where, and how it was answered: the newest records that
        match every filter given (at most `limit`, up to 1000). A filter that is not
        known or not valid is answered 422."""
        return await records.find(query)

    return api

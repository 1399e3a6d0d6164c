"""Talking X12 with the clearinghouse over HTTP, and keeping every document verbatim.

The protocol (the payer simulator serves it; a real clearinghouse adapter would too):

  POST /x12/realtime            a 270 in, its 271 out (real-time eligibility)
  POST /x12/batches             an 837P batch in; 202 {"batch_id"}; the answers come later
  GET  /mailbox/{partner}?kind= documents waiting for a trading partner: [{id, kind}]
  GET  /mailbox/{partner}/{id}  one document's X12 text
  DELETE /mailbox/{partner}/{id}   acknowledge: the document was stored and processed

Mailbox documents stay until acknowledged, so a receiver that crashes mid-way reads
them again after a restart: processing must be idempotent (it is, by document id).
"""

from __future__ import annotations

import os
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import httpx
from pydantic import AliasChoices, Field

from .errors import PermanentError, TransientError
from .settings import ServiceSettings

Kind = Literal["270", "271", "837P", "999", "277CA", "835"]
Direction = Literal["sent", "received"]


class ClearinghouseSettings(ServiceSettings):
    """Settings of the services that exchange X12 with the clearinghouse."""

    clearinghouse_url: str = Field(
        default="http://127.0.0.1:8010",
        validation_alias=AliasChoices("RCM_CLEARINGHOUSE_URL"),
        pattern=r"^https?://",
    )
    x12_archive_dir: Path = Field(
        default=Path("var/x12"),
        validation_alias=AliasChoices("RCM_X12_ARCHIVE_DIR"),
        description="Every X12 document sent or received is kept here verbatim.",
    )
    trading_partner_id: str = Field(
        default="RCMPLATFORM",
        pattern=r"^[A-Z0-9]{2,15}$",
        description="Our id at the clearinghouse: ISA06/GS02 and the mailbox name.",
    )
    mailbox_poll_s: float = Field(default=0.5, gt=0, le=300)


class X12Archive:
    """Files every document as `<root>/<service>/<date>/<time>-<direction>-<kind>-<ref>.x12`.

    Written to a temporary name and renamed, so a reader never sees half a document.
    """

    def __init__(self, root: Path, service: str) -> None:
        self.root = root / service

    def keep(self, direction: Direction, kind: Kind, reference: str, text: str) -> Path:
        now = datetime.now(UTC)
        folder = self.root / now.strftime("%Y-%m-%d")
        folder.mkdir(parents=True, exist_ok=True)
        safe_reference = re.sub(r"[^A-Za-z0-9._-]", "_", reference)[:80]
        path = folder / f"{now:%H%M%S%f}-{direction}-{kind}-{safe_reference}.x12"
        temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
        temporary.write_text(text, encoding="utf-8", newline="")
        os.replace(temporary, path)
        return path


class ClearinghouseClient:
    """HTTP client of the clearinghouse protocol above; archives what it sends and gets.

    Network failures and 5xx answers are transient (retry later); a 4xx answer means the
    document was refused and is permanent.
    """

    def __init__(
        self,
        base_url: str,
        partner: str,
        archive: X12Archive,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.partner = partner
        self.archive = archive
        self.http = httpx.AsyncClient(base_url=base_url, timeout=timeout_s, transport=transport)

    async def close(self) -> None:
        await self.http.aclose()

    async def realtime(self, inquiry_270: str, reference: str) -> str:
        """Send a 270 and return the payer's 271."""
        self.archive.keep("sent", "270", reference, inquiry_270)
        response = await self._call("POST", "/x12/realtime", content=inquiry_270)
        self.archive.keep("received", "271", reference, response.text)
        return response.text

    async def submit_batch(self, batch_837: str, reference: str) -> str:
        """Send an 837P batch; returns the clearinghouse's batch id."""
        self.archive.keep("sent", "837P", reference, batch_837)
        response = await self._call("POST", "/x12/batches", content=batch_837)
        batch_id: str = response.json()["batch_id"]
        return batch_id

    async def waiting(self, *kinds: Kind) -> list[tuple[str, Kind]]:
        """Ids and kinds of the mailbox documents not yet acknowledged, oldest first."""
        response = await self._call("GET", f"/mailbox/{self.partner}", params={"kind": list(kinds)})
        return [(item["id"], item["kind"]) for item in response.json()]

    async def fetch(self, document_id: str, kind: Kind) -> str:
        """One mailbox document, archived verbatim before anyone parses it."""
        response = await self._call("GET", f"/mailbox/{self.partner}/{document_id}")
        self.archive.keep("received", kind, document_id, response.text)
        return response.text

    async def acknowledge(self, document_id: str) -> None:
        await self._call("DELETE", f"/mailbox/{self.partner}/{document_id}", missing_ok=True)

    async def _call(
        self, method: str, path: str, missing_ok: bool = False, **kwargs: object
    ) -> httpx.Response:
        headers = {"content-type": "application/edi-x12"} if "content" in kwargs else None
        try:
            response = await self.http.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as error:
            raise TransientError(f"clearinghouse {method} {path}: {error!r}") from error
        if response.status_code == 404 and missing_ok:
            return response
        if response.status_code >= 500:
            raise TransientError(f"clearinghouse {method} {path}: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise PermanentError(
                f"clearinghouse refused {method} {path}: HTTP {response.status_code} "
                f"{response.text[:300]}"
            )
        return response

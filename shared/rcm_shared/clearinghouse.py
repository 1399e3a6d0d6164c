"""Talking X12 with the clearinghouse over HTTP, and keeping every document verbatim
(and every refusal's answer, which may quote the documents' elements: it is never said).

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

import asyncio
import contextlib
import logging
import os
import re
import stat
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal

import httpx
from pydantic import AliasChoices, Field

from .clock import Clock, utc_now
from .errors import PermanentError, TransientError
from .redact import Redacted
from .settings import ServiceSettings

log = logging.getLogger(__name__)

Kind = Literal["270", "271", "837P", "999", "277CA", "835"]
Direction = Literal["sent", "received"]
Filed = Kind | Literal["refusal"]  # a clearinghouse's 4xx answer is archived, not said

FILE_MODE = 0o600
FOLDER_MODE = 0o700
DAY_FORMAT = "%Y-%m-%d"
# Seven years: what US record-retention rules usually ask of billing records (HIPAA's
# six years for its own documentation, state and payer contracts often more).
DEFAULT_RETENTION_DAYS = 2555
PURGE_JOB = "x12-archive-purge"
PURGE_INTERVAL_S = 3600.0

RetentionDays = Annotated[
    int,
    Field(
        ge=1,
        le=36500,
        description="Days an archived X12 document is kept; older ones are deleted.",
    ),
]


class X12Problem(Redacted, PermanentError):
    """An X12 document that cannot be built, sent or read. The message says where (kind,
    segment, position, HTTP status), never what: X12 elements are patient data."""


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
    x12_archive_retention_days: RetentionDays = DEFAULT_RETENTION_DAYS
    trading_partner_id: str = Field(
        default="RCMPLATFORM",
        pattern=r"^[A-Z0-9]{2,15}$",
        description="Our id at the clearinghouse: ISA06/GS02 and the mailbox name.",
    )
    mailbox_poll_s: float = Field(default=0.5, gt=0, le=300)


class X12Archive:
    """Files every document as `<root>/<service>/<date>/<time>-<direction>-<kind>-<ref>.x12`.

    Written to a temporary name and renamed, so a reader never sees half a document. The
    documents are patient data (names, birth dates, member ids, diagnoses): files are 0600
    in 0700 folders whatever the umask, and `purge` deletes them once they are older than
    the retention period.
    """

    def __init__(
        self,
        root: Path,
        service: str,
        retention_days: int = DEFAULT_RETENTION_DAYS,
        clock: Clock = utc_now,
    ) -> None:
        self.root = root / service
        self.retention = timedelta(days=retention_days)
        self.clock = clock
        self._private = False

    def keep(self, direction: Direction, kind: Filed, reference: str, text: str) -> Path:
        now = self.clock()
        folder = self.root / now.strftime(DAY_FORMAT)
        self._folder(folder)
        safe_reference = re.sub(r"[^A-Za-z0-9._-]", "_", reference)[:80]
        path = folder / f"{now:%H%M%S%f}-{direction}-{kind}-{safe_reference}.x12"
        temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        os.fchmod(descriptor, FILE_MODE)  # open's mode is masked by the umask
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as file:
            file.write(text)
        os.replace(temporary, path)
        return path

    def purge(self) -> int:
        """Deletes the documents older than the retention period, and the day folders this
        leaves empty; returns how many were deleted.

        Only day folders are looked into, and a day after the cutoff's is skipped by its
        name (all it holds is younger), so a round stats one or two days of files.
        """
        if not self.root.is_dir():
            return 0
        self._make_private()
        cutoff = self.clock() - self.retention
        limit = cutoff.timestamp()
        deleted = 0
        for folder in sorted(self.root.iterdir()):
            day = _day(folder.name)
            if day is None or day > cutoff.date():
                continue
            try:
                deleted += _purge_day(folder, limit)
            except FileNotFoundError:  # another process on this disk purged it meanwhile
                continue
            if day < cutoff.date():  # a folder keep() may still be writing to stays
                with contextlib.suppress(OSError):  # not empty: something younger is left
                    folder.rmdir()
        if deleted:
            log.info("x12 archive %s: %d documents past retention deleted", self.root, deleted)
        return deleted

    async def purge_round(self) -> int:
        """`purge` in a thread: a job's step that leaves the event loop free."""
        return await asyncio.to_thread(self.purge)

    def _folder(self, folder: Path) -> None:
        """Creates `folder` and the folders missing on the way to it, each 0700."""
        missing: list[Path] = []
        while not folder.is_dir():
            missing.append(folder)
            folder = folder.parent
        for created in reversed(missing):
            with contextlib.suppress(FileExistsError):  # another writer made it meanwhile
                created.mkdir(mode=FOLDER_MODE)
                os.chmod(created, FOLDER_MODE)  # mkdir's mode is masked by the umask
        self._make_private()

    def _make_private(self) -> None:
        """The service's folder was world-readable before this: closing it closes all the
        documents kept then, whatever their own modes."""
        if not self._private:
            if stat.S_IMODE(self.root.stat().st_mode) != FOLDER_MODE:
                os.chmod(self.root, FOLDER_MODE)
            self._private = True


def _day(name: str) -> date | None:
    try:
        return datetime.strptime(name, DAY_FORMAT).date()  # noqa: DTZ007 - a day of UTC
    except ValueError:
        return None


def _purge_day(folder: Path, limit: float) -> int:
    """Deletes the files of a day folder last written before `limit` (a timestamp)."""
    if not stat.S_ISDIR(folder.lstat().st_mode):
        return 0
    deleted = 0
    for path in folder.iterdir():
        with contextlib.suppress(FileNotFoundError):
            status = path.lstat()
            if stat.S_ISREG(status.st_mode) and status.st_mtime < limit:
                path.unlink()
                deleted += 1
    return deleted


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
        response = await self._call("POST", "/x12/realtime", reference, content=inquiry_270)
        self.archive.keep("received", "271", reference, response.text)
        return response.text

    async def submit_batch(self, batch_837: str, reference: str) -> str:
        """Send an 837P batch; returns the clearinghouse's batch id."""
        self.archive.keep("sent", "837P", reference, batch_837)
        response = await self._call("POST", "/x12/batches", reference, content=batch_837)
        batch_id: str = response.json()["batch_id"]
        return batch_id

    async def waiting(self, *kinds: Kind) -> list[tuple[str, Kind]]:
        """Ids and kinds of the mailbox documents not yet acknowledged, oldest first."""
        path = f"/mailbox/{self.partner}"
        response = await self._call("GET", path, "mailbox", params={"kind": list(kinds)})
        return [(item["id"], item["kind"]) for item in response.json()]

    async def fetch(self, document_id: str, kind: Kind) -> str:
        """One mailbox document, archived verbatim before anyone parses it."""
        response = await self._call("GET", f"/mailbox/{self.partner}/{document_id}", document_id)
        self.archive.keep("received", kind, document_id, response.text)
        return response.text

    async def acknowledge(self, document_id: str) -> None:
        path = f"/mailbox/{self.partner}/{document_id}"
        await self._call("DELETE", path, document_id, missing_ok=True)

    async def _call(
        self, method: str, path: str, reference: str, missing_ok: bool = False, **kwargs: object
    ) -> httpx.Response:
        headers = {"content-type": "application/edi-x12"} if "content" in kwargs else None
        try:
            response = await self.http.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as error:
            raise TransientError(
                f"clearinghouse {method} {path}: {type(error).__name__}"
            ) from error
        if response.status_code == 404 and missing_ok:
            return response
        if response.status_code >= 500:
            raise TransientError(f"clearinghouse {method} {path}: HTTP {response.status_code}")
        if response.status_code >= 400:
            # Why is archived, not said: a clearinghouse may quote the elements it refused.
            self.archive.keep("received", "refusal", reference, response.text)
            raise X12Problem(
                f"clearinghouse refused {method} {path}: HTTP {response.status_code}"
                " (its answer is in the X12 archive)"
            )
        return response

"""Documents sent with appeals, kept outside the database like the X12 archive.

`<root>/claims-documents/<id>.bin` (0600 in a 0700 folder) with `<id>.json` beside it
(content type, size, digest, title); the id is made from the digest, so the same upload
twice is one document. Records and letters are patient data: never logged, never put in
an event (events carry the id and the digest).
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path

from rcm_contracts.claims import AppealDocument
from rcm_shared.errors import Conflict, Invalid

FILE_MODE = 0o600
FOLDER_MODE = 0o700
MAX_DOCUMENT_BYTES = 512 * 1024
ALLOWED_TYPES = ("application/pdf", "text/plain")


def check_content(content: bytes, content_type: str) -> None:
    """The bytes must be what they claim to be: a PDF starts with its signature, text is
    UTF-8 without NUL characters."""
    if content_type not in ALLOWED_TYPES:
        raise Invalid(f"document type {content_type} is not taken (PDF or plain text)")
    if not content:
        raise Invalid("an empty document")
    if len(content) > MAX_DOCUMENT_BYTES:
        raise Invalid(f"a document is at most {MAX_DOCUMENT_BYTES} bytes")
    if content_type == "application/pdf" and not content.startswith(b"%PDF-"):
        raise Invalid("the document is not a PDF")
    if content_type == "text/plain":
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            raise Invalid("the text document is not UTF-8") from None
        if "\x00" in text:
            raise Invalid("the text document holds NUL characters")


def describe(content: bytes, content_type: str, title: str | None = None) -> AppealDocument:
    """The document an upload would be kept as, checked; nothing is written."""
    check_content(content, content_type)
    digest = hashlib.sha256(content).hexdigest()
    return AppealDocument(
        document_id=f"DOC-{digest[:32]}",
        sha256=digest,
        content_type=content_type,
        size_bytes=len(content),
        title=title,
    )


class DocumentArchive:
    def __init__(self, root: Path, service: str = "claims") -> None:
        self.folder = root / f"{service}-documents"

    def _ready(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)
        os.chmod(self.folder, FOLDER_MODE)  # mkdir's mode is masked by the umask

    def keep(self, content: bytes, content_type: str, title: str | None = None) -> AppealDocument:
        document = describe(content, content_type, title)
        self._ready()
        if self.find(document.document_id) is None:
            self._write(self.folder / f"{document.document_id}.bin", content)
            self._write(
                self.folder / f"{document.document_id}.json",
                document.model_dump_json().encode(),
            )
        return document

    def _write(self, path: Path, content: bytes) -> None:
        temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        os.fchmod(descriptor, FILE_MODE)
        with os.fdopen(descriptor, "wb") as file:
            file.write(content)
        os.replace(temporary, path)

    def find(self, document_id: str) -> AppealDocument | None:
        """A document kept before (e.g. a record already in the archive), checked against
        its digest."""
        if not document_id.startswith("DOC-") or not document_id[4:].isalnum():
            return None
        meta = self.folder / f"{document_id}.json"
        if not meta.is_file():
            return None
        document = AppealDocument.model_validate(json.loads(meta.read_text("utf-8")))
        if hashlib.sha256(self.content(document)).hexdigest() != document.sha256:
            raise Invalid(f"document {document_id} does not match its digest")
        return document

    def content(self, document: AppealDocument) -> bytes:
        path = self.folder / f"{document.document_id}.bin"
        if not path.is_file():
            raise Conflict(f"document {document.document_id} is not in the archive")
        return path.read_bytes()

"""Documents waiting for trading partners, kept in memory until they acknowledge them.

Oldest first; a document stays until it is deleted, so a partner that crashed while
processing one reads it again (its processing is idempotent by document id).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from rcm_shared.clearinghouse import Kind


@dataclass(frozen=True)
class Document:
    id: str
    kind: Kind
    text: str


class Mailbox:
    def __init__(self) -> None:
        self._boxes: dict[str, dict[str, Document]] = {}

    def put(self, partner: str, document: Document) -> None:
        self._boxes.setdefault(partner, {})[document.id] = document

    def waiting(self, partner: str, kinds: Collection[str] | None = None) -> list[Document]:
        box = self._boxes.get(partner, {})
        return [d for d in box.values() if not kinds or d.kind in kinds]

    def get(self, partner: str, document_id: str) -> Document | None:
        return self._boxes.get(partner, {}).get(document_id)

    def remove(self, partner: str, document_id: str) -> bool:
        return self._boxes.get(partner, {}).pop(document_id, None) is not None

    def __len__(self) -> int:
        return sum(len(box) for box in self._boxes.values())

"""The mailbox reader asks each episode's owner, with a key a re-read repeats, and keeps
each episode's documents in mailbox order."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from rcm_claims.jobs import MailboxPoller
from rcm_contracts import Request
from rcm_contracts.claims import AcknowledgmentRequested, AckStage, ClaimVerdict
from rcm_shared.requests import Reply

EPISODE, OTHER = "E0123456789ab", "E0123456789cd"
CORPUS = Path(__file__).parents[2] / "corpus" / "x12"


class Client:
    def __init__(self, documents: dict[str, str]) -> None:
        self.documents = documents
        self.acknowledged: list[str] = []

    async def waiting(self, *kinds: str) -> list[tuple[str, str]]:
        return [(document_id, kind) for document_id, kind in self.documents.items()]

    async def fetch(self, document_id: str, kind: str) -> str:
        return document_id

    async def acknowledge(self, document_id: str) -> None:
        self.acknowledged.append(document_id)
        self.documents.pop(document_id, None)


class Store:
    def __init__(self) -> None:
        self.records: dict[str, str] = {}

    async def mailbox_done(self, document_id: str) -> bool:
        return document_id in self.records

    async def mailbox_record(
        self, document_id: str, kind: str, outcome: str, error: str | None = None
    ) -> None:
        self.records[document_id] = outcome


class Owners:
    """Answers as the owners would: a claim of `sending` episodes is still being sent."""

    def __init__(self) -> None:
        self.sending: set[str] = set()
        self.asked: list[tuple[str, str | None]] = []

    async def __call__(self, request: Request, idempotency_key: str | None = None) -> Reply:
        assert isinstance(request, AcknowledgmentRequested)
        self.asked.append((request.stage.value, idempotency_key))
        sending = f"{request.episode_id}-1" if request.episode_id in self.sending else None
        return Reply(200, {"episode_id": request.episode_id, "sending": sending})


class Poller(MailboxPoller):
    """Documents named `<kind>-<n>:<episode>,<episode>` instead of X12 texts."""

    async def _requests(
        self, document_id: str, kind: str, text: str
    ) -> list[AcknowledgmentRequested]:
        episodes = text.split(":")[1].split(",")
        stage = AckStage.CLEARINGHOUSE if kind == "999" else AckStage.PAYER
        return [
            AcknowledgmentRequested(
                episode_id=episode,
                requested_by="claims-mailbox",
                document_id=document_id,
                stage=stage,
                verdicts=[ClaimVerdict(claim_id=f"{episode}-1", accepted=True)],
            )
            for episode in episodes
        ]


def setup(documents: dict[str, str]) -> tuple[Poller, Client, Store, Owners]:
    client, store, owners = Client(documents), Store(), Owners()
    poller = Poller(store, client, owners)  # type: ignore[arg-type]
    return poller, client, store, owners


async def test_a_document_about_a_claim_still_sending_waits_and_so_do_later_ones() -> None:
    poller, client, store, owners = setup(
        {
            f"999-1:{EPISODE},{OTHER}": "999",
            f"277CA-1:{EPISODE}": "277CA",
            f"277CA-2:{OTHER}": "277CA",
        }
    )
    owners.sending.add(EPISODE)
    assert await poller.poll_once() == 0
    # The 999 was asked for both episodes and waits; the 277CA about the waiting episode
    # was not even asked (it would overtake the 999); so does the one about the other.
    assert owners.asked == [
        ("999", f"999-1:{EPISODE},{OTHER}:{EPISODE}"),
        ("999", f"999-1:{EPISODE},{OTHER}:{OTHER}"),
    ]
    assert client.acknowledged == []
    assert store.records == {}

    owners.sending.clear()
    assert await poller.poll_once() == 3
    assert [stage for stage, _ in owners.asked[2:]] == ["999", "999", "277CA", "277CA"]
    # A document read again is the same request: the same keys as the first time.
    assert owners.asked[2:4] == owners.asked[:2]
    assert client.acknowledged == [
        f"999-1:{EPISODE},{OTHER}",
        f"277CA-1:{EPISODE}",
        f"277CA-2:{OTHER}",
    ]
    assert set(store.records.values()) == {"processed"}


async def test_documents_about_other_episodes_do_not_wait() -> None:
    poller, client, _, owners = setup(
        {f"999-1:{EPISODE}": "999", f"999-2:{OTHER}": "999", f"277CA-2:{OTHER}": "277CA"}
    )
    owners.sending.add(EPISODE)
    assert await poller.poll_once() == 2
    assert client.acknowledged == [f"999-2:{OTHER}", f"277CA-2:{OTHER}"]


async def test_an_unreadable_document_is_recorded_by_place_not_by_its_values(
    caplog: pytest.LogCaptureFixture,
) -> None:
    text = (CORPUS / "277ca_mixed.x12").read_text()
    garbled = text.replace("DTP*472*D8*20260105", "DTP*472*D8*20261305")  # a service date

    class Texts(Client):
        async def fetch(self, document_id: str, kind: str) -> str:
            return garbled

    class Errors(Store):
        async def mailbox_record(
            self, document_id: str, kind: str, outcome: str, error: str | None = None
        ) -> None:
            self.records[document_id] = f"{outcome}: {error}"

    client, store = Texts({"277CA-9": "277CA"}), Errors()
    poller = MailboxPoller(store, client, Owners())  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO):
        await poller.poll_once()
    assert client.acknowledged == ["277CA-9"]  # set aside, so it cannot block the rest
    (record,) = store.records.values()
    assert record.startswith("unreadable: X12ValueError in DTP at segment ")
    assert "20261305" not in record
    assert "20261305" not in caplog.text

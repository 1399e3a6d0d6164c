"""The 835 mailbox reader: a singleton job (one replica reads the mailbox).

It changes no remittance itself: for each transaction of an 835 it asks the remittance's
owner to post it (a request keyed by the remittance id, whose idempotency key is the
document and the remittance, so asking again after a crash is the same request), and
acknowledges the document only once every transaction was answered. A document that is
not a readable 835 is recorded in `unreadable_documents`, which this job alone writes.
A biller's uploaded 835 (`POST /remittance-files`) takes the same path: `read_upload`,
then `post_transactions`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError
from rcm_contracts import Request
from rcm_contracts.payments import RemittancePostingRequested, RemittanceTransaction
from rcm_shared.aggregates import Aggregates
from rcm_shared.clearinghouse import ClearinghouseClient
from rcm_shared.clock import Clock, utc_now
from rcm_shared.redact import describe, problems
from rcm_shared.requests import Reply
from rcm_x12 import X12Error

from . import domain
from .domain import UnreadableDocument

log = logging.getLogger(__name__)

SINGLETON = "payments-mailbox"
READER = "payments-mailbox"  # requested_by of the postings it asks for

Ask = Callable[[Request, str | None], Awaitable[Reply]]


class Mailbox:
    def __init__(
        self,
        clearinghouse: ClearinghouseClient,
        ask: Ask,
        unreadable: Aggregates[UnreadableDocument],
        clock: Clock = utc_now,
        held: Callable[[], bool] = lambda: True,
    ) -> None:
        self.clearinghouse = clearinghouse
        self.ask = ask
        self.unreadable = unreadable
        self.clock = clock
        # Whether this process still runs the job: a hand-over waits for the round in
        # flight, so a round stops between documents once it is being handed over.
        self.held = held

    async def poll_once(self) -> int:
        """Process every waiting 835; returns how many were acknowledged."""
        done = 0
        for document_id, _kind in await self.clearinghouse.waiting("835"):
            if not self.held():
                log.info("mailbox handed over: the rest waits for the next holder")
                break
            try:
                await self.process_document(document_id)
            except Exception as error:  # left in the mailbox: the next round tries again
                log.warning("835 %s not processed: %s", document_id, describe(error))
                continue
            done += 1
        return done

    async def process_document(self, document_id: str) -> None:
        """Archive, read, have each transaction posted by its owner, then acknowledge.

        A crash anywhere before the acknowledgement brings the same document back; the
        same requests are asked again and their owners answer from the state as it is.
        """
        text = await self.clearinghouse.fetch(document_id, "835")  # archives it
        try:
            transactions = domain.read_835(text, document_id)
        except X12Error as error:
            # The message may quote element values (names): say where, not what.
            log.warning("835 %s is unreadable: %s", document_id, error.located())
            await self._unreadable(document_id, error.located())
        except ValidationError as error:
            log.warning("835 %s carries values out of range", document_id)
            await self._unreadable(document_id, problems(error))
        else:
            await post_transactions(self.ask, document_id, transactions)
        await self.clearinghouse.acknowledge(document_id)

    async def _unreadable(self, document_id: str, reason: str) -> None:
        now = domain.to_millisecond(self.clock())
        await self.unreadable.apply(
            domain.unreadable_id_of(document_id),
            lambda current: domain.unreadable_document(current, document_id, reason, now),
        )


async def post_transactions(
    ask: Ask, document_id: str, transactions: list[RemittanceTransaction]
) -> list[dict[str, Any]]:
    """Ask each transaction's remittance owner to post it, in order; their answers.

    The idempotency key is the document and the transaction (ST02): asking again after a
    crash is the same request, and two transactions of one document under the same payer
    and trace are two requests (the second is a copy or a reused trace, never lost)."""
    answers = []
    for transaction in transactions:
        request = RemittancePostingRequested(requested_by=READER, transaction=transaction)
        remittance_id = transaction.remittance_id
        key = f"{document_id}:{remittance_id}:{transaction.transaction_control_number}"
        reply = await ask(request, key)
        log.info("835 %s: remittance %s answered %s", document_id, remittance_id, reply.status)
        answers.append(reply.body)
    return answers


def uploaded_document_id(text: str) -> str:
    """An uploaded file is named by its content: the same file again is the same document,
    so its transactions are the same requests (answered as they were)."""
    return f"U-{hashlib.sha256(text.encode()).hexdigest()[:24]}"


class UnreadableUpload(Exception):
    """An uploaded file that is not a readable 835; the message says where (no values)."""


def read_upload(text: str) -> tuple[str, list[RemittanceTransaction]]:
    """The document id and transactions of an uploaded 835; UnreadableUpload if it is not
    one (nothing is kept of it then)."""
    document_id = uploaded_document_id(text)
    try:
        return document_id, domain.read_835(text, document_id)
    except X12Error as error:
        raise UnreadableUpload(error.located()) from None
    except ValidationError as error:
        raise UnreadableUpload(problems(error)) from None

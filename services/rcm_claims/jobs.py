"""Background work with the clearinghouse: sending claim batches, reading the mailbox.

Sending, and why a crash cannot make a claim the 835 would not match
---------------------------------------------------------------------
A claim's identity at the payer is its claim id (CLM01), fixed when the claim is queued
and never changed by sending; the payer answers (277CA, 835) by it. One round:

1. Take the queued claims of the episodes of one partition and allocate an interchange
   control number N from that partition's range. Build one interchange (one ST per
   claim) and check it with pyx12; if pyx12 refuses it, check claim by claim and send the
   others: a refused claim goes to the biller's rejection queue, never to the payer.
2. Mark the claims "sending in N" (one write per episode, before any HTTP call).
3. Store the interchange document N: its exact text and the claims in it ("prepared").
4. POST it (the client archives the text verbatim first). Success: the document becomes
   "sent" with the clearinghouse's batch id.
5. Per episode, in one write: each claim sent in N and not yet recorded becomes
   submitted and claim-submitted goes into the outbox. The `submitted_at` guard in that
   same write makes claim-submitted happen once per claim, however often step 5 runs.

A restart finishes what a crash left: an unfinished interchange is POSTed again with
the same bytes (same ISA13, same claims, same claim ids: a clearinghouse may drop it as
a duplicate; if not, the payer sees the same claim again and answers by the same id),
or its claims are recorded (step 5). Claims marked "sending" whose interchange document
was never written (crash between 2 and 3) were never sent: they go into the next
interchange like queued claims. So a claim never reaches a payer under another identity,
and a transient clearinghouse failure is just a retry of step 4 on the next round.

Replicas: every replica sends for the episodes it owns (rcm_shared.ownership), one
interchange per owned partition per round, holding only claims of that partition's
episodes, numbered from that partition's range and recording the partition. So the only
writer of those episodes writes them (it applies the decisions directly: the adapter
serialises writes to one aggregate within the process), and control numbers never
collide. An unfinished interchange is finished by whoever owns its partition now. A
round runs inside `ownership.working()`, so a revocation waits until the round is done,
and the round checks each partition before it works on it, so it stops at the first one
being handed over.

Which episodes to look at: the handlers that leave a claim to send name the episode
(`queued`), and the round reads those by id. A sweep (a scan of the episodes for unsent
claims and of the interchanges for unfinished ones) runs at start, when partitions are
assigned and every `sweep_interval_s`, for what a crash or a former owner left.

Reading the mailbox
-------------------
One replica reads it (a singleton job). 999s and 277CAs are fetched (archived verbatim)
and parsed; what a document says about each episode's claims is sent to the episode's
owner as a request (acknowledgment-requested) whose Idempotency-Key is the document id
and the episode id, so a document read again is the same request, applied once. The
document is recorded as processed and only then acknowledged. A document that names a
claim whose submission is not recorded yet (step 5 pending) is left in the mailbox for
the next poll, and so is every later document about the same episodes (each episode
hears its documents in mailbox order). A document that cannot be parsed is recorded as
unreadable (it is archived) and acknowledged, so it cannot block the rest.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import Any, Protocol

from rcm_contracts import Request
from rcm_contracts.claims import AcknowledgmentRequested, AckStage, ClaimVerdict
from rcm_shared.aggregates import Decide
from rcm_shared.clearinghouse import ClearinghouseClient
from rcm_shared.clock import Clock, utc_now
from rcm_shared.errors import PermanentError
from rcm_shared.ownership import Ownership, partition_of
from rcm_shared.redact import describe
from rcm_shared.requests import Reply
from rcm_shared.store import Document
from rcm_x12 import (
    ProfessionalClaim,
    X12Error,
    parse_277ca,
    parse_999,
    validate_with_pyx12,
)

from . import domain, edi
from .store import ClaimsStore, icn_key

log = logging.getLogger(__name__)

PYX12_STAGE = "pyx12"
CLEARINGHOUSE_STAGE = "clearinghouse"
MAILBOX_READER = "claims-mailbox"
MAX_CONCURRENT_READS = 32

Claims = list[tuple[str, str, str, dict[str, Any]]]  # (episode_id, claim_id, st, x12)


class BatchSender:
    """Sends the claims of the episodes this replica owns, one interchange per partition."""

    def __init__(
        self,
        store: ClaimsStore,
        client: ClearinghouseClient,
        partners: edi.Partners,
        ownership: Ownership,
        max_claims: int = 500,
        clock: Clock = utc_now,
        sweep_interval_s: float = 30.0,
    ) -> None:
        self.store = store
        self.client = client
        self.partners = partners
        self.ownership = ownership
        self.max_claims = max_claims
        self.clock = clock
        self.sweep_interval_s = sweep_interval_s
        self._queued: set[str] = set()  # episodes that may have claims to send
        self._unfinished: set[int] = set()  # interchanges this replica has not finished
        self._sweep = True  # at start: what a crash left
        self._next_sweep = 0.0
        self._reads = asyncio.Semaphore(MAX_CONCURRENT_READS)

    def queued(self, episode_id: str) -> None:
        """A handler left a claim of this episode to send."""
        self._queued.add(episode_id)

    def sweep_soon(self) -> None:
        """Sweep at the next round (partitions were just assigned to this replica)."""
        self._sweep = True

    async def run_once(self) -> int:
        """One round: finish what earlier rounds left, then send the queued claims of each
        owned partition in an interchange of its own. Returns the claims sent."""
        now_s = asyncio.get_running_loop().time()
        sweep = self._sweep or now_s >= self._next_sweep
        self._sweep = False
        todo, self._queued = self._queued, set()
        try:
            async with self.ownership.working():
                sent = await self._round(todo, sweep)
        except BaseException:
            self._queued |= todo  # not done: kept for the next round
            self._sweep = self._sweep or sweep
            raise
        if sweep:
            self._next_sweep = now_s + self.sweep_interval_s
        return sent

    async def _round(self, todo: set[str], sweep: bool) -> int:
        owned = self.ownership.owned
        if not owned:
            return 0
        if sweep:
            todo |= set(await self.store.with_unsent_claims())
            unfinished = await self.store.unfinished_interchanges(owned)
        else:
            unfinished = [
                document
                for icn in sorted(self._unfinished)
                if (document := await self.store.interchange(icn)) is not None
                and not document["done"]
            ]
        for document in unfinished:
            if self._partitions_of(document) <= self.ownership.owned:
                await self.finish(document)
            else:  # its partition moved on: its new owner's sweep finds it
                self._unfinished.discard(int(document["interchange_control_number"]))
        by_partition: dict[int, list[str]] = defaultdict(list)
        for episode_id in todo:
            partition = partition_of(episode_id, self.ownership.partitions)
            if partition in owned:  # else: its owner's sweep finds it
                by_partition[partition].append(episode_id)
        sent = 0
        for partition in sorted(by_partition):
            if partition not in self.ownership.owned:
                break  # being revoked: leave the rest to the next owner
            sent += await self._send(partition, sorted(by_partition[partition]))
        return sent

    def _partitions_of(self, document: Document) -> set[int]:
        """The partition of an interchange; for one written before interchanges had a
        partition, those of all its episodes (it is finished by whoever owns them all)."""
        if document.get("partition") is not None:
            return {int(document["partition"])}
        count = self.ownership.partitions
        return {partition_of(claim["episode_id"], count) for claim in document["claims"]}

    async def _send(self, partition: int, episode_ids: list[str]) -> int:
        """One interchange of the queued claims of these episodes (all of `partition`)."""
        candidates = await self._candidates(episode_ids)
        if not candidates:
            return 0
        icn = await self.store.next_interchange_number(partition)
        numbered = [(e, c, f"{n:04d}", x12) for n, (e, c, _, x12) in enumerate(candidates, 1)]
        now = self.clock()
        numbered, refusals = await self._validated(icn, numbered, now)
        await self._refuse(refusals, PYX12_STAGE)
        if not numbered:
            return 0
        marked = await self._mark(icn, numbered, now)
        if not marked:
            return 0
        text = edi.interchange(self.partners, icn, now, self._models(marked))
        listing = [{"episode_id": e, "claim_id": c, "st": st} for e, c, st, _ in marked]
        document = await self.store.add_interchange(icn, partition, text, listing, "prepared")
        self._unfinished.add(icn)
        await self.finish(document)
        return len(marked)

    async def _episode(self, episode_id: str) -> domain.Episode | None:
        async with self._reads:
            return await self.store.episodes.get(episode_id)

    async def _candidates(self, episode_ids: list[str]) -> Claims:
        """Queued claims, and claims marked sending whose interchange was never stored;
        at most `max_claims` (the episodes left over wait for the next round)."""
        found: Claims = []
        known: dict[int, bool] = {}
        episodes = await asyncio.gather(*(self._episode(e) for e in episode_ids))
        for episode in episodes:
            if episode is None:
                continue
            claims: Claims = []
            for claim in episode.claims:
                if not claim.unsent or claim.x12 is None:
                    continue
                if claim.status is domain.ClaimStatus.SENDING:
                    icn = claim.interchange_control_number
                    if icn is not None and icn not in known:
                        known[icn] = await self.store.interchange(icn) is not None
                    if icn is not None and known[icn]:
                        continue  # its interchange exists: finish() takes care of it
                claims.append((episode.episode_id, claim.claim_id, "", claim.x12))
            if claims and len(found) + len(claims) > self.max_claims and found:
                self._queued.add(episode.episode_id)  # the next round
                continue
            found += claims
        return found[: self.max_claims]

    def _models(self, claims: Claims) -> list[tuple[str, ProfessionalClaim]]:
        return [(st, ProfessionalClaim.model_validate(x12)) for _, _, st, x12 in claims]

    async def _check(self, icn: int, claims: Claims, now: datetime) -> list[str]:
        """pyx12's objections to these claims as one interchange (empty: it passes)."""
        try:
            text = edi.interchange(self.partners, icn, now, self._models(claims))
        except X12Error as error:
            return [f"cannot be written: {error.located()}"]
        except ValueError as error:  # the stored claim no longer fits the model
            return [f"cannot be written: {describe(error)}"]
        ok, errors = await asyncio.to_thread(validate_with_pyx12, text)
        return [] if ok else errors or ["pyx12 refused the interchange"]

    async def _validated(
        self, icn: int, claims: Claims, now: datetime
    ) -> tuple[Claims, dict[tuple[str, str], list[str]]]:
        """The claims pyx12 accepts, and the refused ones with pyx12's reasons."""
        if not await self._check(icn, claims, now):
            return claims, {}
        refusals: dict[tuple[str, str], list[str]] = {}
        good: Claims = []
        for claim in claims:
            problems = await self._check(icn, [claim], now)
            if problems:
                refusals[(claim[0], claim[1])] = problems[:10]
            else:
                good.append(claim)
        if good and (problems := await self._check(icn, good, now)):
            # Each passes alone but not together: refuse them all rather than loop.
            for claim in good:
                refusals[(claim[0], claim[1])] = ["in a batch: " + p for p in problems[:10]]
            good = []
        if refusals:
            log.warning("pyx12 refused %d claim(s) of interchange %s", len(refusals), icn)
        return good, refusals

    async def _refuse(self, refusals: dict[tuple[str, str], list[str]], stage: str) -> None:
        by_episode: dict[str, dict[str, list[str]]] = defaultdict(dict)
        for (episode_id, claim_id), problems in refusals.items():
            by_episode[episode_id][claim_id] = problems
        for episode_id, claims in by_episode.items():
            decide = partial(domain.refuse, refusals=claims, stage=stage, now=self.clock())
            await self.store.episodes.apply(episode_id, decide)

    async def _mark(self, icn: int, claims: Claims, now: datetime) -> Claims:
        by_episode: dict[str, dict[str, str]] = defaultdict(dict)
        for episode_id, claim_id, st, _ in claims:
            by_episode[episode_id][claim_id] = st
        marked: Claims = []
        for episode_id, numbers in by_episode.items():
            decide = partial(
                domain.mark_sending, numbers=numbers, interchange_control_number=icn, now=now
            )
            applied = await self.store.episodes.apply(episode_id, decide)
            done = applied.result or []
            marked += [(episode_id, claim_id, st, x12) for claim_id, st, x12 in done]
        return sorted(marked, key=lambda claim: claim[2])

    async def finish(self, document: Document) -> None:
        """Drive a stored interchange to its end: POST it if not yet sent, then record
        every claim's outcome (submitted or refused)."""
        icn = int(document["interchange_control_number"])
        state = document["state"]
        if state == "prepared":
            try:
                batch_id = await self.client.submit_batch(document["text"], icn_key(icn))
            except PermanentError as error:
                state, document["error"] = "refused", describe(error)
                await self.store.update_interchange(icn, state=state, error=document["error"])
            else:
                state, document["batch_id"] = "sent", batch_id
                await self.store.update_interchange(icn, state=state, batch_id=batch_id)
                log.info("interchange %s sent as batch %s", icn_key(icn), batch_id)
        episodes: dict[str, list[str]] = defaultdict(list)
        for claim in document["claims"]:
            episodes[claim["episode_id"]].append(claim["claim_id"])
        for episode_id, claim_ids in episodes.items():
            decide: Decide[domain.Episode, None]
            if state == "sent":
                decide = partial(
                    domain.mark_submitted,
                    interchange_control_number=icn,
                    batch_id=str(document["batch_id"]),
                    now=self.clock(),
                )
            else:
                reason = [str(document.get("error") or "the clearinghouse refused the batch")]
                decide = partial(
                    domain.refuse,
                    refusals=dict.fromkeys(claim_ids, reason),
                    stage=CLEARINGHOUSE_STAGE,
                    now=self.clock(),
                )
            await self.store.episodes.apply(episode_id, decide)
        await self.store.finish_interchange(icn)
        self._unfinished.discard(icn)


class Ask(Protocol):
    """`Service.ask`: a request to the owner of its aggregate, answered or refused."""

    def __call__(
        self, request: Request, idempotency_key: str | None = None
    ) -> Awaitable[Reply]: ...


class MailboxPoller:
    KINDS = ("999", "277CA")

    def __init__(
        self,
        store: ClaimsStore,
        client: ClearinghouseClient,
        ask: Ask,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.client = client
        self.ask = ask
        self.clock = clock

    async def poll_once(self) -> int:
        """Process what waits in the mailbox; returns how many documents were finished."""
        finished = 0
        # Episodes of documents left for the next poll: a later document about them waits
        # too, so that each episode hears its documents in mailbox order (a 277CA applied
        # before its 999 would leave the 999's acceptance unrecorded).
        waiting: set[str] = set()
        for document_id, kind in await self.client.waiting("999", "277CA"):
            if kind not in self.KINDS:
                continue
            if not await self.store.mailbox_done(document_id):
                text = await self.client.fetch(document_id, kind)
                try:
                    requests = await self._requests(document_id, kind, text)
                except X12Error as error:
                    said = error.located()  # the document (archived) says the rest
                    log.error("mailbox %s (%s) unreadable: %s", document_id, kind, said)
                    await self.store.mailbox_record(document_id, kind, "unreadable", said)
                    await self.client.acknowledge(document_id)
                    continue
                episodes = {request.episode_id for request in requests}
                if episodes & waiting:
                    log.info("mailbox %s waits for an earlier document", document_id)
                    waiting |= episodes
                    continue
                sending = await self._hand_over(document_id, requests)
                if sending:
                    log.info("mailbox %s waits: claim %s is being sent", document_id, sending)
                    waiting |= episodes
                    continue
                await self.store.mailbox_record(document_id, kind, "processed")
            await self.client.acknowledge(document_id)
            finished += 1
        return finished

    async def _hand_over(self, document_id: str, requests: list[AcknowledgmentRequested]) -> str:
        """Ask each episode's owner to apply the document; a claim still being sent, if
        any (empty: every owner applied it)."""
        replies = await asyncio.gather(
            *(self.ask(r, f"{document_id}:{r.episode_id}") for r in requests),
            return_exceptions=True,
        )
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply  # the document stays: the next poll asks again, the same request
        for reply in replies:
            body = reply.body if isinstance(reply, Reply) else None
            if isinstance(body, dict) and body.get("sending"):
                return str(body["sending"])
        return ""

    async def _requests(
        self, document_id: str, kind: str, text: str
    ) -> list[AcknowledgmentRequested]:
        if kind == "999":
            verdicts = await self._from_999(text)
            stage = AckStage.CLEARINGHOUSE
        else:
            verdicts = self._from_277ca(text)
            stage = AckStage.PAYER
        by_episode: dict[str, list[ClaimVerdict]] = defaultdict(list)
        for episode_id, verdict in verdicts:
            by_episode[episode_id].append(verdict)
        return [
            AcknowledgmentRequested(
                episode_id=episode_id,
                requested_by=MAILBOX_READER,
                document_id=document_id,
                stage=stage,
                verdicts=claims,
            )
            for episode_id, claims in by_episode.items()
        ]

    def _from_277ca(self, text: str) -> list[tuple[str, ClaimVerdict]]:
        found = []
        for claim_id, verdict in edi.verdicts_277ca(parse_277ca(text)).items():
            episode_id, _, number = claim_id.rpartition("-")
            ours = episode_id and number.isdigit()
            checked = _verdict(claim_id, verdict, None) if ours else None
            if checked is None:
                log.warning("277CA names claim %r, which is not one of ours", claim_id)
                continue
            found.append((episode_id, checked))
        return found

    async def _from_999(self, text: str) -> list[tuple[str, ClaimVerdict]]:
        found = []
        for icn, ack in edi.verdicts_999(parse_999(text)):
            interchange = await self.store.interchange(icn)
            if interchange is None:
                log.warning("999 answers interchange %s, which we never sent", icn_key(icn))
                continue
            for claim in interchange["claims"]:
                verdict = _verdict(claim["claim_id"], edi.verdict_999(ack, claim["st"]), icn)
                if verdict is not None:
                    found.append((str(claim["episode_id"]), verdict))
        return found


def _verdict(claim_id: str, verdict: edi.AckVerdict, icn: int | None) -> ClaimVerdict | None:
    """The verdict as the request carries it; None for a claim id none of ours can have."""
    try:
        return ClaimVerdict(
            claim_id=claim_id,
            accepted=verdict.accepted,
            status_codes=list(verdict.status_codes),
            message=verdict.message[: edi.MAX_MESSAGE],
            payer_claim_control_number=verdict.payer_claim_control_number,
            interchange_control_number=icn,
        )
    except ValueError:
        return None

"""Background work with the clearinghouse: sending claim batches, reading the mailbox.

Sending, and why a crash cannot make a claim the 835 would not match
---------------------------------------------------------------------
A claim's identity at the payer is its claim id (CLM01), fixed when the claim is queued
and never changed by sending; the payer answers (277CA, 835) by it. One round:

1. Take the queued claims (across episodes) and allocate an interchange control number
   N (atomic counter). Build one interchange (one ST per claim) and check it with pyx12;
   if pyx12 refuses it, check claim by claim and send the others: a refused claim goes to
   the biller's rejection queue, never to the payer.
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

One sender per database: run a single claims process (or give only one the batch job).

Reading the mailbox
-------------------
999s and 277CAs are fetched (archived verbatim), parsed and applied to each episode with
the document id as the event id (idempotent), recorded as processed and only then
acknowledged. A document that names a claim whose submission is not recorded yet (step
5 pending) is left in the mailbox for the next poll. A document that cannot be parsed is
recorded as unreadable (it is archived) and acknowledged, so it cannot block the rest.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from rcm_contracts.claims import AckStage
from rcm_shared.clearinghouse import ClearinghouseClient
from rcm_shared.errors import PermanentError
from rcm_shared.store import Change, Decide, Document
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


def utc_now() -> datetime:
    return datetime.now(UTC)


Claims = list[tuple[str, str, str, dict[str, Any]]]  # (episode_id, claim_id, st, x12)


class BatchSender:
    def __init__(
        self,
        store: ClaimsStore,
        client: ClearinghouseClient,
        partners: edi.Partners,
        max_claims: int = 500,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.client = client
        self.partners = partners
        self.max_claims = max_claims
        self.clock = clock

    async def run_once(self) -> int:
        """One round: finish what an earlier round left, then send the queued claims.
        Returns the number of claims sent in this round's new interchange."""
        for document in await self.store.unfinished_interchanges():
            await self.finish(document)
        candidates = await self._candidates()
        if not candidates:
            return 0
        icn = await self.store.next_interchange_number()
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
        document = await self.store.add_interchange(icn, text, listing, "prepared")
        await self.finish(document)
        return len(marked)

    async def _candidates(self) -> Claims:
        """Queued claims, and claims marked sending whose interchange was never stored."""
        found: Claims = []
        known: dict[int, bool] = {}
        for document in await self.store.with_unsent_claims(self.max_claims):
            episode = domain.Episode.load(document, document["_id"])
            for claim in episode.claims:
                if not claim.unsent or claim.x12 is None:
                    continue
                if claim.status is domain.ClaimStatus.SENDING:
                    icn = claim.interchange_control_number
                    if icn is not None and icn not in known:
                        known[icn] = await self.store.interchange(icn) is not None
                    if icn is not None and known[icn]:
                        continue  # its interchange exists: finish() takes care of it
                found.append((episode.episode_id, claim.claim_id, "", claim.x12))
        return found[: self.max_claims]

    def _models(self, claims: Claims) -> list[tuple[str, ProfessionalClaim]]:
        return [(st, ProfessionalClaim.model_validate(x12)) for _, _, st, x12 in claims]

    async def _check(self, icn: int, claims: Claims, now: datetime) -> list[str]:
        """pyx12's objections to these claims as one interchange (empty: it passes)."""
        try:
            text = edi.interchange(self.partners, icn, now, self._models(claims))
        except (X12Error, ValueError) as error:
            return [f"cannot be written: {error}"]
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
            decide = domain.refuse(episode_id, claims, stage, self.clock())
            await self.store.episodes.apply(episode_id, decide)

    async def _mark(self, icn: int, claims: Claims, now: datetime) -> Claims:
        by_episode: dict[str, dict[str, str]] = defaultdict(dict)
        for episode_id, claim_id, st, _ in claims:
            by_episode[episode_id][claim_id] = st
        marked: Claims = []
        for episode_id, numbers in by_episode.items():
            done: list[tuple[str, str, dict[str, Any]]] = []
            decide = domain.mark_sending(episode_id, numbers, icn, now, done)
            await self.store.episodes.apply(episode_id, decide)
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
                state, document["error"] = "refused", str(error)
                await self.store.update_interchange(icn, state=state, error=str(error))
            else:
                state, document["batch_id"] = "sent", batch_id
                await self.store.update_interchange(icn, state=state, batch_id=batch_id)
                log.info("interchange %s sent as batch %s", icn_key(icn), batch_id)
        episodes: dict[str, list[str]] = defaultdict(list)
        for claim in document["claims"]:
            episodes[claim["episode_id"]].append(claim["claim_id"])
        for episode_id, claim_ids in episodes.items():
            if state == "sent":
                decide = domain.mark_submitted(episode_id, icn, document["batch_id"], self.clock())
            else:
                reason = [str(document.get("error") or "the clearinghouse refused the batch")]
                decide = domain.refuse(
                    episode_id, dict.fromkeys(claim_ids, reason), CLEARINGHOUSE_STAGE, self.clock()
                )
            await self.store.episodes.apply(episode_id, decide)
        await self.store.finish_interchange(icn)


class MailboxPoller:
    KINDS = ("999", "277CA")

    def __init__(
        self,
        store: ClaimsStore,
        client: ClearinghouseClient,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.client = client
        self.clock = clock

    async def poll_once(self) -> int:
        """Process what waits in the mailbox; returns how many documents were finished."""
        finished = 0
        for document_id, kind in await self.client.waiting("999", "277CA"):
            if kind not in self.KINDS:
                continue
            if not await self.store.mailbox_done(document_id):
                text = await self.client.fetch(document_id, kind)
                try:
                    updates = await self._updates(kind, text)
                except X12Error as error:
                    log.error("mailbox %s (%s) unreadable: %s", document_id, kind, error)
                    await self.store.mailbox_record(document_id, kind, "unreadable", str(error))
                    await self.client.acknowledge(document_id)
                    continue
                try:
                    for episode_id, decide in updates.items():
                        await self.store.episodes.apply(
                            episode_id, decide, event_id=f"mailbox:{document_id}"
                        )
                except domain.ClaimStillSending as pending:
                    log.info("mailbox %s waits: claim %s is being sent", document_id, pending)
                    continue
                await self.store.mailbox_record(document_id, kind, "processed")
            await self.client.acknowledge(document_id)
            finished += 1
        return finished

    async def _updates(self, kind: str, text: str) -> dict[str, Decide]:
        now = self.clock()
        if kind == "999":
            return await self._from_999(text, now)
        verdicts: dict[str, dict[str, edi.AckVerdict]] = defaultdict(dict)
        for claim_id, verdict in edi.verdicts_277ca(parse_277ca(text)).items():
            episode_id, _, number = claim_id.rpartition("-")
            if episode_id and number.isdigit():
                verdicts[episode_id][claim_id] = verdict
            else:
                log.warning("277CA names claim %r, which is not one of ours", claim_id)
        return {
            episode_id: domain.acknowledge(episode_id, AckStage.PAYER, claims, now)
            for episode_id, claims in verdicts.items()
        }

    async def _from_999(self, text: str, now: datetime) -> dict[str, Decide]:
        by_episode: dict[tuple[str, int], dict[str, edi.AckVerdict]] = defaultdict(dict)
        for icn, ack in edi.verdicts_999(parse_999(text)):
            interchange = await self.store.interchange(icn)
            if interchange is None:
                log.warning("999 answers interchange %s, which we never sent", icn_key(icn))
                continue
            for claim in interchange["claims"]:
                verdict = edi.verdict_999(ack, claim["st"])
                by_episode[(claim["episode_id"], icn)][claim["claim_id"]] = verdict
        decisions: dict[str, list[Decide]] = defaultdict(list)
        for (episode_id, icn), claims in by_episode.items():
            decisions[episode_id].append(
                domain.acknowledge(episode_id, AckStage.CLEARINGHOUSE, claims, now, icn)
            )
        return {episode_id: _all(steps) for episode_id, steps in decisions.items()}


def _all(steps: list[Decide]) -> Decide:
    """One decision from several (a 999 document answering several interchanges)."""
    if len(steps) == 1:
        return steps[0]

    def decide(document: Document | None) -> Change | None:
        events: list[Any] = []
        current = document
        changed: Change | None = None
        for step in steps:
            change = step(current)
            if change is None:
                continue
            events += list(change.events)
            current = {**(current or {}), **change.set}
            changed = Change(set=change.set, events=events)
        return changed

    return decide

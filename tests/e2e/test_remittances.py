"""End to end: the remittances payers really send, through the running platform.

The payer simulator acknowledges claims but never remits here; this test is the payers'
back office. It reads the 837P batches the simulator received, adjudicates them by the
simulator's own fee schedules and benefits, and uploads the 835s a biller would get
from payer portals: a split payment, a crossover and the secondary's own 835, a PLB
recoupment, the same payment re-sent in a new interchange, and a reversal with a repost.
Every ledger must balance after each step, and every claim adjudication must be posted
once: nothing twice, nothing lost.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from rcm_ops.platform import InfraUrls, Platform, PlatformConfig, SimulatorKnobs
from rcm_ops.run import drive_episodes, totals_of
from rcm_payer_simulator.adjudication import (
    Accumulators,
    adjudicate,
    member_benefits,
    payee_of,
    payer_claim_control_number,
    remittance,
    reverse,
)
from rcm_payer_simulator.payers import PAYERS, PayerInfo
from rcm_shared.auth import Role
from rcm_x12 import Envelope, ProfessionalClaim, RemittanceDocument, build_835, parse_837p
from rcm_x12.common import Adjustment
from rcm_x12.remittance import (
    CrossoverCarrier,
    ProviderAdjustment,
    Remittance,
    RemittanceClaim,
)

from tests.conftest import Infra, drop_topics
from tests.integration.helpers import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

EPISODES = 14
SEED = 23
PORT_OFFSET = 950
NEVER = 3600.0  # the simulator remits an hour later: the test sends every 835 itself
TOTAL_PARTS = (
    "payer_paid_cents",
    "adjustments_cents",
    "patient_paid_cents",
    "written_off_cents",
    "balance_cents",
)


@dataclass
class Billed:
    """A primary claim the platform sent, as the payer received it."""

    claim: ProfessionalClaim
    payer: PayerInfo
    sender_id: str
    receiver_id: str

    @property
    def claim_id(self) -> str:
        return self.claim.patient_control_number

    @property
    def episode_id(self) -> str:
        return self.claim_id.rpartition("-")[0]

    @property
    def pccn(self) -> str:
        return payer_claim_control_number(SEED, self.payer, self.claim)

    def adjudicated(self) -> RemittanceClaim:
        """The payer's adjudication by the simulator's fee schedule and benefits, the
        deductible met, so that the claim pays (copay and coinsurance still apply)."""
        benefits = member_benefits(SEED, self.payer, self.claim.subscriber.member_id)
        met = Accumulators(0, benefits.out_of_pocket_cents)
        return adjudicate(self.claim, self.payer, self.pccn, benefits, met).claim


class PayerOffice:
    """Writes 835s as the payers do: one interchange per upload, new control numbers."""

    def __init__(self) -> None:
        self.numbers = itertools.count(700_000_001)

    def interchange(self, billed: Billed, transactions: Sequence[Remittance]) -> str:
        number = next(self.numbers)
        envelope = Envelope(
            sender_id=billed.receiver_id,
            receiver_id=billed.sender_id,
            control_number=number,
            group_control_number=number,
            created=datetime.now(UTC).replace(microsecond=0, tzinfo=None),  # X12 is naive UTC
        )
        return build_835(RemittanceDocument(envelope=envelope, transactions=list(transactions)))

    def transaction(
        self,
        billed: Billed,
        claims: list[RemittanceClaim],
        *,
        payer: PayerInfo | None = None,
        plb: Sequence[ProviderAdjustment] = (),
        control_number: str = "0001",
    ) -> Remittance:
        payer = payer or billed.payer
        made = remittance(
            payer, payee_of(billed.claim), claims, control_number, datetime.now(UTC).date(), SEED
        )
        paid = sum(c.paid_cents for c in claims) - sum(p.amount_cents for p in plb)
        assert paid >= 0, "a test 835 must not pay a negative amount"
        # A distinct trace per transaction: the simulator derives it from its content.
        trace = f"{payer.claim_prefix}{next(self.numbers):012d}"
        return made.model_copy(
            update={
                "trace_number": trace,
                "payment_cents": paid,
                "handling": "I" if paid else "H",
                "payment_method": "CHK" if paid else "NON",
                "provider_adjustments": list(plb),
            }
        )


def billed_claims(archive: Path) -> dict[str, Billed]:
    """Every original primary claim the payer simulator received, by claim id."""
    found: dict[str, Billed] = {}
    for path in sorted(archive.glob("payer-simulator/*/*-received-837P-*.x12")):
        batch = parse_837p(path.read_text())
        for submission in batch.transactions:
            for claim in submission.claims:
                if claim.prior_payers or claim.frequency_code != "1":
                    continue
                payer = PAYERS.get(claim.payer.payer_id)
                if payer is not None:
                    found[claim.patient_control_number] = Billed(
                        claim, payer, batch.envelope.sender_id, batch.envelope.receiver_id
                    )
    return found


def balanced(account: dict[str, Any]) -> list[str]:
    """Why the ledger does not hold (empty: it does), whatever the balance is."""
    totals = totals_of(account)
    if totals is None:
        return ["no ledger totals"]
    problems = []
    if sum(totals[name] for name in TOTAL_PARTS) != totals["charges_cents"]:
        problems.append(f"ledger unbalanced: {totals}")
    if account.get("invariant_holds") is False:
        problems += [str(p) for p in account.get("invariant_problems") or ["invariant broken"]]
    return problems


class Desk:
    """What a biller sees and does, signed in."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.keys = itertools.count(1)

    async def upload(self, text: str) -> list[dict[str, Any]]:
        """What each transaction of the file came to."""
        async with self.platform.client("payments", "e2e-biller", Role.BILLER) as client:
            response = await client.post(
                "/remittance-files",
                content=text,
                headers={
                    "Content-Type": "application/edi-x12",
                    "Idempotency-Key": f"upload-{next(self.keys)}",
                },
            )
        assert response.status_code == 200, response.text
        return list(response.json()["transactions"])

    async def read(self, service: str, role: Role, path: str) -> Any:
        async with self.platform.client(service, f"e2e-{role.value}", role) as client:
            response = await client.get(path)
        assert response.status_code == 200, response.text
        return response.json()

    async def claim(self, claim_id: str) -> dict[str, Any]:
        return dict(await self.read("claims", Role.BILLER, f"/claims/{claim_id}"))

    async def episode_claims(self, episode_id: str) -> list[dict[str, Any]]:
        view = await self.read("claims", Role.BILLER, f"/episodes/{episode_id}/claims")
        return list(view["claims"])

    async def account(self, episode_id: str) -> dict[str, Any]:
        return dict(await self.read("collections", Role.COLLECTOR, f"/accounts/{episode_id}"))


async def posted(desk: Desk, episode_id: str, count: int) -> dict[str, Any]:
    """The account once it holds `count` payer postings; its ledger must hold."""
    account: dict[str, Any] = {}

    async def there() -> bool:
        nonlocal account
        try:
            account = await desk.account(episode_id)
        except (AssertionError, httpx.HTTPError):
            return False
        return len(account.get("postings", [])) >= count

    await eventually(there, timeout_s=120)
    assert balanced(account) == [], account
    return account


async def claim_posted(desk: Desk, claim_id: str, count: int) -> dict[str, Any]:
    """The claim once the claims service has applied `count` postings to it (collections
    and claims consume payment-posted each at their own pace)."""
    view: dict[str, Any] = {}

    async def there() -> bool:
        nonlocal view
        view = await desk.claim(claim_id)
        crossover = view.get("crossover") or {}
        return len(view["postings"]) + len(crossover.get("postings", [])) >= count

    await eventually(there, timeout_s=120)
    return view


def with_lines(claim: RemittanceClaim, lines: slice) -> RemittanceClaim:
    """Part of an adjudication: the lines chosen, CLP03/04 and the patient share theirs."""
    chosen = claim.lines[lines]
    every = [a for line in chosen for a in line.adjustments]
    return claim.model_copy(
        update={
            "lines": chosen,
            "charge_cents": sum(line.charge_cents for line in chosen),
            "paid_cents": sum(line.paid_cents for line in chosen),
            "patient_responsibility_cents": sum(a.amount_cents for a in every if a.group == "PR"),
        }
    )


def paid_less(claim: RemittanceClaim, cents: int) -> RemittanceClaim:
    """The same adjudication paying `cents` less on its first paid line (more CO-45)."""
    lines = list(claim.lines)
    index = next(n for n, line in enumerate(lines) if line.paid_cents >= cents)
    line = lines[index]
    lines[index] = line.model_copy(
        update={
            "paid_cents": line.paid_cents - cents,
            "adjustments": [
                *line.adjustments,
                Adjustment(group="CO", reason="45", amount_cents=cents),
            ],
            "allowed_cents": None if line.allowed_cents is None else line.allowed_cents - cents,
        }
    )
    return claim.model_copy(update={"lines": lines, "paid_cents": claim.paid_cents - cents})


def crossed_over(claim: RemittanceClaim, to: PayerInfo) -> RemittanceClaim:
    """The primary's adjudication, forwarded to the secondary (CLP02 19, NM1*TT)."""
    return claim.model_copy(
        update={
            "status": "19",
            "crossover_carrier": CrossoverCarrier(name=to.x12_name, identifier=to.payer_id),
        }
    )


def secondary_of(primary: RemittanceClaim, pccn: str) -> RemittanceClaim:
    """The secondary's own adjudication of a crossover: it pays the deductible and
    coinsurance the primary left; OA-23 carries the rest (claim level, CLP02 2)."""
    patient = [a for line in primary.lines for a in line.adjustments if a.group == "PR"]
    pays = sum(a.amount_cents for a in patient if a.reason in ("1", "2"))
    copay = sum(a.amount_cents for a in patient if a.reason == "3")
    adjustments = [
        Adjustment(group="OA", reason="23", amount_cents=primary.charge_cents - pays - copay)
    ]
    if copay:
        adjustments.append(Adjustment(group="PR", reason="3", amount_cents=copay))
    return primary.model_copy(
        update={
            "status": "2",
            "paid_cents": pays,
            "patient_responsibility_cents": copay,
            "payer_claim_control_number": f"X{pccn}"[:50],
            "adjustments": adjustments,
            "lines": [],
            "crossover_carrier": None,
        }
    )


async def test_remittances_post_once_and_right(infra: Infra, tmp_path: Path) -> None:
    config = PlatformConfig(
        infra=InfraUrls(infra.kafka, infra.mongodb_url),
        port_offset=PORT_OFFSET,
        runs_dir=tmp_path,
        simulator=SimulatorKnobs(seed=SEED, ack_delay_s=0.3, remit_delay_s=NEVER),
        extra_env={"RCM_RELAY_INTERVAL_S": "0.2", "RCM_MAILBOX_POLL_S": "0.3"},
    )
    archive = config.run_dir / "x12"
    office = PayerOffice()
    try:
        async with Platform(config) as platform:
            desk = Desk(platform)
            drive = asyncio.create_task(
                drive_episodes(
                    platform, EPISODES, seed=SEED, timeout_s=1500, rate_per_s=3.0, stall_s=1500
                )
            )
            try:
                await _remittances(desk, office, archive)
            finally:
                drive.cancel()
                await asyncio.gather(drive, return_exceptions=True)
    finally:
        await drop_topics(infra.kafka, config.topic_prefix)


async def _accepted(desk: Desk, archive: Path, wanted: int) -> list[Billed]:
    """Primary claims the payers accepted (277CA), once there are `wanted` of them."""
    deadline = asyncio.get_running_loop().time() + 900
    while True:
        found = []
        for billed in billed_claims(archive).values():
            view = await desk.claim(billed.claim_id)
            if view["status"] == "accepted" and view.get("payer_claim_control_number"):
                found.append(billed)
        if len(found) >= wanted:
            return found
        assert asyncio.get_running_loop().time() < deadline, f"{len(found)} claims accepted"
        await asyncio.sleep(3.0)


def cast(accepted: list[Billed]) -> dict[str, Billed]:
    """A claim for each scene: one with two lines to split, one to cross over, and two
    pairs of claims of one payer each (a payer's 835 carries only its own claims)."""
    split = next(b for b in accepted if len(b.claim.lines) >= 2)
    rest = [b for b in accepted if b is not split]
    pairs: list[tuple[Billed, Billed]] = []
    for payer in {b.payer.payer_id for b in rest}:
        same = [b for b in rest if b.payer.payer_id == payer]
        pairs += list(zip(same[0::2], same[1::2], strict=False))
    (recouped, carrier), (repaid, filler) = pairs[:2]
    crossover = next(b for b in rest if b not in (recouped, carrier, repaid, filler))
    return {
        "split": split,
        "crossover": crossover,
        "recouped": recouped,
        "carrier": carrier,
        "repaid": repaid,
        "filler": filler,
    }


def outcomes(answers: list[dict[str, Any]]) -> list[str]:
    return [answer["outcome"] for answer in answers]


def all_posted(answers: list[dict[str, Any]]) -> bool:
    """Every claim of every transaction posted: nothing lost, nothing held."""
    return all(a["outcome"] == "posted" and a["claims_posted"] == a["claims"] for a in answers)


async def _remittances(desk: Desk, office: PayerOffice, archive: Path) -> None:
    accepted = await _accepted(desk, archive, 9)
    scene = cast(accepted)
    uploads: list[list[dict[str, Any]]] = []

    async def send(billed: Billed, *transactions: Remittance) -> list[dict[str, Any]]:
        answers = await desk.upload(office.interchange(billed, transactions))
        assert all_posted(answers) or outcomes(answers) == ["copy"], answers
        uploads.append(answers)
        return answers

    # 1. A split payment: the first part does not close the claim, the second does.
    split = scene["split"]
    whole = split.adjudicated()
    await send(split, office.transaction(split, [with_lines(whole, slice(0, 1))]))
    await posted(desk, split.episode_id, 1)
    view = await claim_posted(desk, split.claim_id, 1)
    assert (view["status"], view["closed"]) == ("partially-paid", False), view
    await send(split, office.transaction(split, [with_lines(whole, slice(1, None))]))
    await posted(desk, split.episode_id, 2)

    async def split_closed() -> bool:
        view = await desk.claim(split.claim_id)
        return (view["status"], view["closed"], view["outcome"]) == ("paid", True, "paid")

    await eventually(split_closed, timeout_s=60)

    # 2. A crossover: the platform bills no secondary; the secondary's own 835 closes it.
    crossover = scene["crossover"]
    to = next(p for p in PAYERS.values() if p.payer_id != crossover.payer.payer_id)
    primary = crossed_over(crossover.adjudicated(), to)
    await send(crossover, office.transaction(crossover, [primary]))
    await posted(desk, crossover.episode_id, 1)
    view = await claim_posted(desk, crossover.claim_id, 1)
    assert (view["crossover"] or {}).get("payer_id") == to.payer_id, view
    assert view["crossover"]["closed"] is False, view
    own = secondary_of(primary, crossover.pccn)
    await send(crossover, office.transaction(crossover, [own], payer=to))
    account = await posted(desk, crossover.episode_id, 2)
    assert sorted((p["rank"], p["payer_id"]) for p in account["postings"]) == [
        ("primary", crossover.payer.payer_id),
        ("secondary", to.payer_id),
    ]

    view = await claim_posted(desk, crossover.claim_id, 2)
    assert view["crossover"]["closed"] is True, view
    claims = await desk.episode_claims(crossover.episode_id)
    assert [c["claim_id"] for c in claims if c["rank"] == "secondary"] == []  # never billed

    # 3. A PLB recoupment of part of a paid claim, carried by the same payer's payment
    # of another claim, and 4. that 835 re-sent by the payer in a new interchange.
    recouped, carrier = scene["recouped"], scene["carrier"]
    paid = recouped.adjudicated()
    await send(recouped, office.transaction(recouped, [paid]))
    await posted(desk, recouped.episode_id, 1)
    carried = carrier.adjudicated()
    taken = min(paid.paid_cents, carried.paid_cents, 25_00)
    assert taken > 0
    recoupment = ProviderAdjustment(
        provider_id=recouped.claim.billing_provider.npi,
        fiscal_period_date=date(datetime.now(UTC).year, 12, 31),
        reason="WO",
        reference=recouped.pccn,
        amount_cents=taken,
    )
    with_plb = office.transaction(carrier, [carried], plb=[recoupment])
    first = await send(carrier, with_plb)
    again = await send(carrier, with_plb)  # new ISA13, the same payment
    assert (outcomes(first), outcomes(again)) == (["posted"], ["copy"])
    await posted(desk, carrier.episode_id, 1)

    async def recovered() -> bool:
        account = await desk.account(recouped.episode_id)
        return any(e["kind"] == "payer-recoupment" for e in account["entries"])

    await eventually(recovered, timeout_s=120)
    account = await desk.account(recouped.episode_id)
    assert balanced(account) == [], account
    assert account["totals"]["payer_paid_cents"] == paid.paid_cents - taken

    # 5. A reversal and a repost for less: the claim keeps the repost's amounts.
    repaid, filler = scene["repaid"], scene["filler"]
    original = repaid.adjudicated()
    await send(repaid, office.transaction(repaid, [original]))
    await posted(desk, repaid.episode_id, 1)
    filled = filler.adjudicated()
    less = min(10_00, original.paid_cents, filled.paid_cents)
    assert less > 0
    repost = paid_less(original, less)
    await send(repaid, office.transaction(repaid, [reverse(original), repost, filled]))
    await posted(desk, repaid.episode_id, 3)
    await posted(desk, filler.episode_id, 1)

    async def repost_kept() -> bool:
        view = await desk.claim(repaid.claim_id)
        return (view["status"], view["paid_cents"]) == ("paid", repost.paid_cents)

    await eventually(repost_kept, timeout_s=60)

    # Nothing lost: every transaction sent was posted whole (`send` checks), but the
    # copy. Nothing twice: each episode holds each posting once, and its ledger holds.
    assert [outcomes(answers) for answers in uploads].count(["copy"]) == 1
    for billed in scene.values():
        account = await desk.account(billed.episode_id)
        ids = [p["posting_id"] for p in account["postings"]]
        assert len(ids) == len(set(ids)), ids
        assert balanced(account) == [], account
    assert len((await desk.account(carrier.episode_id))["postings"]) == 1

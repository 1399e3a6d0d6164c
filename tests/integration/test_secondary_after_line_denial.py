"""Issue 11, bug 1, across services: the primary denies a line for coding (CO-97) and the
secondary is billed and paid on that answer; coding recodes, the primary's corrected
claim is paid; the secondary gets a corrected claim too and the episode's ledger ends
with nothing owed by insurance. The test forces the line denial (Simulator.deny with a
line); everything after it is the platform's and the simulator's own doing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rcm_contracts import Event
from rcm_contracts.claims import ClaimPaid, ClaimResubmitted, LineDenied
from rcm_contracts.coding import CodingCompleted, CodingCorrected

from tests.conftest import Infra
from tests.unit.claims import builders as b

from .billing_platform import Platform, platform
from .helpers import eventually
from .test_claims import episode_inputs, publish
from .test_claims_appeals import ledger_holds

pytestmark = pytest.mark.integration

SEED = 20261203
REMIT_DELAY_S = 3.0


def recent(event: Event) -> Event:
    """The visit a few days ago: every payer still takes its claims (timely filing)."""
    if not isinstance(event, CodingCompleted | CodingCorrected):
        return event
    served = datetime.now(UTC).date() - timedelta(days=3)
    lines = [line.model_copy(update={"service_date": served}) for line in event.charge_lines]
    return event.model_copy(update={"charge_lines": lines})


@pytest.fixture(scope="module")
async def running_platform(
    infra: Infra, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Platform]:
    async with platform(infra, tmp_path_factory.mktemp("x12"), SEED, REMIT_DELAY_S) as started:
        yield started


async def test_a_primary_line_recoded_after_the_secondary_paid_ends_at_zero(
    running_platform: Platform,
) -> None:
    platform = running_platform
    episode = "E" + uuid.uuid4().hex[:12]
    first, line = f"{episode}-1", f"{episode}-L2"
    await publish(platform.publisher, *map(recent, episode_inputs(episode, secondary=True)))

    async def deny_line() -> bool:
        return platform.simulator.deny(first, "97", line_id=line)

    await eventually(deny_line, timeout_s=60)
    (denied,) = await platform.emitted(LineDenied, episode, 1)
    assert (denied["claim_id"], denied["line_id"]) == (first, line)
    primary, secondary = await platform.emitted(ClaimPaid, episode, 2)
    assert (primary["claim_id"], secondary["rank"]) == (first, "secondary")

    # coding recodes the line (the coder's work is not what is tested here)
    await publish(platform.publisher, recent(b.recoded(episode=episode)))
    primary_fix, secondary_fix = await platform.emitted(ClaimResubmitted, episode, 2)
    assert (primary_fix["replaces_claim_id"], primary_fix["frequency"]) == (first, "7")
    assert secondary_fix["replaces_claim_id"] == secondary["claim_id"]
    assert secondary_fix["frequency"] == "7"

    account: dict[str, Any] = {}
    claims: dict[str, Any] = {}

    async def settled() -> bool:
        account.update(await platform.account(episode))
        claims.update(await platform.episode(episode))
        return (
            claims.get("open_claims") == 0
            and account.get("billing_over") is True
            and len(account.get("postings", [])) == 6
        )

    await eventually(settled, timeout_s=90)
    assert ledger_holds(account), account.get("invariant_problems")
    assert account["insurance_balance_cents"] == 0, account["entries"]
    by_id = {c["claim_id"]: c for c in claims["claims"]}
    new_secondary = by_id[secondary_fix["claim_id"]]
    assert (new_secondary["status"], new_secondary["prior_payer_id"]) == ("paid", "ACME01")
    assert account["totals"]["charges_cents"] == b.recoded(episode=episode).total_charge_cents

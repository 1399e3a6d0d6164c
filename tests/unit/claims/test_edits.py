"""The scrub before a claim is built, on a pack built here: a claim that breaks a hard
edit is held in the billers' work queue with the hits and claim-edit-failed goes out; a
clean one is sent with the pack's version on claim-submitted."""

from __future__ import annotations

import dataclasses
from datetime import date
from functools import partial

import pytest
from rcm_claims import domain
from rcm_claims.handlers import SUBSCRIPTIONS, Handlers
from rcm_contracts import Event
from rcm_contracts.claims import (
    ClaimChanges,
    ClaimCorrectionRequested,
    ClaimEditFailed,
    ClaimSubmitted,
    LineChange,
)
from rcm_edits import Library
from rcm_edits.packs import ModifierIndicator, MueEdit, MueIndicator, Pack, PtpEdit, ScrubRule
from rcm_shared.aggregates import InMemoryAggregates
from rcm_shared.envelope import Envelope
from rcm_shared.errors import Invalid

from . import builders as b

EPISODE = b.EPISODE
FIRST, SECOND = f"{EPISODE}-1", f"{EPISODE}-2"

PACK = Pack(
    version="test-2026",
    effective_from=date(2026, 1, 1),
    ptp=[
        PtpEdit(
            column1="29540",
            column2="99213",
            effective=date(2026, 1, 1),
            modifier_indicator=ModifierIndicator.ALLOWED,
        )
    ],
    mue=[MueEdit(code="36415", units=1, adjudication_indicator=MueIndicator.DAY_CLINICAL)],
    rules=[ScrubRule(rule="units", max_units=20)],
)
CONFIG = dataclasses.replace(b.CONFIG, edit_packs=Library([PACK]))
AT_FAULT = [("99213", [], 1, 15000), ("29540", [], 1, 7500)]


class Setup:
    def __init__(self, config: object = CONFIG) -> None:
        self.episodes: InMemoryAggregates[domain.Episode] = InMemoryAggregates(domain.Episode)
        self.handlers = Handlers(self.episodes, config, clock=lambda: b.NOW)  # type: ignore[arg-type]

    async def bill(self, lines: list[tuple[str, list[str], int, int]]) -> None:
        for event in (
            b.coded(lines=lines),
            b.verified(b.PRIMARY_COVERAGE),
            b.coverages(b.PRIMARY_COVERAGE),
            b.registered(),
        ):
            await SUBSCRIPTIONS[type(event)](self.handlers, Envelope(data=event, source="t"))

    def of(self, kind: type[Event]) -> list[Event]:
        return [event for event in self.episodes.emitted if isinstance(event, kind)]

    def claim(self, claim_id: str = FIRST) -> domain.Claim:
        return self.episodes.states[EPISODE].claim(claim_id)


async def test_a_claim_breaking_a_ptp_edit_is_held_with_its_hits_not_sent() -> None:
    setup = Setup()
    await setup.bill(AT_FAULT)
    claim = setup.claim()
    assert claim.status is domain.ClaimStatus.REJECTED
    assert claim.x12 is None  # never built, so never sent
    assert setup.episodes.states[EPISODE].unsent == []
    assert claim.edit_pack_version == "test-2026"
    assert claim.work is not None
    assert (claim.work.stage, claim.work.status_codes) == ("scrub", ["PTP"])
    (hit,) = claim.work.edit_hits
    assert (hit.codes, hit.line_numbers, hit.allowed_modifiers) == (
        ["29540", "99213"],
        [1, 2],
        ["25"],
    )
    (failed,) = setup.of(ClaimEditFailed)
    assert isinstance(failed, ClaimEditFailed)
    assert (failed.claim_id, failed.edit_pack_version, failed.hits) == (
        FIRST,
        "test-2026",
        [hit],
    )
    # the work queue shows the hits
    (item,) = domain.work_items(setup.episodes.states[EPISODE])
    assert item["stage"] == "scrub"
    assert item["edit_hits"][0]["allowed_modifiers"] == ["25"]


async def test_a_later_event_does_not_announce_the_held_claim_again() -> None:
    setup = Setup()
    await setup.bill(AT_FAULT)
    await setup.handlers.coverage_updated(
        Envelope(data=b.coverages(b.PRIMARY_COVERAGE), source="t")
    )
    assert len(setup.of(ClaimEditFailed)) == 1


async def test_the_biller_adds_the_modifier_and_the_corrected_claim_goes() -> None:
    setup = Setup()
    await setup.bill(AT_FAULT)

    async def correct(changes: ClaimChanges) -> object:
        request = ClaimCorrectionRequested(
            episode_id=EPISODE, requested_by="biller-1", claim_id=FIRST, note="n", changes=changes
        )
        return await setup.handlers.claim_correction_requested(Envelope(data=request, source="t"))

    # a change that still breaks the edit is refused and changes nothing
    units_only = ClaimChanges(lines=[LineChange(line_id=f"{EPISODE}-L2", units=1)])
    with pytest.raises(Invalid) as refused:
        await correct(units_only)
    assert refused.value.reasons[0]["rule"] == "ptp"  # type: ignore[index]
    assert len(setup.episodes.states[EPISODE].claims) == 1

    await correct(ClaimChanges(lines=[LineChange(line_id=f"{EPISODE}-L1", modifiers=["25"])]))
    new = setup.claim(SECOND)
    assert (new.status, new.work) == (domain.ClaimStatus.QUEUED, None)
    assert new.x12 is not None
    assert setup.claim().closed


async def test_a_clean_claim_is_sent_with_the_pack_version_on_claim_submitted() -> None:
    setup = Setup()
    await setup.bill([("99213", ["25"], 1, 15000), ("29540", [], 1, 7500)])
    assert setup.of(ClaimEditFailed) == []
    mark = partial(
        domain.mark_sending, numbers={FIRST: "0001"}, interchange_control_number=7, now=b.NOW
    )
    await setup.episodes.apply(EPISODE, mark)
    record = partial(domain.mark_submitted, interchange_control_number=7, batch_id="B", now=b.NOW)
    await setup.episodes.apply(EPISODE, record)
    (submitted,) = setup.of(ClaimSubmitted)
    assert isinstance(submitted, ClaimSubmitted)
    assert submitted.edit_pack_version == "test-2026"


async def test_an_mue_per_day_across_lines_holds_the_claim() -> None:
    setup = Setup()
    await setup.bill([("36415", [], 1, 2500), ("36415", ["91"], 1, 2500)])
    (hit,) = setup.claim().work.edit_hits  # type: ignore[union-attr]
    assert (hit.rule, hit.line_numbers) == ("mue", [1, 2])


async def test_no_pack_in_force_on_the_date_of_service_means_no_scrub() -> None:
    later = Pack(version="from-2027", effective_from=date(2027, 1, 1), ptp=PACK.ptp)
    setup = Setup(dataclasses.replace(b.CONFIG, edit_packs=Library([later])))
    await setup.bill(AT_FAULT)
    claim = setup.claim()
    assert (claim.status, claim.edit_pack_version) == (domain.ClaimStatus.QUEUED, None)

"""Posting the 835 corpus (tests/corpus/x12/835) through the payments service on real Kafka
and a real MongoDB wire protocol, fed by the mailbox and by a biller's upload: a re-sent
copy is recognised and posted once, another payer on the same ISA13+TRN02 is posted, a
reused trace is held whole, PLB entries are emitted and linked, and a crossover
secondary's own 835 posts with rank secondary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rcm_contracts.payments import (
    PaymentPosted,
    ProviderAdjustmentPosted,
    RemittanceProcessed,
)
from rcm_contracts.registration import CoverageRank
from rcm_shared.envelope import Envelope
from rcm_shared.kafka import Topics

from tests.conftest import Infra

from .helpers import eventually
from .services import running
from .test_payments import (
    Mailbox,
    acknowledged,
    claim_submitted,
    everything_in,
    fresh_key,
    mailbox,
    payments_service,
    settled,
    values,
)

pytestmark = pytest.mark.integration
__all__ = ["mailbox"]  # the fixture, shared with test_payments

CORPUS = Path(__file__).parents[1] / "corpus" / "x12" / "835"
ACME, SUMMIT, BLUEPK = "1043218765", "1056781234", "1061234987"  # TRN03 of each payer
_, CROSSED, MISMATCHED, RECODED, OTHER, FIRST, SECOND, PLB_CLAIM, _ = (
    f"E5b100000000{n}-1" for n in range(1, 10)
)
X12 = {"content-type": "application/edi-x12"}


def text(name: str) -> str:
    with (CORPUS / name).open(newline="") as handle:
        return handle.read()


def archived_835s(root: Path) -> list[str]:
    return [path.read_text() for path in sorted(root.glob("payments/*/*-received-835-*.x12"))]


async def upload(client: Any, name: str) -> list[dict[str, Any]]:
    answer = await client.post(
        "/remittance-files", content=text(name), headers={**X12, **fresh_key()}
    )
    assert answer.status_code == 200, answer.text
    return list(answer.json()["transactions"])


async def test_the_corpus_posts_once_and_right_through_mailbox_and_upload(
    infra: Infra, topics: Topics, database: Any, mailbox: tuple[Mailbox, str], tmp_path: Path
) -> None:
    box, url = mailbox
    service = payments_service(infra, topics, database, url, tmp_path)
    submitted = [
        claim_submitted(RECODED, 292_00),
        claim_submitted(OTHER, 140_00).model_copy(update={"payer_id": "BLUEPK"}),
        claim_submitted(FIRST, 140_00),
        claim_submitted(SECOND, 90_00),
        claim_submitted(CROSSED, 200_00),
        claim_submitted(MISMATCHED, 140_00),
        claim_submitted(PLB_CLAIM, 200_00),
    ]
    async with running(service) as client:
        for event in submitted:
            await service.publisher.publish(Envelope(data=event, source="rcm/test"))

        async def claims_known() -> bool:
            return bool(await database["episodes"].count_documents({}) == len(submitted))

        await eventually(claims_known)

        # The payer's 835 through the mailbox, then the same payment re-sent (new ISA13),
        # uploaded by a biller: recognised, reported, not posted again.
        box.put("doc-9101", text("paid_line_denial_recode.x12"))
        await acknowledged(box, "doc-9101")
        recoded_rid = f"R{ACME}-CHK00091010"
        (copy,) = await upload(client, "paid_line_denial_recode_resent.x12")
        assert (copy["remittance_id"], copy["outcome"]) == (recoded_rid, "copy")
        assert await upload(client, "paid_line_denial_recode_resent.x12") == [copy]  # again
        # Another payer's 835 with the same ISA13 and TRN02: its own remittance, posted.
        (other,) = await upload(client, "other_payer_same_isa13_trn02.x12")
        assert (other["remittance_id"], other["outcome"]) == (f"R{BLUEPK}-CHK00091010", "posted")
        # Two transactions under one payer and trace with other content: the second held.
        first, second = await upload(client, "two_st_same_trn02.x12")
        reused_rid = f"R{ACME}-CHK00093030"
        assert (first["outcome"], second["outcome"]) == ("posted", "trace-reused")
        assert second["unpostable_id"] == f"{reused_rid}-X1"
        # A crossover: the primary forwards it, the secondary remits our claim id itself.
        await upload(client, "crossover_primary.x12")
        (secondary,) = await upload(client, "crossover_secondary.x12")
        assert (secondary["claims"], secondary["claims_posted"]) == (2, 1)
        # PLB: WO names a claim id, FB the crossover primary's CLP07, 72 nothing known.
        (plb,) = await upload(client, "plb_recoupment_interest.x12")
        plb_rid = plb["remittance_id"]

        # Not an 835: 422 with where, nothing kept; no key: 400.
        junk = await client.post(
            "/remittance-files", content="ISA*junk~", headers={**X12, **fresh_key()}
        )
        assert junk.status_code == 422
        assert "not a readable 835" in junk.json()["detail"]
        unkeyed = await client.post(
            "/remittance-files", content=text("unbalanced.x12"), headers=X12
        )
        assert unkeyed.status_code == 400

        view = (await client.get(f"/remittances/{recoded_rid}")).json()
        assert view["interchange_control_number"] == 9101
        assert [c["interchange_control_number"] for c in view["copies"]] == [9202]
        assert "TANAKA" not in str(view)
        (listed,) = (await client.get("/remittance-copies")).json()
        assert listed["remittance_id"] == recoded_rid
        metrics = (await client.get("/metrics")).text
        assert "rcm_remittance_copies_total 1.0" in metrics

        open_ones = {u["unpostable_id"]: u for u in (await client.get("/unpostables")).json()}
        assert open_ones[f"{reused_rid}-X1"]["kind"] == "trace-reused"
        assert open_ones[f"{plb_rid}-P4"]["kind"] == "unlinked-recoupment"
        assert open_ones[f"R{SUMMIT}-CHK00090044-2"]["kind"] == "payer-mismatch"
        assert len(open_ones) == 3
        refused = await client.post(f"/unpostables/{reused_rid}-X1/retry", headers=fresh_key())
        assert refused.status_code == 409
        await settled(service)

    archived = archived_835s(tmp_path)
    assert "ISA*junk~" not in archived  # an unreadable upload is not kept
    assert text("two_st_same_trn02.x12") in archived
    assert await database["unreadable_documents"].count_documents({}) == 0
    posted = values(await everything_in(infra.kafka, topics.of(PaymentPosted)))
    assert sorted((p["claim_id"], p["payer_id"], p["rank"]) for p in posted) == sorted([
        (RECODED, "ACME01", "primary"), (OTHER, "BLUEPK", "primary"),
        (FIRST, "ACME01", "primary"), (CROSSED, "ACME01", "primary"),
        (CROSSED, "SUMMIT", CoverageRank.SECONDARY.value), (PLB_CLAIM, "ACME01", "primary"),
    ])  # fmt: skip
    recoded = next(p for p in posted if p["claim_id"] == RECODED)
    assert recoded["submitted_charge_cents"] == 292_00
    assert recoded["remark_codes"] == ["MA01"]
    assert [line["billed_procedure_code"] for line in recoded["lines"]] == ["99215", None]
    assert recoded["lines"][1]["adjustments"][0]["reason_code"] == "97"
    assert recoded["lines"][1]["remark_codes"] == ["M15", "N20"]
    primary = next(p for p in posted if p["claim_id"] == CROSSED and p["rank"] == "primary")
    assert (primary["crossover_payer_id"], primary["crossover_payer_name"]) == (
        "SUMMIT", "SUMMIT MUTUAL",
    )  # fmt: skip

    adjustments = values(await everything_in(infra.kafka, topics.of(ProviderAdjustmentPosted)))
    by_reason = {a["reason_code"]: a for a in adjustments}
    assert len(adjustments) == 4
    assert (by_reason["WO"]["claim_id"], by_reason["WO"]["episode_id"]) == (
        RECODED, RECODED[:-2],
    )  # fmt: skip
    assert by_reason["FB"]["claim_id"] == CROSSED
    assert (by_reason["L6"]["kind"], by_reason["L6"]["amount_cents"]) == ("interest", -3_45)
    assert (by_reason["72"]["claim_id"], by_reason["72"]["episode_id"]) == (None, None)
    processed = values(await everything_in(infra.kafka, topics.of(RemittanceProcessed)))
    assert sorted(p["remittance_id"] for p in processed) == sorted([
        recoded_rid, f"R{BLUEPK}-CHK00091010", reused_rid, f"R{ACME}-CHK00090033",
        f"R{SUMMIT}-CHK00090044", plb_rid,
    ])  # fmt: skip
    assert (
        next(p for p in processed if p["remittance_id"] == plb_rid)["provider_adjustments_cents"]
        == 61_55
    )

"""`rcm remittance check FILE [--json]` on the 835 corpus: exit codes, the verdict, where a
refusal is, and no patient values in what it prints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rcm_ops.cli import app
from typer.testing import CliRunner

CORPUS = Path(__file__).parents[2] / "corpus" / "x12" / "835"
PATIENT_VALUES = ("HASSAN", "HODA", "TANAKA", "GH123456784", "QR123456788", "OKAFOR", "SOUZA")


def check(name: str, *options: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["remittance", "check", str(CORPUS / name), *options])
    return result.exit_code, result.stdout


def verdict(name: str) -> tuple[int, dict[str, Any]]:
    code, out = check(name, "--json")
    return code, json.loads(out)


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.x12")), ids=lambda p: p.name)
def test_every_balanced_file_is_postable_and_the_unbalanced_one_refused(path: Path) -> None:
    code, found = verdict(path.name)
    refused = path.name == "unbalanced.x12"
    assert code == (1 if refused else 0)
    assert found["postable"] is not refused
    for shown in (json.dumps(found), check(path.name)[1]):
        assert not any(value in shown for value in PATIENT_VALUES)


def test_how_each_claim_would_post() -> None:
    code, found = verdict("paid_line_denial_recode.x12")
    assert code == 0
    ((claim,),) = [t["claims"] for t in found["transactions"]]
    assert (claim["status"], claim["paid_cents"], claim["charge_cents"]) == ("paid", 175_00, 292_00)
    assert claim["adjustments"] == {"CO-45": 80_00, "CO-97": 12_00, "PR-3": 25_00}
    assert claim["patient_responsibility"] == {
        "deductible_cents": 0, "coinsurance_cents": 0, "copay_cents": 25_00, "other_cents": 0,
    }  # fmt: skip
    assert claim["remark_codes"] == ["M15", "MA01", "N20"]
    assert claim["recoded_lines"] == [
        {"line_id": "E5b1000000004-1-L1", "billed": "99215", "paid_as": "99214"}
    ]
    _, crossed = verdict("crossover_primary.x12")
    assert crossed["transactions"][0]["claims"][0]["crossover_payer_id"] == "SUMMIT"
    _, reversal = verdict("reversal_repost.x12")
    assert [c["status"] for c in reversal["transactions"][0]["claims"]] == ["reversed", "paid"]
    _, text = check("paid_line_denial_recode.x12")
    assert "billed 99215 paid as 99214" in text
    assert "copay $25.00" in text


def test_plb_entries_with_their_kind() -> None:
    _, found = verdict("plb_recoupment_interest.x12")
    (transaction,) = found["transactions"]
    entries = transaction["provider_adjustments"]
    assert [(p["reason_code"], p["kind"], p["amount_cents"]) for p in entries] == [
        ("WO", "recoupment", 50_00), ("FB", "other", 10_00),
        ("L6", "interest", -3_45), ("72", "recoupment", 5_00),
    ]  # fmt: skip
    assert transaction["provider_adjustments"][0]["fiscal_period_date"] == "2026-12-31"


def test_a_claim_breaking_a_rule_is_shown_unpostable_and_the_file_still_postable(
    tmp_path: Path,
) -> None:
    text = (CORPUS / "split_payment_part2.x12").read_text()
    odd = tmp_path / "odd.x12"
    odd.write_text(text.replace("*1*40*12*", "*23*40*12*"))  # CLP02 23: not posted by itself
    result = CliRunner().invoke(app, ["remittance", "check", str(odd), "--json"])
    assert result.exit_code == 0
    (claim,) = json.loads(result.stdout)["transactions"][0]["claims"]
    assert claim["status"] == "unpostable-by-rule"
    assert "CLP02 status 23" in claim["reason"]


def test_a_refusal_says_where(tmp_path: Path) -> None:
    code, found = verdict("unbalanced.x12")
    assert code == 1
    assert "transaction 0001" in found["refusal"]
    assert "expected 10000 cents, got 9999 cents" in found["refusal"]
    broken = tmp_path / "broken.x12"
    text = (CORPUS / "split_payment_part1.x12").read_text()
    broken.write_text(text.replace("CLP*", "CLX*", 1))
    result = CliRunner().invoke(app, ["remittance", "check", str(broken), "--json"])
    assert result.exit_code == 1
    refusal = json.loads(result.stdout)["refusal"]
    assert "segment" in refusal
    assert "RIVERA" not in result.stdout

"""Everything this module builds for 837P, 835, 999 and 277CA passes pyx12's validator."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from rcm_x12 import (
    AcknowledgmentDocument,
    ClaimAcknowledgmentDocument,
    ClaimBatch,
    RemittanceDocument,
    build_277ca,
    build_835,
    build_837p,
    build_999,
    validate_with_pyx12,
)
from x12_strategies import (
    acknowledgment_documents,
    claim_acknowledgment_documents,
    claim_batches,
    remittance_documents,
)

CORPUS = Path(__file__).parents[2] / "corpus" / "x12"
# pyx12 is slow-ish (tens of ms per document): a handful of generated documents each.
PYX12 = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _assert_valid(text: str) -> None:
    ok, errors = validate_with_pyx12(text)
    assert ok, "\n".join(errors) + "\n" + text


@PYX12
@given(claim_batches())
def test_built_837p_passes_pyx12(batch: ClaimBatch) -> None:
    _assert_valid(build_837p(batch))


@PYX12
@given(remittance_documents())
def test_built_835_passes_pyx12(document: RemittanceDocument) -> None:
    _assert_valid(build_835(document))


@PYX12
@given(acknowledgment_documents())
def test_built_999_passes_pyx12(document: AcknowledgmentDocument) -> None:
    _assert_valid(build_999(document))


@PYX12
@given(claim_acknowledgment_documents())
def test_built_277ca_passes_pyx12(document: ClaimAcknowledgmentDocument) -> None:
    _assert_valid(build_277ca(document))


@pytest.mark.parametrize(
    "path",
    sorted(p for p in CORPUS.glob("*.x12") if not p.name.startswith("27")),
    ids=lambda p: p.name,
)
def test_corpus_passes_pyx12(path: Path) -> None:
    _assert_valid(path.read_text())


def test_277ca_corpus_passes_pyx12() -> None:
    _assert_valid((CORPUS / "277ca_mixed.x12").read_text())


def test_pyx12_reports_errors() -> None:
    text = (CORPUS / "835_zero_pay_deductible.x12").read_text()
    ok, errors = validate_with_pyx12(text.replace("PER*BL*EDI SUPPORT*TE*8005550199~\n", ""))
    assert not ok
    assert any("PER" in e for e in errors)


def test_pyx12_unknown_map_is_an_error_not_an_exception() -> None:
    text = (CORPUS / "837p_corrected_and_void.x12").read_text()
    ok, errors = validate_with_pyx12(text.replace("005010X222A1", "005010X222A2"))
    assert not ok
    # pyx12's exception messages may quote the text: only its class is said.
    assert errors == ["pyx12 stopped: EngineError"]


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_pyx12_findings_say_where_and_which_rule_never_the_value() -> None:
    text = (CORPUS / "835_zero_pay_deductible.x12").read_text()
    name = "ZZPHIVALUE" * 8
    seen = Records()
    logging.getLogger().addHandler(seen)
    try:
        ok, errors = validate_with_pyx12(text.replace("NM1*QC*1*DOE*", f"NM1*QC*1*{name}*", 1))
    finally:
        logging.getLogger().removeHandler(seen)
    assert not ok
    assert [error.split(" ", 2)[2] for error in errors] == [
        "NM103 (Patient Last Name): data element too long (5)"
    ]
    # pyx12 logs the value itself; those records do not reach the process's handlers.
    assert not [message for message in seen.messages if "ZZPHIVALUE" in message]

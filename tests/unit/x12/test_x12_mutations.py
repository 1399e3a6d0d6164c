"""Damaged files must fail with an X12Error subclass naming the segment and its position,
never with IndexError/ValueError/KeyError or any other exception."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from rcm_x12 import (
    X12BalanceError,
    X12EnvelopeError,
    X12Error,
    X12StructureError,
    X12SyntaxError,
    X12ValueError,
    parse_270,
    parse_271,
    parse_277ca,
    parse_835,
    parse_837p,
    parse_999,
)

CORPUS = Path(__file__).parents[2] / "corpus" / "x12"
PARSERS: dict[str, Callable[[str], object]] = {
    "835": parse_835,
    "837p": parse_837p,
    "999": parse_999,
    "277ca": parse_277ca,
    "270": parse_270,
    "271": parse_271,
}
VALID = sorted(p.name for p in CORPUS.glob("*.x12") if "unbalanced" not in p.name)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def read(name: str) -> str:
    with (CORPUS / name).open(newline="") as handle:
        return handle.read()


def parser(name: str) -> Callable[[str], object]:
    return PARSERS[name.split("_", 1)[0]]


def pieces(text: str) -> tuple[str, list[str]]:
    """The segment terminator and the text split after each terminator."""
    terminator = text[105]
    parts = text.split(terminator)
    return terminator, [p + terminator for p in parts[:-1]] + [parts[-1]]


def assert_located(error: X12Error) -> None:
    assert error.position is not None, str(error)
    assert error.segment_id is not None, str(error)
    assert f"at segment {error.position}" in str(error)


def without(text: str, segment: str) -> str:
    """Remove one segment and keep SE01 right, so only the missing segment is wrong."""
    at = text.index(segment)
    rest = text[at + len(segment) :]
    count = re.search(r"SE\*(\d+)\*", rest)
    assert count is not None
    fixed = rest[: count.start(1)] + str(int(count.group(1)) - 1) + rest[count.end(1) :]
    return text[:at] + fixed


def refused(parse: Callable[[str], object], text: str) -> X12Error:
    with pytest.raises(X12Error) as caught:
        parse(text)
    return caught.value


@pytest.mark.parametrize("name", VALID)
def test_every_truncation_is_refused(name: str) -> None:
    text, parse = read(name), parser(name)
    for cut in range(len(text.rstrip())):
        error = refused(parse, text[:cut])
        assert error.position is not None, (cut, str(error))


@pytest.mark.parametrize("name", VALID)
def test_every_dropped_segment_is_refused(name: str) -> None:
    text, parse = read(name), parser(name)
    _, parts = pieces(text)
    for index in range(len(parts) - 1):
        damaged = "".join(parts[:index] + parts[index + 1 :])
        assert_located(refused(parse, damaged))


@pytest.mark.parametrize("name", VALID)
@pytest.mark.parametrize("trailer", ["SE", "GE", "IEA"])
def test_wrong_trailer_count_is_an_envelope_error(name: str, trailer: str) -> None:
    text = read(name)
    element = text[3]
    terminator = text[105]
    pattern = re.compile(rf"(^|{re.escape(terminator)}[\r\n]*){trailer}{re.escape(element)}(\d+)")
    match = pattern.search(text)
    assert match is not None
    start, end = match.span(2)
    damaged = text[:start] + str(int(match.group(2)) + 1) + text[end:]
    error = refused(parser(name), damaged)
    assert isinstance(error, X12EnvelopeError)
    assert error.segment_id == trailer
    assert_located(error)


@pytest.mark.parametrize("name", VALID)
@pytest.mark.parametrize("header", ["ST", "GS", "ISA"])
def test_corrupt_control_number_is_an_envelope_error(name: str, header: str) -> None:
    text = read(name)
    element = text[3]
    if header == "ISA":
        damaged = text[:90] + ("8" if text[90] != "8" else "7") + text[91:]  # inside ISA13
        expected_at = "IEA"
    else:
        number = 2 if header == "ST" else 6
        fields = text.split(element)
        index = next(i for i, f in enumerate(fields) if f.endswith(header))
        fields[index + number] = "9" + fields[index + number]
        damaged = element.join(fields)
        expected_at = "SE" if header == "ST" else "GE"
    error = refused(parser(name), damaged)
    assert isinstance(error, X12EnvelopeError), str(error)
    assert error.segment_id == expected_at
    assert_located(error)


@pytest.mark.parametrize("name", VALID)
def test_body_using_other_element_separator_is_a_syntax_error(name: str) -> None:
    text = read(name)
    element = text[3]
    other = "|" if element != "|" else "*"
    damaged = text[:106] + text[106:].replace(element, other)
    error = refused(parser(name), damaged)
    assert isinstance(error, X12SyntaxError)
    assert_located(error)


@pytest.mark.parametrize(
    "name",
    ["835_multi_payer_two_groups.x12", "837p_batch_two_providers.x12", "277ca_mixed.x12"],
)
def test_component_separator_mismatch_is_refused(name: str) -> None:
    text = read(name)
    damaged = text[:104] + "!" + text[105:]  # ISA16 no longer matches the composites
    assert_located(refused(parser(name), damaged))


@pytest.mark.parametrize(
    ("isa_change", "why"),
    [
        ((3, "A"), "element separator is a letter"),
        ((104, "*"), "component separator equals the element separator"),
        ((82, "~"), "repetition separator equals the segment terminator"),
        ((105, "X"), "segment terminator is a letter"),
    ],
)
def test_bad_delimiters_in_isa_are_syntax_errors(isa_change: tuple[int, str], why: str) -> None:
    text = read("835_zero_pay_deductible.x12")
    position, char = isa_change
    damaged = text[:position] + char + text[position + 1 :]
    error = refused(parse_835, damaged)
    assert isinstance(error, X12SyntaxError), why
    assert error.position == 1


@pytest.mark.parametrize("junk", ["", "garbage", "ISA*00", "GS*HP*X~", "ISA" + "*" * 200])
def test_garbage_is_a_syntax_error(junk: str) -> None:
    error = refused(parse_835, junk)
    assert isinstance(error, X12SyntaxError)


def test_non_ascii_bytes_are_a_syntax_error() -> None:
    data = read("835_zero_pay_deductible.x12").encode().replace(b"DOE", b"D\xc3\x96E")
    with pytest.raises(X12SyntaxError, match="not ASCII"):
        parse_835(data)


@FUZZ
@given(
    st.sampled_from(VALID),
    st.data(),
    st.text(
        alphabet=st.characters(
            codec="utf-8", exclude_categories=["Cs"], exclude_characters="\r\n"
        ).filter(lambda c: not (" " <= c <= "~")),
        min_size=1,
        max_size=3,
    ),
)
def test_injected_garbage_bytes_are_syntax_errors(
    name: str, data: st.DataObject, junk: str
) -> None:
    text = read(name).rstrip()
    at = data.draw(st.integers(0, len(text)))
    # Whitespace around the interchange is allowed (tokenize strips it), not inside.
    assume(not (junk.strip(" \t") == "" and at in (0, len(text))))
    error = refused(parser(name), text[:at] + junk + text[at:])
    assert isinstance(error, X12SyntaxError)
    assert error.position is not None


@FUZZ
@given(st.sampled_from(VALID), st.data())
def test_random_edits_fail_only_with_x12_errors(name: str, data: st.DataObject) -> None:
    """Arbitrary printable replacements and deletions: parsed or X12Error, nothing else."""
    text = read(name)
    at = data.draw(st.integers(0, len(text) - 1))
    if data.draw(st.booleans()):
        replacement = data.draw(
            st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=4)
        )
        damaged = text[:at] + replacement + text[at + 1 :]
    else:
        damaged = text[:at] + text[at + data.draw(st.integers(1, 40)) :]
    with contextlib.suppress(X12Error):
        parser(name)(damaged)


def test_changed_amount_is_a_balance_error_at_the_line() -> None:
    text = read("835_multi_payer_two_groups.x12").replace(
        "SVC*HC:85025*70*42.4**1~", "SVC*HC:85025*70*42.5**1~"
    )
    with pytest.raises(X12BalanceError) as caught:
        parse_835(text)
    error = caught.value
    first = error.imbalances[0]
    assert (first.transaction_control_number, first.patient_control_number) == ("0001", "PCN1001")
    assert (first.line_number, first.expected_cents, first.actual_cents) == (2, 42_40, 42_50)
    assert error.segment_id == "SVC"
    assert_located(error)


def test_changed_payment_is_a_balance_error_at_bpr() -> None:
    text = read("835_plb_recoupment_interest.x12").replace("BPR*I*237.34*", "BPR*I*237.43*")
    with pytest.raises(X12BalanceError) as caught:
        parse_835(text)
    (imbalance,) = caught.value.imbalances
    assert (imbalance.rule, imbalance.expected_cents, imbalance.actual_cents) == (
        "transaction",
        237_34,
        237_43,
    )
    assert caught.value.segment_id == "BPR"


@pytest.mark.parametrize(
    ("old", "new", "element"),
    [
        ("CLP*PCN6001*1*180*0*180*", "CLP*PCN6001*1*180*0*1.801*", "CLP05"),
        ("SVC*HC:99203*180*0**1~", "SVC*HC:99203*18O*0**1~", "SVC02"),
        ("BPR*H*0*C*NON", "BPR*H*0*C*CASH", "BPR04"),
        ("DTM*472*20260120~", "DTM*472*20260230~", "DTM02"),
    ],
)
def test_bad_values_name_the_element(old: str, new: str, element: str) -> None:
    text = read("835_zero_pay_deductible.x12")
    assert old in text
    error = refused(parse_835, text.replace(old, new))
    assert isinstance(error, X12ValueError)
    assert element in str(error)
    assert_located(error)


def test_missing_mandatory_segment_is_a_structure_error() -> None:
    text = read("835_zero_pay_deductible.x12")
    damaged = without(text, "PER*BL*EDI SUPPORT*TE*8005550199~\n")
    error = refused(parse_835, damaged)
    assert isinstance(error, X12StructureError)
    assert "PER*BL" in str(error)
    assert_located(error)


def test_icd9_qualifier_is_refused() -> None:
    text = read("837p_corrected_and_void.x12").replace("HI*ABK:M545", "HI*BK:7242")
    error = refused(parse_837p, text)
    assert isinstance(error, X12ValueError)
    assert "ICD-9" in str(error)


def test_frequency_7_without_payer_claim_number_is_refused() -> None:
    text = read("837p_corrected_and_void.x12")
    damaged = without(text, "REF*F8*ACME26011500001~")
    error = refused(parse_837p, damaged)
    assert isinstance(error, X12ValueError)
    assert "payer_claim_control_number" in str(error)
    assert error.segment_id == "CLM"


def test_claim_total_must_match_lines() -> None:
    text = read("837p_corrected_and_void.x12").replace("CLM*PCN1001*265*", "CLM*PCN1001*266*")
    error = refused(parse_837p, text)
    assert "CLM02" in str(error)
    assert_located(error)


def test_wrong_transaction_type_for_parser() -> None:
    error = refused(parse_835, read("837p_corrected_and_void.x12"))
    assert isinstance(error, X12StructureError)
    assert error.segment_id == "GS"

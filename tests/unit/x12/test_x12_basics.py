"""Money conversion, delimiters, envelopes and the builders' own refusals."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from rcm_x12 import (
    Address,
    Adjustment,
    Contact,
    Delimiters,
    Envelope,
    OutGroup,
    OutTransaction,
    Payer,
    Procedure,
    ProfessionalClaim,
    Remittance,
    RemittanceClaim,
    RemittanceDocument,
    RemittanceLine,
    RemittanceParty,
    RemittancePayee,
    RemittancePayer,
    ServiceLine,
    Subscriber,
    X12BalanceError,
    X12BuildError,
    X12ValueError,
    build_835,
    cents_to_x12,
    check_835_balance,
    parse_835,
    parse_interchange,
    seg,
    write_interchange,
    x12_to_cents,
)
from x12_strategies import BILLING_PROVIDERS

CORPUS = Path(__file__).parents[2] / "corpus" / "x12"
ENVELOPE = Envelope(
    sender_id="PAYER01",
    receiver_id="CLINIC01",
    control_number=42,
    group_control_number=7,
    created=datetime(2026, 3, 4, 5, 6, 7),  # noqa: DTZ001 - X12 stamps are naive
)


@pytest.mark.parametrize(
    ("cents", "text"),
    [(12500, "125"), (12550, "125.5"), (-3025, "-30.25"), (0, "0"), (5, "0.05"), (-10, "-0.1")],
)
def test_cents_to_x12(cents: int, text: str) -> None:
    assert cents_to_x12(cents) == text
    assert x12_to_cents(text) == cents


@pytest.mark.parametrize("text", [".5", "0.50", "000125", "-0"])
def test_x12_to_cents_accepts_other_spellings(text: str) -> None:
    assert x12_to_cents(text) == int(Decimal(text) * 100)


@pytest.mark.parametrize(
    "text", ["1.234", "1.230", "1e3", "", ".", "5.", "+5", "1,00", " 5", "--1"]
)
def test_x12_to_cents_refuses_malformed_amounts(text: str) -> None:
    with pytest.raises(X12ValueError):
        x12_to_cents(text)


@given(st.integers(-(10**17), 10**17))
def test_money_round_trip_is_exact(cents: int) -> None:
    assert x12_to_cents(cents_to_x12(cents)) == cents


def test_more_than_18_digits_is_refused_both_ways() -> None:
    with pytest.raises(X12BuildError):
        cents_to_x12(10**18)
    with pytest.raises(X12ValueError):
        x12_to_cents("1234567890123456789")


@pytest.mark.parametrize(
    "fields",
    [
        {"element": "A"},
        {"component": "*"},
        {"segment": " "},
        {"repetition": "~"},
        {"element": "**"},
    ],
)
def test_delimiters_must_be_distinct_punctuation(fields: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        Delimiters(**fields)


def test_envelope_drops_seconds_and_refuses_zones() -> None:
    assert ENVELOPE.created == datetime(2026, 3, 4, 5, 6)  # noqa: DTZ001
    assert ENVELOPE.application_sender_code == "PAYER01"
    with pytest.raises(ValidationError):
        ENVELOPE.model_copy(update={}).model_validate(
            {**ENVELOPE.model_dump(), "created": datetime(2026, 1, 1, tzinfo=UTC)}
        )


def test_writer_computes_counts_and_fixed_width_isa() -> None:
    body = [seg("AK1", "HC", "1", "005010X222A1"), seg("AK9", "A", "0", "0", "0")]
    transactions = [OutTransaction("999", f"000{n}", "005010X231A1", body) for n in (1, 2)]
    group = OutGroup("FA", "005010X231A1", transactions)
    text = write_interchange(ENVELOPE, [group, group], newline=False)
    isa = text.split("~")[0] + "~"
    assert len(isa) == 106
    assert "SE*4*0001~" in text
    assert "GE*2*7~" in text
    assert "GE*2*8~" in text
    assert text.endswith("IEA*2*000000042~")


def test_writer_refuses_empty_envelopes() -> None:
    with pytest.raises(X12BuildError, match="group"):
        write_interchange(ENVELOPE, [])
    with pytest.raises(X12BuildError, match="transaction"):
        write_interchange(ENVELOPE, [OutGroup("FA", "005010X231A1", [])])


def test_generic_parse_reads_groups_and_transactions() -> None:
    body = [seg("AK1", "HC", "1", "005010X222A1"), seg("AK9", "A", "0", "0", "0")]
    groups = [
        OutGroup("FA", "005010X231A1", [OutTransaction("999", "0001", None, body)]),
        OutGroup(
            "FA",
            "005010X231A1",
            [OutTransaction("999", "0001", None, body), OutTransaction("999", "0002", None, body)],
        ),
    ]
    interchange = parse_interchange(write_interchange(ENVELOPE, groups).encode())
    assert interchange.header.sender_id == "PAYER01"
    assert interchange.header.date == date(2026, 3, 4)
    assert [g.control_number for g in interchange.groups] == [7, 8]
    assert [t.control_number for t in interchange.groups[1].transactions] == ["0001", "0002"]
    ak9 = interchange.groups[1].transactions[1].body[1]
    assert (ak9.id, ak9.get(1), ak9.position) == ("AK9", "A", 15)


def test_writer_refuses_a_value_containing_a_delimiter() -> None:
    body = [seg("AK1", "HC", "1*2", "005010X222A1")]
    with pytest.raises(X12BuildError, match="AK102"):
        write_interchange(
            ENVELOPE, [OutGroup("FA", "V", [OutTransaction("999", "0001", None, body)])]
        )


def _remittance(paid_cents: int) -> RemittanceDocument:
    line = RemittanceLine(
        procedure=Procedure(code="99213"),
        charge_cents=100_00,
        paid_cents=paid_cents,
        adjustments=[Adjustment(group="CO", reason="45", amount_cents=20_00)],
    )
    claim = RemittanceClaim(
        patient_control_number="PCN1",
        status="1",
        charge_cents=100_00,
        paid_cents=80_00,
        filing_indicator="12",
        payer_claim_control_number="P1",
        patient=RemittanceParty(last_name="DOE", id_qualifier="MI", identifier="M1"),
        lines=[line],
    )
    remittance = Remittance(
        control_number="0001",
        payment_cents=80_00,
        payment_method="CHK",
        payment_date=date(2026, 1, 1),
        trace_number="T1",
        payer_trace_id="1512345678",
        payer=RemittancePayer(
            name="ACME",
            address=Address(line1="1 A ST", city="BOSTON", state="MA", postal_code="02110"),
            technical_contact=Contact(phone="8005550199"),
        ),
        payee=RemittancePayee(name="CLINIC", npi="1234567893"),
        claims=[claim],
    )
    return RemittanceDocument(envelope=ENVELOPE, transactions=[remittance])


def test_check_835_balance_lists_imbalances_without_raising() -> None:
    assert check_835_balance(_remittance(80_00)) == []
    (imbalance,) = check_835_balance(_remittance(70_00))
    assert (imbalance.rule, imbalance.line_number, imbalance.expected_cents) == ("line", 1, 80_00)


def test_build_835_refuses_an_unbalanced_remittance_unless_told() -> None:
    document = _remittance(70_00)
    with pytest.raises(X12BalanceError):
        build_835(document)
    text = build_835(document, check_balance=False)
    with pytest.raises(X12BalanceError):
        parse_835(text)


def test_models_refuse_bad_npi() -> None:
    with pytest.raises(ValidationError, match="NPI"):
        RemittancePayee(name="CLINIC", npi="1234567890")


def _claim(**changes: object) -> ProfessionalClaim:
    line = ServiceLine(
        procedure=Procedure(code="99213"),
        charge_cents=100_00,
        units=Decimal(1),
        diagnosis_pointers=[1],
        service_date=date(2026, 1, 1),
    )
    fields: dict[str, object] = {
        "billing_provider": BILLING_PROVIDERS[0],
        "subscriber": Subscriber(
            member_id="M1", last_name="DOE", birth_date=date(1980, 1, 1), gender="F"
        ),
        "payer": Payer(name="ACME", payer_id="ACME01"),
        "patient_control_number": "PCN1",
        "total_charge_cents": 100_00,
        "place_of_service": "11",
        "diagnoses": ["J069"],
        "lines": [line],
    }
    return ProfessionalClaim(**{**fields, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"total_charge_cents": 100_01}, "CLM02"),
        ({"frequency_code": "7"}, "REF*F8"),
        ({"payer_claim_control_number": "X1"}, "REF*F8"),
        ({"diagnoses": ["7242"]}, "pattern"),
        ({"diagnoses": ["J06.9"]}, "pattern"),
    ],
)
def test_claim_rules(changes: dict[str, object], why: str) -> None:
    assert _claim().total_charge_cents == 100_00
    with pytest.raises(ValidationError, match=why.replace("*", r"\*")):
        _claim(**changes)


def test_secondary_claim_needs_prior_payer() -> None:
    subscriber = Subscriber(
        member_id="M1",
        last_name="DOE",
        birth_date=date(1980, 1, 1),
        gender="F",
        payer_responsibility="S",
    )
    with pytest.raises(ValidationError, match="2320"):
        _claim(subscriber=subscriber)


def test_located_says_the_kind_and_place_of_a_problem_without_its_values() -> None:
    text = (CORPUS / "835_zero_pay_deductible.x12").read_text()
    with pytest.raises(X12ValueError) as raised:
        parse_835(text.replace("DTM*472*20260120", "DTM*472*20261320"))
    error = raised.value
    assert "20261320" in str(error)  # for whoever holds the document
    assert error.located() == f"X12ValueError in DTM at segment {error.position}"
    assert "20261320" not in error.located()
    assert X12BuildError("a bare problem").located() == "X12BuildError"

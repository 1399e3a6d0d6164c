"""Pricing: list price x units, in integer cents; the total is the sum of the lines."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st
from rcm_coding import codesets
from rcm_coding.codesets import ChargeItem, Chargemaster
from rcm_coding.domain import Coding, LineInput, price, total_cents
from rcm_contracts.coding import ProcedureCodeSet

SHIPPED = codesets.load_chargemaster()

cpt_codes = st.from_regex(r"[0-9]{5}", fullmatch=True)
hcpcs_codes = st.from_regex(r"[A-V][0-9]{4}", fullmatch=True)


@st.composite
def chargemasters(draw: st.DrawFn) -> Chargemaster:
    codes = draw(st.sets(cpt_codes | hcpcs_codes, min_size=1, max_size=20))
    return Chargemaster(
        {
            code: ChargeItem(
                code,
                ProcedureCodeSet.HCPCS if code[0].isalpha() else ProcedureCodeSet.CPT,
                f"item {code}",
                draw(st.integers(1, codesets.MAX_UNIT_PRICE_CENTS)),
            )
            for code in codes
        }
    )


@st.composite
def priced(
    draw: st.DrawFn, chargemaster: st.SearchStrategy[Chargemaster]
) -> tuple[Chargemaster, Coding]:
    master = draw(chargemaster)
    lines = draw(
        st.lists(
            st.builds(
                LineInput,
                procedure_code=st.sampled_from(sorted(master)),
                units=st.integers(1, 99),
                diagnosis_pointers=st.just((1,)),
            ),
            min_size=1,
            max_size=50,
        )
    )
    return master, Coding(("I10",), tuple(lines))


@given(priced(chargemasters() | st.just(SHIPPED)), st.dates())
def test_each_line_is_unit_price_times_units_and_total_is_their_sum(
    case: tuple[Chargemaster, Coding], service_date: date
) -> None:
    chargemaster, coding = case
    lines = price(coding, chargemaster, "E0123456789ab", service_date)
    assert len(lines) == len(coding.lines)
    for number, (charged, submitted) in enumerate(zip(lines, coding.lines, strict=True), 1):
        item = chargemaster[submitted.procedure_code]
        assert type(charged.charge_cents) is int
        assert charged.charge_cents == item.unit_price_cents * submitted.units
        assert charged.code_set is item.code_set
        assert charged.line_number == number
        assert charged.line_id == f"E0123456789ab-L{number}"
        assert charged.service_date == service_date
        assert charged.units == submitted.units
    assert total_cents(lines) == sum(line.charge_cents for line in lines)
    assert total_cents(lines) == sum(
        chargemaster[line.procedure_code].unit_price_cents * line.units for line in coding.lines
    )


def test_a_known_claim_is_priced_from_the_shipped_chargemaster() -> None:
    coding = Coding(
        ("S93401A",),
        (
            LineInput("99214", ("25",), 1, (1,)),
            LineInput("73610", ("RT",), 1, (1,)),
            LineInput("J1100", (), 4, (1,)),
        ),
    )
    lines = price(coding, SHIPPED, "E000000000001", date(2025, 3, 4))
    assert [line.charge_cents for line in lines] == [22000, 14000, 3200]
    assert total_cents(lines) == 39200
    assert [line.modifiers for line in lines] == [["25"], ["RT"], []]
    assert [line.line_id for line in lines] == [
        "E000000000001-L1",
        "E000000000001-L2",
        "E000000000001-L3",
    ]

"""CMS's practitioner PTP and MUE layouts: title lines, delimiters, quoting, dates, and
bad lines named by their numbers."""

from __future__ import annotations

from datetime import date

import pytest
from rcm_edits.cms import parse_mue, parse_ptp
from rcm_edits.packs import ModifierIndicator, MueIndicator, PackError

PTP_HEADER = (
    "Column 1\tColumn 2\t* = In existence prior to 1996\tEffective Date\t"
    "Deletion Date *=no data\tModifier 0=not allowed 1=allowed 9=not applicable\t"
    "PTP Edit Rationale\n"
)
TITLE = "CPT codes and descriptions only are copyright 2025 American Medical Association.\n"


def test_a_tab_delimited_ptp_file_after_its_title_lines() -> None:
    text = (
        TITLE
        + "\n"
        + PTP_HEADER
        + "10000\t20000\t*\t19960101\t*\t0\tMutually exclusive procedures\n"
        + "10000\t30000\t\t20210101\t20231231\t1\tStandards of medical / surgical practice\n"
        + "A1000\t30000\t\t20240401\t*\t9\tMisuse of column two code with column one code\n"
    )
    edits = parse_ptp(text)
    assert [(e.column1, e.column2) for e in edits] == [
        ("10000", "20000"),
        ("10000", "30000"),
        ("A1000", "30000"),
    ]
    first, second, third = edits
    assert (first.effective, first.deletion) == (date(1996, 1, 1), None)
    assert first.modifier_indicator is ModifierIndicator.NOT_ALLOWED
    assert second.deletion == date(2023, 12, 31)
    assert second.modifier_indicator is ModifierIndicator.ALLOWED
    assert third.modifier_indicator is ModifierIndicator.NOT_APPLICABLE
    assert third.rationale.startswith("Misuse")


def test_a_comma_delimited_ptp_file_with_quotes_and_a_second_title_line() -> None:
    text = (
        TITLE
        + '"Column 1","Column 2","* = In existence prior to 1996","Effective Date",'
        + '"Deletion Date *=no data","Modifier","PTP Edit Rationale"\n'
        + '"(continued)",,,,,,\n'  # a second title row before the first code
        + '"10000","20000","*","01/01/1996","*","1","Standards, of practice"\n'
        + "10000,20001,,2021-04-01,2022-06-30,0,\n"
    )
    edits = parse_ptp(text)
    assert edits[0].rationale == "Standards, of practice"
    assert edits[0].effective == date(1996, 1, 1)
    assert (edits[1].effective, edits[1].deletion) == (date(2021, 4, 1), date(2022, 6, 30))


def test_every_bad_ptp_line_is_named_and_nothing_is_read() -> None:
    text = (
        TITLE
        + PTP_HEADER
        + "10000\t20000\t\t20210101\t*\t1\tok\n"
        + "1000\t20000\t\t20210101\t*\t1\tshort code\n"
        + "10000\t20002\t\t2021-13-45\t*\t1\tbad date\n"
        + "10000\t20003\t\t20210101\t*\t2\tbad indicator\n"
        + "10000\t20004\t\t20210101\t20201231\t1\tdeleted before effective\n"
        + "10000\t20005\t\t20210101\n"
        + "10000\t20000\t\t20210101\t*\t1\tsame as line 3\n"
    )
    with pytest.raises(PackError) as refused:
        parse_ptp(text)
    problems = refused.value.problems
    assert [p.split(":")[0] for p in problems] == [
        "line 4",
        "line 5",
        "line 6",
        "line 7",
        "line 8",
        "line 9",
    ]
    assert "Column 1 '1000'" in problems[0]
    assert "modifier indicator" in problems[2]
    assert "deletion date is before" in problems[3]
    assert "same edit as line 3" in problems[5]


def test_a_file_without_the_column_header_or_without_edits_is_refused() -> None:
    with pytest.raises(PackError, match="no header line"):
        parse_ptp("10000\t20000\t\t20210101\t*\t1\n")
    with pytest.raises(PackError, match="no edits"):
        parse_ptp(TITLE + PTP_HEADER + "\n\n")


MUE_HEADER = (
    '"HCPCS/CPT Code","Practitioner Services MUE Values","MUE Adjudication Indicator",'
    '"MUE Rationale"\n'
)


def test_an_mue_file_with_indicators_as_cms_writes_them() -> None:
    text = (
        TITLE
        + MUE_HEADER
        + '10000,1,"2 Date of Service Edit: Policy","Nature of Service/Procedure"\n'
        + '20000,4,"1 Line Edit","Anatomic Consideration"\n'
        + 'J9999,0,"3 Date of Service Edit: Clinical",""\n'
    )
    edits = parse_mue(text)
    assert [(e.code, e.units, e.adjudication_indicator) for e in edits] == [
        ("10000", 1, MueIndicator.DAY_POLICY),
        ("20000", 4, MueIndicator.LINE),
        ("J9999", 0, MueIndicator.DAY_CLINICAL),
    ]


def test_every_bad_mue_line_is_named() -> None:
    text = (
        MUE_HEADER
        + '10000,1,"2 Date of Service Edit: Policy",x\n'
        + "10001,one,2,x\n"
        + "10002,1,5 Something,x\n"
        + "10003\n"
        + "10000,2,1,x\n"
    )
    with pytest.raises(PackError) as refused:
        parse_mue(text)
    assert [p.split(":")[0] for p in refused.value.problems] == [
        "line 3",
        "line 4",
        "line 5",
        "line 6",
    ]

"""The shipped CARC and RARC lists and the loader of X12's published files."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import rcm_codes
from rcm_codes import Category, CodeListError, read_published, shipped
from rcm_contracts.claims import ReasonCategory


def test_the_shipped_lists_say_their_version_and_date() -> None:
    carc, rarc = shipped("CARC"), shipped("RARC")
    assert (carc.kind, rarc.kind) == ("CARC", "RARC")
    assert carc.version.endswith("partial")
    assert carc.published == date(2026, 12, 1)
    assert len(carc) > 200
    assert len(rarc) > 40


@pytest.mark.parametrize(
    ("code", "category"),
    [
        ("1", Category.PATIENT_RESPONSIBILITY),
        ("16", Category.DOCUMENTATION),
        ("18", Category.DUPLICATE),
        ("27", Category.ELIGIBILITY),
        ("29", Category.TIMELY_FILING),
        ("45", Category.CONTRACTUAL),
        ("97", Category.CODING),
        ("197", Category.AUTHORIZATION),
        ("22", Category.COORDINATION_OF_BENEFITS),
        ("b13", Category.DUPLICATE),
        ("999", Category.OTHER),  # not a code: other
    ],
)
def test_carc_categories(code: str, category: Category) -> None:
    assert shipped("CARC").category(code) is category


def test_rarc_descriptions() -> None:
    rarc = shipped("RARC")
    assert rarc.describe("MA130") is not None
    assert "unprocessable" in str(rarc.describe("MA130"))
    assert rarc.describe("ZZ999") is None


def test_the_categories_are_the_contracts() -> None:
    assert {c.value for c in Category} == {c.value for c in ReasonCategory}


PUBLISHED = (
    "Code,Description,Start Date,Last Modified,Stop Date\n"
    '16,"Claim/service lacks information\n or has submission/billing error(s).",01/01/1995,,\n'
    "30,Payment adjusted because the patient has not met the required eligibility.,"
    "01/01/1995,,10/16/2003\n"
    "301,A code the shipped list does not know,2026-07-01,,\n"
)


def test_a_published_csv_keeps_the_shipped_categories_and_reads_dates() -> None:
    listed = read_published(PUBLISHED, "CARC", "x12-2026-07", shipped("CARC"))
    assert listed.version == "x12-2026-07"
    assert len(listed) == 3
    documentation = listed.get("16")
    assert documentation is not None
    assert documentation.category is Category.DOCUMENTATION
    assert documentation.description.endswith("or has submission/billing error(s).")
    stopped = listed.get("30")
    assert stopped is not None
    assert stopped.stop == date(2003, 10, 16)
    assert stopped.active_on(date(2003, 1, 1))
    assert not stopped.active_on(date(2026, 1, 1))
    assert listed.category("301") is Category.OTHER


def test_a_published_tsv_may_bring_its_own_categories() -> None:
    text = "code\tdescription\tcategory\nN999\tSomething\tdocumentation\n"
    assert read_published(text, "RARC", "v").category("N999") is Category.DOCUMENTATION


@pytest.mark.parametrize(
    "text",
    ["", "name,text\n1,x\n", "code,description,stop\n1,x,not a date\n", "code,description\n"],
)
def test_a_broken_published_file_is_refused(text: str) -> None:
    with pytest.raises(CodeListError):
        read_published(text, "CARC", "v")


def test_a_file_in_the_codes_folder_replaces_the_shipped_list(tmp_path: Path) -> None:
    (tmp_path / "carc.csv").write_text(PUBLISHED)
    listed = rcm_codes.load("CARC", tmp_path)
    assert listed.version.startswith("carc.csv@")
    assert len(listed) == 3
    assert rcm_codes.load("RARC", tmp_path) is shipped("RARC")

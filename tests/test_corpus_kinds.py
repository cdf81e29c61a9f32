"""Document kinds, real titles, reporting periods and contents pages on realistic input.

The fixtures are the fictional documents in corpus/demo/realistic/, written in the shape of PDF
extractions of real partnership output (running headers, page numbers, a contents page, case
summaries without headings, a newsletter opening with a training advert, a scrutiny report).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from corpus.cases import find_case_summaries
from corpus.demo import REALISTIC_DIR
from corpus.kinds import Period, infer_kind, infer_period, infer_title
from corpus.layout import contents_lines
from corpus.metadata import ReviewType, infer_metadata
from corpus.readers import read_document
from corpus.segment import segment

ANNUAL = REALISTIC_DIR / "ashcombe_annual_report_2022_23.txt"
NEWSLETTER = REALISTIC_DIR / "ashcombe_newsletter_spring_2016.txt"
SCRUTINY = REALISTIC_DIR / "ashcombe_scrutiny_report_2024.txt"


def _meta(path: Path):  # type: ignore[no-untyped-def]
    return infer_metadata(path.read_text(encoding="utf-8"), path.name)


def test_annual_report_kind_title_and_period() -> None:
    meta = _meta(ANNUAL)
    assert meta.review_type is ReviewType.ANNUAL_REPORT
    assert meta.title == "ASCP Annual Report 2022 - 2023"
    assert meta.period == "2022-23"
    assert meta.incident_date is None and meta.warnings == ()


def test_newsletter_is_a_newsletter_not_the_review_it_mentions() -> None:
    meta = _meta(NEWSLETTER)
    assert meta.review_type is ReviewType.NEWSLETTER
    # Its first line is a training advert; the title names whose newsletter it is.
    assert meta.title == "Ashcombe Safeguarding Children Board newsletter"


def test_scrutiny_report_kind_and_subject_as_title() -> None:
    meta = _meta(SCRUTINY)
    assert meta.review_type is ReviewType.SCRUTINY_REPORT
    assert meta.title.startswith("How well the Ashcombe Safeguarding Children Partnership learns")


@pytest.mark.parametrize(
    ("first_lines", "kind"),
    [
        ("Local Child Safeguarding Practice Review\nChild M\n", ReviewType.LCSPR),
        ("Serious Case Review: Baby T\n", ReviewType.SCR),
        ("Seven Minute Briefing: Child G\n", ReviewType.BRIEFING),
        ("Thematic Review of Sudden Infant Deaths\n", ReviewType.THEMATIC_REVIEW),
        ("Kingsbridge Partnership\nYearly Report 2019/20\n", ReviewType.ANNUAL_REPORT),
    ],
)
def test_title_zone_decides_the_kind(first_lines: str, kind: ReviewType) -> None:
    body = "The partnership met often. " * 20
    assert infer_kind(first_lines + "\n" + body, "upload.txt").kind is kind


def test_a_document_nothing_identifies_is_other_with_a_warning_naming_it() -> None:
    guess = infer_kind("Minutes of a meeting held on Tuesday.\n\nPresent: six people.", "x17.txt")
    assert guess.kind is ReviewType.OTHER
    assert guess.warning and "x17" in guess.warning and "manifest" in guess.warning


def test_file_name_beats_text() -> None:
    assert (
        infer_kind("Annual Report 2020-21\n", "ashcombe_lcspr_child_k.md").kind is ReviewType.LCSPR
    )


def test_periods() -> None:
    assert infer_period("Annual Report 2019 – 2020\n") == Period(2019, 2020)
    assert infer_period("x", "Report covering April 2021 – March 2022") == Period(2021, 2022)
    assert infer_period("Strategy 2020-2025\n") is None  # not a one-year period
    assert Period.parse("2020-21") == Period(2020, 2021) and Period.parse("2020-23") is None
    assert Period(2020, 2021).label == "2020-21" and Period(2020, 2021).case_year == 2020


def test_annual_title_gets_its_partnership_when_it_names_none() -> None:
    text = "Oakvale Safeguarding Children Board\n\nAnnual Report 2019 - 2020\n\nBody text here.\n"
    assert infer_title(text, ReviewType.ANNUAL_REPORT, "x") == (
        "Oakvale Safeguarding Children Board Annual Report 2019 - 2020"
    )


def test_contents_page_and_running_headers_are_not_passages() -> None:
    doc = read_document(ANNUAL)
    passages = [p.text for s in segment(doc) for p in s.passages]
    assert not any(
        text.startswith(("Contents", "Foreword\t", "Training and development\t"))
        for text in passages
    )
    assert not any("| Annual Report 2022-23" in text for text in passages)
    assert not any(text.strip().isdigit() for text in passages)  # page numbers


def test_contents_block_with_wrapped_entries_and_rules() -> None:
    lines = ["Title", "", "<u>Contents</u>", "Foreword\tPage 3", "-----\t---",
             "1.\tIntroduction\tPage\t6", "Appendices:", "1.\tBudget\tPage 40", "",
             "Foreword", "It is a pleasure to write this foreword for the year."]  # fmt: skip
    assert contents_lines(lines) == {2, 3, 4, 5, 6, 7}


def test_case_summaries_without_headings_in_a_realistic_report() -> None:
    doc = read_document(ANNUAL)
    cases = find_case_summaries(doc, segment(doc))
    assert [c.review_type for c in cases] == [ReviewType.RAPID_REVIEW] * 5

"""Layouts that only PDF text layers produce: numbered headings beside numbered lists, finding
paragraphs that wrap, running footers with page numbers, case lists that wrap across lines."""

from __future__ import annotations

from pathlib import Path

from corpus.cases import find_case_summaries
from corpus.document import ExtractedDocument
from corpus.metadata import ReviewType, infer_metadata
from corpus.segment import segment


def pdf_text(text: str, pages: int = 3) -> ExtractedDocument:
    return ExtractedDocument(
        path=Path("review.pdf"), format="pdf", text=text, sha256="0" * 64, pages=pages
    )


REVIEW = """Local Child Safeguarding Practice Review: Child A
Westbrook Safeguarding Children Partnership
1. Introduction
This review was commissioned after Child A, aged 9 weeks, was admitted to hospital.
2. Findings
2.1 Finding 1: Nobody asked who else lived in the home. Professionals spoke only to
the mother, and the new partner was never seen or named in any record.
2.2 Finding 2: Bruising was explained away. The GP accepted the explanation given.
Westbrook Safeguarding Children Partnership: Child A  |  Page 2 of 3
5. Good practice
The emergency department made a prompt referral.
6. Recommendations
1. The Partnership should ensure that every adult in the household is identified.
2. Health visitors should see both parents at the new birth visit.
"""


def test_numbered_heading_right_before_a_numbered_list_is_a_heading() -> None:
    sections = segment(pdf_text(REVIEW))
    recs = [s for s in sections if s.kind == "recommendations"]
    assert [s.title for s in recs] == ["6. Recommendations"]
    assert [p.text[:2] for p in recs[0].passages] == ["1.", "2."]


def test_wrapped_numbered_finding_is_a_paragraph_not_a_heading() -> None:
    sections = segment(pdf_text(REVIEW))
    findings = next(s for s in sections if s.title == "2. Findings")
    assert findings.kind == "findings"
    assert [p.text.split(":")[0] for p in findings.passages] == [
        "2.1 Finding 1",
        "2.2 Finding 2",
    ]
    assert findings.passages[0].text.endswith("in any record.")


def test_running_footer_with_page_number_is_dropped() -> None:
    texts = [p.text for s in segment(pdf_text(REVIEW)) for p in s.passages]
    assert not any("Page 2 of 3" in t for t in texts)


def test_sentence_case_numbered_titles_nest_under_their_section() -> None:
    text = (
        "Findings\n"
        "1. Risk was not assessed against what she had said\n"
        "She told the school nurse that she was hurting herself. The referral was routine.\n"
        "2. Online contact was never asked about\n"
        "Nobody asked about her phone or who she talked to online.\n"
        "Recommendations\n"
        "1. CAMHS should review its triage criteria for young people who self-harm.\n"
    )
    sections = segment(pdf_text(text, pages=1))
    kinds = {s.title: s.kind for s in sections}
    assert kinds["2. Online contact was never asked about"] == "findings"
    assert kinds["Recommendations"] == "recommendations"


ANNUAL = """Westbrook Safeguarding Children Partnership
Annual Report 2022-23
2. Rapid reviews
The panel considered 3 referrals between April 2022 and March 2023, as follows:
1. Child B, a 6-week-old baby, was admitted with a fractured femur. The mother's new
partner was not known to any agency.
2. A 14-year-old girl was found with older men in another town after going missing
from school.
3. A baby aged 3 months died after sleeping on a sofa with a parent.
Two serious case reviews from earlier years had made the same point about fathers.
3. Local child safeguarding practice reviews
2 LCSPRs were published this year.
Child C
Child C was a boy aged 4 who was neglected over many years.
Child D and E
Child D and E were siblings whose mother had severe depression.
"""


def test_wrapped_numbered_case_list_and_nearest_review_type() -> None:
    doc = pdf_text(ANNUAL)
    cases = find_case_summaries(doc, segment(doc))
    assert [(c.pseudonym, c.review_type) for c in cases] == [
        ("Child B", ReviewType.RAPID_REVIEW),
        ("Rapid review 2 (2022-23)", ReviewType.RAPID_REVIEW),
        ("Rapid review 3 (2022-23)", ReviewType.RAPID_REVIEW),
        ("Child C", ReviewType.LCSPR),
        ("Child D and E", ReviewType.LCSPR),
    ]
    assert "not known to any agency" in doc.text[cases[0].start : cases[0].end]


def test_annual_report_is_named_after_its_year_not_the_first_child() -> None:
    meta = infer_metadata(ANNUAL, "westbrook_annual_report.pdf")
    assert meta.review_type is ReviewType.ANNUAL_REPORT
    assert meta.pseudonym == "Annual report 2022-23"


def test_thematic_review_takes_no_pseudonym_from_its_body() -> None:
    text = (
        "Thematic Learning Review: Injuries to Babies\n"
        "Westbrook Safeguarding Children Partnership\n"
        "Published: May 2024\n"
        "\n"
        "This review looked at six babies. Baby K was 7 weeks old when she was injured.\n"
    )
    meta = infer_metadata(text, "westbrook_learning_review_injuries.pdf")
    assert meta.pseudonym is None


def test_case_summary_incident_date_from_the_event_and_none_for_the_report() -> None:
    summary = (
        "Child F, a 7-week-old baby boy, was admitted in June 2021 with a skull fracture. "
        "The panel met in July 2021."
    )
    meta = infer_metadata(summary, "")
    assert meta.incident_date is not None and meta.incident_date.isoformat() == "2021-06-01"
    report = infer_metadata(ANNUAL + "\n" + summary, "westbrook_annual_report.pdf")
    assert report.incident_date is None  # a report's first case is not its incident

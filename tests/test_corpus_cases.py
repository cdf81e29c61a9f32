"""Case summaries inside annual reports, on fictional partnership reports."""

from __future__ import annotations

from pathlib import Path

from corpus.cases import CaseSummary, find_case_summaries
from corpus.document import ExtractedDocument
from corpus.metadata import ReviewType
from corpus.readers import read_document
from corpus.segment import segment


def text_doc(text: str, title: str | None = None) -> ExtractedDocument:
    return ExtractedDocument(
        path=Path("report.txt"), format="text", text=text, sha256="0" * 64, title=title
    )


def summaries(doc: ExtractedDocument) -> list[CaseSummary]:
    found = find_case_summaries(doc, segment(doc))
    for case in found:
        assert 0 <= case.start < case.end <= len(doc.text)
    return found


RAPID = """Northmoor Safeguarding Children Partnership Annual Report 2022-23

Serious Incidents

The partnership notified the National Panel of each incident promptly.

The Rapid Review Panel considered six referrals between April 2022 and March 2023, and \
all six rapid reviews were completed on time, as follows:

- 1. A 4-month-old baby was admitted with a fractured arm. Learning about bruising protocols.
- Teenager harmed in a park; the panel found no learning for agencies.
- 3. Child K, aged 2, was found alone at home while mother was at

work. The panel recommended a local review.
- 4. A 15-year-old was exploited by adults. Threshold met for a review.

- 5. An unborn baby was subject to a pre-birth assessment that was late.
- 6. A 9-year-old disclosed abuse at school. Good practice by the school.

In total three of these cases will proceed to a local review.

Training

We trained many staff.
"""


def test_announced_rapid_reviews_are_split() -> None:
    doc = text_doc(RAPID, title="Northmoor Safeguarding Children Partnership Annual Report 2022-23")
    found = summaries(doc)
    assert [c.pseudonym for c in found] == [
        "Rapid review 1 (2022-23)",
        "Rapid review 2 (2022-23)",
        "Child K",
        "Rapid review 4 (2022-23)",
        "Rapid review 5 (2022-23)",
        "Rapid review 6 (2022-23)",
    ]
    assert {c.review_type for c in found} == {ReviewType.RAPID_REVIEW}
    third = doc.text[found[2].start : found[2].end]
    assert third.startswith("- 3. Child K") and third.endswith("recommended a local review.")
    assert found[0].title == "A 4-month-old baby was admitted with a fractured arm."
    assert "In total" not in doc.text[found[-1].start : found[-1].end]


def test_count_mismatch_or_topic_list_gives_nothing() -> None:
    mismatch = RAPID.replace("considered six referrals", "considered nine referrals").replace(
        "all six rapid reviews", "all rapid reviews"
    )
    assert summaries(text_doc(mismatch)) == []
    topics = (
        "Five serious incident notifications were made. The themes included are:\n\n"
        "- Neglect\n- Exploitation\n- Domestic abuse\n- Missing education\n- Injuries\n"
    )
    assert summaries(text_doc(topics)) == []


PUBLISHED = """Learning from Reviews

Two LCSPRs were published during the year and are summarised below.

Child A

Child A was a baby who was injured by an adult in the household. Agencies did not know the man.

The review findings included:

- Think about every adult in the household
- Share information about new partners

Child B and C

Two siblings who were neglected over many years.

- Neglect was not recognised early

Copies of both reviews are available on the partnership website.

Training Offer

We ran many courses.
"""


def test_published_reviews_under_child_headings() -> None:
    doc = text_doc(PUBLISHED)
    found = summaries(doc)
    assert [(c.pseudonym, c.review_type) for c in found] == [
        ("Child A", ReviewType.LCSPR),
        ("Child B and C", ReviewType.LCSPR),
    ]
    first = doc.text[found[0].start : found[0].end]
    assert first.startswith("Child A\n") and first.endswith("Share information about new partners")
    second = doc.text[found[1].start : found[1].end]
    assert second.endswith("Neglect was not recognised early")
    assert "Copies" not in second and "Training" not in second


def test_single_child_or_no_review_context_gives_nothing() -> None:
    one = PUBLISHED.split("Child B and C")[0]
    assert summaries(text_doc(one)) == []
    no_context = PUBLISHED.replace("Two LCSPRs were published", "Two stories were told")
    no_context = no_context.replace("Learning from Reviews", "Stories")
    assert summaries(text_doc(no_context)) == []


def test_markdown_child_headings_with_subheadings(tmp_path: Path) -> None:
    path = tmp_path / "report.md"
    path.write_text(
        "# Annual report\n\n## Published reviews\n\n"
        "The partnership published two serious case reviews this year.\n\n"
        "### Child D\n\nA toddler with burns.\n\n#### Learning\n\n- Home conditions matter\n\n"
        "### Family E\n\nA family known to many services.\n\n"
        "## Training\n\nCourses ran all year.\n",
        encoding="utf-8",
    )
    doc = read_document(path)
    found = summaries(doc)
    assert [(c.pseudonym, c.review_type) for c in found] == [
        ("Child D", ReviewType.SCR),
        ("Family E", ReviewType.SCR),
    ]
    assert doc.text[found[0].start : found[0].end].endswith("Home conditions matter")
    assert doc.text[found[1].start : found[1].end].endswith("known to many services.")


def test_ordinary_review_has_no_case_summaries() -> None:
    text = "Child A\n\nBackground\n\nChild A was two.\n\nFindings\n\n- Share information\n"
    assert summaries(text_doc(text)) == []

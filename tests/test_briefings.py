"""7-minute briefings: content, citations, diversity, recurrence, confidentiality.

The corpus and its helpers are in tests/briefing_corpus.py.
"""

from __future__ import annotations

import json

import pytest
from pypdf import PdfReader
from sqlmodel import Session, select

from kb.models import (
    AuditEvent,
    Passage,
    Review,
    ReviewStatus,
)
from kb.services.briefing_export import RESTRICTED_MARKING
from kb.services.briefings import (
    DEFAULT_HEADINGS,
    GENERIC_QUESTIONS,
    InvalidBriefing,
    NotFound,
    UnknownTheme,
)
from tests.briefing_corpus import (
    ADMIN,
    SECRET_WORDS,
    VIEWER,
    build,
    cited,
    exported_texts,
    panel,
    section,
)

pytest_plugins = ["tests.briefing_corpus"]  # the corpus and taxonomy fixtures


def test_theme_briefing_has_seven_numbered_sections(engine, corpus, taxonomy) -> None:
    draft = build(engine, taxonomy, VIEWER, theme_id="hidden-men")
    assert draft.title == "7-minute briefing: Hidden men"
    assert [s.number for s in draft.sections] == [1, 2, 3, 4, 5, 6, 7]
    assert tuple(s.heading for s in draft.sections) == DEFAULT_HEADINGS
    assert all(s.items for s in draft.sections)
    for s in draft.sections:
        for item in s.items:
            assert set(item) == {"text", "review_id", "passage_id", "role"} and item["text"].strip()


def test_citations_point_at_real_passages_of_visible_reviews(engine, corpus, taxonomy) -> None:
    draft = build(engine, taxonomy, VIEWER, theme_id="hidden-men")
    quoted = 0
    with Session(engine) as session:
        for s in draft.sections:
            for item in s.items:
                if item["passage_id"] is None:
                    continue
                passage = session.get(Passage, item["passage_id"])
                review = session.get(Review, item["review_id"])
                assert passage is not None and passage.review_id == item["review_id"]
                assert review.status == ReviewStatus.PUBLISHED
                quote = item["text"].split(": ", 1)[1] if s.number == 1 else item["text"]
                assert quote in passage.text  # extractive: the words as written
                quoted += 1
    assert quoted >= 6
    background = section(draft, 1)
    assert background[0]["text"].startswith("Child C (LCSPR, 2021): Child C was seven years old")
    assert [i["review_id"] for i in background] == [corpus.reviews[k] for k in "CBA"]


def test_findings_are_central_and_diverse(engine, corpus, taxonomy) -> None:
    draft = build(engine, taxonomy, VIEWER, theme_id="hidden-men")
    found = cited(draft, 3)
    near_twins = {corpus.passages["A-f1"], corpus.passages["B-f1"]}
    assert len(found & near_twins) == 1  # the same point in the same words is quoted once
    assert corpus.passages["C-f1"] in found
    # at most one finding per case: each review here is its own case
    reviews = [i["review_id"] for i in section(draft, 3)]
    assert len(reviews) == len(set(reviews)) == len(found)


def test_recommendations_are_first_sentences_deduplicated(engine, corpus, taxonomy) -> None:
    draft = build(engine, taxonomy, VIEWER, theme_id="hidden-men")
    recs = section(draft, 5)
    ids = {i["passage_id"] for i in recs}
    assert len(ids & {corpus.passages["A-r1"], corpus.passages["B-r1"]}) == 1
    assert corpus.passages["C-r1"] in ids
    texts = {i["text"] for i in recs}
    assert "Health services must invite fathers to every antenatal and new birth contact." in texts
    assert not any(t.startswith("1.") or "audited" in t or "Progress" in t for t in texts)


def test_recurrence_figures_and_trend(engine, corpus, taxonomy) -> None:
    draft = build(engine, taxonomy, VIEWER, theme_id="hidden-men")
    lines = [i["text"] for i in section(draft, 2)]
    assert lines[0] == "Hidden men featured in 3 of 4 cases (75%) since 2017."
    assert lines[1] == (
        "Trend: falling, 1 of 2 reviews since 2020 (50%) against 2 of 2 before (100%)."
    )
    assert all(i["review_id"] is None for i in section(draft, 2))
    admin = build(engine, taxonomy, ADMIN, theme_id="hidden-men", include_restricted=True)
    assert section(admin, 2)[0]["text"] == "Hidden men featured in 5 of 6 cases (83%) since 2017."


def test_context_questions_and_training(engine, corpus, taxonomy) -> None:
    theme = taxonomy.themes["hidden-men"]
    draft = build(engine, taxonomy, VIEWER, theme_id="hidden-men", notes="Our  local  audit.")
    assert [i["text"] for i in section(draft, 4)] == [theme.context, "Our local audit."]
    questions = [i["text"] for i in section(draft, 6)]
    assert questions[: len(theme.questions[:4])] == list(theme.questions[:4])
    assert set(GENERIC_QUESTIONS) <= set(questions)
    assert [i["text"] for i in section(draft, 7)] == [
        "Hidden Men: Finding Ways Forward (Northshire L&D): next session 1 March 2030; "
        "last held 1 June 2024; mean learning gain +1.2 (2 sessions)."
    ]


def test_partnership_template_headings(engine, corpus, taxonomy) -> None:
    headings = ["Case", "Why", "Key information", "Context", "Do", "Remember", "Training"]
    draft = build(engine, taxonomy, VIEWER, theme_id="hidden-men", template=headings)
    assert [s.heading for s in draft.sections] == headings
    with pytest.raises(InvalidBriefing):
        build(engine, taxonomy, VIEWER, theme_id="hidden-men", template=headings[:6])


def test_bad_subjects(engine, corpus, taxonomy) -> None:
    with pytest.raises(UnknownTheme, match="hidden-men"):
        build(engine, taxonomy, VIEWER, theme_id="hidden-man")
    with pytest.raises(InvalidBriefing):
        build(engine, taxonomy, VIEWER, theme_id="hidden-men", review_id=corpus.reviews["A"])
    with pytest.raises(InvalidBriefing):
        build(engine, taxonomy, VIEWER)
    with pytest.raises(NotFound):
        build(engine, taxonomy, VIEWER, review_id=9999)


def test_review_briefing(engine, corpus, taxonomy) -> None:
    draft = build(engine, taxonomy, VIEWER, review_id=corpus.reviews["A"])
    assert draft.title == "7-minute briefing: Child A" and len(draft.sections) == 7
    background = section(draft, 1)
    assert background[0]["text"] == "Child A: LCSPR, 2017."
    assert background[1]["passage_id"] == corpus.passages["A-bg"]
    assert background[1]["text"].startswith("Child A was a nine-week-old baby")
    lines = [i["text"] for i in section(draft, 2)]
    assert lines[0] == "Hidden men featured in 3 of 4 cases (75%) since 2017."
    assert lines[1].endswith("featured in 1 of 4 cases (25%) since 2017.")
    assert cited(draft, 3) == {corpus.passages["A-f1"]}
    assert cited(draft, 5) == {corpus.passages["A-r1"]}
    assert section(draft, 5)[0]["text"] == (
        "The partnership should ensure that agencies record the details of every adult in the "
        "household."
    )


@pytest.mark.parametrize(
    ("principal", "include"), [(VIEWER, False), (VIEWER, True), (ADMIN, False)]
)
def test_unpublished_material_never_leaks(engine, corpus, taxonomy, tmp_path, principal, include):
    draft = build(engine, taxonomy, principal, theme_id="hidden-men", include_restricted=include)
    assert draft.restricted is False
    for fmt, text in exported_texts(draft, tmp_path).items():
        for word in SECRET_WORDS:
            assert word.lower() not in text.lower(), f"{word!r} leaked into {fmt}"
        assert "RESTRICTED" not in text, fmt
    with Session(engine) as session:
        assert session.exec(select(AuditEvent)).all() == []


def test_restricted_briefing_is_marked_everywhere(engine, corpus, taxonomy, tmp_path) -> None:
    draft = build(engine, taxonomy, ADMIN, theme_id="hidden-men", include_restricted=True)
    assert draft.restricted is True
    texts = exported_texts(draft, tmp_path)
    assert "falconer" in texts["json"] and "lighthouse" in texts["json"]
    assert RESTRICTED_MARKING in texts["html"] and RESTRICTED_MARKING in texts["docx"]
    assert "RESTRICTED - contains unpublished review material" in texts["pdf"]
    assert len(PdfReader(str(tmp_path / "b.pdf")).pages) == 1
    with Session(engine) as session:
        [event] = session.exec(select(AuditEvent)).all()
    assert event.action == "briefing.build" and event.username == "ada"
    assert "falconer" not in (event.detail or "")


def test_panel_member_sees_own_partnership_only(engine, corpus, taxonomy) -> None:
    draft = build(
        engine,
        taxonomy,
        panel(corpus, "Northshire"),
        theme_id="hidden-men",
        include_restricted=True,
    )
    text = json.dumps(draft.as_dict())
    assert draft.restricted and "falconer" in text and "lighthouse" not in text
    assert section(draft, 2)[0]["text"].startswith("Hidden men featured in 4 of 5 cases")


def test_review_briefing_on_embargoed_review(engine, corpus, taxonomy) -> None:
    embargoed = corpus.reviews["E"]
    with pytest.raises(NotFound, match="not found"):
        build(engine, taxonomy, VIEWER, review_id=embargoed, include_restricted=True)
    with pytest.raises(NotFound, match="not published"):
        build(engine, taxonomy, ADMIN, review_id=embargoed)
    draft = build(engine, taxonomy, ADMIN, review_id=embargoed, include_restricted=True)
    assert draft.restricted and "falconer" in json.dumps(draft.as_dict())

"""7-minute briefings: content, citations, diversity, recurrence, confidentiality, drafts, CLI.

The data is a small fictional corpus built row by row with hand-made embeddings, so no model is
needed. Published: Child A (2017), Child B (2018), Child C (2021) carry hidden-men; Child D (2022)
does not. Child E (2023, embargoed, Northshire) and Child F (2023, in progress, Southshire) carry
it too, with words found nowhere else ("falconer", "Quarrybank", "lighthouse") so a leak shows.
Two findings (and two recommendations) say the same thing in almost the same words, with
near-identical vectors: a diverse briefing quotes only one of each.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import typer
from docx import Document as DocxDocument
from pypdf import PdfReader
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from kb.models import (
    AuditEvent,
    CourseThemeLink,
    Document,
    Partnership,
    Passage,
    Review,
    ReviewStatus,
    ReviewType,
    Role,
    TagStatus,
    ThemeTag,
    TrainingCourse,
    TrainingSession,
)
from kb.services.access import Principal
from kb.services.briefing_export import RESTRICTED_MARKING, to_docx, to_html, to_pdf
from kb.services.briefings import (
    DEFAULT_HEADINGS,
    GENERIC_QUESTIONS,
    BriefingDraft,
    Conflict,
    InvalidBriefing,
    NotFound,
    UnknownTheme,
    build_briefing,
    cli_json,
    get_briefing,
    list_briefings,
    save_briefing,
    update_briefing,
)
from nlp.taxonomy import Taxonomy, load_taxonomy

DIM = 8
TODAY = date(2025, 1, 1)
SECRET_WORDS = ("falconer", "Quarrybank", "lighthouse")
EMBARGOED_WORDS = ("falconer", "Quarrybank")
IN_PROGRESS_WORDS = ("lighthouse",)


def vec(*weights: float) -> bytes:
    """A unit vector from leading weights (the rest zero), as stored float32 bytes."""
    v = np.zeros(DIM, dtype=np.float32)
    v[: len(weights)] = weights
    return (v / np.linalg.norm(v)).astype(np.float32).tobytes()


@dataclass
class Corpus:
    partnerships: dict[str, int] = field(default_factory=dict)
    reviews: dict[str, int] = field(default_factory=dict)
    passages: dict[str, int] = field(default_factory=dict)


def _review(
    session: Session,
    corpus: Corpus,
    key: str,
    *,
    year: int,
    status: ReviewStatus,
    partnership: str,
    type_: ReviewType = ReviewType.LCSPR,
    passages: list[tuple[str, str, str, bytes | None, list[str]]],
) -> None:
    """One document + review + passages; each passage is (key, section kind, text, vector,
    themes tagged on it)."""
    text = "\n\n".join(p[2] for p in passages)
    doc = Document(source_name=f"{key}.md", format="markdown", sha256=f"{key:0<64}"[:64], text=text)
    session.add(doc)
    session.flush()
    review = Review(
        document_id=doc.id,
        partnership_id=corpus.partnerships[partnership],
        pseudonym=f"Child {key}",
        type=type_,
        status=status,
        year=year,
        end=len(text),
    )
    session.add(review)
    session.flush()
    corpus.reviews[key] = review.id
    offset = 0
    for order, (pkey, kind, ptext, vector, themes) in enumerate(passages):
        passage = Passage(
            review_id=review.id,
            document_id=doc.id,
            section_title=kind.title(),
            section_kind=kind,
            text=ptext,
            order=order,
            start=offset,
            end=offset + len(ptext),
            embedding=vector,
            embedding_model="test" if vector else None,
        )
        offset += len(ptext) + 2
        session.add(passage)
        session.flush()
        corpus.passages[pkey] = passage.id
        for theme in themes:
            session.add(
                ThemeTag(
                    passage_id=passage.id,
                    review_id=review.id,
                    theme_id=theme,
                    status=TagStatus.SUGGESTED,
                    confidence=0.9,
                    evidence=[{"text": ptext[:10], "passage_start": 0, "passage_end": 10}],
                )
            )
    session.flush()


def build_corpus(engine: Engine) -> Corpus:
    corpus = Corpus()
    with Session(engine) as session:
        for name in ("Northshire", "Southshire"):
            row = Partnership(name=name)
            session.add(row)
            session.flush()
            corpus.partnerships[name] = row.id
        hm = ["hidden-men"]
        _review(
            session,
            corpus,
            "A",
            year=2017,
            status=ReviewStatus.PUBLISHED,
            partnership="Northshire",
            passages=[
                (
                    "A-bg",
                    "background",
                    "Child A was a nine-week-old baby who lived with his "
                    "mother and her new partner. He was admitted to hospital with a skull "
                    "fracture.",
                    vec(0, 0, 0, 1),
                    ["under-1s"],
                ),
                (
                    "A-f1",
                    "findings",
                    "Professionals did not know that the mother's new partner "
                    "was living in the home. Nobody asked who else cared for the baby.",
                    vec(1, 0, 0),
                    hm,
                ),
                (
                    "A-r1",
                    "recommendations",
                    "1. The partnership should ensure that agencies "
                    "record the details of every adult in the household. This should be audited.",
                    vec(0, 0, 0, 0, 1),
                    hm,
                ),
            ],
        )
        _review(
            session,
            corpus,
            "B",
            year=2018,
            status=ReviewStatus.PUBLISHED,
            partnership="Northshire",
            type_=ReviewType.SCR,
            passages=[
                (
                    "B-bg",
                    "background",
                    "Child B was a toddler known to children's social care "
                    "because of neglect. The family moved twice in a year.",
                    vec(0, 0, 0, 1, 0.2),
                    [],
                ),
                (
                    "B-f1",
                    "findings",
                    "Professionals did not know that the mother's new partner "
                    "was living in the home with the baby. Nobody asked who else cared for him.",
                    vec(1, 0.01, 0),
                    hm,
                ),
                (
                    "B-f2",
                    "findings",
                    "Fathers were not invited to child protection conferences, "
                    "and their views were never sought by the core group.",
                    vec(0, 1, 0),
                    hm,
                ),
                (
                    "B-r1",
                    "recommendations",
                    "The partnership should ensure that agencies record "
                    "the details of all adults in the household. Progress will be reported.",
                    vec(0, 0, 0, 0, 1, 0.02),
                    hm,
                ),
            ],
        )
        _review(
            session,
            corpus,
            "C",
            year=2021,
            status=ReviewStatus.PUBLISHED,
            partnership="Southshire",
            passages=[
                (
                    "C-bg",
                    "background",
                    "Child C was seven years old and lived with her father "
                    "after her parents separated. School raised concerns about her attendance.",
                    vec(0, 0, 0, 1, 0, 0, 0.3),
                    ["missing-education"],
                ),
                (
                    "C-f1",
                    "findings",
                    "The health visitor never met the father and recorded him "
                    "only as dad in the notes. His history of violence was unknown to her.",
                    vec(0, 0, 1),
                    hm,
                ),
                (
                    "C-r1",
                    "recommendations",
                    "Health services must invite fathers to every "
                    "antenatal and new birth contact. They should record why a father was absent.",
                    vec(0, 0, 0, 0, 0, 1),
                    hm,
                ),
            ],
        )
        _review(
            session,
            corpus,
            "D",
            year=2022,
            status=ReviewStatus.PUBLISHED,
            partnership="Northshire",
            passages=[
                (
                    "D-bg",
                    "background",
                    "Child D was a teenager who went missing from home "
                    "several times over one summer holiday.",
                    vec(0, 0, 0, 1, 0, 0, 0, 0.4),
                    ["neglect"],
                ),
            ],
        )
        _review(
            session,
            corpus,
            "E",
            year=2023,
            status=ReviewStatus.EMBARGOED,
            partnership="Northshire",
            passages=[
                (
                    "E-bg",
                    "background",
                    "Child E lived in Quarrybank with his mother and her "
                    "boyfriend. The family were not known to services before the incident.",
                    vec(0, 0, 0, 1, 0, 0.1),
                    [],
                ),
                (
                    "E-f1",
                    "findings",
                    "The stepfather, a falconer with a conviction for "
                    "violence, was never checked by any agency. His presence was not recorded.",
                    vec(0.3, 0.3, 0.3, 0, 0, 0, 0.8),
                    hm,
                ),
                (
                    "E-r1",
                    "recommendations",
                    "Quarrybank services should check every new "
                    "partner of a pregnant mother. A falconer would have been found.",
                    vec(0, 0, 0, 0, 0.3, 0.3, 0.8),
                    hm,
                ),
            ],
        )
        _review(
            session,
            corpus,
            "F",
            year=2023,
            status=ReviewStatus.IN_PROGRESS,
            partnership="Southshire",
            passages=[
                (
                    "F-f1",
                    "findings",
                    "The father worked as a lighthouse keeper and was away "
                    "for weeks, so nobody ever spoke to him about the baby.",
                    vec(0.2, 0.2, 0.2, 0, 0, 0, 0, 0.9),
                    hm,
                ),
            ],
        )
        course = TrainingCourse(
            ref="HM1", title="Hidden Men: Finding Ways Forward", provider="Northshire L&D"
        )
        other = TrainingCourse(ref="GCP2", title="Graded Care Profile 2")
        session.add(course)
        session.add(other)
        session.flush()
        session.add(CourseThemeLink(course_id=course.id, theme_id="hidden-men"))
        session.add(CourseThemeLink(course_id=other.id, theme_id="neglect"))
        for ref, held, pre, post in (
            ("HM1-1", date(2024, 1, 10), 2.0, 3.5),
            ("HM1-2", date(2024, 6, 1), 2.5, 3.4),
            ("HM1-3", date(2030, 3, 1), None, None),
        ):
            session.add(
                TrainingSession(
                    ref=ref, course_id=course.id, held_on=held, pre_score=pre, post_score=post
                )
            )
        session.commit()
    return corpus


# --------------------------------------------------------------------------- tests

VIEWER = Principal(username="val", role=Role.VIEWER)
ADMIN = Principal(username="ada", role=Role.ADMIN)


def panel(corpus: Corpus, name: str) -> Principal:
    return Principal(
        username=f"panel-{name}", role=Role.PANEL, partnership_id=corpus.partnerships[name]
    )


@pytest.fixture
def corpus(engine: Engine) -> Corpus:
    return build_corpus(engine)


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return load_taxonomy()


def build(engine: Engine, taxonomy: Taxonomy, principal: Principal, **kwargs) -> BriefingDraft:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        draft = build_briefing(
            session, principal=principal, taxonomy=taxonomy, today=TODAY, **kwargs
        )
        session.commit()
    return draft


def section(draft: BriefingDraft, number: int) -> list[dict]:  # type: ignore[type-arg]
    return [dict(item) for item in draft.sections[number - 1].items]


def cited(draft: BriefingDraft, number: int) -> set[int]:
    return {i["passage_id"] for i in section(draft, number) if i["passage_id"] is not None}


def exported_texts(draft: BriefingDraft, tmp_path: Path) -> dict[str, str]:
    """The briefing as every format shows it: JSON, HTML, DOCX text, PDF text."""
    docx_path, pdf_path = to_docx(draft, tmp_path / "b.docx"), to_pdf(draft, tmp_path / "b.pdf")
    doc = DocxDocument(str(docx_path))
    docx_text = "\n".join(
        [p.text for p in doc.paragraphs]
        + [p.text for s in doc.sections for p in (*s.header.paragraphs, *s.footer.paragraphs)]
    )
    reader = PdfReader(str(pdf_path))
    return {
        "json": json.dumps(draft.as_dict(), ensure_ascii=False),
        "html": to_html(draft),
        "docx": docx_text,
        "pdf": "\n".join(page.extract_text() for page in reader.pages),
    }


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


def test_saved_drafts_and_optimistic_locking(engine, corpus, taxonomy) -> None:
    draft = build(engine, taxonomy, VIEWER, theme_id="hidden-men")
    with Session(engine) as session:
        saved = save_briefing(session, principal=VIEWER, draft=draft)
        session.commit()
    assert saved.version_id == 1 and saved.created_by == "val" and not saved.restricted
    sections = [dict(s) for s in saved.sections]
    sections[3] = {
        **sections[3],
        "items": [
            *sections[3]["items"],
            {
                "text": "Local data: 40% of referrals name no father.",
                "review_id": None,
                "passage_id": None,
            },
        ],
    }
    with Session(engine) as session:
        updated = update_briefing(
            session,
            principal=VIEWER,
            briefing_id=saved.id,
            title="Hidden men: team meeting",
            sections=sections,
            expected_version=1,
        )
        session.commit()
    assert updated.version_id == 2 and updated.title == "Hidden men: team meeting"
    assert updated.sections[3]["items"][-1]["text"].startswith("Local data")
    assert updated.sections[1]["sources"] == saved.sections[1]["sources"]
    with Session(engine) as session, pytest.raises(Conflict):
        update_briefing(
            session, principal=VIEWER, briefing_id=saved.id, title="Stale", expected_version=1
        )
    with Session(engine) as session:
        again = get_briefing(session, principal=VIEWER, briefing_id=saved.id)
        assert again.title == "Hidden men: team meeting" and again.version_id == 2
        assert [b.id for b in list_briefings(session, principal=VIEWER)] == [saved.id]


def test_bad_edits_are_refused(engine, corpus, taxonomy) -> None:
    draft = build(engine, taxonomy, VIEWER, theme_id="hidden-men")
    with Session(engine) as session:
        saved = save_briefing(session, principal=VIEWER, draft=draft)
        session.commit()
    base = [dict(s) for s in saved.sections]

    def edit(sections):  # type: ignore[no-untyped-def]
        with Session(engine) as session:
            update_briefing(
                session,
                principal=VIEWER,
                briefing_id=saved.id,
                sections=sections,
                expected_version=1,
            )

    with pytest.raises(InvalidBriefing):
        edit(base[:6])
    leak = {
        "text": "quote",
        "review_id": corpus.reviews["E"],
        "passage_id": corpus.passages["E-f1"],
    }
    with pytest.raises(NotFound):
        edit([*base[:2], {**base[2], "items": [leak]}, *base[3:]])
    wrong = {
        "text": "quote",
        "review_id": corpus.reviews["A"],
        "passage_id": corpus.passages["C-f1"],
    }
    with pytest.raises(InvalidBriefing):
        edit([*base[:2], {**base[2], "items": [wrong]}, *base[3:]])


def test_restricted_briefings_are_hidden_from_those_who_cannot_see_them(
    engine, corpus, taxonomy
) -> None:
    north, south = panel(corpus, "Northshire"), panel(corpus, "Southshire")
    draft = build(engine, taxonomy, north, theme_id="hidden-men", include_restricted=True)
    with Session(engine) as session:
        saved = save_briefing(session, principal=north, draft=draft)
        session.commit()
    assert saved.restricted
    with Session(engine) as session:
        for who in (VIEWER, south, Principal.anonymous()):
            assert list_briefings(session, principal=who) == []
            with pytest.raises(NotFound):
                get_briefing(session, principal=who, briefing_id=saved.id)
        assert [b.id for b in list_briefings(session, principal=north)] == [saved.id]
        assert [b.id for b in list_briefings(session, principal=ADMIN)] == [saved.id]
        with pytest.raises(NotFound):
            save_briefing(session, principal=VIEWER, draft=draft)


def test_briefing_hidden_when_a_source_review_is_embargoed_later(engine, corpus, taxonomy) -> None:
    draft = build(engine, taxonomy, VIEWER, theme_id="hidden-men")
    with Session(engine) as session:
        saved = save_briefing(session, principal=VIEWER, draft=draft)
        session.get(Review, corpus.reviews["C"]).status = ReviewStatus.EMBARGOED
        session.commit()
    with Session(engine) as session:
        assert list_briefings(session, principal=VIEWER) == []
        assert [b.id for b in list_briefings(session, principal=ADMIN)] == [saved.id]


def test_cli_json_contract(engine, corpus, tmp_path) -> None:
    from kb.cli.briefing import briefing as briefing_command  # the kb.cli package imports all

    app = typer.Typer()
    app.command("briefing")(briefing_command)
    app.command("noop", hidden=True)(lambda: None)  # keep "briefing" a named sub-command
    runner = CliRunner()

    result = runner.invoke(app, ["briefing", "--theme", "hidden-men", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"title", "restricted", "sections"} and data["restricted"] is False
    assert len(data["sections"]) == 7
    for number, sec in enumerate(data["sections"], start=1):
        assert set(sec) == {"number", "heading", "items"} and sec["number"] == number
        for item in sec["items"]:
            assert set(item) == {"text", "review_id", "passage_id", "role"}
    assert "falconer" not in result.stdout and "lighthouse" not in result.stdout

    result = runner.invoke(
        app, ["briefing", "--theme", "hidden-men", "--json", "--include-restricted"]
    )
    assert result.exit_code == 0 and json.loads(result.stdout)["restricted"] is True
    assert "falconer" in result.stdout

    out = tmp_path / "briefing.pdf"
    result = runner.invoke(
        app, ["briefing", "--review", str(corpus.reviews["A"]), "--out", str(out), "--save"]
    )
    assert result.exit_code == 0, result.output
    assert len(PdfReader(str(out)).pages) == 1

    for args, message in (
        (["--theme", "nonsense"], "unknown theme"),
        (["--review", "9999"], "not found"),
        (["--review", str(corpus.reviews["E"])], "not published"),
        (["--theme", "hidden-men", "--out", str(tmp_path / "b.txt")], ".html, .docx or .pdf"),
    ):
        result = runner.invoke(app, ["briefing", *args])
        assert result.exit_code == 1, args
        assert message in result.output, result.output
    assert runner.invoke(app, ["briefing"]).exit_code == 2


def test_cli_json_helper_matches_saved_shape(engine, corpus, taxonomy) -> None:
    draft = build(engine, taxonomy, VIEWER, theme_id="hidden-men")
    with Session(engine) as session:
        saved = save_briefing(session, principal=VIEWER, draft=draft)
    assert cli_json(saved) == cli_json(draft)


def test_briefing_is_registered_as_a_kb_command(kb_env) -> None:
    from kb.cli import app

    result = CliRunner().invoke(app, ["briefing", "--help"])
    assert result.exit_code == 0 and "--include-restricted" in result.output

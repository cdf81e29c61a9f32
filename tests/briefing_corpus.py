"""The fictional corpus and helpers behind the briefing tests (tests/test_briefings*.py).

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
from docx import Document as DocxDocument
from pypdf import PdfReader
from sqlalchemy.engine import Engine
from sqlmodel import Session

from kb.models import (
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
from kb.services.briefing_export import to_docx, to_html, to_pdf
from kb.services.briefings import (
    BriefingDraft,
    build_briefing,
)
from nlp.taxonomy import Taxonomy, load_taxonomy

DIM = 8
TODAY = date(2025, 1, 1)
SECRET_WORDS = ("falconer", "Quarrybank", "lighthouse")
EMBARGOED_WORDS = ("falconer", "Quarrybank")
IN_PROGRESS_WORDS = ("lighthouse",)
HIDDEN_MEN = ["hidden-men"]


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
    """The whole fictional corpus (module docstring) in ``engine``; ids by key for the tests."""
    corpus = Corpus()
    with Session(engine) as session:
        _add_partnerships(session, corpus)
        _add_child_a(session, corpus)
        _add_child_b(session, corpus)
        _add_child_c(session, corpus)
        _add_child_d(session, corpus)
        _add_child_e(session, corpus)
        _add_child_f(session, corpus)
        _add_training(session)
        session.commit()
    return corpus


def _add_partnerships(session: Session, corpus: Corpus) -> None:
    """Two partnerships, so a panel member's view is limited to one of them."""
    for name in ("Northshire", "Southshire"):
        row = Partnership(name=name)
        session.add(row)
        session.flush()
        corpus.partnerships[name] = row.id


def _add_child_a(session: Session, corpus: Corpus) -> None:
    """Child A (2017, published, Northshire): hidden-men finding and recommendation; the
    finding and recommendation have near-twins in Child B, so diversity is tested."""
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
                HIDDEN_MEN,
            ),
            (
                "A-r1",
                "recommendations",
                "1. The partnership should ensure that agencies "
                "record the details of every adult in the household. This should be audited.",
                vec(0, 0, 0, 0, 1),
                HIDDEN_MEN,
            ),
        ],
    )


def _add_child_b(session: Session, corpus: Corpus) -> None:
    """Child B (2018, published SCR, Northshire): the near-duplicate of Child A's finding and
    recommendation (a diverse briefing quotes one of each), plus a second hidden-men finding."""
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
                HIDDEN_MEN,
            ),
            (
                "B-f2",
                "findings",
                "Fathers were not invited to child protection conferences, "
                "and their views were never sought by the core group.",
                vec(0, 1, 0),
                HIDDEN_MEN,
            ),
            (
                "B-r1",
                "recommendations",
                "The partnership should ensure that agencies record "
                "the details of all adults in the household. Progress will be reported.",
                vec(0, 0, 0, 0, 1, 0.02),
                HIDDEN_MEN,
            ),
        ],
    )


def _add_child_c(session: Session, corpus: Corpus) -> None:
    """Child C (2021, published, Southshire): a distinct hidden-men finding and
    recommendation from the other partnership."""
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
                HIDDEN_MEN,
            ),
            (
                "C-r1",
                "recommendations",
                "Health services must invite fathers to every "
                "antenatal and new birth contact. They should record why a father was absent.",
                vec(0, 0, 0, 0, 0, 1),
                HIDDEN_MEN,
            ),
        ],
    )


def _add_child_d(session: Session, corpus: Corpus) -> None:
    """Child D (2022, published, Northshire): no hidden-men passage, so theme filtering shows."""
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


def _add_child_e(session: Session, corpus: Corpus) -> None:
    """Child E (2023, embargoed, Northshire): hidden-men passages with words found nowhere
    else (EMBARGOED_WORDS), so a leak to a reader without access shows."""
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
                HIDDEN_MEN,
            ),
            (
                "E-r1",
                "recommendations",
                "Quarrybank services should check every new "
                "partner of a pregnant mother. A falconer would have been found.",
                vec(0, 0, 0, 0, 0.3, 0.3, 0.8),
                HIDDEN_MEN,
            ),
        ],
    )


def _add_child_f(session: Session, corpus: Corpus) -> None:
    """Child F (2023, in progress, Southshire): a hidden-men finding with a word found nowhere
    else (IN_PROGRESS_WORDS), so a leak of unpublished work shows."""
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
                HIDDEN_MEN,
            ),
        ],
    )


def _add_training(session: Session) -> None:
    """A hidden-men course with two past sessions (pre/post scores) and one future session,
    and a neglect course: what a briefing's training section and the tracker tests read."""
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


# --------------------------------------------------------------------------- tests

VIEWER = Principal(username="val", role=Role.VIEWER)
ADMIN = Principal(username="ada", role=Role.ADMIN)


def panel(corpus: Corpus, name: str) -> Principal:
    return Principal(
        username=f"panel-{name}", role=Role.PANEL, partnership_id=corpus.partnerships[name]
    )


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


@pytest.fixture
def corpus(engine: Engine) -> Corpus:
    """The fictional briefing corpus, built fresh in each test's database."""
    return build_corpus(engine)


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return load_taxonomy()

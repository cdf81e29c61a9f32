"""Theme recurrence and the theme × year matrix on a corpus whose answer is known by construction.

``build_corpus`` is shared by the other tracker tests: eight fictional reviews in two
partnerships, one embargoed, one annual report, with tags (one rejected) and recommendations
whose passages carry hand-made embeddings so déjà-vu needs no model.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from openpyxl import load_workbook
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from kb.models import (
    Document,
    Partnership,
    Passage,
    Review,
    ReviewStatus,
    ReviewType,
    Role,
    TagStatus,
    ThemeTag,
)
from kb.services.access import Principal
from kb.services.findings import extract_findings
from kb.services.recurrence import export_recurrence, theme_recurrence, theme_year_matrix
from kb.services.tracker import theme_labels

NORTHMOOR, EASTERBY = "Northmoor Safeguarding Children Partnership", "Easterby and Vale"
DIM = 8


def unit(*weights: tuple[int, float]) -> np.ndarray:
    """A unit vector from (axis, weight) pairs."""
    vec = np.zeros(DIM, dtype=np.float32)
    for axis, weight in weights:
        vec[axis] = weight
    return vec / np.linalg.norm(vec)


@dataclass
class Spec:
    key: str
    pseudonym: str
    type: ReviewType
    partnership: str
    incident: date | None
    status: ReviewStatus = ReviewStatus.PUBLISHED
    themes: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    recs: list[tuple[str, np.ndarray]] = field(default_factory=list)


SPECS = [
    Spec("B", "Child B", ReviewType.SCR, NORTHMOOR, date(2016, 5, 1),
         themes=["neglect", "was-not-brought"],
         recs=[("Adopt a neglect strategy with an assessment tool.", unit((7, 1)))]),
    Spec("D", "Child D", ReviewType.SCR, NORTHMOOR, date(2017, 3, 1),
         themes=["hidden-men", "under-1s", "information-sharing"],
         recs=[("Share information about all adults in the household at transfer of care.",
                unit((0, 1)))]),
    Spec("E", "Child E", ReviewType.LCSPR, NORTHMOOR, date(2019, 2, 1),
         themes=["hidden-men", "under-1s"], rejected=["domestic-abuse"],
         recs=[("Develop guidance and training on engaging fathers.", unit((3, 1))),
               ("Share domestic abuse notifications with health visitors.", unit((1, 1)))]),
    Spec("F", "Child F", ReviewType.LCSPR, NORTHMOOR, date(2021, 6, 14),
         themes=["hidden-men", "under-1s", "domestic-abuse", "information-sharing"],
         recs=[("Make household adults mandatory in the midwifery handover.",
                unit((0, 1), (1, 0.2))),
               ("Review the impact of the fathers guidance.", unit((3, 1), (5, 1)))]),
    Spec("H", "Child H", ReviewType.LCSPR, NORTHMOOR, date(2022, 1, 10),
         themes=["hidden-men", "domestic-abuse", "parental-mental-health"],
         recs=[("Adult mental health plans should record caring for a child.", unit((6, 1))),
               ("Adult mental health assessments should record caring for a child.", unit((6, 1))),
               ("Handover to include fathers and partners.", unit((0, 1), (2, 0.3)))]),
    Spec("X", "Child X", ReviewType.LCSPR, EASTERBY, date(2023, 4, 1), ReviewStatus.EMBARGOED,
         themes=["hidden-men", "domestic-abuse", "sexual-abuse"],
         recs=[("Commission a fathers engagement programme.", unit((3, 1), (4, 0.25)))]),
    Spec("AR", "Annual report 2021-22", ReviewType.ANNUAL_REPORT, NORTHMOOR, date(2022, 3, 31),
         themes=["neglect", "covid-19"],
         recs=[("Share information about all adults at transfer.", unit((0, 1)))]),
    Spec("L", "Child L", ReviewType.RAPID_REVIEW, EASTERBY, date(2022, 9, 1),
         themes=["domestic-abuse", "neglect"],
         recs=[("Escalate no-access visits.", unit((7, 1), (5, 1)))]),
]  # fmt: skip


def _partnership(session: Session, name: str) -> Partnership:
    found = session.exec(select(Partnership).where(Partnership.name == name)).first()
    if found is None:
        found = Partnership(name=name)
        session.add(found)
        session.flush()
    return found


def _passage(session: Session, review: Review, kind: str, text: str, order: int) -> Passage:
    passage = Passage(
        review_id=review.id, document_id=review.document_id, section_kind=kind,
        section_title=kind.title(), kind="paragraph", text=text, order=order,
    )  # fmt: skip
    session.add(passage)
    session.flush()
    return passage


def _tag(session: Session, passage: Passage, theme: str, status: TagStatus) -> None:
    session.add(
        ThemeTag(passage_id=passage.id, review_id=passage.review_id, theme_id=theme, status=status)
    )


def add_review(session: Session, spec: Spec) -> Review:
    """One review with a findings passage carrying its tags and one passage per recommendation."""
    document = Document(
        source_name=f"{spec.key}.md", format="md", sha256=f"{spec.key:0>64}", text=spec.pseudonym
    )
    session.add(document)
    session.flush()
    review = Review(
        document_id=document.id, partnership_id=_partnership(session, spec.partnership).id,
        type=spec.type, pseudonym=spec.pseudonym, incident_date=spec.incident,
        year=spec.incident.year if spec.incident else None, status=spec.status,
    )  # fmt: skip
    session.add(review)
    session.flush()
    finding = _passage(session, review, "findings", f"1. What went wrong for {spec.pseudonym}.", 0)
    for theme in spec.themes:
        _tag(session, finding, theme, TagStatus.SUGGESTED)
    for theme in spec.rejected:
        _tag(session, finding, theme, TagStatus.REJECTED)
    if "hidden-men" in spec.themes:  # a second tag of the same theme must not count twice
        extra = _passage(session, review, "background", "Mother's partner was not known.", 1)
        _tag(session, extra, "hidden-men", TagStatus.CONFIRMED)
    for number, (text, vector) in enumerate(spec.recs, start=1):
        passage = _passage(session, review, "recommendations", f"{number}. {text}", 10 + number)
        passage.embedding, passage.embedding_model = vector.astype(np.float32).tobytes(), "test"
    session.flush()
    extract_findings(session, review_id=review.id)
    return review


def build_corpus(engine: Engine) -> dict[str, int]:
    """Insert SPECS; returns review key → id."""
    with Session(engine) as session:
        ids = {spec.key: add_review(session, spec).id for spec in SPECS}
        session.commit()
    return ids  # type: ignore[return-value]


ADMIN = Principal.system()
VIEWER = Principal.anonymous()


@pytest.fixture
def corpus(engine: Engine) -> dict[str, int]:
    return build_corpus(engine)


def _table(data: dict) -> list[tuple[str, int, float, list[int]]]:
    return [(t["id"], t["reviews"], t["share"], t["review_ids"]) for t in data["themes"]]


def test_recurrence_table_is_exact(engine: Engine, corpus: dict[str, int]) -> None:
    ids = corpus
    with Session(engine) as session:
        data = theme_recurrence(session, principal=ADMIN)
    assert data["total_reviews"] == 7  # annual report left out
    assert _table(data) == [
        ("hidden-men", 5, 0.7143, sorted([ids["D"], ids["E"], ids["F"], ids["H"], ids["X"]])),
        ("domestic-abuse", 4, 0.5714, sorted([ids["F"], ids["H"], ids["X"], ids["L"]])),
        ("under-1s", 3, 0.4286, sorted([ids["D"], ids["E"], ids["F"]])),
        ("information-sharing", 2, 0.2857, sorted([ids["D"], ids["F"]])),
        ("neglect", 2, 0.2857, sorted([ids["B"], ids["L"]])),
        ("parental-mental-health", 1, 0.1429, [ids["H"]]),
        ("sexual-abuse", 1, 0.1429, [ids["X"]]),
        ("was-not-brought", 1, 0.1429, [ids["B"]]),
    ]
    labels = theme_labels()
    assert all(t["label"] == labels.get(t["id"], t["id"]) for t in data["themes"])
    assert set(data) == {"total_reviews", "themes"}
    assert set(data["themes"][0]) == {"id", "label", "reviews", "share", "review_ids"}


def test_embargoed_review_leaves_no_trace_for_a_viewer(engine: Engine, corpus: dict) -> None:
    ids = corpus
    with Session(engine) as session:
        data = theme_recurrence(session, principal=VIEWER)
        panel = theme_recurrence(
            session,
            principal=Principal("panel", Role.PANEL, session.get(Review, ids["X"]).partnership_id),
        )
    assert data["total_reviews"] == 6
    assert _table(data) == [
        ("hidden-men", 4, 0.6667, sorted([ids["D"], ids["E"], ids["F"], ids["H"]])),
        ("domestic-abuse", 3, 0.5, sorted([ids["F"], ids["H"], ids["L"]])),
        ("under-1s", 3, 0.5, sorted([ids["D"], ids["E"], ids["F"]])),
        ("information-sharing", 2, 0.3333, sorted([ids["D"], ids["F"]])),
        ("neglect", 2, 0.3333, sorted([ids["B"], ids["L"]])),
        ("parental-mental-health", 1, 0.1667, [ids["H"]]),
        ("was-not-brought", 1, 0.1667, [ids["B"]]),
    ]
    assert panel["total_reviews"] == 7  # Easterby's panel member sees its embargoed review


def test_filters(engine: Engine, corpus: dict[str, int]) -> None:
    ids = corpus
    with Session(engine) as session:
        reports = theme_recurrence(session, principal=ADMIN, include_reports=True)
        only_reports = theme_recurrence(session, principal=ADMIN, review_type="annual_report")
        lcspr = theme_recurrence(session, principal=ADMIN, review_type=ReviewType.LCSPR)
        easterby = theme_recurrence(session, principal=ADMIN, partnership="easterby and vale")
        window = theme_recurrence(session, principal=ADMIN, since=2019, until=2021)
    assert reports["total_reviews"] == 8
    assert ("neglect", 3) in [(t["id"], t["reviews"]) for t in reports["themes"]]
    assert only_reports["total_reviews"] == 1
    assert [t["id"] for t in only_reports["themes"]] == ["covid-19", "neglect"]
    assert lcspr["total_reviews"] == 4
    assert easterby["total_reviews"] == 2
    assert _table(easterby)[0] == ("domestic-abuse", 2, 1.0, sorted([ids["X"], ids["L"]]))
    assert window["total_reviews"] == 2
    assert _table(window)[0] == ("hidden-men", 2, 1.0, sorted([ids["E"], ids["F"]]))


def test_matrix(engine: Engine, corpus: dict[str, int]) -> None:
    with Session(engine) as session:
        data = theme_year_matrix(session, principal=ADMIN)
        viewer = theme_year_matrix(session, principal=VIEWER)
    assert data["years"] == list(range(2016, 2024))
    assert data["totals"] == [1, 1, 0, 1, 0, 1, 2, 1]
    rows = {t["id"]: t["counts"] for t in data["themes"]}
    assert rows["hidden-men"] == [0, 1, 0, 1, 0, 1, 1, 1]
    assert rows["domestic-abuse"] == [0, 0, 0, 0, 0, 1, 2, 1]
    assert rows["neglect"] == [1, 0, 0, 0, 0, 0, 1, 0]
    assert [t["id"] for t in data["themes"]][:2] == ["hidden-men", "domestic-abuse"]
    assert viewer["years"] == list(range(2016, 2023))
    assert "sexual-abuse" not in {t["id"] for t in viewer["themes"]}


def test_export_csv_and_xlsx(engine: Engine, corpus: dict[str, int], tmp_path: Path) -> None:
    with Session(engine) as session:
        data = theme_recurrence(session, principal=ADMIN)
        matrix = theme_year_matrix(session, principal=ADMIN)
    names = {i: f"Child {i}" for t in data["themes"] for i in t["review_ids"]}
    csv_text = export_recurrence(data, tmp_path / "r.csv", names=names).read_text("utf-8-sig")
    lines = list(csv.reader(io.StringIO(csv_text)))
    # A title, a blank line, headings; reviews by pseudonym (never ids), shares as percentages.
    total = data["total_reviews"]
    assert lines[0] == [f"In how many reviews each theme appears, of {total} reviews"]
    assert lines[2] == [
        "Theme", "Reviews", "Of", "Share", "National figure", "National source", "Which reviews",
        "Theme id",
    ]  # fmt: skip
    top = data["themes"][0]
    assert lines[3][0] == top["label"] and lines[3][-1] == "hidden-men"
    assert lines[3][3] == f"{top['share'] * 100:.0f}%"
    assert lines[3][6] == "; ".join(sorted(names[i] for i in top["review_ids"]))
    by_theme = {line[-1]: line for line in lines[3:]}
    if "domestic-abuse" in by_theme:  # a theme with a national figure carries it and its source
        assert by_theme["domestic-abuse"][4] == "Domestic abuse reported 55%"
        assert "235 reviews" in by_theme["domestic-abuse"][5]
    book = load_workbook(export_recurrence(matrix, tmp_path / "m.xlsx"))
    sheet = book.active
    assert sheet["A1"].value.startswith("Reviews per theme per year")
    headings = [c.value for c in sheet[3]]
    assert headings[:2] == ["Theme", "2016"] and headings[-3:] == ["Total", "Share", "Theme id"]
    assert sheet.freeze_panes == "A4" and sheet["A3"].font.bold
    assert sheet.column_dimensions["A"].width >= len(matrix["themes"][0]["label"])
    first = [c for c in sheet[4]]
    assert first[-1].value == "hidden-men" and first[-2].number_format == "0%"
    assert first[-3].value == sum(matrix["themes"][0]["counts"])
    with pytest.raises(ValueError):
        export_recurrence(data, tmp_path / "r.txt")

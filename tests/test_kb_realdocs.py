"""Real-shaped documents through ingest: kinds, inferred years, passage roles, cases.

Uses the fictional realistic fixtures (corpus/demo/realistic/) and small documents written
here; never ../shared.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from corpus.demo import REALISTIC_DIR
from kb.models import (
    AuditEvent,
    Finding,
    Partnership,
    Passage,
    Recommendation,
    Review,
    ReviewType,
    Role,
)
from kb.services.access import Principal
from kb.services.cases import link_reviews, match_cases, unlink_review
from kb.services.errors import Forbidden
from kb.services.ingest import IngestOptions, ingest_paths
from kb.services.recurrence import theme_recurrence
from kb.services.review_kinds import set_review_type
from kb.services.reviews import NotFound, review_detail
from kb.services.roles import set_passage_role
from nlp.roles import ROLES

ADMIN = Principal.system()

ANNUAL = """# Fernhill Safeguarding Children Partnership Annual Report 2021-22

## Rapid reviews

The Rapid Review Panel considered 2 referrals during the year, as follows:

1. Child F, a 7-week-old baby, was admitted in June 2021 with a skull fracture. The mother's
new partner was not known to services. The panel recommended an LCSPR.
2. A 15-year-old was found with a knife after going missing from home. Learning about
exploitation screening was shared; no further review was required.
"""

LCSPR_F = """# Local Child Safeguarding Practice Review: Child F

Published by the Fernhill Safeguarding Children Partnership.

## Background

Child F was a 7-week-old baby when he was admitted on 14 June 2021 with a skull fracture.

## Findings

1. Nobody asked who the mother's new partner was, so his history was never checked.

## Recommendations

1. The partnership should make sure that every adult in the household is identified.
"""


def _copy(folder: Path, *names: str) -> list[Path]:
    folder.mkdir(exist_ok=True)
    return [Path(shutil.copy(REALISTIC_DIR / name, folder / name)) for name in names]


def _ingest(engine: Engine, paths: list[Path], **options: object) -> list[dict]:
    report = ingest_paths(engine=engine, paths=paths, options=IngestOptions(**options))  # type: ignore[arg-type]
    assert not report.failed, report.failed
    return report.ingested


def test_annual_report_case_summaries_get_the_periods_year_flagged(
    engine: Engine, tmp_path: Path
) -> None:
    [item] = _ingest(engine, _copy(tmp_path, "ashcombe_annual_report_2022_23.txt"))
    with Session(engine) as session:
        reviews = session.exec(
            select(Review).where(col(Review.id).in_(item["reviews"])).order_by(col(Review.id))
        ).all()
        top, cases = reviews[0], reviews[1:]
        assert top.type is ReviewType.ANNUAL_REPORT and top.period == "2022-23"
        assert top.title == "ASCP Annual Report 2022 - 2023"
        assert len(cases) == 5
        assert all(c.type is ReviewType.RAPID_REVIEW for c in cases)
        assert all(c.year == 2022 and c.year_inferred for c in cases)
        detail = review_detail(session, principal=ADMIN, review_id=cases[0].id)
        assert detail["year"] == 2022 and detail["year_inferred"] is True


def test_every_passage_has_a_role_and_furniture_is_not_learning(
    engine: Engine, tmp_path: Path
) -> None:
    paths = _copy(
        tmp_path, "ashcombe_annual_report_2022_23.txt", "ashcombe_scrutiny_report_2024.txt"
    )
    _ingest(engine, paths)
    with Session(engine) as session:
        passages = session.exec(select(Passage)).all()
        assert passages and all(p.role in ROLES for p in passages)
        assert all(p.role_source in ("layout", "model") for p in passages)
        texts = {p.text for p in passages}
        assert not any(t.startswith("Contents") for t in texts)
        recs = [r.text for r in session.exec(select(Recommendation)).all()]
        # The scrutiny report's procedural "That the Committee notes..." is partnership business.
        assert not any("That the Committee" in t for t in recs), recs
        [synopsis] = [p for p in passages if p.text.startswith("- 1. A 5-month-old baby")]
        assert synopsis.role == "case_synopsis"


def test_newsletter_and_scrutiny_report_are_not_counted_as_reviews(
    engine: Engine, tmp_path: Path
) -> None:
    paths = _copy(
        tmp_path,
        "ashcombe_annual_report_2022_23.txt",
        "ashcombe_newsletter_spring_2016.txt",
        "ashcombe_scrutiny_report_2024.txt",
    )
    _ingest(engine, paths)
    with Session(engine) as session:
        kinds = sorted(str(r.type) for r in session.exec(select(Review)).all())
        assert kinds.count("rapid_review") == 5
        assert {"newsletter", "scrutiny_report", "annual_report"} <= set(kinds)
        assert theme_recurrence(session, principal=ADMIN)["total_reviews"] == 5


def test_undecidable_kind_is_other_with_a_warning(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "minutes_q3.txt"
    path.write_text("Minutes\n\nThe meeting opened at ten. Apologies were noted.\n", "utf-8")
    [item] = _ingest(engine, [path])
    assert item["warnings"] and "minutes_q3" in item["warnings"][0]
    with Session(engine) as session:
        assert session.get(Review, item["reviews"][0]).type is ReviewType.OTHER


def _two_documents_about_child_f(engine: Engine, tmp_path: Path) -> tuple[int, int]:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "fernhill_annual_report_2021_22.md").write_text(ANNUAL, encoding="utf-8")
    (folder / "fernhill_lcspr_child_f.md").write_text(LCSPR_F, encoding="utf-8")
    _ingest(engine, [folder])
    with Session(engine) as session:
        ids = session.exec(select(Review.id).where(Review.pseudonym == "Child F")).all()
    assert len(ids) == 2
    return ids[0], ids[1]


def test_rapid_review_and_lcspr_of_one_child_are_one_case(engine: Engine, tmp_path: Path) -> None:
    summary_id, lcspr_id = _two_documents_about_child_f(engine, tmp_path)
    with Session(engine) as session:
        summary, lcspr = session.get(Review, summary_id), session.get(Review, lcspr_id)
        assert summary.case_id is not None and summary.case_id == lcspr.case_id  # type: ignore[union-attr]
        assert lcspr.case_source == "matched"  # type: ignore[union-attr]
        for rid, other in ((summary_id, lcspr_id), (lcspr_id, summary_id)):
            case = review_detail(session, principal=ADMIN, review_id=rid)["case"]
            assert [r["id"] for r in case["reviews"]] == [other]
        # Two documents, one child, one other rapid review: recurrence counts 2 cases.
        assert len(session.exec(select(Review).where(col(Review.type).in_(
            ["rapid_review", "lcspr"]))).all()) == 3  # fmt: skip
        assert theme_recurrence(session, principal=ADMIN)["total_reviews"] == 2


def test_unlink_is_audited_and_matching_does_not_undo_it(engine: Engine, tmp_path: Path) -> None:
    summary_id, lcspr_id = _two_documents_about_child_f(engine, tmp_path)
    with Session(engine) as session:
        unlink_review(session, principal=ADMIN, review_id=lcspr_id)
        match_cases(session)
        summary, lcspr = session.get(Review, summary_id), session.get(Review, lcspr_id)
        assert lcspr.case_id is None and lcspr.case_source == "person"  # type: ignore[union-attr]
        assert summary.case_id is None  # a case of one is dissolved  # type: ignore[union-attr]
        case = link_reviews(
            session, principal=ADMIN, review_id=summary_id, other_review_id=lcspr_id
        )
        assert session.get(Review, lcspr_id).case_id == case.id  # type: ignore[union-attr]
        actions = [e.action for e in session.exec(select(AuditEvent)).all()]
        assert "unlink_case" in actions and "link_case" in actions
        with pytest.raises(ValueError):
            link_reviews(session, principal=ADMIN, review_id=lcspr_id, other_review_id=lcspr_id)


def test_only_editors_of_the_partnership_change_cases_roles_and_kinds(
    engine: Engine, tmp_path: Path
) -> None:
    summary_id, lcspr_id = _two_documents_about_child_f(engine, tmp_path)
    with Session(engine) as session:
        own = session.get(Review, lcspr_id).partnership_id  # type: ignore[union-attr]
        other = Partnership(name="Elsewhere")
        session.add(other)
        session.flush()
        passage_id = session.exec(select(Passage.id).where(Passage.review_id == lcspr_id)).first()
        viewer = Principal("v", Role.VIEWER)
        stranger = Principal("p2", Role.PANEL, other.id)
        panel = Principal("p1", Role.PANEL, own)
        for who in (viewer, stranger):
            with pytest.raises((Forbidden, NotFound)):
                unlink_review(session, principal=who, review_id=lcspr_id)
            with pytest.raises((Forbidden, NotFound)):
                set_passage_role(session, principal=who, passage_id=passage_id, role="finding")
            with pytest.raises((Forbidden, NotFound)):
                set_review_type(session, principal=who, review_id=lcspr_id, review_type="scr")
        set_passage_role(session, principal=panel, passage_id=passage_id, role="action")
        with pytest.raises(ValueError, match="use one of"):
            set_passage_role(session, principal=panel, passage_id=passage_id, role="preface")
        with pytest.raises(ValueError, match="use one of"):
            set_review_type(session, principal=panel, review_id=lcspr_id, review_type="memo")


def test_role_and_kind_corrections_survive_reingest_and_drive_extraction(
    engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "fernhill_child_f.md"
    path.write_text(LCSPR_F, encoding="utf-8")
    [item] = _ingest(engine, [path])
    review_id = item["reviews"][0]
    with Session(engine) as session:
        finding = session.exec(
            select(Passage).where(
                Passage.review_id == review_id, Passage.text.contains("Nobody asked")
            )  # type: ignore[attr-defined]
        ).one()
        assert session.exec(select(Finding).where(Finding.review_id == review_id)).all()
        set_passage_role(
            session, principal=ADMIN, passage_id=finding.id, role="partnership_business"
        )
        set_review_type(session, principal=ADMIN, review_id=review_id, review_type="scr")
        session.commit()
        # The role excludes it from findings at once.
        assert not session.exec(select(Finding).where(Finding.review_id == review_id)).all()
    path.write_text(LCSPR_F + "\nA new closing paragraph was added.\n", encoding="utf-8")
    _ingest(engine, [path])
    with Session(engine) as session:
        review = session.get(Review, review_id)
        assert review.type is ReviewType.SCR and review.type_source == "person"  # type: ignore[union-attr]
        again = session.exec(
            select(Passage).where(
                Passage.review_id == review_id, Passage.text.contains("Nobody asked")
            )  # type: ignore[attr-defined]
        ).one()
        assert again.role == "partnership_business" and again.role_source == "person"
        assert not session.exec(select(Finding).where(Finding.review_id == review_id)).all()
        events = session.exec(select(AuditEvent).where(AuditEvent.action == "set_role")).all()
        assert len(events) == 1 and events[0].object_type == "passage"


def test_confirmed_roles_retrain_the_model(engine: Engine, tmp_path: Path) -> None:
    from kb.services.roles import MIN_CONFIRMED_TO_RETRAIN, current_model
    from nlp.roles import default_model

    _ingest(engine, _copy(tmp_path, "ashcombe_annual_report_2022_23.txt"))
    with Session(engine) as session:
        assert current_model(session) is default_model()
        ids = session.exec(select(Passage.id).limit(MIN_CONFIRMED_TO_RETRAIN)).all()
        for passage_id in ids:
            set_passage_role(session, principal=ADMIN, passage_id=passage_id, role="other")
        retrained = current_model(session)
        assert retrained is not default_model()
        assert current_model(session) is retrained  # cached until the confirmations change


LEAD_IN = """# Fernhill Safeguarding Children Partnership Annual Report 2022-23

## Learning from audits

The partnership audited thirty cases of neglect this year. Areas for further development are:

- Recording what children say about their daily lives in every assessment.
- Inviting fathers to every core group meeting.
- Checking that plans still fit when a family moves house.
"""


def test_confirmed_roles_train_with_their_lead_in(engine: Engine, tmp_path: Path) -> None:
    # The lead-in is not stored; it is rebuilt from the document's passages so that a
    # confirmed list item trains the model with the context it had at ingest.
    from kb.services.roles import _confirmed_examples

    path = tmp_path / "fernhill_annual_report_2022_23.md"
    path.write_text(LEAD_IN, encoding="utf-8")
    _ingest(engine, [path])
    with Session(engine) as session:
        items = session.exec(select(Passage).where(Passage.kind == "list_item")).all()
        assert len(items) == 3
        for passage in items[:2]:
            set_passage_role(session, principal=ADMIN, passage_id=passage.id, role="recommendation")
        examples = _confirmed_examples(session)
    assert len(examples) == 2
    assert {item.lead for item, _ in examples} == {"Areas for further development are:"}
    assert {role for _, role in examples} == {"recommendation"}
    assert len({item.run for item, _ in examples}) == 1

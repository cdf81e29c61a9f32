"""Findings and recommendations extracted from passages; edits and tracker links survive."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from kb.models import (
    ActionCreate,
    Finding,
    Passage,
    Recommendation,
    Review,
    ReviewStatus,
    ReviewType,
    TagStatus,
)
from kb.services.findings import extract_findings, update_finding, update_recommendation
from kb.services.tracker import create_action
from tests.test_tracker_recurrence import ADMIN, NORTHMOOR, Spec, add_review

RECS = [
    ("paragraph", "The review makes the following recommendations:"),
    ("paragraph", "Recommendation 1: Agencies should record every adult in the household."),
    ("paragraph", "This matters because Mr G was never checked."),  # continuation of 1
    ("paragraph", "Recommendation 2 – The ICB should audit the handover."),
    ("list_item", "3) Health visitors should see fathers."),
]
FINDINGS = [
    ("heading", "Findings"),
    ("paragraph", "Finding 1: Mr G remained invisible."),
    ("paragraph", "Finding 2 – The handover lost information."),
]


def _review(session: Session) -> int:
    review = add_review(session, Spec("T", "Child T", ReviewType.LCSPR, NORTHMOOR, None, recs=[]))
    for order, (kind, text) in enumerate(RECS, start=20):
        _add(session, review, "recommendations", "Recommendations", kind, text, order)
    for order, (kind, text) in enumerate(FINDINGS, start=40):
        _add(session, review, "findings", "Findings", kind, text, order)
    session.flush()
    return review.id  # type: ignore[return-value]


def _add(session, review, section_kind, title, kind, text, order) -> Passage:  # type: ignore[no-untyped-def]
    passage = Passage(
        review_id=review.id, document_id=review.document_id, section_kind=section_kind,
        section_title=title, kind=kind, text=text, order=order,
    )  # fmt: skip
    session.add(passage)
    session.flush()
    return passage


def _rows(session: Session, model, review_id: int) -> list[tuple[str | None, str]]:  # type: ignore[no-untyped-def]
    rows = session.exec(select(model).where(model.review_id == review_id).order_by(model.id)).all()
    return sorted(((r.number, r.text) for r in rows), key=lambda r: r[0] or "")


def test_numbers_intros_and_continuations(engine: Engine) -> None:
    with Session(engine) as session:
        review_id = _review(session)
        counts = extract_findings(session, review_id=review_id)
        recs = _rows(session, Recommendation, review_id)
        findings = _rows(session, Finding, review_id)
    assert recs == [
        ("1", "Agencies should record every adult in the household.\n\n"
              "This matters because Mr G was never checked."),
        ("2", "The ICB should audit the handover."),
        ("3", "Health visitors should see fathers."),
    ]  # fmt: skip
    # add_review's own "1. What went wrong…" finding passage comes first
    assert [n for n, _ in findings] == ["1", "1", "2"]
    assert ("2", "The handover lost information.") in findings
    assert counts == (3, 3)


def test_unnumbered_list_items_are_numbered_by_position(engine: Engine) -> None:
    with Session(engine) as session:
        review = add_review(session, Spec("U", "Child U", ReviewType.LCSPR, NORTHMOOR, None))
        for order, text in enumerate(["Do one thing.", "Do another thing."], start=5):
            _add(session, review, "recommendations", "Recommendations", "list_item", text, order)
        extract_findings(session, review_id=review.id)
        assert _rows(session, Recommendation, review.id) == [
            ("1", "Do one thing."),
            ("2", "Do another thing."),
        ]


def test_themes_from_non_rejected_tags(engine: Engine) -> None:
    from kb.models import ThemeTag

    with Session(engine) as session:
        review_id = _review(session)
        passage = session.exec(
            select(Passage).where(Passage.text.startswith("Recommendation 2"))  # type: ignore[attr-defined]
        ).one()
        session.add(ThemeTag(passage_id=passage.id, review_id=review_id, theme_id="hidden-men"))
        session.add(
            ThemeTag(
                passage_id=passage.id, review_id=review_id, theme_id="neglect",
                status=TagStatus.REJECTED,
            )
        )  # fmt: skip
        session.flush()
        extract_findings(session, review_id=review_id)
        rec = session.exec(select(Recommendation).where(Recommendation.number == "2")).one()
    assert rec.themes == ["hidden-men"]


def test_rerun_keeps_edits_and_linked_rows(engine: Engine) -> None:
    with Session(engine) as session:
        review_id = _review(session)
        extract_findings(session, review_id=review_id)
        recs = {
            r.number: r
            for r in session.exec(
                select(Recommendation).where(Recommendation.review_id == review_id)
            )
        }
        edited = update_recommendation(
            session,
            principal=ADMIN,
            recommendation_id=recs["2"].id,
            text="Audit the handover (edited).",
        )
        finding = session.exec(select(Finding).where(Finding.review_id == review_id)).first()
        update_finding(session, principal=ADMIN, finding_id=finding.id, themes=["hidden-men"])
        action = create_action(
            session, principal=ADMIN,
            data=ActionCreate(ref="X-1", description="d", recommendation_ids=[recs["3"].id]),
        )  # fmt: skip
        # the source changes: recommendation 3 disappears, recommendation 1 is reworded
        for passage in session.exec(select(Passage).where(Passage.review_id == review_id)):
            if passage.text.startswith("3)"):
                passage.section_kind = "other"
            if passage.text.startswith("Recommendation 1"):
                passage.text = "Recommendation 1: Agencies must record all adults."
            session.add(passage)
        session.flush()
        extract_findings(session, review_id=review_id)
        after = {
            r.number: r
            for r in session.exec(
                select(Recommendation).where(Recommendation.review_id == review_id)
            )
        }
        assert after["1"].id == recs["1"].id  # updated in place: ids are stable
        assert after["1"].text.startswith("Agencies must record all adults.")
        assert after["2"].text == "Audit the handover (edited)." and after["2"].edited
        assert after["2"].id == edited.id
        assert after["3"].id in action.recommendation_ids  # kept: an action links to it
        kept = session.get(Finding, finding.id)
        assert kept is not None and kept.themes == ["hidden-men"] and kept.edited


def test_edits_follow_visibility_and_partnership_rules(engine: Engine) -> None:
    """Hidden rows answer NotFound; viewers and other partnerships' panel members Forbidden;
    an unknown theme or empty text is refused and nothing changes."""
    from kb.models import Role
    from kb.services.access import Principal
    from kb.services.errors import Forbidden
    from kb.services.reviews import NotFound

    with Session(engine) as session:
        review_id = _review(session)
        extract_findings(session, review_id=review_id)
        rec = session.exec(
            select(Recommendation).where(Recommendation.review_id == review_id)
        ).first()
        assert rec is not None and rec.id is not None
        partnership_id = session.exec(
            select(Review.partnership_id).where(Review.id == review_id)
        ).one()
        viewer = Principal(username="v", role=Role.VIEWER)
        other_panel = Principal(username="o", role=Role.PANEL, partnership_id=-1)
        own_panel = Principal(username="p", role=Role.PANEL, partnership_id=partnership_id)
        review = session.get(Review, review_id)
        review.status = ReviewStatus.EMBARGOED
        session.add(review)
        session.flush()
        with pytest.raises(NotFound):
            update_recommendation(session, principal=viewer, recommendation_id=rec.id, text="x")
        review.status = ReviewStatus.PUBLISHED
        session.add(review)
        session.flush()
        for who in (viewer, other_panel):
            with pytest.raises(Forbidden):
                update_recommendation(session, principal=who, recommendation_id=rec.id, text="x")
        with pytest.raises(ValueError, match="unknown theme"):
            update_recommendation(
                session, principal=own_panel, recommendation_id=rec.id, themes=["no-such"]
            )
        with pytest.raises(ValueError, match="empty"):
            update_recommendation(session, principal=own_panel, recommendation_id=rec.id, text=" ")
        before = rec.text
        session.refresh(rec)
        assert rec.text == before
        done = update_recommendation(
            session, principal=own_panel, recommendation_id=rec.id, text="Check every adult."
        )
        assert done.text == "Check every adult."
        session.refresh(rec)
        assert rec.edited  # re-extraction will keep the correction

"""Findings and recommendations: the numbered learning a review ends with, as rows of their own.

The tracker links actions to *recommendations*, so each recommendation needs a stable row with
its number ("Recommendation 3") rather than being just a passage. Grouping passages into items
is plain string work (nlp/learning_items.py): ingest does it on a new document's passages
before its write and stores the rows in bulk (:func:`store_learning`); a person's role change
re-extracts from the stored passages (:func:`extract_findings`).
Rows a person corrected (``edited=True``) survive re-extraction, and so do rows that actions
already point at, so re-ingesting a document never silently breaks the tracker's links.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, insert, or_, update
from sqlmodel import Session, col, select

from kb.models import (
    MAX_TEXT,
    ActionRecommendationLink,
    Finding,
    FindingPublic,
    Passage,
    Recommendation,
    RecommendationPublic,
    TagStatus,
    ThemeTag,
)
from kb.services import audit
from kb.services.access import Principal
from kb.services.reviews import NotFound, get_review
from kb.services.tracker import check_may_edit, check_themes
from nlp.learning_items import (
    FINDING_KINDS,
    RECOMMENDATION_KINDS,
    LearningItem,
    group_items,
    is_intro,
    learning_items,
    learning_kind,
)

log = logging.getLogger(__name__)

__all__ = [
    "FINDING_KINDS",
    "RECOMMENDATION_KINDS",
    "LearningDraft",
    "extract_findings",
    "group_items",
    "is_intro",
    "learning_kind",
    "store_learning",
]


@dataclass(frozen=True, slots=True)
class LearningDraft:
    """A finding or recommendation ready to store: its first passage's id and its themes (the
    themes of all its passages that are not rejected)."""

    number: str | None
    text: str
    passage_id: int | None
    themes: list[str]


def drafts_of(
    items: list[LearningItem], passage_id: Any, themes: dict[Any, list[str]]
) -> list[LearningDraft]:
    """Items → drafts; ``passage_id(p)`` gives a passage's id and keys ``themes``."""
    return [
        LearningDraft(
            item.number,
            item.text,
            passage_id(item.passages[0]),
            sorted({t for p in item.passages for t in themes.get(passage_id(p), [])}),
        )
        for item in items
    ]


def _themes_by_passage(session: Session, passage_ids: list[int]) -> dict[int, list[str]]:
    rows = session.exec(
        select(ThemeTag.passage_id, ThemeTag.theme_id).where(
            col(ThemeTag.passage_id).in_(passage_ids), ThemeTag.status != TagStatus.REJECTED
        )
    ).all()
    themes: dict[int, set[str]] = {}
    for passage_id, theme_id in rows:
        themes.setdefault(passage_id, set()).add(theme_id)
    return {pid: sorted(ids) for pid, ids in themes.items()}


def extract_findings(session: Session, *, review_id: int) -> tuple[int, int]:
    """(Re)build the review's findings and recommendations; returns how many of each.

    Two queries for passages and tags, no model: cheap enough after a person's role change.
    """
    passages = session.exec(
        select(Passage)
        .where(
            Passage.review_id == review_id,
            or_(
                col(Passage.section_kind).in_(FINDING_KINDS | RECOMMENDATION_KINDS),
                col(Passage.role).in_(["finding", "recommendation"]),
            ),
        )
        .order_by(col(Passage.order))
    ).all()
    themes = _themes_by_passage(session, [p.id for p in passages if p.id is not None])
    findings, recs = learning_items(passages)
    ids = lambda p: p.id  # noqa: E731 - the stored passage's own id
    return store_learning(
        session,
        review_id,
        drafts_of(findings, ids, themes),
        drafts_of(recs, ids, themes),
        fresh=False,
    )


def store_learning(
    session: Session,
    review_id: int,
    findings: list[LearningDraft],
    recommendations: list[LearningDraft],
    *,
    fresh: bool,
) -> tuple[int, int]:
    """Store a review's findings and recommendations; returns how many of each it has.

    ``fresh``: the review was made in this transaction, so it has no rows yet and they are
    inserted in bulk (ingest's short write); otherwise stored rows are matched and kept.
    """
    if fresh:
        for model, drafts in ((Finding, findings), (Recommendation, recommendations)):
            rows = [_row(review_id, d) for d in drafts]
            if rows:
                session.execute(insert(model.__table__), rows)  # type: ignore[attr-defined]
        return len(findings), len(recommendations)
    n_findings = _sync(session, Finding, review_id, findings, linked=set())
    linked = set(
        session.exec(
            select(ActionRecommendationLink.recommendation_id)
            .join(
                Recommendation, col(Recommendation.id) == ActionRecommendationLink.recommendation_id
            )
            .where(Recommendation.review_id == review_id)
        ).all()
    )
    n_recs = _sync(session, Recommendation, review_id, recommendations, linked=linked)
    session.flush()
    return n_findings, n_recs


def _sync(
    session: Session,
    model: type[Finding] | type[Recommendation],
    review_id: int,
    items: list[LearningDraft],
    *,
    linked: set[int],
) -> int:
    """Make the stored rows match ``items``, keeping edited rows and rows actions link to.

    Unedited rows are updated in place (matched by number, else by text; rows sharing a key
    in order) so their ids, and therefore tracker links, stay the same across re-extraction.
    Plain statements, one per kind of change (ingest's write re-extracts thousands of rows of
    a long report); rows of this review the session has loaded are refreshed afterwards.
    """
    table = model.__table__  # type: ignore[attr-defined]
    existing = session.execute(
        select(table.c.id, table.c.number, table.c.text, table.c.edited)
        .where(table.c.review_id == review_id)
        .order_by(table.c.id)
    ).all()
    kept = sum(1 for row in existing if row.edited)
    taken_numbers = {row.number for row in existing if row.edited and row.number}
    free: dict[str, list[int]] = {}
    for row in existing:
        if not row.edited:
            free.setdefault(_key(row.number, row.text), []).append(row.id)
    new: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for item in items:
        if item.number and item.number in taken_numbers:
            continue  # a person's edit of this item wins
        same = free.get(_key(item.number, item.text))
        values = _row(review_id, item)
        if same:
            changed.append({"row_id": same.pop(0), **values})
        else:
            new.append(values)
    stale = [row_id for ids in free.values() for row_id in ids]
    kept_links = [row_id for row_id in stale if row_id in linked]
    for row_id in kept_links:
        log.warning("recommendation %s no longer extracted but kept: actions link to it", row_id)
    if kept_links:
        session.execute(update(table).where(table.c.id.in_(kept_links)).values(passage_id=None))
    gone = [row_id for row_id in stale if row_id not in linked]
    if gone:
        session.execute(delete(table).where(table.c.id.in_(gone)))
    if changed:
        session.execute(update(table).where(table.c.id == bindparam("row_id")), changed)
    if new:
        session.execute(insert(table), new)
    _forget_loaded(session, model, review_id, set(gone))
    return kept + len(changed) + len(new)


def _forget_loaded(
    session: Session, model: type[Finding] | type[Recommendation], review_id: int, gone: set[int]
) -> None:
    """Loaded rows of the review read again on next use (deleted ones leave the session):
    the statements above went around them. Their own changes were flushed before (autoflush)."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, model) and obj.review_id == review_id:
            if obj.id in gone:
                session.expunge(obj)
            else:
                session.expire(obj)


def _row(review_id: int, draft: LearningDraft) -> dict[str, Any]:
    return {
        "review_id": review_id,
        "number": draft.number,
        "text": draft.text,
        "passage_id": draft.passage_id,
        "themes": list(draft.themes),
        "edited": False,
    }


def _key(number: str | None, text: str) -> str:
    return f"#{number}" if number else text.strip().lower()


def detach_passages(session: Session, *, document_id: int) -> None:
    """Clear finding / recommendation links to a document's passages about to be deleted (a
    document's previous version), so the delete does not break foreign keys and the rows
    survive. Two UPDATE statements, however many passages."""
    passages = select(Passage.id).where(Passage.document_id == document_id)
    for model in (Finding, Recommendation):
        session.execute(
            update(model)
            .where(col(model.passage_id).in_(passages))
            .values(passage_id=None)
            .execution_options(synchronize_session=False)
        )


def list_findings(session: Session, *, review_id: int) -> list[FindingPublic]:
    """Findings of a review in number order (callers check visibility with get_review)."""
    rows = session.exec(
        select(Finding).where(Finding.review_id == review_id).order_by(col(Finding.id))
    ).all()
    return [FindingPublic.model_validate(row) for row in rows]


def list_recommendations(session: Session, *, review_id: int) -> list[RecommendationPublic]:
    """Recommendations of a review (callers check visibility with get_review)."""
    rows = session.exec(
        select(Recommendation)
        .where(Recommendation.review_id == review_id)
        .order_by(col(Recommendation.id))
    ).all()
    return [RecommendationPublic.model_validate(row) for row in rows]


def review_learning(
    session: Session, *, principal: Principal, review_id: int
) -> dict[str, list[Any]]:
    """A visible review's findings and recommendations (NotFound when hidden)."""
    get_review(session, principal=principal, review_id=review_id)
    return {
        "findings": list_findings(session, review_id=review_id),
        "recommendations": list_recommendations(session, review_id=review_id),
    }


def _edit(
    session: Session,
    model: type[Finding] | type[Recommendation],
    row_id: int,
    principal: Principal,
    text: str | None,
    themes: list[str] | None,
) -> Finding | Recommendation:
    """Apply a correction after the same checks everywhere: hidden → NotFound (a refusal never
    confirms a hidden row exists), not an editor of that partnership → Forbidden, unknown theme
    or empty text → ValueError."""
    what = model.__name__.lower()
    row = session.get(model, row_id)
    if row is None:
        raise NotFound(f"{what} {row_id} not found")
    try:
        review = get_review(session, principal=principal, review_id=row.review_id)
    except NotFound as exc:
        raise NotFound(f"{what} {row_id} not found") from exc
    check_may_edit(principal, review.partnership_id)
    if text is not None and len(text) > MAX_TEXT:
        raise ValueError(f"the text is longer than {MAX_TEXT} characters")
    if text is not None:
        if not text.strip():
            raise ValueError(f"{what} text cannot be empty")
        row.text = text.strip()
    if themes is not None:
        row.themes = check_themes(themes)  # ValueError naming unknown ids
    row.edited = True
    session.add(row)
    session.flush()
    audit.record(
        session,
        principal=principal,
        action=f"{what}.edit",
        object_type=what,
        object_id=row.id,
        detail={"review": row.review_id},
    )
    return row


def update_finding(
    session: Session,
    *,
    principal: Principal,
    finding_id: int,
    text: str | None = None,
    themes: list[str] | None = None,
) -> FindingPublic:
    """Correct a finding; marked edited so re-extraction keeps the correction."""
    row = _edit(session, Finding, finding_id, principal, text, themes)
    return FindingPublic.model_validate(row)


def update_recommendation(
    session: Session,
    *,
    principal: Principal,
    recommendation_id: int,
    text: str | None = None,
    themes: list[str] | None = None,
) -> RecommendationPublic:
    """Correct a recommendation; marked edited so re-extraction keeps the correction."""
    row = _edit(session, Recommendation, recommendation_id, principal, text, themes)
    return RecommendationPublic.model_validate(row)

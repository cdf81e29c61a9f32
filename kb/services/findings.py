"""Findings and recommendations: the numbered learning a review ends with, as rows of their own.

The tracker links actions to *recommendations*, so each recommendation needs a stable row with
its number ("Recommendation 3") rather than being just a passage. Extraction is plain string
work over passages already stored (no model), so the ingest hook can call it on every document.
Rows a person corrected (``edited=True``) survive re-extraction, and so do rows that actions
already point at, so re-ingesting a document never silently breaks the tracker's links.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_
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

log = logging.getLogger(__name__)

FINDING_KINDS = frozenset({"findings", "finding"})
RECOMMENDATION_KINDS = frozenset({"recommendations", "recommendation"})
#: Passages with these roles are never findings or recommendations, whatever their section
#: (a scrutiny report's "1 Recommendations: That the Board notes the report").
NOT_LEARNING_ROLES = frozenset({"front_matter", "partnership_business"})
#: Outside a findings / recommendations section a passage's role alone makes it one when a
#: person set it or the classifier is this sure (real PDFs lose or garble headings).
ROLE_ALONE_CONFIDENCE = 0.6

# "1.", "2)", "(3)", "Recommendation 3:", "Finding 2 –", "Learning point 4." at the start of a text
_NUMBER = re.compile(
    r"^\s*(?:(?:recommendation|finding|learning\s+point|rec\.?)\s*(\d{1,3})\s*[.):\-–—]?"
    r"|\(?(\d{1,3}(?:\.\d{1,2})?)(?:\)|[.:](?!\d))|(\d{1,3}\.\d{1,2})(?=\s))\s*",
    re.IGNORECASE,
)
# a numbered heading such as "Finding 1: Mr G remained invisible" (section titles)
_TITLE_NUMBER = re.compile(
    r"^\s*(?:\d+(?:\.\d+)*\.?\s+)?(?:recommendation|finding|learning\s+point)\s+(\d{1,3})\b"
    r"\s*[.:\-–—]?\s*",
    re.IGNORECASE,
)
_INTRO = re.compile(
    r"\b(following|these|below|makes?\s+\w+\s+recommendations?|recommends?\s+that\s*:?$)\b",
    re.IGNORECASE,
)


@dataclass
class _Item:
    """One finding or recommendation being assembled from one or more passages."""

    number: str | None
    passages: list[Passage] = field(default_factory=list)
    lead: str = ""

    @property
    def text(self) -> str:
        parts = [self.lead] if self.lead else []
        parts += [_strip_number(p.text) for p in self.passages]
        return "\n\n".join(part for part in parts if part)


def _strip_number(text: str) -> str:
    return _NUMBER.sub("", text, count=1).strip()


def _number_of(text: str) -> str | None:
    match = _NUMBER.match(text)
    return next((g for g in match.groups() if g), None) if match else None


def is_intro(passage: Passage) -> bool:
    """Headings and lead-in sentences ("The review makes the following recommendations:")."""
    text = passage.text.strip()
    if passage.kind == "heading" or not text:
        return True
    if text.endswith(":") and _number_of(text) is None:
        return True
    words = text.split()
    if len(words) <= 3 and passage.kind != "list_item" and _number_of(text) is None:
        return True
    return _number_of(text) is None and len(words) < 25 and bool(_INTRO.search(text))


def group_items(passages: Sequence[Passage]) -> list[_Item]:
    """Split a section's passages into items: numbered paragraphs, list items, or numbered
    sub-headings ("Finding 1: …") whose paragraphs belong together."""
    items: list[_Item] = []
    for passage in passages:
        if is_intro(passage):
            continue
        number = _number_of(passage.text)
        title = _TITLE_NUMBER.match(passage.section_title or "")
        previous = items[-1] if items else None
        if number is None and title is not None:
            if previous is not None and previous.passages[0].section_title == passage.section_title:
                previous.passages.append(passage)
                continue
            lead = passage.section_title[title.end() :].strip()
            items.append(_Item(title.group(1), [passage], lead))
            continue
        continues = (
            number is None
            and passage.kind == "paragraph"
            and previous is not None
            and previous.number is not None
            and previous.passages[-1].kind == "paragraph"
            and previous.passages[-1].section_title == passage.section_title
        )
        if continues:
            previous.passages.append(passage)  # type: ignore[union-attr]
        else:
            items.append(_Item(number, [passage]))
    _number_list_items(items)
    return items


def _number_list_items(items: list[_Item]) -> None:
    """Readers may drop "1." from list items: number them by position when none has one."""
    if items and all(item.number is None for item in items):
        for index, item in enumerate(items, start=1):
            item.number = str(index)


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


def learning_kind(passage: Passage) -> str | None:
    """ "finding", "recommendation" or None for one passage, from its section and its role.

    The section decides between the two (items listed under a review's findings are findings
    even when worded with "should"); the role removes front matter and partnership business
    from those sections and adds passages whose heading was lost.
    """
    if passage.role in NOT_LEARNING_ROLES:
        return None
    if passage.section_kind in FINDING_KINDS:
        return "finding"
    if passage.section_kind in RECOMMENDATION_KINDS:
        return "recommendation"
    sure = passage.role_source == "person" or passage.role_confidence >= ROLE_ALONE_CONFIDENCE
    return passage.role if sure and passage.role in ("finding", "recommendation") else None


def extract_findings(session: Session, *, review_id: int) -> tuple[int, int]:
    """(Re)build the review's findings and recommendations; returns how many of each.

    Two queries for passages and tags, no model: cheap enough for the ingest hook.
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
    findings = group_items([p for p in passages if learning_kind(p) == "finding"])
    recs = group_items([p for p in passages if learning_kind(p) == "recommendation"])
    n_findings = _sync(session, Finding, review_id, findings, themes, linked=set())
    linked = set(
        session.exec(
            select(ActionRecommendationLink.recommendation_id)
            .join(
                Recommendation, col(Recommendation.id) == ActionRecommendationLink.recommendation_id
            )
            .where(Recommendation.review_id == review_id)
        ).all()
    )
    n_recs = _sync(session, Recommendation, review_id, recs, themes, linked=linked)
    session.flush()
    return n_findings, n_recs


def _sync(
    session: Session,
    model: type[Finding] | type[Recommendation],
    review_id: int,
    items: list[_Item],
    themes: dict[int, list[str]],
    *,
    linked: set[int],
) -> int:
    """Make the stored rows match ``items``, keeping edited rows and rows actions link to.

    Unedited rows are updated in place (matched by number, else by text) so their ids, and
    therefore tracker links, stay the same across re-extraction.
    """
    existing = list(session.exec(select(model).where(model.review_id == review_id)).all())
    kept = [row for row in existing if row.edited]
    taken_numbers = {row.number for row in kept if row.number}
    free = {(_key(row.number, row.text)): row for row in existing if not row.edited}
    for item in items:
        if item.number and item.number in taken_numbers:
            continue  # a person's edit of this item wins
        row = free.pop(_key(item.number, item.text), None) or model(review_id=review_id, text="")
        row.number, row.text = item.number, item.text
        row.passage_id = item.passages[0].id
        row.themes = sorted({t for p in item.passages for t in themes.get(p.id or -1, [])})
        session.add(row)
        kept.append(row)
    for row in free.values():
        if row.id in linked:
            log.warning(
                "recommendation %s no longer extracted but kept: actions link to it", row.id
            )
            row.passage_id = None
            continue
        session.delete(row)
    return len(kept)


def _key(number: str | None, text: str) -> str:
    return f"#{number}" if number else text.strip().lower()


def detach_passages(session: Session, *, passage_ids: Sequence[int]) -> None:
    """Clear finding / recommendation links to passages about to be deleted (a document's
    previous version), so the delete does not break foreign keys and the rows survive."""
    for model in (Finding, Recommendation):
        rows = session.exec(select(model).where(col(model.passage_id).in_(list(passage_ids)))).all()
        for row in rows:
            row.passage_id = None
            session.add(row)
    session.flush()


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

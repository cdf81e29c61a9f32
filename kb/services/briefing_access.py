"""Who a briefing is built as and who may see it: the effective principal, the reviews a
briefing draws on (its sources), visibility of those now, and the audit of restricted use.

A briefing is printed, e-mailed and shown on screens, so it must never carry unpublished or
embargoed material unless the principal may see it *and* asked for it. Stored briefings are only
shown to principals who can see all their sources *now* (a review may be embargoed after a
briefing was saved), and restricted ones only to principals who see restricted material at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from kb.models import (
    Briefing,
    Review,
    ReviewStatus,
    Role,
)
from kb.services.access import Principal, can_see, visible_reviews
from kb.services.audit import record
from kb.services.briefing_model import BriefingDraft
from kb.services.reviews import NotFound

if TYPE_CHECKING:
    pass


def effective_principal(principal: Principal, *, include_restricted: bool) -> Principal:
    """The principal a briefing is built as: published-only unless restricted material was
    asked for *and* the caller may see it (then their own visibility applies)."""
    if include_restricted and principal.sees_restricted:
        return principal
    return Principal(username=principal.username, role=Role.VIEWER)


def usable_review(
    session: Session, principal: Principal, viewer: Principal, review_id: int
) -> Review:
    """The review, if the effective principal may use it. A caller who could see it but did not
    ask for restricted material is told why; anyone else just hears "not found"."""
    review = session.get(Review, review_id)
    if review is not None and can_see(viewer, review):
        return review
    if review is not None and can_see(principal, review):
        raise NotFound(
            f"review {review_id} is not published: include restricted material to brief on it"
        )
    raise NotFound(f"review {review_id} not found")


# --------------------------------------------------------------------------- sources, access


def review_labels(
    session: Session, ids: Iterable[int], known: Mapping[int, Review]
) -> dict[int, str]:
    """Citation labels (pseudonyms) for review ids, from memory where possible."""
    ids = set(ids)
    labels = {rid: known[rid].pseudonym for rid in ids if rid in known}
    missing = ids - set(labels)
    if missing:
        for rid, pseudonym in session.exec(
            select(Review.id, Review.pseudonym).where(col(Review.id).in_(missing))
        ).all():
            labels[rid] = pseudonym
    return {rid: labels.get(rid, f"review {rid}") for rid in ids}


def draft_source_ids(draft: BriefingDraft) -> set[int]:
    return source_ids(draft.review_id, draft.sections_json())


def source_ids(review_id: int | None, sections: Sequence[Mapping[str, Any]]) -> set[int]:
    """Every review a briefing draws on: its subject, cited reviews and counted reviews."""
    ids = {review_id} if review_id is not None else set()
    for section in sections:
        ids |= {int(s["review_id"]) for s in section.get("sources", [])}
        ids |= {int(i["review_id"]) for i in section.get("items", []) if i.get("review_id")}
    return ids


def any_unpublished(session: Session, review_ids: set[int]) -> bool:
    if not review_ids:
        return False
    statuses = session.exec(select(Review.status).where(col(Review.id).in_(review_ids))).all()
    return any(status != ReviewStatus.PUBLISHED for status in statuses)


def visible_ids(session: Session, principal: Principal, review_ids: set[int]) -> set[int]:
    """The subset of ``review_ids`` the principal may see now."""
    if not review_ids:
        return set()
    return set(
        session.exec(
            select(Review.id)
            .where(col(Review.id).in_(review_ids))
            .where(visible_reviews(principal))
        ).all()
    )


def all_visible(session: Session, principal: Principal, review_ids: set[int]) -> bool:
    return review_ids <= visible_ids(session, principal, review_ids)


def may_see(session: Session, principal: Principal, briefing: Briefing) -> bool:
    """Restricted briefings need a principal who sees restricted material, and every briefing
    needs all its sources visible now: a review embargoed after saving hides its briefings."""
    if briefing.restricted and not principal.sees_restricted:
        return False
    return all_visible(session, principal, source_ids(briefing.review_id, briefing.sections))


def subject_of(draft: BriefingDraft | Briefing) -> str:
    return f"theme:{draft.theme_id}" if draft.theme_id else f"review:{draft.review_id}"


def audit_use(
    session: Session, principal: Principal, action: str, object_id: str, review_ids: set[int]
) -> None:
    """Who used restricted material: ids only, never document text."""
    detail = {"reviews": sorted(review_ids)} if review_ids else None
    if detail and len(str(detail)) > 250:
        detail = {"reviews_count": len(review_ids)}
    record(
        session,
        principal=principal,
        action=action,
        object_type="briefing",
        object_id=object_id,
        detail=detail,
    )

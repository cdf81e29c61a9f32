"""Reading reviews back: the lists and detail views the CLI, API and web pages share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, func, or_, select

from kb.models import (
    Partnership,
    Passage,
    Review,
    ReviewPublic,
    ReviewStatus,
    ReviewType,
    TagStatus,
    ThemeTag,
)
from kb.services import audit
from kb.services.access import Principal, can_edit, can_see, visibility_key, visible_reviews
from kb.services.cache import RESULTS, data_fingerprint
from kb.services.errors import Conflict, Forbidden


class NotFound(LookupError):
    """The object does not exist *for this principal* (hidden reviews are not found)."""


SORTS = {
    "added": "Order added",
    "newest": "Newest year first",
    "oldest": "Oldest year first",
    "name": "Name (A–Z)",
    "passages": "Most passages",
}


@dataclass(frozen=True)
class ReviewFilter:
    """What the reviews list is narrowed to (all optional) and how it is sorted.

    ``q`` matches the pseudonym or title (case-insensitive); ``theme`` keeps reviews with at
    least one tag of that theme that nobody rejected.
    """

    q: str = ""
    review_type: ReviewType | None = None
    partnership: str | None = None
    year: int | None = None
    status: ReviewStatus | None = None
    theme: str | None = None
    sort: str = "added"

    def active(self) -> bool:
        """Whether any filter (not the sort) is set: the page opens its filter box then."""
        return bool(
            self.q or self.review_type or self.partnership or self.year or self.status or self.theme
        )


def list_reviews(
    session: Session,
    *,
    principal: Principal,
    offset: int = 0,
    limit: int | None = None,
    filters: ReviewFilter | None = None,
) -> list[ReviewPublic]:
    """Reviews the principal may see, with passage counts: oldest first, or as ``filters`` say."""
    filters = filters or ReviewFilter()
    counts = (
        select(Passage.review_id, func.count(col(Passage.id)).label("n"))
        .group_by(col(Passage.review_id))
        .subquery()
    )
    query = (
        select(Review, Partnership.name, counts.c.n)
        .join(Partnership, col(Review.partnership_id) == Partnership.id, isouter=True)
        .join(counts, counts.c.review_id == Review.id, isouter=True)
        .where(visible_reviews(principal), *_conditions(filters))
        .order_by(*_order(filters.sort, counts.c.n))
        .offset(offset)
    )
    if limit is not None:
        query = query.limit(limit)
    return [
        _public(review, partnership, n or 0) for review, partnership, n in session.exec(query).all()
    ]


def _conditions(filters: ReviewFilter) -> list[Any]:
    out: list[Any] = []
    if filters.q:
        pattern = f"%{filters.q.lower()}%"
        out.append(
            or_(
                func.lower(col(Review.pseudonym)).like(pattern),
                func.lower(func.coalesce(col(Review.title), "")).like(pattern),
            )
        )
    if filters.review_type:
        out.append(col(Review.type) == filters.review_type)
    if filters.partnership:
        out.append(func.lower(col(Partnership.name)) == filters.partnership.lower())
    if filters.year:
        out.append(col(Review.year) == filters.year)
    if filters.status:
        out.append(col(Review.status) == filters.status)
    if filters.theme:
        tagged = select(ThemeTag.review_id).where(
            ThemeTag.theme_id == filters.theme, col(ThemeTag.status) != TagStatus.REJECTED
        )
        out.append(col(Review.id).in_(tagged))
    return out


def _order(sort: str, passages: Any) -> list[Any]:
    """ORDER BY for a SORTS key, always ending on the id so pages never shuffle."""
    if sort == "newest":
        return [col(Review.year).desc().nulls_last(), col(Review.id)]
    if sort == "oldest":
        return [col(Review.year).asc().nulls_last(), col(Review.id)]
    if sort == "name":
        return [func.lower(col(Review.pseudonym)), col(Review.id)]
    if sort == "passages":
        return [func.coalesce(passages, 0).desc(), col(Review.id)]
    return [col(Review.id)]


def get_review(session: Session, *, principal: Principal, review_id: int) -> Review:
    """The review, or NotFound when it does not exist or the principal may not see it."""
    review = session.get(Review, review_id)
    if review is None or not can_see(principal, review):
        raise NotFound(f"review {review_id} not found")
    return review


def set_review_status(
    session: Session,
    *,
    principal: Principal,
    review_id: int,
    status: ReviewStatus,
    expected_version: int | None = None,
) -> Review:
    """Change a review's publication status: its own audited action, never a side effect.

    Why not part of ingest: publishing (or embargoing) decides who may read a review, so it is
    done deliberately by a panel member of the review's partnership or an admin, and recorded.
    Hidden reviews are NotFound; visible ones the principal may not edit are Forbidden.
    """
    review = get_review(session, principal=principal, review_id=review_id)
    if not can_edit(principal, review):
        raise Forbidden("only the review's own panel or an admin may change its status")
    if expected_version is not None and review.version_id != expected_version:
        raise Conflict(f"review {review_id} changed since you read it: reload and try again")
    previous = review.status
    if previous != status:
        review.status = status
        review.version_id += 1
        session.add(review)
        session.flush()
    audit.record(
        session,
        principal=principal,
        action="review.status",
        object_type="review",
        object_id=review.id,
        detail={"from": str(previous), "to": str(status), "version": review.version_id},
    )
    return review


def review_detail(
    session: Session, *, principal: Principal, review_id: int, audit_via: str | None = None
) -> dict[str, Any]:
    """A review with its sections and passages in reading order; reading a restricted one is
    audited when ``audit_via`` names the channel (api, web, ...)."""
    review = get_review(session, principal=principal, review_id=review_id)
    if audit_via:
        summary = {"id": review.id, "status": review.status}
        audit.record_review_view(session, principal=principal, review=summary, via=audit_via)
    passages = session.exec(
        select(Passage).where(Passage.review_id == review.id).order_by(col(Passage.order))
    ).all()
    partnership = session.get(Partnership, review.partnership_id) if review.partnership_id else None
    public = _public(review, partnership.name if partnership else None, len(passages))
    sections: list[dict[str, Any]] = []
    for passage in passages:
        if not sections or sections[-1]["title"] != passage.section_title:
            sections.append(
                {"title": passage.section_title, "kind": passage.section_kind, "passages": []}
            )
        sections[-1]["passages"].append(
            {
                "id": passage.id,
                "text": passage.text,
                "start": passage.start,
                "end": passage.end,
                "role": passage.role,
                "role_source": passage.role_source,
                "role_confidence": passage.role_confidence,
            }
        )
    return {
        **review_summary(public),
        "period": review.period,
        "type_source": review.type_source,
        "case": case_of(session, principal, review),
        "sections": sections,
    }


def case_of(session: Session, principal: Principal, review: Review) -> dict[str, Any] | None:
    """The review's case with the other reviews in it the principal may see, or None (also
    when the principal may see none of them)."""
    if review.case_id is None:
        return None
    others = session.exec(
        select(Review)
        .where(Review.case_id == review.case_id, Review.id != review.id)
        .order_by(col(Review.id))
    ).all()
    linked = [
        {
            "id": r.id,
            "type": str(r.type),
            "pseudonym": r.pseudonym,
            "title": r.title,
            "year": r.year,
        }
        for r in others
        if can_see(principal, r)
    ]
    if not linked:
        return None  # a case whose other documents are hidden must not hint that they exist
    return {"id": review.case_id, "source": review.case_source, "reviews": linked}


def review_summary(review: ReviewPublic) -> dict[str, Any]:
    """The stable JSON shape of one review in ``kb reviews list --json``."""
    return {
        "id": review.id,
        "type": str(review.type),
        "pseudonym": review.pseudonym,
        "title": review.title,
        "partnership": review.partnership,
        "year": review.year,
        "year_inferred": review.year_inferred,
        "case_id": review.case_id,
        "status": str(review.status),
        "age_band": str(review.age_band) if review.age_band else None,
        "document_id": review.document_id,
        "passages": review.passages,
    }


def _public(review: Review, partnership: str | None, passages: int) -> ReviewPublic:
    return ReviewPublic.model_validate(
        review, update={"partnership": partnership, "passages": passages}
    )


def review_facets(session: Session, *, principal: Principal) -> dict[str, list[Any]]:
    """Partnership names and years of the reviews the principal may see (filter dropdowns).

    Two small DISTINCT queries instead of listing every review with its passage count, cached
    per visibility key and data fingerprint.
    """
    key = ("review_facets", visibility_key(principal), data_fingerprint(session))
    return RESULTS.get_or_compute(session, key, lambda: _review_facets(session, principal))


def _review_facets(session: Session, principal: Principal) -> dict[str, list[Any]]:
    partnerships = session.exec(
        select(Partnership.name)
        .join(Review, col(Review.partnership_id) == Partnership.id)
        .where(visible_reviews(principal))
        .distinct()
    ).all()
    years = session.exec(
        select(Review.year)
        .where(visible_reviews(principal), col(Review.year).is_not(None))
        .distinct()
    ).all()
    return {
        "partnerships": sorted(name for name in partnerships if name),
        "years": sorted(year for year in years if year is not None),
    }


def review_statuses(
    session: Session, *, principal: Principal, review_ids: list[int], audit_via: str | None = None
) -> dict[int, str]:
    """Review id → status for many reviews in one query; NotFound if any is hidden or gone.

    With ``audit_via``, each restricted one counts as viewed (search hits quote their reviews).
    """
    rows = session.exec(
        select(Review.id, Review.status).where(
            col(Review.id).in_(review_ids), visible_reviews(principal)
        )
    ).all()
    found = {int(rid): str(status) for rid, status in rows if rid is not None}
    missing = [rid for rid in review_ids if rid not in found]
    if missing:
        raise NotFound(f"review {missing[0]} not found")
    if audit_via:
        for rid, status in found.items():
            review = {"id": rid, "status": status}
            audit.record_review_view(session, principal=principal, review=review, via=audit_via)
    return found


def review_pseudonyms(
    session: Session, *, principal: Principal, review_ids: list[int]
) -> dict[int, str]:
    """Review id → pseudonym for those the principal may see (exports name reviews, not ids)."""
    if not review_ids:
        return {}
    rows = session.exec(
        select(Review.id, Review.pseudonym).where(
            col(Review.id).in_(review_ids), visible_reviews(principal)
        )
    ).all()
    return {int(rid): name for rid, name in rows if rid is not None}

"""Reviews: the list, one review with its passages, and its theme tags.

Each endpoint is a thin wrapper over a *data function* (``reviews_page``, ``review_data``,
``tags_data``) that the web pages call too: one service call, rendered as JSON here and as HTML
in web/routes.py (datasette style). Hidden reviews raise NotFound, which the app turns into 404.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlmodel import Session

from api.deps import CurrentPrincipal, SessionDep
from kb.models import ReviewStatus, ReviewType, ThemeTagPublic
from kb.services.access import Principal
from kb.services.reviews import (
    ReviewFilter,
    list_reviews,
    review_detail,
    review_summary,
    set_review_status,
)
from kb.services.tagging import review_tags

router = APIRouter(tags=["reviews"])

MAX_LIMIT = 200


class ReviewSummary(BaseModel):
    id: int
    type: str
    pseudonym: str
    title: str | None
    partnership: str | None
    year: int | None
    status: str
    age_band: str | None
    document_id: int
    passages: int
    year_inferred: bool = False
    case_id: int | None = None


class ReviewPage(BaseModel):
    items: list[ReviewSummary]
    total: int
    offset: int
    limit: int


class PassageOut(BaseModel):
    id: int
    text: str
    start: int
    end: int
    role: str = "other"
    role_source: str = "model"
    role_confidence: float = 0.0


class SectionOut(BaseModel):
    title: str
    kind: str
    passages: list[PassageOut]


class LinkedReview(BaseModel):
    id: int
    type: str
    pseudonym: str
    title: str | None
    year: int | None


class CaseOut(BaseModel):
    id: int
    source: str | None
    reviews: list[LinkedReview]


class ReviewDetail(ReviewSummary):
    period: str | None = None
    type_source: str = "inferred"
    case: CaseOut | None = None
    sections: list[SectionOut]


# --------------------------------------------------------------------------- data functions


def reviews_page(
    session: Session,
    principal: Principal,
    *,
    offset: int,
    limit: int,
    filters: ReviewFilter | None = None,
) -> ReviewPage:
    """One page of the reviews ``principal`` may see (narrowed by ``filters``), with the total."""
    # list_reviews has no count yet; visible reviews number in the hundreds, so slicing the
    # full (already access-filtered) list is cheap and keeps counts consistent with the items.
    everything = list_reviews(session, principal=principal, filters=filters)
    items = [ReviewSummary(**review_summary(r)) for r in everything[offset : offset + limit]]
    return ReviewPage(items=items, total=len(everything), offset=offset, limit=limit)


def review_data(
    session: Session, principal: Principal, review_id: int, *, audit_via: str | None
) -> dict[str, Any]:
    """review_detail, audited when the review is unpublished or embargoed."""
    return review_detail(session, principal=principal, review_id=review_id, audit_via=audit_via)


def tags_data(
    session: Session, principal: Principal, review_id: int, *, audit_via: str | None
) -> list[ThemeTagPublic]:
    """review_tags; the evidence quotes the review, so reading it is audited like a view."""
    return review_tags(session, principal=principal, review_id=review_id, audit_via=audit_via)


# --------------------------------------------------------------------------- routes


@router.get("/reviews")
def read_reviews(
    session: SessionDep,
    principal: CurrentPrincipal,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    q: Annotated[str, Query(max_length=200)] = "",
    type: Annotated[ReviewType | None, Query()] = None,  # noqa: A002 - the public name
    partnership: Annotated[str | None, Query(max_length=200)] = None,
    year: Annotated[int | None, Query(ge=1900, le=2100)] = None,
    status: Annotated[ReviewStatus | None, Query()] = None,
    theme: Annotated[str | None, Query(max_length=100)] = None,
    sort: Annotated[Literal["added", "newest", "oldest", "name", "passages"], Query()] = "added",
) -> ReviewPage:
    """Reviews you may see, oldest first, optionally searched (pseudonym or title), filtered
    and sorted as the reviews page does."""
    filters = ReviewFilter(
        q=q.strip(),
        review_type=type,
        partnership=partnership or None,
        year=year,
        status=status,
        theme=theme or None,
        sort=sort,
    )
    return reviews_page(session, principal, offset=offset, limit=limit, filters=filters)


@router.get("/reviews/{review_id}", responses={404: {"description": "No such review for you"}})
def read_review(session: SessionDep, principal: CurrentPrincipal, review_id: int) -> ReviewDetail:
    """One review with its sections and passages (viewing a restricted one is audited)."""
    return ReviewDetail(**review_data(session, principal, review_id, audit_via="api"))


@router.get("/reviews/{review_id}/tags", responses={404: {"description": "No such review for you"}})
def read_review_tags(
    session: SessionDep, principal: CurrentPrincipal, review_id: int
) -> list[ThemeTagPublic]:
    """Every theme tag on the review's passages, with evidence offsets and decision state."""
    return tags_data(session, principal, review_id, audit_via="api-tags")


class ReviewStatusIn(BaseModel):
    status: ReviewStatus
    version: int | None = Field(default=None, ge=1, description="Refuse if changed since.")


class ReviewStatusOut(BaseModel):
    id: int
    status: str
    version: int


@router.post(
    "/reviews/{review_id}/status",
    responses={
        403: {"description": "Not your partnership's review"},
        404: {"description": "No such review for you"},
        409: {"description": "Changed since you read it"},
    },
)
def change_review_status(
    session: SessionDep, principal: CurrentPrincipal, review_id: int, body: ReviewStatusIn
) -> ReviewStatusOut:
    """Publish or embargo a review (its partnership's panel or an admin; audited)."""
    review = set_review_status(
        session,
        principal=principal,
        review_id=review_id,
        status=body.status,
        expected_version=body.version,
    )
    return ReviewStatusOut(id=review_id, status=str(review.status), version=review.version_id)

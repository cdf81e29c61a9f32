"""Corrections to what a document is: its kind, its passages' roles, the case it belongs to.

Thin wrappers over kb/services (review_kinds, roles, cases), which decide who may change what
(hidden → 404, not a panel member of that partnership nor an admin → 403) and audit each change.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from api.deps import CurrentPrincipal, SessionDep
from kb.services.cases import link_reviews, unlink_review
from kb.services.review_kinds import set_review_type
from kb.services.reviews import NotFound
from kb.services.roles import set_passage_role

router = APIRouter(tags=["reviews"])

EDIT = {
    400: {"description": "An unknown role or kind, or a review linked to itself"},
    403: {"description": "Only panel members of the review's partnership and admins may edit"},
    404: {"description": "No such review or passage for you"},
}


class RoleEdit(BaseModel):
    role: str = Field(max_length=30)


class KindEdit(BaseModel):
    type: str = Field(max_length=30)


class CaseLink(BaseModel):
    other_review_id: int


@router.put("/reviews/{review_id}/passages/{passage_id}/role", responses=EDIT)
def put_passage_role(
    session: SessionDep,
    principal: CurrentPrincipal,
    review_id: int,
    passage_id: int,
    body: RoleEdit,
) -> dict[str, Any]:
    """Set or confirm a passage's role (front_matter, finding, recommendation, ...)."""
    try:
        passage = set_passage_role(
            session, principal=principal, passage_id=passage_id, role=body.role
        )
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from exc
    if passage.review_id != review_id:
        raise NotFound(f"passage {passage_id} not found")
    return {"id": passage.id, "role": passage.role, "role_source": passage.role_source}


@router.put("/reviews/{review_id}/type", responses=EDIT)
def put_review_type(
    session: SessionDep, principal: CurrentPrincipal, review_id: int, body: KindEdit
) -> dict[str, Any]:
    """Correct the document's kind; the correction survives re-ingest."""
    try:
        review = set_review_type(
            session, principal=principal, review_id=review_id, review_type=body.type
        )
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from exc
    return {"id": review.id, "type": review.type.value, "type_source": review.type_source}


@router.post("/reviews/{review_id}/case", responses=EDIT)
def post_case_link(
    session: SessionDep, principal: CurrentPrincipal, review_id: int, body: CaseLink
) -> dict[str, Any]:
    """Say this review and another are about the same child: they share one case."""
    try:
        case = link_reviews(
            session, principal=principal, review_id=review_id, other_review_id=body.other_review_id
        )
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from exc
    return {"case_id": case.id, "review_ids": sorted({review_id, body.other_review_id})}


@router.delete("/reviews/{review_id}/case", responses=EDIT)
def delete_case_link(
    session: SessionDep, principal: CurrentPrincipal, review_id: int
) -> dict[str, Any]:
    """Take this review out of its case (matching will not link it again)."""
    review = unlink_review(session, principal=principal, review_id=review_id)
    return {"id": review.id, "case_id": review.case_id}

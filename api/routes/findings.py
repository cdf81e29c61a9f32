"""Findings and recommendations extracted from a review, and people's corrections to them.

Extraction is automatic (at ingest); a correction marks the row edited so that re-extraction
after a new version of the document keeps it. Who may correct what is decided in
kb/services/findings.py (hidden → 404, not an editor of that partnership → 403).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from api.deps import CurrentPrincipal, SessionDep
from kb.models import FindingPublic, RecommendationPublic
from kb.services.findings import review_learning, update_finding, update_recommendation

router = APIRouter(tags=["findings"])

HIDDEN = {404: {"description": "No such review, finding or recommendation for you"}}
EDIT = {
    **HIDDEN,
    400: {"description": "Empty text or an unknown theme id"},
    403: {"description": "Only panel members of the review's partnership and admins may edit"},
}


class LearningEdit(BaseModel):
    """A correction: new text and / or the complete list of theme ids."""

    text: str | None = Field(default=None, max_length=10_000)
    themes: list[str] | None = Field(default=None, max_length=50)


@router.get("/reviews/{review_id}/findings", responses=HIDDEN)
def get_review_learning(
    session: SessionDep, principal: CurrentPrincipal, review_id: int
) -> dict[str, Any]:
    """The review's findings and numbered recommendations, with their themes."""
    return review_learning(session, principal=principal, review_id=review_id)


@router.patch("/findings/{finding_id}", responses=EDIT)
def patch_finding(
    session: SessionDep, principal: CurrentPrincipal, finding_id: int, body: LearningEdit
) -> FindingPublic:
    """Correct a finding's text or themes."""
    try:
        row = update_finding(
            session, principal=principal, finding_id=finding_id, text=body.text, themes=body.themes
        )
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from exc
    return row


@router.patch("/recommendations/{recommendation_id}", responses=EDIT)
def patch_recommendation(
    session: SessionDep, principal: CurrentPrincipal, recommendation_id: int, body: LearningEdit
) -> RecommendationPublic:
    """Correct a recommendation's text or themes (its tracker links are kept)."""
    try:
        row = update_recommendation(
            session,
            principal=principal,
            recommendation_id=recommendation_id,
            text=body.text,
            themes=body.themes,
        )
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from exc
    return row

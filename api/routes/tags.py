"""Confirming and rejecting suggested theme tags (optimistic locking: send the version you saw)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlmodel import Session

from api.deps import CurrentPrincipal, SessionDep
from kb.models import TagStatus, ThemeTagPublic
from kb.services.access import Principal
from kb.services.tagging import decide_tag

router = APIRouter(tags=["tags"])

CONFLICT = {409: {"description": "Someone changed the tag since you read it: reload"}}


class TagDecisionIn(BaseModel):
    version: int = Field(ge=1, description="The tag's version_id when you read it.")


def decide(
    session: Session, principal: Principal, tag_id: int, status: TagStatus, version: int
) -> ThemeTagPublic:
    """The data function behind the API route and the web form.

    Who may decide (panel of the review's partnership, or an admin) and the audit event live in
    :func:`kb.services.tagging.decide_tag`, so ``kb tags confirm`` follows the same rule.
    """
    return decide_tag(
        session, principal=principal, tag_id=tag_id, status=status, expected_version=version
    )


@router.post("/tags/{tag_id}/confirm", responses=CONFLICT)
def confirm_tag(
    session: SessionDep, principal: CurrentPrincipal, tag_id: int, body: TagDecisionIn
) -> ThemeTagPublic:
    """Confirm a theme tag: it becomes a training label and survives re-tagging."""
    return decide(session, principal, tag_id, TagStatus.CONFIRMED, body.version)


@router.post("/tags/{tag_id}/reject", responses=CONFLICT)
def reject_tag(
    session: SessionDep, principal: CurrentPrincipal, tag_id: int, body: TagDecisionIn
) -> ThemeTagPublic:
    """Reject a theme tag: it is never suggested again for this passage."""
    return decide(session, principal, tag_id, TagStatus.REJECTED, body.version)

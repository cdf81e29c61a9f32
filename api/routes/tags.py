"""Confirming and rejecting suggested theme tags (optimistic locking: send the version you saw)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field
from sqlmodel import Session

from api.deps import CurrentPrincipal, SessionDep
from kb.models import Role, TagStatus, ThemeTagPublic
from kb.services import audit
from kb.services.access import Principal
from kb.services.tagging import decide_tag

router = APIRouter(tags=["tags"])

DECIDERS = (Role.PANEL, Role.ADMIN)
CONFLICT = {409: {"description": "Someone changed the tag since you read it: reload"}}


class TagDecisionIn(BaseModel):
    version: int = Field(ge=1, description="The tag's version_id when you read it.")


def decide(
    session: Session, principal: Principal, tag_id: int, status: TagStatus, version: int
) -> ThemeTagPublic:
    """The data function behind the API route and the web form: decide, then audit.

    Viewers read; only panel members and admins decide (their decisions train the model).
    """
    if principal.role not in DECIDERS:
        raise HTTPException(403, "only panel members and admins may confirm or reject themes")
    tag = decide_tag(
        session, principal=principal, tag_id=tag_id, status=status, expected_version=version
    )
    audit.record(
        session,
        principal=principal,
        action=f"tag.{'confirm' if status == TagStatus.CONFIRMED else 'reject'}",
        object_type="theme_tag",
        object_id=tag.id,
        detail={"review": tag.review_id, "theme": tag.theme_id, "version": tag.version_id},
    )
    return tag


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

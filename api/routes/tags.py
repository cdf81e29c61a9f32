"""Confirming and rejecting suggested theme tags (optimistic locking: send the version you saw)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlmodel import Session

from api.deps import CurrentPrincipal, SessionDep
from kb.models import TagStatus, ThemeTagPublic
from kb.services.access import Principal
from kb.services.tagging import decide_tag, tags_to_check, theme_precision, uncertainty

__all__ = ["precision_data", "queue_data", "uncertainty"]

router = APIRouter(tags=["tags"])

CONFLICT = {409: {"description": "Someone changed the tag since you read it: reload"}}


class TagDecisionIn(BaseModel):
    version: int = Field(ge=1, description="The tag's version_id when you read it.")


class TagQueue(BaseModel):
    """Suggestions most worth a decision, and each theme's precision measured from decisions."""

    tags: list[ThemeTagPublic]
    precision: dict[str, dict[str, Any]]


MAX_QUEUE = 200


def precision_data(session: Session, principal: Principal) -> dict[str, dict[str, Any]]:
    """Per-theme precision measured from the decisions ``principal`` may see."""
    return theme_precision(session, principal=principal)


def queue_data(session: Session, principal: Principal, *, limit: int = 50) -> TagQueue:
    """The data function behind the API route and the "Tags to check" page.

    Reading the queue is audited by the service (its evidence quotes unpublished reviews).
    """
    tags = tags_to_check(session, principal=principal, limit=limit)
    return TagQueue(tags=tags, precision=theme_precision(session, principal=principal))


@router.get("/tags/queue")
def read_tag_queue(
    session: SessionDep,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=MAX_QUEUE)] = 50,
) -> TagQueue:
    """Suggested tags ordered by uncertainty (confidence nearest 0.5 first), with per-theme
    precision from the confirmations and rejections so far."""
    return queue_data(session, principal, limit=limit)


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

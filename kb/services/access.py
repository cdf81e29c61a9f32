"""Who may see which reviews: the single rule every query goes through.

Embargoed and unpublished reviews must be invisible to anyone without the right role
*everywhere* (search hits, snippets, counts, exports, briefings, logs). Rather than filtering
results after the fact, every service builds its queries with ``visible_reviews(principal)`` so a
hidden review never enters a ranking, a count or a snippet in the first place.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, false, or_, true
from sqlmodel import col

from kb.models import Review, ReviewStatus, Role


@dataclass(frozen=True, slots=True)
class Principal:
    """The person (or process) a service call acts for."""

    username: str | None
    role: Role
    partnership_id: int | None = None

    @classmethod
    def system(cls) -> Principal:
        """The local operator running ``kb`` against their own database: sees everything."""
        return cls(username="system", role=Role.ADMIN)

    @classmethod
    def anonymous(cls) -> Principal:
        """Someone not logged in: published material only."""
        return cls(username=None, role=Role.VIEWER)

    @property
    def sees_restricted(self) -> bool:
        """Whether this principal may see any unpublished review at all."""
        return self.role in (Role.ADMIN, Role.PANEL)


def visibility_key(principal: Principal) -> tuple[str, int | None]:
    """What :func:`visible_reviews` depends on (role and partnership): the part of a cache key
    that keeps one principal's cached results from ever serving another who sees less."""
    return (str(principal.role), principal.partnership_id)


def visible_reviews(principal: Principal) -> ColumnElement[bool]:
    """SQL condition on ``Review`` selecting the reviews ``principal`` may see."""
    published = col(Review.status) == ReviewStatus.PUBLISHED
    if principal.role == Role.ADMIN:
        return true()
    if principal.role == Role.PANEL and principal.partnership_id is not None:
        return or_(published, col(Review.partnership_id) == principal.partnership_id)
    return or_(published, false())


def can_see(principal: Principal, review: Review) -> bool:
    """Python twin of :func:`visible_reviews` for a review already loaded."""
    if review.status == ReviewStatus.PUBLISHED or principal.role == Role.ADMIN:
        return True
    return (
        principal.role == Role.PANEL
        and principal.partnership_id is not None
        and review.partnership_id == principal.partnership_id
    )


def can_edit(principal: Principal, review: Review) -> bool:
    """Whether ``principal`` may change ``review`` or anything that belongs to it (a new version
    of its document, its status): an admin, or a panel member of the review's partnership.
    Seeing a published review is not enough, and neither is being on some other panel."""
    if principal.role == Role.ADMIN:
        return True
    return (
        principal.role == Role.PANEL
        and principal.partnership_id is not None
        and review.partnership_id == principal.partnership_id
    )

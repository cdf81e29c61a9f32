"""A person corrects a document's kind (an SCR that is really a newsletter), audited.

The correction is marked ``type_source = "person"`` so re-ingesting a changed version of the
file keeps it (kb/services/ingest.py) instead of re-inferring the kind from the text.
"""

from __future__ import annotations

from sqlmodel import Session

from kb.models import Review, ReviewType
from kb.services import audit
from kb.services.access import Principal
from kb.services.errors import Forbidden
from kb.services.reviews import get_review
from kb.services.tracker import edit_refusal


def set_review_type(
    session: Session, *, principal: Principal, review_id: int, review_type: str
) -> Review:
    """Set a review's kind; ValueError naming the allowed kinds for an unknown one."""
    try:
        chosen = ReviewType(review_type)
    except ValueError:
        allowed = ", ".join(t.value for t in ReviewType)
        raise ValueError(f"unknown document kind {review_type!r}; use one of: {allowed}") from None
    review = get_review(session, principal=principal, review_id=review_id)
    refusal = edit_refusal(principal, review.partnership_id)
    if refusal is not None:
        raise Forbidden(refusal.replace("actions", "reviews"))
    before = review.type
    review.type, review.type_source = chosen, "person"
    review.version_id += 1
    session.add(review)
    audit.record(
        session,
        principal=principal,
        action="set_type",
        object_type="review",
        object_id=review.id,
        detail={"from": before.value, "to": chosen.value},
    )
    session.flush()
    return review

"""The audit trail: who viewed restricted reviews and who changed what.

Changes are audited in the changing transaction (both stand or neither does). Views are not:
a search or a page is a read, and its audit line must not turn it into a write that waits
for, or fails on, a lock someone else holds (a long ingest on SQLite). So views are written
by :mod:`kb.services.audit_reads` in a transaction of their own, at once when the database
is free and from a background queue when it is busy.

Why: partnerships must be able to answer "who has read this embargoed review?" and "who confirmed
this theme?". Why so little detail: the audit log is read by administrators and exported for
scrutiny, so it must never become a second copy of the documents. Callers pass ids, actions and
short enum-like details only; :func:`record` refuses anything that looks like prose.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlmodel import Session, col, select

from kb.models import AuditEvent, ReviewStatus
from kb.services.access import Principal
from kb.services.audit_reads import record_read

MAX_DETAIL = 300


class AuditDetailError(ValueError):
    """A caller tried to put free text (possibly document text) into the audit log."""


def record(
    session: Session,
    *,
    principal: Principal,
    action: str,
    object_type: str,
    object_id: int | str | None,
    detail: str | Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Add one audit event to the caller's transaction (it commits or rolls back with the change).

    ``detail`` is a short ``key=value`` string or a mapping of ids / statuses, never text taken
    from a document.
    """
    event = _event(principal, action, object_type, object_id, detail)
    session.add(event)
    session.flush()
    return event


def _event(
    principal: Principal,
    action: str,
    object_type: str,
    object_id: int | str | None,
    detail: str | Mapping[str, Any] | None,
) -> AuditEvent:
    return AuditEvent(
        username=principal.username,
        action=action[:50],
        object_type=object_type[:50],
        object_id=None if object_id is None else str(object_id)[:100],
        detail=_detail_text(detail),
    )


def _detail_text(detail: str | Mapping[str, Any] | None) -> str | None:
    if detail is None:
        return None
    if isinstance(detail, Mapping):
        detail = " ".join(f"{key}={_scalar(value)}" for key, value in detail.items())
    if len(detail) > MAX_DETAIL or "\n" in detail:
        raise AuditDetailError("audit detail must be a short key=value line, not free text")
    return detail


def _scalar(value: Any) -> str:
    if isinstance(value, list | tuple | set):
        return ",".join(str(v) for v in value)
    return str(getattr(value, "value", value))


def record_review_view(
    session: Session, *, principal: Principal, review: Mapping[str, Any], via: str
) -> AuditEvent | None:
    """Log a view of an unpublished or embargoed review (published ones are public anyway).

    ``review`` is the summary dict every review service returns (``id`` and ``status``).
    """
    if str(review["status"]) == ReviewStatus.PUBLISHED.value:
        return None
    event = _event(
        principal, "review.view", "review", review["id"], {"status": review["status"], "via": via}
    )
    record_read(session.get_bind(), event)  # type: ignore[arg-type]
    return event


def recent_events(
    session: Session, *, limit: int = 100, username: str | None = None
) -> list[AuditEvent]:
    """Newest events first (for an admin page or ``kb audit`` later)."""
    query = select(AuditEvent).order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc())
    if username is not None:
        query = query.where(AuditEvent.username == username)
    return list(session.exec(query.limit(limit)).all())

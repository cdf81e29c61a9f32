"""Passage roles in the knowledge base: assigned at ingest, corrected by people, audited.

The classifier itself is pure (nlp/roles.py); ingest runs it with the document's layout
(corpus/passage_layout.py) before its write (kb/services/ingest_analysis.py) with the model
:func:`current_model` gives. This module keeps people's decisions (``role_source ==
"person"`` is never overwritten, and survives re-ingest of an unchanged passage), and feeds
confirmed roles back into training so the model learns the documents this deployment holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from threading import Lock

from sqlmodel import Session, col, func, select

from kb.models import Document, Passage, PassageRole, Review
from kb.services import audit
from kb.services.access import Principal
from kb.services.errors import Forbidden
from kb.services.findings import extract_findings
from kb.services.reviews import NotFound, get_review
from kb.services.tracker import edit_refusal
from nlp.roles import RoleInput, RoleModel, default_model, train
from nlp.roles_features import Unit, lead_of

PERSON = "person"
#: Fewer confirmations than this and the bundled model is used as it is: a handful of examples
#: would shift it by noise, and retraining costs a second.
MIN_CONFIRMED_TO_RETRAIN = 5

_model_lock = Lock()
_model_cache: dict[str, RoleModel] = {}


def _input_of(
    passage: Passage, doc_kind: str, length: int, lead: tuple[str, int] = ("", -1)
) -> RoleInput:
    return RoleInput(
        text=passage.text,
        section_title=passage.section_title,
        section_kind=passage.section_kind,
        kind=passage.kind,
        position=passage.start / max(1, length),
        doc_kind=doc_kind,
        lead=lead[0],
        run=lead[1],
    )


def _leads(session: Session, passages: Sequence[Passage]) -> dict[int, tuple[str, int]]:
    """Lead-in of each stored passage, rebuilt from its document's other passages.

    Why: a confirmed role trains the model with the same context it has at ingest; the lead-in
    is not stored, but the passages before it (and the section titles between them) are.
    """
    out: dict[int, tuple[str, int]] = {}
    for document_id in {p.document_id for p in passages}:
        rows = session.exec(
            select(Passage.id, Passage.start, Passage.text, Passage.kind, Passage.section_title)
            .where(Passage.document_id == document_id)
            .order_by(col(Passage.start))
        ).all()
        units: list[Unit] = []
        positions: dict[int, int] = {}
        title = None
        for pid, start, text, kind, section_title in rows:
            if section_title != title:
                title = section_title
                if section_title:
                    units.append(Unit(start, section_title, "heading"))
            positions[pid] = len(units)
            units.append(Unit(start, text, kind))
        for passage in passages:
            if passage.document_id == document_id and passage.id in positions:
                before = reversed(units[: positions[passage.id]])
                out[passage.id] = lead_of(passage.kind, before)
    return out


def current_model(session: Session) -> RoleModel:
    """The bundled model, retrained with people's confirmed roles once there are enough.

    Cached by (number of confirmations, newest confirmed passage id), so a new confirmation
    retrains once, not on every document.
    """
    count, newest = session.exec(
        select(func.count(col(Passage.id)), func.max(Passage.id)).where(
            Passage.role_source == PERSON
        )
    ).one()
    if not count or count < MIN_CONFIRMED_TO_RETRAIN:
        return default_model()
    key = f"{count}:{newest}"
    with _model_lock:
        if key not in _model_cache:
            _model_cache.clear()
            _model_cache[key] = train(_confirmed_examples(session))
        return _model_cache[key]


def _confirmed_examples(session: Session) -> list[tuple[RoleInput, str]]:
    parent = Review.__table__.alias("parent")  # type: ignore[attr-defined]
    rows = session.exec(
        select(Passage, Review.type, parent.c.type, func.length(Document.text))
        .join(Review, col(Review.id) == Passage.review_id)
        .join(parent, parent.c.id == Review.parent_review_id, isouter=True)
        .join(Document, col(Document.id) == Passage.document_id)
        .where(Passage.role_source == PERSON)
    ).all()
    leads = _leads(session, [p for p, *_ in rows])
    # The document's kind is its top review's type (a case summary's parent is the report).
    return [
        (
            _input_of(p, _kind_value(top or kind), length or 1, leads.get(p.id or -1, ("", -1))),
            p.role,
        )
        for p, kind, top, length in rows
    ]


def _kind_value(value: object) -> str:
    """A ReviewType value from an enum member or the enum *name* a raw column returns."""
    text = str(getattr(value, "value", value))
    return text.lower()


def person_roles(session: Session, document_id: int) -> dict[str, str]:
    """Passage text → role for the roles people set on a document (carried to its new version)."""
    rows = session.exec(
        select(Passage.text, Passage.role).where(
            Passage.document_id == document_id, Passage.role_source == PERSON
        )
    ).all()
    return dict(rows)


def set_passage_role(
    session: Session, *, principal: Principal, passage_id: int, role: str
) -> Passage:
    """A person sets (or confirms) a passage's role; audited.

    Allowed for admins and for panel members of the review's partnership. Unknown roles are a
    ValueError naming the allowed ones; a passage the principal may not see is NotFound.
    """
    try:
        chosen = PassageRole(role)
    except ValueError:
        allowed = ", ".join(r.value for r in PassageRole)
        raise ValueError(f"unknown passage role {role!r}; use one of: {allowed}") from None
    passage = session.get(Passage, passage_id)
    if passage is None:
        raise NotFound(f"passage {passage_id} not found")
    review = get_review(session, principal=principal, review_id=passage.review_id)
    refusal = edit_refusal(principal, review.partnership_id)
    if refusal is not None:
        raise Forbidden(refusal.replace("actions", "reviews"))
    before = passage.role
    passage.role, passage.role_source, passage.role_confidence = chosen.value, PERSON, 1.0
    session.add(passage)
    audit.record(
        session,
        principal=principal,
        action="set_role",
        object_type="passage",
        object_id=passage.id,
        detail={"review": review.id, "from": before, "to": chosen.value},
    )
    session.flush()
    extract_findings(session, review_id=review.id)  # type: ignore[arg-type]
    return passage


def role_counts(session: Session, review_id: int) -> dict[str, int]:
    """How many passages of a review have each role (for the review page)."""
    rows = session.exec(
        select(Passage.role, func.count(col(Passage.id)))
        .where(Passage.review_id == review_id)
        .group_by(col(Passage.role))
    ).all()
    return {str(role): int(n) for role, n in rows}

"""Cases: the documents about one child or incident, linked so they count once.

A child is often reviewed more than once: summarised as a rapid review in the partnership's
annual report, then reviewed in full in a published LCSPR, then mentioned in later reports.
Counting each document as a review inflates "N of M" and the recurrence of every theme the case
carries. A ``Case`` (kb/models.py) links them; recurrence counts cases, the review list still
shows every document.

Matching is deliberately cautious: same partnership, same child pseudonym ("Child F",
"Baby T", "SCR W10" - never a generated label such as "Rapid review 3 (2020-21)"), and no
contradicting evidence (age bands differ, or incidents more than ``MAX_INCIDENT_GAP_DAYS``
apart). People correct it: a link or an unlink by a person (``case_source == "person"``) is
never undone by matching, and survives re-ingest.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

from sqlmodel import Session, col, select

from kb.models import REVIEW_KINDS, Case, Review, ReviewType
from kb.services import audit
from kb.services.access import Principal, can_see
from kb.services.errors import Forbidden
from kb.services.reviews import NotFound, get_review
from kb.services.tracker import edit_refusal

PERSON = "person"
MATCHED = "matched"
MAX_INCIDENT_GAP_DAYS = 120
#: A pseudonym that names a child or a review ("Child Q and R", "Baby T", "SCR W10").
_CHILD_NAME = re.compile(
    r"^(?:child(?:ren)?|baby|infant|family|siblings?|young person|scr|l?cspr)\s+"
    r"[a-z]{1,3}\d{0,3}(?:\s+(?:and|&)\s+[a-z]{1,3}\d{0,3})?$",
    re.I,
)
#: Kinds whose documents can be about one child: a case summary inside an annual report is a
#: rapid review or LCSPR of its own, the report itself is not.
_CASE_KINDS = REVIEW_KINDS | {ReviewType.LEARNING_REVIEW, ReviewType.BRIEFING}


def case_key(review: Review) -> tuple[str, int]:
    """What recurrence counts: the review's case, or the review itself when it has none."""
    if review.case_id is not None:
        return ("case", review.case_id)
    return ("review", review.id or 0)


def case_keys(session: Session, review_ids: Iterable[int]) -> dict[int, tuple[str, int]]:
    """Review id → case key for many reviews in one query."""
    ids = list(review_ids)
    if not ids:
        return {}
    rows = session.exec(select(Review.id, Review.case_id).where(col(Review.id).in_(ids))).all()
    return {rid: (("case", cid) if cid is not None else ("review", rid)) for rid, cid in rows}


def _name_key(pseudonym: str) -> str | None:
    name = " ".join(pseudonym.lower().replace("&", "and").split())
    return name if _CHILD_NAME.match(name) else None


def _compatible(a: Review, b: Review) -> bool:
    """No evidence says these are different children or incidents."""
    if a.age_band and b.age_band and a.age_band != b.age_band:
        return False
    if a.incident_date and b.incident_date:
        return abs((a.incident_date - b.incident_date).days) <= MAX_INCIDENT_GAP_DAYS
    if a.year and b.year:
        return abs(a.year - b.year) <= 2  # a review is published within about two years
    return True


def match_cases(session: Session, review_ids: Iterable[int] | None = None) -> list[int]:
    """Link reviews of one child into cases; returns the ids of the cases made or extended.

    ``review_ids`` limits matching to reviews that may have a partner among them (the ones a
    document just brought in); None matches everything.
    """
    query = select(Review).where(col(Review.type).in_(list(_CASE_KINDS)))
    candidates = [r for r in session.exec(query).all() if _name_key(r.pseudonym)]
    wanted = set(review_ids) if review_ids is not None else None
    groups: dict[tuple[int | None, str], list[Review]] = defaultdict(list)
    for review in candidates:
        groups[(review.partnership_id, _name_key(review.pseudonym) or "")].append(review)
    touched: list[int] = []
    for group in groups.values():
        if len(group) < 2 or (wanted is not None and not wanted & {r.id for r in group}):
            continue
        case_id = _link_group(session, group)
        if case_id is not None:
            touched.append(case_id)
    return touched


def _link_group(session: Session, group: list[Review]) -> int | None:
    """Put the compatible, not person-decided reviews of one name into one case."""
    free = [r for r in group if r.case_source != PERSON]
    if len(free) < 2 and not any(r.case_id for r in group):
        return None
    anchor = next((r for r in group if r.case_id is not None), free[0] if free else None)
    if anchor is None:
        return None
    members = [r for r in free if r is anchor or _compatible(anchor, r)]
    if len(members) + (anchor.case_source == PERSON) < 2:
        return None
    case = session.get(Case, anchor.case_id) if anchor.case_id else None
    if case is None:
        case = Case(label=anchor.pseudonym, partnership_id=anchor.partnership_id)
        session.add(case)
        session.flush()
    for review in members:
        if review.case_id != case.id:
            review.case_id, review.case_source = case.id, MATCHED
            session.add(review)
    return case.id


def _check_edit(principal: Principal, review: Review) -> None:
    refusal = edit_refusal(principal, review.partnership_id)
    if refusal is not None:
        raise Forbidden(refusal.replace("actions", "reviews"))


def link_reviews(
    session: Session, *, principal: Principal, review_id: int, other_review_id: int
) -> Case:
    """A person says two reviews are about the same child: one case holds both (merging the
    cases they were in). Audited; panel members of both partnerships' reviews or admins."""
    if review_id == other_review_id:
        raise ValueError("a review cannot be linked to itself")
    first = get_review(session, principal=principal, review_id=review_id)
    second = get_review(session, principal=principal, review_id=other_review_id)
    for review in (first, second):
        _check_edit(principal, review)
    case = session.get(Case, first.case_id) if first.case_id else None
    if case is None and second.case_id:
        case = session.get(Case, second.case_id)
    if case is None:
        case = Case(label=first.pseudonym, partnership_id=first.partnership_id)
        session.add(case)
        session.flush()
    old_cases = {r.case_id for r in (first, second)} - {case.id, None}
    movers = [first, second]
    if old_cases:
        movers += list(session.exec(select(Review).where(col(Review.case_id).in_(old_cases))))
    for review in movers:
        review.case_id, review.case_source = case.id, PERSON
        session.add(review)
    session.flush()
    for old in old_cases:
        stale = session.get(Case, old)
        if stale is not None:
            session.delete(stale)
    audit.record(
        session,
        principal=principal,
        action="link_case",
        object_type="case",
        object_id=case.id,
        detail={"reviews": f"{first.id},{second.id}"},
    )
    session.flush()
    return case


def unlink_review(session: Session, *, principal: Principal, review_id: int) -> Review:
    """A person says this review is not part of its case. Matching will not relink it; a case
    left with one review is dissolved. Audited."""
    review = get_review(session, principal=principal, review_id=review_id)
    _check_edit(principal, review)
    old = review.case_id
    review.case_id, review.case_source = None, PERSON
    session.add(review)
    session.flush()
    if old is not None:
        rest = session.exec(select(Review).where(Review.case_id == old)).all()
        if len(rest) < 2:
            for other in rest:
                other.case_id = None
                session.add(other)
            session.flush()
            case = session.get(Case, old)
            if case is not None:
                session.delete(case)
    audit.record(
        session,
        principal=principal,
        action="unlink_case",
        object_type="review",
        object_id=review.id,
        detail={"case": old},
    )
    session.flush()
    return review


def linked_reviews(session: Session, *, principal: Principal, review_id: int) -> list[Review]:
    """The other reviews in this review's case that the principal may see (review page)."""
    review = get_review(session, principal=principal, review_id=review_id)
    if review.case_id is None:
        return []
    rows = session.exec(
        select(Review).where(Review.case_id == review.case_id, Review.id != review.id)
    ).all()
    return [r for r in rows if can_see(principal, r)]


__all__ = [
    "NotFound",
    "case_key",
    "case_keys",
    "link_reviews",
    "linked_reviews",
    "match_cases",
    "unlink_review",
]

"""The tracker's case filter: a case is the ``Case`` linking the documents about one child
(kb/services/cases.py), not a pseudonym typed into a URL.

URL values: ``12`` is Case 12; ``r34`` is review 34, a case of its own until it is linked to
others (then it means that review's case). Any other value is read as a pseudonym, as the
filter worked before cases existed, so old bookmarks keep working.

Embargo: a case is known to a principal only through the reviews they may see. A case whose
reviews are all hidden is never offered, its label is never shown, and asking for it by id
answers exactly as an id that does not exist (``UnknownCase``). A case's label is built from
its visible reviews' pseudonyms, never from ``Case.label`` (which may name a hidden review).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlmodel import Session, col, select

from kb.models import Partnership, Review
from kb.services.access import Principal, visible_reviews

_ID = re.compile(r"^(r?)(\d{1,12})$", re.IGNORECASE)


class UnknownCase(LookupError):
    """No case with this value among the reviews the principal may see (hidden or missing:
    the same answer, so an id never confirms that an embargoed case exists)."""

    def __init__(self, value: str) -> None:
        super().__init__(f"no case {value!r} among the reviews you may see")
        self.value = value


@dataclass(frozen=True)
class CaseChoice:
    """One option of the case select: the URL value and a label from visible reviews."""

    value: str
    label: str


def case_value(review_id: int, case_id: int | None) -> str:
    """The URL value of a review's case: its Case id, or ``r<review id>`` when it has none."""
    return str(case_id) if case_id is not None else f"r{review_id}"


def is_case_value(value: str | None) -> bool:
    """Whether ``value`` names a case by id (else it is an old pseudonym filter)."""
    return bool(value and _ID.match(value.strip()))


def resolve_case(session: Session, principal: Principal, value: str) -> str:
    """The canonical value for ``12`` / ``r34`` (a linked review's case id), checked against
    what the principal may see; raises UnknownCase for hidden and missing alike."""
    match = _ID.match(value.strip())
    if match is None:
        raise UnknownCase(value)
    number = int(match.group(2))
    column = Review.id if match.group(1) else Review.case_id
    row = session.exec(
        select(Review.id, Review.case_id).where(column == number, visible_reviews(principal))
    ).first()
    if row is None:
        raise UnknownCase(value)
    return case_value(row[0], row[1])


def visible_cases(
    session: Session, principal: Principal, review_ids: Iterable[int]
) -> tuple[dict[int, str], list[CaseChoice]]:
    """For the visible reviews among ``review_ids``, in one query: review id → case value, and
    the cases as choices, each once, labelled by the pseudonyms of its visible reviews (the
    partnership added where two labels would clash)."""
    ids = sorted(set(review_ids))
    if not ids:
        return {}, []
    rows = session.exec(
        select(Review.id, Review.case_id, Review.pseudonym, Partnership.name)
        .join(Partnership, col(Partnership.id) == Review.partnership_id, isouter=True)
        .where(col(Review.id).in_(ids), visible_reviews(principal))
        .order_by(col(Review.id))
    ).all()
    case_of = {int(rid): case_value(int(rid), cid) for rid, cid, _, _ in rows}
    names: dict[str, list[str]] = defaultdict(list)
    where: dict[str, str] = {}
    for rid, _, pseudonym, partnership in rows:
        value = case_of[int(rid)]
        if pseudonym and pseudonym not in names[value]:
            names[value].append(pseudonym)
        where.setdefault(value, partnership or "")
    labels = {value: " / ".join(found) or "Unnamed case" for value, found in names.items()}
    clash = defaultdict(int)
    for label in labels.values():
        clash[label.lower()] += 1
    choices = [
        CaseChoice(
            value,
            f"{label} ({where[value]})" if clash[label.lower()] > 1 and where[value] else label,
        )
        for value, label in labels.items()
    ]
    return case_of, sorted(choices, key=lambda c: (c.label.lower(), c.value))

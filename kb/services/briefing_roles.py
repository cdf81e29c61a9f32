"""Which passages may fill which briefing section, by the role the passage plays in its report.

Section kinds (the heading a passage sat under) were not enough on real documents: a
"Background" heading in an annual report holds a welcome from the chair, and a
"Recommendations" section of a scrutiny report holds statutory boilerplate. Passage roles
(``Passage.role``, assigned at ingest by nlp/roles.py, corrected by people) say what a passage
*is*: Background quotes case synopses, "What we found" findings, "What practitioners should do"
recommendations and actions. Front matter and partnership business are never quoted.

Documents ingested before roles existed have every passage at the default role "other"; for a
review like that (no passage with any other role) the section kinds stand in, so old knowledge
bases keep producing briefings until ``kb`` re-assigns roles.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from sqlmodel import Session, col, func, select

from kb.models import Passage

BACKGROUND_ROLES: tuple[str, ...] = ("case_synopsis",)
FINDING_ROLES: tuple[str, ...] = ("finding",)
PRACTICE_ROLES: tuple[str, ...] = ("recommendation", "action")
UNQUOTABLE_ROLES: frozenset[str] = frozenset({"front_matter", "partnership_business"})
UNSET_ROLE = "other"

# Section kinds standing in for roles in reviews without roles (corpus/segment.py kinds).
KINDS_FOR: dict[tuple[str, ...], tuple[str, ...]] = {
    BACKGROUND_ROLES: ("background",),
    FINDING_ROLES: ("findings",),
    PRACTICE_ROLES: ("recommendations",),
}

# "The Partnership should…" / "The Board should…": agency-level, not what a practitioner does
# on Monday; kept only when nothing worded for practice is left.
_AGENCY_LEVEL = re.compile(
    r"^\W*(?:\d+(?:\.\d+)*[.)]?\s*)?(?:that\s+)?(?:the\s+)?(?:\w+\s+){0,3}?"
    r"(?:safeguarding\s+)?(?:partnership|partners|board|lscp|lscb|scp|executive|"
    r"strategic\s+leads?|statutory\s+partners)\b[^.]{0,60}?\b(?:should|must|will|to)\b",
    re.IGNORECASE,
)
# A partnership's response to a review, not advice: never quoted as practice.
_ACCEPTANCE = re.compile(
    r"\baccept(?:s|ed)?\b[^.]{0,60}\brecommendations?\b"
    r"|\brecommendations?\b[^.]{0,40}\b(?:have been|were|are|was)\s+accepted\b",
    re.IGNORECASE,
)


# "The Partnership should ensure that practitioners ask…": the practice is inside the clause.
_ASSURANCE_LEAD = re.compile(
    r"^\W*(?:\d+(?:\.\d+)*[.)]?\s*)?(?:that\s+)?(?:the\s+)?(?:\w+\s+){0,3}?"
    r"(?:safeguarding\s+)?(?:partnership|partners|board|lscp|lscb|scp|executive|"
    r"statutory\s+partners)\s+(?:should|must|will|to)\s+(?:continue\s+to\s+)?"
    r"(?:ensure|make\s+sure|seek\s+(?:assurance|evidence)|be\s+assured|gain\s+assurance|"
    r"satisfy\s+(?:itself|themselves))\s+(?:that\s+)?",
    re.IGNORECASE,
)
_PRACTITIONERS = re.compile(
    r"^((?:all\s+|every\s+)?(?:[\w-]+\s+){0,3}?(?:practitioners?|professionals?|staff|"
    r"health\s+visitors?|midwives|midwife|social\s+workers?|gps?|teachers?|nurses?|"
    r"clinicians?|officers?|workers?))\s+(.+)$",
    re.IGNORECASE | re.DOTALL,
)
_MODAL = re.compile(r"^(?:should|must|can)\b", re.IGNORECASE)
# The subject goes on ("professionals working with…", "staff in all agencies", "are recording"):
# inserting "should" would garble it, so the item is left as written.
_NOT_A_VERB = re.compile(
    r"^(?:\w+ing|in|from|who|across|within|at|of|on|are|is|have|has|do|does|will|would)\b",
    re.IGNORECASE,
)


def practice_wording(text: str) -> str | None:
    """ "The Partnership should ensure that practitioners ask about every adult" → "Practitioners
    should ask about every adult": the practice inside an agency-level recommendation, in the
    source's own words (only the lead-in is dropped, the citation stays). None when the clause
    is not about what practitioners do (then the item stays as written, ranked last)."""
    lead = _ASSURANCE_LEAD.match(text)
    if lead is None:
        return None
    found = _PRACTITIONERS.match(text[lead.end() :].strip())
    if found is None:
        return None
    subject, rest = found.group(1), found.group(2).strip()
    if _MODAL.match(rest):
        verb = rest
    elif _NOT_A_VERB.match(rest):
        return None
    else:
        verb = f"should {rest}"
    return f"{subject[:1].upper()}{subject[1:]} {verb}"


def is_agency_level(text: str) -> bool:
    """Whether a recommendation is addressed to the partnership / board rather than practice."""
    return bool(_AGENCY_LEVEL.search(text[:200]))


def is_acceptance(text: str) -> bool:
    """ "The Partnership accepts all four recommendations": a response, never a practice item."""
    return bool(_ACCEPTANCE.search(text))


def reviews_with_roles(session: Session, review_ids: Iterable[int]) -> set[int]:
    """The reviews (of ``review_ids``) that have at least one passage with a role set."""
    ids = list(review_ids)
    if not ids:
        return set()
    rows = session.exec(
        select(Passage.review_id)
        .where(col(Passage.review_id).in_(ids), Passage.role != UNSET_ROLE)
        .group_by(col(Passage.review_id))
        .having(func.count(col(Passage.id)) > 0)
    ).all()
    return set(rows)


def fits(passage: Passage, roles: Sequence[str], role_aware: bool) -> bool:
    """Whether ``passage`` may fill a section quoting ``roles``: by role in a review with roles,
    by section kind otherwise; front matter and partnership business never."""
    role = passage.role or UNSET_ROLE
    if role in UNQUOTABLE_ROLES:
        return False
    if role_aware:
        return role in roles
    return passage.section_kind in KINDS_FOR.get(tuple(roles), ())

"""Findings and recommendations grouped from a review's passages: pure text work, no database.

Why here and not in kb/: ingest groups a new document's passages before its write transaction
opens (kb/services/ingest_analysis.py), and kb/services/findings.py groups stored passages when
a person changes a role; both must give the same items, so both call these functions on
anything shaped like a passage (:class:`LearningPassage`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

FINDING_KINDS = frozenset({"findings", "finding"})
RECOMMENDATION_KINDS = frozenset({"recommendations", "recommendation"})
#: Passages with these roles are never findings or recommendations, whatever their section
#: (a scrutiny report's "1 Recommendations: That the Board notes the report").
NOT_LEARNING_ROLES = frozenset({"front_matter", "partnership_business"})
#: Outside a findings / recommendations section a passage's role alone makes it one when a
#: person set it or the classifier is this sure (real PDFs lose or garble headings).
ROLE_ALONE_CONFIDENCE = 0.6

# "1.", "2)", "(3)", "Recommendation 3:", "Finding 2 –", "Learning point 4." at the start of a text
_NUMBER = re.compile(
    r"^\s*(?:(?:recommendation|finding|learning\s+point|rec\.?)\s*(\d{1,3})\s*[.):\-–—]?"
    r"|\(?(\d{1,3}(?:\.\d{1,2})?)(?:\)|[.:](?!\d))|(\d{1,3}\.\d{1,2})(?=\s))\s*",
    re.IGNORECASE,
)
# a numbered heading such as "Finding 1: Mr G remained invisible" (section titles)
_TITLE_NUMBER = re.compile(
    r"^\s*(?:\d+(?:\.\d+)*\.?\s+)?(?:recommendation|finding|learning\s+point)\s+(\d{1,3})\b"
    r"\s*[.:\-–—]?\s*",
    re.IGNORECASE,
)
_INTRO = re.compile(
    r"\b(following|these|below|makes?\s+\w+\s+recommendations?|recommends?\s+that\s*:?$)\b",
    re.IGNORECASE,
)


class LearningPassage(Protocol):
    """What grouping reads of a passage (a stored ``Passage`` or an ingest draft)."""

    text: str
    kind: str
    section_title: str
    section_kind: str
    role: str
    role_source: str
    role_confidence: float


@dataclass
class LearningItem:
    """One finding or recommendation being assembled from one or more passages."""

    number: str | None
    passages: list[LearningPassage] = field(default_factory=list)
    lead: str = ""

    @property
    def text(self) -> str:
        parts = [self.lead] if self.lead else []
        parts += [strip_number(p.text) for p in self.passages]
        return "\n\n".join(part for part in parts if part)


def strip_number(text: str) -> str:
    return _NUMBER.sub("", text, count=1).strip()


def number_of(text: str) -> str | None:
    match = _NUMBER.match(text)
    return next((g for g in match.groups() if g), None) if match else None


def is_intro(passage: LearningPassage) -> bool:
    """Headings and lead-in sentences ("The review makes the following recommendations:")."""
    text = passage.text.strip()
    if passage.kind == "heading" or not text:
        return True
    if text.endswith(":") and number_of(text) is None:
        return True
    words = text.split()
    if len(words) <= 3 and passage.kind != "list_item" and number_of(text) is None:
        return True
    return number_of(text) is None and len(words) < 25 and bool(_INTRO.search(text))


def group_items(passages: Sequence[LearningPassage]) -> list[LearningItem]:
    """Split a section's passages into items: numbered paragraphs, list items, or numbered
    sub-headings ("Finding 1: …") whose paragraphs belong together."""
    items: list[LearningItem] = []
    for passage in passages:
        if is_intro(passage):
            continue
        number = number_of(passage.text)
        title = _TITLE_NUMBER.match(passage.section_title or "")
        previous = items[-1] if items else None
        if number is None and title is not None:
            if previous is not None and previous.passages[0].section_title == passage.section_title:
                previous.passages.append(passage)
                continue
            lead = passage.section_title[title.end() :].strip()
            items.append(LearningItem(title.group(1), [passage], lead))
            continue
        continues = (
            number is None
            and passage.kind == "paragraph"
            and previous is not None
            and previous.number is not None
            and previous.passages[-1].kind == "paragraph"
            and previous.passages[-1].section_title == passage.section_title
        )
        if continues:
            previous.passages.append(passage)  # type: ignore[union-attr]
        else:
            items.append(LearningItem(number, [passage]))
    _number_list_items(items)
    return items


def _number_list_items(items: list[LearningItem]) -> None:
    """Readers may drop "1." from list items: number them by position when none has one."""
    if items and all(item.number is None for item in items):
        for index, item in enumerate(items, start=1):
            item.number = str(index)


def is_learning_candidate(passage: LearningPassage) -> bool:
    """Whether ``passage`` may be part of a finding or recommendation at all (the filter the
    stored-passage query applies: its section, or a finding / recommendation role)."""
    return passage.section_kind in FINDING_KINDS | RECOMMENDATION_KINDS or passage.role in (
        "finding",
        "recommendation",
    )


def learning_kind(passage: LearningPassage) -> str | None:
    """ "finding", "recommendation" or None for one passage, from its section and its role.

    The section decides between the two (items listed under a review's findings are findings
    even when worded with "should"); the role removes front matter and partnership business
    from those sections and adds passages whose heading was lost.
    """
    if passage.role in NOT_LEARNING_ROLES:
        return None
    if passage.section_kind in FINDING_KINDS:
        return "finding"
    if passage.section_kind in RECOMMENDATION_KINDS:
        return "recommendation"
    sure = passage.role_source == "person" or passage.role_confidence >= ROLE_ALONE_CONFIDENCE
    return passage.role if sure and passage.role in ("finding", "recommendation") else None


def learning_items(
    passages: Sequence[LearningPassage],
) -> tuple[list[LearningItem], list[LearningItem]]:
    """(findings, recommendations) of one review's passages, given in reading order."""
    candidates = [p for p in passages if is_learning_candidate(p)]
    findings = group_items([p for p in candidates if learning_kind(p) == "finding"])
    recs = group_items([p for p in candidates if learning_kind(p) == "recommendation"])
    return findings, recs

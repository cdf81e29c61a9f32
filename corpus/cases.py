"""Case summaries inside partnership annual reports.

An annual report often summarises several reviews: a list of this year's rapid reviews ("The
panel considered 8 referrals ... as follows:") or short write-ups of published LCSPRs under
headings such as "Child Q and R". Each summary is a review in its own right for the thematic
tracker, so we cut them out as spans of the document text.

The rules are deliberately conservative: a summary list is only accepted when the document
delimits it clearly (an announcing sentence whose number matches the item count, or a run of
child-name headings after text about published reviews), and at least two summaries are found.
Anything less returns [] and the report is treated as one document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from corpus.document import ExtractedDocument
from corpus.metadata import ReviewType, detect_review_type
from corpus.segment import LIST_MARKER, Section
from nlp.numbers import NUMBER_WORDS as _NUMBER_WORDS


@dataclass(slots=True)
class CaseSummary:
    """One review summarised inside a larger document: ``doc.text[start:end]``."""

    pseudonym: str
    review_type: ReviewType
    title: str
    start: int
    end: int


@dataclass(slots=True)
class _Unit:
    kind: str  # "heading" | passage kind
    text: str
    start: int
    end: int
    level: int = 0


_ANNOUNCE = re.compile(
    r"\b(\d{1,2}|" + "|".join(_NUMBER_WORDS) + r")\s+(?:[\w'’-]+\s+){0,3}?"
    r"(?:rapid\s+reviews?|referrals|cases|reviews|notifications|serious\s+incidents|incidents|"
    r"L?CSPR['’]?s|SCR['’]?s)\b",
    re.IGNORECASE,
)
_LEADS_LIST = re.compile(r"(?:as follows|below|following)\W*$|:\s*$", re.IGNORECASE)
_LIST_OF_TOPICS = re.compile(r"\b(?:themes?|priorit\w+|topics?|areas?)\b[^.]{0,40}$", re.I)
_CHILD_HEADING = re.compile(
    r"^(?:(?:Child(?:ren)?|Baby|Babies|Infant|Young\s+Person|Siblings?|Family|Families)\s+"
    r"[A-Z]{1,3}\d{0,3}(?:\s*(?:,|and|&)\s*[A-Z]{1,3}\d{0,3})*|(?:SCR|L?CSPR)\s+[A-Z]{1,3}\d{1,3})"
    r"\b(?:\s*[:\-–—(].{0,80})?$"
)
_NAME_IN_TEXT = re.compile(
    r"\b(?:Child|Baby|Infant|Family)\s+[A-Z]{1,3}\d{0,3}(?:\s+(?:and|&)\s+[A-Z]{1,3}\d{0,3})?\b"
)
_REVIEW_WORDS = re.compile(
    r"\bL?CSPR|\bSCR|serious case reviews?|practice reviews?|learning reviews?|"
    r"safeguarding adults? reviews?",
    re.IGNORECASE,
)
_RUN_ENDS = re.compile(
    r"\b(?:these|the|all|our|both|\d+|three|four|five)\s+(?:reviews|L?CSPR['’]?s|SCR['’]?s)\b|"
    r"\bfrom reviews\b",
    re.IGNORECASE,
)
_PERIOD = re.compile(r"\b(20\d{2})\s*(?:-|/|–|to)\s*(?:20)?(\d{2})\b")
_ITEM_PREFIX = re.compile(r"^(?:[-–•*▪●]\s*)?(?:\(?\d{1,3}[.)]\s+)?")
_NOT_CASES = frozenset({ReviewType.ANNUAL_REPORT, ReviewType.NATIONAL_REVIEW})
_TYPE_LABEL = {
    ReviewType.RAPID_REVIEW: "Rapid review",
    ReviewType.LCSPR: "LCSPR",
    ReviewType.SCR: "SCR",
    ReviewType.LEARNING_REVIEW: "Learning review",
    ReviewType.AUDIT: "Audit",
}


def _flatten(sections: list[Section]) -> list[_Unit]:
    units: list[_Unit] = []
    for section in sections:
        if section.title:
            end = section.start + len(section.title)
            units.append(_Unit("heading", section.title, section.start, end, section.level))
        units.extend(_Unit(p.kind, p.text, p.start, p.end) for p in section.passages)
    return units


def _number(token: str) -> int:
    return int(token) if token.isdigit() else _NUMBER_WORDS[token.lower()]


def _period(doc: ExtractedDocument) -> str | None:
    """The reporting year ("2020-21") from the title or the first page."""
    for text in (doc.title or "", doc.text[:3000]):
        match = _PERIOD.search(text)
        if match:
            return f"{match.group(1)}-{match.group(2)}"
    return None


def _short_title(text: str, limit: int = 100) -> str:
    text = " ".join(_ITEM_PREFIX.sub("", text).split())
    sentence = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
    if len(sentence) <= limit:
        return sentence
    return sentence[:limit].rsplit(" ", 1)[0] + "…"


# --- (a) announced lists ------------------------------------------------------------------------


def _announced_counts(text: str) -> set[int] | None:
    """Numbers of cases the lead-in announces, or None if it does not introduce a case list."""
    if not _LEADS_LIST.search(text) or _LIST_OF_TOPICS.search(text):
        return None
    counts = {_number(m.group(1)) for m in _ANNOUNCE.finditer(text)}
    return counts or None


def _collect_items(units: list[_Unit], first: int) -> list[list[_Unit]]:
    """List items after a lead-in; a lowercase fragment continues the previous item."""
    items: list[list[_Unit]] = []
    for unit in units[first:]:
        if unit.kind == "list_item" or (unit.kind == "paragraph" and LIST_MARKER.match(unit.text)):
            items.append([unit])
        elif items and unit.kind == "paragraph" and unit.text[:1].islower():
            items[-1].append(unit)
        else:
            break
    return items


def _announced_lists(doc: ExtractedDocument, units: list[_Unit]) -> list[CaseSummary]:
    found: list[CaseSummary] = []
    for index, unit in enumerate(units):
        if unit.kind != "paragraph":
            continue
        counts = _announced_counts(unit.text)
        if counts is None:
            continue
        items = _collect_items(units, index + 1)
        if len(items) >= 2 and len(items) in counts:
            found.extend(_list_summaries(doc, unit.text, items))
    return found


def _list_summaries(
    doc: ExtractedDocument, lead_in: str, items: list[list[_Unit]]
) -> list[CaseSummary]:
    review_type = detect_review_type(lead_in, _NOT_CASES)
    if review_type is ReviewType.OTHER:
        review_type = ReviewType.RAPID_REVIEW
    label = _TYPE_LABEL.get(review_type, "Case")
    period = _period(doc)
    summaries = []
    for number, parts in enumerate(items, start=1):
        text = " ".join(part.text for part in parts)
        name = _NAME_IN_TEXT.search(text)
        pseudonym = (
            name.group(0) if name else f"{label} {number}" + (f" ({period})" if period else "")
        )
        summaries.append(
            CaseSummary(pseudonym, review_type, _short_title(text), parts[0].start, parts[-1].end)
        )
    return summaries


# --- (b) runs of child-name headings ---------------------------------------------------------


def _is_child_heading(unit: _Unit) -> bool:
    if unit.kind == "heading":
        return bool(_CHILD_HEADING.match(unit.text))
    return (
        unit.kind == "paragraph"
        and len(unit.text.split()) <= 10
        and bool(_CHILD_HEADING.match(unit.text))
    )


def _lead_in(units: list[_Unit], index: int) -> str:
    """Up to three units of text before the first child heading of a run."""
    return " ".join(u.text for u in units[max(0, index - 3) : index])


def _nearest_type(units: list[_Unit], index: int) -> ReviewType:
    """The review type named closest before a run ("3 LCSPRs were published" beats an earlier
    mention of a serious case review in the paragraph before)."""
    for unit in reversed(units[max(0, index - 3) : index]):
        found = detect_review_type(unit.text, _NOT_CASES)
        if found is not ReviewType.OTHER:
            return found
    return ReviewType.OTHER


def _run_end(units: list[_Unit], start: int, level: int) -> int:
    """Index one past the last unit of a child's summary."""
    index = start + 1
    while index < len(units):
        unit = units[index]
        if _is_child_heading(unit):
            break
        if unit.kind == "heading" and (not level or not unit.level or unit.level <= level):
            break
        if unit.kind == "paragraph" and index > start + 1 and _RUN_ENDS.search(unit.text):
            break
        index += 1
    return index


def _child_runs(units: list[_Unit]) -> list[CaseSummary]:
    found: list[CaseSummary] = []
    index = 0
    while index < len(units):
        if not _is_child_heading(units[index]) or not _REVIEW_WORDS.search(_lead_in(units, index)):
            index += 1
            continue
        review_type = _nearest_type(units, index)
        run: list[CaseSummary] = []
        while index < len(units) and _is_child_heading(units[index]):
            head = units[index]
            stop = _run_end(units, index, head.level if head.kind == "heading" else 0)
            end = max(units[stop - 1].end, head.end)
            name = re.split(r"\s*[:\-–—(]", head.text, maxsplit=1)[0].strip()
            run.append(CaseSummary(name, review_type, head.text, head.start, end))
            index = stop
        if len(run) >= 2:
            found.extend(run)
    return found


def find_case_summaries(doc: ExtractedDocument, sections: list[Section]) -> list[CaseSummary]:
    """Case summaries when the document clearly delimits at least two; otherwise []."""
    units = _flatten(sections)
    candidates = sorted(
        _announced_lists(doc, units) + _child_runs(units), key=lambda s: (s.start, -s.end)
    )
    result: list[CaseSummary] = []
    for summary in candidates:
        if not result or summary.start >= result[-1].end:
            result.append(summary)
    return result if len(result) >= 2 else []

"""Names found in a document's text: the review type it names, the child's pseudonym and the
partnership. Shared by kind inference (corpus.kinds) and metadata inference (corpus.metadata).
"""

from __future__ import annotations

import re

from corpus.vocabulary import ReviewType

# --- review type -------------------------------------------------------------------------------

_TYPE_PATTERNS: list[tuple[ReviewType, re.Pattern[str]]] = [
    (ReviewType.ANNUAL_REPORT, re.compile(r"\bannual[\s_-]*report\b", re.I)),
    (
        ReviewType.NATIONAL_REVIEW,
        re.compile(
            r"\bnational (?:safeguarding )?reviews?\b|^\W*(?:the )?child safeguarding "
            r"practice review panel\b",
            re.I | re.M,
        ),
    ),
    (ReviewType.SAR, re.compile(r"(?i:\bsafeguarding[\s_-]*adults?[\s_-]*reviews?\b)|\bSARs?\b")),
    (ReviewType.DHR, re.compile(r"\bdomestic[\s_-]*homicide[\s_-]*reviews?\b|\bDHRs?\b", re.I)),
    (
        ReviewType.LCSPR,
        re.compile(
            r"\b(?:local[\s_-]*)?child[\s_-]*safeguarding[\s_-]*practice[\s_-]*review"
            r"(?![\s_-]*panel)|\bL?CSPR",
            re.I,
        ),
    ),
    (ReviewType.SCR, re.compile(r"\bserious[\s_-]*case[\s_-]*reviews?\b|\bSCR(?:['’]?s)?\b", re.I)),
    (ReviewType.RAPID_REVIEW, re.compile(r"\brapid[\s_-]*reviews?\b", re.I)),
    (ReviewType.LEARNING_REVIEW, re.compile(r"\blearning[\s_-]*reviews?\b", re.I)),
    (ReviewType.AUDIT, re.compile(r"\bcase[\s_-]*file[\s_-]*audit|\bMACFA", re.I)),
]


def detect_review_type(text: str, exclude: frozenset[ReviewType] = frozenset()) -> ReviewType:
    """The review type named earliest in ``text`` (OTHER when none is named)."""
    best: tuple[int, int, ReviewType] | None = None
    for priority, (kind, pattern) in enumerate(_TYPE_PATTERNS):
        if kind in exclude:
            continue
        match = pattern.search(text)
        if match and (best is None or (match.start(), priority) < best[:2]):
            best = (match.start(), priority, kind)
    return best[2] if best else ReviewType.OTHER


# --- pseudonym, partnership --------------------------------------------------------------------

_NOT_NAMES = frozenset({"CP", "CIN", "CSE", "CCE", "LAC", "DA", "SEN", "ID"})
_PSEUDONYM = re.compile(
    r"\b(?:(Child(?:ren)?|Baby|Infant|Family|Sibling)\s+([A-Z]{1,3}\d{0,3})"
    r"(?:\s+(?:and|&)\s+([A-Z]{1,3}\d{0,3}))?|(SCR|LCSPR|CSPR)\s+([A-Z]{1,2}\d{1,3}))\b"
)
_PREFIX_WORD = r"(?:(?!Safeguarding\b|Partnership\b|Board\b)[A-Z][\w'’&-]*|and|of|upon|on|the)"
_PARTNERSHIP = re.compile(
    r"\b(" + _PREFIX_WORD + r"(?:\s+" + _PREFIX_WORD + r"){0,5})"
    r"\s+(Safeguarding(?:\s+[A-Z][a-z]+(?:['’]s)?)?\s+(?:Partnership|Board))\b"
)
_LEADING_JUNK = frozenset(
    [
        "The",
        "In",
        "By",
        "For",
        "This",
        "Our",
        "Within",
        "From",
        "Of",
        "To",
        "And",
        "A",
        "An",
        "With",
        "At",
        "On",
        "the",
        "and",
        "of",
        "on",
        "upon",
    ]
)


def infer_pseudonym(text: str) -> str | None:
    """'Child Y', 'Child Q and R', 'Baby T', 'Family S', 'SCR W10' (first one mentioned)."""
    for match in _PSEUDONYM.finditer(text):
        if match.group(4):
            return f"{match.group(4)} {match.group(5)}"
        if match.group(2) in _NOT_NAMES:
            continue
        name = f"{match.group(1)} {match.group(2)}"
        return f"{name} and {match.group(3)}" if match.group(3) else name
    return None


def infer_partnership(text: str) -> str | None:
    """'X Safeguarding Children Partnership' / '... Board' / 'X Safeguarding Partnership'."""
    for match in _PARTNERSHIP.finditer(text):
        words = match.group(1).split()
        while words and words[0] in _LEADING_JUNK:
            words.pop(0)
        while words and words[-1] in ("and", "of", "upon", "on", "the"):
            words.pop()
        if words and words != ["Local"]:
            return " ".join([*words, *match.group(2).split()])
    return None

"""What kind of document this is, its real title, and the period it reports on.

Why a module of its own: real partnership output is not only reviews. Annual reports,
newsletters, scrutiny committee reports and briefings all name serious case reviews and LCSPRs
in their first pages, so "the review type named earliest" (corpus.metadata.detect_review_type)
turned a newsletter into an SCR and a scrutiny report into an LCSPR, and both were then counted
as reviews. Here the *title zone* (the short lines before the body starts) decides first, then
the opening of the body; a document nothing identifies is ``other`` with a warning naming it,
never a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from corpus.names import detect_review_type, infer_partnership
from corpus.vocabulary import ReviewType

TITLE_ZONE_LINES = 14
BODY_CHARS = 3000


@dataclass(frozen=True, slots=True)
class KindGuess:
    """The inferred kind; ``warning`` says why a document came out ``other``."""

    kind: ReviewType
    evidence: str
    warning: str | None = None


@dataclass(frozen=True, slots=True)
class Period:
    """A reporting period such as 2020-21 (April 2020 to March 2021)."""

    start_year: int
    end_year: int

    @classmethod
    def parse(cls, label: str | None) -> Period | None:
        """The period a label such as '2020-21' names (None for None or anything else)."""
        match = re.fullmatch(r"(20\d{2})-(\d{2})", label or "")
        if not match:
            return None
        start = int(match.group(1))
        return cls(start, start + 1) if (start + 1) % 100 == int(match.group(2)) else None

    @property
    def label(self) -> str:
        return f"{self.start_year}-{self.end_year % 100:02d}"

    @property
    def case_year(self) -> int:
        """The year a case summarised in the report most likely happened: nine of a financial
        year's twelve months fall in its first calendar year."""
        return self.start_year


# Ordered: the first kind whose pattern matches the title zone wins.
_KIND_WORDS: list[tuple[ReviewType, re.Pattern[str]]] = [
    (ReviewType.NEWSLETTER, re.compile(r"\bnews\s*letters?\b|\bbulletin\b|\bedition\b", re.I)),
    (
        ReviewType.SCRUTINY_REPORT,
        re.compile(
            r"\bscrutiny\s+(?:board|committee|panel|commission)\b|"
            r"^\W*report\s+to\s+(?:the\s+)?[\w' ’&,-]{0,80}(?:committee|board|cabinet|council)\b",
            re.I | re.M,
        ),
    ),
    (ReviewType.ANNUAL_REPORT, re.compile(r"\b(?:annual|yearly)\s+report\b", re.I)),
    (ReviewType.THEMATIC_REVIEW, re.compile(r"\bthematic\s+(?:review|report)\b", re.I)),
    (
        ReviewType.BRIEFING,
        re.compile(r"\b(?:7|seven)[\s-]*minute\s+briefing\b|\blearning\s+brief(?:ing)?\b", re.I),
    ),
]
#: Phrases in the opening of the body that say what the document is ("welcome to the first of
#: the Board's quarterly newsletters", "this annual report covers ...").
_BODY_WORDS: list[tuple[ReviewType, re.Pattern[str]]] = [
    (ReviewType.NEWSLETTER, re.compile(r"\b(?:quarterly\s+|monthly\s+)?newsletters?\b", re.I)),
    (
        ReviewType.ANNUAL_REPORT,
        re.compile(r"\b(?:this|the|our)\s+(?:[\w']+\s+){0,4}annual\s+report\b", re.I),
    ),
    (ReviewType.SCRUTINY_REPORT, re.compile(r"\bscrutiny\s+(?:board|committee)\b", re.I)),
]
_FURNITURE = re.compile(
    r"^(?:page\s*)?\d{1,3}$|^(?:table of )?contents\b|^document control$|^version\b|"
    r"^official\b|^<u>|^-{3,}",
    re.I,
)


def title_zone(text: str) -> list[str]:
    """The short lines before the body starts: where a document says what it is."""
    lines: list[str] = []
    for raw in text.split("\n"):
        line = " ".join(raw.replace("*", " ").split())
        if not line:
            continue
        if len(line) > 160 or (line.endswith(".") and len(line) > 60):
            break  # a sentence of body text
        lines.append(line)
        if len(lines) >= TITLE_ZONE_LINES:
            break
    return lines


def _by_filename(filename: str) -> ReviewType:
    name = filename.replace("_", " ").replace("-", " ")
    for kind, pattern in _KIND_WORDS:
        if pattern.search(name):
            return kind
    return detect_review_type(name)


def infer_kind(text: str, filename: str = "") -> KindGuess:
    """The document's kind from its file name, its title zone, then its opening paragraphs."""
    named = _by_filename(filename)
    if named is not ReviewType.OTHER:
        return KindGuess(named, f"file name {filename!r}")
    zone = "\n".join(title_zone(text))
    for kind, pattern in _KIND_WORDS:
        match = pattern.search(zone)
        if match:
            return KindGuess(kind, f"title {match.group(0)!r}")
    review = detect_review_type(zone, frozenset({ReviewType.ANNUAL_REPORT}))
    if review is not ReviewType.OTHER:
        return KindGuess(review, "title names the review type")
    body = text[:BODY_CHARS]
    for kind, pattern in _BODY_WORDS:
        match = pattern.search(body)
        if match:
            return KindGuess(kind, f"opening text {match.group(0)!r}")
    return KindGuess(
        ReviewType.OTHER,
        "",
        f"{filename or 'document'}: could not tell what kind of document this is "
        "(no title naming a review, report, newsletter or briefing); stored as 'other' - set "
        "the type in a manifest, with --type, or on the review page",
    )


# --------------------------------------------------------------------------- period


_PERIOD = re.compile(r"\b(20\d{2})\s*(?:-|/|–|—|to)\s*(?:20)?(\d{2})\b")
_PERIOD_MONTHS = re.compile(
    r"\b(?:1st\s+)?April\s+(20\d{2})\s*(?:-|–|—|to)\s*(?:31st\s+)?March\s+(20\d{2})\b", re.I
)


def infer_period(text: str, title: str | None = None) -> Period | None:
    """The reporting period from the title or the opening (2020-21, 2019 – 2020, April 2021 –
    March 2022); None when the document names no one-year period."""
    for source in (title or "", "\n".join(title_zone(text)), text[:BODY_CHARS]):
        for match in (_PERIOD_MONTHS.search(source), _PERIOD.search(source)):
            if match is None:
                continue
            start = int(match.group(1))
            end = int(match.group(2)) if len(match.group(2)) == 4 else 2000 + int(match.group(2))
            if end == start + 1:
                return Period(start, end)
    return None


# --------------------------------------------------------------------------- title


_SUBJECT = re.compile(r"^subject\s*:\s*(.+)$", re.I)


def infer_title(text: str, kind: ReviewType, fallback: str) -> str:
    """The document's real title: the title-zone line that names what it is, completed with the
    partnership when that line alone would be ambiguous ("Annual Report 2019 - 2020")."""
    zone = [line for line in title_zone(text) if not _FURNITURE.search(line)]
    partnership = infer_partnership("\n".join(zone)) or infer_partnership(text[:BODY_CHARS])
    if kind is ReviewType.SCRUTINY_REPORT:
        subject = next((m.group(1) for m in map(_SUBJECT.match, zone) if m), None)
        if subject:
            return _clip(subject.strip())
    if kind is ReviewType.NEWSLETTER:
        named = next((line for line in zone if re.search(r"newsletter", line, re.I)), None)
        return _clip(named or f"{partnership or 'Partnership'} newsletter")
    pattern = dict(_KIND_WORDS).get(kind)
    if pattern is not None:
        line = next((line for line in zone if pattern.search(line)), None)
        if line:
            return _clip(_with_partnership(line, partnership))
    for line in zone:
        if not line.endswith(":") and len(line.split()) >= 2:
            return _clip(line)
    return _clip(fallback)


def _with_partnership(line: str, partnership: str | None) -> str:
    """'Annual Report 2019 - 2020' names nobody: prefix whose report it is."""
    if partnership and re.match(r"^(?:annual|yearly)\b", line, re.I):
        return f"{partnership} {line}"
    return line


def _clip(title: str, limit: int = 200) -> str:
    title = " ".join(title.split())
    return title if len(title) <= limit else title[:limit].rsplit(" ", 1)[0] + "…"

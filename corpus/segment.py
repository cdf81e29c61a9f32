"""Sections and passages: the units that get tagged, searched and quoted.

Reviews share a rough shape (background / chronology, findings, recommendations, good
practice, action plan) but every author spells it differently, and PDFs lose all markup. So
segmentation trusts reader headings when a format has them (DOCX styles, HTML, Markdown) and
otherwise infers headings from the lines themselves with cheap, precompiled rules. spaCy is only
used to split the rare paragraph longer than ``MAX_PASSAGE_CHARS``, which keeps segmentation a
small fraction of extraction time.

Every passage is a ``[start, end)`` span of ``doc.text`` with ``doc.text[start:end] == text``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from corpus.document import ExtractedDocument
from corpus.layout import contents_lines
from corpus.sentences import sentence_spans_many

SectionKind = Literal[
    "background", "findings", "recommendations", "good_practice", "action_plan", "other"
]
PassageKind = Literal["paragraph", "list_item", "table_row"]

MAX_PASSAGE_CHARS = 1500
MAX_HEADING_WORDS = 12


@dataclass(slots=True)
class PassageSpan:
    """One paragraph, list item or table row, located in the document text."""

    text: str
    start: int
    end: int
    kind: PassageKind


@dataclass(slots=True)
class Section:
    """A heading (title "" for text before the first heading) and the passages under it."""

    title: str
    kind: SectionKind
    level: int
    start: int
    end: int
    passages: list[PassageSpan] = field(default_factory=list)


@dataclass(slots=True)
class _Unit:
    """Intermediate item: a heading or a passage candidate, offsets already stripped."""

    kind: str  # "heading" or a PassageKind
    start: int
    end: int
    level: int = 0
    title: str = ""


# --- section classification -------------------------------------------------------------

_KIND_PATTERNS: list[tuple[SectionKind, re.Pattern[str]]] = [
    ("action_plan", re.compile(r"\baction plans?\b|^actions?\b|\bactions (?:taken|agreed)\b")),
    ("recommendations", re.compile(r"\brecommendations?\b")),
    (
        "good_practice",
        re.compile(r"\bgood practice\b|\bwhat went well\b|\bstrengths\b|\bpositive practice\b"),
    ),
    (
        "findings",
        re.compile(
            r"\bfindings?\b|\blearning(?! (?:and|&) development| gain| management| review)\b|"
            r"\banalysis\b|\bthemes?\b|\blessons?\b|\bwhat we found\b|\bkey issues\b|"
            r"\bissues identified\b"
        ),
    ),
    (
        "background",
        re.compile(
            r"\bbackground\b|\bchronology\b|\bfamily (?:history|composition|context|structure)\b|"
            r"\bsummary of (?:the )?case\b|\bcase (?:summary|outline|history)\b|"
            r"\bcircumstances\b|\bhistory\b|\bthe family\b|\bthe child'?s (?:story|history)\b"
        ),
    ),
]
_MAJOR_OTHER = re.compile(
    r"^(?:introduction|appendix|appendices|glossary|references|contents|conclusions?|"
    r"methodology|terms of reference|foreword|acknowledgements?|executive summary|scope|"
    r"the review process|review process|purpose)\b"
)
_TITLE_PREFIX = re.compile(
    r"^\s*(?:(?:section|part|chapter|appendix)\s+[\dIVXivx]+[a-z]?\b|\d{1,2}(?:\.\d{1,2})*\.?)"
    r"\s*[:.\-–—]?\s*",
    re.IGNORECASE,
)


def _normal_title(title: str) -> str:
    return " ".join(_TITLE_PREFIX.sub("", title).lower().replace("’", "'").split())


def classify_section(title: str) -> SectionKind:
    """Kind of section from its title; the earliest keyword wins ("Learning and actions")."""
    text = _normal_title(title)
    if _MAJOR_OTHER.match(text):
        return "other"
    best: tuple[int, SectionKind] | None = None
    for kind, pattern in _KIND_PATTERNS:
        match = pattern.search(text)
        if match and (best is None or match.start() < best[0]):
            best = (match.start(), kind)
    return best[1] if best else "other"


def _is_major_other(title: str) -> bool:
    """Titles that start a new top-level part and must not inherit a previous kind."""
    return bool(_MAJOR_OTHER.match(_normal_title(title)))


# --- line-level heading inference ---------------------------------------------------------

#: "## Title ##". The closing #s are stripped in Python (``_md_title``): the obvious regex
#: ``\s+(.*?)\s*#*\s*$`` backtracks cubically on a long run of spaces inside a line.
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_KEYWORD_HEADING = re.compile(
    r"^(?:(section|part|chapter|appendix)|(finding|recommendation|learning point|key learning"
    r"(?: point)?|lesson|theme))\s+(?:\d{1,3}|[IVX]{1,5}|[A-Z])\b\s*(?:[:.\-–—]\s*|$)",
    re.IGNORECASE,
)
_NUMBERED = re.compile(r"^(\d{1,2}(?:\.\d{1,2}){0,3})(\.?)\s+(\S.*)$")
LIST_MARKER = re.compile(
    r"^(?:[-–•*▪●◦○■□➢►✓]|\(?\d{1,3}[.)]|\(?[a-z][.)]|\([ivxlc]{1,5}\)|[ivxlc]{1,5}[.)])"
    r"(?:\s+|$)"
)
_PAGE_NUMBER = re.compile(
    r"^(?:page\s*)?[-–]?\s*\d{1,4}\s*[-–]?(?:\s*(?:of|/)\s*\d{1,4})?$", re.IGNORECASE
)
#: A running header or footer that carries its page number: "Review: Child U  |  Page 2 of 3".
_PAGE_FOOTER = re.compile(r"^.{0,120}[|·•–-]\s*page\s+\d{1,4}(?:\s+of\s+\d{1,4})?$", re.I)
_WORD = re.compile(r"[A-Za-z][A-Za-z'’\-]*")
_NUMBER_TOKEN = re.compile(r"^\W*\d[\d/.,:%\-–]*\W*$")
_SMALL_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "from",
        "by",
        "with",
        "during",
        "into",
        "per",
        "via",
        "vs",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "not",
        "nor",
        "but",
        "its",
        "our",
        "their",
        "his",
        "her",
        "we",
        "us",
    ]
)
_TERMINAL = ".!?:"
_DOT_LEADER = re.compile(r"\.{3,}|…")


def _title_case(words: list[str]) -> bool:
    if not words or not words[0][0].isupper():
        return False
    return all(w[0].isupper() or w in _SMALL_WORDS for w in words)


def _all_caps(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 2 and all(c.isupper() for c in letters)


def _capitalised_heading(text: str, isolated: bool = False) -> int:
    """Level for a short ALL CAPS (1) or Title Case (2) line, or 0 if it is not a heading.

    ``isolated`` (blank lines above and below) also admits short sentence-case lines such as
    "Our structure", common in UK public-sector documents.
    """
    if (
        not text[0].isalnum()
        or "\t" in text
        or _DOT_LEADER.search(text)
        or text[-1] in ".,;"
        or LIST_MARKER.match(text)
    ):
        return 0
    tokens = text.split()
    if len(tokens) > MAX_HEADING_WORDS or (text.endswith(":") and len(tokens) > 4):
        return 0
    words = _WORD.findall(text)
    numbers = sum(1 for t in tokens if _NUMBER_TOKEN.match(t))
    if not words or numbers > 2 or numbers >= len(words):
        return 0
    if _all_caps(text):
        return 1
    if _title_case(words) or (
        isolated and text[0].isupper() and len(tokens) <= 8 and text[-1] not in _TERMINAL
    ):
        return 1 if classify_section(text) != "other" or _is_major_other(text) else 2
    return 0


def _numbered_heading(text: str, neighbour_is_item: bool, short: bool) -> tuple[int, str] | None:
    """'3.2 Findings' / '3. Background': level is the numbering depth."""
    match = _NUMBERED.match(text)
    if not match:
        return None
    number, rest = match.group(1), match.group(3)
    depth = number.count(".") + 1
    words = rest.split()
    if len(words) > MAX_HEADING_WORDS or rest[-1] in ".,;" or not rest[0].isupper():
        return None
    kind_word = len(words) <= 4 and (classify_section(rest) != "other" or _is_major_other(rest))
    titled = _capitalised_heading(rest) > 0 or classify_section(rest) != "other"
    if depth == 1 and kind_word:
        return depth, text  # "6. Recommendations" heads its own numbered list
    # Sentence-case short titles ("2. The babies") count too, but never next to list items.
    plain = short and len(words) <= 6 and rest[-1] not in _TERMINAL
    if depth == 1 and (neighbour_is_item or len(words) > 8 or not (titled or plain)):
        return None
    if depth == 1 and not titled:
        return 2, text  # a sub-heading: "3. Online risk was missed" under "Findings"
    if depth > 1 and not (titled or short):
        return None
    return depth, text


def _md_title(rest: str) -> str:
    """Title of an ATX heading without its trailing spaces and closing #s."""
    return rest.rstrip().rstrip("#").rstrip()


def _line_heading(
    text: str, prev: str | None, nxt: str | None, short: bool, isolated: bool = False
) -> tuple[int, str] | None:
    """(level, title) when a stripped line looks like a heading, else None."""
    md = _MD_HEADING.match(text)
    if md:
        title = _md_title(md.group(2))
        return (len(md.group(1)), title) if title else None
    if prev is not None and prev[-1] not in _TERMINAL:
        return None  # a wrapped line in the middle of a paragraph
    if len(text) > 150:
        return None
    keyword = _KEYWORD_HEADING.match(text)
    if keyword:
        if len(text.split()) > MAX_HEADING_WORDS + 3 or text[-1] in ".,;":
            return None
        return (1 if keyword.group(1) else 3), text
    neighbour_is_item = any(n is not None and LIST_MARKER.match(n) for n in (prev, nxt))
    numbered = _numbered_heading(text, neighbour_is_item, short)
    if numbered or _NUMBERED.match(text):
        return numbered
    level = _capitalised_heading(text, isolated)
    return (level, text) if level else None


# --- units from plain lines (PDF, text) -------------------------------------------------------


def _line_width(lengths: list[int]) -> int:
    """Typical full line width: wrapped text has many lines near it, final lines are shorter."""
    if not lengths:
        return 0
    ordered = sorted(lengths)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]


def _running_headers(lines: list[str], pages: int) -> set[str]:
    """Short lines repeated on many pages (running headers/footers), digits normalised.

    Sentences (ending in a full stop) and list items are never treated as headers, so a
    repeated remark such as "No further action was taken." stays a passage.
    """
    # A short document (an estimated page count under 3 for text without pages) needs more
    # evidence: four repeats of a line long enough not to be a numbered heading ("Finding 2").
    min_length = 0 if pages >= 3 else 25
    counts = Counter(
        _header_key(line)
        for line in lines
        if min_length <= len(line) <= 80 and not line.endswith(".") and not LIST_MARKER.match(line)
    )
    threshold = max(3, int(pages * 0.5)) if pages >= 3 else 4
    return {key for key, count in counts.items() if count >= threshold}


def _header_key(line: str) -> str:
    return re.sub(r"\d+", "#", line.lower())


class _LineSplitter:
    """Groups lines into headings, paragraphs (wrapped lines joined), list items, table rows."""

    def __init__(self, text: str, pages: int) -> None:
        self.text = text
        self.units: list[_Unit] = []
        self.current: _Unit | None = None
        self.lines: list[tuple[int, int, str]] = []
        offset = 0
        for raw in text.split("\n"):
            stripped = raw.strip()
            lead = len(raw) - len(raw.lstrip())
            self.lines.append((offset + lead, offset + lead + len(stripped), stripped))
            offset += len(raw) + 1
        nonblank = [s for _, _, s in self.lines if s]
        self.width = _line_width([len(s) for s in nonblank])
        self.running = _running_headers(nonblank, pages)
        self.contents = contents_lines([s for _, _, s in self.lines])

    def run(self) -> list[_Unit]:
        prev: str | None = None
        for index, (start, end, line) in enumerate(self.lines):
            if not line or index in self.contents or self._is_noise(line):
                self._close()
                prev = None
                continue
            was_heading = self._line(index, start, end, line, prev)
            prev = None if was_heading else line
        self._close()
        return self.units

    def _is_noise(self, line: str) -> bool:
        return bool(_PAGE_NUMBER.match(line) or _PAGE_FOOTER.search(line)) or (
            bool(self.running) and _header_key(line) in self.running
        )

    def _blank_before(self, index: int) -> bool:
        return index == 0 or not self.lines[index - 1][2]

    def _next(self, index: int) -> str | None:
        if index + 1 < len(self.lines):
            return self.lines[index + 1][2] or None
        return None

    def _line(self, index: int, start: int, end: int, line: str, prev: str | None) -> bool:
        """Route one non-blank line; returns True when it was a heading."""
        short = len(line) <= max(40, int(self.width * 0.7))
        nxt = self._next(index)
        isolated = prev is None and nxt is None and self._blank_before(index)
        heading = (
            None
            if " | " in line or self._wraps(line, nxt, short)
            else _line_heading(line, prev, nxt, short, isolated)
        )
        if heading:
            self._close()
            self.units.append(_Unit("heading", start, end, heading[0], heading[1]))
            return True
        if "\t" in line.strip("\t"):
            self._close()
            self.units.append(_Unit("table_row", start, end))
        elif LIST_MARKER.match(line):
            self._close()
            self.current = _Unit("list_item", start, end)
        elif self.current is not None and not self._breaks(prev, line):
            self.current.end = end
        else:
            self._close()
            self.current = _Unit("paragraph", start, end)
        return False

    def _wraps(self, line: str, nxt: str | None, short: bool) -> bool:
        """A full-width line that runs on into the next line is the start of a paragraph
        ("4.1 Finding 1: Neglect was not ... / recognised."), never a heading."""
        if short or nxt is None or line[-1] in _TERMINAL:
            return False
        return not (LIST_MARKER.match(nxt) or _NUMBERED.match(nxt) or _MD_HEADING.match(nxt))

    def _breaks(self, prev: str | None, line: str) -> bool:
        """A new paragraph starts after a short line that ended a sentence."""
        if prev is None:
            return True
        ended = prev[-1] in _TERMINAL or prev.endswith((".”", '."', ".)"))
        if ended and _NUMBERED.match(line) and "." in line.split()[0]:
            return True  # "2.2 Finding 2: ..." after a full last line: a numbered paragraph
        starts = line[0].isupper() or line[0].isdigit() or line[0] in "\"“‘'("
        return ended and starts and len(prev) < self.width * 0.8

    def _close(self) -> None:
        if self.current is not None:
            self.units.append(self.current)
            self.current = None


# --- units from reader blocks (DOCX, HTML, Markdown) ---------------------------------------


def _units_from_blocks(doc: ExtractedDocument) -> list[_Unit]:
    has_headings = any(block.kind == "heading" for block in doc.blocks)
    units: list[_Unit] = []
    for block in doc.blocks:
        if block.kind == "heading":
            title = " ".join(block.text.split())
            units.append(_Unit("heading", block.start, block.end, block.level or 2, title))
            continue
        inferred = None
        if not has_headings and block.kind == "paragraph" and "\n" not in block.text:
            inferred = _line_heading(block.text, None, None, short=len(block.text) <= 60)
        if inferred:
            units.append(_Unit("heading", block.start, block.end, inferred[0], inferred[1]))
        elif not _PAGE_NUMBER.match(block.text):
            units.append(_Unit(block.kind, block.start, block.end))
    return units


# --- assembling sections ----------------------------------------------------------------------


def _assemble(text: str, units: list[_Unit]) -> list[Section]:
    sections: list[Section] = []
    current = Section("", "other", 0, 0, 0)
    ancestors: list[tuple[int, SectionKind]] = []
    for unit in units:
        if unit.kind == "heading":
            if current.title or current.passages:
                sections.append(current)
            kind = _heading_kind(unit.title, unit.level, ancestors)
            current = Section(unit.title, kind, unit.level, unit.start, unit.end)
            continue
        if not current.passages and not current.title:
            current.start = unit.start
        current.passages.append(
            PassageSpan(text[unit.start : unit.end], unit.start, unit.end, unit.kind)  # type: ignore[arg-type]
        )
        current.end = unit.end
    if current.title or current.passages:
        sections.append(current)
    return sections


def _heading_kind(title: str, level: int, ancestors: list[tuple[int, SectionKind]]) -> SectionKind:
    """Own kind if the title says so; otherwise the nearest enclosing section's kind."""
    while ancestors and ancestors[-1][0] >= level:
        ancestors.pop()
    kind = classify_section(title)
    if kind == "other" and ancestors and not _is_major_other(title):
        kind = ancestors[-1][1]
    ancestors.append((level, kind))
    return kind


def _split_long(sections: list[Section]) -> None:
    """Split passages over MAX_PASSAGE_CHARS at sentence boundaries (spaCy only here)."""
    long_ones = [p for s in sections for p in s.passages if len(p.text) > MAX_PASSAGE_CHARS]
    if not long_ones:
        return
    spans = dict(
        zip(
            (id(p) for p in long_ones),
            sentence_spans_many(p.text for p in long_ones),
            strict=True,
        )
    )
    for section in sections:
        out: list[PassageSpan] = []
        for passage in section.passages:
            if id(passage) in spans:
                out.extend(_chunk(passage, spans[id(passage)]))
            else:
                out.append(passage)
        section.passages = out


def _chunk(passage: PassageSpan, spans: list[tuple[int, int]]) -> list[PassageSpan]:
    chunks: list[tuple[int, int]] = []
    for start, end in spans:
        if chunks and end - chunks[-1][0] <= MAX_PASSAGE_CHARS:
            chunks[-1] = (chunks[-1][0], end)
        else:
            chunks.append((start, end))
    if len(chunks) <= 1:
        return [passage]
    base = passage.start
    return [PassageSpan(passage.text[s:e], base + s, base + e, passage.kind) for s, e in chunks]


def segment(doc: ExtractedDocument) -> list[Section]:
    """Split a document into sections (with kinds) and passages with exact offsets."""
    units = _units_from_blocks(doc) if doc.blocks else _LineSplitter(doc.text, doc.pages).run()
    sections = _assemble(doc.text, units)
    _split_long(sections)
    return sections

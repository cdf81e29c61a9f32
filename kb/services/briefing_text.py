"""Sentence spans and excerpts for briefings: whole sentences as the authors wrote them.

A regular-expression splitter is enough (review prose is edited English) and keeps briefings free
of the spaCy pipeline; every briefing item is cut here, at sentence boundaries, within a budget.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass


# --------------------------------------------------------------------------- sentences


_BOUNDARY = re.compile(r"[.!?…]+[\"'’”)\]]*(?=\s+|$)")
_ABBREVIATION_WORDS = "e.g i.e etc dr mr mrs ms st no nos vs cf approx para paras fig ref dept govt"
_ABBREVIATIONS = frozenset(_ABBREVIATION_WORDS.split())
_ENUMERATOR = re.compile(r"\(?(?:\d+(?:\.\d+)*|[a-z]|[ivx]+)", re.IGNORECASE)
_LEADER = re.compile(
    r"^\s*(?:(?:recommendation|finding|learning point|learning)\s*\d*(?:\.\d+)*\s*[:.)\-–—]\s*"
    r"|\(?\d+(?:\.\d+)*[.)]\s+|\d+(?:\.\d+)+\s+|\(?[a-z]\)\s+|\(?[ivx]+\)\s+|[•\-–—*▪◦]\s+)",
    re.IGNORECASE,
)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """``[start, end)`` spans of the sentences in ``text``, whitespace excluded.

    A regular-expression splitter is enough here (review prose is edited English) and keeps
    briefings free of the spaCy pipeline; it guards the abbreviations review authors use most.
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.end()
        word = re.search(r"([\w.]+)$", text[start : match.start()])
        token = word.group(1).lower().rstrip(".") if word else ""
        if token in _ABBREVIATIONS or (
            len(token) == 1 and token.isalpha() and match.group() == "."
        ):
            continue
        if _ENUMERATOR.fullmatch(text[start : match.start()].strip()):
            continue  # "1." / "(a)." / "iv." opening a numbered paragraph is not a sentence
        following = text[end:].lstrip()[:1]
        if following and following.islower():
            continue
        _append_span(spans, text, start, end)
        start = end
    _append_span(spans, text, start, len(text))
    return spans


def _append_span(spans: list[tuple[int, int]], text: str, start: int, end: int) -> None:
    piece = text[start:end]
    stripped = piece.strip()
    if stripped:
        offset = start + (len(piece) - len(piece.lstrip()))
        spans.append((offset, offset + len(stripped)))


def excerpt(text: str, *, budget: int, focus: int | None = None, max_sentences: int = 3) -> str:
    """Whole sentences of ``text`` within ``budget`` characters, from the one containing
    ``focus`` (an offset, e.g. tag evidence) or from the start.

    Only a first sentence longer than the budget is cut (at a word, marked with "…"): one page
    is a hard limit, and a 90-word sentence read aloud is not a briefing.
    """
    lead = _LEADER.match(text)
    if lead:
        focus = None if focus is None else max(0, focus - lead.end())
        text = text[lead.end() :]
    spans = sentence_spans(text)
    if not spans:
        return ""
    first = 0
    if focus is not None:
        first = next((i for i, (s, e) in enumerate(spans) if s <= focus < e), 0)
    chosen: list[str] = []
    used = 0
    for s, e in spans[first : first + max_sentences]:
        sentence = text[s:e]
        if chosen and used + len(sentence) + 1 > budget:
            break
        chosen.append(sentence)
        used += len(sentence) + 1
    result = re.sub(r"\s+", " ", " ".join(chosen)).strip()
    if len(result) > budget * 1.3:
        cut = result[:budget].rsplit(" ", 1)[0].rstrip(",;:–— ")
        result = f"{cut}…"
    return result

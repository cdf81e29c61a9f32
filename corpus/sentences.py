"""Sentence spans with a blank English spaCy pipeline and its rule-based sentencizer.

The sentencizer is fast and deterministic, which matters when splitting long passages and
locating evidence across thousands of documents. spaCy's tokenizer exceptions already keep
"Dr.", "e.g." and "i.e." whole; the post-processing here fixes the cases reviews are full of
that the sentencizer gets wrong: list numbers ("1.") and a few abbreviations it splits after.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

import spacy
from spacy.language import Language
from spacy.tokens import Doc

from nlp.pipeline import tokenizer_safe

Span = tuple[int, int]

_MARKER_ONLY = re.compile(r"^(?:\(?(?:\d{1,3}(?:\.\d{1,3})*|[a-zA-Z]|[ivxlcIVXLC]{1,5})[.)]|•|-)$")
_ABBREVIATION_END = re.compile(
    r"(?:^|[\s(])(?:Dr|Mr|Mrs|Ms|Mx|Prof|St|No|Nos|para|paras|approx|etc|cf|vs|Fig|Sgt|Insp|"
    r"Det|Cllr|Rev|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|e\.g|i\.e|a\.m|p\.m)\.$"
)
_CONTINUES = re.compile(r"^[a-z0-9(,;]")
_TRAILING_MARKER = re.compile(r"\n[ \t]*\(?(?:\d{1,3}|[a-zA-Z]|[ivxlc]{1,5})[.)]$")


@lru_cache(maxsize=1)
def get_nlp() -> Language:
    """The shared blank English pipeline with only a sentencizer (loaded once per process)."""
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.max_length = 5_000_000
    return nlp


def _raw_spans(doc: Doc) -> list[Span]:
    spans: list[Span] = []
    text = doc.text
    for sent in doc.sents:
        start, end = sent.start_char, sent.end_char
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if start < end:
            spans.append((start, end))
    return spans


def _should_merge(text: str, left: Span, right: Span) -> bool:
    """Join a list marker to its item, and an abbreviation to what follows it."""
    left_text = text[left[0] : left[1]]
    if _MARKER_ONLY.match(left_text):
        return True
    if _ABBREVIATION_END.search(left_text):
        return bool(_CONTINUES.match(text[right[0] : right[1]]))
    return False


def _detach_markers(text: str, spans: list[Span]) -> list[Span]:
    """ "Actions:\n1." -> "Actions:" + "1. ...": a list number belongs to the next sentence."""
    out: list[Span] = []
    carry: int | None = None
    for index, (start, end) in enumerate(spans):
        if carry is not None:
            start, carry = carry, None
        match = _TRAILING_MARKER.search(text, start, end)
        if match and index + 1 < len(spans):
            carry = match.start() + 1 + (len(match.group()) - len(match.group().lstrip()) - 1)
            end = match.start()
            while end > start and text[end - 1].isspace():
                end -= 1
        if start < end:
            out.append((start, end))
    return out


def _merge(text: str, spans: list[Span]) -> list[Span]:
    merged: list[Span] = []
    for span in _detach_markers(text, spans):
        if merged and _should_merge(text, merged[-1], span):
            merged[-1] = (merged[-1][0], span[1])
        else:
            merged.append(span)
    return merged


#: Texts longer than this are split into pieces at line or sentence ends before spaCy sees them,
#: so ``nlp.max_length`` (spaCy's E088) is never reached, whatever the document's size.
CHUNK_CHARS = 200_000


def chunk_bounds(text: str, limit: int | None = None) -> list[Span]:
    """``[start, end)`` pieces of at most ``limit`` characters covering ``text``, each cut
    after a paragraph break, else a line break, else a full stop and space, else a space
    (only a text with no space at all in ``limit`` characters is cut mid-word)."""
    limit = limit or CHUNK_CHARS
    bounds: list[Span] = []
    start = 0
    while len(text) - start > limit:
        window_end = start + limit
        cut = -1
        for mark in ("\n\n", "\n", ". ", " "):
            found = text.rfind(mark, start + limit // 2, window_end)
            if found != -1:
                cut = found + len(mark)
                break
        if cut <= start:
            cut = window_end
        bounds.append((start, cut))
        start = cut
    bounds.append((start, len(text)))
    return bounds


def sentence_spans(text: str) -> list[Span]:
    """Character spans ``[start, end)`` of the sentences in ``text``, trimmed of whitespace."""
    return sentence_spans_many([text])[0]


def sentence_spans_many(texts: Iterable[str], batch_size: int = 256) -> list[list[Span]]:
    """Sentence spans for many texts at once, using ``nlp.pipe`` for throughput; a very long
    text goes through in pieces (:func:`chunk_bounds`) with its spans shifted back."""
    items = list(texts)
    pieces: list[tuple[int, int, int]] = []  # (item index, piece start, piece end)
    for index, text in enumerate(items):
        if text.strip():
            pieces += [(index, a, b) for a, b in chunk_bounds(text)]
    results: list[list[Span]] = [[] for _ in items]
    safe = (tokenizer_safe(items[i][a:b]) for i, a, b in pieces)
    for (index, a, _end), doc in zip(
        pieces, get_nlp().pipe(safe, batch_size=batch_size), strict=True
    ):
        results[index] += _merge(items[index], [(s + a, e + a) for s, e in _raw_spans(doc)])
    return results

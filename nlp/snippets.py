"""Query-biased snippets and safe highlighting for search results.

Terms are matched with :func:`nlp.ranking.iter_terms`, the normaliser BM25 uses, so what is
highlighted is what made the passage match ("assessments" highlights for a query on
"assessment"). Highlighting escapes the passage text before adding ``<mark>``: review text comes
from uploaded documents and is never trusted as HTML.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from markupsafe import Markup, escape

from nlp.tokens import iter_terms, tokenize

__all__ = ["ELLIPSIS", "HIGHLIGHT_SKIP", "Snippet", "highlight_html", "make_snippet"]

ELLIPSIS = "…"
# Line breaks inside a passage would break a one-line result; replacing them one-for-one keeps
# every offset valid.
_FLATTEN = str.maketrans({"\n": " ", "\r": " ", "\t": " ", "\f": " ", "\v": " "})


@dataclass(frozen=True, slots=True)
class Snippet:
    """A window of a passage. ``highlights`` are ``[start, end)`` offsets into ``text``;
    ``start``/``end`` locate the window in the original passage (for "show in document")."""

    text: str
    highlights: list[tuple[int, int]] = field(default_factory=list)
    start: int = 0
    end: int = 0


# Words BM25 keeps (negations are a term of art in "was not brought") or that reports use on
# every page ("said", "showed"): highlighting them marks half a passage and tells the reader
# nothing about why it matched, so they are never highlighted.
HIGHLIGHT_SKIP: frozenset[str] = frozenset(
    tokenize(
        "not no nor never none said says say saying told tell showed shows show shown "
        "noted note stated state reported report described describe made make went go "
        "also however therefore one two time times day days"
    )
)


def _matches(text: str, query: str) -> list[tuple[int, int, str]]:
    """Spans of ``text`` whose normalised form is a query term (stop words never)."""
    wanted = set(tokenize(query)) - HIGHLIGHT_SKIP
    if not wanted:
        return []
    return [(s, e, term) for s, e, term in iter_terms(text) if term in wanted]


def _best_window(matches: list[tuple[int, int, str]], width: int) -> tuple[int, int]:
    """Indices ``[i, j)`` of the run of matches fitting in ``width`` chars that covers the most
    distinct query terms, then the most matches (two pointers, O(matches))."""
    best, best_key = (0, 1), (0, 0)
    j = 0
    counts: dict[str, int] = {}
    for i, (start, _, _) in enumerate(matches):
        while j < len(matches) and matches[j][1] - start <= width:
            counts[matches[j][2]] = counts.get(matches[j][2], 0) + 1
            j += 1
        key = (len(counts), j - i)
        if key > best_key:
            best, best_key = (i, j), key
        term = matches[i][2]
        counts[term] -= 1
        if not counts[term]:
            del counts[term]
    return best


def _snap(text: str, start: int, end: int) -> tuple[int, int]:
    """Move a window's edges inwards to word boundaries so no word is cut in half."""
    if start > 0 and not text[start - 1].isspace():
        space = text.find(" ", start, end)
        start = space + 1 if space != -1 else start
    if end < len(text) and not text[end].isspace():
        space = text.rfind(" ", start, end)
        end = space if space > start else end
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _window(text: str, spans: list[tuple[int, int]], width: int) -> tuple[int, int]:
    """Centre a ``width``-char window on the chosen matches, clamped to the text."""
    if not spans:
        return 0, min(len(text), width)
    first, last = spans[0][0], spans[-1][1]
    slack = max(width - (last - first), 0)
    start = max(0, min(first - slack // 2, len(text) - width))
    return start, min(len(text), start + width)


def make_snippet(text: str, query: str, *, width: int = 240) -> Snippet:
    """Best ``width``-char excerpt of ``text`` for ``query`` with query terms highlighted.

    Picks the window densest in distinct query terms, cuts at word boundaries and marks cut
    ends with "…". Without matches the passage's opening is returned.
    """
    flat = text.translate(_FLATTEN)
    matches = _matches(flat, query)
    if len(flat) <= width:
        start, end = 0, len(flat)
        chosen = matches
    else:
        i, j = _best_window(matches, width) if matches else (0, 0)
        chosen = matches[i:j]
        start, end = _snap(flat, *_window(flat, [(s, e) for s, e, _ in chosen], width))
        chosen = [m for m in matches if m[0] >= start and m[1] <= end]
    prefix = ELLIPSIS if start > 0 else ""
    suffix = ELLIPSIS if end < len(flat) else ""
    shift = len(prefix) - start
    highlights = [(s + shift, e + shift) for s, e, _ in chosen]
    return Snippet(prefix + flat[start:end] + suffix, highlights, start, end)


def highlight_html(snippet: Snippet) -> Markup:
    """Snippet as HTML: every piece of text escaped, highlights wrapped in ``<mark>``.

    Overlapping or out-of-range highlights are skipped rather than trusted.
    """
    parts: list[Markup] = []
    pos = 0
    for start, end in sorted(snippet.highlights):
        if start < pos or end > len(snippet.text) or start >= end:
            continue
        parts.append(escape(snippet.text[pos:start]))
        parts.append(Markup("<mark>") + escape(snippet.text[start:end]) + Markup("</mark>"))
        pos = end
    parts.append(escape(snippet.text[pos:]))
    return Markup("").join(parts)

"""Passage text with theme evidence marked: escaped first, marks inserted at evidence offsets.

Why build Markup by hand instead of ``|safe``: document text is untrusted (an uploaded file can
contain ``<script>``). Every character of it goes through ``markupsafe.escape``; the only markup
added is ``<mark>`` elements whose attributes are built from escaped theme ids and class names
chosen here. Offsets come from the tags' ``passage_start``/``passage_end`` and are clamped to the
passage, so a stale tag can never splice markup into the middle of an entity.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from kb.models import TagStatus, ThemeTagPublic

PALETTE_SIZE = 8


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int
    theme_id: str


def evidence_spans(tags: Iterable[ThemeTagPublic], length: int) -> list[Span]:
    """Evidence of suggested and confirmed tags (rejected ones are not highlighted)."""
    spans = []
    for tag in tags:
        if tag.status == TagStatus.REJECTED:
            continue
        for item in tag.evidence or []:
            try:
                start = max(0, min(length, int(item.get("passage_start", 0))))
                end = max(0, min(length, int(item.get("passage_end", 0))))
            except (TypeError, ValueError):
                continue
            if start < end:
                spans.append(Span(start, end, tag.theme_id))
    return spans


def highlight(text: str, spans: Sequence[Span], colour_of: dict[str, int]) -> Markup:
    """``text`` escaped, with each stretch covered by evidence wrapped in one ``<mark>``.

    Overlapping evidence of several themes is split at every boundary; a stretch covered by more
    than one theme gets all their ids in ``data-themes`` and the first theme's colour.
    """
    cuts = sorted({0, len(text), *(s.start for s in spans), *(s.end for s in spans)})
    out: list[Markup] = []
    for start, end in zip(cuts, cuts[1:], strict=False):
        piece = escape(text[start:end])
        themes = sorted({s.theme_id for s in spans if s.start <= start and end <= s.end})
        if not themes:
            out.append(piece)
            continue
        colour = colour_of.get(themes[0], 0) % PALETTE_SIZE
        ids = escape(" ".join(themes))
        # ids and piece are escaped above and colour is an int: plain formatting is safe here
        # and much cheaper than Markup.format on pages with hundreds of marks.
        out.append(
            Markup(f'<mark class="t{colour}" data-themes="{ids}" title="{ids}">{piece}</mark>')
        )
    return Markup("").join(out)

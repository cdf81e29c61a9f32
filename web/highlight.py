"""Passage text with theme evidence marked: escaped first, marks inserted at evidence offsets.

Why build Markup by hand instead of ``|safe``: document text is untrusted (an uploaded file can
contain ``<script>``). Every character of it goes through ``markupsafe.escape``; the only markup
added is ``<mark>`` elements whose attributes are built from escaped theme ids and class names
chosen here. Offsets come from the tags' ``passage_start``/``passage_end`` and are clamped to the
passage, so a stale tag can never splice markup into the middle of an entity.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from markupsafe import Markup, escape

from kb.models import TagStatus, ThemeTagPublic

log = logging.getLogger(__name__)

PALETTE_SIZE = 12  # .t0 … .t11 in static/style.css
#: The same twelve hues, dark enough for lines and text on white (charts): a theme's trend line
#: has the hue of its highlight and chips.
THEME_INK = [
    "#8a6d00", "#1f6fa3", "#2f7a2b", "#b0306a", "#6b3fa0", "#b05a00",
    "#1b7f78", "#6f6f12", "#9c2f95", "#3d52a8", "#a04e1c", "#4f7a10",
]  # fmt: skip


def theme_colours(theme_ids: Iterable[str]) -> dict[str, int]:
    """Theme id → palette index, from the taxonomy's order: the same theme has the same colour
    on every page and review (not "first theme seen on this page gets yellow")."""
    return {theme_id: i % PALETTE_SIZE for i, theme_id in enumerate(theme_ids)}


def colour_for(theme_id: str, colours: dict[str, int]) -> int:
    """The theme's colour; ids missing from the taxonomy get a stable one from their name."""
    if theme_id in colours:
        return colours[theme_id]
    return zlib.crc32(theme_id.encode()) % PALETTE_SIZE


def ink_for(theme_id: str, colours: dict[str, int]) -> str:
    """The theme's hue as a dark colour for chart lines (THEME_INK)."""
    return THEME_INK[colour_for(theme_id, colours)]


def taxonomy_colours(taxonomy_files: Sequence[Path] = ()) -> dict[str, int]:
    """Theme colours from the configured taxonomy's order: what every page uses, so a chip on
    the search page, a highlight on a review and a line on the themes chart agree."""
    return dict(_taxonomy_colours(tuple(taxonomy_files)))


@lru_cache(maxsize=4)
def _taxonomy_colours(taxonomy_files: tuple[Path, ...]) -> tuple[tuple[str, int], ...]:
    from nlp.taxonomy import load_taxonomy

    try:
        taxonomy = load_taxonomy(extra=list(taxonomy_files))
    except Exception:  # noqa: BLE001 - colours are cosmetic: colour_for falls back to the name
        log.exception("could not load the taxonomy for theme colours")
        return ()
    return tuple(theme_colours(theme.id for theme in taxonomy).items())


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


def highlight(
    text: str,
    spans: Sequence[Span],
    colour_of: dict[str, int],
    keys: dict[str, int] | None = None,
    labels: dict[str, str] | None = None,
) -> Markup:
    """``text`` escaped, with each stretch covered by evidence wrapped in one ``<mark>``.

    Overlapping evidence of several themes is split at every boundary; a stretch covered by more
    than one theme gets all their ids in ``data-themes`` and the first theme's colour. Colour is
    never the only signal: after each highlighted run comes its themes' key numbers (the
    legend's) and, for screen readers, their names.
    """
    keys = keys or {}
    labels = labels or {}
    cuts = sorted({0, len(text), *(s.start for s in spans), *(s.end for s in spans)})
    pieces = [
        (start, end, sorted({s.theme_id for s in spans if s.start <= start and end <= s.end}))
        for start, end in zip(cuts, cuts[1:], strict=False)
    ]
    out: list[Markup] = []
    for i, (start, end, themes) in enumerate(pieces):
        piece = escape(text[start:end])
        if not themes:
            out.append(piece)
            continue
        colour = colour_for(themes[0], colour_of)
        ids = escape(" ".join(themes))
        names = escape(", ".join(labels.get(t, t) for t in themes))
        # ids, names and piece are escaped above and colour is an int: plain formatting is safe
        # here and much cheaper than Markup.format on pages with hundreds of marks.
        out.append(
            Markup(f'<mark class="t{colour}" data-themes="{ids}" title="{names}">{piece}</mark>')
        )
        if i + 1 < len(pieces) and pieces[i + 1][2] == themes:
            continue  # the same themes go on: one key at the end of the run
        numbers = ",".join(str(keys[t]) for t in themes if t in keys)
        if numbers:
            out.append(Markup(f'<sup class="key" aria-hidden="true">{numbers}</sup>'))
        out.append(Markup(f'<span class="visually-hidden"> (theme: {names})</span>'))
    return Markup("").join(out)

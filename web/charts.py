"""SVG charts for the themes dashboard, drawn with matplotlib (Agg, no display needed).

Charts are computed from the same data as the tables beside them (``api.routes.themes``), so a
review hidden from the reader never counts in a chart either. Output is deterministic (fixed
``svg.hashsalt``, no date) and keeps text as ``<text>`` (searchable, accessible, testable).

The page's CSP forbids inline styles, and matplotlib writes ``style="…"`` attributes and a
``<style>`` element. :func:`clean_svg` turns them into SVG presentation attributes (same names
as the CSS properties), so the SVG is clean under the CSP whether shown in an ``<img>`` or
opened on its own. It never contains scripts.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Sequence
from functools import lru_cache
from html import escape
from typing import Any

import matplotlib

matplotlib.use("Agg")

from matplotlib import rc_context  # noqa: E402 - after choosing the backend
from matplotlib.colors import LinearSegmentedColormap  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from web.highlight import ink_for  # noqa: E402

RC = {
    "svg.fonttype": "none",  # text as <text>, not paths
    "svg.hashsalt": "kb-dashboard",  # stable clip-path ids: same data, same bytes
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
PALETTE = ["#24508f", "#c0392b", "#23663a", "#b7791f", "#6b3fa0", "#1b8a8a", "#7a4b2a", "#555b66"]
HEAT = LinearSegmentedColormap.from_list("kb-heat", ["#ffffff", "#24508f"])
MAX_LABEL = 40
_lock = threading.Lock()  # rcParams are process-wide: render one chart at a time

_STYLE_ATTR = re.compile(r'\sstyle="([^"]*)"')
_STYLE_ELEMENT = re.compile(r"<style[^>]*>(.*?)</style>", re.S)
_PROPERTY = re.compile(r"^[a-z][a-z-]*$")


# --------------------------------------------------------------------------- output


def clean_svg(svg: str) -> str:
    """Presentation attributes instead of ``style`` attributes and ``<style>`` elements.

    SVG presentation attributes are not styles as far as a CSP is concerned, and they carry
    the same names as the CSS properties matplotlib writes. The ``* {…}`` rule of the removed
    ``<style>`` becomes attributes of the root ``<svg>``, which every element inherits.
    """
    rules = " ".join(_STYLE_ELEMENT.findall(svg))
    svg = _STYLE_ELEMENT.sub("", svg)
    svg = _STYLE_ATTR.sub(lambda m: _attributes(m.group(1)), svg)
    inherited = re.search(r"\*\s*\{([^}]*)\}", rules)
    if inherited:
        svg = svg.replace("<svg ", "<svg" + _attributes(inherited.group(1)) + " ", 1)
    return svg.replace("<defs>\n  \n </defs>", "")


def _attributes(style: str) -> str:
    out = []
    for declaration in style.split(";"):
        name, sep, value = declaration.partition(":")
        name, value = name.strip(), value.strip()
        if sep and _PROPERTY.match(name) and value:
            out.append(f' {name}="{escape(value, quote=True)}"')
    return "".join(out)


def _svg(fig: Figure) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    return clean_svg(buffer.getvalue())


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…"


def _empty(fig: Figure, message: str) -> None:
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", color="#5b6475")


def _render(width: float, height: float, draw: Any) -> str:
    with _lock, rc_context(RC):
        fig = Figure(figsize=(width, height))
        draw(fig)
        return _svg(fig)


# --------------------------------------------------------------------------- charts


def heatmap_svg(matrix: dict[str, Any], *, limit: int = 30) -> str:
    """Theme × year heatmap of review counts, each cell labelled with its number, and each row's
    total and share of the dated reviews written at its end (colour is never the only cue)."""
    return _cached_svg("heatmap", matrix, limit)


def _heatmap(matrix: dict[str, Any], limit: int) -> str:
    years: list[int] = matrix["years"]
    rows = matrix["themes"][:limit]
    dated = sum(matrix.get("totals", [])) or 1
    height = 1.3 + 0.3 * max(len(rows), 1)
    width = 4.5 + 0.45 * max(len(years), 1)

    def draw(fig: Figure) -> None:
        if not rows or not years:
            _empty(fig, "No dated reviews match these filters")
            return
        ax = fig.add_subplot()
        counts = [row["counts"] for row in rows]
        top = max(max(c) for c in counts) or 1
        ax.pcolormesh(counts, cmap=HEAT, vmin=0, vmax=top, edgecolors="#d9dde5", linewidth=0.5)
        ax.invert_yaxis()
        ax.set_xticks([i + 0.5 for i in range(len(years))], [str(y) for y in years])
        ax.set_yticks([i + 0.5 for i in range(len(rows))], [_short(r["label"]) for r in rows])
        ax.tick_params(length=0)
        ax.xaxis.tick_top()
        for spine in ax.spines.values():
            spine.set_visible(False)
        for y, row in enumerate(counts):
            for x, value in enumerate(row):
                if value:
                    colour = "#ffffff" if value > top / 2 else "#1d2330"
                    ax.text(x + 0.5, y + 0.5, str(value), ha="center", va="center", color=colour)
            total = sum(row)
            ax.text(
                len(years) + 0.2, y + 0.5, f"{total} ({total / dated:.0%})", va="center",
                ha="left", color="#1d2330",
            )  # fmt: skip
        ax.text(len(years) + 0.2, -0.35, "Total (share)", va="bottom", ha="left", weight="bold")

    return _render(width, height, draw)


MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
LINES = ["-", "-", "-.", ":", "-", "-.", ":", "-"]


def trend_svg(
    matrix: dict[str, Any], *, top: int = 5, colours: dict[str, int] | None = None
) -> str:
    """One line per top theme (reviews with the theme per year) and all reviews (dashed). Each
    line has its own marker shape and its name written at its end, not only a colour; the
    colour is the theme's own hue (web/highlight.THEME_INK), as on every other page."""
    rows = [{**row, "ink": ink_for(row["id"], colours or {})} for row in matrix["themes"][:top]]
    return _cached_svg("trend", {**matrix, "themes": rows}, top)


def _trend(matrix: dict[str, Any], top: int) -> str:
    years: list[int] = matrix["years"]
    rows = matrix["themes"][:top]

    def draw(fig: Figure) -> None:
        if not rows or not years:
            _empty(fig, "No dated reviews match these filters")
            return
        ax = fig.add_subplot()
        ax.plot(years, matrix["totals"], color="#6b7280", linestyle="--", label="All reviews")
        ends = [(matrix["totals"][-1], "All reviews", "#6b7280")]
        for i, row in enumerate(rows):
            colour = row.get("ink") or PALETTE[i % len(PALETTE)]
            ax.plot(
                years, row["counts"], marker=MARKERS[i % len(MARKERS)], markersize=6,
                linestyle=LINES[i % len(LINES)], color=colour, label=_short(row["label"]),
            )  # fmt: skip
            ends.append((row["counts"][-1], _short(row["label"]), colour))
        for y, label, colour in _spread(ends, max(matrix["totals"] or [1])):
            ax.text(years[-1] + 0.25, y, label, va="center", ha="left", color=colour)
        ax.set_xlim(years[0] - 0.3, years[-1] + 0.3)
        ax.set_xticks(years, [str(y) for y in years])
        ax.set_ylabel("Reviews")
        ax.set_ylim(bottom=0)
        ax.yaxis.get_major_locator().set_params(integer=True)

    return _render(7.5, 3.6, draw)


def _spread(ends: list[tuple[float, str, str]], top: float) -> list[tuple[float, str, str]]:
    """Direct labels at the lines' ends, nudged apart so no two overlap."""
    gap = max(top, 1) * 0.07
    placed: list[tuple[float, str, str]] = []
    for y, label, colour in sorted(ends, key=lambda e: e[0]):
        if placed and y - placed[-1][0] < gap:
            y = placed[-1][0] + gap
        placed.append((y, label, colour))
    return placed


def recurrence_svg(recurrence: dict[str, Any], *, limit: int = 30) -> str:
    """Horizontal bars: in how many of the M reviews each theme appears ("N/M" at each bar)."""
    return _cached_svg("recurrence", recurrence, limit)


def _recurrence(recurrence: dict[str, Any], limit: int) -> str:
    total: int = recurrence["total_reviews"]
    rows = recurrence["themes"][:limit]
    height = 1.0 + 0.26 * max(len(rows), 1)

    def draw(fig: Figure) -> None:
        if not rows:
            _empty(fig, "No reviews match these filters")
            return
        ax = fig.add_subplot()
        positions = list(range(len(rows)))
        counts = [row["reviews"] for row in rows]
        ax.barh(positions, counts, color=PALETTE[0], height=0.7)
        ax.set_yticks(positions, [_short(r["label"]) for r in rows])
        ax.invert_yaxis()
        ax.set_xlim(0, max(total, 1) * 1.12)
        ax.set_xlabel(f"Reviews (of {total})")
        ax.xaxis.get_major_locator().set_params(integer=True)
        for y, n in zip(positions, counts, strict=True):
            ax.text(n, y, f" {n}/{total}", va="center", ha="left")

    return _render(7.5, height, draw)


def national_svg(rows: list[dict[str, Any]]) -> str:
    """Dot and bar: for each national figure a grey bar (the national share) and a dark dot
    (the local share), both with their percentage written beside them."""
    return _cached_svg("national", {"rows": rows}, 0)


def _national(data: dict[str, Any], _size: int) -> str:
    rows = data["rows"]
    height = 1.2 + 0.45 * max(len(rows), 1)

    def draw(fig: Figure) -> None:
        if not rows:
            _empty(fig, "No national reference figures")
            return
        ax = fig.add_subplot()
        positions = list(range(len(rows)))
        names = [_short(f"{r['label']}: {r['measure']}") for r in rows]
        national = [r["national_share"] * 100 for r in rows]
        local = [r["local_share"] * 100 for r in rows]
        ax.barh(positions, national, color="#c9ced8", height=0.6, label="England (national)")
        ax.scatter(local, positions, color="#24508f", s=60, zorder=3, marker="D", label="Here")
        for y, (n, here, row) in enumerate(zip(national, local, rows, strict=True)):
            ax.text(n + 1, y + 0.22, f"England {row['national_shown']}", va="center", fontsize=8)
            ax.text(here + 1, y - 0.22, f"Here {here:.0f}%", va="center", color="#24508f",
                    fontsize=8, weight="bold")  # fmt: skip
        ax.set_yticks(positions, names)
        ax.invert_yaxis()
        ax.set_xlim(0, 115)
        ax.set_xticks([0, 25, 50, 75, 100], ["0%", "25%", "50%", "75%", "100%"])
        ax.set_xlabel("Share of reviews")

    return _render(7.5, height, draw)


# --------------------------------------------------------------------------- cache


def _cached_svg(name: str, data: dict[str, Any], size: int) -> str:
    """A chart is a pure function of its numbers: rendered once per distinct data (the data
    itself comes from the results cache keyed by the data version and who may see what), so
    a dashboard load costs a JSON dump instead of a matplotlib render (~0.3 s each)."""
    return _render_cached(name, json.dumps(data, sort_keys=True, default=str), size)


@lru_cache(maxsize=256)
def _render_cached(name: str, data: str, size: int) -> str:
    draw = {
        "heatmap": _heatmap,
        "trend": _trend,
        "recurrence": _recurrence,
        "national": _national,
    }[name]
    return draw(json.loads(data), size)


def chart_names() -> Sequence[str]:
    """The charts the dashboard serves, by URL name."""
    return ("heatmap", "trend", "recurrence", "national")

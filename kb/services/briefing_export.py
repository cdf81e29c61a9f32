"""Briefing exports: HTML (print-ready), Word and PDF, each on one A4 page.

The same document leaves the system in three formats, so all three are drawn from one neutral
view of the briefing (:class:`BriefingView`): a draft just built and a saved row export alike.
Two rules apply to every format. Document text is never trusted as markup (Jinja2 autoescape;
python-docx and fpdf2 write text, not markup). A restricted briefing carries a visible
"RESTRICTED" marking at the top and bottom of the page, because a printout has no access control.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

__all__ = [
    "RESTRICTED_MARKING",
    "BriefingView",
    "UnsupportedFormat",
    "export",
    "to_docx",
    "to_html",
    "to_pdf",
    "view_of",
]

RESTRICTED_MARKING = "RESTRICTED – contains unpublished review material"
TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
SUFFIXES = (".html", ".docx", ".pdf")


class UnsupportedFormat(ValueError):
    """The output file's suffix is not one we can write."""


@dataclass(frozen=True, slots=True)
class ViewItem:
    text: str
    cite: str | None  # the cited review's pseudonym, e.g. "Child Y"
    review_id: int | None
    passage_id: int | None


@dataclass(frozen=True, slots=True)
class ViewSection:
    number: int
    heading: str
    items: tuple[ViewItem, ...]


@dataclass(frozen=True, slots=True)
class BriefingView:
    """What every exporter draws: title, marking, seven sections with citation labels."""

    title: str
    restricted: bool
    sections: tuple[ViewSection, ...]
    generated: date

    @property
    def marking(self) -> str | None:
        return RESTRICTED_MARKING if self.restricted else None


def view_of(briefing: Any) -> BriefingView:
    """A :class:`BriefingView` of a draft (``BriefingDraft``), a saved ``BriefingPublic`` or
    ``Briefing`` row, or a mapping of the same shape."""
    if isinstance(briefing, BriefingView):
        return briefing
    if isinstance(briefing, Mapping):
        title, restricted, sections = (
            briefing["title"],
            briefing.get("restricted", False),
            briefing["sections"],
        )
    else:
        title, restricted, sections = briefing.title, briefing.restricted, briefing.sections
    sections = [s.as_dict() if hasattr(s, "as_dict") else s for s in sections]
    labels = _labels(sections)
    return BriefingView(
        title=str(title),
        restricted=bool(restricted),
        sections=tuple(_view_section(s, labels) for s in sections),
        generated=date.today(),
    )


def _labels(sections: Sequence[Mapping[str, Any]]) -> dict[int, str]:
    labels: dict[int, str] = {}
    for section in sections:
        for source in section.get("sources", []):
            labels[int(source["review_id"])] = str(source["label"])
    return labels


def _view_section(section: Mapping[str, Any], labels: Mapping[int, str]) -> ViewSection:
    items = []
    for item in section.get("items", []):
        rid = item.get("review_id")
        cite = labels.get(rid, f"review {rid}") if rid is not None else None
        if cite and str(item["text"]).startswith(cite):
            cite = None  # "Child A (LCSPR, 2017): …" already names its source
        items.append(ViewItem(str(item["text"]), cite, rid, item.get("passage_id")))
    return ViewSection(int(section["number"]), str(section["heading"]), tuple(items))


def export(briefing: Any, path: str | Path) -> Path:
    """Write ``briefing`` to ``path`` in the format its suffix names (.html, .docx, .pdf)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UnsupportedFormat(
            f"cannot export a briefing to '{path.name}': use .html, .docx or .pdf"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".html":
        path.write_text(to_html(briefing), encoding="utf-8")
    elif suffix == ".docx":
        to_docx(briefing, path)
    else:
        to_pdf(briefing, path)
    return path


# --------------------------------------------------------------------------- HTML


@lru_cache(maxsize=1)
def _environment() -> Environment:
    """Autoescape on for every template: review text may contain anything, ``<script>`` too."""
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def to_html(briefing: Any) -> str:
    """A self-contained, print-ready HTML page (A4, seven numbered boxes in a grid)."""
    view = view_of(briefing)
    return (
        _environment()
        .get_template("briefing.html")
        .render(briefing=view, font_pt=_html_font_size(view))
    )


def _html_font_size(view: BriefingView) -> float:
    """Browsers cannot shrink text to fit a printed page, so size it from the text's length."""
    chars = sum(len(i.text) + len(i.cite or "") + 12 for s in view.sections for i in s.items)
    for limit, size in ((2200, 10.0), (3000, 9.0), (3800, 8.0), (4800, 7.0)):
        if chars <= limit:
            return size
    return 6.5


# --------------------------------------------------------------------------- DOCX


def to_docx(briefing: Any, path: str | Path) -> Path:
    """A Word document with the HTML / PDF look: one A4 page, title and marking, then the seven
    numbered boxes in a two-column grid (rows of GRID, box 7 across both columns), bullet items
    with citations, the font sized from the amount of text as the HTML page does."""
    from docx import Document
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Mm, Pt, RGBColor

    view = view_of(briefing)
    doc = Document()
    section = doc.sections[0]
    section.page_width, section.page_height = Mm(PAGE_W), Mm(PAGE_H)
    for side in ("left_margin", "right_margin", "top_margin", "bottom_margin"):
        setattr(section, side, Mm(MARGIN))
    size = Pt(_html_font_size(view))
    doc.styles["Normal"].font.size = size
    if view.marking:
        for part in (section.header, section.footer):
            para = part.paragraphs[0]
            para.alignment = WD_ALIGN_PARAGRAPH.CENTER
            run = para.add_run(view.marking)
            run.bold, run.font.color.rgb = True, RGBColor(0xB0, 0x00, 0x20)
    doc.add_heading(view.title, level=0)
    if view.marking:
        banner = doc.add_paragraph()
        run = banner.add_run(view.marking)
        run.bold, run.font.size, run.font.color.rgb = True, Pt(12), RGBColor(0xB0, 0x00, 0x20)
    _docx_grid(doc, view, size)
    footer = doc.add_paragraph(f"7-minute briefing · generated {view.generated:%d %B %Y}")
    footer.runs[0].font.size = Pt(7)
    path = Path(path)
    doc.save(str(path))
    return path


def _docx_grid(doc: Any, view: BriefingView, size: Any) -> None:
    """The seven boxes as a bordered two-column table, one GRID row per table row."""
    from docx.shared import Pt, RGBColor

    by_number = {sec.number: sec for sec in view.sections}
    table = doc.add_table(rows=len(GRID), cols=2)
    table.style = "Table Grid"
    for row, numbers in zip(table.rows, GRID, strict=True):
        cells = list(row.cells)
        if len(numbers) == 1:
            cells = [cells[0].merge(cells[1])]
        for cell, number in zip(cells, numbers, strict=False):
            sec = by_number.get(number)
            if sec is None:
                continue
            heading = cell.paragraphs[0]
            heading.style = doc.styles["Heading 2"]
            heading.add_run(f"{sec.number}. {sec.heading}").font.size = Pt(size.pt + 1.5)
            for item in sec.items:
                para = cell.add_paragraph(style="List Bullet")
                para.paragraph_format.space_after = Pt(1)
                para.add_run(_xml_safe(item.text)).font.size = size
                if item.cite:
                    cite = para.add_run(f" ({_xml_safe(item.cite)})")
                    cite.italic, cite.font.size = True, size
                    cite.font.color.rgb = RGBColor(0x55, 0x55, 0x55)


def _xml_safe(text: str) -> str:
    """Word's XML rejects control characters that PDF extraction sometimes leaves behind."""
    return "".join(ch for ch in text if ch in "\t\n" or unicodedata.category(ch) != "Cc")


# --------------------------------------------------------------------------- PDF

_LATIN1 = str.maketrans(
    {
        "–": "-",
        "—": "-",
        "‐": "-",
        "‑": "-",
        "‒": "-",
        "−": "-",
        "‘": "'",
        "’": "'",
        "‚": "'",
        "′": "'",
        "“": '"',
        "”": '"',
        "„": '"',
        "″": '"',
        "…": "...",
        "•": "-",
        "▪": "-",
        "◦": "-",
        "·": "-",
        "\u00a0": " ",
        "\u2009": " ",
        "\u202f": " ",
        "\u200b": "",
        "€": "EUR",
        "™": "(TM)",
    }
)

PAGE_W, PAGE_H, MARGIN = 210.0, 297.0, 10.0
GUTTER, PAD = 4.0, 2.2
MAX_PT, MIN_PT, STEP_PT = 10.5, 5.5, 0.25
GRID: tuple[tuple[int, ...], ...] = ((1, 2), (3, 4), (5, 6), (7,))  # section numbers per row
RED = (176, 0, 32)


def latin1(text: str) -> str:
    """Text the PDF core fonts can draw: typographic marks mapped, accents kept, the rest '?'."""
    text = text.translate(_LATIN1)
    out = []
    for ch in text:
        if ord(ch) < 256:
            out.append(ch if ch in "\n\t" or unicodedata.category(ch) != "Cc" else " ")
            continue
        decomposed = unicodedata.normalize("NFKD", ch).encode("latin-1", "ignore").decode("latin-1")
        out.append(decomposed or "?")
    return "".join(out)


def to_pdf(briefing: Any, path: str | Path) -> Path:
    """One A4 page: the largest font size at which everything fits; if even the smallest does
    not, the longest sections lose their last items (marked) until it fits.

    Heights come from fpdf2's dry run, cached per text and size, and the size is found by
    bisection (heights grow with the size), so a long briefing costs a few layouts, not dozens.
    """
    view = _pdf_view(view_of(briefing))
    measure = _new_pdf(view)
    while not _fits(measure, view, MIN_PT):
        shorter = _shorten(view)
        if shorter is None:
            break  # nothing left to drop (cannot happen on A4 with seven headings)
        view = shorter
    size = _largest_fitting_size(measure, view)
    pdf = _new_pdf(view)
    _draw(pdf, view, size, render=True)
    path = Path(path)
    pdf.output(str(path))
    return path


def _fits(pdf: Any, view: BriefingView, size: float) -> bool:
    return _draw(pdf, view, size, render=False) <= PAGE_H - MARGIN


def _largest_fitting_size(pdf: Any, view: BriefingView) -> float:
    """Bisection over the size steps from MIN_PT to MAX_PT (MIN_PT when none fits)."""
    steps = int(round((MAX_PT - MIN_PT) / STEP_PT))
    low, high = 0, steps  # invariant: step ``low`` fits (or is the floor), answer <= ``high``
    if _fits(pdf, view, MAX_PT):
        return MAX_PT
    while low < high - 1:
        mid = (low + high) // 2
        if _fits(pdf, view, MIN_PT + mid * STEP_PT):
            low = mid
        else:
            high = mid
    return MIN_PT + low * STEP_PT


def _pdf_view(view: BriefingView) -> BriefingView:
    sections = tuple(
        ViewSection(
            s.number,
            latin1(s.heading),
            tuple(
                ViewItem(
                    latin1(i.text), latin1(i.cite) if i.cite else None, i.review_id, i.passage_id
                )
                for i in s.items
            ),
        )
        for s in view.sections
    )
    return BriefingView(latin1(view.title), view.restricted, sections, view.generated)


def _new_pdf(view: BriefingView):  # type: ignore[no-untyped-def]
    from fpdf import FPDF

    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    pdf.set_title(view.title)
    pdf.set_creator("safeguarding learning knowledge base")
    pdf.add_page()
    return pdf


SHORTENED = " [shortened to fit one page]"


def _shorten(view: BriefingView) -> BriefingView | None:
    """One step towards fitting: drop the last item of the section with the most text; when
    every section is down to one item, halve the longest item's text (at a word). None when
    nothing is left to cut."""
    longest = max(view.sections, key=lambda s: sum(len(i.text) for i in s.items), default=None)
    if longest is None or not longest.items:
        return None
    if len(longest.items) > 1:
        kept = (*longest.items[:-2], _marked(longest.items[-2], longest.items[-2].text))
    else:
        item = longest.items[0]
        body = item.text.removesuffix(SHORTENED)
        if len(body) < 40:
            return None
        kept = (_marked(item, body[: len(body) // 2].rsplit(" ", 1)[0] + "..."),)
    sections = tuple(
        ViewSection(s.number, s.heading, kept) if s is longest else s for s in view.sections
    )
    return BriefingView(view.title, view.restricted, sections, view.generated)


def _marked(item: ViewItem, text: str) -> ViewItem:
    text = text if text.endswith(SHORTENED) else text + SHORTENED
    return ViewItem(text, item.cite, item.review_id, item.passage_id)


def _draw(pdf: Any, view: BriefingView, size: float, *, render: bool) -> float:
    """Lay the page out at ``size`` points; draw it when ``render``. Returns the bottom y."""
    width = PAGE_W - 2 * MARGIN
    line = size * 0.42  # mm per line at this size, compact leading
    y = MARGIN
    if view.marking:
        y = _banner(pdf, view.marking, y, width, size, render=render)
    pdf.set_font("helvetica", "B", size * 1.7)
    y += _text(pdf, MARGIN, y, width, view.title, size * 1.7 * 0.42, render=render) + 2
    by_number = {s.number: s for s in view.sections}
    rows = [[by_number[n] for n in row if n in by_number] for row in GRID]
    extra = [s for s in view.sections if s.number not in {n for row in GRID for n in row}]
    rows += [[s] for s in extra]
    for row in rows:
        if not row:
            continue
        box_w = (width - GUTTER * (len(row) - 1)) / len(row)
        heights = [
            _box(pdf, s, MARGIN + i * (box_w + GUTTER), y, box_w, size, line, render=False)
            for i, s in enumerate(row)
        ]
        height = max(heights)
        if render:
            for i, s in enumerate(row):
                x = MARGIN + i * (box_w + GUTTER)
                pdf.set_draw_color(120, 120, 120)
                pdf.rect(x, y, box_w, height)
                _box(pdf, s, x, y, box_w, size, line, render=True)
        y += height + GUTTER * 0.75
    pdf.set_font("helvetica", "", max(size * 0.7, 5))
    footer = f"7-minute briefing - generated {view.generated:%d %B %Y}"
    y += _text(pdf, MARGIN, y, width, footer, max(size * 0.7, 5) * 0.42, render=render)
    if view.marking:
        y = _banner(pdf, view.marking, y + 1, width, size, render=render)
    return y


def _banner(pdf: Any, marking: str, y: float, width: float, size: float, *, render: bool) -> float:
    """The restricted marking: bold red text in a red box, full width."""
    text = latin1(marking)
    pdf.set_font("helvetica", "B", max(size, 8))
    height = max(size, 8) * 0.42 + 2
    if render:
        pdf.set_draw_color(*RED)
        pdf.set_text_color(*RED)
        pdf.set_line_width(0.6)
        pdf.rect(MARGIN, y, width, height)
        pdf.set_xy(MARGIN, y + 1)
        pdf.cell(width, height - 2, text, align="C")
        pdf.set_text_color(0, 0, 0)
        pdf.set_line_width(0.2)
    return y + height + 2


def _box(
    pdf: Any,
    section: ViewSection,
    x: float,
    y: float,
    w: float,
    size: float,
    line: float,
    *,
    render: bool,
) -> float:
    """One numbered box; returns its height (measured with fpdf2's dry run when not drawing)."""
    inner = w - 2 * PAD
    top = y + PAD
    pdf.set_font("helvetica", "B", size * 1.15)
    top += (
        _text(
            pdf,
            x + PAD,
            top,
            inner,
            f"{section.number}  {section.heading}",
            size * 1.15 * 0.42,
            render=render,
        )
        + 0.8
    )
    for item in section.items:
        pdf.set_font("helvetica", "", size)
        text = f"- {item.text}" + (f" ({item.cite})" if item.cite else "")
        top += _text(pdf, x + PAD, top, inner, text, line, render=render) + 0.5
    return top - y + PAD - 0.5


def _text(pdf: Any, x: float, y: float, w: float, text: str, line: float, *, render: bool) -> float:
    """Height of ``text`` wrapped to ``w`` (and draw it when ``render``)."""
    pdf.set_xy(x, y)
    if not render:
        key = (pdf.font_family, pdf.font_style, pdf.font_size_pt, round(w, 3), line, text)
        if key not in _HEIGHTS:
            if len(_HEIGHTS) > 20_000:
                _HEIGHTS.clear()
            _HEIGHTS[key] = float(pdf.multi_cell(w, line, text, dry_run=True, output="HEIGHT"))
        return _HEIGHTS[key]
    pdf.multi_cell(w, line, text)
    return float(pdf.get_y() - y)


# Wrapped heights by (font, style, size, width, leading, text): a pure function of its key.
_HEIGHTS: dict[tuple[Any, ...], float] = {}

"""Render the fictional demo corpus from ``sources/*.md`` into ``files/`` (.md, .docx, .pdf).

The sources use a small Markdown subset: ``#`` title, ``##`` / ``###`` headings, paragraphs,
``1.`` numbered items, ``-`` bullets, pipe tables and ``**bold**`` inline. Most reviews are copied
unchanged; those listed in :data:`DOCX` and :data:`PDF` are rendered with python-docx (real
Title / Heading 1 / Heading 2 / List Number / List Bullet styles and Word tables) and fpdf2 (a
core font with a text layer, a cover page, bold headings and tables).

The build is idempotent and deterministic: every date and metadata field is fixed and DOCX zip
entries get a constant timestamp, so rebuilding yields byte-identical files.

Run from the repository root::

    .venv/bin/python corpus/demo/build.py
"""

from __future__ import annotations

import io
import re
import shutil
import sys
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "sources"
FILES = HERE / "files"
MANIFEST = HERE / "manifest.yaml"

#: Source stems rendered as Word documents.
DOCX: frozenset[str] = frozenset(
    {
        "northmoor_scr_child_d_2017",
        "northmoor_lcspr_child_f_2022",
        "easterby_vale_lcspr_baby_t_2023",
        "kingsbridge_lcspr_child_q_and_r_2021",
        "kingsbridge_lcspr_child_y_2024",
        "harrowdale_scr_child_i_2017",
    }
)

#: Source stems rendered as PDF.
PDF: frozenset[str] = frozenset(
    {
        "northmoor_annual_report_2021_22",
        "northmoor_lcspr_child_e_2019",
        "easterby_vale_lcspr_baby_l_2021",
        "easterby_vale_learning_review_injuries_under_1s_2024",
        "kingsbridge_lcspr_child_u_2022",
        "harrowdale_scr_child_a_2015",
    }
)

#: Every generated file carries this date, so rebuilds are byte-stable.
FIXED_DATE = datetime(2025, 1, 6, 9, 0, 0, tzinfo=UTC)
ZIP_DATE = (2025, 1, 6, 9, 0, 0)

_NUMBERED = re.compile(r"^(\d+)\.\s+(.*)$")
_BULLET = re.compile(r"^[-*]\s+(.*)$")
_BOLD = re.compile(r"\*\*(.+?)\*\*")

# Characters outside latin-1 that the core PDF fonts cannot encode.
_PDF_REPLACEMENTS = {
    "\u2018": "'",
    "\u2019": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u2013": "-",
    "\u2014": " - ",
    "\u2026": "...",
    "\u2022": "-",
    "\u00a0": " ",
    "\u2212": "-",
}


@dataclass
class Block:
    """One block of a parsed source: a heading, paragraph, list or table."""

    kind: str  # title | h1 | h2 | p | ol | ul | table
    text: str = ""
    items: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)


def parse_markdown(source: str) -> list[Block]:
    """Parse the Markdown subset used by the sources into blocks.

    Args:
        source: the Markdown text.

    Returns:
        Blocks in document order; consecutive list items form one list block.
    """
    blocks: list[Block] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            blocks.append(Block("p", text=" ".join(paragraph)))
            paragraph.clear()

    for raw in source.splitlines():
        line = raw.rstrip()
        stripped = line.strip()
        if not stripped:
            flush()
            continue
        if stripped.startswith("#"):
            flush()
            level = len(stripped) - len(stripped.lstrip("#"))
            kind = {1: "title", 2: "h1"}.get(level, "h2")
            blocks.append(Block(kind, text=stripped[level:].strip()))
            continue
        if stripped.startswith("|"):
            flush()
            cells = [c.strip() for c in stripped.strip("|").split("|")]
            if all(re.fullmatch(r":?-{2,}:?", c) for c in cells):
                continue  # the header separator row
            if not blocks or blocks[-1].kind != "table":
                blocks.append(Block("table"))
            blocks[-1].rows.append(cells)
            continue
        numbered = _NUMBERED.match(stripped)
        bullet = _BULLET.match(stripped)
        if numbered or bullet:
            flush()
            kind = "ol" if numbered else "ul"
            item = numbered.group(2) if numbered else bullet.group(1)  # type: ignore[union-attr]
            if not blocks or blocks[-1].kind != kind:
                blocks.append(Block(kind))
            blocks[-1].items.append(item)
            continue
        paragraph.append(stripped)
    flush()
    return blocks


def split_runs(text: str) -> list[tuple[str, bool]]:
    """Split inline ``**bold**`` markup into (text, is_bold) runs."""
    runs: list[tuple[str, bool]] = []
    pos = 0
    for match in _BOLD.finditer(text):
        if match.start() > pos:
            runs.append((text[pos : match.start()], False))
        runs.append((match.group(1), True))
        pos = match.end()
    if pos < len(text):
        runs.append((text[pos:], False))
    return runs


def plain(text: str) -> str:
    """Drop inline markup."""
    return _BOLD.sub(r"\1", text)


def front_matter(blocks: list[Block]) -> tuple[str, str]:
    """Return (title, partnership line) for document metadata."""
    title = next((b.text for b in blocks if b.kind == "title"), "")
    author = next((plain(b.text) for b in blocks if b.kind == "p"), "")
    return plain(title), author


# --------------------------------------------------------------------------- DOCX


def _restart_numbering(document: object) -> int:
    """Create a new numbering instance of the List Number style that restarts at 1.

    Args:
        document: a python-docx ``Document``.

    Returns:
        The new ``numId`` to put on the list's paragraphs.
    """
    from docx.oxml.ns import qn

    style = document.styles["List Number"]  # type: ignore[attr-defined]
    style_num_id = style.element.pPr.numPr.numId.val
    numbering = document.part.numbering_part.element  # type: ignore[attr-defined]
    abstract_id = None
    for num in numbering.findall(qn("w:num")):
        if int(num.get(qn("w:numId"))) == style_num_id:
            abstract_id = int(num.find(qn("w:abstractNumId")).get(qn("w:val")))
    if abstract_id is None:  # pragma: no cover - the default template always has it
        raise RuntimeError("List Number style has no numbering definition")
    num = numbering.add_num(abstract_id)
    num.add_lvlOverride(ilvl=0).add_startOverride(1)
    return int(num.numId)


def _add_runs(paragraph: object, text: str, bold_all: bool = False) -> None:
    """Add text to a python-docx paragraph, honouring ``**bold**``."""
    for chunk, bold in split_runs(text):
        run = paragraph.add_run(chunk)  # type: ignore[attr-defined]
        if bold or bold_all:
            run.bold = True


def render_docx(blocks: list[Block], target: Path) -> None:
    """Write blocks as a Word document with real heading, list and table styles.

    Args:
        blocks: parsed source.
        target: the .docx path to write.
    """
    from docx import Document
    from docx.shared import Pt

    document = Document()
    document.styles["Normal"].font.name = "Calibri"
    document.styles["Normal"].font.size = Pt(11)
    title, author = front_matter(blocks)
    props = document.core_properties
    props.title = title
    props.author = author
    props.last_modified_by = author
    props.subject = "Fictional demo corpus: not a real case"
    props.keywords = "safeguarding; case review; demo"
    props.comments = "Generated by corpus/demo/build.py"
    props.created = FIXED_DATE.replace(tzinfo=None)
    props.modified = FIXED_DATE.replace(tzinfo=None)
    props.last_printed = FIXED_DATE.replace(tzinfo=None)
    props.revision = 1

    for block in blocks:
        if block.kind == "title":
            document.add_paragraph(plain(block.text), style="Title")
        elif block.kind == "h1":
            document.add_heading(plain(block.text), level=1)
        elif block.kind == "h2":
            document.add_heading(plain(block.text), level=2)
        elif block.kind == "p":
            _add_runs(document.add_paragraph(), block.text)
        elif block.kind == "ol":
            num_id = _restart_numbering(document)
            for item in block.items:
                paragraph = document.add_paragraph(style="List Number")
                num_pr = paragraph._p.get_or_add_pPr().get_or_add_numPr()
                num_pr.get_or_add_ilvl().val = 0
                num_pr.get_or_add_numId().val = num_id
                _add_runs(paragraph, item)
        elif block.kind == "ul":
            for item in block.items:
                _add_runs(document.add_paragraph(style="List Bullet"), item)
        elif block.kind == "table":
            header, *body = block.rows
            table = document.add_table(rows=1, cols=len(header))
            table.style = "Table Grid"
            for cell, text in zip(table.rows[0].cells, header, strict=True):
                cell.text = ""
                _add_runs(cell.paragraphs[0], text, bold_all=True)
            for row in body:
                cells = table.add_row().cells
                for cell, text in zip(cells, row, strict=True):
                    cell.text = plain(text)
            document.add_paragraph()

    buffer = io.BytesIO()
    document.save(buffer)
    target.write_bytes(_normalise_zip(buffer.getvalue()))


def _normalise_zip(data: bytes) -> bytes:
    """Rewrite a zip archive with a fixed timestamp on every entry (byte-stable output)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=ZIP_DATE)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            archive.writestr(fixed, source.read(info.filename))
    return out.getvalue()


# --------------------------------------------------------------------------- PDF


def pdf_text(text: str) -> str:
    """Make text encodable in the latin-1 core fonts (unknown characters become '?')."""
    for char, replacement in _PDF_REPLACEMENTS.items():
        text = text.replace(char, replacement)
    return text.encode("latin-1", errors="replace").decode("latin-1")


def _pdf_list(pdf: Any, block: Block, line: float) -> None:
    """A numbered or bulleted list, its markers hanging left of the text."""
    pdf.set_font("Helvetica", "", 10.5)
    for number, item in enumerate(block.items, start=1):
        marker = f"{number}." if block.kind == "ol" else "-"
        pdf.set_x(pdf.l_margin + 2)
        pdf.cell(7, line, marker)
        pdf.multi_cell(0, line, pdf_text(item), markdown=True, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1.2)
    pdf.ln(1.5)


def _pdf_table(pdf: Any, block: Block) -> None:
    """A table with a bold heading row (the recommendations table has fixed column widths)."""
    from fpdf.fonts import FontFace

    pdf.set_font("Helvetica", "", 9)
    columns = len(block.rows[0])
    widths = (14, 46, 28, 20, 18) if columns == 5 else tuple([1] * columns)
    with pdf.table(
        col_widths=widths,
        line_height=4.8,
        text_align="LEFT",
        headings_style=FontFace(emphasis="BOLD"),
        first_row_as_headings=True,
    ) as table:
        for row in block.rows:
            cells = table.row()
            for text in row:
                cells.cell(pdf_text(plain(text)))
    pdf.ln(4)


def render_pdf(blocks: list[Block], target: Path) -> None:
    """Write blocks as a multi-page PDF with a text layer (Helvetica core font).

    Args:
        blocks: parsed source.
        target: the .pdf path to write.
    """
    from fpdf import FPDF

    title, author = front_matter(blocks)

    class ReviewPDF(FPDF):
        """A4 report with a running footer."""

        def footer(self) -> None:
            self.set_y(-14)
            self.set_font("Helvetica", "", 8)
            self.set_text_color(100, 100, 100)
            self.cell(0, 6, pdf_text(f"{title}  |  Page {self.page_no()} of {{nb}}"), align="C")
            self.set_text_color(0, 0, 0)

    pdf = ReviewPDF(format="A4")
    pdf.set_margins(22, 20, 22)
    pdf.set_auto_page_break(True, margin=22)
    pdf.set_creation_date(FIXED_DATE)
    pdf.set_title(pdf_text(title))
    pdf.set_author(pdf_text(author))
    pdf.set_subject("Fictional demo corpus: not a real case")
    pdf.set_keywords("safeguarding case review demo")
    pdf.set_creator("corpus/demo/build.py")
    pdf.set_producer("fpdf2")
    pdf.add_page()
    line = 5.6
    body_started = False

    for block in blocks:
        if block.kind == "title":
            pdf.ln(50)
            pdf.set_font("Helvetica", "B", 22)
            pdf.multi_cell(0, 10, pdf_text(plain(block.text)), new_x="LMARGIN", new_y="NEXT")
            pdf.ln(8)
            continue
        if block.kind in {"h1", "h2"} and not body_started:
            body_started = True
            pdf.add_page()  # the cover page holds the title and front matter
        if block.kind == "h1":
            pdf.ln(3)
            pdf.set_font("Helvetica", "B", 14)
            pdf.multi_cell(0, 7, pdf_text(plain(block.text)), new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1.5)
        elif block.kind == "h2":
            pdf.ln(1.5)
            pdf.set_font("Helvetica", "B", 11.5)
            pdf.multi_cell(0, 6, pdf_text(plain(block.text)), new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1)
        elif block.kind == "p":
            pdf.set_font("Helvetica", "", 13 if not body_started else 10.5)
            height = 7 if not body_started else line
            pdf.multi_cell(
                0, height, pdf_text(block.text), markdown=True, new_x="LMARGIN", new_y="NEXT"
            )
            pdf.ln(2.5)
        elif block.kind in {"ol", "ul"}:
            _pdf_list(pdf, block, line)
        elif block.kind == "table":
            _pdf_table(pdf, block)

    target.write_bytes(bytes(pdf.output()))


# --------------------------------------------------------------------------- build


def output_name(stem: str) -> str:
    """The file name a source stem is rendered to."""
    if stem in DOCX:
        return f"{stem}.docx"
    if stem in PDF:
        return f"{stem}.pdf"
    return f"{stem}.md"


def build() -> list[Path]:
    """Render every source into ``files/`` and remove stale outputs.

    Returns:
        The written files, sorted by name.
    """
    FILES.mkdir(exist_ok=True)
    written: list[Path] = []
    for source in sorted(SOURCES.glob("*.md")):
        target = FILES / output_name(source.stem)
        if source.stem in DOCX:
            render_docx(parse_markdown(source.read_text(encoding="utf-8")), target)
        elif source.stem in PDF:
            render_pdf(parse_markdown(source.read_text(encoding="utf-8")), target)
        else:
            shutil.copyfile(source, target)
        written.append(target)
    keep = {path.name for path in written}
    for stale in FILES.iterdir():
        if stale.suffix in {".md", ".docx", ".pdf"} and stale.name not in keep:
            stale.unlink()
    return written


def check_manifest(written: list[Path]) -> list[str]:
    """Compare manifest keys with the built files; return a list of problems."""
    import yaml

    if not MANIFEST.exists():
        return [f"{MANIFEST.name} is missing"]
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8")) or {}
    names = {path.name for path in written}
    names |= {path.name for path in (HERE / "realistic").glob("*.txt")}  # hand-written, not built
    problems = [f"manifest entry without a file: {name}" for name in sorted(set(manifest) - names)]
    problems += [f"file without a manifest entry: {name}" for name in sorted(names - set(manifest))]
    return problems


def main() -> int:
    """Build the corpus and report; non-zero exit if the manifest disagrees with the files."""
    written = build()
    counts: dict[str, int] = {}
    for path in written:
        counts[path.suffix] = counts.get(path.suffix, 0) + 1
    summary = ", ".join(f"{n} {suffix}" for suffix, n in sorted(counts.items()))
    print(f"wrote {len(written)} files to {FILES} ({summary})")
    problems = check_manifest(written)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())

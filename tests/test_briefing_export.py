"""Briefing exports: escaping, valid files, one A4 page, restricted marking, format by suffix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from docx import Document as DocxDocument
from pypdf import PdfReader

from kb.services.briefing_export import (
    RESTRICTED_MARKING,
    UnsupportedFormat,
    export,
    latin1,
    to_docx,
    to_html,
    to_pdf,
    view_of,
)
from kb.services.briefings import DEFAULT_HEADINGS

SCRIPT = "<script>alert('x')</script>"


def briefing(
    *, restricted: bool = False, items: int = 2, text: str = "Fathers were not seen.", **extra: Any
) -> dict[str, Any]:
    """A briefing as stored (sections with sources), independent of the database."""
    return {
        "title": extra.get("title", "7-minute briefing: Hidden men"),
        "restricted": restricted,
        "sections": [
            {
                "number": n,
                "heading": heading,
                "items": [
                    {"text": f"{text} ({n}.{i})", "review_id": 7, "passage_id": 70 + i}
                    if i % 2 == 0
                    else {"text": f"Question {n}.{i}?", "review_id": None, "passage_id": None}
                    for i in range(items)
                ],
                "sources": [{"review_id": 7, "label": "Child Q"}],
            }
            for n, heading in enumerate(DEFAULT_HEADINGS, start=1)
        ],
    }


def pdf_text(path: Path) -> tuple[int, str]:
    reader = PdfReader(str(path))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


def docx_paragraphs(doc) -> list:  # type: ignore[no-untyped-def,type-arg]
    """Body paragraphs in reading order, those inside the two-column grid's cells included."""
    found = list(doc.paragraphs)
    for table in doc.tables:
        seen = set()
        for row in table.rows:
            for cell in row.cells:
                if id(cell._tc) not in seen:  # a merged cell appears once per column
                    seen.add(id(cell._tc))
                    found.extend(cell.paragraphs)
    return found


def docx_text(path: Path) -> str:
    doc = DocxDocument(str(path))
    header = [p.text for s in doc.sections for p in s.header.paragraphs]
    return "\n".join([*header, *(p.text for p in docx_paragraphs(doc))])


def test_html_escapes_document_text() -> None:
    html = to_html(briefing(text=SCRIPT, title=f"Child <b>Q</b> {SCRIPT}"))
    assert "<script>" not in html and "<b>Q</b>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "Child &lt;b&gt;Q&lt;/b&gt;" in html


def test_html_is_a_print_ready_a4_grid_of_seven_boxes() -> None:
    html = to_html(briefing())
    assert "@page { size: A4" in html
    assert html.count('<section class="box') == 7
    for number, heading in enumerate(DEFAULT_HEADINGS, start=1):
        assert f'<span class="num">{number}</span>{heading}</h2>' in html
    assert '<span class="cite"' in html and "(Child Q)" in html
    assert 'data-passage-id="70"' in html
    assert "RESTRICTED" not in html


def test_restricted_marking_in_every_format(tmp_path: Path) -> None:
    data = briefing(restricted=True)
    html = to_html(data)
    assert html.count(RESTRICTED_MARKING) == 2  # top and bottom of the page
    assert "<title>[RESTRICTED]" in html
    text = docx_text(to_docx(data, tmp_path / "b.docx"))
    assert text.count(RESTRICTED_MARKING) >= 2  # page header and banner
    pages, text = pdf_text(to_pdf(data, tmp_path / "b.pdf"))
    assert pages == 1
    assert text.count("RESTRICTED - contains unpublished review material") == 2


def test_docx_has_title_numbered_headings_and_cited_bullets(tmp_path: Path) -> None:
    path = to_docx(briefing(text=SCRIPT), tmp_path / "b.docx")
    doc = DocxDocument(str(path))
    paragraphs = docx_paragraphs(doc)
    headings = [p.text for p in paragraphs if p.style.name.startswith("Heading")]
    assert headings == [f"{n}. {h}" for n, h in enumerate(DEFAULT_HEADINGS, start=1)]
    assert doc.paragraphs[0].text == "7-minute briefing: Hidden men"
    bullets = [p.text for p in paragraphs if p.style.name == "List Bullet"]
    assert len(bullets) == 14
    assert f"{SCRIPT} (1.0) (Child Q)" in bullets  # text as text, never markup
    assert "Question 1.1?" in bullets
    # The HTML / PDF look: a two-column grid, boxes 1-6 in pairs, box 7 across the page.
    (grid,) = doc.tables
    assert len(grid.rows) == 4 and len(grid.columns) == 2
    assert grid.rows[3].cells[0]._tc is grid.rows[3].cells[1]._tc
    assert grid.rows[0].cells[1].paragraphs[0].text == f"2. {DEFAULT_HEADINGS[1]}"


def text_heights(path: Path) -> list[float]:
    """The baseline height (points from the bottom) of every piece of text on page 1."""
    heights: list[float] = []
    PdfReader(str(path)).pages[0].extract_text(
        visitor_text=lambda text, cm, tm, *_: (
            heights.append(tm[5] * cm[3] + cm[5]) if text.strip() else None
        )
    )
    return heights


@pytest.mark.parametrize(("items", "length"), [(2, 60), (6, 300), (12, 600), (1, 2000)])
def test_pdf_is_exactly_one_a4_page(tmp_path: Path, items: int, length: int) -> None:
    text = ("Professionals did not ask who the men in the household were. " * 40)[:length]
    path = to_pdf(briefing(items=items, text=text, restricted=True), tmp_path / "b.pdf")
    pages, extracted = pdf_text(path)
    assert pages == 1
    box = PdfReader(str(path)).pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (595, 842)  # A4 in points
    assert "7-minute briefing: Hidden men" in extracted
    assert "7  Resources and training" in extracted
    assert extracted.count("RESTRICTED - contains unpublished review material") == 2
    assert min(text_heights(path)) > 0  # nothing drawn below the page (clipped) either
    assert ("[shortened to fit one page]" in extracted) == (items * length > 7000)


def test_pdf_replaces_characters_core_fonts_cannot_draw(tmp_path: Path) -> None:
    title = "Zoë’s “story” – 7 minutes… 你好 ✓"
    pages, text = pdf_text(to_pdf(briefing(title=title), tmp_path / "b.pdf"))
    assert pages == 1
    assert 'Zoë\'s "story" - 7 minutes...' in text
    assert latin1("café — ok ✓") == "café - ok ?"


def test_export_by_suffix(tmp_path: Path) -> None:
    data = briefing()
    assert export(data, tmp_path / "b.HTML").read_text(encoding="utf-8").startswith("<!doctype")
    assert DocxDocument(str(export(data, tmp_path / "out" / "b.docx"))).paragraphs
    assert pdf_text(export(data, tmp_path / "b.pdf"))[0] == 1
    with pytest.raises(UnsupportedFormat, match=r"\.html, \.docx or \.pdf"):
        export(data, tmp_path / "b.txt")
    assert not (tmp_path / "b.txt").exists()


def test_view_hides_redundant_citation() -> None:
    data = briefing()
    data["sections"][0]["items"] = [
        {"text": "Child Q (LCSPR, 2019): Child Q was a baby.", "review_id": 7, "passage_id": 70}
    ]
    view = view_of(data)
    assert view.sections[0].items[0].cite is None
    assert view.sections[1].items[0].cite == "Child Q"

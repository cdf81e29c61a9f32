"""Readers: every format, the offset invariant, and every refusal reason.

All fixture files are built here in tmp_path from fictional text (python-docx and fpdf2 make
real DOCX/PDF files), so the tests never depend on real review documents.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import docx
import pytest
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from fpdf import FPDF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader, PdfWriter

from corpus.document import ExtractedDocument, ReaderError
from corpus.readers import SUPPORTED_SUFFIXES, format_size, read_document
from corpus.readers.markdown import read_markdown
from corpus.readers.text import TextBuilder, decode_text, read_text

PARA = (
    "The health visitor saw Child A at home and noted that the family had moved twice in a "
    "year. Information was not shared with the school nurse."
)


def assert_invariant(doc: ExtractedDocument) -> None:
    """The contract: every block is an exact slice of the canonical text, in order."""
    last_end = 0
    for block in doc.blocks:
        assert doc.text[block.start : block.end] == block.text
        assert block.text == block.text.strip() and block.text
        assert block.start >= last_end
        last_end = block.end


# --- builders ------------------------------------------------------------------------------


def make_pdf(path: Path, pages: list[list[str]]) -> Path:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for lines in pages:
        pdf.add_page()
        for line in lines:
            pdf.multi_cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
    pdf.output(str(path))
    return path


def make_docx(path: Path) -> Path:
    document = docx.Document()
    document.add_heading("Learning Review: Child A", level=0)
    document.add_heading("Background", level=1)
    document.add_paragraph(PARA)
    document.add_paragraph("Share referrals within one day", style="List Bullet")
    numbered = document.add_paragraph("Numbered by direct numbering properties")
    p_pr = numbered._p.get_or_add_pPr()
    num_pr = OxmlElement("w:numPr")
    num_id = OxmlElement("w:numId")
    num_id.set(qn("w:val"), "1")
    num_pr.append(num_id)
    p_pr.append(num_pr)
    table = document.add_table(rows=2, cols=3)
    table.cell(0, 0).text = "Agency"
    table.cell(0, 1).text = "Action"
    table.cell(0, 2).text = "Due"
    merged = table.cell(1, 0).merge(table.cell(1, 1))
    merged.text = "Health and police"
    table.cell(1, 2).text = "March"
    document.add_heading("Findings", level=2)
    document.add_paragraph("Practitioners did not consider the father.")
    document.save(str(path))
    return path


# --- formats --------------------------------------------------------------------------------


def test_supported_suffixes() -> None:
    assert {".pdf", ".docx", ".html", ".htm", ".md", ".markdown", ".txt"} == SUPPORTED_SUFFIXES


def test_text_reader_normalises_newlines_and_has_no_blocks(tmp_path: Path) -> None:
    path = tmp_path / "review.txt"
    path.write_bytes(b"  Child A review\r\n\r\nFirst paragraph.\rSecond line.\n")
    doc = read_document(path)
    assert doc.format == "text"
    assert "\r" not in doc.text
    assert doc.text == "  Child A review\n\nFirst paragraph.\nSecond line.\n"
    assert doc.blocks == []
    assert doc.title == "Child A review"
    assert doc.pages == 1
    assert len(doc.sha256) == 64


def test_pages_estimate_for_long_text(tmp_path: Path) -> None:
    path = tmp_path / "long.txt"
    path.write_text("word " * 3000, encoding="utf-8")  # 15,000 characters
    assert read_document(path).pages == 5


def test_markdown_reader_blocks(tmp_path: Path) -> None:
    path = tmp_path / "summary.md"
    path.write_text(
        "# Child A: learning summary\n\nSome *emphasis* and a [link](http://x).\n\n"
        "## Findings\n\n- first item\n- second **item**\n\n"
        "| Agency | Action |\n|---|---|\n| Police | Train staff |\n",
        encoding="utf-8",
    )
    doc = read_document(path)
    assert_invariant(doc)
    kinds = [(b.kind, b.text, b.level) for b in doc.blocks]
    assert kinds == [
        ("heading", "Child A: learning summary", 1),
        ("paragraph", "Some emphasis and a link.", 0),
        ("heading", "Findings", 2),
        ("list_item", "first item", 0),
        ("list_item", "second item", 0),
        ("table_row", "Agency | Action", 0),
        ("table_row", "Police | Train staff", 0),
    ]
    assert "*" not in doc.text and "#" not in doc.text
    assert doc.title == "Child A: learning summary"


def test_html_reader_drops_chrome_and_unescapes(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(
        "<html><head><title>x</title><style>p{color:red}</style></head><body>"
        "<nav><a href='/'>Home</a></nav><script>var a = 1;</script>"
        "<h2>Summary &amp; learning</h2><p>Child A&#39;s  mother\n was   seen.<br>Next line</p>"
        "<ul><li>One<ul><li>Nested</li></ul></li></ul>"
        "<table><tr><th>Agency</th><th>Due</th></tr><tr><td>Police</td><td>May</td></tr></table>"
        "<div>Loose text</div></body></html>",
        encoding="utf-8",
    )
    doc = read_document(path)
    assert_invariant(doc)
    assert [(b.kind, b.text) for b in doc.blocks] == [
        ("heading", "Summary & learning"),
        ("paragraph", "Child A's mother was seen.\nNext line"),
        ("list_item", "One"),
        ("list_item", "Nested"),
        ("table_row", "Agency | Due"),
        ("table_row", "Police | May"),
        ("paragraph", "Loose text"),
    ]
    assert "Home" not in doc.text and "var a" not in doc.text
    assert doc.blocks[0].level == 2


def test_docx_reader_headings_lists_tables_in_order(tmp_path: Path) -> None:
    doc = read_document(make_docx(tmp_path / "review.docx"))
    assert doc.format == "docx"
    assert_invariant(doc)
    blocks = [(b.kind, b.text, b.level) for b in doc.blocks]
    assert blocks == [
        ("heading", "Learning Review: Child A", 1),
        ("heading", "Background", 1),
        ("paragraph", PARA, 0),
        ("list_item", "Share referrals within one day", 0),
        ("list_item", "Numbered by direct numbering properties", 0),
        ("table_row", "Agency | Action | Due", 0),
        ("table_row", "Health and police | March", 0),
        ("heading", "Findings", 2),
        ("paragraph", "Practitioners did not consider the father.", 0),
    ]
    assert doc.title == "Learning Review: Child A"


def test_pdf_reader_pages_and_text(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "review.pdf", [["Serious Case Review", PARA], ["Findings", PARA]])
    doc = read_document(path)
    assert doc.format == "pdf"
    assert doc.pages == 2
    assert doc.blocks == []
    assert doc.title == "Serious Case Review"
    assert "Findings" in doc.text and "school nurse" in doc.text
    assert "\n\nFindings" in doc.text  # pages joined by a blank line


def test_pdf_owner_password_only_is_readable(tmp_path: Path) -> None:
    source = make_pdf(tmp_path / "plain.pdf", [[PARA]])
    writer = PdfWriter(clone_from=PdfReader(source))
    writer.encrypt(user_password="", owner_password="owner", algorithm="RC4-128")
    path = tmp_path / "restricted.pdf"
    with path.open("wb") as handle:
        writer.write(handle)
    assert "school nurse" in read_document(path).text


# --- errors ----------------------------------------------------------------------------------


def reason_of(path: Path, **kwargs: int) -> str:
    with pytest.raises(ReaderError) as info:
        read_document(path, **kwargs)
    assert info.value.path == str(path)
    assert "\n" not in info.value.reason
    return info.value.reason


def test_empty_file(tmp_path: Path) -> None:
    for name in ("a.txt", "a.pdf", "a.docx", "a.md", "a.html"):
        path = tmp_path / name
        path.write_bytes(b"")
        assert reason_of(path) == "empty file"


def test_oversized_file(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_text("x" * 5_000, encoding="utf-8")
    assert reason_of(path, max_bytes=1_000) == "file is 5 KB, over the 1 KB limit"
    assert format_size(212_000_000) == "212 MB"


def test_unsupported_type_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "data.xyz"
    path.write_text("hello", encoding="utf-8")
    assert reason_of(path) == "unsupported file type .xyz"
    assert reason_of(tmp_path / "missing.txt") == "file not found"


def test_junk_named_pdf(tmp_path: Path) -> None:
    path = tmp_path / "fake.pdf"
    path.write_bytes(b"GIF89a not a pdf at all")
    assert "not a PDF" in reason_of(path)


def test_truncated_pdf(tmp_path: Path) -> None:
    source = make_pdf(tmp_path / "ok.pdf", [[PARA] * 3] * 3)
    path = tmp_path / "truncated.pdf"
    path.write_bytes(source.read_bytes()[:400])
    assert reason_of(path).startswith("corrupt or truncated PDF: ")


def test_encrypted_pdf(tmp_path: Path) -> None:
    source = make_pdf(tmp_path / "plain.pdf", [[PARA]])
    writer = PdfWriter(clone_from=PdfReader(source))
    writer.encrypt(user_password="secret", algorithm="RC4-128")
    path = tmp_path / "locked.pdf"
    with path.open("wb") as handle:
        writer.write(handle)
    assert reason_of(path).startswith("encrypted PDF")


def test_pdf_without_text_layer(tmp_path: Path) -> None:
    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 100, 100, style="F")  # a "scanned" page: graphics only
    path = tmp_path / "scan.pdf"
    pdf.output(str(path))
    assert reason_of(path) == "PDF has no text layer (scanned image?)"


def test_docx_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "fake.docx"
    path.write_bytes(b"This is plain text pretending to be Word")
    assert reason_of(path) == "not a DOCX (zip) file"
    legacy = tmp_path / "legacy.docx"
    legacy.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100)
    assert reason_of(legacy).startswith("not a DOCX (zip) file")


def test_docx_zip_without_document(tmp_path: Path) -> None:
    path = tmp_path / "other.docx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "hi")
    assert "no word/document.xml" in reason_of(path)


def test_docx_zip_bomb_refused_before_parsing(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", b"<" + b"a" * 30_000_000)
    path = tmp_path / "bomb.docx"
    path.write_bytes(buffer.getvalue())
    assert path.stat().st_size < 1_000_000
    assert reason_of(path) == "DOCX expands to 30 MB (zip bomb?)"


def test_corrupt_docx_is_wrapped(tmp_path: Path) -> None:
    path = tmp_path / "broken.docx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("[Content_Types].xml", "not xml <<<")
        archive.writestr("word/document.xml", "not xml either")
    assert reason_of(path).startswith("corrupt DOCX")


def test_binary_data_in_text_and_markdown(tmp_path: Path) -> None:
    for name in ("bin.txt", "bin.md"):
        path = tmp_path / name
        path.write_bytes(b"hello\x00world")
        assert reason_of(path) == "binary data, not text"


def test_cp1252_fallback_and_invalid_bytes(tmp_path: Path) -> None:
    path = tmp_path / "windows.txt"
    path.write_bytes("Caf\u00e9 meeting \u2013 notes".encode("cp1252"))
    assert read_document(path).text == "Caf\u00e9 meeting \u2013 notes"
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\x81\x8d\x8f\x90\x9d" * 10)
    assert "not valid UTF-8" in reason_of(bad)
    controls = tmp_path / "controls.txt"
    controls.write_bytes(b"\xff\x01\x02\x03\x04\x05\x06" * 20)
    assert "not valid UTF-8" in reason_of(controls)


def test_whitespace_only_text(tmp_path: Path) -> None:
    path = tmp_path / "blank.txt"
    path.write_text(" \n\n\t ", encoding="utf-8")
    assert "empty" in reason_of(path)


def test_decode_text_handles_boms() -> None:
    assert decode_text("\ufeffhello".encode(), "x.txt") == "hello"
    assert decode_text("hello".encode("utf-16"), "x.txt") == "hello"


def test_text_builder_skips_blank_blocks() -> None:
    builder = TextBuilder()
    assert builder.add("paragraph", "   ") is None
    first = builder.add("heading", "  Title \r\n", level=1)
    second = builder.add("paragraph", "Body")
    assert builder.text == "Title\n\nBody"
    assert first is not None and second is not None
    assert (first.start, first.end, second.start, second.end) == (0, 5, 7, 11)


# --- properties ------------------------------------------------------------------------------

MARKDOWNISH = st.text(
    alphabet=st.sampled_from(list("ab Z#-*|>`_[]()\n\t1.é\u2013\r")), max_size=300
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MARKDOWNISH)
def test_markdown_offsets_property(source: str) -> None:
    try:
        doc = read_markdown(Path("prop.md"), source.encode("utf-8"))
    except ReaderError as exc:
        assert "no text" in exc.reason
        return
    assert_invariant(doc)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300).filter(lambda s: "\x00" not in s))
def test_text_reader_property(source: str) -> None:
    try:
        doc = read_text(Path("prop.txt"), source.encode("utf-8"))
    except ReaderError:
        assert not source.strip() or not source.replace("\r", "").strip()
        return
    assert "\r" not in doc.text
    assert doc.pages >= 1

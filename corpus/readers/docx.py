"""DOCX reading with python-docx.

Many reviews are circulated as Word documents before (or instead of) a PDF. Their paragraph
styles are the most reliable structure we ever get ("Heading 2", "List Bullet"), and tables
often hold action plans, so tables are read in document order between the paragraphs rather
than appended at the end, where they would land in the wrong section.

A DOCX is a zip archive, so it is checked for zip bombs (declared sizes and compression ratio)
before python-docx is allowed to decompress anything. Declared sizes can lie, and ``zipfile``
inflates a whole member in one call (up to 2 GB) before cutting it to the declared size, so
every member is also inflated here in bounded chunks to prove it is no bigger than declared.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib
from pathlib import Path

import docx
from docx.table import Table
from docx.text.paragraph import Paragraph

from corpus.document import ExtractedDocument, ReaderError
from corpus.readers.text import TextBuilder, build_document

MAX_EXPANDED_BYTES = 300_000_000
#: lxml needs several times an XML part's size in memory; Word writes a few MB for a long review.
MAX_XML_BYTES = 50_000_000
MAX_RATIO = 200
_CHUNK = 1 << 16
_HEADING_STYLE = re.compile(r"^heading\s*(\d)", re.IGNORECASE)


def check_zip(path: Path, data: bytes) -> None:
    """Refuse non-zips, zips without a Word body, and archives that would expand absurdly."""
    if not data.startswith(b"PK"):
        hint = " (legacy .doc or password-protected?)" if data[:4] == b"\xd0\xcf\x11\xe0" else ""
        raise ReaderError(path, f"not a DOCX (zip) file{hint}")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise ReaderError(path, f"not a DOCX (zip) file: {exc}") from exc
    expanded = sum(info.file_size for info in infos)
    compressed = sum(info.compress_size for info in infos)
    too_big = expanded > MAX_EXPANDED_BYTES
    too_dense = expanded > 10_000_000 and expanded > MAX_RATIO * max(compressed, 1)
    if too_big or too_dense:
        raise ReaderError(path, f"DOCX expands to {expanded // 1_000_000} MB (zip bomb?)")
    xml = sum(i.file_size for i in infos if i.filename.lower().endswith((".xml", ".rels")))
    if xml > MAX_XML_BYTES:
        raise ReaderError(path, f"DOCX holds {xml // 1_000_000} MB of XML, too much to parse")
    if not any(info.filename == "word/document.xml" for info in infos):
        raise ReaderError(path, "not a DOCX (zip) file: no word/document.xml inside")
    for info in infos:
        _check_member(path, data, info)


def _check_member(path: Path, data: bytes, info: zipfile.ZipInfo) -> None:
    """Refuse a member that is compressed oddly or inflates to more than it declares."""
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ReaderError(path, f"DOCX member {info.filename!r} uses an unsupported compression")
    if info.flag_bits & 0x1:
        raise ReaderError(path, "encrypted DOCX (password-protected?)")
    try:
        actual = _inflated_size(data, info)
    except (zlib.error, struct.error, ValueError) as exc:
        raise ReaderError(path, f"corrupt DOCX: {info.filename}: {exc}") from exc
    if actual > info.file_size:
        raise ReaderError(
            path, f"DOCX member {info.filename!r} is larger than it declares (zip bomb?)"
        )


def _inflated_size(data: bytes, info: zipfile.ZipInfo) -> int:
    """Bytes the member really inflates to, counted in bounded chunks, stopping just past
    the declared size, so memory stays small whatever the archive claims."""
    header = data[info.header_offset : info.header_offset + 30]
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        raise ValueError("bad local file header")
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    start = info.header_offset + 30 + name_len + extra_len
    raw = memoryview(data)[start : start + info.compress_size]
    if info.compress_type == zipfile.ZIP_STORED:
        return len(raw)
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total = position = 0
    pending = b""
    while total <= info.file_size and not inflater.eof:
        if not pending:
            if position >= len(raw):
                break
            pending = bytes(raw[position : position + _CHUNK])
            position += _CHUNK
        total += len(inflater.decompress(pending, _CHUNK))
        pending = inflater.unconsumed_tail
    return total


def _heading_level(paragraph: Paragraph) -> int:
    """Heading level from the style name (0 when the paragraph is not a heading)."""
    name = _style_name(paragraph)
    if name.lower() == "title":
        return 1
    match = _HEADING_STYLE.match(name)
    return int(match.group(1)) if match else 0


def _style_name(paragraph: Paragraph) -> str:
    try:
        style = paragraph.style
    except (KeyError, ValueError, AttributeError):
        return ""
    return (style.name or "") if style is not None else ""


def _is_list(paragraph: Paragraph) -> bool:
    """List styles, or direct numbering properties (how Word marks most bullets)."""
    if "list" in _style_name(paragraph).lower():
        return True
    p_pr = paragraph._p.pPr
    return p_pr is not None and p_pr.numPr is not None


def _add_paragraph(builder: TextBuilder, paragraph: Paragraph) -> None:
    text = paragraph.text
    level = _heading_level(paragraph)
    if level:
        builder.add("heading", text, level=level)
    elif _is_list(paragraph):
        builder.add("list_item", text)
    else:
        builder.add("paragraph", text)


def _add_table(builder: TextBuilder, table: Table) -> None:
    """One table_row block per row; horizontally merged cells appear once, not repeated."""
    for row in table.rows:
        seen: set[int] = set()
        cells: list[str] = []
        for cell in row.cells:
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            text = " ".join(cell.text.split())
            if text and (not cells or cells[-1] != text):
                cells.append(text)
        builder.add("table_row", " | ".join(cells))


def read_docx(path: Path, data: bytes) -> ExtractedDocument:
    """Read paragraphs and tables of the body in document order."""
    check_zip(path, data)
    try:
        document = docx.Document(io.BytesIO(data))
        builder = TextBuilder()
        for item in document.iter_inner_content():
            if isinstance(item, Paragraph):
                _add_paragraph(builder, item)
            else:
                _add_table(builder, item)
    except ReaderError:
        raise
    except Exception as exc:  # python-docx raises many unrelated types on malformed XML
        raise ReaderError(path, f"corrupt DOCX: {type(exc).__name__}: {exc}"[:300]) from exc
    return build_document(path, "docx", data, builder)

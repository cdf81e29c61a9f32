"""Builders of hostile files for the hostile-input tests: every malformed file is made in
tmp_path at test time, so no binaries are checked in."""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docx
from fpdf import FPDF
from pypdf import PdfReader, PdfWriter

# --- builders ---------------------------------------------------------------------------------


PARA = (
    "The health visitor saw Child M at home and noted that the family had moved twice in a "
    "year. Information was not shared with the school nurse."
)


OTHER_REVIEW = """# Local Child Safeguarding Practice Review: Child R

## Findings

1. The school did not share its concerns about Child R's weight loss with the health service.

## Recommendations

1. Schools should refer concerns about neglect to the early help team within one day.
"""


def _pdf_bytes(paragraphs: list[str]) -> bytes:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    pdf.add_page()
    for text in paragraphs:
        pdf.multi_cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    return bytes(pdf.output())


def _encrypted_pdf(path: Path) -> None:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(_pdf_bytes([PARA]))))
    writer.encrypt(user_password="secret", algorithm="RC4-128")
    with path.open("wb") as handle:
        writer.write(handle)


def _scanned_pdf(path: Path) -> None:
    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 100, 100, style="F")  # graphics only, as a scanned page looks to pypdf
    pdf.output(str(path))


def _docx_bytes(paragraphs: list[str]) -> bytes:
    document = docx.Document()
    document.add_heading("Rapid Review: Child M", level=0)
    for text in paragraphs:
        document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _docx_with_body(extra_xml: Callable[[Any], None]) -> bytes:
    """A real DOCX whose word/document.xml is streamed through ``extra_xml(handle)``."""
    source = zipfile.ZipFile(io.BytesIO(_docx_bytes([PARA])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            if info.filename == "word/document.xml":
                with archive.open("word/document.xml", "w") as handle:
                    extra_xml(handle)
            else:
                archive.writestr(info, source.read(info))
    return out.getvalue()


def _zeros_comment(megabytes: int) -> Callable[[Any], None]:
    """XML that compresses about 1000:1 (an XML comment full of one letter)."""

    def write(handle: Any) -> None:
        handle.write(b'<?xml version="1.0"?><!-- ')
        chunk = b"a" * 1_000_000
        for _ in range(megabytes):
            handle.write(chunk)
        handle.write(b' --><w:document xmlns:w="x"/>')

    return write


def _zip_bomb(path: Path) -> None:
    """A 120 MB document.xml in a ~120 KB archive: declared sizes give it away."""
    path.write_bytes(_docx_with_body(_zeros_comment(120)))


def _lying_zip_bomb(path: Path) -> None:
    """The same bomb, but the headers claim document.xml is 1,000 bytes."""
    raw = bytearray(_docx_with_body(_zeros_comment(120)))
    name = b"word/document.xml"
    at = raw.find(b"PK\x01\x02")
    while at >= 0:
        name_len = struct.unpack("<H", raw[at + 28 : at + 30])[0]
        if raw[at + 46 : at + 46 + name_len] == name:
            raw[at + 24 : at + 28] = struct.pack("<I", 1000)  # central directory size
            local = struct.unpack("<I", raw[at + 42 : at + 46])[0]
            raw[local + 22 : local + 26] = struct.pack("<I", 1000)  # local header size
        at = raw.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(raw))


def _raw_pdf(objects: list[bytes]) -> bytes:
    """A minimal PDF from object bodies (object 1 is the catalog), with a correct xref."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    trailer = f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    return bytes(out + trailer.encode())


def _pdf_pages(kids: bytes, content: bytes) -> bytes:
    """Catalog, page tree with ``kids``, one page (object 3) drawing ``content`` (deflated)."""
    stream = b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (
        len(content),
        content,
    )
    return _raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [" + kids + b"] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
            b" /Resources << /Font << /F1 5 0 R >> >> >>",
            stream,
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ]
    )


def _pdf_stream_bomb(path: Path) -> None:
    """A page whose content stream inflates to 100 MB (pypdf stops at its own limit)."""
    deflate = zlib.compressobj(9)
    data = deflate.compress(b"BT /F1 12 Tf 72 712 Td (Child Z was seen at home) Tj ET\n")
    spaces = b" " * 1_000_000
    data += b"".join(deflate.compress(spaces) for _ in range(100)) + deflate.flush()
    path.write_bytes(_pdf_pages(b"3 0 R", data))


def _pdf_page_cycle(path: Path) -> None:
    """A page tree that contains itself: a naive reader walks it forever."""
    text = zlib.compress(b"BT /F1 12 Tf 72 712 Td (Child Z was seen at home by the GP) Tj ET\n")
    path.write_bytes(_pdf_pages(b"2 0 R 3 0 R", text))


def _sparse(path: Path, size: int) -> None:
    """A file that claims ``size`` bytes without writing them (a hole on every real FS)."""
    with path.open("wb") as handle:
        handle.truncate(size)


def build_hostile(folder: Path) -> dict[str, str]:
    """Write every hostile file into ``folder``; returns name -> expected reason fragment."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    (folder / "empty.md").write_bytes(b"")
    (folder / "blank.txt").write_bytes(b" \r\n\t\n   \r\n")
    (folder / "truncated.pdf").write_bytes(_pdf_bytes([PARA] * 6)[:400])
    _encrypted_pdf(folder / "locked.pdf")
    _scanned_pdf(folder / "scanned.pdf")
    _pdf_stream_bomb(folder / "stream-bomb.pdf")
    _pdf_page_cycle(folder / "cycle.pdf")
    _zip_bomb(folder / "bomb.docx")
    _lying_zip_bomb(folder / "liar.docx")
    (folder / "letter.docx").write_bytes(b"Dear colleague, this was never a Word file.\n")
    (folder / "junk.pdf").write_bytes(rng.randbytes(4096))
    mixed = "# Caf\u00e9 review \u2013 Child Q\n\n".encode()
    (folder / "mixed.md").write_bytes(mixed + b"\xff\xfe")
    (folder / "binary.txt").write_bytes(b"MZ\x90\x00\x03\x00\x00\x00" + rng.randbytes(512))
    (folder / "deep.html").write_text("<div>" * 5000 + "Child Q", encoding="utf-8")
    (folder / "notes.xyz").write_text("Child Q was seen at school.", encoding="utf-8")
    _sparse(folder / "huge.pdf", 200_000_000)
    return {
        "empty.md": "empty file",
        "blank.txt": "empty file (whitespace only)",
        "truncated.pdf": "corrupt or truncated PDF",
        "locked.pdf": "encrypted PDF",
        "scanned.pdf": "PDF has no text layer",
        "stream-bomb.pdf": "corrupt or truncated PDF: Limit reached while decompressing",
        "cycle.pdf": "corrupt or truncated PDF: Detected cyclic page references",
        "bomb.docx": "DOCX expands to 120 MB (zip bomb?)",
        "liar.docx": "larger than it declares (zip bomb?)",
        "letter.docx": "not a DOCX (zip) file",
        "junk.pdf": "not a PDF file",
        "mixed.md": f"not valid UTF-8 (byte 0xff at offset {len(mixed)}; damaged or mixed",
        "binary.txt": "binary data, not text",
        "deep.html": "HTML is nested more than 256 levels deep",
        "notes.xyz": "unsupported file type .xyz",
        "huge.pdf": "file is 200 MB, over the 50 MB limit",
    }

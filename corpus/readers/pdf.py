"""PDF reading with pypdf.

Most published reviews are PDFs. A PDF has no reliable structure, only a text layer per page,
so this reader returns the page texts joined by blank lines and leaves headings, paragraphs and
running headers to segmentation. Scanned reviews (no text layer) and encrypted files are
refused with a reason a partnership administrator can act on, rather than ingested as empty.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

from pypdf import PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError

from corpus.document import ExtractedDocument, ReaderError, sha256_bytes
from corpus.readers.text import first_line_title, normalise_newlines

logging.getLogger("pypdf").setLevel(logging.ERROR)

_MIN_TEXT_CHARS = 20


def _open(path: Path, data: bytes) -> PdfReader:
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
    except (DependencyError, FileNotDecryptedError) as exc:
        raise ReaderError(path, "encrypted PDF") from exc
    except Exception as exc:  # pypdf raises a zoo of types on damaged files
        raise ReaderError(path, f"corrupt or truncated PDF: {_short(exc)}") from exc
    if reader.is_encrypted:
        _decrypt(path, reader)
    return reader


def _decrypt(path: Path, reader: PdfReader) -> None:
    """Owner-password-only PDFs (print/copy restrictions) open with an empty user password."""
    try:
        ok = reader.decrypt("")
    except DependencyError as exc:
        raise ReaderError(path, "encrypted PDF (AES; cannot decrypt here)") from exc
    except Exception as exc:
        raise ReaderError(path, "encrypted PDF") from exc
    if not ok:
        raise ReaderError(path, "encrypted PDF")


def _short(exc: Exception) -> str:
    message = " ".join(str(exc).split()) or type(exc).__name__
    return message[:200]


def _page_texts(path: Path, reader: PdfReader) -> list[str]:
    texts: list[str] = []
    try:
        for page in reader.pages:
            raw = page.extract_text() or ""
            texts.append(_clean_page(raw))
    except (DependencyError, FileNotDecryptedError) as exc:
        raise ReaderError(path, "encrypted PDF") from exc
    except Exception as exc:  # PdfReadError and the many types pypdf leaks on damaged files
        raise ReaderError(path, f"corrupt or truncated PDF: {_short(exc)}") from exc
    return texts


def _clean_page(raw: str) -> str:
    """Normalise newlines, drop NULs and trailing spaces so offsets are stable."""
    text = normalise_newlines(raw.replace("\x00", ""))
    return "\n".join(line.rstrip() for line in text.split("\n")).strip()


def read_pdf(path: Path, data: bytes) -> ExtractedDocument:
    """Text of every page joined by blank lines; ``pages`` is the real page count."""
    reader = _open(path, data)
    texts = _page_texts(path, reader)
    if not texts:
        raise ReaderError(path, "corrupt or truncated PDF: no pages")
    text = "\n\n".join(texts)
    if len(text.strip()) < _MIN_TEXT_CHARS:
        raise ReaderError(path, "PDF has no text layer (scanned image?)")
    return ExtractedDocument(
        path=path,
        format="pdf",
        text=text,
        sha256=sha256_bytes(data),
        pages=len(texts),
        title=first_line_title(text),  # /Title metadata is often "Microsoft Word - draft.docx"
    )

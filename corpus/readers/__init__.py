"""``read_document``: one entry point from a file on disk to an ExtractedDocument.

Ingest feeds this function whatever partnerships upload, so it is the trust boundary: it checks
size and magic bytes before any parser sees the data, and it converts every failure into a
``ReaderError`` with a one-line reason, so a bad file is reported and skipped instead of
crashing a batch with a library traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from corpus.document import ExtractedDocument, ReaderError
from corpus.readers.docx import read_docx
from corpus.readers.html import read_html
from corpus.readers.markdown import read_markdown
from corpus.readers.pdf import read_pdf
from corpus.readers.text import read_text

__all__ = ["SUPPORTED_SUFFIXES", "read_document", "format_size"]

Reader = Callable[[Path, bytes], ExtractedDocument]

_READERS: dict[str, Reader] = {
    ".pdf": read_pdf,
    ".docx": read_docx,
    ".html": read_html,
    ".htm": read_html,
    ".md": read_markdown,
    ".markdown": read_markdown,
    ".txt": read_text,
}
SUPPORTED_SUFFIXES: frozenset[str] = frozenset(_READERS)


def format_size(n_bytes: int) -> str:
    """Human size for error messages: '212 MB', '40 KB', '900 bytes'."""
    if n_bytes >= 1_000_000:
        return f"{round(n_bytes / 1_000_000)} MB"
    if n_bytes >= 1_000:
        return f"{round(n_bytes / 1_000)} KB"
    return f"{n_bytes} bytes"


def _load_bytes(path: Path, max_bytes: int) -> bytes:
    try:
        if not path.is_file():
            raise ReaderError(path, "file not found" if not path.exists() else "not a file")
        size = path.stat().st_size
        if size > max_bytes:
            limit = format_size(max_bytes)
            raise ReaderError(path, f"file is {format_size(size)}, over the {limit} limit")
        data = path.read_bytes()
    except OSError as exc:
        raise ReaderError(path, f"cannot read file: {exc.strerror or exc}") from exc
    if len(data) > max_bytes:  # the file grew between stat and read
        raise ReaderError(path, f"file is over the {format_size(max_bytes)} limit")
    if not data:
        raise ReaderError(path, "empty file")
    return data


def _check_magic(path: Path, suffix: str, data: bytes) -> None:
    """Refuse files whose content contradicts their name before a parser is involved."""
    if suffix == ".pdf" and not data.lstrip(b"\r\n\t \x00")[:5].startswith(b"%PDF"):
        raise ReaderError(path, "not a PDF file (does not start with %PDF)")
    if suffix == ".docx" and not data.startswith(b"PK"):
        raise ReaderError(path, "not a DOCX (zip) file")


def read_document(path: Path, *, max_bytes: int = 50_000_000) -> ExtractedDocument:
    """Read a PDF, DOCX, HTML, Markdown or text file into canonical text plus blocks.

    The path is only used for its suffix and for messages; nothing derived from the content is
    ever opened. Raises ReaderError for every problem.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    reader = _READERS.get(suffix)
    if reader is None:
        raise ReaderError(path, f"unsupported file type {suffix or '(no extension)'}")
    data = _load_bytes(path, max_bytes)
    _check_magic(path, suffix, data)
    try:
        return reader(path, data)
    except ReaderError as exc:
        raise ReaderError(path, " ".join(exc.reason.split())) from exc.__cause__
    except RecursionError as exc:
        raise ReaderError(path, "document is nested too deeply to read") from exc
    except Exception as exc:  # last line of defence: never leak a library exception
        reason = " ".join(f"unreadable {suffix[1:]} file: {type(exc).__name__}: {exc}".split())
        raise ReaderError(path, reason[:300]) from exc

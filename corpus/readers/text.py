"""Plain-text reading plus the helpers every reader shares.

Text files arrive from many places (exports, copy-paste from PDFs, old Windows tools), so
decoding is defensive: UTF-8 first, then Windows-1252 only when those bytes really look like
text and hold no UTF-8 characters at all, because silently accepting binary data or mojibake
would put garbage into the knowledge base. Invalid UTF-8 is refused, never replaced.

``TextBuilder`` lives here because it is the one place where block offsets are computed: every
structured reader appends blocks through it, which is what guarantees
``doc.text[b.start:b.end] == b.text``.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from corpus.document import Block, BlockKind, ExtractedDocument, ReaderError, sha256_bytes

_NEWLINES = re.compile(r"\r\n?|[\u2028\u2029\x0b\x0c\x85]")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
_MAX_TITLE = 200
#: A well-formed UTF-8 sequence of two to four bytes. Windows-1252 text almost never contains
#: one (it would need e.g. "Ã" followed by "©"), so finding one means the file is UTF-8.
_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}"
    rb"|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)


def normalise_newlines(text: str) -> str:
    """One newline convention, so offsets do not depend on where a file was written."""
    return _NEWLINES.sub("\n", text)


def decode_text(data: bytes, path: Path | str) -> str:
    """Decode bytes as UTF-8 (BOM-aware), falling back to cp1252 only for text-like bytes."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise ReaderError(path, f"invalid UTF-16 text: {exc.reason}") from exc
    if b"\x00" in data:
        raise ReaderError(path, "binary data, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        utf8_error = exc
    where = f"byte 0x{data[utf8_error.start]:02x} at offset {utf8_error.start}"
    if _UTF8_MULTIBYTE.search(data):
        # Real UTF-8 characters next to invalid bytes: a damaged or mixed-encoding file.
        # Reading it as Windows-1252 would garble every one of those characters, and
        # replacing the bad bytes would hide the damage, so the file is refused.
        raise ReaderError(path, f"not valid UTF-8 ({where}; damaged or mixed encodings)")
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        text = ""
    if text and _looks_like_text(text):
        return text
    raise ReaderError(path, f"not valid UTF-8 ({where}) and not plausible Windows-1252 text")


def _looks_like_text(text: str) -> bool:
    """Reject decodings full of control characters: a sign the bytes were never text."""
    controls = len(_CONTROL.findall(text))
    return controls <= max(1, len(text) // 1000)


def estimate_pages(text: str) -> int:
    """Rough page count for formats without pages (about 3,000 characters a page)."""
    return max(1, round(len(text) / 3000))


def first_line_title(text: str) -> str | None:
    """The first non-empty line, trimmed: the best title guess for unstructured text."""
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped:
            return stripped[:_MAX_TITLE]
    return None


class TextBuilder:
    """Accumulates blocks into one canonical text, separated by blank lines.

    Each block's text is stripped before it is appended, and its offsets are recorded at the
    moment it is written, so the offset invariant holds by construction.
    """

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self.blocks: list[Block] = []

    def add(self, kind: BlockKind, text: str, level: int = 0) -> Block | None:
        """Append one block; empty or whitespace-only text is skipped (returns None)."""
        clean = normalise_newlines(text).strip()
        if not clean:
            return None
        if self._parts:
            self._parts.append("\n\n")
            self._length += 2
        start = self._length
        self._parts.append(clean)
        self._length += len(clean)
        block = Block(kind=kind, text=clean, start=start, end=self._length, level=level)
        self.blocks.append(block)
        return block

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def title(self) -> str | None:
        """First heading if any, else the first non-empty line."""
        for block in self.blocks:
            if block.kind == "heading":
                return " ".join(block.text.split())[:_MAX_TITLE]
        return first_line_title(self.text)


def build_document(path: Path, fmt: str, data: bytes, builder: TextBuilder) -> ExtractedDocument:
    """Package a structured reader's output, refusing documents with no text at all."""
    text = builder.text
    if not text.strip():
        raise ReaderError(path, f"no text found in {fmt.upper()} file")
    return ExtractedDocument(
        path=path,
        format=fmt,  # type: ignore[arg-type]
        text=text,
        sha256=sha256_bytes(data),
        pages=estimate_pages(text),
        blocks=builder.blocks,
        title=builder.title(),
    )


def read_text(path: Path, data: bytes) -> ExtractedDocument:
    """A plain text file: the decoded text with normalised newlines, no blocks."""
    text = normalise_newlines(decode_text(data, path))
    if not text.strip():
        raise ReaderError(path, "empty file (whitespace only)")
    return ExtractedDocument(
        path=path,
        format="text",
        text=text,
        sha256=sha256_bytes(data),
        pages=estimate_pages(text),
        title=first_line_title(text),
    )

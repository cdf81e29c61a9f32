"""Markdown reading with markdown-it-py.

Markdown carries exactly the structure segmentation wants (heading levels, list items, table
rows), so we keep it as blocks and drop the markup itself: the canonical text is what a reader
of the rendered page would see, not the ``#`` and ``*`` characters.
"""

from __future__ import annotations

from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

from corpus.document import ExtractedDocument
from corpus.readers.text import TextBuilder, build_document, decode_text

_MD = MarkdownIt("commonmark").enable("table")


def inline_text(token: Token) -> str:
    """Plain text of an inline token: text, code and image alt text; breaks become newlines."""
    parts: list[str] = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif child.type == "image":
            parts.append(inline_text(child))
    return "".join(parts)


class _Walker:
    """Turns the flat markdown-it token stream into blocks, tracking list and table context."""

    def __init__(self) -> None:
        self.builder = TextBuilder()
        self.list_depth = 0
        self.heading_level = 0
        self.cells: list[str] | None = None

    def feed(self, tokens: list[Token]) -> None:
        for token in tokens:
            self._handle(token)

    def _handle(self, token: Token) -> None:
        kind = token.type
        if kind == "heading_open":
            self.heading_level = int(token.tag[1:])
        elif kind == "heading_close":
            self.heading_level = 0
        elif kind in ("bullet_list_open", "ordered_list_open"):
            self.list_depth += 1
        elif kind in ("bullet_list_close", "ordered_list_close"):
            self.list_depth -= 1
        elif kind == "tr_open":
            self.cells = []
        elif kind == "tr_close":
            self._flush_row()
        elif kind == "inline":
            self._inline(token)
        elif kind in ("fence", "code_block"):
            self.builder.add("paragraph", token.content)

    def _inline(self, token: Token) -> None:
        text = inline_text(token)
        if self.cells is not None:
            self.cells.append(" ".join(text.split()))
        elif self.heading_level:
            self.builder.add("heading", text, level=self.heading_level)
        elif self.list_depth:
            self.builder.add("list_item", text)
        else:
            self.builder.add("paragraph", text)

    def _flush_row(self) -> None:
        cells = [cell for cell in self.cells or [] if cell]
        self.cells = None
        if cells:
            self.builder.add("table_row", " | ".join(cells))


def read_markdown(path: Path, data: bytes) -> ExtractedDocument:
    """Parse Markdown into headings, paragraphs, list items and table rows."""
    source = decode_text(data, path)
    walker = _Walker()
    walker.feed(_MD.parse(source))
    return build_document(path, "markdown", data, walker.builder)

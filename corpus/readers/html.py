"""HTML reading with selectolax (lexbor).

Partnership websites publish reviews and summaries as web pages. We keep the structural tags
that matter for segmentation (h1-h6, p, li, tr) and drop chrome (script, style, nav) that would
otherwise pollute passages with menus and cookie banners. Loose text directly inside containers
is kept as paragraphs so nothing visible is lost.
"""

from __future__ import annotations

import re
from pathlib import Path

from selectolax.lexbor import LexborHTMLParser, LexborNode

from corpus.document import ExtractedDocument, ReaderError
from corpus.readers.text import TextBuilder, build_document, decode_text

_DROP = ["script", "style", "nav", "noscript", "template", "svg", "iframe", "head"]
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_CONTAINERS = {
    "html", "body", "div", "section", "article", "main", "header", "footer", "aside",
    "ul", "ol", "dl", "table", "thead", "tbody", "tfoot", "blockquote", "figure", "form",
    "fieldset", "details", "center",
}  # fmt: skip
_PARAGRAPH_LIKE = {"p", "dt", "dd", "pre", "figcaption", "caption", "summary", "address"}
_SPACES = re.compile(r"[ \t\r\n\f\u00a0]+")
#: Real pages nest block containers a few dozen deep. lexbor checks the stack of open elements
#: for every start tag, so thousands of unclosed <div>s take minutes inside C code that cannot
#: be interrupted; the depth is therefore estimated from the raw tags before parsing.
MAX_NESTING = 256
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]*)")
_NESTING_TAGS = frozenset(
    ["div", "section", "article", "main", "header", "footer", "aside", "nav", "ul", "ol",
     "dl", "menu", "table", "blockquote", "figure", "form", "fieldset", "details", "center"]
)  # fmt: skip


def clean_inline(text: str) -> str:
    """Collapse HTML whitespace the way a browser would, keeping explicit line breaks."""
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return "\n".join(line for line in lines if line)


class _Walker:
    """Depth-first walk that emits one block per structural element, in document order."""

    def __init__(self) -> None:
        self.builder = TextBuilder()

    def walk(self, node: LexborNode) -> None:
        buffer: list[str] = []
        for child in node.iter(include_text=True):
            tag = child.tag
            if tag == "-text":
                buffer.append(_SPACES.sub(" ", child.text(deep=False) or ""))
            elif tag == "br":
                buffer.append("\n")
            elif tag in _HEADINGS or tag in _PARAGRAPH_LIKE or tag in ("li", "tr"):
                self._flush(buffer)
                self._structural(child)
            elif tag in _CONTAINERS:
                self._flush(buffer)
                self.walk(child)
            elif tag not in ("-comment", "img", "hr"):
                buffer.append(self._inline_text(child))
        self._flush(buffer)

    def _flush(self, buffer: list[str]) -> None:
        if buffer:
            self.builder.add("paragraph", clean_inline("".join(buffer)))
            buffer.clear()

    def _structural(self, node: LexborNode) -> None:
        tag = node.tag
        if tag in _HEADINGS:
            self.builder.add("heading", clean_inline(self._inline_text(node)), level=int(tag[1]))
        elif tag == "li":
            self._list_item(node)
        elif tag == "tr":
            self._row(node)
        else:
            self.builder.add("paragraph", clean_inline(self._inline_text(node)))

    def _list_item(self, node: LexborNode) -> None:
        """The item's own text is one block; nested lists become their own items after it."""
        own: list[str] = []
        nested: list[LexborNode] = []
        for child in node.iter(include_text=True):
            if child.tag in ("ul", "ol", "table", "div", "p", "blockquote"):
                nested.append(child)
            elif child.tag == "br":
                own.append("\n")
            elif child.tag != "-comment":
                own.append(self._inline_text(child))
        self.builder.add("list_item", clean_inline("".join(own)))
        for child in nested:
            if child.tag == "p":
                self.builder.add("list_item", clean_inline(self._inline_text(child)))
            else:
                self.walk(child)

    def _row(self, node: LexborNode) -> None:
        cells = [
            " ".join(self._inline_text(cell).split())
            for cell in node.iter()
            if cell.tag in ("td", "th")
        ]
        self.builder.add("table_row", " | ".join(cell for cell in cells if cell))

    @staticmethod
    def _inline_text(node: LexborNode) -> str:
        """Text of an element with <br> turned into newlines (selectolax drops them)."""
        if node.tag == "-text":
            return _SPACES.sub(" ", node.text(deep=False) or "")
        parts: list[str] = []
        for child in node.iter(include_text=True):
            if child.tag == "br":
                parts.append("\n")
            elif child.tag != "-comment":
                parts.append(_Walker._inline_text(child))
        return "".join(parts)


def check_nesting(path: Path, source: str) -> None:
    """Refuse markup whose container elements nest deeper than MAX_NESTING (a parser bomb).

    Elements HTML closes implicitly (p, li, td, ...) and void elements are not counted, so
    sloppy but ordinary pages pass; a closing tag only ever lowers the estimate.
    """
    depth = deepest = 0
    for match in _TAG.finditer(source):
        if match.group(2).lower() not in _NESTING_TAGS:
            continue
        if match.group(1):
            depth = max(0, depth - 1)
        else:
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_NESTING:
                raise ReaderError(path, f"HTML is nested more than {MAX_NESTING} levels deep")


def read_html(path: Path, data: bytes) -> ExtractedDocument:
    """Parse HTML into heading, paragraph, list item and table row blocks."""
    source = decode_text(data, path)
    check_nesting(path, source)
    tree = LexborHTMLParser(source)
    tree.strip_tags(_DROP)
    root = tree.body or tree.root
    walker = _Walker()
    if root is not None:
        walker.walk(root)
    return build_document(path, "html", data, walker.builder)

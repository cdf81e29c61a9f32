"""The one shape every reader returns.

Readers differ wildly (PDF text layers, DOCX paragraph styles, HTML markup), but everything
downstream (segmentation, tagging evidence, highlighting in the web app) needs a single
canonical text with character offsets into it. Keeping that contract here means a passage or a
piece of evidence can always be located in the original document: ``doc.text[b.start:b.end]``
is exactly ``b.text`` for every block.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

BlockKind = Literal["heading", "paragraph", "list_item", "table_row"]
DocFormat = Literal["pdf", "docx", "html", "markdown", "text"]


#: Reasons end up on a terminal and in API responses, and parsers sometimes quote the file's
#: own bytes in their messages: no control characters (ANSI escapes, newlines) get through.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
MAX_REASON_CHARS = 300


class ReaderError(Exception):
    """A file that cannot be read; the message always names the file and the reason.

    ``reason`` is always one printable line of at most MAX_REASON_CHARS characters.
    """

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = str(path)
        self.reason = " ".join(_CONTROL.sub(" ", reason).split())[:MAX_REASON_CHARS]
        super().__init__(f"{self.path}: {self.reason}")


@dataclass(frozen=True, slots=True)
class Block:
    """A structural unit the reader saw: a heading, paragraph, list item or table row.

    ``level`` is the heading level when markup says so (Markdown ``#``, DOCX "Heading 2",
    HTML ``h3``); 0 means unknown and lets segmentation decide from the text itself.
    """

    kind: BlockKind
    text: str
    start: int
    end: int
    level: int = 0


@dataclass(slots=True)
class ExtractedDocument:
    """A document's canonical text plus the structural hints its format carried."""

    path: Path
    format: DocFormat
    text: str
    sha256: str
    pages: int = 1
    blocks: list[Block] = field(default_factory=list)
    title: str | None = None


def sha256_bytes(data: bytes) -> str:
    """Content hash used to make re-ingesting the same file a no-op."""
    return hashlib.sha256(data).hexdigest()

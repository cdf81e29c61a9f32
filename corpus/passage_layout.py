"""Layout around each passage, in the form the role classifier (nlp/roles.py) reads.

Kept apart from corpus/segment.py because the same context is built for passages at ingest and
for arbitrary spans (a benchmark's gold passages, a re-classification), always from the
segmented sections of the whole document.
"""

from __future__ import annotations

from bisect import bisect_right

from corpus.segment import LIST_MARKER, Section
from nlp.roles import RoleInput


class LayoutIndex:
    """Finds the section around any offset of one document."""

    def __init__(self, text_length: int, sections: list[Section], doc_kind: str) -> None:
        self.length = max(1, text_length)
        self.sections = sections
        self.starts = [s.start for s in sections]
        self.doc_kind = doc_kind

    def section_at(self, offset: int) -> Section | None:
        index = bisect_right(self.starts, offset) - 1
        return self.sections[index] if index >= 0 else None

    def role_input(self, text: str, start: int, kind: str | None = None) -> RoleInput:
        """The classifier's view of ``text`` found at ``start``."""
        section = self.section_at(start)
        stripped = text.strip()
        if kind is None:
            kind = "list_item" if LIST_MARKER.match(stripped) else "paragraph"
            if "\t" in stripped.strip("\t"):
                kind = "table_row"
        return RoleInput(
            text=text,
            section_title=section.title if section else "",
            section_kind=section.kind if section else "other",
            kind=kind,
            position=start / self.length,
            doc_kind=self.doc_kind,
        )

    def passage_inputs(self) -> list[RoleInput]:
        """One input per passage of the sections, in reading order."""
        return [
            RoleInput(
                text=p.text,
                section_title=s.title,
                section_kind=s.kind,
                kind=p.kind,
                position=p.start / self.length,
                doc_kind=self.doc_kind,
            )
            for s in self.sections
            for p in s.passages
        ]

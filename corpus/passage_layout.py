"""Layout around each passage, in the form the role classifier (nlp/roles.py) reads.

Kept apart from corpus/segment.py because the same context is built for passages at ingest and
for arbitrary spans (a benchmark's gold passages, a re-classification), always from the
segmented sections of the whole document: the section a span sits in, and the lead-in sentence
that introduces its list (nlp.roles_features.lead_of).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from corpus.segment import LIST_MARKER, Section
from nlp.roles_features import RoleInput, Unit, lead_of


class LayoutIndex:
    """Finds the section and the lead-in around any offset of one document."""

    def __init__(self, text_length: int, sections: list[Section], doc_kind: str) -> None:
        self.length = max(1, text_length)
        self.sections = sections
        self.starts = [s.start for s in sections]
        self.doc_kind = doc_kind
        self.units: list[Unit] = []
        for section in sections:
            if section.title:
                self.units.append(Unit(section.start, section.title, "heading"))
            self.units.extend(Unit(p.start, p.text, p.kind) for p in section.passages)
        self.unit_starts = [u.start for u in self.units]

    def section_at(self, offset: int) -> Section | None:
        index = bisect_right(self.starts, offset) - 1
        return self.sections[index] if index >= 0 else None

    def lead_at(self, offset: int, kind: str) -> tuple[str, int]:
        """The lead-in of a passage of ``kind`` starting at ``offset`` (see ``lead_of``)."""
        index = bisect_left(self.unit_starts, offset)
        return lead_of(kind, (self.units[i] for i in range(index - 1, -1, -1)))

    def role_input(self, text: str, start: int, kind: str | None = None) -> RoleInput:
        """The classifier's view of ``text`` found at ``start``."""
        section = self.section_at(start)
        stripped = text.strip()
        if kind is None:
            kind = "list_item" if LIST_MARKER.match(stripped) else "paragraph"
            if "\t" in stripped.strip("\t"):
                kind = "table_row"
        lead, run = self.lead_at(start, kind)
        return RoleInput(
            text=text,
            section_title=section.title if section else "",
            section_kind=section.kind if section else "other",
            kind=kind,
            position=start / self.length,
            doc_kind=self.doc_kind,
            lead=lead,
            run=run,
        )

    def passage_inputs(self) -> list[RoleInput]:
        """One input per passage of the sections, in reading order."""
        return [self.role_input(p.text, p.start, p.kind) for s in self.sections for p in s.passages]

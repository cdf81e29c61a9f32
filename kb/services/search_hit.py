"""SearchHit: one passage found by a search, as every caller (API, pages, CLI) receives it.

A module of its own so that the ranking helpers (kb.services.search_learning) and the search
service can both use it without importing each other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(slots=True)
class SearchHit:
    review_id: int
    review_title: str
    pseudonym: str
    passage_id: int
    section: str
    section_kind: str
    text: str
    snippet: str
    highlights: list[tuple[int, int]]
    score: float
    themes: list[str]
    role: str = "other"
    case_id: int | None = None
    case_label: str | None = None
    similarity: float | None = None  # cosine of query and passage (None for bm25-only search)
    actions: list[dict[str, Any]] = field(default_factory=list)  # answering its recommendation

    def as_dict(self) -> dict[str, Any]:
        """The ``kb search --json`` contract (extra fields are additive)."""
        return asdict(self)

"""The shape of a 7-minute briefing: seven numbered sections of cited items, the layout a
partnership may change, the limits an edit must respect and the ``kb briefing --json`` contract.

Kept apart from the builder so the store, the exporters and the web layer share one definition
without importing the ranking and recurrence machinery.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

from kb.models import (
    BriefingPublic,
    ReviewType,
)
from kb.services.reviews import NotFound

if TYPE_CHECKING:
    pass


DEFAULT_HEADINGS: tuple[str, ...] = (
    "Background",
    "Why it matters",
    "What we found",
    "The wider picture",
    "What practitioners should do",
    "Questions for reflection",
    "Resources and training",
)
GENERIC_QUESTIONS: tuple[str, ...] = (
    "What would you do differently if you met this family tomorrow?",
    "How would we know that practice in our team has changed since these reviews?",
)
SECTION_COUNT = 7

# Section kinds from corpus/segment.py (background, findings, recommendations, good_practice,
# action_plan, other).
BACKGROUND_KINDS: tuple[str, ...] = ("background",)
FINDING_KINDS: tuple[str, ...] = ("findings",)
RECOMMENDATION_KINDS: tuple[str, ...] = ("recommendations",)
NOT_BACKGROUND: tuple[str, ...] = ("recommendations", "action_plan")

# Budgets keep the briefing on one printed page; they are characters, cut at sentence ends.
THEME_BACKGROUND_REVIEWS = 6
REVIEW_BACKGROUND_SENTENCES = 3
BACKGROUND_BUDGET = 220
FINDING_BUDGET = 280
RECOMMENDATION_BUDGET = 240
MAX_FINDINGS = 5
MIN_FINDINGS = 3
MAX_RECOMMENDATIONS = 5
MAX_QUESTIONS = 4
MAX_REVIEW_THEMES = 3
DUPLICATE_FINDING = 0.92  # cosine above which two findings say the same thing
DUPLICATE_RECOMMENDATION = 0.85  # as Settings.similarity_threshold for déjà-vu recommendations
MAX_ITEM_CHARS = 2000
MAX_HEADING_CHARS = 200

TYPE_LABELS: dict[ReviewType, str] = {
    ReviewType.SCR: "SCR",
    ReviewType.LCSPR: "LCSPR",
    ReviewType.RAPID_REVIEW: "rapid review",
    ReviewType.LEARNING_REVIEW: "learning review",
    ReviewType.NATIONAL_REVIEW: "national review",
    ReviewType.AUDIT: "audit",
    ReviewType.SAR: "SAR",
    ReviewType.DHR: "DHR",
    ReviewType.ANNUAL_REPORT: "annual report",
    ReviewType.OTHER: "review",
}


class UnknownTheme(NotFound):
    """The theme id is not in the configured taxonomy."""


class InvalidBriefing(ValueError):
    """An edit would break the briefing's shape (seven sections, items with text and ids)."""


class BriefingItem(TypedDict):
    """One bullet: extractive text with its citation, or null ids for non-extractive text."""

    text: str
    review_id: int | None
    passage_id: int | None
    role: str | None


@dataclass(slots=True)
class BriefingSection:
    number: int
    heading: str
    items: list[BriefingItem] = field(default_factory=list)
    sources: dict[int, str] = field(default_factory=dict)  # review id → citation label

    def as_dict(self) -> dict[str, Any]:
        """Stored shape: ``sources`` lists every review the section draws on, cited or counted."""
        return {
            "number": self.number,
            "heading": self.heading,
            "items": [dict(item) for item in self.items],
            "sources": [{"review_id": rid, "label": lab} for rid, lab in self.sources.items()],
        }


@dataclass(slots=True)
class BriefingDraft:
    """A briefing as built, before (or instead of) being saved."""

    title: str
    sections: list[BriefingSection]
    theme_id: str | None = None
    review_id: int | None = None
    restricted: bool = False

    def sections_json(self) -> list[dict[str, Any]]:
        return [section.as_dict() for section in self.sections]

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "theme_id": self.theme_id,
            "review_id": self.review_id,
            "restricted": self.restricted,
            "sections": self.sections_json(),
        }


@dataclass(frozen=True, slots=True)
class BriefingTemplate:
    """A partnership's layout: its own seven headings and its own generic questions."""

    headings: tuple[str, ...] = DEFAULT_HEADINGS
    generic_questions: tuple[str, ...] = GENERIC_QUESTIONS

    def __post_init__(self) -> None:
        if len(self.headings) != SECTION_COUNT or not all(h.strip() for h in self.headings):
            raise InvalidBriefing(f"a briefing template needs {SECTION_COUNT} non-empty headings")


def cli_json(briefing: BriefingDraft | BriefingPublic) -> dict[str, Any]:
    """The ``kb briefing --json`` contract: title, restricted, seven sections of items."""
    sections = (
        briefing.sections_json() if isinstance(briefing, BriefingDraft) else briefing.sections
    )
    return {
        "title": briefing.title,
        "restricted": briefing.restricted,
        "sections": [
            {
                "number": s["number"],
                "heading": s["heading"],
                "items": [
                    {
                        "text": i["text"],
                        "review_id": i["review_id"],
                        "passage_id": i["passage_id"],
                        "role": i.get("role"),
                    }
                    for i in s["items"]
                ],
            }
            for s in sections
        ],
    }


def new_item(
    text: str,
    review_id: int | None = None,
    passage_id: int | None = None,
    role: str | None = None,
) -> BriefingItem:
    """An item; ``role`` is the quoted passage's role (None for text that quotes nothing)."""
    return {"text": text, "review_id": review_id, "passage_id": passage_id, "role": role}

"""7-minute briefings: one page, seven short numbered sections, built from the stored learning.

L&D teams read a briefing aloud in a team meeting and then discuss it, so every section is short
and every sentence must be defensible: content is *extractive* (sentences as the review authors
wrote them, trimmed at sentence boundaries) and each item cites the passage it came from. Items
that are not quotations (recurrence figures, taxonomy context, questions, courses) carry null ids.

Confidentiality shapes the whole module. A briefing is printed, e-mailed and shown on screens, so
it must never carry unpublished or embargoed material unless the principal may see it *and* asked
for it (``include_restricted``). Rather than filtering text afterwards, the builder works through
an *effective principal*: the caller when restricted material was requested and allowed, else a
published-only viewer. Every query — passages, tags, recurrence counts — goes through
``visible_reviews`` of that principal, so hidden reviews never enter a ranking or a count. Each
section also records the reviews it draws on (``sources``); stored briefings are only ever shown
to principals who can see all of them *now* (a review may be embargoed after a briefing was
saved), and restricted ones only to principals who see restricted material at all.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np
from sqlalchemy import delete, update
from sqlmodel import Session, col, func, select
from sqlmodel.sql.expression import SelectOfScalar

from kb.config import get_settings
from kb.models import (
    Briefing,
    BriefingPublic,
    CourseThemeLink,
    Passage,
    Review,
    ReviewStatus,
    ReviewType,
    Role,
    TagStatus,
    ThemeTag,
    TrainingCourse,
    TrainingSession,
    utcnow,
)
from kb.services.access import Principal, can_see, visible_reviews
from kb.services.audit import record
from kb.services.briefing_rules import check_may_change
from kb.services.errors import Conflict
from kb.services.recurrence import theme_recurrence, theme_year_matrix
from kb.services.reviews import NotFound
from nlp.ranking import mmr

if TYPE_CHECKING:
    from nlp.taxonomy import Taxonomy, Theme

__all__ = [
    "DEFAULT_HEADINGS",
    "GENERIC_QUESTIONS",
    "BriefingDraft",
    "BriefingItem",
    "BriefingSection",
    "BriefingTemplate",
    "Conflict",
    "InvalidBriefing",
    "NotFound",
    "UnknownTheme",
    "build_briefing",
    "cli_json",
    "delete_briefing",
    "get_briefing",
    "list_briefings",
    "save_briefing",
    "sentence_spans",
    "update_briefing",
]

log = logging.getLogger(__name__)

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
                    {"text": i["text"], "review_id": i["review_id"], "passage_id": i["passage_id"]}
                    for i in s["items"]
                ],
            }
            for s in sections
        ],
    }


# --------------------------------------------------------------------------- sentences


_BOUNDARY = re.compile(r"[.!?…]+[\"'’”)\]]*(?=\s+|$)")
_ABBREVIATION_WORDS = "e.g i.e etc dr mr mrs ms st no nos vs cf approx para paras fig ref dept govt"
_ABBREVIATIONS = frozenset(_ABBREVIATION_WORDS.split())
_ENUMERATOR = re.compile(r"\(?(?:\d+(?:\.\d+)*|[a-z]|[ivx]+)", re.IGNORECASE)
_LEADER = re.compile(
    r"^\s*(?:(?:recommendation|finding|learning point|learning)\s*\d*(?:\.\d+)*\s*[:.)\-–—]\s*"
    r"|\(?\d+(?:\.\d+)*[.)]\s+|\d+(?:\.\d+)+\s+|\(?[a-z]\)\s+|\(?[ivx]+\)\s+|[•\-–—*▪◦]\s+)",
    re.IGNORECASE,
)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """``[start, end)`` spans of the sentences in ``text``, whitespace excluded.

    A regular-expression splitter is enough here (review prose is edited English) and keeps
    briefings free of the spaCy pipeline; it guards the abbreviations review authors use most.
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.end()
        word = re.search(r"([\w.]+)$", text[start : match.start()])
        token = word.group(1).lower().rstrip(".") if word else ""
        if token in _ABBREVIATIONS or (
            len(token) == 1 and token.isalpha() and match.group() == "."
        ):
            continue
        if _ENUMERATOR.fullmatch(text[start : match.start()].strip()):
            continue  # "1." / "(a)." / "iv." opening a numbered paragraph is not a sentence
        following = text[end:].lstrip()[:1]
        if following and following.islower():
            continue
        _append_span(spans, text, start, end)
        start = end
    _append_span(spans, text, start, len(text))
    return spans


def _append_span(spans: list[tuple[int, int]], text: str, start: int, end: int) -> None:
    piece = text[start:end]
    stripped = piece.strip()
    if stripped:
        offset = start + (len(piece) - len(piece.lstrip()))
        spans.append((offset, offset + len(stripped)))


def excerpt(text: str, *, budget: int, focus: int | None = None, max_sentences: int = 3) -> str:
    """Whole sentences of ``text`` within ``budget`` characters, from the one containing
    ``focus`` (an offset, e.g. tag evidence) or from the start.

    Only a first sentence longer than the budget is cut (at a word, marked with "…"): one page
    is a hard limit, and a 90-word sentence read aloud is not a briefing.
    """
    lead = _LEADER.match(text)
    if lead:
        focus = None if focus is None else max(0, focus - lead.end())
        text = text[lead.end() :]
    spans = sentence_spans(text)
    if not spans:
        return ""
    first = 0
    if focus is not None:
        first = next((i for i, (s, e) in enumerate(spans) if s <= focus < e), 0)
    chosen: list[str] = []
    used = 0
    for s, e in spans[first : first + max_sentences]:
        sentence = text[s:e]
        if chosen and used + len(sentence) + 1 > budget:
            break
        chosen.append(sentence)
        used += len(sentence) + 1
    result = re.sub(r"\s+", " ", " ".join(chosen)).strip()
    if len(result) > budget * 1.3:
        cut = result[:budget].rsplit(" ", 1)[0].rstrip(",;:–— ")
        result = f"{cut}…"
    return result


# --------------------------------------------------------------------------- building


@dataclass(slots=True)
class _Candidate:
    passage_id: int
    review_id: int
    text: str
    vector: np.ndarray | None


@dataclass(slots=True)
class _Context:
    """What every section builder needs: the session, whom it acts for, what it is about."""

    session: Session
    viewer: Principal
    taxonomy: Taxonomy
    template: BriefingTemplate
    today: date
    reviews: dict[int, Review]  # the reviews the briefing is about, visible to ``viewer``
    theme_ids: list[str]  # the theme, or a review's main themes
    theme: Theme | None = None  # the theme of a theme briefing


def build_briefing(
    session: Session,
    *,
    principal: Principal,
    theme_id: str | None = None,
    review_id: int | None = None,
    include_restricted: bool = False,
    template: BriefingTemplate | Sequence[str] | None = None,
    notes: str | None = None,
    taxonomy: Taxonomy | None = None,
    today: date | None = None,
) -> BriefingDraft:
    """Build a 7-minute briefing on a theme (across reviews) or on one review.

    ``notes`` is the author's own text for "the wider picture" (local context); ``taxonomy``
    defaults to the configured one; ``today`` decides which training sessions are "next".
    Raises :class:`UnknownTheme` or :class:`NotFound` (also for reviews the principal may not
    use), :class:`InvalidBriefing` for a bad template or both / neither of theme and review.
    """
    if (theme_id is None) == (review_id is None):
        raise InvalidBriefing("give exactly one of theme_id or review_id")
    layout = _template(template)
    taxonomy = taxonomy or _configured_taxonomy()
    viewer = effective_principal(principal, include_restricted=include_restricted)
    today = today or date.today()
    if theme_id is not None:
        ctx = _theme_context(session, viewer, taxonomy, layout, today, theme_id)
        title = f"7-minute briefing: {ctx.theme.label if ctx.theme else theme_id}"
        sections = _theme_sections(ctx, notes)
    else:
        assert review_id is not None
        review = _usable_review(session, principal, viewer, review_id)
        ctx = _review_context(session, viewer, taxonomy, layout, today, review)
        title = f"7-minute briefing: {review.pseudonym}"
        sections = _review_sections(ctx, review, notes)
    draft = BriefingDraft(title=title, sections=sections, theme_id=theme_id, review_id=review_id)
    draft.restricted = _any_unpublished(session, _draft_source_ids(draft))
    if draft.restricted:
        _audit(session, principal, "briefing.build", _subject(draft), _draft_source_ids(draft))
    return draft


def effective_principal(principal: Principal, *, include_restricted: bool) -> Principal:
    """The principal a briefing is built as: published-only unless restricted material was
    asked for *and* the caller may see it (then their own visibility applies)."""
    if include_restricted and principal.sees_restricted:
        return principal
    return Principal(username=principal.username, role=Role.VIEWER)


def _template(template: BriefingTemplate | Sequence[str] | None) -> BriefingTemplate:
    if template is None:
        return BriefingTemplate()
    if isinstance(template, BriefingTemplate):
        return template
    if isinstance(template, str):
        raise InvalidBriefing("a template is a list of seven headings, not one string")
    return BriefingTemplate(headings=tuple(str(h).strip() for h in template))


def _configured_taxonomy() -> Taxonomy:
    """The configured taxonomy (shipped + the partnership's files). Loaded directly rather than
    through the tagger: a briefing needs labels, questions and context, not the learned model."""
    return _cached_taxonomy(tuple(get_settings().taxonomy_files))


@lru_cache(maxsize=4)
def _cached_taxonomy(files: tuple[Path, ...]) -> Taxonomy:
    from nlp.taxonomy import load_taxonomy

    return load_taxonomy(list(files) or None)


def _theme_context(
    session: Session,
    viewer: Principal,
    taxonomy: Taxonomy,
    layout: BriefingTemplate,
    today: date,
    theme_id: str,
) -> _Context:
    theme = taxonomy.themes.get(theme_id)
    if theme is None:
        close = difflib.get_close_matches(theme_id, list(taxonomy.themes), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise UnknownTheme(f"unknown theme '{theme_id}'{hint}")
    reviews = session.exec(
        select(Review)
        .where(visible_reviews(viewer))
        .where(col(Review.id).in_(_tagged_review_ids(theme_id)))
        .order_by(col(Review.year).desc().nulls_last(), col(Review.id))
    ).all()
    return _Context(
        session=session,
        viewer=viewer,
        taxonomy=taxonomy,
        template=layout,
        today=today,
        reviews={r.id: r for r in reviews if r.id is not None},
        theme_ids=[theme_id],
        theme=theme,
    )


def _tagged_review_ids(theme_id: str) -> SelectOfScalar[int]:
    """Subquery: reviews with a passage carrying ``theme_id`` (suggested or confirmed)."""
    return (
        select(ThemeTag.review_id)
        .where(ThemeTag.theme_id == theme_id)
        .where(ThemeTag.status != TagStatus.REJECTED)
    )


def _usable_review(
    session: Session, principal: Principal, viewer: Principal, review_id: int
) -> Review:
    """The review, if the effective principal may use it. A caller who could see it but did not
    ask for restricted material is told why; anyone else just hears "not found"."""
    review = session.get(Review, review_id)
    if review is not None and can_see(viewer, review):
        return review
    if review is not None and can_see(principal, review):
        raise NotFound(
            f"review {review_id} is not published: include restricted material to brief on it"
        )
    raise NotFound(f"review {review_id} not found")


def _review_context(
    session: Session,
    viewer: Principal,
    taxonomy: Taxonomy,
    layout: BriefingTemplate,
    today: date,
    review: Review,
) -> _Context:
    counts = session.exec(
        select(ThemeTag.theme_id, func.count(col(ThemeTag.id)))
        .where(ThemeTag.review_id == review.id)
        .where(ThemeTag.status != TagStatus.REJECTED)
        .group_by(col(ThemeTag.theme_id))
    ).all()
    ranked = sorted(counts, key=lambda row: (-row[1], row[0]))
    theme_ids = [tid for tid, _ in ranked if tid in taxonomy.themes][:MAX_REVIEW_THEMES]
    return _Context(
        session=session,
        viewer=viewer,
        taxonomy=taxonomy,
        template=layout,
        today=today,
        reviews={review.id: review} if review.id is not None else {},
        theme_ids=theme_ids,
    )


def _section(
    ctx: _Context, number: int, items: list[BriefingItem], sources: Iterable[int] = ()
) -> BriefingSection:
    """A section with the template's heading; cited reviews are always among its sources."""
    ids = set(sources) | {i["review_id"] for i in items if i["review_id"] is not None}
    labels = _labels(ctx.session, ids, ctx.reviews)
    return BriefingSection(
        number=number,
        heading=ctx.template.headings[number - 1],
        items=items,
        sources={rid: labels[rid] for rid in sorted(ids)},
    )


def _item(text: str, review_id: int | None = None, passage_id: int | None = None) -> BriefingItem:
    return {"text": text, "review_id": review_id, "passage_id": passage_id}


def _theme_sections(ctx: _Context, notes: str | None) -> list[BriefingSection]:
    assert ctx.theme is not None
    theme = ctx.theme
    recurrence_items, recurrence_sources = _theme_recurrence_items(ctx, theme.id, theme.label)
    return [
        _section(ctx, 1, _theme_background(ctx), ctx.reviews),  # the 'Also:' line names all
        _section(ctx, 2, recurrence_items, recurrence_sources),
        _section(ctx, 3, _findings(ctx, _theme_candidates(ctx, theme.id))),
        _section(ctx, 4, _wider_picture([theme], notes, labelled=False)),
        _section(ctx, 5, _recommendations(ctx, _theme_recommendations(ctx, theme.id))),
        _section(ctx, 6, _questions(ctx, [theme])),
        _section(ctx, 7, _training(ctx, [theme.id], theme.label)),
    ]


def _review_sections(ctx: _Context, review: Review, notes: str | None) -> list[BriefingSection]:
    themes = [ctx.taxonomy.themes[tid] for tid in ctx.theme_ids]
    recurrence_items, recurrence_sources = _review_recurrence_items(ctx, themes)
    label = ", ".join(t.label.lower() for t in themes[:2]) or "this review's themes"
    findings = _review_candidates(ctx, review, FINDING_KINDS, budget=FINDING_BUDGET, sentences=3)
    recommendations = _review_candidates(
        ctx, review, RECOMMENDATION_KINDS, budget=RECOMMENDATION_BUDGET, sentences=1
    )
    return [
        _section(ctx, 1, _review_background(ctx, review)),
        _section(ctx, 2, recurrence_items, recurrence_sources),
        _section(ctx, 3, _findings(ctx, findings)),
        _section(ctx, 4, _wider_picture(themes[:2], notes, labelled=True)),
        _section(ctx, 5, _recommendations(ctx, recommendations)),
        _section(ctx, 6, _questions(ctx, themes)),
        _section(ctx, 7, _training(ctx, ctx.theme_ids, label)),
    ]


# ---- 1 background


def _theme_background(ctx: _Context) -> list[BriefingItem]:
    """One line per review carrying the theme, most recent first."""
    reviews = list(ctx.reviews.values())
    if not reviews:
        return [_item("No review available to you carries this theme yet.")]
    shown = reviews[:THEME_BACKGROUND_REVIEWS]
    openings = _background_passages(ctx.session, [r.id for r in shown if r.id is not None])
    items = []
    for review in shown:
        passage = openings.get(review.id)  # type: ignore[arg-type]
        sentence = (
            excerpt(passage.text, budget=BACKGROUND_BUDGET, max_sentences=1) if passage else ""
        )
        head = f"{review.pseudonym} ({_describe(review)})"
        if sentence:
            items.append(_item(f"{head}: {sentence}", review.id, passage.id if passage else None))
        else:
            items.append(_item(f"{head}.", review.id))
    if len(reviews) > len(shown):
        rest = ", ".join(r.pseudonym for r in reviews[len(shown) :])
        items.append(_item(f"Also: {rest}."))
    return items


def _review_background(ctx: _Context, review: Review) -> list[BriefingItem]:
    """The review in brief: what it is, then its first background sentences."""
    items = [_item(f"{review.pseudonym}: {_describe(review, long=True)}.", review.id)]
    passages = _ordered_passages(ctx.session, review.id, BACKGROUND_KINDS) or _ordered_passages(
        ctx.session, review.id, None
    )
    left = REVIEW_BACKGROUND_SENTENCES
    for passage in passages:
        if left <= 0:
            break
        text = excerpt(passage.text, budget=BACKGROUND_BUDGET * 2, max_sentences=left)
        if len(text.split()) < 6:
            continue
        items.append(_item(text, review.id, passage.id))
        left -= len(sentence_spans(text))
    return items


def _describe(review: Review, *, long: bool = False) -> str:
    kind = TYPE_LABELS.get(review.type, "review")
    parts = [kind]
    if review.year:
        parts.append(str(review.year))
    if long and review.publication_date:
        parts.append(f"published {review.publication_date:%B %Y}")
    return ", ".join(parts)


def _background_passages(session: Session, review_ids: list[int]) -> dict[int, Passage]:
    """Each review's opening: its first background passage of substance, else its first."""
    rows = session.exec(
        select(Passage)
        .where(col(Passage.review_id).in_(review_ids))
        .order_by(col(Passage.review_id), col(Passage.order))
    ).all()
    best: dict[int, tuple[int, Passage]] = {}
    for passage in rows:
        if len(passage.text.split()) < 6 or passage.section_kind in NOT_BACKGROUND:
            continue
        rank = (
            BACKGROUND_KINDS.index(passage.section_kind)
            if passage.section_kind in BACKGROUND_KINDS
            else len(BACKGROUND_KINDS)
        )
        if passage.review_id not in best or rank < best[passage.review_id][0]:
            best[passage.review_id] = (rank, passage)
    return {rid: passage for rid, (_, passage) in best.items()}


def _ordered_passages(
    session: Session, review_id: int | None, kinds: Sequence[str] | None
) -> list[Passage]:
    query = select(Passage).where(Passage.review_id == review_id)
    if kinds is not None:
        query = query.where(col(Passage.section_kind).in_(kinds))
    return list(session.exec(query.order_by(col(Passage.order))).all())


# ---- 2 why it matters


@dataclass(frozen=True, slots=True)
class _Recurrence:
    """Recurrence figures as the effective principal sees them (annual reports left out, as
    in the scrutineer's table, so the briefing and the table never disagree)."""

    total: int
    rows: dict[str, Mapping[str, Any]]
    years: list[int]
    year_totals: list[int]
    year_counts: dict[str, list[int]]

    @classmethod
    def load(cls, ctx: _Context) -> _Recurrence:
        figures = theme_recurrence(ctx.session, principal=ctx.viewer)
        matrix = theme_year_matrix(ctx.session, principal=ctx.viewer)
        return cls(
            total=int(figures["total_reviews"]),
            rows={row["id"]: row for row in figures["themes"]},
            years=list(matrix["years"]),
            year_totals=list(matrix["totals"]),
            year_counts={row["id"]: list(row["counts"]) for row in matrix["themes"]},
        )

    def count(self, theme_id: str) -> int:
        row = self.rows.get(theme_id)
        return int(row["reviews"]) if row else 0

    def review_ids(self, theme_id: str) -> set[int]:
        row = self.rows.get(theme_id)
        return set(row["review_ids"]) if row else set()

    def share_text(self, theme_id: str, label: str) -> str:
        """'Hidden men featured in 7 of 13 reviews (54%) since 2016.'"""
        count = self.count(theme_id)
        percent = round(100 * count / self.total) if self.total else 0
        period = f" since {self.years[0]}" if self.years else ""
        return f"{label} featured in {count} of {self.total} reviews ({percent}%){period}."

    def trend_text(self, theme_id: str) -> str | None:
        """Share of reviews with the theme in the later half of the years against the earlier."""
        if len(self.years) < 2:
            return None
        cut = len(self.years) // 2
        counts = self.year_counts.get(theme_id, [0] * len(self.years))
        e_n, e_total = sum(counts[:cut]), sum(self.year_totals[:cut])
        r_n, r_total = sum(counts[cut:]), sum(self.year_totals[cut:])
        if not e_total or not r_total:
            return None
        change = r_n / r_total - e_n / e_total
        word = "rising" if change > 0.1 else "falling" if change < -0.1 else "steady"
        return (
            f"Trend: {word}, {r_n} of {r_total} reviews since {self.years[cut]} "
            f"({round(100 * r_n / r_total)}%) against {e_n} of {e_total} before "
            f"({round(100 * e_n / e_total)}%)."
        )


def _theme_recurrence_items(
    ctx: _Context, theme_id: str, label: str
) -> tuple[list[BriefingItem], set[int]]:
    figures = _Recurrence.load(ctx)
    sources = figures.review_ids(theme_id)
    items = [_item(figures.share_text(theme_id, label))]
    trend = figures.trend_text(theme_id)
    if trend:
        items.append(_item(trend))
    alongside = _co_occurring(ctx, theme_id, sources)
    if alongside:
        items.append(_item(f"In these reviews it came up most often alongside {alongside}."))
    return items, sources


def _co_occurring(ctx: _Context, theme_id: str, review_ids: set[int]) -> str:
    """The two themes most often tagged in the same (visible) reviews (in two or more: one
    shared review is coincidence, not a pattern worth a line on a one-page briefing)."""
    if not review_ids:
        return ""
    rows = ctx.session.exec(
        select(ThemeTag.theme_id, func.count(func.distinct(ThemeTag.review_id)))
        .join(Review, col(Review.id) == ThemeTag.review_id)
        .where(visible_reviews(ctx.viewer))
        .where(col(ThemeTag.review_id).in_(review_ids))
        .where(ThemeTag.theme_id != theme_id)
        .where(ThemeTag.status != TagStatus.REJECTED)
        .group_by(col(ThemeTag.theme_id))
    ).all()
    ranked = sorted(
        ((n, tid) for tid, n in rows if tid in ctx.taxonomy.themes and n >= 2),
        key=lambda r: (-r[0], r[1]),
    )
    return " and ".join(
        f"{ctx.taxonomy.themes[tid].label.lower()} ({n} of {len(review_ids)})"
        for n, tid in ranked[:2]
    )


def _review_recurrence_items(
    ctx: _Context, themes: list[Theme]
) -> tuple[list[BriefingItem], set[int]]:
    """How often each of the review's main themes recurs across the reviews."""
    if not themes:
        return [_item("No themes have been tagged in this review yet.")], set()
    figures = _Recurrence.load(ctx)
    items, sources = [], set()
    for theme in themes:
        sources |= figures.review_ids(theme.id)
        items.append(_item(figures.share_text(theme.id, theme.label)))
    return items, sources


# ---- 3 what we found


def _theme_candidates(ctx: _Context, theme_id: str) -> list[_Candidate]:
    """Findings passages tagged with the theme; evidence sentences elsewhere when too few."""
    rows = _tagged_passages(ctx, theme_id, exclude_kinds=RECOMMENDATION_KINDS)
    findings = [(p, t) for p, t in rows if p.section_kind in FINDING_KINDS]
    chosen = findings if len(findings) >= MIN_FINDINGS else rows
    return [_candidate(p, FINDING_BUDGET, _evidence_start(t, p)) for p, t in chosen]


def _tagged_passages(
    ctx: _Context,
    theme_id: str,
    *,
    kinds: Sequence[str] | None = None,
    exclude_kinds: Sequence[str] = (),
) -> list[tuple[Passage, ThemeTag]]:
    query = (
        select(Passage, ThemeTag)
        .join(ThemeTag, col(ThemeTag.passage_id) == Passage.id)
        .join(Review, col(Review.id) == Passage.review_id)
        .where(visible_reviews(ctx.viewer))
        .where(ThemeTag.theme_id == theme_id)
        .where(ThemeTag.status != TagStatus.REJECTED)
    )
    if kinds is not None:
        query = query.where(col(Passage.section_kind).in_(kinds))
    if exclude_kinds:
        query = query.where(col(Passage.section_kind).not_in(exclude_kinds))
    return [(p, t) for p, t in ctx.session.exec(query.order_by(col(Passage.id))).all()]


def _evidence_start(tag: ThemeTag, passage: Passage) -> int | None:
    """Where the first evidence of the tag starts inside the passage, if recorded."""
    for evidence in tag.evidence or []:
        if "passage_start" in evidence:
            return int(evidence["passage_start"])
        if "start" in evidence:
            return int(evidence["start"]) - passage.start
    return None


def _candidate(
    passage: Passage, budget: int, focus: int | None = None, sentences: int = 3
) -> _Candidate:
    vector = np.frombuffer(passage.embedding, dtype=np.float32) if passage.embedding else None
    return _Candidate(
        passage_id=passage.id,  # type: ignore[arg-type]
        review_id=passage.review_id,
        text=excerpt(passage.text, budget=budget, focus=focus, max_sentences=sentences),
        vector=vector,
    )


def _review_candidates(
    ctx: _Context, review: Review, kinds: Sequence[str], *, budget: int, sentences: int
) -> list[_Candidate]:
    """Every passage of the review's findings (or recommendations) section, in reading order."""
    return [
        _candidate(p, budget, sentences=sentences)
        for p in _ordered_passages(ctx.session, review.id, kinds)
    ]


def _findings(ctx: _Context, candidates: list[_Candidate]) -> list[BriefingItem]:
    picked = _pick_diverse(candidates, top_k=MAX_FINDINGS, duplicate=DUPLICATE_FINDING)
    if not picked:
        return [_item("No findings on this have been recorded in the reviews available to you.")]
    return [_item(c.text, c.review_id, c.passage_id) for c in picked]


def _pick_diverse(
    candidates: list[_Candidate], *, top_k: int, duplicate: float
) -> list[_Candidate]:
    """Central and diverse picks by MMR over passage vectors, near-duplicates dropped.

    MMR alone only *discourages* repeats; a cosine threshold rules them out, so two reviews
    making the same point in the same words never fill two of five bullets. Passages without
    a vector (or from another embedding model) follow in reading order, de-duplicated by text.
    """
    candidates = [c for c in candidates if len(c.text.split()) >= 4]
    dims = Counter(c.vector.shape[0] for c in candidates if c.vector is not None)
    dim = dims.most_common(1)[0][0] if dims else None
    with_vec = [c for c in candidates if c.vector is not None and c.vector.shape[0] == dim]
    rest = [c for c in candidates if c not in with_vec]
    order: list[_Candidate] = []
    if with_vec:
        matrix = np.vstack([c.vector for c in with_vec]).astype(np.float32)
        order = [with_vec[i] for i in mmr(None, matrix, lambda_=0.7, top_k=len(with_vec))]
    picked: list[_Candidate] = []
    seen_texts: set[str] = set()
    for cand in [*order, *rest]:
        key = re.sub(r"\W+", " ", cand.text.lower()).strip()
        if key in seen_texts or _too_close(cand, picked, duplicate):
            continue
        picked.append(cand)
        seen_texts.add(key)
        if len(picked) == top_k:
            break
    return picked


def _too_close(cand: _Candidate, picked: list[_Candidate], threshold: float) -> bool:
    if cand.vector is None:
        return False
    a = _unit(cand.vector)
    return any(
        p.vector is not None
        and p.vector.shape == cand.vector.shape
        and float(a @ _unit(p.vector)) >= threshold
        for p in picked
    )


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


# ---- 4 wider picture


def _wider_picture(themes: list[Theme], notes: str | None, *, labelled: bool) -> list[BriefingItem]:
    items = []
    for theme in themes:
        context = " ".join((getattr(theme, "context", "") or "").split())
        if context:
            items.append(_item(f"{theme.label}: {context}" if labelled else context))
    if notes and notes.strip():
        items.append(_item(" ".join(notes.split())))
    return items or [_item("No national context is recorded for this theme yet.")]


# ---- 5 what practitioners should do


def _theme_recommendations(ctx: _Context, theme_id: str) -> list[_Candidate]:
    """Recommendations tagged with the theme; the theme's reviews' others when too few."""
    tagged = [p for p, _ in _tagged_passages(ctx, theme_id, kinds=RECOMMENDATION_KINDS)]
    if len(tagged) < MIN_FINDINGS and ctx.reviews:
        seen = {p.id for p in tagged}
        others = ctx.session.exec(
            select(Passage)
            .where(col(Passage.review_id).in_(list(ctx.reviews)))
            .where(col(Passage.section_kind).in_(RECOMMENDATION_KINDS))
            .order_by(col(Passage.review_id), col(Passage.order))
        ).all()
        tagged += [p for p in others if p.id not in seen]
    return [_candidate(p, RECOMMENDATION_BUDGET, sentences=1) for p in tagged]


def _recommendations(ctx: _Context, candidates: list[_Candidate]) -> list[BriefingItem]:
    picked = _pick_diverse(
        candidates, top_k=MAX_RECOMMENDATIONS, duplicate=DUPLICATE_RECOMMENDATION
    )
    if not picked:
        return [_item("No recommendations on this are recorded in the reviews available to you.")]
    return [_item(c.text, c.review_id, c.passage_id) for c in picked]


# ---- 6 questions, 7 training


def _questions(ctx: _Context, themes: list[Theme]) -> list[BriefingItem]:
    own: list[str] = []
    per_theme = MAX_QUESTIONS if len(themes) <= 1 else max(1, MAX_QUESTIONS // len(themes))
    for theme in themes:
        own += list(getattr(theme, "questions", []) or [])[:per_theme]
    questions = list(dict.fromkeys([*own[:MAX_QUESTIONS], *ctx.template.generic_questions]))
    return [_item(q) for q in questions]


def _training(ctx: _Context, theme_ids: list[str], label: str) -> list[BriefingItem]:
    courses = ctx.session.exec(
        select(TrainingCourse)
        .join(CourseThemeLink, col(CourseThemeLink.course_id) == TrainingCourse.id)
        .where(col(CourseThemeLink.theme_id).in_(theme_ids))
        .distinct()
        .order_by(col(TrainingCourse.title))
    ).all()
    if not courses:
        return [_item(f"No training on {label.lower()} is recorded yet: ask the L&D team.")]
    sessions: dict[int, list[TrainingSession]] = defaultdict(list)
    for row in ctx.session.exec(
        select(TrainingSession).where(col(TrainingSession.course_id).in_([c.id for c in courses]))
    ).all():
        sessions[row.course_id].append(row)
    return [_item(_course_line(c, sessions[c.id], ctx.today)) for c in courses]  # type: ignore[index]


def _course_line(course: TrainingCourse, sessions: list[TrainingSession], today: date) -> str:
    """'Title (provider): next session …; last held …; mean learning gain +1.4 (3 sessions).'"""
    dated = sorted(s.held_on for s in sessions if s.held_on)
    upcoming = [d for d in dated if d >= today]
    past = [d for d in dated if d < today]
    facts = []
    if upcoming:
        facts.append(f"next session {_day(upcoming[0])}")
    if past:
        facts.append(f"last held {_day(past[-1])}")
    gains = [
        s.post_score - s.pre_score
        for s in sessions
        if s.pre_score is not None and s.post_score is not None
    ]
    if gains:
        mean = sum(gains) / len(gains)
        facts.append(
            f"mean learning gain {mean:+.1f} ({len(gains)} session{'s' * (len(gains) != 1)})"
        )
    provider = f" ({course.provider})" if course.provider else ""
    return f"{course.title}{provider}" + (f": {'; '.join(facts)}." if facts else ".")


def _day(day: date) -> str:
    return f"{day.day} {day:%B %Y}"


# --------------------------------------------------------------------------- sources, access


def _labels(session: Session, ids: Iterable[int], known: Mapping[int, Review]) -> dict[int, str]:
    """Citation labels (pseudonyms) for review ids, from memory where possible."""
    ids = set(ids)
    labels = {rid: known[rid].pseudonym for rid in ids if rid in known}
    missing = ids - set(labels)
    if missing:
        for rid, pseudonym in session.exec(
            select(Review.id, Review.pseudonym).where(col(Review.id).in_(missing))
        ).all():
            labels[rid] = pseudonym
    return {rid: labels.get(rid, f"review {rid}") for rid in ids}


def _draft_source_ids(draft: BriefingDraft) -> set[int]:
    return _source_ids(draft.review_id, draft.sections_json())


def _source_ids(review_id: int | None, sections: Sequence[Mapping[str, Any]]) -> set[int]:
    """Every review a briefing draws on: its subject, cited reviews and counted reviews."""
    ids = {review_id} if review_id is not None else set()
    for section in sections:
        ids |= {int(s["review_id"]) for s in section.get("sources", [])}
        ids |= {int(i["review_id"]) for i in section.get("items", []) if i.get("review_id")}
    return ids


def _any_unpublished(session: Session, review_ids: set[int]) -> bool:
    if not review_ids:
        return False
    statuses = session.exec(select(Review.status).where(col(Review.id).in_(review_ids))).all()
    return any(status != ReviewStatus.PUBLISHED for status in statuses)


def _visible_ids(session: Session, principal: Principal, review_ids: set[int]) -> set[int]:
    """The subset of ``review_ids`` the principal may see now."""
    if not review_ids:
        return set()
    return set(
        session.exec(
            select(Review.id)
            .where(col(Review.id).in_(review_ids))
            .where(visible_reviews(principal))
        ).all()
    )


def _all_visible(session: Session, principal: Principal, review_ids: set[int]) -> bool:
    return review_ids <= _visible_ids(session, principal, review_ids)


def _may_see(session: Session, principal: Principal, briefing: Briefing) -> bool:
    """Restricted briefings need a principal who sees restricted material, and every briefing
    needs all its sources visible now: a review embargoed after saving hides its briefings."""
    if briefing.restricted and not principal.sees_restricted:
        return False
    return _all_visible(session, principal, _source_ids(briefing.review_id, briefing.sections))


def _subject(draft: BriefingDraft | Briefing) -> str:
    return f"theme:{draft.theme_id}" if draft.theme_id else f"review:{draft.review_id}"


def _audit(
    session: Session, principal: Principal, action: str, object_id: str, review_ids: set[int]
) -> None:
    """Who used restricted material: ids only, never document text."""
    detail = {"reviews": sorted(review_ids)} if review_ids else None
    if detail and len(str(detail)) > 250:
        detail = {"reviews_count": len(review_ids)}
    record(
        session,
        principal=principal,
        action=action,
        object_type="briefing",
        object_id=object_id,
        detail=detail,
    )


# --------------------------------------------------------------------------- saved drafts


def save_briefing(
    session: Session, *, principal: Principal, draft: BriefingDraft
) -> BriefingPublic:
    """Store a draft for editing. The saver must be able to see everything it draws on."""
    sections = draft.sections_json()
    _validate_sections(sections)
    sources = _source_ids(draft.review_id, sections)
    restricted = draft.restricted or _any_unpublished(session, sources)
    if (restricted and not principal.sees_restricted) or not _all_visible(
        session, principal, sources
    ):
        raise NotFound("the briefing draws on reviews not available to you")
    row = Briefing(
        title=_valid_title(draft.title),
        theme_id=draft.theme_id,
        review_id=draft.review_id,
        sections=sections,
        restricted=restricted,
        created_by=principal.username,
    )
    session.add(row)
    session.flush()
    _audit(session, principal, "briefing.create", str(row.id), sources if restricted else set())
    return BriefingPublic.model_validate(row)


def get_briefing(session: Session, *, principal: Principal, briefing_id: int) -> BriefingPublic:
    """One saved briefing; hidden ones are simply not found."""
    return BriefingPublic.model_validate(_load(session, principal, briefing_id))


def list_briefings(
    session: Session,
    *,
    principal: Principal,
    theme_id: str | None = None,
    review_id: int | None = None,
) -> list[BriefingPublic]:
    """Saved briefings the principal may see, most recently updated first."""
    query = select(Briefing)
    if theme_id is not None:
        query = query.where(Briefing.theme_id == theme_id)
    if review_id is not None:
        query = query.where(Briefing.review_id == review_id)
    if not principal.sees_restricted:
        query = query.where(col(Briefing.restricted).is_(False))
    rows = session.exec(query.order_by(col(Briefing.updated_at).desc(), col(Briefing.id))).all()
    sources = {b.id: _source_ids(b.review_id, b.sections) for b in rows}
    visible = _visible_ids(session, principal, set().union(*sources.values()))
    return [BriefingPublic.model_validate(b) for b in rows if sources[b.id] <= visible]


def update_briefing(
    session: Session,
    *,
    principal: Principal,
    briefing_id: int,
    title: str | None = None,
    sections: list[dict[str, Any]] | None = None,
    expected_version: int,
) -> BriefingPublic:
    """Edit a saved briefing's title and sections under optimistic locking.

    The version check and the write are one conditional UPDATE, so two editors saving at the
    same moment cannot both win. Edited items may cite only reviews the editor can see; citing
    an unpublished one makes the briefing restricted, and a restricted briefing stays restricted.
    """
    row = _load(session, principal, briefing_id)
    check_may_change(principal, row.created_by, "edit")
    values: dict[str, Any] = {"updated_at": utcnow(), "version_id": Briefing.version_id + 1}
    if title is not None:
        values["title"] = _valid_title(title)
    if sections is not None:
        clean = _edited_sections(session, principal, row, sections)
        values["sections"] = clean
        sources = _source_ids(row.review_id, clean)
        values["restricted"] = row.restricted or _any_unpublished(session, sources)
        if values["restricted"] and not principal.sees_restricted:
            raise NotFound("the briefing draws on reviews not available to you")
    result = session.execute(
        update(Briefing)
        .where(col(Briefing.id) == briefing_id)
        .where(col(Briefing.version_id) == expected_version)
        .values(**values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(
            f"briefing {briefing_id} was changed by someone else (version {row.version_id}, "
            f"you had {expected_version}); reload and try again"
        )
    session.flush()
    session.refresh(row)
    _audit(session, principal, "briefing.update", str(row.id), set())
    return BriefingPublic.model_validate(row)


def delete_briefing(
    session: Session, *, principal: Principal, briefing_id: int, expected_version: int
) -> None:
    """Delete a saved briefing the principal may see, under the same optimistic lock as edits,
    so nobody deletes changes they have not seen. Only its author or an admin may delete it."""
    row = _load(session, principal, briefing_id)
    check_may_change(principal, row.created_by, "delete")
    result = session.execute(
        delete(Briefing)
        .where(col(Briefing.id) == briefing_id)
        .where(col(Briefing.version_id) == expected_version)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(
            f"briefing {briefing_id} was changed by someone else since version "
            f"{expected_version}; reload and try again"
        )
    session.flush()
    _audit(session, principal, "briefing.delete", str(briefing_id), set())


def _load(session: Session, principal: Principal, briefing_id: int) -> Briefing:
    row = session.get(Briefing, briefing_id)
    if row is None or not _may_see(session, principal, row):
        raise NotFound(f"briefing {briefing_id} not found")
    return row


def _valid_title(title: str) -> str:
    title = " ".join(str(title).split())
    if not title or len(title) > 300:
        raise InvalidBriefing("a briefing title needs 1 to 300 characters")
    return title


def _edited_sections(
    session: Session, principal: Principal, row: Briefing, sections: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Validate an edit and carry the sources over: what a section drew on stays recorded even
    when the editor deletes the item that showed it (e.g. a recurrence figure)."""
    _validate_sections(sections)
    old_sources = {s["number"]: s.get("sources", []) for s in row.sections}
    cited = {i["review_id"] for s in sections for i in s["items"] if i["review_id"] is not None}
    if not _all_visible(session, principal, cited):
        raise NotFound("an item cites a review not available to you")
    _check_passages(session, sections)
    labels = _labels(session, cited, {})
    clean = []
    for section in sections:
        sources = {int(s["review_id"]): s["label"] for s in old_sources.get(section["number"], [])}
        for item in section["items"]:
            if item["review_id"] is not None:
                sources.setdefault(item["review_id"], labels[item["review_id"]])
        clean.append(
            {
                "number": section["number"],
                "heading": section["heading"].strip(),
                "items": [
                    _item(" ".join(i["text"].split()), i["review_id"], i["passage_id"])
                    for i in section["items"]
                ],
                "sources": [{"review_id": k, "label": v} for k, v in sorted(sources.items())],
            }
        )
    return clean


def _validate_sections(sections: Any) -> None:
    if not isinstance(sections, list) or len(sections) != SECTION_COUNT:
        raise InvalidBriefing(f"a briefing has exactly {SECTION_COUNT} sections")
    for number, section in enumerate(sections, start=1):
        if not isinstance(section, Mapping) or section.get("number") != number:
            raise InvalidBriefing(f"section {number} is missing or out of order")
        heading = section.get("heading")
        if not isinstance(heading, str) or not heading.strip() or len(heading) > MAX_HEADING_CHARS:
            raise InvalidBriefing(f"section {number} needs a heading of 1 to 200 characters")
        items = section.get("items")
        if not isinstance(items, list):
            raise InvalidBriefing(f"section {number} needs a list of items")
        for item in items:
            _validate_item(number, item)


def _validate_item(number: int, item: Any) -> None:
    if not isinstance(item, Mapping):
        raise InvalidBriefing(f"section {number}: an item must be an object")
    text = item.get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_ITEM_CHARS:
        raise InvalidBriefing(f"section {number}: item text needs 1 to {MAX_ITEM_CHARS} characters")
    for key in ("review_id", "passage_id"):
        value = item.get(key)
        if key not in item or not (
            value is None or (isinstance(value, int) and not isinstance(value, bool))
        ):
            raise InvalidBriefing(f"section {number}: item {key} must be an integer or null")
    if item["passage_id"] is not None and item["review_id"] is None:
        raise InvalidBriefing(f"section {number}: a cited passage needs its review id")


def _check_passages(session: Session, sections: list[dict[str, Any]]) -> None:
    """A cited passage must exist and belong to the review cited with it."""
    pairs = {
        (i["passage_id"], i["review_id"]) for s in sections for i in s["items"] if i["passage_id"]
    }
    if not pairs:
        return
    owners = dict(
        session.exec(
            select(Passage.id, Passage.review_id).where(col(Passage.id).in_([p for p, _ in pairs]))
        ).all()
    )
    for passage_id, review_id in pairs:
        if owners.get(passage_id) != review_id:
            raise InvalidBriefing(f"passage {passage_id} is not part of review {review_id}")

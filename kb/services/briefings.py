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

This module is the public face: it builds a briefing and re-exports the model (briefing_model),
the store (briefing_store) and the sentence helpers (briefing_text), so callers import from one
place. The pieces: briefing_context (shared context, diverse picks), briefing_sections (one
builder per section), briefing_why (recurrence), briefing_access (sources, visibility, audit).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlmodel import Session, col, func, select
from sqlmodel.sql.expression import SelectOfScalar

from kb.config import get_settings
from kb.models import (
    Review,
    TagStatus,
    ThemeTag,
)
from kb.services.access import Principal, visible_reviews
from kb.services.briefing_access import (
    any_unpublished,
    audit_use,
    draft_source_ids,
    effective_principal,
    subject_of,
    usable_review,
)
from kb.services.briefing_context import BriefingContext, make_section
from kb.services.briefing_model import (
    DEFAULT_HEADINGS,
    FINDING_BUDGET,
    GENERIC_QUESTIONS,
    MAX_REVIEW_THEMES,
    RECOMMENDATION_BUDGET,
    BriefingDraft,
    BriefingItem,
    BriefingSection,
    BriefingTemplate,
    InvalidBriefing,
    UnknownTheme,
    cli_json,
)
from kb.services.briefing_roles import FINDING_ROLES, PRACTICE_ROLES
from kb.services.briefing_sections import (
    found_items,
    practice_candidates,
    question_items,
    recommendation_items,
    review_background,
    review_candidates,
    theme_background,
    theme_candidates,
    theme_recommendations,
    training_items,
    wider_picture,
)
from kb.services.briefing_store import (
    delete_briefing,
    get_briefing,
    list_briefings,
    save_briefing,
    update_briefing,
)
from kb.services.briefing_text import sentence_spans
from kb.services.briefing_why import review_recurrence_items, theme_recurrence_items
from kb.services.errors import Conflict
from kb.services.reviews import NotFound

if TYPE_CHECKING:
    from nlp.taxonomy import Taxonomy

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
    "effective_principal",
    "get_briefing",
    "list_briefings",
    "save_briefing",
    "sentence_spans",
    "update_briefing",
]


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
        review = usable_review(session, principal, viewer, review_id)
        ctx = _review_context(session, viewer, taxonomy, layout, today, review)
        title = f"7-minute briefing: {review.pseudonym}"
        sections = _review_sections(ctx, review, notes)
    draft = BriefingDraft(title=title, sections=sections, theme_id=theme_id, review_id=review_id)
    draft.restricted = any_unpublished(session, draft_source_ids(draft))
    if draft.restricted:
        audit_use(session, principal, "briefing.build", subject_of(draft), draft_source_ids(draft))
    return draft


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
) -> BriefingContext:
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
    return BriefingContext(
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


def _review_context(
    session: Session,
    viewer: Principal,
    taxonomy: Taxonomy,
    layout: BriefingTemplate,
    today: date,
    review: Review,
) -> BriefingContext:
    counts = session.exec(
        select(ThemeTag.theme_id, func.count(col(ThemeTag.id)))
        .where(ThemeTag.review_id == review.id)
        .where(ThemeTag.status != TagStatus.REJECTED)
        .group_by(col(ThemeTag.theme_id))
    ).all()
    ranked = sorted(counts, key=lambda row: (-row[1], row[0]))
    theme_ids = [tid for tid, _ in ranked if tid in taxonomy.themes][:MAX_REVIEW_THEMES]
    return BriefingContext(
        session=session,
        viewer=viewer,
        taxonomy=taxonomy,
        template=layout,
        today=today,
        reviews={review.id: review} if review.id is not None else {},
        theme_ids=theme_ids,
    )


def _theme_sections(ctx: BriefingContext, notes: str | None) -> list[BriefingSection]:
    assert ctx.theme is not None
    theme = ctx.theme
    recurrence_items, recurrence_sources = theme_recurrence_items(ctx, theme.id, theme.label)
    return [
        make_section(ctx, 1, theme_background(ctx), ctx.reviews),  # the 'Also:' line names all
        make_section(ctx, 2, recurrence_items, recurrence_sources),
        make_section(ctx, 3, found_items(ctx, theme_candidates(ctx, theme.id))),
        make_section(ctx, 4, wider_picture([theme], notes, labelled=False)),
        make_section(ctx, 5, recommendation_items(ctx, theme_recommendations(ctx, theme.id))),
        make_section(ctx, 6, question_items(ctx, [theme])),
        make_section(ctx, 7, training_items(ctx, [theme.id], theme.label)),
    ]


def _review_sections(
    ctx: BriefingContext, review: Review, notes: str | None
) -> list[BriefingSection]:
    themes = [ctx.taxonomy.themes[tid] for tid in ctx.theme_ids]
    recurrence_items, recurrence_sources = review_recurrence_items(ctx, themes)
    label = ", ".join(t.label.lower() for t in themes[:2]) or "this review's themes"
    findings = review_candidates(ctx, review, FINDING_ROLES, budget=FINDING_BUDGET, sentences=3)
    recommendations = practice_candidates(
        review_candidates(ctx, review, PRACTICE_ROLES, budget=RECOMMENDATION_BUDGET, sentences=1)
    )
    return [
        make_section(ctx, 1, review_background(ctx, review)),
        make_section(ctx, 2, recurrence_items, recurrence_sources),
        make_section(ctx, 3, found_items(ctx, findings, per_case=False)),
        make_section(ctx, 4, wider_picture(themes[:2], notes, labelled=True)),
        make_section(ctx, 5, recommendation_items(ctx, recommendations, per_case=False)),
        make_section(ctx, 6, question_items(ctx, themes)),
        make_section(ctx, 7, training_items(ctx, ctx.theme_ids, label)),
    ]

"""Section builders of a briefing: background, findings, practice, wider picture, questions,
training. Each returns the items of one section; "why it matters" lives in briefing_why.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from kb.models import (
    CourseThemeLink,
    Passage,
    Review,
    TagStatus,
    ThemeTag,
    TrainingCourse,
    TrainingSession,
)
from kb.services.access import visible_reviews
from kb.services.briefing_context import (
    BriefingContext,
    Candidate,
    candidate,
    evidence_start,
    pick_diverse,
)
from kb.services.briefing_model import (
    BACKGROUND_BUDGET,
    BACKGROUND_KINDS,
    DUPLICATE_FINDING,
    DUPLICATE_RECOMMENDATION,
    FINDING_BUDGET,
    FINDING_KINDS,
    MAX_FINDINGS,
    MAX_QUESTIONS,
    MAX_RECOMMENDATIONS,
    MIN_FINDINGS,
    NOT_BACKGROUND,
    RECOMMENDATION_BUDGET,
    RECOMMENDATION_KINDS,
    REVIEW_BACKGROUND_SENTENCES,
    THEME_BACKGROUND_REVIEWS,
    TYPE_LABELS,
    BriefingItem,
    new_item,
)
from kb.services.briefing_text import excerpt, sentence_spans

if TYPE_CHECKING:
    from nlp.taxonomy import Theme


# ---- 1 background


def theme_background(ctx: BriefingContext) -> list[BriefingItem]:
    """One line per review carrying the theme, most recent first."""
    reviews = list(ctx.reviews.values())
    if not reviews:
        return [new_item("No review available to you carries this theme yet.")]
    shown = reviews[:THEME_BACKGROUND_REVIEWS]
    openings = _background_passages(ctx.session, [r.id for r in shown if r.id is not None])
    items = []
    for review in shown:
        passage = openings.get(review.id)  # type: ignore[arg-type]
        sentence = (
            excerpt(passage.text, budget=BACKGROUND_BUDGET, max_sentences=1) if passage else ""
        )
        head = f"{review.pseudonym} ({describe(review)})"
        if sentence:
            items.append(
                new_item(f"{head}: {sentence}", review.id, passage.id if passage else None)
            )
        else:
            items.append(new_item(f"{head}.", review.id))
    if len(reviews) > len(shown):
        rest = ", ".join(r.pseudonym for r in reviews[len(shown) :])
        items.append(new_item(f"Also: {rest}."))
    return items


def review_background(ctx: BriefingContext, review: Review) -> list[BriefingItem]:
    """The review in brief: what it is, then its first background sentences."""
    items = [new_item(f"{review.pseudonym}: {describe(review, long=True)}.", review.id)]
    passages = ordered_passages(ctx.session, review.id, BACKGROUND_KINDS) or ordered_passages(
        ctx.session, review.id, None
    )
    left = REVIEW_BACKGROUND_SENTENCES
    for passage in passages:
        if left <= 0:
            break
        text = excerpt(passage.text, budget=BACKGROUND_BUDGET * 2, max_sentences=left)
        if len(text.split()) < 6:
            continue
        items.append(new_item(text, review.id, passage.id))
        left -= len(sentence_spans(text))
    return items


def describe(review: Review, *, long: bool = False) -> str:
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


def ordered_passages(
    session: Session, review_id: int | None, kinds: Sequence[str] | None
) -> list[Passage]:
    query = select(Passage).where(Passage.review_id == review_id)
    if kinds is not None:
        query = query.where(col(Passage.section_kind).in_(kinds))
    return list(session.exec(query.order_by(col(Passage.order))).all())


# ---- 3 what we found


def theme_candidates(ctx: BriefingContext, theme_id: str) -> list[Candidate]:
    """Findings passages tagged with the theme; evidence sentences elsewhere when too few."""
    rows = tagged_passages(ctx, theme_id, exclude_kinds=RECOMMENDATION_KINDS)
    findings = [(p, t) for p, t in rows if p.section_kind in FINDING_KINDS]
    chosen = findings if len(findings) >= MIN_FINDINGS else rows
    return [candidate(p, FINDING_BUDGET, evidence_start(t, p)) for p, t in chosen]


def tagged_passages(
    ctx: BriefingContext,
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


def review_candidates(
    ctx: BriefingContext, review: Review, kinds: Sequence[str], *, budget: int, sentences: int
) -> list[Candidate]:
    """Every passage of the review's findings (or recommendations) section, in reading order."""
    return [
        candidate(p, budget, sentences=sentences)
        for p in ordered_passages(ctx.session, review.id, kinds)
    ]


def found_items(ctx: BriefingContext, candidates: list[Candidate]) -> list[BriefingItem]:
    picked = pick_diverse(candidates, top_k=MAX_FINDINGS, duplicate=DUPLICATE_FINDING)
    if not picked:
        return [new_item("No findings on this have been recorded in the reviews available to you.")]
    return [new_item(c.text, c.review_id, c.passage_id) for c in picked]


# ---- 4 wider picture


def wider_picture(themes: list[Theme], notes: str | None, *, labelled: bool) -> list[BriefingItem]:
    items = []
    for theme in themes:
        context = " ".join((getattr(theme, "context", "") or "").split())
        if context:
            items.append(new_item(f"{theme.label}: {context}" if labelled else context))
    if notes and notes.strip():
        items.append(new_item(" ".join(notes.split())))
    return items or [new_item("No national context is recorded for this theme yet.")]


# ---- 5 what practitioners should do


def theme_recommendations(ctx: BriefingContext, theme_id: str) -> list[Candidate]:
    """Recommendations tagged with the theme; the theme's reviews' others when too few."""
    tagged = [p for p, _ in tagged_passages(ctx, theme_id, kinds=RECOMMENDATION_KINDS)]
    if len(tagged) < MIN_FINDINGS and ctx.reviews:
        seen = {p.id for p in tagged}
        others = ctx.session.exec(
            select(Passage)
            .where(col(Passage.review_id).in_(list(ctx.reviews)))
            .where(col(Passage.section_kind).in_(RECOMMENDATION_KINDS))
            .order_by(col(Passage.review_id), col(Passage.order))
        ).all()
        tagged += [p for p in others if p.id not in seen]
    return [candidate(p, RECOMMENDATION_BUDGET, sentences=1) for p in tagged]


def recommendation_items(ctx: BriefingContext, candidates: list[Candidate]) -> list[BriefingItem]:
    picked = pick_diverse(candidates, top_k=MAX_RECOMMENDATIONS, duplicate=DUPLICATE_RECOMMENDATION)
    if not picked:
        return [
            new_item("No recommendations on this are recorded in the reviews available to you.")
        ]
    return [new_item(c.text, c.review_id, c.passage_id) for c in picked]


# ---- 6 questions, 7 training


def question_items(ctx: BriefingContext, themes: list[Theme]) -> list[BriefingItem]:
    own: list[str] = []
    per_theme = MAX_QUESTIONS if len(themes) <= 1 else max(1, MAX_QUESTIONS // len(themes))
    for theme in themes:
        own += list(getattr(theme, "questions", []) or [])[:per_theme]
    questions = list(dict.fromkeys([*own[:MAX_QUESTIONS], *ctx.template.generic_questions]))
    return [new_item(q) for q in questions]


def training_items(ctx: BriefingContext, theme_ids: list[str], label: str) -> list[BriefingItem]:
    courses = ctx.session.exec(
        select(TrainingCourse)
        .join(CourseThemeLink, col(CourseThemeLink.course_id) == TrainingCourse.id)
        .where(col(CourseThemeLink.theme_id).in_(theme_ids))
        .distinct()
        .order_by(col(TrainingCourse.title))
    ).all()
    if not courses:
        return [new_item(f"No training on {label.lower()} is recorded yet: ask the L&D team.")]
    sessions: dict[int, list[TrainingSession]] = defaultdict(list)
    for row in ctx.session.exec(
        select(TrainingSession).where(col(TrainingSession.course_id).in_([c.id for c in courses]))
    ).all():
        sessions[row.course_id].append(row)
    return [new_item(_course_line(c, sessions[c.id], ctx.today)) for c in courses]  # type: ignore[index]


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

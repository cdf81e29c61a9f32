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
    DUPLICATE_FINDING,
    DUPLICATE_RECOMMENDATION,
    FINDING_BUDGET,
    MAX_FINDINGS,
    MAX_QUESTIONS,
    MAX_RECOMMENDATIONS,
    MIN_FINDINGS,
    RECOMMENDATION_BUDGET,
    REVIEW_BACKGROUND_SENTENCES,
    THEME_BACKGROUND_REVIEWS,
    TYPE_LABELS,
    BriefingItem,
    new_item,
)
from kb.services.briefing_roles import (
    BACKGROUND_ROLES,
    FINDING_ROLES,
    PRACTICE_ROLES,
    fits,
    is_acceptance,
    is_agency_level,
    practice_wording,
    reviews_with_roles,
)
from kb.services.briefing_text import excerpt, sentence_spans
from kb.services.cases import case_keys

if TYPE_CHECKING:
    from nlp.taxonomy import Theme


# ---- 1 background


def theme_background(ctx: BriefingContext) -> list[BriefingItem]:
    """One short synopsis per case carrying the theme, most recent first (a rapid review and
    the LCSPR that followed are one case: named once)."""
    reviews = _one_per_case(ctx, list(ctx.reviews.values()))
    if not reviews:
        return [new_item("No review available to you carries this theme yet.")]
    shown = reviews[:THEME_BACKGROUND_REVIEWS]
    found = synopses(ctx.session, [r.id for r in shown if r.id is not None])
    items = []
    for review in shown:
        passage = found.get(review.id)  # type: ignore[arg-type]
        sentence = (
            excerpt(passage.text, budget=BACKGROUND_BUDGET, max_sentences=2) if passage else ""
        )
        head = f"{review.pseudonym} ({describe(review)})"
        if passage is not None and sentence:
            items.append(new_item(f"{head}: {sentence}", review.id, passage.id, passage.role))
        else:
            items.append(new_item(f"{head}.", review.id))
    if len(reviews) > len(shown):
        rest = ", ".join(r.pseudonym for r in reviews[len(shown) :])
        items.append(new_item(f"Also: {rest}."))
    return items


def review_background(ctx: BriefingContext, review: Review) -> list[BriefingItem]:
    """The review in brief: what it is, then its case synopsis (a sentence or two)."""
    items = [new_item(f"{review.pseudonym}: {describe(review, long=True)}.", review.id)]
    aware = review.id in reviews_with_roles(ctx.session, [review.id])  # type: ignore[list-item]
    left = REVIEW_BACKGROUND_SENTENCES
    for passage in ordered_passages(ctx.session, review.id, None):
        if left <= 0:
            break
        if not fits(passage, BACKGROUND_ROLES, aware):
            continue
        text = excerpt(passage.text, budget=BACKGROUND_BUDGET * 2, max_sentences=min(left, 2))
        if len(text.split()) < 6:
            continue
        items.append(new_item(text, review.id, passage.id, passage.role))
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


def _one_per_case(ctx: BriefingContext, reviews: list[Review]) -> list[Review]:
    """The first (most recent) review of each case, order kept."""
    keys = case_keys(ctx.session, [r.id for r in reviews if r.id is not None])
    seen: set[tuple[str, int]] = set()
    kept = []
    for review in reviews:
        key = keys.get(review.id, ("review", review.id or 0))  # type: ignore[arg-type]
        if key not in seen:
            seen.add(key)
            kept.append(review)
    return kept


def synopses(session: Session, review_ids: list[int]) -> dict[int, Passage]:
    """Each review's first case synopsis of substance (first background passage for reviews
    without roles); front matter and partnership business never."""
    aware = reviews_with_roles(session, review_ids)
    rows = session.exec(
        select(Passage)
        .where(col(Passage.review_id).in_(review_ids))
        .order_by(col(Passage.review_id), col(Passage.order))
    ).all()
    found: dict[int, Passage] = {}
    for passage in rows:
        if passage.review_id in found or len(passage.text.split()) < 6:
            continue
        if fits(passage, BACKGROUND_ROLES, passage.review_id in aware):
            found[passage.review_id] = passage
    return found


def ordered_passages(
    session: Session, review_id: int | None, kinds: Sequence[str] | None
) -> list[Passage]:
    query = select(Passage).where(Passage.review_id == review_id)
    if kinds is not None:
        query = query.where(col(Passage.section_kind).in_(kinds))
    return list(session.exec(query.order_by(col(Passage.order))).all())


# ---- 3 what we found


def theme_candidates(ctx: BriefingContext, theme_id: str) -> list[Candidate]:
    """Findings tagged with the theme (by role; by section kind in reviews without roles)."""
    rows = tagged_passages(ctx, theme_id)
    aware = reviews_with_roles(ctx.session, {p.review_id for p, _ in rows})
    return [
        candidate(p, FINDING_BUDGET, evidence_start(t, p))
        for p, t in rows
        if fits(p, FINDING_ROLES, p.review_id in aware)
    ]


def tagged_passages(ctx: BriefingContext, theme_id: str) -> list[tuple[Passage, ThemeTag]]:
    """Visible passages carrying the theme (suggested or confirmed), with their tags."""
    query = (
        select(Passage, ThemeTag)
        .join(ThemeTag, col(ThemeTag.passage_id) == Passage.id)
        .join(Review, col(Review.id) == Passage.review_id)
        .where(visible_reviews(ctx.viewer))
        .where(ThemeTag.theme_id == theme_id)
        .where(ThemeTag.status != TagStatus.REJECTED)
    )
    return [(p, t) for p, t in ctx.session.exec(query.order_by(col(Passage.id))).all()]


def review_candidates(
    ctx: BriefingContext, review: Review, roles: Sequence[str], *, budget: int, sentences: int
) -> list[Candidate]:
    """The review's passages fitting ``roles``, in reading order."""
    aware = review.id in reviews_with_roles(ctx.session, [review.id])  # type: ignore[list-item]
    return [
        candidate(p, budget, sentences=sentences)
        for p in ordered_passages(ctx.session, review.id, None)
        if fits(p, roles, aware)
    ]


def found_items(
    ctx: BriefingContext, candidates: list[Candidate], *, per_case: bool = True
) -> list[BriefingItem]:
    """Central, diverse findings (MMR), at most one per case unless ``per_case`` is off."""
    cases = _cases_of(ctx, candidates) if per_case else None
    picked = pick_diverse(candidates, top_k=MAX_FINDINGS, duplicate=DUPLICATE_FINDING, cases=cases)
    if not picked:
        return [new_item("No findings on this have been recorded in the reviews available to you.")]
    return [new_item(c.text, c.review_id, c.passage_id, c.role) for c in picked]


def _cases_of(ctx: BriefingContext, candidates: list[Candidate]) -> dict[int, tuple[str, int]]:
    return case_keys(ctx.session, {c.review_id for c in candidates})


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
    """Recommendations and actions tagged with the theme; the theme's reviews' others when
    too few. Acceptances are dropped, agency-level wording ranked after practice."""
    tagged = [p for p, _ in tagged_passages(ctx, theme_id)]
    seen = {p.id for p in tagged}
    if ctx.reviews:
        tagged += [
            p
            for p in ctx.session.exec(
                select(Passage)
                .where(col(Passage.review_id).in_(list(ctx.reviews)))
                .order_by(col(Passage.review_id), col(Passage.order))
            ).all()
            if p.id not in seen
        ]
    aware = reviews_with_roles(ctx.session, {p.review_id for p in tagged})
    fitting = [p for p in tagged if fits(p, PRACTICE_ROLES, p.review_id in aware)]
    primary = [p for p in fitting if p.id in seen]
    chosen = primary if len(primary) >= MIN_FINDINGS else fitting
    return practice_candidates([candidate(p, RECOMMENDATION_BUDGET, sentences=1) for p in chosen])


def practice_candidates(candidates: list[Candidate]) -> list[Candidate]:
    """Acceptances removed; agency-level recommendations reworded for practice where the
    practice is inside them ("…should ensure that practitioners…"), else marked to come last."""
    kept = [c for c in candidates if not is_acceptance(c.text)]
    for cand in kept:
        reworded = practice_wording(cand.text)
        if reworded is not None:
            cand.text = reworded
        cand.priority = 1 if is_agency_level(cand.text) else 0
    return kept


def recommendation_items(
    ctx: BriefingContext, candidates: list[Candidate], *, per_case: bool = True
) -> list[BriefingItem]:
    cases = _cases_of(ctx, candidates) if per_case else None
    picked = pick_diverse(
        candidates, top_k=MAX_RECOMMENDATIONS, duplicate=DUPLICATE_RECOMMENDATION, cases=cases
    )
    if not picked:
        return [
            new_item("No recommendations on this are recorded in the reviews available to you.")
        ]
    return [new_item(c.text, c.review_id, c.passage_id, c.role) for c in picked]


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

"""Precedent: what prior learning says about a new incident, on one screen.

When a serious incident notification (or a rapid-review draft) arrives, the panel asks four
things at once: which prior *cases* look like it, which themes it probably carries, what was
already *tried* for those themes (and did the theme come back afterwards), and what to ask in
the rapid review meeting. This module answers them from the pasted text:

(a) cases: passages found by the hybrid search (floor applied), gathered by case and scored
    by the best passages' closeness plus the share of the text's themes the case shares;
(b) themes: the tagger (rules + model) on the text, each with its evidence sentence;
(c) tried: tracker actions aimed at those themes, with status, completion, impact rating and
    whether the theme recurred in a later review (kb/services/signals.py's rule);
(d) questions: the taxonomy's reflective questions for those themes.

Nothing pasted is stored or logged: the text lives in this call only. Every part goes through
the principal's visibility (``visible_reviews`` via search and themes, ``list_actions`` for the
tracker), so an embargoed review never shapes a case, a score, a theme count or an action.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlmodel import Session, col, select

from kb.models import ActionPublic, Case, Review, TagStatus, ThemeTag
from kb.services.access import Principal, visible_reviews
from kb.services.briefing_sections import synopses
from kb.services.briefing_text import excerpt, sentence_spans
from kb.services.search import SearchHit, search
from kb.services.signals import DONE, event_date
from kb.services.tracker import list_actions
from nlp.embeddings import Embedder
from nlp.tagger import Tagger, TagResult
from nlp.taxonomy import Taxonomy

MIN_WORDS = 8
MAX_CHARS = 30_000
MAX_CASES = 5
MAX_THEMES = 6
MIN_THEME_CONFIDENCE = 0.5
PASSAGES_PER_CASE = 2
SEARCH_DEPTH = 60
MAX_QUESTIONS = 8
THEME_WEIGHT = 0.3  # share of a case's score from the themes it shares with the text
GENERIC_QUESTIONS = (
    "What did each agency know about the adults in the child's life, and who checked?",
    "Which earlier learning on these themes reached the practitioners involved this time?",
)


class PrecedentError(ValueError):
    """Text that cannot be read as a notification: a message for the person who pasted it."""


@dataclass(frozen=True, slots=True)
class PrecedentInput:
    """What the caller found the text to be (for messages); never stored."""

    text: str
    source: str = "pasted text"


def check_text(text: str, source: str = "pasted text") -> str:
    """The text, stripped, or PrecedentError naming what is wrong with it."""
    text = (text or "").strip()
    if not text:
        raise PrecedentError(f"{source} is empty: paste the notification or upload it")
    if len(text) > MAX_CHARS:
        raise PrecedentError(
            f"{source} has {len(text):,} characters; the limit is {MAX_CHARS:,} "
            "(paste the summary of the incident, not the whole file)"
        )
    if len(text.split()) < MIN_WORDS:
        raise PrecedentError(
            f"{source} has fewer than {MIN_WORDS} words: describe what happened in a sentence "
            "or two"
        )
    return text


def precedent(
    session: Session,
    *,
    principal: Principal,
    text: str,
    tagger: Tagger,
    embedder: Embedder | None = None,
    source: str = "pasted text",
    today: date | None = None,
) -> dict[str, Any]:
    """``{"themes", "cases", "tried", "questions"}`` for a notification (see the module doc).

    Raises PrecedentError for empty, huge or too-short text. A text with no recognisable theme
    still gets its similar cases; ``themes`` is then empty and ``message`` says so.
    """
    text = check_text(text, source)
    themes = likely_themes(text, tagger)
    theme_ids = [t["id"] for t in themes]
    hits = search(
        session,
        principal=principal,
        query=text,
        top_k=SEARCH_DEPTH,
        order="relevance",
        embedder=embedder,
    )
    result: dict[str, Any] = {
        "themes": themes,
        "cases": similar_cases(session, principal, hits, theme_ids),
        "tried": tried(session, principal, theme_ids, tagger.taxonomy),
        "questions": questions(theme_ids, tagger.taxonomy),
    }
    if not themes:
        result["message"] = (
            "No theme of the taxonomy was recognised in this text; similar cases are shown "
            "by meaning alone."
        )
    elif not result["cases"]:
        result["message"] = "No prior case you may see is close to this text."
    return result


# --------------------------------------------------------------------------- (b) themes


def likely_themes(text: str, tagger: Tagger) -> list[dict[str, Any]]:
    """Themes the tagger finds, most confident first, each with its evidence sentence."""
    found = [r for r in tagger.tag(text) if r.confidence >= MIN_THEME_CONFIDENCE]
    found.sort(key=lambda r: (-r.confidence, r.theme_id))
    return [
        {
            "id": r.theme_id,
            "label": r.label,
            "evidence": evidence_sentence(text, r),
            "confidence": round(float(r.confidence), 3),
        }
        for r in found[:MAX_THEMES]
    ]


def evidence_sentence(text: str, result: TagResult) -> str:
    """The sentence of ``text`` holding the tag's first evidence (the evidence alone if the
    sentence cannot be found, the first sentence if there is no evidence)."""
    spans = sentence_spans(text)
    if result.evidence:
        start = result.evidence[0].start
        for s, e in spans:
            if s <= start < e:
                return " ".join(text[s:e].split())
        return result.evidence[0].text
    return " ".join(text[spans[0][0] : spans[0][1]].split()) if spans else ""


# --------------------------------------------------------------------------- (a) cases


def similar_cases(
    session: Session, principal: Principal, hits: Sequence[SearchHit], theme_ids: list[str]
) -> list[dict[str, Any]]:
    """Hits gathered by case, scored, with shared themes, matching passages and a summary."""
    groups: dict[tuple[str, int], list[SearchHit]] = defaultdict(list)
    for hit in hits:
        key = ("case", hit.case_id) if hit.case_id is not None else ("review", hit.review_id)
        groups[key].append(hit)
    if not groups:
        return []
    review_ids = {h.review_id for group in groups.values() for h in group}
    case_reviews = _reviews_of_cases(session, principal, [k[1] for k in groups if k[0] == "case"])
    all_reviews = review_ids | {rid for ids in case_reviews.values() for rid in ids}
    review_themes = _themes_of_reviews(session, principal, all_reviews)
    cases = []
    for (kind, key), group in groups.items():
        reviews = case_reviews.get(key, {group[0].review_id}) if kind == "case" else {key}
        shared = sorted(
            set().union(*(review_themes.get(r, set()) for r in reviews)) & set(theme_ids)
        )
        closeness = sum(sorted((h.similarity or 0.0 for h in group), reverse=True)[:2]) / 2
        share = len(shared) / len(theme_ids) if theme_ids else 0.0
        score = (1 - THEME_WEIGHT) * closeness + THEME_WEIGHT * share
        cases.append(_case_entry(session, group, shared, score, kind == "case"))
    cases.sort(key=lambda c: (-c["score"], c["review_id"]))
    return cases[:MAX_CASES]


def _case_entry(
    session: Session, group: list[SearchHit], shared: list[str], score: float, is_case: bool
) -> dict[str, Any]:
    best = group[0]
    review = session.get(Review, best.review_id)
    return {
        "case_id": best.case_id if is_case else None,
        "review_id": best.review_id,
        "title": best.case_label or (review.title if review and review.title else best.pseudonym),
        "summary": _summary(session, best.review_id),
        "score": round(score, 4),
        "shared_themes": shared,
        "passages": [
            {
                "passage_id": h.passage_id,
                "review_id": h.review_id,
                "role": h.role,
                "similarity": h.similarity,
                "text": excerpt(h.text, budget=280, max_sentences=2) or h.snippet,
                "url": f"/reviews/{h.review_id}#passage-{h.passage_id}",
            }
            for h in group[:PASSAGES_PER_CASE]
        ],
    }


def _summary(session: Session, review_id: int) -> str:
    """The review's case synopsis in a sentence or two (never front matter)."""
    passage = synopses(session, [review_id]).get(review_id)
    return excerpt(passage.text, budget=260, max_sentences=2) if passage else ""


def _reviews_of_cases(
    session: Session, principal: Principal, case_ids: list[int]
) -> dict[int, set[int]]:
    """Case id → its reviews the principal may see."""
    if not case_ids:
        return {}
    rows = session.exec(
        select(Review.case_id, Review.id)
        .join(Case, col(Case.id) == Review.case_id)
        .where(col(Review.case_id).in_(case_ids), visible_reviews(principal))
    ).all()
    found: dict[int, set[int]] = defaultdict(set)
    for case_id, review_id in rows:
        found[case_id].add(review_id)
    return found


def _themes_of_reviews(
    session: Session, principal: Principal, review_ids: set[int]
) -> dict[int, set[str]]:
    if not review_ids:
        return {}
    rows = session.exec(
        select(ThemeTag.review_id, ThemeTag.theme_id)
        .join(Review, col(Review.id) == ThemeTag.review_id)
        .where(col(ThemeTag.review_id).in_(review_ids), visible_reviews(principal))
        .where(ThemeTag.status != TagStatus.REJECTED)
        .distinct()
    ).all()
    found: dict[int, set[str]] = defaultdict(set)
    for review_id, theme_id in rows:
        found[review_id].add(theme_id)
    return found


# --------------------------------------------------------------------------- (c) tried


def tried(
    session: Session, principal: Principal, theme_ids: list[str], taxonomy: Taxonomy
) -> list[dict[str, Any]]:
    """Tracker actions aimed at the themes, with whether the theme recurred afterwards: in a
    review (visible, of the action's partnership) whose incident came after its completion."""
    if not theme_ids:
        return []
    actions = [
        a for a in list_actions(session, principal=principal) if set(a.theme_ids) & set(theme_ids)
    ]
    if not actions:
        return []
    later = _theme_review_dates(session, principal, theme_ids)
    rows = []
    for action in actions:
        for theme in [t for t in theme_ids if t in action.theme_ids]:
            rows.append(_tried_entry(action, theme, taxonomy, later.get(theme, [])))
    rows.sort(key=lambda r: (theme_ids.index(r["theme"]), r["ref"]))
    return rows


def _tried_entry(
    action: ActionPublic,
    theme: str,
    taxonomy: Taxonomy,
    reviews: list[tuple[date, int | None]],
) -> dict[str, Any]:
    done = action.status in DONE and action.completed_date is not None
    recurred = done and any(
        when > action.completed_date  # type: ignore[operator]
        and (action.partnership_id is None or partnership == action.partnership_id)
        for when, partnership in reviews
    )
    label = taxonomy.themes[theme].label if theme in taxonomy.themes else theme
    return {
        "theme": theme,
        "theme_label": label,
        "action_id": action.id,
        "ref": action.ref,
        "description": action.description,
        "status": action.status.value,
        "completed_date": action.completed_date.isoformat() if action.completed_date else None,
        "due_date": action.due_date.isoformat() if action.due_date else None,
        "impact_rating": action.impact_rating.value if action.impact_rating else None,
        "recurred_after": bool(recurred),
    }


def _theme_review_dates(
    session: Session, principal: Principal, theme_ids: list[str]
) -> dict[str, list[tuple[date, int | None]]]:
    """Theme → (incident / review date, partnership) of visible reviews carrying it."""
    rows = session.exec(
        select(ThemeTag.theme_id, Review)
        .join(Review, col(Review.id) == ThemeTag.review_id)
        .where(col(ThemeTag.theme_id).in_(theme_ids), visible_reviews(principal))
        .where(ThemeTag.status != TagStatus.REJECTED)
    ).all()
    found: dict[str, list[tuple[date, int | None]]] = defaultdict(list)
    seen: set[tuple[str, int]] = set()
    for theme_id, review in rows:
        when = event_date(review)
        if when is not None and (theme_id, review.id) not in seen:
            seen.add((theme_id, review.id))  # type: ignore[arg-type]
            found[theme_id].append((when, review.partnership_id))
    return found


# --------------------------------------------------------------------------- (d) questions


def questions(theme_ids: list[str], taxonomy: Taxonomy) -> list[str]:
    """The taxonomy's reflective questions for the themes (a few each), then generic ones."""
    own: list[str] = []
    per_theme = max(1, MAX_QUESTIONS // max(len(theme_ids), 1))
    for theme_id in theme_ids:
        theme = taxonomy.themes.get(theme_id)
        if theme is not None:
            own += list(theme.questions)[:per_theme]
    return list(dict.fromkeys([*own[:MAX_QUESTIONS], *GENERIC_QUESTIONS]))

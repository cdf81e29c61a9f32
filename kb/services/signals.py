"""Signals: the few things a scrutineer should look at first, each explaining itself.

A signal is only useful if it can be checked, so every one carries the reviews and actions
behind it and a plain-English summary with the dates and figures. Only reviews the principal
may see are used, so a hidden review can never surface through a signal (not even as a count).

Kinds, in the order they are returned:

* ``recurrence_after_action`` — a theme comes back in a review whose incident happened after an
  action aimed at that theme was completed: the learning did not stick.
* ``deja_vu`` — near-identical recommendations made in different reviews.
* ``rising`` — a theme's share of reviews in the last few years is well above its earlier share.
* ``overdue`` — an open action past its due date.
* ``no_impact_evidence`` — an action completed or closed without evidence that it changed anything.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any

import numpy as np
from sqlmodel import Session, col, select

from kb.models import (
    ActionPublic,
    ActionStatus,
    ImpactRating,
    Passage,
    Recommendation,
    Review,
    ReviewType,
)
from kb.services.access import Principal, visible_reviews
from kb.services.cache import RESULTS, data_fingerprint
from kb.services.recurrence import reference_date, reviews_by_theme
from kb.services.tracker import list_actions, theme_labels

log = logging.getLogger(__name__)

DONE = (ActionStatus.COMPLETED, ActionStatus.CLOSED)
RISING_WINDOW_YEARS = 3  # "recent" = the last three years with reviews
RISING_MIN_REVIEWS = 2  # one review is not a trend
RISING_MIN_INCREASE = 0.2  # share must rise by 20 percentage points or more
RISING_MIN_EARLIER = 2  # and there must be an earlier period to compare with


# --------------------------------------------------------------------------- shared helpers


def event_date(review: Review) -> date | None:
    """When the harm happened, for "after the action": incident date, else review date."""
    return review.incident_date or review.review_date


def _review_dict(review: Review) -> dict[str, Any]:
    when = reference_date(review)
    return {
        "id": review.id,
        "pseudonym": review.pseudonym,
        "date": when.isoformat() if when else (str(review.year) if review.year else None),
        "type": str(review.type),
        "partnership_id": review.partnership_id,
    }


def _action_dict(action: ActionPublic) -> dict[str, Any]:
    return {
        "ref": action.ref,
        "description": action.description,
        "completed_date": action.completed_date.isoformat() if action.completed_date else None,
        "status": str(action.status),
    }


def _signal(
    kind: str,
    theme: str | None,
    summary: str,
    reviews: Sequence[Review] = (),
    actions: Sequence[ActionPublic] = (),
    *,
    headline: str = "",
) -> dict[str, Any]:
    """One signal. ``summary`` is the full explanation (never cut short); ``headline`` a
    complete short phrase for a collapsed list."""
    return {
        "kind": kind,
        "theme": theme,
        "headline": headline or summary,
        "summary": summary,
        "reviews": [_review_dict(r) for r in reviews],
        "actions": [_action_dict(a) for a in actions],
    }


def _and(items: Sequence[str]) -> str:
    """ "A", "A and B", "A, B and C"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _short(text: str) -> str:
    """Text on one line without its final full stop (it goes inside a sentence). Never cut:
    a scrutineer must read the whole action or recommendation, not "…with th…"."""
    return " ".join(text.split()).rstrip(".")


def _in_sentence(label: str) -> str:
    """ "Hidden men" → "hidden men", but "SUDI and safe sleep" stays as it is."""
    return label[0].lower() + label[1:] if label[1:2].islower() else label


def _month(value: date | None) -> str:
    return value.strftime("%Y-%m") if value else "undated"


def _visible(session: Session, principal: Principal) -> dict[int, Review]:
    """Visible reviews other than annual reports (their case summaries count instead)."""
    rows = session.exec(
        select(Review).where(
            visible_reviews(principal), col(Review.type) != ReviewType.ANNUAL_REPORT
        )
    ).all()
    return {r.id: r for r in rows}  # type: ignore[misc]


# --------------------------------------------------------------------- recurrence after action


def recurrence_after_action(
    reviews: dict[int, Review],
    themes: dict[str, set[int]],
    actions: list[ActionPublic],
    labels: dict[str, str],
) -> list[dict[str, Any]]:
    """One signal per theme that recurs after a completed action aimed at it.

    An action of one partnership says nothing about another's reviews, so recurrences are
    looked for in the partnerships of the actions (everywhere for partnership-less actions).
    """
    done: dict[str, list[ActionPublic]] = defaultdict(list)
    for action in actions:
        if action.status in DONE and action.completed_date:
            for theme in action.theme_ids:
                done[theme].append(action)
    found = []
    for theme, aimed in sorted(done.items()):
        first = min(_completed(a) for a in aimed)[0]
        areas = {a.partnership_id for a in aimed}
        later = sorted(
            (
                r
                for r in (reviews[i] for i in themes.get(theme, ()))
                if _after(r, first) and (None in areas or r.partnership_id in areas)
            ),
            key=lambda r: (event_date(r), r.id),
        )
        if not later:
            continue
        last = event_date(later[-1]) or first
        before = sorted((a for a in aimed if _completed(a)[0] < last), key=_completed)
        found.append(_recurrence_signal(theme, labels, before, later))
    return found


def _after(review: Review, day: date) -> bool:
    """Whether the review's incident (else review) date is later than ``day``; undated: no."""
    when = event_date(review)
    return when is not None and when > day


def _completed(action: ActionPublic) -> tuple[date, str]:
    return action.completed_date or date.min, action.ref


def _recurrence_signal(
    theme: str, labels: dict[str, str], actions: list[ActionPublic], reviews: list[Review]
) -> dict[str, Any]:
    done = [f"{_short(a.description)} completed {_month(a.completed_date)}" for a in actions]
    # A rapid review and the LCSPR that followed it are two reviews of one case: name it once,
    # with the date of its first review.
    first: dict[str, str] = {}
    for review in reviews:
        first.setdefault(review.pseudonym, f"{review.pseudonym} ({_month(event_date(review))})")
    label = _in_sentence(labels.get(theme, theme))
    summary = f"{'; '.join(done)}; {label} recurred in {_and(list(first.values()))}"
    cases = len(first)
    headline = (
        f"{labels.get(theme, theme)} recurred in {cases} case{'' if cases == 1 else 's'} after "
        f"{len(actions)} completed action{'' if len(actions) == 1 else 's'}"
    )
    return _signal("recurrence_after_action", theme, summary, reviews, actions, headline=headline)


# --------------------------------------------------------------------------- déjà vu


def _pairs(vectors: np.ndarray, ids: list[int], threshold: float) -> list[tuple[int, int, float]]:
    try:
        from nlp.fusion import near_duplicates
    except ImportError:  # pragma: no cover - ranking is part of the package
        unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        sims = np.triu(unit @ unit.T, k=1)
        rows, cols = np.nonzero(sims >= threshold)
        return [(ids[a], ids[b], float(sims[a, b])) for a, b in zip(rows, cols, strict=True)]
    return near_duplicates(vectors, ids, threshold)


def _vectors(
    rows: list[tuple[Recommendation, bytes | None, str | None]],
) -> tuple[np.ndarray, list[int]]:
    """One vector per recommendation: the passage's stored embedding when every unedited
    recommendation has one from the same model, else freshly embedded texts (same space)."""
    stored = {rec.id: (blob, model) for rec, blob, model in rows if blob and not rec.edited}
    models = Counter(model for _, model in stored.values())
    if len(stored) == len(rows) and len(models) == 1:
        return np.stack([np.frombuffer(stored[r.id][0], dtype=np.float32) for r, _, _ in rows]), [
            r.id
            for r, _, _ in rows  # type: ignore[misc]
        ]
    try:
        from kb.services.embedding import embedder_for

        embedder = embedder_for()
        return embedder.encode([r.text for r, _, _ in rows]), [r.id for r, _, _ in rows]  # type: ignore[misc]
    except Exception as exc:  # noqa: BLE001 - no model: compare what was embedded at ingest
        log.warning("déjà-vu uses stored embeddings only: %s", exc)
        if not models:
            return np.empty((0, 0), dtype=np.float32), []
        model = models.most_common(1)[0][0]
        keep = [r for r, _, _ in rows if r.id in stored and stored[r.id][1] == model]
        return np.stack([np.frombuffer(stored[r.id][0], dtype=np.float32) for r in keep]), [
            r.id
            for r in keep  # type: ignore[misc]
        ]


def _clusters(pairs: list[tuple[int, int, float]]) -> list[set[int]]:
    """Connected groups of near-duplicate pairs (union-find)."""
    parent: dict[int, int] = {}

    def root(node: int) -> int:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for a, b, _ in pairs:
        parent[root(a)] = root(b)
    groups: dict[int, set[int]] = defaultdict(set)
    for node in parent:
        groups[root(node)].add(node)
    return list(groups.values())


def deja_vu(
    session: Session,
    reviews: dict[int, Review],
    actions: list[ActionPublic],
    threshold: float,
) -> list[dict[str, Any]]:
    """Clusters of near-identical recommendations made in two or more different reviews."""
    rows = list(
        session.exec(
            select(Recommendation, Passage.embedding, Passage.embedding_model)
            .join(Passage, col(Passage.id) == Recommendation.passage_id, isouter=True)
            .where(col(Recommendation.review_id).in_(list(reviews)))
            .order_by(col(Recommendation.id))
        ).all()
    )
    if len(rows) < 2:
        return []
    vectors, ids = _vectors(rows)
    recs = {rec.id: rec for rec, _, _ in rows}
    pairs = [
        p for p in _pairs(vectors, ids, threshold) if recs[p[0]].review_id != recs[p[1]].review_id
    ]
    found = []
    for cluster in _clusters(pairs):
        members = sorted(
            (recs[i] for i in cluster), key=lambda r: (_when(reviews[r.review_id]), r.id)
        )
        if len({r.review_id for r in members}) >= 2:
            found.append(_deja_vu_signal(members, reviews, actions))
    return sorted(found, key=lambda s: (-len(s["reviews"]), s["summary"]))


def _when(review: Review) -> date:
    return reference_date(review) or date(review.year or 9999, 1, 1)


def _deja_vu_signal(
    members: list[Recommendation], reviews: dict[int, Review], actions: list[ActionPublic]
) -> dict[str, Any]:
    in_reviews = list({r.review_id: reviews[r.review_id] for r in members}.values())
    themes = Counter(t for r in members for t in r.themes)
    theme = min(themes, key=lambda t: (-themes[t], t)) if themes else None
    ids = {r.id for r in members}
    linked = [a for a in actions if ids & set(a.recommendation_ids)]
    first_year = _when(in_reviews[0]).year
    where = "; ".join(f"{reviews[r.review_id].pseudonym} #{r.number or '?'}" for r in members)
    summary = (
        f"Recommended in {len(in_reviews)} reviews since {first_year}: "
        f'"{_short(members[0].text)}" ({where})'
    )
    if not linked:
        summary += "; no tracked action answers any of them"
    cases = len({r.pseudonym for r in in_reviews})
    headline = (
        f"The same recommendation in {cases} case{'' if cases == 1 else 's'} since {first_year}"
        + ("" if linked else ", with no tracked action")
    )
    return _signal("deja_vu", theme, summary, in_reviews, linked, headline=headline)


# --------------------------------------------------------------------------- rising themes


def rising(
    reviews: dict[int, Review], themes: dict[str, set[int]], labels: dict[str, str]
) -> list[dict[str, Any]]:
    """Themes whose share of reviews in the last RISING_WINDOW_YEARS years with reviews is at
    least RISING_MIN_INCREASE above their share in the years before."""
    dated = {rid: r.year for rid, r in reviews.items() if r.year is not None}
    if not dated:
        return []
    cut = max(dated.values()) - RISING_WINDOW_YEARS + 1
    recent = {rid for rid, year in dated.items() if year >= cut}
    earlier = set(dated) - recent
    if len(earlier) < RISING_MIN_EARLIER or len(recent) < RISING_MIN_REVIEWS:
        return []
    found = []
    for theme, ids in sorted(themes.items()):
        now, before = ids & recent, ids & earlier
        increase = len(now) / len(recent) - len(before) / len(earlier)
        if len(now) >= RISING_MIN_REVIEWS and increase >= RISING_MIN_INCREASE - 1e-9:
            found.append((increase, theme, now, before))
    found.sort(key=lambda item: (-item[0], item[1]))
    span = _span(min(dated.values()), cut - 1), _span(cut, max(dated.values()))
    return [
        _rising_signal(theme, labels, [reviews[i] for i in now], len(before), recent, earlier, span)
        for _, theme, now, before in found
    ]


def _span(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}–{last}"


def _rising_signal(
    theme: str,
    labels: dict[str, str],
    now: list[Review],
    before: int,
    recent: set[int],
    earlier: set[int],
    span: tuple[str, str],
) -> dict[str, Any]:
    label = labels.get(theme, theme)
    summary = (
        f"{label} in {len(now)} of {len(recent)} reviews ({len(now) / len(recent):.0%}) in "
        f"{span[1]}, up from {before} of {len(earlier)} ({before / len(earlier):.0%}) in {span[0]}"
    )
    ordered = sorted(now, key=lambda r: (_when(r), r.id))
    headline = (
        f"{label}: {len(now) / len(recent):.0%} of reviews in {span[1]}, "
        f"up from {before / len(earlier):.0%}"
    )
    return _signal("rising", theme, summary, ordered, headline=headline)


# --------------------------------------------------------------------------- actions


def _reviews_of(
    session: Session, actions: list[ActionPublic], reviews: dict[int, Review]
) -> dict[int, list[Review]]:
    """Action id → the visible reviews whose recommendations it answers."""
    rec_ids = {r for a in actions for r in a.recommendation_ids}
    rec_review = dict(
        session.exec(
            select(Recommendation.id, Recommendation.review_id).where(
                col(Recommendation.id).in_(rec_ids)
            )
        ).all()
    )
    out: dict[int, list[Review]] = {}
    for action in actions:
        ids = sorted(
            {rec_review[r] for r in action.recommendation_ids if rec_review.get(r) in reviews}
        )
        out[action.id] = [reviews[i] for i in ids]
    return out


def _who(action: ActionPublic) -> str:
    parts = [p for p in (action.agency, action.owner) if p]
    return f" ({', '.join(parts)})" if parts else ""


def overdue(
    actions: list[ActionPublic], linked: dict[int, list[Review]], today: date
) -> list[dict[str, Any]]:
    """Open actions whose due date has passed, most overdue first."""
    late = [a for a in actions if a.status not in DONE and a.due_date and a.due_date < today]
    late.sort(key=lambda a: (a.due_date, a.ref))  # type: ignore[arg-type, return-value]
    return [
        _signal(
            "overdue",
            a.theme_ids[0] if a.theme_ids else None,
            f'{a.ref} "{_short(a.description)}"{_who(a)} was due {a.due_date.isoformat()} and '  # type: ignore[union-attr]
            f"is {(today - a.due_date).days} days overdue (status: {_human(a.status)})",  # type: ignore[operator]
            linked.get(a.id, []),
            [a],
            headline=f"{a.ref} is {(today - a.due_date).days} days overdue",  # type: ignore[operator]
        )
        for a in late
    ]


def _human(value: Any) -> str:
    return str(value).replace("_", " ")


def no_impact_evidence(
    actions: list[ActionPublic], linked: dict[int, list[Review]]
) -> list[dict[str, Any]]:
    """Completed or closed actions with no evidence of impact, or with impact rated none."""
    found = []
    for a in sorted(actions, key=lambda a: a.ref):
        blank = not (a.impact_evidence or "").strip()
        if a.status not in DONE or not (blank or a.impact_rating == ImpactRating.NONE):
            continue
        when = f" {a.completed_date.isoformat()}" if a.completed_date else ""
        why = (
            "with no evidence of impact recorded"
            if blank
            else (f'with impact rated none ("{_short(a.impact_evidence or "")}")')
        )
        summary = f'{a.ref} "{_short(a.description)}"{_who(a)} was {_human(a.status)}{when} {why}'
        found.append(
            _signal(
                "no_impact_evidence",
                a.theme_ids[0] if a.theme_ids else None,
                summary,
                linked.get(a.id, []),
                [a],
                headline=f"{a.ref} {_human(a.status)} {why}",
            )
        )
    return found


# --------------------------------------------------------------------------- entry point


def signals(
    session: Session,
    *,
    principal: Principal,
    similarity_threshold: float = 0.82,
    today: date | None = None,
) -> list[dict[str, Any]]:
    """Every signal for what ``principal`` may see, as ``{kind, theme, summary, reviews,
    actions}`` dicts (reviews as {id, pseudonym, date}; actions as {ref, description,
    completed_date, status})."""
    today = today or date.today()
    # Cached per principal (actions' visibility follows the reviews), day and data fingerprint:
    # the tracker page shows these on every load and they cost a scan of every tag.
    key = (
        "signals",
        principal,
        similarity_threshold,
        today,
        tuple(sorted(theme_labels().items())),
        data_fingerprint(session),
    )
    return RESULTS.get_or_compute(
        session, key, lambda: _signals(session, principal, similarity_threshold, today)
    )


def _signals(
    session: Session, principal: Principal, similarity_threshold: float, today: date
) -> list[dict[str, Any]]:
    """:func:`signals` computed from the database."""
    reviews = _visible(session, principal)
    themes = reviews_by_theme(session, list(reviews))
    actions = list_actions(session, principal=principal)
    labels = theme_labels()
    linked = _reviews_of(session, actions, reviews)
    return [
        *recurrence_after_action(reviews, themes, actions, labels),
        *deja_vu(session, reviews, actions, similarity_threshold),
        *rising(reviews, themes, labels),
        *overdue(actions, linked, today),
        *no_impact_evidence(actions, linked),
    ]

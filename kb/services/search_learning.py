"""Search you can trust: a "no close match" floor, learning-first ordering, hits by case and
the tracker actions that answer a hit's recommendation.

A ranked list always has a first hit, however unrelated; a practitioner who pastes a new incident
reads the top of it as "this is what we learnt about cases like this". So a hit must earn its
place: its meaning must be close to the query (cosine of the embeddings) or it must carry most
of the query's words (what an exact-term search means). The floor is calibrated on
benchmarks/search_quality.py (judged queries keep their hits, nonsense and off-topic queries
return nothing).

Ordering: for a pasted paragraph the panel wants what reviews *learnt* (findings,
recommendations, actions, good practice) before how they set the case out, so "learning first"
puts passages of those roles ahead of background, and front matter and partnership business
last, keeping relevance order inside each tier.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

import numpy as np
from sqlmodel import Session, col, select

from kb.models import ActionRecommendationLink, Recommendation
from kb.services.access import Principal
from kb.services.search_hit import SearchHit
from kb.services.tracker import list_actions
from nlp.tokens import tokenize

Order = Literal["relevance", "learning"]
ORDERS: tuple[Order, ...] = ("relevance", "learning")

# Roles (corpus.metadata.PassageRole values) in learning-first tiers.
LEARNING_ROLES: tuple[str, ...] = ("finding", "recommendation", "action", "good_practice")
CONTEXT_ROLES: tuple[str, ...] = ("case_synopsis", "other")
UNQUOTABLE_ROLES: tuple[str, ...] = ("front_matter", "partnership_business")
ROLES: tuple[str, ...] = (*LEARNING_ROLES, *CONTEXT_ROLES, *UNQUOTABLE_ROLES)

# Calibrated with benchmarks/search_quality.py on the demo corpus (all-MiniLM-L6-v2): the best
# hit of every judged query is at 0.48 or above; nonsense and off-topic queries top out at 0.32.
SIMILARITY_FLOOR = 0.40
# A word match alone is not enough when the meaning is this far ("change a car tyre" shares
# "change" and "care" with many reviews).
LEXICAL_MIN_SIMILARITY = 0.2
# A hit that carries at least this share of the query's distinct terms is a lexical match even
# when its meaning is far (a rare name, a made-up word the user knows is in a review).
LEXICAL_COVERAGE = 0.5
# Below the floor, hits under a close one stay unless their meaning is this far off and they
# share no word with the query (the tail of a good result list, not noise).
HIT_FLOOR = 0.15
# A query of this many words or more is a pasted paragraph: learning first by default.
PARAGRAPH_WORDS = 25
# Learning-first re-ranks a deeper pool than it returns, so learning passages a little further
# down the relevance list can come up; a fixed pool keeps pages consistent with each other.
LEARNING_POOL = 60


def default_order(query: str) -> Order:
    """Learning first for a pasted paragraph, relevance for a few words."""
    return "learning" if len(query.split()) >= PARAGRAPH_WORDS else "relevance"


def role_tier(role: str | None) -> int:
    """0 learning, 1 context, 2 front matter / partnership business."""
    if role in LEARNING_ROLES:
        return 0
    if role in UNQUOTABLE_ROLES:
        return 2
    return 1


def learning_first(hits: Sequence[SearchHit]) -> list[SearchHit]:
    """Hits in role tiers, relevance order kept inside each tier (a stable sort)."""
    return sorted(hits, key=lambda hit: role_tier(hit.role))


def cosines(query_vec: np.ndarray, vectors: Sequence[np.ndarray]) -> list[float]:
    """Cosine of the query to each (stored, unit) passage vector."""
    if not vectors:
        return []
    q = np.asarray(query_vec, dtype=np.float32).ravel()
    q = q / (float(np.linalg.norm(q)) or 1.0)
    matrix = np.vstack([np.asarray(v, dtype=np.float32).ravel() for v in vectors])
    norms = np.linalg.norm(matrix, axis=1)
    return [float(x) for x in (matrix @ q) / np.where(norms == 0, 1.0, norms)]


def coverage(query: str, text: str) -> float:
    """Share of the query's distinct terms that occur in ``text`` (same normaliser as BM25)."""
    wanted = set(tokenize(query))
    if not wanted:
        return 0.0
    return len(wanted & set(tokenize(text))) / len(wanted)


def is_close(similarity: float | None, lexical: float, floor: float = SIMILARITY_FLOOR) -> bool:
    """A hit is close when its meaning is near the query's or it carries most of its words."""
    if similarity is None:  # exact-words search: the words are all there is
        return lexical >= LEXICAL_COVERAGE
    return similarity >= floor or (
        lexical >= LEXICAL_COVERAGE and similarity >= LEXICAL_MIN_SIMILARITY
    )


def above_floor(
    hits: Sequence[SearchHit], query: str, floor: float = SIMILARITY_FLOOR
) -> list[SearchHit]:
    """``[]`` when no hit is close to the query ("no close match"); otherwise the hits minus
    those that are both far in meaning and share no word with it."""
    lexical = [coverage(query, hit.text) for hit in hits]
    if not any(is_close(h.similarity, cov, floor) for h, cov in zip(hits, lexical, strict=True)):
        return []
    return [
        h
        for h, cov in zip(hits, lexical, strict=True)
        if cov > 0 or h.similarity is None or h.similarity >= HIT_FLOOR
    ]


def group_by_case(hits: Sequence[SearchHit]) -> list[dict[str, Any]]:
    """Hits grouped under their case (a rapid review and the LCSPR that followed are one case;
    a review with no case is its own), cases in the order of their best hit."""
    groups: dict[tuple[str, int], dict[str, Any]] = {}
    for hit in hits:
        key = ("case", hit.case_id) if hit.case_id is not None else ("review", hit.review_id)
        group = groups.setdefault(
            key,
            {
                "case_id": hit.case_id,
                "label": hit.case_label or hit.pseudonym,
                "review_ids": [],
                "hits": [],
            },
        )
        if hit.review_id not in group["review_ids"]:
            group["review_ids"].append(hit.review_id)
        group["hits"].append(hit)
    return list(groups.values())


def answering_actions(
    session: Session, *, principal: Principal, passage_ids: Iterable[int]
) -> dict[int, list[dict[str, Any]]]:
    """Passage id → the tracker actions answering the recommendation extracted from it.

    Only actions the principal may see (``tracker.list_actions`` applies the tracker's rule), as
    ``{action_id, ref, description, status, impact_rating, completed_date, url}``.
    """
    ids = list(passage_ids)
    if not ids:
        return {}
    links = session.exec(
        select(Recommendation.passage_id, ActionRecommendationLink.action_id)
        .join(
            ActionRecommendationLink,
            col(ActionRecommendationLink.recommendation_id) == Recommendation.id,
        )
        .where(col(Recommendation.passage_id).in_(ids))
    ).all()
    if not links:
        return {}
    actions = {a.id: a for a in list_actions(session, principal=principal)}
    found: dict[int, list[dict[str, Any]]] = {}
    for passage_id, action_id in links:
        action = actions.get(action_id)
        if action is None or passage_id is None:
            continue
        found.setdefault(passage_id, []).append(
            {
                "action_id": action.id,
                "ref": action.ref,
                "description": action.description,
                "status": str(action.status.value),
                "impact_rating": action.impact_rating.value if action.impact_rating else None,
                "completed_date": action.completed_date.isoformat()
                if action.completed_date
                else None,
                "url": "/tracker#actions",
            }
        )
    for rows in found.values():
        rows.sort(key=lambda row: row["ref"])
    return found

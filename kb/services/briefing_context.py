"""What every briefing section builder shares: the context it acts in, candidate passages and
the diverse, de-duplicated pick of them (MMR over passage vectors).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
from sqlmodel import Session

from kb.models import (
    Passage,
    Review,
    ThemeTag,
)
from kb.services.access import Principal
from kb.services.briefing_access import review_labels
from kb.services.briefing_model import BriefingItem, BriefingSection, BriefingTemplate
from kb.services.briefing_text import excerpt
from nlp.fusion import mmr

if TYPE_CHECKING:
    from nlp.taxonomy import Taxonomy, Theme


@dataclass(slots=True)
class Candidate:
    passage_id: int
    review_id: int
    text: str
    vector: np.ndarray | None
    role: str = "other"
    case: tuple[str, int] | None = None  # kb.services.cases.case_key of its review
    priority: int = 0  # lower first: e.g. agency-level "The Partnership should" after practice


@dataclass(slots=True)
class BriefingContext:
    """What every section builder needs: the session, whom it acts for, what it is about."""

    session: Session
    viewer: Principal
    taxonomy: Taxonomy
    template: BriefingTemplate
    today: date
    reviews: dict[int, Review]  # the reviews the briefing is about, visible to ``viewer``
    theme_ids: list[str]  # the theme, or a review's main themes
    theme: Theme | None = None  # the theme of a theme briefing


def make_section(
    ctx: BriefingContext, number: int, items: list[BriefingItem], sources: Iterable[int] = ()
) -> BriefingSection:
    """A section with the template's heading; cited reviews are always among its sources."""
    ids = set(sources) | {i["review_id"] for i in items if i["review_id"] is not None}
    labels = review_labels(ctx.session, ids, ctx.reviews)
    return BriefingSection(
        number=number,
        heading=ctx.template.headings[number - 1],
        items=items,
        sources={rid: labels[rid] for rid in sorted(ids)},
    )


def evidence_start(tag: ThemeTag, passage: Passage) -> int | None:
    """Where the first evidence of the tag starts inside the passage, if recorded."""
    for evidence in tag.evidence or []:
        if "passage_start" in evidence:
            return int(evidence["passage_start"])
        if "start" in evidence:
            return int(evidence["start"]) - passage.start
    return None


def candidate(
    passage: Passage, budget: int, focus: int | None = None, sentences: int = 3
) -> Candidate:
    vector = np.frombuffer(passage.embedding, dtype=np.float32) if passage.embedding else None
    return Candidate(
        passage_id=passage.id,  # type: ignore[arg-type]
        review_id=passage.review_id,
        text=excerpt(passage.text, budget=budget, focus=focus, max_sentences=sentences),
        vector=vector,
        role=passage.role or "other",
    )


def pick_diverse(
    candidates: list[Candidate],
    *,
    top_k: int,
    duplicate: float,
    cases: Mapping[int, Hashable] | None = None,
) -> list[Candidate]:
    """Central and diverse picks by MMR over passage vectors, near-duplicates dropped.

    MMR alone only *discourages* repeats; a cosine threshold rules them out, so two reviews
    making the same point in the same words never fill two of five bullets. Passages without
    a vector (or from another embedding model) follow in reading order, de-duplicated by text.
    With ``cases`` (review id → case key) at most one item per case is picked: a rapid review
    and the LCSPR that followed must not fill two bullets with one family. Lower ``priority``
    candidates come first whatever MMR says (e.g. practice before agency-level wording).
    """
    candidates = [c for c in candidates if len(c.text.split()) >= 4]
    dims = Counter(c.vector.shape[0] for c in candidates if c.vector is not None)
    dim = dims.most_common(1)[0][0] if dims else None
    with_vec = [c for c in candidates if c.vector is not None and c.vector.shape[0] == dim]
    rest = [c for c in candidates if c not in with_vec]
    order: list[Candidate] = []
    if with_vec:
        matrix = np.vstack([c.vector for c in with_vec]).astype(np.float32)
        order = [with_vec[i] for i in mmr(None, matrix, lambda_=0.7, top_k=len(with_vec))]
    picked: list[Candidate] = []
    seen_texts: set[str] = set()
    seen_cases: set[Hashable] = set()
    for cand in sorted([*order, *rest], key=lambda c: c.priority):
        key = re.sub(r"\W+", " ", cand.text.lower()).strip()
        case = cases.get(cand.review_id, cand.review_id) if cases is not None else None
        if key in seen_texts or case in seen_cases or _too_close(cand, picked, duplicate):
            continue
        picked.append(cand)
        seen_texts.add(key)
        if case is not None:
            seen_cases.add(case)
        if len(picked) == top_k:
            break
    return picked


def _too_close(cand: Candidate, picked: list[Candidate], threshold: float) -> bool:
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

"""Rank fusion, diversity and near-duplicates over ranked lists and unit vectors.

Pure numpy helpers shared by search (RRF), briefings and precedents (MMR) and the tracker's
"déjà-vu" recommendations (near-duplicate pairs).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["mmr", "near_duplicates", "rrf", "top_indices", "unit_rows"]


def rrf(rankings: Sequence[Sequence[int]], k: int = 60) -> list[tuple[int, float]]:
    """Reciprocal rank fusion: ``score(d) = Σ 1 / (k + rank)`` with 1-based ranks.

    Rank-based, so BM25 scores and cosine similarities need no calibration against each other.
    Ties are broken by the best single rank, then by id, so output is deterministic.
    """
    scores: dict[int, float] = {}
    best: dict[int, int] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
            best[item] = min(best.get(item, rank), rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], best[kv[0]], kv[0]))


def unit_rows(vecs: np.ndarray) -> np.ndarray:
    """L2-normalise rows (zero rows stay zero) so dot products are cosines."""
    vecs = np.asarray(vecs, dtype=np.float32)
    norms = np.linalg.norm(vecs, axis=-1, keepdims=True)
    return vecs / np.where(norms == 0, 1.0, norms)


def mmr(
    query_vec: np.ndarray | None,
    candidate_vecs: np.ndarray,
    *,
    lambda_: float = 0.7,
    top_k: int,
) -> list[int]:
    """Maximal marginal relevance: pick ``top_k`` candidates that are relevant *and* diverse.

    Returns indices into ``candidate_vecs`` in pick order. With ``query_vec=None`` relevance is
    similarity to the candidates' centroid, i.e. centrality — how briefings choose key findings
    that represent a review without repeating themselves.
    """
    cands = unit_rows(candidate_vecs)
    n = cands.shape[0]
    if n == 0 or top_k <= 0:
        return []
    centre = cands.mean(axis=0) if query_vec is None else np.asarray(query_vec, np.float32)
    relevance = cands @ unit_rows(centre)
    max_sim = np.full(n, -np.inf, dtype=np.float32)
    chosen = np.zeros(n, dtype=bool)
    picks: list[int] = []
    for _ in range(min(top_k, n)):
        redundancy = np.where(np.isfinite(max_sim), max_sim, 0.0)
        gain = lambda_ * relevance - (1.0 - lambda_) * redundancy
        gain[chosen] = -np.inf
        pick = int(np.argmax(gain))
        picks.append(pick)
        chosen[pick] = True
        max_sim = np.maximum(max_sim, cands @ cands[pick])
    return picks


def near_duplicates(
    vecs: np.ndarray,
    ids: Sequence[int] | np.ndarray,
    threshold: float = 0.85,
    *,
    block: int = 1024,
) -> list[tuple[int, int, float]]:
    """Pairs ``(id_a, id_b, cosine)`` with cosine ≥ ``threshold``, most similar first.

    Used for "déjà-vu" recommendations (the same advice made again in a later review). Blocked
    matrix products keep memory at ``block × n`` floats instead of ``n × n``.
    """
    unit = unit_rows(vecs)
    id_arr = np.asarray(ids)
    if unit.shape[0] != id_arr.shape[0]:
        raise ValueError("vecs and ids must have the same length")
    pairs: list[tuple[int, int, float]] = []
    for start in range(0, unit.shape[0], block):
        sims = unit[start : start + block] @ unit[start:].T
        # keep the strict upper triangle only: each pair once, never an item with itself
        sims = np.triu(sims, k=1)
        rows, cols = np.nonzero(sims >= threshold)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            pairs.append((int(id_arr[start + r]), int(id_arr[start + c]), float(sims[r, c])))
    pairs.sort(key=lambda p: (-p[2], p[0], p[1]))
    return pairs


def top_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest finite scores, best first (argpartition, then a small sort)."""
    finite = np.isfinite(scores)
    k = min(k, int(np.count_nonzero(finite)))
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    if k < scores.size:
        # Every score tied with the k-th joins the candidates, so ties break by index (the
        # lowest first) rather than by wherever argpartition happened to leave them: the same
        # passages then rank the same however the rows are laid out (in memory or from files).
        kth = scores[np.argpartition(-scores, k - 1)[k - 1]]
        part = np.flatnonzero(scores >= kth)
    else:
        part = np.arange(scores.size)
    part = part[np.isfinite(scores[part])]
    return part[np.lexsort((part, -scores[part]))][:k]

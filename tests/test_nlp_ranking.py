"""HybridIndex, tokenisation, RRF, MMR and near-duplicate detection."""

from __future__ import annotations

import threading
from pathlib import Path

import bm25s
import numpy as np
import pytest

from nlp.embeddings import Embedder, get_embedder
from nlp.ranking import HybridIndex, mmr, near_duplicates, rrf, tokenize

PASSAGES = {
    1: "Information sharing between the GP and children's social care was poor.",
    2: "The baby was not brought to three health appointments before the injury.",
    3: "Professionals did not engage the father; hidden men were not assessed.",
    4: "The mother's mental health deteriorated after the birth.",
    5: "Domestic abuse, parental mental ill health and substance misuse: the toxic trio.",
    6: "Neglect was chronic; the Graded Care Profile 2 was not used.",
    7: "School attendance fell and the child was electively home educated.",
    8: "The health visitor made a referral to the MASH about bruising on a non-mobile infant.",
}


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    # The index is under test here, so the exact fp32 vectors: passage 4's two nearest
    # neighbours are a near-tie (0.403 / 0.392) that int8 noise (~0.01) can swap; the int8
    # backend's agreement with torch is tested in test_nlp_embeddings.py.
    return get_embedder(backend="torch")


@pytest.fixture(scope="module")
def vectors(embedder: Embedder) -> dict[int, np.ndarray]:
    ids = list(PASSAGES)
    return dict(zip(ids, embedder.encode([PASSAGES[i] for i in ids]), strict=True))


def _index(vectors: dict[int, np.ndarray], ids: list[int] | None = None) -> HybridIndex:
    ids = ids if ids is not None else list(PASSAGES)
    index = HybridIndex()
    index.add(ids, [PASSAGES[i] for i in ids], np.stack([vectors[i] for i in ids]))
    return index


# -- tokenisation -------------------------------------------------------------------------------


def test_tokenize_lowercases_stems_and_drops_stopwords() -> None:
    assert tokenize("The Children's ASSESSMENTS were shared") == ["child", "assess", "shar"]
    assert tokenize("babies baby") == ["baby", "baby"]
    assert tokenize("referred referral refer") == ["refer", "referral", "refer"]


def test_tokenize_keeps_negation() -> None:
    assert tokenize("was not brought") == ["not", "brought"]


# -- BM25 ---------------------------------------------------------------------------------------


def test_bm25_ranks_exact_term_first(vectors: dict[int, np.ndarray]) -> None:
    hits = _index(vectors).search("toxic trio", None, mode="bm25")
    assert hits[0].passage_id == 5
    assert hits[0].bm25_rank == 1 and hits[0].dense_rank is None
    assert all(h.passage_id == 5 for h in hits)  # no other passage contains either term


def test_bm25_matches_bm25s_lucene_scores(vectors: dict[int, np.ndarray]) -> None:
    """With no allow-set our query-time BM25 equals bm25s's precomputed Lucene BM25."""
    ids = list(PASSAGES)
    reference = bm25s.BM25(method="lucene", k1=1.5, b=0.75)
    reference.index([tokenize(PASSAGES[i]) for i in ids], show_progress=False)
    query = "mental health of the mother and the father"
    expected = reference.get_scores(tokenize(query))
    index = _index(vectors)
    got = {h.passage_id: h.score for h in index.search(query, None, mode="bm25", top_k=99)}
    for row, pid in enumerate(ids):
        assert got.get(pid, 0.0) == pytest.approx(float(expected[row]), rel=1e-5, abs=1e-6)


def test_empty_or_unknown_query_gives_no_bm25_hits(vectors: dict[int, np.ndarray]) -> None:
    index = _index(vectors)
    assert index.search("", None, mode="bm25") == []
    assert index.search("zzzz qqqq", None, mode="bm25") == []


# -- dense and hybrid ---------------------------------------------------------------------------


def test_dense_finds_paraphrase(embedder: Embedder, vectors: dict[int, np.ndarray]) -> None:
    query = "an infant who kept missing medical check-ups"
    hits = _index(vectors).search(query, embedder.encode_one(query), mode="dense", top_k=3)
    assert hits[0].passage_id == 2
    assert hits[0].dense_rank == 1 and -1.0 <= hits[0].score <= 1.0


def test_hybrid_fuses_both_lists(embedder: Embedder, vectors: dict[int, np.ndarray]) -> None:
    query = "mental health"
    hits = _index(vectors).search(query, embedder.encode_one(query), top_k=8)
    top = hits[0]
    assert top.passage_id in (4, 5)
    assert top.bm25_rank is not None and top.dense_rank is not None
    expected = 1 / (60 + top.bm25_rank) + 1 / (60 + top.dense_rank)
    assert top.score == pytest.approx(expected)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    # a passage with no query term can still come in through the dense list
    assert any(h.bm25_rank is None and h.dense_rank is not None for h in hits)


def test_float16_and_float32_storage_agree(vectors: dict[int, np.ndarray]) -> None:
    """float16 storage (the default, half the memory) ranks like float32 within 2e-4."""
    ids = list(PASSAGES)
    mat = np.stack([vectors[i] for i in ids])
    half, full = HybridIndex(), HybridIndex(dense_dtype="float32")
    for index in (half, full):
        index.add(ids, [PASSAGES[i] for i in ids], mat)
    a = half.search("", vectors[2], mode="dense", top_k=8)
    b = full.search("", vectors[2], mode="dense", top_k=8)
    assert [h.passage_id for h in a] == [h.passage_id for h in b]
    np.testing.assert_allclose([h.score for h in a], [h.score for h in b], atol=2e-4)
    assert half.nbytes < full.nbytes


def test_mode_validation(vectors: dict[int, np.ndarray]) -> None:
    index = _index(vectors)
    with pytest.raises(ValueError):
        index.search("x", None, mode="dense")
    with pytest.raises(ValueError):
        index.search("x", None, mode="fuzzy")  # type: ignore[arg-type]


# -- access control -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
@pytest.mark.parametrize("as_array", [False, True])
def test_disallowed_passage_leaves_no_trace(
    embedder: Embedder, vectors: dict[int, np.ndarray], mode: str, as_array: bool
) -> None:
    """An embargoed best match never appears, and every visible score equals the score it
    gets in an index that never held the embargoed passage (no IDF / length side channel)."""
    embargoed = 100
    PASSAGES_WITH_SECRET = {**PASSAGES, embargoed: "Toxic trio toxic trio: mental health."}
    vecs = {**vectors, embargoed: embedder.encode_one(PASSAGES_WITH_SECRET[embargoed])}
    full = HybridIndex()
    ids = list(PASSAGES_WITH_SECRET)
    full.add(ids, [PASSAGES_WITH_SECRET[i] for i in ids], np.stack([vecs[i] for i in ids]))
    visible = [i for i in ids if i != embargoed]
    allowed = np.asarray(visible) if as_array else set(visible)
    query = "toxic trio mental health"
    qvec = embedder.encode_one(query)

    got = full.search(query, qvec, allowed=allowed, mode=mode, top_k=20)  # type: ignore[arg-type]
    clean = _index(vectors).search(query, qvec, mode=mode, top_k=20)  # type: ignore[arg-type]

    assert embargoed not in {h.passage_id for h in got}
    assert full.search(query, qvec, mode=mode)[0].passage_id == embargoed  # it is the best match
    assert [(h.passage_id, h.bm25_rank, h.dense_rank) for h in got] == [
        (h.passage_id, h.bm25_rank, h.dense_rank) for h in clean
    ]
    np.testing.assert_allclose([h.score for h in got], [h.score for h in clean], rtol=1e-5)


def test_allowed_empty_or_unknown_ids(vectors: dict[int, np.ndarray]) -> None:
    index = _index(vectors)
    assert index.search("toxic trio", None, allowed=set(), mode="bm25") == []
    assert index.search("toxic trio", None, allowed={999}, mode="bm25") == []
    with pytest.raises(TypeError):
        index.search("toxic", None, allowed=np.ones(8, dtype=bool), mode="bm25")


@pytest.mark.parametrize("base", [0, 10**12])  # dense serials (lookup table) / sparse ids
def test_allowed_ids_map_to_rows(base: int) -> None:
    rng = np.random.default_rng(4)
    ids = [base + 3 * i for i in range(500)]
    index = HybridIndex()
    index.add(ids, ["neglect"] * 500, rng.standard_normal((500, 8)))
    index.remove(ids[:10])
    allowed = {*ids[:20], base + 1, base - 7, base + 10**6}  # removed, absent, out of range
    hits = index.search("neglect", None, allowed=allowed, mode="bm25", top_k=100)
    assert sorted(h.passage_id for h in hits) == ids[10:20]


def test_allowed_key_caches_until_index_changes(vectors: dict[int, np.ndarray]) -> None:
    index = _index(vectors, [1, 2, 3])
    first = index.allowed_mask({1, 2}, key="role:panel")
    assert index.allowed_mask({1, 2}, key="role:panel") is first
    assert index.allowed_mask({1}, key="role:panel").sum() == 1  # reused key, other set size
    index.add([4], [PASSAGES[4]], vectors[4][None, :])
    again = index.allowed_mask({1, 2, 4}, key="role:panel")
    assert again is not first and again.sum() == 3


# -- incremental updates ------------------------------------------------------------------------


def test_incremental_add_then_search(vectors: dict[int, np.ndarray]) -> None:
    index = _index(vectors, [1, 2, 3, 4])
    assert index.search("toxic trio", None, mode="bm25") == []
    index.add([5, 6], [PASSAGES[5], PASSAGES[6]], np.stack([vectors[5], vectors[6]]))
    assert len(index) == 6
    assert index.search("toxic trio", None, mode="bm25")[0].passage_id == 5
    assert index.search("", vectors[6], mode="dense")[0].passage_id == 6


def test_add_existing_id_replaces(vectors: dict[int, np.ndarray]) -> None:
    index = _index(vectors)
    index.add([5], ["Elective home education."], vectors[7][None, :])
    assert len(index) == len(PASSAGES)
    assert index.search("toxic trio", None, mode="bm25") == []
    assert {h.passage_id for h in index.search("home education", None, mode="bm25")} == {5, 7}


def test_remove(vectors: dict[int, np.ndarray]) -> None:
    index = _index(vectors)
    assert index.remove([5, 12345]) == 1
    assert 5 not in index and len(index) == len(PASSAGES) - 1
    assert index.search("toxic trio", None, mode="bm25") == []
    assert 5 not in {h.passage_id for h in index.search("", vectors[5], mode="dense", top_k=99)}


def test_compaction_after_many_removals_keeps_results() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    vecs = rng.standard_normal((n, 16)).astype(np.float32)
    index = HybridIndex()
    index.add(list(range(n)), [f"passage number{i} about neglect" for i in range(n)], vecs)
    index.remove(range(0, n, 2))  # half the rows die → compaction on next query
    hits = index.search("number1001", vecs[1001], top_k=1)
    assert hits[0].passage_id == 1001 and hits[0].bm25_rank == 1
    assert len(index) == n // 2 and index.ids().size == n // 2
    index.add([n], ["a new passage about number1001"], vecs[:1])  # append after compaction
    assert {h.passage_id for h in index.search("number1001", None, mode="bm25")} == {1001, n}


def test_concurrent_search_while_adding_and_removing() -> None:
    """Web threads search while ingest adds/removes (lazy rebuilds, compaction) — no errors."""
    rng = np.random.default_rng(2)
    index = HybridIndex()
    index.add(list(range(2000)), [f"neglect number{i}" for i in range(2000)],
              rng.standard_normal((2000, 8)))  # fmt: skip
    errors: list[BaseException] = []

    def searcher() -> None:
        rng = np.random.default_rng()  # Generators are not thread-safe: one per thread
        try:
            for _ in range(100):
                hits = index.search(
                    "neglect", rng.standard_normal(8), allowed=set(range(0, 9000, 3))
                )
                assert all(h.passage_id % 3 == 0 for h in hits)
        except BaseException as exc:  # surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=searcher) for _ in range(3)]
    for t in threads:
        t.start()
    for lo in range(2000, 9000, 500):
        index.add(list(range(lo, lo + 500)), ["neglect"] * 500, rng.standard_normal((500, 8)))
        index.remove(range(lo - 2000, lo - 1000))
    for t in threads:
        t.join()
    assert not errors


def test_more_like_this_excludes_self_and_respects_allowed(
    vectors: dict[int, np.ndarray],
) -> None:
    index = _index(vectors)
    hits = index.more_like_this(4, top_k=3)
    assert 4 not in {h.passage_id for h in hits}
    assert hits[0].passage_id == 5  # mental health ↔ mental ill health
    assert 5 not in {h.passage_id for h in index.more_like_this(4, allowed={1, 2, 3, 4, 6})}


def test_save_load_round_trip(tmp_path: Path, vectors: dict[int, np.ndarray]) -> None:
    index = _index(vectors)
    index.remove([3])
    index.save(tmp_path / "index.npz")
    loaded = HybridIndex.load(tmp_path / "index.npz")
    query, qvec = "mental health", vectors[4]
    assert loaded.search(query, qvec) == index.search(query, qvec)
    assert len(loaded) == len(index)


# -- fusion, diversity, near-duplicates ---------------------------------------------------------


def test_rrf_arithmetic() -> None:
    fused = dict(rrf([[1, 2, 3], [3, 1]], k=60))
    assert fused[1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[2] == pytest.approx(1 / 62)
    assert fused[3] == pytest.approx(1 / 63 + 1 / 61)
    assert [item for item, _ in rrf([[1, 2, 3], [3, 1]], k=60)] == [1, 3, 2]


def test_mmr_prefers_diverse_items() -> None:
    a = np.array([1.0, 0.0, 0.0])
    near_a = np.array([0.99, 0.14, 0.0])
    b = np.array([0.6, 0.0, 0.8])
    cands = np.stack([a, near_a, b])
    query = np.array([1.0, 0.0, 0.3])
    assert mmr(query, cands, lambda_=1.0, top_k=2) == [0, 1]  # pure relevance
    assert mmr(query, cands, lambda_=0.5, top_k=2) == [0, 2]  # diversity kicks in
    assert mmr(None, cands, top_k=3)[0] in (0, 1)  # centrality from the centroid
    assert mmr(query, np.empty((0, 3)), top_k=2) == []


def test_near_duplicates_finds_paraphrased_recommendations(embedder: Embedder) -> None:
    recs = [
        "Partnership agencies should ensure fathers and male carers are routinely involved in "
        "assessments.",
        "All agencies should make sure that fathers and other male carers are routinely "
        "included in assessments.",
        "The ICB should audit the use of the was-not-brought policy in GP practices.",
        "Schools should record elective home education decisions.",
    ]
    pairs = near_duplicates(embedder.encode(recs), [10, 11, 12, 13], threshold=0.8)
    assert [(a, b) for a, b, _ in pairs] == [(10, 11)]
    assert pairs[0][2] > 0.8


def test_near_duplicates_blocks_match_unblocked() -> None:
    rng = np.random.default_rng(1)
    base = rng.standard_normal((50, 8)).astype(np.float32)
    vecs = np.concatenate([base, base[:10] + 0.01 * rng.standard_normal((10, 8))])
    ids = list(range(60))
    blocked = near_duplicates(vecs, ids, threshold=0.99, block=7)
    assert blocked == near_duplicates(vecs, ids, threshold=0.99, block=4096)
    assert {(a, b) for a, b, _ in blocked} >= {(i, 50 + i) for i in range(10)}

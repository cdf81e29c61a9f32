"""HybridIndex as arrays and as a folder of memory-mapped files (nlp.index_files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nlp.index_files import IndexFilesError, open_index_dir, write_index_dir
from nlp.ranking import HybridIndex
from nlp.ranking_store import Base

WORDS = [
    "mother", "father", "baby", "infant", "school", "police", "health", "visitor", "neglect",
    "bruising", "referral", "assessment", "strategy", "discussion", "housing", "probation",
    "curiosity", "supervision", "threshold",
]  # fmt: skip


def _corpus(n: int, seed: int = 1) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS, size=int(rng.integers(4, 12)))) for _ in range(n)]
    vecs = rng.standard_normal((n, 16)).astype(np.float32)
    return texts, vecs


def _built(ids: range, texts: list[str], vecs: np.ndarray) -> HybridIndex:
    index = HybridIndex()
    index.add(list(ids), [texts[i] for i in ids], vecs[list(ids)])
    return index


def _same(a: HybridIndex, b: HybridIndex, vecs: np.ndarray, allowed: np.ndarray | None) -> None:
    for q in range(12):
        text = f"{WORDS[q]} {WORDS[-q - 1]}"
        for mode in ("hybrid", "bm25", "dense"):
            got = b.search(text, vecs[q], allowed=allowed, top_k=15, mode=mode)  # type: ignore[arg-type]
            assert got == a.search(text, vecs[q], allowed=allowed, top_k=15, mode=mode)  # type: ignore[arg-type]


def test_mapped_base_plus_delta_searches_exactly_like_one_in_memory_index(tmp_path: Path) -> None:
    texts, vecs = _corpus(600)
    whole = _built(range(600), texts, vecs)
    whole.remove([3, 450])
    base = _built(range(400), texts, vecs)
    base.remove([3])
    write_index_dir(base, tmp_path / "gen", {"model": "m"})
    opened, meta = open_index_dir(tmp_path / "gen")
    assert meta == {"model": "m"}
    assert isinstance(opened._base, Base) and isinstance(opened._base.vecs, np.memmap)
    opened.add(list(range(400, 600)), texts[400:], vecs[400:])
    opened.remove([450])
    assert (opened.base_rows, opened.delta_rows, opened.dead_rows) == (399, 200, 1)
    assert sorted(opened.ids().tolist()) == sorted(whole.ids().tolist())
    allowed = np.arange(0, 600, 3)
    _same(whole, opened, vecs, None)
    _same(whole, opened, vecs, allowed)
    assert opened.more_like_this(10, top_k=5) == whole.more_like_this(10, top_k=5)
    np.testing.assert_array_equal(opened.vector(500), whole.vector(500))
    # base + delta written again is one base: same results, nothing left in memory
    write_index_dir(opened, tmp_path / "gen2", {})
    again, _ = open_index_dir(tmp_path / "gen2")
    assert (again.base_rows, again.delta_rows) == (598, 0)
    _same(whole, again, vecs, allowed)


def test_empty_index_round_trips(tmp_path: Path) -> None:
    write_index_dir(HybridIndex(), tmp_path / "gen", {})
    index, _ = open_index_dir(tmp_path / "gen")
    assert len(index) == 0 and index.search("baby", None, mode="bm25") == []
    index.add([7], ["baby bruising"], np.ones((1, 4), dtype=np.float32))
    assert [h.passage_id for h in index.search("bruising", np.ones(4))] == [7]


@pytest.mark.parametrize("name", ["vecs.npy", "tf_indices.npy", "vocab.npy", "manifest.json"])
def test_damaged_files_are_refused(tmp_path: Path, name: str) -> None:
    texts, vecs = _corpus(50)
    write_index_dir(_built(range(50), texts, vecs), tmp_path / "gen", {})
    path = tmp_path / "gen" / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IndexFilesError, match=name.split(".")[0]):
        open_index_dir(tmp_path / "gen")


def test_arrays_that_do_not_fit_together_are_refused() -> None:
    texts, vecs = _corpus(20)
    arrays = _built(range(20), texts, vecs).to_arrays()
    arrays["tf_indices"] = arrays["tf_indices"] + 100  # rows past the end
    with pytest.raises(ValueError, match="do not fit"):
        HybridIndex.from_arrays(arrays)


def test_ties_at_the_candidate_cut_break_by_row() -> None:
    index = HybridIndex()
    index.add(list(range(10)), ["neglect"] * 10, np.eye(10, dtype=np.float32))
    assert [h.passage_id for h in index.search("neglect", None, mode="bm25", top_k=3)] == [0, 1, 2]


def test_query_product_runs_on_one_torch_thread() -> None:
    """A query's cosines use one torch thread in whichever thread asks (a server's request
    threads): torch's default of one thread per core made them wait for a busy core."""
    import threading

    import torch

    from nlp.ranking_store import dense_segment

    rng = np.random.default_rng(3)
    matrix = rng.standard_normal((64, 8)).astype(np.float16)
    q = rng.standard_normal(8).astype(np.float16)
    out = np.full(64, -np.inf, dtype=np.float32)
    mask = np.ones(64, dtype=bool)
    mask[::2] = False
    seen: list[int] = []

    def request_thread() -> None:
        torch.set_num_threads(2)
        dense_segment(matrix, q, mask, out)
        seen.append(torch.get_num_threads())

    worker = threading.Thread(target=request_thread)
    worker.start()
    worker.join()
    assert seen == [1]
    expected = (matrix.astype(np.float32) @ q.astype(np.float32))[mask]
    assert np.allclose(out[mask], expected, atol=1e-2)
    assert np.isneginf(out[~mask]).all()

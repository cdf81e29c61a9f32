"""Storage pieces of :class:`nlp.ranking.HybridIndex`: postings batches, the read-only base
opened from index files, and the array helpers scoring and growth share.

Kept apart from the index's logic so each module stays readable; nothing here knows about
queries, allow-sets or files.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import sparse


@dataclass(frozen=True, slots=True)
class Base:
    """Rows opened from index files (possibly memory-mapped, shared by every process on the
    machine through the page cache): rows ``0..n-1`` and terms ``0..n_terms-1``. Never written;
    passages added later live in the in-memory delta after them, removals only mark rows dead."""

    vecs: np.ndarray
    tf: sparse.csc_matrix

    @property
    def n(self) -> int:
        return int(self.vecs.shape[0])

    @property
    def n_terms(self) -> int:
        return int(self.tf.shape[1])


@dataclass(slots=True)
class Postings:
    """Raw term frequencies of one ``add`` batch as coordinate triples (row, term, tf)."""

    rows: np.ndarray
    terms: np.ndarray
    tfs: np.ndarray


def dense_segment(matrix: np.ndarray, q: np.ndarray, mask: np.ndarray, out: np.ndarray) -> None:
    """Write cosines of ``matrix``'s masked-in rows into ``out`` (a view of the score array).

    torch does the product (numpy has no fast float16 kernel; torch is loaded for the embedder
    anyway). When few rows are allowed only those rows are multiplied. ``matrix`` may be a
    read-only memory map: torch only reads it.
    """
    import torch

    if torch.get_num_threads() != 1:
        # One thread: the product of a matrix and one vector is bound by memory bandwidth, and
        # a second OpenMP thread only waits for a core. With two server workers on two busy
        # cores, torch's default (one thread per core) made this 2-5x slower (20k passages:
        # 8-12 ms against 2.4 ms) and stretched the search tail under load (benchmarks/load.py).
        # torch keeps the count per calling thread, so each request thread sets it once.
        torch.set_num_threads(1)
    allowed_rows = np.flatnonzero(mask)
    if matrix.shape[0] == 0 or allowed_rows.size == 0:
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        tensor = torch.from_numpy(matrix)
    q_t = torch.from_numpy(q)
    if allowed_rows.size * 4 < matrix.shape[0]:
        sub = tensor.index_select(0, torch.from_numpy(allowed_rows))
        out[allowed_rows] = (sub @ q_t).float().numpy()
    else:
        full = (tensor @ q_t).float().numpy()
        out[mask] = full[mask]


def csc_postings(tf: sparse.csc_matrix) -> Postings:
    """A CSC term matrix as (row, term, tf) triples."""
    terms = np.repeat(np.arange(tf.shape[1], dtype=np.int32), np.diff(tf.indptr))
    return Postings(np.asarray(tf.indices, dtype=np.int32), terms, np.asarray(tf.data))


def grow(arr: np.ndarray, rows: int) -> np.ndarray:
    """Copy ``arr`` into a larger zeroed array with ``rows`` rows (same trailing shape)."""
    out = np.zeros((rows, *arr.shape[1:]), dtype=arr.dtype)
    out[: arr.shape[0]] = arr
    return out

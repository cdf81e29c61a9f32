"""Per-theme linear heads over sentence embeddings: the learned model that reads real language.

Why embeddings and linear heads: real reviews say a practice theme a hundred ways ("nobody
asked who the man in the house was", "his presence was never explored"), and a bag of words
learned from a few hundred labelled passages only knows the words it saw. A sentence encoder
(the bundled all-MiniLM-L6-v2) puts paraphrases close together, so one logistic regression per
theme on top of it generalises from few labels.

The shipped artifact holds weights only (a matrix of heads, biases, thresholds and the theme
ids), written with ``numpy.savez`` and read with ``allow_pickle=False``: no training text, no
vocabulary, nothing that could carry a sentence of the data it was trained on.

Scoring is sentence-level: a passage's score for a theme is the maximum over its sentences, and
that sentence is the tag's evidence.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

#: Bump when the arrays in the file change meaning; :meth:`ThemeHeads.load` refuses others.
HEADS_FORMAT_VERSION = 1
#: The shipped heads, built by ``benchmarks/build_theme_heads.py`` (see nlp/data/README.md).
BUNDLED_HEADS = Path(__file__).resolve().parent / "data" / "theme_heads.npz"
#: Fewer positives than this and a theme gets no head (its column scores 0).
MIN_POSITIVES = 3
#: A theme whose threshold could not be tuned never tags on the model alone.
NEVER = 1.01


class HeadsFormatError(ValueError):
    """The file is not a theme-heads file this code can read."""


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


@dataclass
class ThemeHeads:
    """One logistic-regression head per theme over unit-length sentence vectors.

    ``thresholds[j]`` is the score at which theme j is tagged on the model alone (``NEVER``
    switches model-only tags off for that theme); ``embedder_id`` names the encoder the heads
    were trained on, so vectors from another encoder are refused instead of mis-scored.
    """

    theme_ids: list[str]
    weights: np.ndarray  # (themes, dim)
    bias: np.ndarray  # (themes,)
    thresholds: np.ndarray = field(default_factory=lambda: np.zeros(0))
    embedder_id: str = ""

    def __post_init__(self) -> None:
        if self.thresholds.size == 0:
            self.thresholds = np.full(len(self.theme_ids), NEVER)

    @property
    def dim(self) -> int:
        return int(self.weights.shape[1])

    def fingerprint(self) -> str:
        """Short hash of the arrays: tags made by other heads are stale for `retag`."""
        digest = hashlib.sha256()
        for part in (self.weights, self.bias, self.thresholds):
            digest.update(np.ascontiguousarray(part, dtype=np.float32).tobytes())
        digest.update("|".join(self.theme_ids).encode())
        return digest.hexdigest()[:12]

    def threshold(self, theme_id: str) -> float:
        """Model-only threshold for a theme (``NEVER`` for one the heads do not know)."""
        try:
            return float(self.thresholds[self.theme_ids.index(theme_id)])
        except ValueError:
            return NEVER

    def scores(self, vectors: np.ndarray) -> np.ndarray:
        """Probability of each theme for each vector, shape ``(len(vectors), len(theme_ids))``."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or (len(vectors) and vectors.shape[1] != self.dim):
            raise ValueError(f"expected vectors of dimension {self.dim}, got {vectors.shape}")
        if not len(vectors):
            return np.zeros((0, len(self.theme_ids)))
        active = np.any(self.weights != 0, axis=1)
        out = _sigmoid(vectors @ self.weights.T + self.bias)
        out[:, ~active] = 0.0
        return out

    # ------------------------------------------------------------------ training

    @classmethod
    def fit(
        cls,
        vectors: np.ndarray,
        y: np.ndarray,
        known: np.ndarray,
        theme_ids: Sequence[str],
        *,
        c: float = 1.0,
        embedder_id: str = "",
    ) -> ThemeHeads:
        """Fit one balanced logistic regression per theme on the rows whose label is known.

        ``y[i, j]`` is 1 when unit i carries theme j; ``known[i, j]`` is False where nothing is
        known (a sentence of a document labelled with the theme that is not its evidence), so
        that row is left out of theme j rather than taught as a negative.
        """
        vectors = np.asarray(vectors, dtype=np.float64)
        weights = np.zeros((len(theme_ids), vectors.shape[1]), dtype=np.float32)
        bias = np.full(len(theme_ids), -30.0, dtype=np.float32)
        for j in range(len(theme_ids)):
            rows = known[:, j]
            target = y[rows, j]
            n_pos = int(target.sum())
            if n_pos < MIN_POSITIVES or len(target) - n_pos < MIN_POSITIVES:
                continue
            model = LogisticRegression(C=c, class_weight="balanced", max_iter=1000)
            model.fit(vectors[rows], target)
            weights[j] = model.coef_[0]
            bias[j] = model.intercept_[0]
        return cls(list(theme_ids), weights, bias, embedder_id=embedder_id)

    # ------------------------------------------------------------------ file format

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the arrays atomically (temporary file in the same folder, then rename)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".npz", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez_compressed(
                    fh,
                    format_version=np.array(HEADS_FORMAT_VERSION),
                    theme_ids=np.array(self.theme_ids, dtype=str),
                    weights=self.weights.astype(np.float32),
                    bias=self.bias.astype(np.float32),
                    thresholds=self.thresholds.astype(np.float32),
                    embedder_id=np.array(self.embedder_id, dtype=str),
                )
            os.chmod(tmp, 0o644)  # a shipped, readable artifact, not a private temporary file
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ThemeHeads:
        """Read a file written by :meth:`save`; never unpickles anything."""
        try:
            with np.load(path, allow_pickle=False) as data:
                version = int(data["format_version"])
                if version != HEADS_FORMAT_VERSION:
                    raise HeadsFormatError(
                        f"{path}: theme heads format {version} is not supported "
                        f"(this code reads {HEADS_FORMAT_VERSION}); rebuild them"
                    )
                heads = cls(
                    theme_ids=[str(t) for t in data["theme_ids"]],
                    weights=np.asarray(data["weights"], dtype=np.float32),
                    bias=np.asarray(data["bias"], dtype=np.float32),
                    thresholds=np.asarray(data["thresholds"], dtype=np.float32),
                    embedder_id=str(data["embedder_id"]),
                )
        except (KeyError, ValueError, OSError) as exc:
            if isinstance(exc, HeadsFormatError):
                raise
            raise HeadsFormatError(f"{path}: not a theme heads file ({exc})") from exc
        if heads.weights.shape != (len(heads.theme_ids), heads.weights.shape[1]):
            raise HeadsFormatError(f"{path}: weights do not match the theme ids")
        return heads

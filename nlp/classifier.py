"""Learned multi-label theme model: tf-idf (+ optional sentence embeddings) → logistic regression.

Why a learned model next to the rules in ``nlp/tagger.py``: rules are precise but only find the
words somebody thought of; reviews describe the same concern in many ways ("dad was never
seen", "the man in the household was not known to us"). This model adds recall; the tagger
decides how to combine it with the rules.

Design choices, each explained where it is implemented:

* one binary logistic regression per theme (one-vs-rest), ``class_weight="balanced"`` because
  most themes are rare;
* per-theme *masks*: a theme is trained only on passages whose label for it is known, so a human
  "reject" is a negative and an unknown is simply left out (see :func:`train_from_examples`);
* sigmoid calibration where a theme has enough positives, so thresholds mean something;
* per-theme thresholds chosen by inner cross-validation, clipped to a floor and a ceiling;
* a versioned, atomically written model file whose header lets callers skip retraining when
  the labels have not changed (the idea of paperless-ngx's document classifier).

One concept per module: this one is the model. Its file format is nlp/model_file.py, what its
labels mean nlp/training_data.py, its evaluation nlp/evaluate.py, the sentence encoder
nlp/embeddings.py and the developer command nlp/classifier_cli.py.

The module is pure: no database, no settings. Embeddings come in as a plain callable so the model
works, and is tested, without torch.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
from scipy import sparse
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from nlp.model_file import FORMAT_VERSION, ModelFormatError, read_model_file, write_model_file
from nlp.training_data import LabelledExample, labels_hash, merge_examples

__all__ = [
    "DEFAULT_THRESHOLD",
    "ModelFormatError",
    "ThemeClassifier",
    "best_f1_threshold",
    "split_segments",
    "train_from_examples",
]

#: Below this many positives (or negatives) a theme gets no model: its probability is its prior.
MIN_POSITIVES_FOR_MODEL = 2
#: Sigmoid calibration fits on held-out folds; with fewer positives the calibrator is noise.
MIN_POSITIVES_FOR_CALIBRATION = 12
#: Threshold search needs enough out-of-fold positives for F1 to be more than a coin toss.
MIN_POSITIVES_FOR_TUNING = 8
#: Threshold used when a theme is too rare to tune: deliberately not permissive.
DEFAULT_THRESHOLD = 0.5
#: Tuned thresholds are clipped so one lucky fold cannot make a theme fire on everything
#: (floor) or never (ceiling).
THRESHOLD_FLOOR = 0.15
THRESHOLD_CEILING = 0.85

EmbedFn = Callable[[list[str]], np.ndarray]

_SEGMENT_BREAK = re.compile(
    r"(?<=[.!?;])\s+(?=[A-Z0-9'\"(])|\n\s*(?:[-\u2022*]\s*)?|\s+-\s+(?=[A-Z])"
)
#: Fragments shorter than this (characters) are headings or list debris, not evidence.
_MIN_SEGMENT_CHARS = 25


def split_segments(text: str) -> list[str]:
    """Split a passage into sentences and list items (regex; good enough for pooling).

    Deliberately dependency-free: ``nlp/pipeline.py``'s spaCy sentencizer would do, but the model
    must stay importable and testable without loading spaCy.
    """
    parts = [p.strip(" -\u2022*\t") for p in _SEGMENT_BREAK.split(text)]
    return [p for p in parts if len(p) >= _MIN_SEGMENT_CHARS]


def _label_matrices(
    pos_sets: list[set[str]], neg_sets: list[set[str]] | None, theme_ids: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Target matrix ``y`` (1 = present) and mask ``known`` (label known for that theme).

    Without negative sets everything is known (fully labelled data); with them, a theme that is
    in neither set of an example is unknown and masked out of that theme's training.
    """
    y = np.zeros((len(pos_sets), len(theme_ids)), dtype=int)
    known = np.ones_like(y, dtype=bool)
    for i, pos in enumerate(pos_sets):
        for j, theme in enumerate(theme_ids):
            y[i, j] = theme in pos
            if neg_sets is not None:
                known[i, j] = theme in pos or theme in neg_sets[i]
    return y, known


# --------------------------------------------------------------------------- model


class ThemeClassifier:
    """Multi-label theme classifier; see the module docstring for the design."""

    def __init__(
        self,
        *,
        embed: EmbedFn | None = None,
        use_char_ngrams: bool = True,
        c: float = 4.0,
        embedding_weight: float = 1.0,
        inner_folds: int = 5,
        random_state: int = 13,
        segment_weight: float = 0.8,
    ) -> None:
        self.embed = embed
        self.segment_weight = segment_weight
        self.use_char_ngrams = use_char_ngrams
        self.c = c
        self.embedding_weight = embedding_weight
        self.inner_folds = inner_folds
        self.random_state = random_state
        self.theme_ids: list[str] = []
        self.thresholds: dict[str, float] = {}
        self.header: dict[str, Any] = {}
        self._word: TfidfVectorizer | None = None
        self._char: TfidfVectorizer | None = None
        self._models: dict[str, Any] = {}
        self._priors: dict[str, float] = {}
        self._embedding_dim: int | None = None

    # ----------------------------------------------------------------- features

    def _fit_features(self, texts: list[str]) -> sparse.csr_matrix:
        """Fit the vectorisers on all training texts (unsupervised, so masks do not apply)."""
        self._word = TfidfVectorizer(
            ngram_range=(1, 2),
            sublinear_tf=True,
            min_df=1,
            strip_accents="unicode",
            token_pattern=r"(?u)\b[\w][\w\-']*\b",
        )
        self._word.fit(texts)
        if self.use_char_ngrams:
            # Character n-grams catch spelling variants ("non-accidental", "nonaccidental",
            # "Under 1's") that word features treat as unrelated tokens.
            self._char = TfidfVectorizer(
                analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=2
            )
            self._char.fit(texts)
        return self._features(texts)

    def _features(self, texts: list[str]) -> sparse.csr_matrix:
        """Concatenate word tf-idf, optional char tf-idf and optional embeddings."""
        if self._word is None:
            raise RuntimeError("the classifier has not been fitted")
        blocks = [self._word.transform(texts)]
        if self._char is not None:
            blocks.append(self._char.transform(texts))
        if self.embed is not None:
            blocks.append(sparse.csr_matrix(self._embeddings(texts)))
        elif self._embedding_dim is not None:
            raise RuntimeError("this model was trained with embeddings: pass embed= to load()")
        return sparse.hstack(blocks, format="csr")

    def _embeddings(self, texts: list[str]) -> np.ndarray:
        """Row-normalised embeddings, scaled so they weigh like one tf-idf block."""
        assert self.embed is not None
        vectors = np.asarray(self.embed(list(texts)), dtype=np.float64)
        if vectors.ndim != 2 or vectors.shape[0] != len(texts):
            raise ValueError(f"embed returned shape {vectors.shape} for {len(texts)} texts")
        if self._embedding_dim is not None and vectors.shape[1] != self._embedding_dim:
            raise ValueError(
                f"embed returned dimension {vectors.shape[1]}, model expects {self._embedding_dim}"
            )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return self.embedding_weight * vectors / norms

    # ----------------------------------------------------------------- estimators

    def _estimator(self, n_pos: int) -> Any:
        """Calibrated LR when there are enough positives, else the raw (balanced) LR."""
        base = LogisticRegression(
            C=self.c, class_weight="balanced", solver="liblinear", max_iter=2000
        )
        if n_pos >= MIN_POSITIVES_FOR_CALIBRATION:
            return CalibratedClassifierCV(base, method="sigmoid", cv=3)
        return base

    def _tune_threshold(self, x: sparse.csr_matrix, y: np.ndarray) -> float:
        """Pick the F1-maximising threshold on out-of-fold probabilities.

        Among thresholds within 0.01 F1 of the best, the median is taken: the F1 curve on a few
        hundred examples is flat-topped, and the middle of the plateau generalises better than
        its edge.
        """
        n_pos = int(y.sum())
        n_neg = len(y) - n_pos
        if n_pos < MIN_POSITIVES_FOR_TUNING or n_neg < MIN_POSITIVES_FOR_TUNING:
            return DEFAULT_THRESHOLD
        folds = StratifiedKFold(
            n_splits=min(self.inner_folds, n_pos, n_neg),
            shuffle=True,
            random_state=self.random_state,
        )
        oof = cross_val_predict(self._estimator(n_pos), x, y, cv=folds, method="predict_proba")[
            :, 1
        ]
        return best_f1_threshold(oof, y)

    # ----------------------------------------------------------------- public API

    def fit(
        self,
        texts: Sequence[str],
        label_sets: Sequence[Iterable[str]],
        theme_ids: Sequence[str],
        *,
        negative_sets: Sequence[Iterable[str]] | None = None,
    ) -> ThemeClassifier:
        """Train on ``texts``; ``label_sets[i]`` are the themes present in ``texts[i]``.

        Without ``negative_sets`` every example is fully labelled: a theme not listed is absent.
        With them, a theme listed in neither set of an example is unknown there and that example
        is left out of the theme's training data.
        """
        texts = [str(t) for t in texts]
        pos_sets = [set(s) for s in label_sets]
        neg_sets = None if negative_sets is None else [set(s) for s in negative_sets]
        if len(pos_sets) != len(texts) or (neg_sets is not None and len(neg_sets) != len(texts)):
            raise ValueError("texts, label_sets and negative_sets must have the same length")
        if not texts:
            raise ValueError("cannot fit on no examples")
        self.theme_ids = list(dict.fromkeys(theme_ids))
        unknown = set().union(*pos_sets, *(neg_sets or [])) - set(self.theme_ids)
        if unknown:
            raise ValueError(f"labels not in theme_ids: {sorted(unknown)}")
        y, known = _label_matrices(pos_sets, neg_sets, self.theme_ids)

        self._embedding_dim = None
        x = self._fit_features(texts)
        if self.embed is not None:
            self._embedding_dim = x.shape[1] - self._tfidf_width()

        self._models, self._priors, self.thresholds = {}, {}, {}
        for j, theme in enumerate(self.theme_ids):
            self._fit_theme(theme, x[known[:, j]], y[known[:, j], j])

        self.header = self._make_header(labels_hash(texts, pos_sets, neg_sets), len(texts))
        return self

    def _fit_theme(self, theme: str, x: sparse.csr_matrix, y: np.ndarray) -> None:
        """Fit one theme's binary model and threshold on its known rows."""
        n_pos = int(y.sum())
        n_neg = len(y) - n_pos
        self._priors[theme] = n_pos / len(y) if len(y) else 0.0
        if n_pos < MIN_POSITIVES_FOR_MODEL or n_neg < MIN_POSITIVES_FOR_MODEL:
            self._models[theme] = None
            self.thresholds[theme] = DEFAULT_THRESHOLD
            return
        self.thresholds[theme] = self._tune_threshold(x, y)
        self._models[theme] = self._estimator(n_pos).fit(x, y)

    def _tfidf_width(self) -> int:
        """Number of tf-idf columns (word + char), i.e. where embeddings start."""
        assert self._word is not None
        width = len(self._word.vocabulary_)
        if self._char is not None:
            width += len(self._char.vocabulary_)
        return width

    def _make_header(self, hash_: str, n_examples: int) -> dict[str, Any]:
        """The metadata written in front of the pickled state."""
        return {
            "format_version": FORMAT_VERSION,
            "sklearn_version": sklearn.__version__,
            "theme_ids": list(self.theme_ids),
            "labels_hash": hash_,
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "n_examples": n_examples,
            "uses_embeddings": self._embedding_dim is not None,
            "embedding_dim": self._embedding_dim,
        }

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probability of each theme, shape ``(len(texts), len(theme_ids))``, columns in order."""
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, len(self.theme_ids)))
        if self.segment_weight <= 0:
            return self._raw_proba(texts)
        # Score the whole passage and each of its sentences / list items: real passages are
        # longer than training ones and carry several themes, and tf-idf normalisation dilutes
        # a theme mentioned in one sentence of a long paragraph. A sentence alone is weaker
        # evidence than the passage, hence the discount (0.8 kept precision on the dev set).
        units: list[str] = []
        owners: list[int] = []
        for i, text in enumerate(texts):
            parts = split_segments(text)
            if len(parts) > 1:
                units.extend(parts)
                owners.extend([i] * len(parts))
        out = self._raw_proba(texts)
        if units:
            seg = np.zeros_like(out)
            np.maximum.at(seg, np.asarray(owners), self._raw_proba(units))
            out = np.maximum(out, self.segment_weight * seg)
        return out

    def _raw_proba(self, texts: list[str]) -> np.ndarray:
        """Per-theme probabilities of each text as a whole."""
        out = np.zeros((len(texts), len(self.theme_ids)))
        x = self._features(texts)
        for j, theme in enumerate(self.theme_ids):
            model = self._models.get(theme)
            if model is None:
                out[:, j] = self._priors.get(theme, 0.0)
            else:
                out[:, j] = model.predict_proba(x)[:, 1]
        return out

    def predict(self, texts: Sequence[str]) -> list[set[str]]:
        """Themes whose probability reaches that theme's threshold, one set per text."""
        probs = self.predict_proba(texts)
        cut = np.array([self.thresholds.get(t, DEFAULT_THRESHOLD) for t in self.theme_ids])
        return [{self.theme_ids[j] for j in np.flatnonzero(row >= cut)} for row in probs]

    # ----------------------------------------------------------------- persistence

    def _state(self) -> dict[str, Any]:
        """Everything needed to predict, minus the embed callable (never pickled)."""
        return {
            "params": {
                "use_char_ngrams": self.use_char_ngrams,
                "c": self.c,
                "embedding_weight": self.embedding_weight,
                "inner_folds": self.inner_folds,
                "random_state": self.random_state,
                "segment_weight": self.segment_weight,
            },
            "theme_ids": self.theme_ids,
            "thresholds": self.thresholds,
            "word": self._word,
            "char": self._char,
            "models": self._models,
            "priors": self._priors,
            "embedding_dim": self._embedding_dim,
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model atomically (see nlp/model_file.py for the format)."""
        if not self.header:
            raise RuntimeError("the classifier has not been fitted")
        return write_model_file(path, self.header, self._state())

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, embed: EmbedFn | None = None) -> ThemeClassifier:
        """Load a model written by :meth:`save`.

        Refuses a file of another ``FORMAT_VERSION`` rather than guessing. A model trained with
        embeddings needs the same ``embed`` callable again. The file is a pickle: load only
        models this application wrote.
        """
        header, state = read_model_file(path)
        if header.get("uses_embeddings") and embed is None:
            raise ModelFormatError(f"{path}: model was trained with embeddings; pass embed=")
        model = cls(embed=embed, **state["params"])
        model.theme_ids = list(state["theme_ids"])
        model.thresholds = dict(state["thresholds"])
        model._word = state["word"]
        model._char = state["char"]
        model._models = state["models"]
        model._priors = state["priors"]
        model._embedding_dim = state["embedding_dim"]
        model.header = header
        return model


def train_from_examples(
    examples: Sequence[LabelledExample],
    *,
    theme_ids: Sequence[str] | None = None,
    embed: EmbedFn | None = None,
    **params: Any,
) -> ThemeClassifier:
    """Train on the bundled file's examples plus human-confirmed / rejected tags.

    Label semantics (per theme, per passage): a positive is 1; a negative is 0; anything else is
    unknown and that passage is not used for that theme. Items from the training file are fully
    labelled (:func:`load_training_passages` lists every other core theme as a negative), so they
    train every theme; a passage where a person only confirmed "neglect" trains only "neglect"
    (as a positive), and a rejection of "domestic-abuse" trains "domestic-abuse" as a negative.
    Treating unknowns as negatives would teach the model that confirmed neglect passages are
    never about, say, poverty, which is often false.
    """
    merged = merge_examples(examples)
    if theme_ids is None:
        theme_ids = sorted(set().union(*(e.positives | e.negatives for e in merged)))
    model = ThemeClassifier(embed=embed, **params)
    return model.fit(
        [e.text for e in merged],
        [e.positives for e in merged],
        theme_ids,
        negative_sets=[e.negatives for e in merged],
    )


def best_f1_threshold(scores: np.ndarray, y: np.ndarray) -> float:
    """F1-maximising threshold in [floor, ceiling], median of the near-best plateau."""
    grid = np.round(np.arange(THRESHOLD_FLOOR, THRESHOLD_CEILING + 1e-9, 0.01), 2)
    f1s = np.array([_f1(scores >= t, y) for t in grid])
    near = grid[f1s >= f1s.max() - 0.01]
    return float(np.median(near))


def _f1(pred: np.ndarray, y: np.ndarray) -> float:
    """Binary F1 of boolean predictions."""
    tp = float(np.sum(pred & (y == 1)))
    denom = float(np.sum(pred)) + float(np.sum(y == 1))
    return 2 * tp / denom if denom else 0.0

"""Training data and fitting for the theme heads (nlp/heads.py), from real labelled documents.

Where the labels come from, and what each one teaches (per theme, per unit):

* a document-level gold row (``file``, ``themes``, ``why``, ``hard_negatives``): every sentence
  of a document *not* labelled with a theme is a negative for it (no passage of the document
  carries it); the sentence(s) holding the ``why`` quote are positives, and the quote itself
  too; the other sentences of a labelled document are unknown for that theme (the label says
  some passage carries it, not which), so they are left out of its training; sentences holding
  a ``hard_negatives`` quote are negatives for that theme, as is the quote itself;
* a passage-level gold row or a bundled fictional passage: the passage is positive for its
  themes and negative for the others;
* a person's confirmed / rejected tag: positive / negative for that theme only.

Thresholds for tags on the heads alone are chosen per theme by cross-validation over
documents: out-of-fold head scores, rolled up to the document (maximum over its sentences), are
combined with the rules' own document tags, and the threshold that gives the best document-level
F1 for rules + heads wins. A theme with too few labelled documents never tags on heads alone.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from nlp.heads import NEVER, ThemeHeads

EmbedFn = Callable[[list[str]], np.ndarray]

#: Document-level positives a theme needs in the tuning documents before heads may tag alone.
MIN_DOCS_FOR_THRESHOLD = 3
#: Candidate thresholds for model-only tags; below 0.5 the heads (balanced) are mostly noise.
THRESHOLD_GRID = np.round(np.arange(0.5, 0.991, 0.01), 2)
#: Heads may add tags to a theme only where, out of fold, this share of their additions was right
#: and document F1 rose by at least MIN_GAIN: a model-only tag must earn its place.
MIN_ADDED_PRECISION = 0.85
MIN_GAIN = 0.04
#: ... and at least this many of their additions were right (one lucky document is not enough).
MIN_ADDED_TRUE = 2
#: Share of a quote's words a sentence must contain to count as holding the quote.
QUOTE_OVERLAP = 0.6

_WORD = re.compile(r"[a-z0-9]+")
_NOTE = re.compile(r"\([^)]*\)\s*$")


@dataclass
class Unit:
    """One text the heads learn from, with per-theme knowledge and its fold group."""

    text: str
    positives: set[str] = field(default_factory=set)
    negatives: set[str] = field(default_factory=set)
    group: str = ""  # the document a unit came from; "" = always in training


@dataclass
class PreparedDocument:
    """A labelled document after rules and sentence splitting, ready for CV without re-parsing.

    ``sentences`` are ``(text, themes negated or hypothetical in that sentence)``;
    ``rule_themes`` maps each theme the rules found to its first evidence sentence.
    """

    key: str
    themes: frozenset[str]
    why: dict[str, str]
    hard_negatives: dict[str, str]
    sentences: list[tuple[str, frozenset[str]]]
    rule_themes: dict[str, str]


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def quote_parts(quote: str) -> list[str]:
    """The verbatim pieces of a gold quote: split at ellipses, annotator notes removed."""
    quote = _NOTE.sub("", quote)
    parts = re.split(r"\.\.\.|\u2026", quote)
    return [p.strip(" .;,\u2022") for p in parts if len(_words(p)) >= 3]


def holds_quote(sentence: str, quote: str) -> bool:
    """Does the sentence contain (most of the words of) any piece of the quote?"""
    have = set(_words(sentence))
    for part in quote_parts(quote):
        need = _words(part)
        if need and sum(w in have for w in need) / len(need) >= QUOTE_OVERLAP:
            return True
    return False


def document_units(doc: PreparedDocument, theme_ids: Sequence[str]) -> list[Unit]:
    """Training units from one labelled document (see the module docstring)."""
    absent = set(theme_ids) - doc.themes
    units = []
    for text, _negated in doc.sentences:
        unit = Unit(text, negatives=set(absent), group=doc.key)
        for theme, quote in doc.why.items():
            if theme in doc.themes and holds_quote(text, quote):
                unit.positives.add(theme)
        for theme, quote in doc.hard_negatives.items():
            if theme not in unit.positives and holds_quote(text, quote):
                unit.negatives.add(theme)
        units.append(unit)
    for theme, quote in doc.why.items():
        for part in quote_parts(quote):
            if theme in doc.themes:
                units.append(Unit(part, {theme}, set(absent), doc.key))
    for theme, quote in doc.hard_negatives.items():
        for part in quote_parts(quote):
            if theme not in doc.themes or theme not in doc.why:
                units.append(Unit(part, set(), {theme}, doc.key))
    return units


def labelled_units(
    rows: Sequence[tuple[str, Sequence[str]]], theme_ids: Sequence[str], group: str = ""
) -> list[Unit]:
    """Fully labelled passages (gold passages, bundled fictional passages) as units."""
    universe = set(theme_ids)
    return [
        Unit(text, set(themes) & universe, universe - set(themes), group) for text, themes in rows
    ]


def matrices(units: Sequence[Unit], theme_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Targets ``y`` and the ``known`` mask for :meth:`ThemeHeads.fit`."""
    y = np.zeros((len(units), len(theme_ids)), dtype=int)
    known = np.zeros_like(y, dtype=bool)
    for i, unit in enumerate(units):
        for j, theme in enumerate(theme_ids):
            if theme in unit.positives:
                y[i, j], known[i, j] = 1, True
            elif theme in unit.negatives:
                known[i, j] = True
    return y, known


class VectorCache:
    """Embeds each distinct text once; CV refits heads many times on the same sentences."""

    def __init__(self, embed: EmbedFn) -> None:
        self.embed = embed
        self._vectors: dict[str, np.ndarray] = {}

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if missing:
            self._vectors.update(zip(missing, np.asarray(self.embed(missing)), strict=True))
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return np.stack([self._vectors[t] for t in texts])


def fit_heads(
    units: Sequence[Unit], vectors: VectorCache, theme_ids: Sequence[str], *, c: float = 1.0
) -> ThemeHeads:
    """Heads fitted on ``units`` (thresholds left at NEVER; see :func:`tune_thresholds`)."""
    y, known = matrices(units, theme_ids)
    return ThemeHeads.fit(vectors([u.text for u in units]), y, known, theme_ids, c=c)


def document_scores(
    heads: ThemeHeads, docs: Sequence[PreparedDocument], vectors: VectorCache
) -> np.ndarray:
    """Document-level head scores: the best sentence not negated for the theme, per theme."""
    out = np.zeros((len(docs), len(heads.theme_ids)))
    for d, doc in enumerate(docs):
        if not doc.sentences:
            continue
        scores = heads.scores(vectors([s for s, _ in doc.sentences]))
        for row, (_, negated) in enumerate(doc.sentences):
            for j, theme in enumerate(heads.theme_ids):
                if theme not in negated:
                    out[d, j] = max(out[d, j], scores[row, j])
    return out


def doc_folds(keys: Sequence[str], k: int, seed: int = 0) -> list[set[str]]:
    """Shuffled, near-equal folds of document keys (deterministic for a seed)."""
    order = list(dict.fromkeys(keys))
    random.Random(seed).shuffle(order)
    return [set(order[f::k]) for f in range(k)]


def out_of_fold_scores(
    docs: Sequence[PreparedDocument],
    base: Sequence[Unit],
    vectors: VectorCache,
    theme_ids: Sequence[str],
    *,
    folds: int = 4,
    seed: int = 1,
    c: float = 1.0,
) -> np.ndarray:
    """Document scores where each document is scored by heads that never saw it."""
    units = {d.key: document_units(d, theme_ids) for d in docs}
    out = np.zeros((len(docs), len(theme_ids)))
    for held in doc_folds([d.key for d in docs], min(folds, len(docs)), seed):
        train = list(base) + [u for d in docs if d.key not in held for u in units[d.key]]
        heads = fit_heads(train, vectors, theme_ids, c=c)
        idx = [i for i, d in enumerate(docs) if d.key in held]
        out[idx] = document_scores(heads, [docs[i] for i in idx], vectors)
    return out


def tune_thresholds(
    docs: Sequence[PreparedDocument],
    scores: np.ndarray,
    theme_ids: Sequence[str],
    *,
    with_rules: bool = True,
) -> np.ndarray:
    """Per-theme heads-alone threshold maximising document F1 of rules + heads.

    Among thresholds within 0.02 F1 of the best, the highest wins: the same F1 with fewer
    heads-only tags is the more precise choice on documents nobody here has read.
    """
    thresholds = np.full(len(theme_ids), NEVER)
    for j, theme in enumerate(theme_ids):
        gold = np.array([theme in d.themes for d in docs])
        if gold.sum() < MIN_DOCS_FOR_THRESHOLD:
            continue
        rules = np.array([with_rules and theme in d.rule_themes for d in docs])
        base_f1 = _f1(rules, gold)
        f1s = np.zeros(len(THRESHOLD_GRID))
        for k, t in enumerate(THRESHOLD_GRID):
            added = (scores[:, j] >= t) & ~rules
            right = int((added & gold).sum())
            if right >= MIN_ADDED_TRUE and right / added.sum() >= MIN_ADDED_PRECISION:
                f1s[k] = _f1(rules | added, gold)
        if f1s.max() < base_f1 + MIN_GAIN:
            continue
        near = THRESHOLD_GRID[f1s >= f1s.max() - 0.02]
        thresholds[j] = float(near.max())
    return thresholds


def _f1(pred: np.ndarray, gold: np.ndarray) -> float:
    tp = float(np.sum(pred & gold))
    denom = float(np.sum(pred) + np.sum(gold))
    return 2 * tp / denom if denom else 0.0


def train_heads(
    docs: Sequence[PreparedDocument],
    base: Sequence[Unit],
    vectors: VectorCache,
    theme_ids: Sequence[str],
    *,
    inner_folds: int = 4,
    c: float = 1.0,
    embedder_id: str = "",
    rules_in_tuning: bool = True,
) -> ThemeHeads:
    """Heads on everything given, thresholds from inner cross-validation over ``docs``.

    ``rules_in_tuning``: thresholds for heads behind the rules (True, what the tagger does) or
    for heads alone (False, the "model alone" figure).
    """
    units = list(base) + [u for d in docs for u in document_units(d, theme_ids)]
    heads = fit_heads(units, vectors, theme_ids, c=c)
    if len(docs) >= inner_folds:
        oof = out_of_fold_scores(docs, base, vectors, theme_ids, folds=inner_folds, c=c)
        heads.thresholds = tune_thresholds(docs, oof, theme_ids, with_rules=rules_in_tuning)
    heads.embedder_id = embedder_id
    return heads

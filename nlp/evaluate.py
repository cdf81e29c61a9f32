"""Tagging quality: gold loading, per-theme precision / recall / F1, and k-fold cross-validation.

Macro averages only cover themes with support, so a theme nobody annotated cannot pull the
average to zero or one. Cross-validation only ever scores out-of-fold predictions, because a
learned model scored on its own training passages tells us nothing about unseen reviews.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class GoldItem:
    """One annotated passage."""

    id: str
    text: str
    themes: frozenset[str]
    source: str = ""


def load_gold(path: Path | str) -> list[GoldItem]:
    """Read a JSONL gold file (id, source, text, themes per line); blank lines are skipped."""
    items = []
    with Path(path).open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                items.append(
                    GoldItem(
                        id=str(row["id"]),
                        text=row["text"],
                        themes=frozenset(row.get("themes") or []),
                        source=str(row.get("source") or ""),
                    )
                )
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{line_no}: bad gold line: {exc}") from exc
    return items


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def _triple(p: float, r: float, f: float) -> dict[str, float]:
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4)}


def score(
    gold_sets: Sequence[Iterable[str]],
    predicted_sets: Sequence[Iterable[str]],
    theme_ids: Iterable[str],
) -> dict:
    """Micro, macro (themes with support > 0) and per-theme P/R/F1 with support.

    Predictions for themes outside `theme_ids` are ignored, so a partnership's local themes do
    not distort scores on the core gold set.
    """
    if len(gold_sets) != len(predicted_sets):
        raise ValueError("gold and predicted lists differ in length")
    ids = list(dict.fromkeys(theme_ids))
    wanted = set(ids)
    counts = {t: [0, 0, 0] for t in ids}  # tp, fp, fn
    for gold, pred in zip(gold_sets, predicted_sets, strict=True):
        g, p = set(gold) & wanted, set(pred) & wanted
        for t in g & p:
            counts[t][0] += 1
        for t in p - g:
            counts[t][1] += 1
        for t in g - p:
            counts[t][2] += 1
    themes = {}
    for t, (tp, fp, fn) in counts.items():
        themes[t] = {**_triple(*_prf(tp, fp, fn)), "support": tp + fn}
    totals = [sum(c[k] for c in counts.values()) for k in range(3)]
    supported = [themes[t] for t in ids if themes[t]["support"] > 0]
    macro = [
        sum(s[k] for s in supported) / len(supported) if supported else 0.0
        for k in ("precision", "recall", "f1")
    ]
    return {"micro": _triple(*_prf(*totals)), "macro": _triple(*macro), "themes": themes}


Predictor = Callable[[list[str]], list[set[str]]]


@dataclass
class CrossValidation:
    """Scores over out-of-fold predictions, the predictions themselves, and the folds."""

    scores: dict
    predictions: dict[str, set[str]]
    folds: list[list[str]]


def make_folds(items: Sequence[GoldItem], k: int = 5, seed: int = 0) -> list[list[int]]:
    """Shuffled, near-equal folds of item indices (deterministic for a seed)."""
    if not 2 <= k <= len(items):
        raise ValueError(f"k must be between 2 and the number of items ({len(items)}), got {k}")
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    return [order[f::k] for f in range(k)]


def cross_validate(
    items: Sequence[GoldItem],
    make_predictor: Callable[[list[GoldItem]], Predictor],
    k: int = 5,
    seed: int = 0,
    theme_ids: Iterable[str] | None = None,
) -> CrossValidation:
    """k-fold CV: train on k-1 folds, predict the held-out fold, score all held-out predictions.

    `make_predictor(train_items)` returns a function from texts to predicted theme sets; it never
    sees the items it is asked to predict.
    """
    folds = make_folds(items, k, seed)
    predictions: dict[str, set[str]] = {}
    for held_out in folds:
        held = set(held_out)
        train = [items[i] for i in range(len(items)) if i not in held]
        predict = make_predictor(train)
        test = [items[i] for i in held_out]
        for item, pred in zip(test, predict([it.text for it in test]), strict=True):
            predictions[item.id] = set(pred)
    ids = (
        list(theme_ids) if theme_ids is not None else sorted({t for it in items for t in it.themes})
    )
    scores = score([it.themes for it in items], [predictions[it.id] for it in items], ids)
    return CrossValidation(scores, predictions, [[items[i].id for i in f] for f in folds])


def _tagger_predictor(taxonomy: Any, model: Any) -> Predictor:
    from nlp.tagger import Tagger  # local: spaCy is only loaded when a tagger is evaluated

    tagger = Tagger(taxonomy, model=model)
    return lambda texts: [{t.theme_id for t in tags} for tags in tagger.tag_many(texts)]


def evaluate_tagger(
    items: Sequence[GoldItem],
    *,
    taxonomy: Any = None,
    method: str = "combined",
    folds: int = 5,
    seed: int = 0,
    training: Sequence[Any] | None = None,
) -> dict:
    """Score the tagger on gold `items` with one of three methods.

    * ``rules``: the taxonomy's rules alone, no training, scored on every item.
    * ``model``/``combined``: a learned model (alone, or behind the rules) cross-validated over
      `folds`: each fold's model is trained on the bundled training passages (or `training`)
      plus the other folds of gold, and only ever scores passages it never saw.
    """
    from nlp.classifier import LabelledExample, load_training_passages, train_from_examples
    from nlp.taxonomy import load_taxonomy

    taxonomy = taxonomy or load_taxonomy()
    core = [t.id for t in taxonomy]
    if method == "rules":
        predict = _tagger_predictor(taxonomy, None)
        return score([i.themes for i in items], predict([i.text for i in items]), core)
    if method not in ("model", "combined"):
        raise ValueError(f"unknown method {method!r}: use rules, model or combined")
    base = list(training) if training is not None else load_training_passages()
    universe = frozenset(core)

    def make_predictor(train: list[GoldItem]) -> Predictor:
        extra = [LabelledExample(i.text, i.themes & universe, universe - i.themes) for i in train]
        model = train_from_examples(base + extra, theme_ids=core)
        if method == "combined":
            return _tagger_predictor(taxonomy, model)
        return model.predict

    return cross_validate(items, make_predictor, k=folds, seed=seed, theme_ids=core).scores

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

import numpy as np


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
    from nlp.classifier import train_from_examples
    from nlp.taxonomy import load_taxonomy
    from nlp.training_data import LabelledExample, load_training_passages

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


# --------------------------------------------------------------------------- documents


@dataclass(frozen=True)
class GoldDocument:
    """One labelled document: a document carries a theme when any of its passages does."""

    key: str
    path: Path
    themes: frozenset[str]
    why: dict[str, str]
    hard_negatives: dict[str, str]


def _resolve_document(gold: Path, name: str) -> Path:
    """A gold row's file, relative to the gold file's folder or to the folder named like it."""
    for candidate in (gold.parent / name, gold.parent / gold.stem / name):
        if candidate.is_file():
            return candidate
    raise ValueError(f"document {name!r} not found next to {gold} or in {gold.parent / gold.stem}")


def load_document_gold(path: Path | str) -> list[GoldDocument]:
    """Read document-level gold: ``file``, ``themes`` and optional ``why`` / ``hard_negatives``."""
    path = Path(path)
    docs = []
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                name = str(row["file"])
                docs.append(
                    GoldDocument(
                        key=name,
                        path=_resolve_document(path, name),
                        themes=frozenset(row.get("themes") or []),
                        why=dict(row.get("why") or {}),
                        hard_negatives=dict(row.get("hard_negatives") or {}),
                    )
                )
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{path}:{line_no}: bad gold line: {exc}") from exc
    return docs


#: Reads a document into its passages as ``(start offset, text)`` (kb passes corpus' reader).
PassagesOf = Callable[[Path], list[tuple[int, str]]]


def prepare_documents(
    docs: Sequence[GoldDocument], passages_of: PassagesOf, tagger: Any
) -> list[Any]:
    """Parse every document once: its sentences (with negated themes) and its rule tags."""
    from nlp.head_training import PreparedDocument
    from nlp.rules import sentence_span
    from nlp.tagger import MIN_SENTENCE_CHARS

    prepared = []
    for doc in docs:
        texts = [text for _, text in passages_of(doc.path)]
        parsed, rules = tagger.parse_and_match(texts)
        sentences: list[tuple[str, frozenset[str]]] = []
        rule_themes: dict[str, str] = {}
        for pdoc, result in zip(parsed, rules, strict=True):
            for theme, match in result.matches.items():
                a, b = match.evidence[0] if match.evidence else (0, 0)
                rule_themes.setdefault(theme, pdoc.text[a:b])
            for sent in pdoc.sents:
                a, b = sentence_span(sent)
                if b - a < MIN_SENTENCE_CHARS:
                    continue
                negated = frozenset(t for t, spans in result.suppressed.items() if (a, b) in spans)
                sentences.append((pdoc.text[a:b], negated))
        prepared.append(
            PreparedDocument(
                doc.key, doc.themes, doc.why, doc.hard_negatives, sentences, rule_themes
            )
        )
    return prepared


@dataclass
class DocumentEvaluation:
    """Scores, the predicted themes per document, and the errors with their sentences."""

    scores: dict
    predictions: dict[str, set[str]]
    confusion: list[dict[str, Any]]
    hard_negative_errors: int


def _best_sentence(doc: Any, heads: Any, vectors: Any, theme: str) -> tuple[str, float] | None:
    """The sentence the heads score highest for a theme (the candidate shown for a miss)."""
    if heads is None or theme not in heads.theme_ids or not doc.sentences:
        return None
    j = heads.theme_ids.index(theme)
    scores = heads.scores(vectors([s for s, _ in doc.sentences]))[:, j]
    k = int(np.argmax(scores))
    return doc.sentences[k][0], round(float(scores[k]), 3)


def _predict_documents(
    docs: Sequence[Any], method: str, heads: Any, vectors: Any
) -> tuple[list[set[str]], list[dict[str, str]]]:
    """Themes per document for rules / heads / combined, with one evidence sentence each."""
    from nlp.head_training import document_scores

    preds, evidence = [], []
    scores = document_scores(heads, docs, vectors) if heads is not None else None
    for d, doc in enumerate(docs):
        found: dict[str, str] = dict(doc.rule_themes) if method != "heads" else {}
        if scores is not None and method != "rules":
            for j, theme in enumerate(heads.theme_ids):
                if theme not in found and scores[d, j] >= heads.thresholds[j]:
                    best = _best_sentence(doc, heads, vectors, theme)
                    found[theme] = best[0] if best else ""
        preds.append(set(found))
        evidence.append(found)
    return preds, evidence


def _report(
    docs: Sequence[Any],
    theme_ids: Sequence[str],
    predictions: dict[str, set[str]],
    evidence: dict[str, dict[str, str]],
    used_heads: dict[str, Any],
    vectors: Any,
) -> DocumentEvaluation:
    """Scores plus the confusion report: false positives with evidence, misses with the
    gold quote and the sentence the (fold's) heads scored highest for the missed theme."""
    scores = score([d.themes for d in docs], [predictions[d.key] for d in docs], theme_ids)
    confusion, hard = [], 0
    for doc in docs:
        pred = predictions[doc.key]
        fps = [
            {"theme": t, "evidence": evidence[doc.key].get(t, "")}
            for t in sorted(pred - doc.themes)
        ]
        misses = []
        for theme in sorted(doc.themes - pred):
            best = _best_sentence(doc, used_heads[doc.key], vectors, theme) if vectors else None
            misses.append(
                {
                    "theme": theme,
                    "why": doc.why.get(theme, ""),
                    "candidate": best[0] if best else None,
                    "candidate_score": best[1] if best else None,
                }
            )
        hard += sum(1 for t in doc.hard_negatives if t in pred and t not in doc.themes)
        if fps or misses:
            confusion.append({"file": doc.key, "false_positives": fps, "misses": misses})
    return DocumentEvaluation(scores, predictions, confusion, hard)


def evaluate_documents(
    docs: Sequence[Any],
    theme_ids: Sequence[str],
    *,
    method: str = "combined",
    folds: int = 5,
    heads: Any = None,
    vectors: Any = None,
    base_units: Sequence[Any] = (),
    seed: int = 0,
) -> DocumentEvaluation:
    """Document-level scores of ``rules``, ``heads`` or ``combined`` on prepared documents.

    With ``folds`` >= 2 and a ``vectors`` cache, heads are cross-validated: for each fold they
    are trained on ``base_units`` plus the other folds' documents (thresholds by inner CV on
    those documents only) and score the held-out fold. With ``folds`` < 2 the given ``heads``
    score every document: a fit figure when those heads saw these documents.
    """
    from nlp.head_training import doc_folds, train_heads

    if method not in ("rules", "heads", "combined"):
        raise ValueError(f"unknown method {method!r}: use rules, heads or combined")
    docs = list(docs)
    predictions: dict[str, set[str]] = {}
    evidence: dict[str, dict[str, str]] = {}
    used_heads: dict[str, Any] = {}
    if method == "rules" or folds < 2 or vectors is None:
        preds, evs = _predict_documents(docs, method, heads, vectors)
        for doc, pred, ev in zip(docs, preds, evs, strict=True):
            predictions[doc.key], evidence[doc.key], used_heads[doc.key] = pred, ev, heads
    else:
        for held in doc_folds([d.key for d in docs], folds, seed):
            train = [d for d in docs if d.key not in held]
            test = [d for d in docs if d.key in held]
            fold_heads = train_heads(
                train, base_units, vectors, theme_ids, rules_in_tuning=method == "combined"
            )
            preds, evs = _predict_documents(test, method, fold_heads, vectors)
            for doc, pred, ev in zip(test, preds, evs, strict=True):
                predictions[doc.key], evidence[doc.key] = pred, ev
                used_heads[doc.key] = fold_heads
    return _report(docs, theme_ids, predictions, evidence, used_heads, vectors)


# --------------------------------------------------------------------------- the learned model


def cross_validate_examples(
    examples: Sequence[Any],
    theme_ids: Sequence[str],
    *,
    folds: int = 5,
    embed: Any = None,
    random_state: int = 7,
    **params: Any,
) -> dict:
    """K-fold cross-validated :func:`score` of the tf-idf model on fully labelled examples."""
    from nlp.classifier import train_from_examples

    examples = list(examples)
    order = list(range(len(examples)))
    random.Random(random_state).shuffle(order)
    gold: list[set[str]] = [set() for _ in examples]
    pred: list[set[str]] = [set() for _ in examples]
    for f in range(folds):
        held = set(order[f::folds])
        train = [e for i, e in enumerate(examples) if i not in held]
        model = train_from_examples(train, theme_ids=theme_ids, embed=embed, **params)
        test = sorted(held)
        for i, guess in zip(test, model.predict([examples[i].text for i in test]), strict=True):
            gold[i], pred[i] = set(examples[i].positives), guess
    return score(gold, pred, theme_ids)


def format_scores(title: str, scores: dict) -> str:
    """A plain-text table of :func:`score` output (themes with support or predictions)."""
    lines = [title, f"{'theme':28} {'P':>5} {'R':>5} {'F1':>5} {'sup':>4}"]
    for theme, m in scores["themes"].items():
        lines.append(
            f"{theme:28} {m['precision']:5.2f} {m['recall']:5.2f} {m['f1']:5.2f} {m['support']:4d}"
        )
    for name in ("micro", "macro"):
        m = scores[name]
        lines.append(f"{name:28} {m['precision']:5.2f} {m['recall']:5.2f} {m['f1']:5.2f}")
    return "\n".join(lines)


def score_tagger_on_documents(
    prepared: Sequence[Any], docs: Sequence[GoldDocument], passages_of: PassagesOf, tagger: Any
) -> DocumentEvaluation:
    """Score a tagger exactly as it runs (``kb tag``): passages tagged, themes rolled up.

    A fit figure when the tagger's learned parts saw these documents; no folds here.
    """
    predictions: dict[str, set[str]] = {}
    evidence: dict[str, dict[str, str]] = {}
    for doc in docs:
        texts = [text for _, text in passages_of(doc.path)]
        found: dict[str, str] = {}
        for tags in tagger.tag_many(texts):
            for tag in tags:
                found.setdefault(tag.theme_id, tag.evidence[0].text if tag.evidence else "")
        predictions[doc.key], evidence[doc.key] = set(found), found
    theme_ids = [t.id for t in tagger.taxonomy]
    heads = getattr(tagger, "heads", None)
    embed = getattr(tagger, "embed", None)
    vectors = None
    if heads is not None and embed is not None:
        from nlp.head_training import VectorCache

        vectors = VectorCache(embed)
    return _report(
        prepared, theme_ids, predictions, evidence, {d.key: heads for d in docs}, vectors
    )


# --------------------------------------------------------------------------- people's decisions


def _known_counts(
    examples: Sequence[Any], predicted: Sequence[set[str]], theme_ids: Sequence[str]
) -> dict[str, dict[str, float]]:
    """P/R/F1 per theme over the labels people actually gave (confirmed or rejected only)."""
    out = {}
    for theme in theme_ids:
        tp = fp = fn = 0
        for example, pred in zip(examples, predicted, strict=True):
            if theme in example.positives:
                tp, fn = tp + (theme in pred), fn + (theme not in pred)
            elif theme in example.negatives:
                fp += theme in pred
        if tp + fp + fn:
            out[theme] = {**_triple(*_prf(tp, fp, fn)), "support": tp + fn, "decided": tp + fp + fn}
    return out


def decision_impact(
    base: Sequence[Any], decided: Sequence[Any], theme_ids: Sequence[str], *, folds: int = 5
) -> dict[str, Any]:
    """How people's decisions changed the learned model, per theme, cross-validated.

    "before" is a model trained on ``base`` alone; "after" is trained on ``base`` plus the other
    folds of ``decided``. Both are scored on the decided passages they did not train on, and
    only on the labels people gave, so a theme nobody decided has no figure.
    """
    from nlp.classifier import train_from_examples

    decided = list(decided)
    if not decided:
        return {"decisions": 0, "themes": {}}
    before_model = train_from_examples(list(base), theme_ids=theme_ids)
    before = before_model.predict([e.text for e in decided])
    after: list[set[str]] = [set() for _ in decided]
    k = max(2, min(folds, len(decided)))
    order = list(range(len(decided)))
    random.Random(0).shuffle(order)
    for f in range(k):
        held = set(order[f::k])
        train = list(base) + [e for i, e in enumerate(decided) if i not in held]
        model = train_from_examples(train, theme_ids=theme_ids)
        test = sorted(held)
        for i, pred in zip(test, model.predict([decided[i].text for i in test]), strict=True):
            after[i] = pred
    was, now = _known_counts(decided, before, theme_ids), _known_counts(decided, after, theme_ids)
    return {
        "decisions": len(decided),
        "folds": k,
        "themes": {t: {"before": was[t], "after": now[t]} for t in now},
    }

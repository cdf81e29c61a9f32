"""Developer command for the tf-idf theme model: train on the bundled file, score, cross-validate.

``python -m nlp.classifier_cli --eval-gold PATH [--embeddings] [--cv 5] [--show-errors]``. The
application trains through ``kb train``; this command exists to compare model variants quickly.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from nlp.classifier import EmbedFn, train_from_examples
from nlp.evaluate import cross_validate_examples, format_scores, score
from nlp.training_data import _DATA_FILE, core_theme_ids, load_training_passages, read_jsonl


def _evaluate(args: argparse.Namespace) -> int:
    """Train on the training file, score on gold and by cross-validation."""
    examples = load_training_passages(args.train)
    theme_ids = core_theme_ids(read_jsonl(args.train or _DATA_FILE))
    gold_rows = read_jsonl(args.eval_gold) if args.eval_gold else []
    variants: list[tuple[str, EmbedFn | None]] = [("tf-idf", None)]
    if args.embeddings:
        try:
            from nlp.embeddings import bundled_sentence_embedder

            variants.append(("tf-idf + MiniLM embeddings", bundled_sentence_embedder()))
        except Exception as exc:  # noqa: BLE001 - optional extra; report and carry on
            print(f"embeddings unavailable: {exc}", file=sys.stderr)
    for name, embed in variants:
        start = time.perf_counter()
        model = train_from_examples(examples, theme_ids=theme_ids, embed=embed)
        took = time.perf_counter() - start
        print(f"\n=== {name}: trained on {len(examples)} passages in {took:.1f}s")
        print("thresholds:", json.dumps({k: round(v, 2) for k, v in model.thresholds.items()}))
        if gold_rows:
            pred = model.predict([r["text"] for r in gold_rows])
            gold = [set(r["themes"]) for r in gold_rows]
            title = f"\n-- gold ({len(gold_rows)} passages), {name}"
            print(format_scores(title, score(gold, pred, theme_ids)))
            if args.show_errors:
                _print_errors(gold_rows, gold, pred)
        if args.cv:
            cv = cross_validate_examples(examples, theme_ids, folds=args.cv, embed=embed)
            print(format_scores(f"\n-- {args.cv}-fold CV on training file, {name}", cv))
        if args.save:
            model.save(args.save)
    return 0


def _print_errors(rows: list[dict[str, Any]], gold: list[set[str]], pred: list[set[str]]) -> None:
    """Missed and spurious themes per gold passage, for error analysis."""
    for row, g, p in zip(rows, gold, pred, strict=True):
        if g != p:
            print(f"  {row['id']}: missed {sorted(g - p)} spurious {sorted(p - g)}")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m nlp.classifier_cli --eval-gold PATH [--embeddings] [--cv 5]``."""
    parser = argparse.ArgumentParser(prog="python -m nlp.classifier_cli", description=__doc__)
    parser.add_argument("--eval-gold", metavar="PATH", help="external gold JSONL to score on")
    parser.add_argument("--train", metavar="PATH", help="training JSONL (default: bundled)")
    parser.add_argument("--embeddings", action="store_true", help="also run with MiniLM")
    parser.add_argument("--cv", type=int, default=0, metavar="K", help="K-fold CV on training")
    parser.add_argument("--save", metavar="PATH", help="save the (last) trained model")
    parser.add_argument("--show-errors", action="store_true", help="list gold disagreements")
    return _evaluate(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())

"""Dev-only benchmark for theme tagging (not part of the package or the test suite).

One run prints, when the shared gold sets exist:

* rules alone, the learned models alone, and rules + theme heads combined, on the seed gold
  passages and on the real documents (document level: a document carries a theme when any
  passage does), per theme; anything that learns from a gold set is 5-fold cross-validated on
  it (folds by document), so no figure is a fit;
* throughput of ``Tagger.tag_many``: rules only, rules + the tf-idf model, rules + theme heads
  (sentence embeddings), against spaCy tokenisation alone in the same process.

    .venv/bin/python benchmarks/tagging.py [--gold-dir ../shared/gold] [--n 3000] [--folds 5]
        [--no-quality] [--no-speed] [--confusion]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from kb.services.tagging import passages_of  # noqa: E402
from nlp.classifier import train_from_examples  # noqa: E402
from nlp.embeddings import get_embedder  # noqa: E402
from nlp.evaluate import (  # noqa: E402
    evaluate_documents,
    evaluate_tagger,
    format_scores,
    load_document_gold,
    load_gold,
    score,
)
from nlp.evaluate import prepare_documents as prepare  # noqa: E402
from nlp.head_training import (  # noqa: E402
    PreparedDocument,
    VectorCache,
    document_scores,
    document_units,
    fit_heads,
    labelled_units,
    train_heads,
)
from nlp.heads import BUNDLED_HEADS, ThemeHeads  # noqa: E402
from nlp.pipeline import tokenize_many  # noqa: E402
from nlp.tagger import Tagger  # noqa: E402
from nlp.taxonomy import CORE_THEME_IDS, load_taxonomy  # noqa: E402
from nlp.training_data import load_training_passages  # noqa: E402

DEFAULT_GOLD = ROOT.parent / "shared" / "gold"
DEMO_FILES = ROOT / "corpus" / "demo" / "files"
THEMES = list(CORE_THEME_IDS)

FILLER = [
    "The family were known to universal services.",
    "A referral was made to children's social care by the school.",
    "The health visitor completed a new birth visit.",
    "Agencies met to review the plan and agreed actions.",
    "The child attended nursery most days and was described as happy.",
    "Police attended the address following a call from a neighbour.",
    "The GP saw the mother on two occasions during this period.",
    "There were no concerns about the child's weight or development.",
]


def show(title: str, scores: dict, extra: str = "") -> None:
    """Per-theme table (themes with support) and the averages."""
    supported = {t: m for t, m in scores["themes"].items() if m["support"]}
    print(format_scores(f"\n== {title} {extra}", {**scores, "themes": supported}))


def seed_as_documents(items, tagger: Tagger) -> list[PreparedDocument]:
    """Seed passages as one-passage documents (no quotes: every sentence labelled by passage)."""
    return prepare(
        [_Doc(i.id, i.text, i.themes) for i in items], lambda d: [(0, d.read_text())], tagger
    )


class _Doc:
    """A gold passage shaped like a GoldDocument for :func:`prepare`."""

    def __init__(self, key: str, text: str, themes) -> None:
        self.key, self.themes, self.why, self.hard_negatives = key, frozenset(themes), {}, {}
        self.path = self
        self._text = text

    def read_text(self) -> str:
        return self._text


def seed_cv(
    seed_docs, seed_items, real_docs, base, vectors, thresholds, folds: int, with_rules: bool
):
    """Seed passages scored by heads trained on bundled + real-docs + the other seed folds."""
    real_units = [u for d in real_docs for u in document_units(d, THEMES)]
    order = list(range(len(seed_items)))
    random.Random(0).shuffle(order)
    preds: dict[str, set[str]] = {}
    for f in range(folds):
        held = set(order[f::folds])
        train_seed = labelled_units(
            [(seed_items[i].text, seed_items[i].themes) for i in order if i not in held], THEMES
        )
        heads = fit_heads(list(base) + real_units + train_seed, vectors, THEMES)
        heads.thresholds = thresholds
        test = [seed_docs[i] for i in sorted(held)]
        scores = document_scores(heads, test, vectors)
        for d, doc in zip(range(len(test)), test, strict=True):
            found = set(doc.rule_themes) if with_rules else set()
            found |= {t for j, t in enumerate(THEMES) if scores[d, j] >= thresholds[j]}
            preds[doc.key] = found
    return score([i.themes for i in seed_items], [preds[i.id] for i in seed_items], THEMES)


def quality(gold_dir: Path, folds: int, confusion: bool) -> None:
    """Rules, models and combined on seed passages and real documents."""
    tagger = Tagger(load_taxonomy())
    seed_items = load_gold(gold_dir / "seed-passages.jsonl")
    real = load_document_gold(gold_dir / "real-docs.jsonl")
    started = time.perf_counter()
    real_docs = prepare(real, passages_of, tagger)
    seed_docs = seed_as_documents(seed_items, tagger)
    embedder = get_embedder()
    vectors = VectorCache(embedder.encode)
    bundled = labelled_units([(e.text, e.positives) for e in load_training_passages()], THEMES)
    base_real = bundled + labelled_units([(i.text, i.themes) for i in seed_items], THEMES)
    print(f"prepared {len(real_docs)} documents, {len(seed_docs)} passages")

    seed_rules = score(
        [i.themes for i in seed_items], [set(d.rule_themes) for d in seed_docs], THEMES
    )
    show("seed gold, rules alone", seed_rules)
    show(
        "seed gold, tf-idf model alone",
        evaluate_tagger(seed_items, method="model", folds=folds),
        f"({folds}-fold CV)",
    )
    for method in ("rules", "heads", "combined"):
        result = evaluate_documents(
            real_docs, THEMES, method=method, folds=folds, vectors=vectors, base_units=base_real
        )
        note = "" if method == "rules" else f"({folds}-fold CV by document)"
        show(f"real-docs, {method}", result.scores, note)
        print(f"hard negatives tagged: {result.hard_negative_errors}")
        if confusion:
            for row in result.confusion:
                for fp in row["false_positives"]:
                    print(f"  FP {row['file'][:36]:36} {fp['theme']:26} {fp['evidence'][:90]}")
                for miss in row["misses"]:
                    text = (miss["candidate"] or "")[:90]
                    print(f"  MISS {row['file'][:34]:34} {miss['theme']:26} {text}")
    for with_rules in (False, True):
        heads = train_heads(real_docs, base_real, vectors, THEMES, rules_in_tuning=with_rules)
        name = "rules + heads" if with_rules else "heads alone"
        cv = seed_cv(
            seed_docs, seed_items, real_docs, bundled, vectors, heads.thresholds, folds, with_rules
        )
        show(f"seed gold, {name}", cv, f"({folds}-fold CV; thresholds tuned on real-docs)")
    print(f"\n(quality section took {time.perf_counter() - started:.0f}s)")


def demo_passages() -> list[str]:
    """Paragraphs from the demo corpus, if it has been written yet."""
    passages = []
    for path in sorted(DEMO_FILES.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        passages += [p.strip() for p in text.split("\n\n") if len(p.strip()) > 40]
    return passages


def generated_passages(n: int, seed: int = 0) -> list[str]:
    """Fictional passages mixing filler with taxonomy vocabulary (3-6 sentences each)."""
    rng = random.Random(seed)
    vocab = [
        p.value
        for theme in load_taxonomy()
        for p in theme.patterns
        if p.kind == "phrase" and len(p.value) > 4
    ]
    out = []
    for _ in range(n):
        sentences = rng.sample(FILLER, rng.randint(2, 4))
        for _ in range(rng.randint(1, 2)):
            sentences.insert(
                rng.randrange(len(sentences) + 1),
                f"Learning about {rng.choice(vocab)} was identified.",
            )
        out.append(" ".join(sentences))
    return out


def measure(label: str, fn, texts: list[str]) -> float:
    start = time.perf_counter()
    fn(texts)
    elapsed = time.perf_counter() - start
    rate = len(texts) / elapsed
    print(f"{label:38s} {len(texts):6d} passages in {elapsed:6.2f}s = {rate:8.0f} passages/s")
    return rate


def speed(n: int) -> None:
    """Throughput of rules, rules + tf-idf model, rules + heads, vs tokenisation."""
    texts = demo_passages()
    source = "demo corpus"
    if len(texts) < 200:
        texts, source = generated_passages(n), "generated"
    texts = (texts * (n // max(1, len(texts)) + 1))[:n]
    avg_chars = sum(map(len, texts)) / len(texts)
    print(f"\nthroughput on {len(texts)} {source} passages (mean {avg_chars:.0f} chars)")
    tagger = Tagger(load_taxonomy())
    tagger.tag_many(texts[:50])  # warm caches
    baseline = measure("spaCy tokenisation (nlp.pipe)", lambda t: list(tokenize_many(t)), texts)
    rules = measure("Tagger.tag_many (rules only)", tagger.tag_many, texts)
    print(f"{'ratio rules / tokenisation':38s} {rules / baseline:.3f}")
    started = time.perf_counter()
    model = train_from_examples(load_training_passages(), theme_ids=THEMES)
    print(f"(trained the tf-idf theme model in {time.perf_counter() - started:.1f}s)")
    combined = Tagger(load_taxonomy(), model=model)
    combined.tag_many(texts[:50])
    both = measure("Tagger.tag_many (rules + tf-idf model)", combined.tag_many, texts)
    print(f"{'ratio rules+model / tokenisation':38s} {both / baseline:.3f}")
    if BUNDLED_HEADS.exists():
        heads = ThemeHeads.load(BUNDLED_HEADS)
        heads.thresholds = np.minimum(heads.thresholds, 0.99)  # score every sentence
        embedder = get_embedder()
        with_heads = Tagger(load_taxonomy(), heads=heads, embed=embedder.encode)
        with_heads.tag_many(texts[:50])
        sub = texts[: max(200, n // 5)]
        rate = measure("Tagger.tag_many (rules + theme heads)", with_heads.tag_many, sub)
        print(f"{'ratio rules+heads / tokenisation':38s} {rate / baseline:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gold-dir", type=Path, default=DEFAULT_GOLD)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--no-quality", action="store_true")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--confusion", action="store_true", help="list FPs and misses (CV)")
    args = parser.parse_args()
    if not args.no_quality:
        if (args.gold_dir / "real-docs.jsonl").exists():
            quality(args.gold_dir, args.folds, args.confusion)
        else:
            print(f"(no gold in {args.gold_dir}; skipping the quality section)")
    if not args.no_speed:
        speed(args.n)


if __name__ == "__main__":
    main()

"""Dev-only benchmark for theme tagging (not part of the package or the test suite).

(a) If the shared gold set exists, print per-theme P/R/F1 for the rules alone.
(b) Measure Tagger.tag_many throughput (rules only, then rules + the tf-idf model) against
    spaCy tokenisation alone through nlp.pipe on the same texts, in the same process, and
    print the ratios.

    .venv/bin/python benchmarks/tagging.py [--gold PATH] [--n 3000] [--no-model]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nlp.classifier import train_from_examples  # noqa: E402
from nlp.training_data import load_training_passages  # noqa: E402
from nlp.evaluate import load_gold, score  # noqa: E402
from nlp.pipeline import tokenize_many  # noqa: E402
from nlp.tagger import MODEL_ONLY_FLOOR, Tagger  # noqa: E402
from nlp.taxonomy import CORE_THEME_IDS, load_taxonomy  # noqa: E402

DEFAULT_GOLD = ROOT.parent / "shared" / "gold" / "seed-passages.jsonl"
DEMO_FILES = ROOT / "corpus" / "demo" / "files"

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


def print_gold_table(path: Path, tagger: Tagger) -> None:
    items = load_gold(path)
    predicted = [{t.theme_id for t in tags} for tags in tagger.tag_many([i.text for i in items])]
    result = score([i.themes for i in items], predicted, CORE_THEME_IDS)
    print(f"gold: {path} ({len(items)} passages), rules only")
    print(f"{'theme':28s} {'P':>6s} {'R':>6s} {'F1':>6s} {'n':>4s}")
    for theme_id, m in result["themes"].items():
        row = f"{m['precision']:6.2f} {m['recall']:6.2f} {m['f1']:6.2f} {m['support']:4d}"
        print(f"{theme_id:28s} {row}")
    for avg in ("micro", "macro"):
        m = result[avg]
        print(f"{avg:28s} {m['precision']:6.3f} {m['recall']:6.3f} {m['f1']:6.3f}")


def model_only_report(path: Path, rules: Tagger) -> None:
    """Every tag the model (trained on the bundled passages only, never on gold) would add to a
    gold passage where no rule fired, by probability, marked TP or fp against gold."""
    items = load_gold(path)
    model = train_from_examples(load_training_passages(), theme_ids=CORE_THEME_IDS)
    fired = [{t.theme_id for t in tags} for tags in rules.tag_many([i.text for i in items])]
    probs = model.predict_proba([i.text for i in items])
    rows = []
    for n, item in enumerate(items):
        for k, theme in enumerate(model.theme_ids):
            threshold = model.thresholds.get(theme, 0.5)
            if theme not in fired[n] and probs[n, k] >= threshold:
                rows.append((float(probs[n, k]), theme in item.themes, theme, item.id))
    print(f"\nmodel-only candidates on gold (floor in use: {MODEL_ONLY_FLOOR})")
    for p, good, theme, item_id in sorted(rows, reverse=True):
        print(f"  p={p:.2f} {'TP' if good else 'fp'} {theme:28s} {item_id}")
    print(f"  {sum(g for _, g, _, _ in rows)} true / {len(rows)} candidates")


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
    print(f"{label:34s} {len(texts):6d} passages in {elapsed:6.2f}s = {rate:8.0f} passages/s")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gold", type=Path, default=DEFAULT_GOLD)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--no-model", action="store_true", help="skip rules + learned model")
    parser.add_argument(
        "--model-only-report",
        action="store_true",
        help="list the tags the model alone would add on gold (trained without gold)",
    )
    args = parser.parse_args()
    tagger = Tagger(load_taxonomy())
    if args.gold.exists():
        print_gold_table(args.gold, tagger)
        if args.model_only_report:
            model_only_report(args.gold, tagger)
            return
    else:
        print(f"(no gold at {args.gold}; skipping quality table)")

    texts = demo_passages()
    source = "demo corpus"
    if len(texts) < 200:
        texts, source = generated_passages(args.n), "generated"
    texts = (texts * (args.n // max(1, len(texts)) + 1))[: args.n]
    avg_chars = sum(map(len, texts)) / len(texts)
    print(f"\nthroughput on {len(texts)} {source} passages (mean {avg_chars:.0f} chars)")
    tagger.tag_many(texts[:50])  # warm caches
    baseline = measure("spaCy tokenisation (nlp.pipe)", lambda t: list(tokenize_many(t)), texts)
    tagging = measure("Tagger.tag_many (rules only)", tagger.tag_many, texts)
    print(f"{'ratio tagging / tokenisation':34s} {tagging / baseline:.3f}")
    if not args.no_model:
        started = time.perf_counter()
        model = train_from_examples(load_training_passages(), theme_ids=CORE_THEME_IDS)
        print(f"(trained the tf-idf theme model in {time.perf_counter() - started:.1f}s)")
        combined = Tagger(load_taxonomy(), model=model)
        combined.tag_many(texts[:50])
        both = measure("Tagger.tag_many (rules + model)", combined.tag_many, texts)
        print(f"{'ratio rules+model / tokenisation':34s} {both / baseline:.3f}")


if __name__ == "__main__":
    main()

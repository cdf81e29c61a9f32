"""Build the shipped theme heads (nlp/data/theme_heads.npz) from the shared gold sets.

Reproducible: same gold, same bundled passages and the same encoder give the same arrays.
The file holds weights only (heads, biases, per-theme thresholds, theme ids, encoder id): no
sentence or vocabulary of the gold goes into the repository. Thresholds for model-only tags come
from inner cross-validation over the gold documents (nlp/head_training.py); a theme whose
model-only tags did not prove precise there keeps the threshold NEVER.

    .venv/bin/python benchmarks/build_theme_heads.py [--gold-dir ../shared/gold] [--out PATH]

`kb train --gold FILE [--passage-gold FILE]` does the same into a knowledge base's own model
folder, adding the people's confirmed and rejected tags.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kb.services.tagging import passages_of  # noqa: E402
from nlp.embeddings import get_embedder  # noqa: E402
from nlp.evaluate import load_document_gold, load_gold, prepare_documents  # noqa: E402
from nlp.head_training import VectorCache, labelled_units, train_heads  # noqa: E402
from nlp.heads import BUNDLED_HEADS, NEVER  # noqa: E402
from nlp.tagger import Tagger  # noqa: E402
from nlp.taxonomy import CORE_THEME_IDS, load_taxonomy  # noqa: E402
from nlp.training_data import load_training_passages  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gold-dir", type=Path, default=ROOT.parent / "shared" / "gold")
    parser.add_argument("--out", type=Path, default=BUNDLED_HEADS)
    args = parser.parse_args()
    themes = list(CORE_THEME_IDS)
    tagger = Tagger(load_taxonomy())
    docs = prepare_documents(
        load_document_gold(args.gold_dir / "real-docs.jsonl"), passages_of, tagger
    )
    seed = load_gold(args.gold_dir / "seed-passages.jsonl")
    base = labelled_units([(e.text, e.positives) for e in load_training_passages()], themes)
    base += labelled_units([(i.text, i.themes) for i in seed], themes)
    embedder = get_embedder()
    heads = train_heads(
        docs, base, VectorCache(embedder.encode), themes, embedder_id=embedder.model_id
    )
    heads.save(args.out)
    alone = {
        t: float(th) for t, th in zip(heads.theme_ids, heads.thresholds, strict=True) if th < NEVER
    }
    print(f"wrote {args.out}: {len(themes)} heads; model-only tags for {alone or 'no theme'}")


if __name__ == "__main__":
    main()

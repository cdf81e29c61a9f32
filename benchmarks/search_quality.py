"""Search quality on the demo corpus: nDCG@10 and recall@10 for bm25, dense and hybrid.

Queries (benchmarks/data/search_queries.yaml) are phrased as a panel member would type them,
not in the documents' own words, with graded judgments per demo file (2 = highly relevant,
1 = partly). Results are judged at review level, the way the panel reads them: passages are
ranked, then collapsed to their document in order of first appearance.

    .venv/bin/python benchmarks/search_quality.py [--top-passages 60] [--backends torch onnx-int8]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

QUERIES = Path(__file__).parent / "data" / "search_queries.yaml"
MODES = ("bm25", "dense", "hybrid")


def dcg(gains: list[float]) -> float:
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def ndcg_at(ranked: list[str], relevant: dict[str, int], k: int = 10) -> float:
    ideal = dcg(sorted(relevant.values(), reverse=True)[:k])
    return dcg([relevant.get(name, 0) for name in ranked[:k]]) / ideal if ideal else 0.0


def recall_at(ranked: list[str], relevant: dict[str, int], k: int = 10) -> float:
    return len(set(ranked[:k]) & set(relevant)) / len(relevant) if relevant else 0.0


def load_corpus() -> object:
    """A fresh SQLite knowledge base holding the demo corpus, tagged and embedded."""
    os.environ["KB_HOME"] = tempfile.mkdtemp(prefix="kb-quality-")
    os.environ.pop("KB_DATABASE_URL", None)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from nlp.embeddings import default_cache_dir

    # One exported ONNX model for every fresh KB_HOME of this run (and of later runs).
    os.environ.setdefault("KB_EMBEDDING_CACHE", str(default_cache_dir()))
    from corpus.demo import FILES_DIR, MANIFEST
    from corpus.metadata import load_manifest
    from kb import db
    from kb.config import get_settings
    from kb.services.analysis import passage_hook
    from kb.services.ingest import IngestOptions, ingest_paths

    get_settings.cache_clear()
    db.get_engine.cache_clear()
    engine = db.get_engine()
    db.init_db(engine)
    report = ingest_paths(
        engine=engine,
        paths=[FILES_DIR],
        options=IngestOptions(manifest=load_manifest(MANIFEST)),
        on_passages=passage_hook(get_settings()),
    )
    if report.failed:
        raise SystemExit(f"demo ingest failed: {report.failed}")
    return engine


def ranked_files(session, query: str, mode: str, top_passages: int) -> list[str]:  # type: ignore[no-untyped-def]
    from sqlmodel import select

    from kb.models import Document, Review
    from kb.services.access import Principal
    from kb.services.search import search

    hits = search(
        session,
        principal=Principal.system(),
        query=query,
        mode=mode,  # type: ignore[arg-type]
        top_k=top_passages,
    )
    names: list[str] = []
    for hit in hits:
        review = session.get(Review, hit.review_id)
        name = session.exec(
            select(Document.source_name).where(Document.id == review.document_id)
        ).one()
        if name not in names:
            names.append(name)
    return names


def evaluate(queries: list[dict], top_passages: int, verbose: bool) -> dict[str, dict]:
    """nDCG@10 and recall@10 per mode over a freshly built corpus (current backend)."""
    engine = load_corpus()
    from sqlmodel import Session

    totals = {mode: {"ndcg": 0.0, "recall": 0.0} for mode in MODES}
    with Session(engine) as session:
        if verbose:
            print(f"{'query':58} " + " ".join(f"{m:>8}" for m in MODES))
        for item in queries:
            relevant = {name: int(grade) for name, grade in item["relevant"].items()}
            row = []
            for mode in MODES:
                ranked = ranked_files(session, item["query"], mode, top_passages)
                score = ndcg_at(ranked, relevant)
                totals[mode]["ndcg"] += score
                totals[mode]["recall"] += recall_at(ranked, relevant)
                row.append(score)
            if verbose:
                print(f"{item['query'][:58]:58} " + " ".join(f"{s:8.3f}" for s in row))
    n = len(queries)
    return {mode: {k: v / n for k, v in totals[mode].items()} for mode in MODES}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--top-passages", type=int, default=60)
    parser.add_argument(
        "--backends",
        nargs="+",
        default=None,
        help="compare embedding backends in one run, e.g. --backends torch onnx-int8",
    )
    args = parser.parse_args(argv)
    queries = yaml.safe_load(QUERIES.read_text(encoding="utf-8"))
    backends = args.backends or [os.environ.get("KB_EMBEDDING_BACKEND", "auto")]
    results = {}
    for backend in backends:
        os.environ["KB_EMBEDDING_BACKEND"] = backend
        results[backend] = evaluate(queries, args.top_passages, verbose=len(backends) == 1)
        print(f"\n{len(queries)} queries, review-level judgments, embedding backend {backend}")
        for mode in MODES:
            figures = results[backend][mode]
            print(f"{mode:7} nDCG@10 {figures['ndcg']:.3f}  recall@10 {figures['recall']:.3f}")
        ratio = results[backend]["hybrid"]["ndcg"] / max(results[backend]["bm25"]["ndcg"], 1e-9)
        print(f"hybrid / bm25 nDCG@10 ratio: {ratio:.2f} (goal >= 1.10)")
    if len(backends) > 1:
        first = backends[0]
        for backend in backends[1:]:
            delta = results[backend]["hybrid"]["ndcg"] - results[first]["hybrid"]["ndcg"]
            print(f"hybrid nDCG@10 {backend} - {first}: {delta:+.4f} (goal: no worse than -0.01)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

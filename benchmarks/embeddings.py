"""Embedding throughput: the old path (torch) against the new one (int8 ONNX), in one run.

Passages are the demo corpus's own (read and segmented as ingest does, so their length mix is
real), repeated up to ``--passages``. For each backend it prints passages/s, the ratio to
torch, and how close the vectors are (mean and minimum cosine to torch's). Issue 13's goal:
ratio ≥ 3x; ranking quality is checked by benchmarks/search_quality.py --backends.

    .venv/bin/python benchmarks/embeddings.py [--passages 2000] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def demo_passages(limit: int) -> list[str]:
    """Passage texts of the demo corpus, cycled to ``limit``."""
    from corpus.demo import FILES_DIR
    from corpus.readers import read_document
    from corpus.segment import segment

    texts: list[str] = []
    for path in sorted(FILES_DIR.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            doc = read_document(path)
            texts += [p.text for s in segment(doc) for p in s.passages]
    return [texts[i % len(texts)] for i in range(limit)]


def timed(embedder, texts: list[str]):  # type: ignore[no-untyped-def]
    embedder.encode(texts[:64])  # load the model and warm up outside the clock
    started = time.perf_counter()
    vectors = embedder.encode(texts)
    return vectors, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=None, help="default: every core")
    args = parser.parse_args()

    from nlp.embeddings import Embedder, _available_cores

    texts = demo_passages(args.passages)
    chars = sum(len(t) for t in texts) / len(texts)
    print(f"{len(texts)} passages (mean {chars:.0f} chars), {_available_cores()} cores")
    baseline, base_s = timed(Embedder(backend="torch", threads=args.threads), texts)
    print(f"torch      {len(texts) / base_s:8.1f} passages/s  {base_s:6.1f} s  (baseline)")
    fast = Embedder(backend="onnx-int8", threads=args.threads)
    vectors, fast_s = timed(fast, texts)
    cosines = (vectors * baseline).sum(axis=1)
    print(
        f"onnx-int8  {len(texts) / fast_s:8.1f} passages/s  {fast_s:6.1f} s  "
        f"ratio {base_s / fast_s:.2f}x  cosine to torch mean {cosines.mean():.4f} "
        f"min {cosines.min():.4f}"
    )


if __name__ == "__main__":
    main()

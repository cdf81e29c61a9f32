"""Embedding throughput: the path before issue 13 against today's, in one run.

"Old" is the embedding path as it was at commit 35ea0a3 (nlp/embeddings.py before 8892b2f),
reproduced as that code ran it: sentence-transformers ``encode`` over the fp32 torch model,
``batch_size=64`` (sentence-transformers sorts the texts by length into those batches itself),
``normalize_embeddings=True``, and ``torch.set_num_threads(cores)`` for any call of more than
8 texts. Issue 13 describes that path as "torch set to 1 thread" (the code did so only where
OMP_NUM_THREADS=1 was set, as benchmarks/real_documents.py does); the 1-thread row is printed
for reference, but the goal's ratio is taken against the all-cores row, the stronger baseline.

Rows: old (all cores); old at 1 thread (reference); torch through today's Embedder; int8 ONNX
in batches of 16 length-sorted neighbours (the batching trade-off); int8 ONNX one text per
call on a thread per core (today's default path). Each row prints passages/s (wall clock),
passages per CPU-second of this process (steadier on a shared machine), the ratio to old, and
the mean and minimum cosine of its vectors to old's fp32 vectors. Issue 13's goal: ratio
>= 3x with hybrid nDCG@10 within 0.01 (benchmarks/search_quality.py --backends torch
onnx-int8).

Passages are the demo corpus's own, read and segmented as ingest does (so their length mix is
real) and deduplicated, so no path gains from repeats (today's Embedder embeds a repeated text
once; ingest measures that). Up to ``--passages`` of them are used.

Rows run interleaved (``--rounds`` slices, every row on slice k before slice k+1), so a
burst of load from other processes on a shared machine hits every row alike. Slices must
stay large: the old path pads each batch of 64 to its longest text, and sentence-transformers
sorts by length only within one call, so cutting the passages into slices of 50 made every
batch span the whole length mix and halved torch's work per CPU-second (17.7 against 31.9
passages, one thread, same 300 passages, same run). At 35ea0a3 ingest passed a document's
passages in one call, so the default is two slices of 300 (``--passages 600 --rounds 2``).

    .venv/bin/python benchmarks/embeddings.py [--passages 600] [--rounds 2] [--threads N]
        [--no-one-thread]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def demo_passages(limit: int) -> list[str]:
    """Distinct passage texts of the demo corpus, in reading order, at most ``limit``."""
    from corpus.demo import FILES_DIR
    from corpus.readers import read_document
    from corpus.segment import segment

    texts: list[str] = []
    for path in sorted(FILES_DIR.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            doc = read_document(path)
            texts += [p.text for s in segment(doc) for p in s.passages]
    return list(dict.fromkeys(texts))[:limit]


def old_path(threads: int) -> Callable[[list[str]], np.ndarray]:
    """nlp/embeddings.py at 35ea0a3: sentence-transformers over fp32 torch, as it was called."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    from nlp.embeddings import default_model_path

    hf_logging.disable_progress_bar()
    model = SentenceTransformer(str(default_model_path()), device="cpu", local_files_only=True)
    model.eval()

    def encode(texts: list[str]) -> np.ndarray:
        torch.set_num_threads(1 if len(texts) <= 8 else threads)  # the old _set_threads
        vectors = model.encode(
            list(texts),
            batch_size=64,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    return encode


def interleaved(
    rows: list[tuple[str, Callable[[list[str]], np.ndarray]]], texts: list[str], rounds: int
) -> list[tuple[np.ndarray, float, float]]:
    """(vectors, wall seconds, CPU seconds of this process) per row.

    The texts are cut into ``rounds`` slices and every row runs slice k before any row runs
    slice k+1, so a burst of load from other processes on the shared machine hits every row
    alike instead of whichever row happened to be running. Warm-up is outside the clock.
    """
    for _, encode in rows:
        encode(texts[:16])
    dim = rows[0][1](texts[:1]).shape[1]
    vectors = [np.empty((len(texts), dim), dtype=np.float32) for _ in rows]
    wall, cpu = [0.0] * len(rows), [0.0] * len(rows)
    step = -(-len(texts) // max(1, rounds))
    for start in range(0, len(texts), step):
        part = texts[start : start + step]
        for i, (_, encode) in enumerate(rows):
            w, c = time.perf_counter(), time.process_time()
            vectors[i][start : start + len(part)] = encode(part)
            wall[i] += time.perf_counter() - w
            cpu[i] += time.process_time() - c
    return list(zip(vectors, wall, cpu, strict=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=600)
    parser.add_argument("--threads", type=int, default=None, help="default: every core")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved slices (see above)")
    parser.add_argument(
        "--no-one-thread", action="store_true", help="skip the old path's 1-thread reference row"
    )
    args = parser.parse_args(argv)

    from nlp.embeddings import Embedder, _available_cores

    cores = args.threads or _available_cores()
    texts = demo_passages(args.passages)
    chars = sum(len(t) for t in texts) / len(texts)
    per_slice = -(-len(texts) // max(1, args.rounds))
    print(
        f"{len(texts)} distinct passages (mean {chars:.0f} chars), {cores} threads, "
        f"{args.rounds} interleaved slices of {per_slice}"
    )
    print(f"load average before: {Path('/proc/loadavg').read_text().strip()}")
    old = old_path(cores)
    onnx = Embedder(backend="onnx-int8", threads=args.threads)
    rows: list[tuple[str, Callable[[list[str]], np.ndarray]]] = [
        (f"old 35ea0a3 (torch, {cores} thr.)", old),
    ]
    if not args.no_one_thread:
        rows.append(("old, torch 1 thread (ref.)", old_path(1)))
    rows += [
        ("torch, today's Embedder", Embedder(backend="torch", threads=args.threads).encode),
        ("onnx-int8, batches of 16", lambda t: onnx.encode(t, batch_size=16)),
        ("onnx-int8, 1 text per call", onnx.encode),
    ]
    results = interleaved(rows, texts, args.rounds)
    reference, base_s = results[0][0], results[0][1]
    for (label, _), (vectors, wall, cpu) in zip(rows, results, strict=True):
        cosines = (vectors * reference).sum(axis=1)
        print(
            f"{label:31} {len(texts) / wall:7.1f} passages/s {len(texts) / cpu:7.1f} /cpu-s "
            f"{wall:6.1f} s  ratio {base_s / wall:5.2f}x  cosine to old mean "
            f"{cosines.mean():.4f} min {cosines.min():.4f}",
            flush=True,
        )
    print(f"load average after: {Path('/proc/loadavg').read_text().strip()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Search-speed benchmark for nlp.ranking.HybridIndex (+ query embedding with the real model).

Usage::

    .venv/bin/python benchmarks/search_speed.py --sizes 10000 100000

What it measures, and why that way:

* real embedding throughput on ~500 synthetic passages (passages/s), because embedding the
  corpus is the slow part of ingest and sets how long a full re-embed takes;
* index build (tokenise + append, then the lazy BM25 matrix build) in passages/s; vectors for
  the big corpora are random unit vectors — dense search cost does not depend on their values,
  and embedding 100k passages on 2 cores would take far longer than the benchmark may;
* query latency p50/p95 over ~200 queries for bm25 / dense / hybrid, with the query embedding
  included for dense and hybrid (bm25 needs none), unrestricted and under an 80 % allow-set
  (with a cached ``allowed_key``, and without one to show the set→mask conversion cost);
* a same-process baseline: brute-force numpy dense search (matrix @ q + argpartition) with a
  precomputed query vector, and the latency ratio of each mode to it;
* memory: process RSS after each build and the peak (``ru_maxrss``), model included.

Budget: the 50 ms p95 goal is for 100k passages on 2 cores including query embedding.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nlp.embeddings import Embedder, get_embedder  # noqa: E402
from nlp.ranking import HybridIndex  # noqa: E402

AGENCIES = [
    "health visitor", "GP", "midwife", "school nurse", "children's social care", "police",
    "the MASH", "early help", "CAMHS", "the hospital", "the school", "housing", "probation",
    "adult mental health services", "the ICB", "the designated nurse", "the LADO", "A&E",
]  # fmt: skip
PEOPLE = [
    "mother", "father", "stepfather", "baby", "infant", "child", "sibling", "grandmother",
    "partner", "male carer", "foster carer", "young person", "family", "parents",
]  # fmt: skip
CONCERNS = [
    "domestic abuse", "neglect", "parental mental ill health", "substance misuse",
    "non-accidental injury", "bruising", "missed appointments", "poor home conditions",
    "criminal exploitation", "sexual exploitation", "self-harm", "school absence",
    "elective home education", "unsafe sleeping", "infant crying", "coercive control",
    "alcohol misuse", "homelessness", "disguised compliance", "online harm",
]  # fmt: skip
ACTIONS = [
    "did not share information about", "made a referral about", "assessed",
    "did not consider", "escalated concerns about", "recorded", "did not identify",
    "held a strategy discussion about", "completed a home visit regarding",
    "was not curious about", "closed the case despite", "offered support for",
]  # fmt: skip
LEARNING = [
    "Professional curiosity was lacking.", "The voice of the child was not heard.",
    "Hidden men were not considered in the assessment.", "Information sharing was poor.",
    "The child was not brought to health appointments.", "Thresholds were applied unevenly.",
    "Supervision did not challenge the plan.", "Pre-birth assessment started late.",
    "The toxic trio was present throughout.", "Culture and ethnicity were not explored.",
]  # fmt: skip
TEMPLATES = [
    "The {agency} {action} {concern} involving the {person}.",
    "In {month} the {person} told the {agency} about {concern}.",
    "There was evidence of {concern} and {concern2}; the {agency} {action} the {person}.",
    "{learning}",
    "The {agency} and the {agency2} disagreed about {concern} {tail}.",
    "Records show {tail} {tail2} linked to {concern}.",
]
MONTHS = ["January", "March", "May", "July", "September", "November"]


@dataclass
class Timing:
    """Latency summary of one scenario, in milliseconds."""

    name: str
    samples: list[float]

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        return float(np.percentile(self.samples, 95))


def _tail_vocab(rng: random.Random, size: int = 30_000) -> list[str]:
    """Pseudo-words for the long tail of real corpora (names, places, rare terms)."""
    syllables = ["ka", "lo", "mi", "ren", "sha", "tor", "vel", "din", "bro", "ul", "ost", "ya"]
    return ["".join(rng.choices(syllables, k=rng.randint(2, 4))) for _ in range(size)]


def make_corpus(n: int, seed: int = 7) -> list[str]:
    """``n`` fictional passages (~60-90 words) from templates; tail words follow a Zipf law."""
    rng = random.Random(seed)
    tail = _tail_vocab(rng)
    weights = [1.0 / (i + 1) for i in range(len(tail))]
    tails = rng.choices(tail, weights=weights, k=n * 14)
    passages = []
    for i in range(n):
        t = iter(tails[i * 14 : (i + 1) * 14])
        sentences = [
            rng.choice(TEMPLATES).format(
                agency=rng.choice(AGENCIES),
                agency2=rng.choice(AGENCIES),
                action=rng.choice(ACTIONS),
                concern=rng.choice(CONCERNS),
                concern2=rng.choice(CONCERNS),
                person=rng.choice(PEOPLE),
                month=rng.choice(MONTHS),
                learning=rng.choice(LEARNING),
                tail=next(t),
                tail2=next(t),
            )  # fmt: skip
            for _ in range(rng.randint(4, 7))
        ]
        passages.append(" ".join(sentences))
    return passages


def make_queries(n: int, seed: int = 11) -> list[str]:
    """Short panel-style queries mixing domain phrases."""
    rng = random.Random(seed)
    pool = CONCERNS + PEOPLE + [a for a in AGENCIES if " " in a] + ["hidden men", "not brought"]
    return [" ".join(rng.sample(pool, rng.randint(1, 3))) for _ in range(n)]


def random_unit_vectors(n: int, dim: int, seed: int = 3) -> np.ndarray:
    """Random unit vectors: dense-search cost is independent of the values."""
    vecs = np.random.default_rng(seed).standard_normal((n, dim), dtype=np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return vecs


def rss_mb() -> float:
    """Current resident set size (Linux /proc), MB."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (ru_maxrss is KB on Linux), MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _load() -> str:
    """Load average: other processes on a 2-core box distort every figure, so print it."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) {five:.1f} (5 min)"


def time_each(name: str, queries: list[str], run: Callable[[str], object]) -> Timing:
    """Run ``run`` once per query after a short warm-up; per-query wall time in ms."""
    for q in queries[:5]:
        run(q)
    samples = []
    for q in queries:
        start = time.perf_counter()
        run(q)
        samples.append((time.perf_counter() - start) * 1000)
    return Timing(name, samples)


def measure_embedding(embedder: Embedder, n: int) -> float:
    """Real-model throughput on ``n`` synthetic passages, passages/s."""
    texts = make_corpus(n, seed=99)
    embedder.encode(texts[:16])  # load + warm-up
    start = time.perf_counter()
    embedder.encode(texts)
    return n / (time.perf_counter() - start)


def build_index(texts: list[str], vecs: np.ndarray, batch: int = 5000) -> tuple[HybridIndex, dict]:
    """Add in batches (as ingest does), then force the lazy BM25 rebuild; return timings."""
    index = HybridIndex(dim=vecs.shape[1])
    start = time.perf_counter()
    for lo in range(0, len(texts), batch):
        ids = list(range(lo, min(lo + batch, len(texts))))
        index.add(ids, texts[lo : lo + batch], vecs[lo : lo + batch])
    added = time.perf_counter()
    index.search("warm", None, mode="bm25")  # triggers the CSC rebuild
    built = time.perf_counter()
    return index, {"add_s": added - start, "rebuild_s": built - added, "total_s": built - start}


def run_size(embedder: Embedder, n: int, queries: list[str]) -> None:
    """Build an n-passage index and print build, latency and memory figures."""
    print(f"\n=== {n:,} passages ===")
    t0 = time.perf_counter()
    texts = make_corpus(n)
    vecs = random_unit_vectors(n, embedder.dim)
    print(f"corpus generated in {time.perf_counter() - t0:.1f}s")
    before = rss_mb()
    index, build = build_index(texts, vecs)
    del texts
    gc.collect()
    print(
        f"build: {n / build['total_s']:,.0f} passages/s "
        f"(add {build['add_s']:.1f}s, BM25 matrix rebuild {build['rebuild_s']:.2f}s); "
        f"index arrays {index.nbytes / 2**20:.0f} MB, RSS +{rss_mb() - before:.0f} MB"
    )
    allowed = set(np.random.default_rng(5).choice(n, size=int(n * 0.8), replace=False).tolist())
    timings = time_scenarios(index, vecs, embedder, queries, allowed)
    base = timings[0].p50
    print(f"{'scenario':<48} {'p50 ms':>8} {'p95 ms':>8} {'p50/baseline':>13}")
    for t in timings:
        print(f"{t.name:<48} {t.p50:8.2f} {t.p95:8.2f} {t.p50 / base:12.1f}x")
    print(f"RSS now {rss_mb():.0f} MB, peak so far {peak_rss_mb():.0f} MB; {_load()}")


def time_scenarios(
    index: HybridIndex,
    vecs: np.ndarray,
    embedder: Embedder,
    queries: list[str],
    allowed: set[int],
) -> list[Timing]:
    """Latency of each search mode; the first entry is the brute-force numpy baseline."""
    qvecs = {q: embedder.encode_one(q) for q in queries}
    embed = embedder.encode_one

    def brute(q: str) -> np.ndarray:
        scores = vecs @ qvecs[q]
        top = np.argpartition(-scores, 10)[:10]
        return top[np.argsort(-scores[top])]

    return [
        time_each("baseline: numpy brute-force dense (no embedding)", queries, brute),
        time_each("query embedding only", queries, embed),
        time_each("bm25 (no embedding needed)", queries,
                  lambda q: index.search(q, None, mode="bm25")),
        time_each("dense incl. embedding", queries,
                  lambda q: index.search(q, embed(q), mode="dense")),
        time_each("hybrid incl. embedding", queries, lambda q: index.search(q, embed(q))),
        time_each("hybrid, precomputed query vector", queries,
                  lambda q: index.search(q, qvecs[q])),
        time_each("hybrid incl. emb., 80% allow-set, cached key", queries,
                  lambda q: index.search(q, embed(q), allowed=allowed, allowed_key="bench")),
        time_each("hybrid, precomputed vec, 80% allow-set, no key", queries,
                  lambda q: index.search(q, qvecs[q], allowed=allowed)),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--embed-sample", type=int, default=500)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    print(f"python {sys.version.split()[0]}, {len(os.sched_getaffinity(0))} cores, {_load()}")
    rss0 = rss_mb()
    embedder = get_embedder()
    t = time.perf_counter()
    embedder.encode(["warm up"])
    import torch

    print(
        f"model {embedder.model_id} loaded in {time.perf_counter() - t:.1f}s, "
        f"torch threads {torch.get_num_threads()}, RSS +{rss_mb() - rss0:.0f} MB"
    )
    rate = measure_embedding(embedder, args.embed_sample)
    print(f"real embedding throughput: {rate:,.0f} passages/s on {args.embed_sample} passages "
          f"(100k passages ≈ {100_000 / rate / 60:.0f} min)")  # fmt: skip
    queries = make_queries(args.queries)
    for n in args.sizes:
        run_size(embedder, n, queries)
    print(f"\npeak RSS {peak_rss_mb():.0f} MB; total {time.perf_counter() - start:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Memory of N search workers at 100k passages: each with its own index vs the shared files.

Usage::

    .venv/bin/python benchmarks/index_memory.py --passages 100000 --workers 4

What it does, in one run:

* synthesises ``--passages`` fictional passages (benchmarks/search_speed.py's generator; random
  unit vectors stored as the configured model's embeddings, so nothing is re-embedded: dense
  search costs the same whatever the values) into a temporary KB_HOME with a SQLite database,
  a tenth of the reviews embargoed so searches run under real allow-sets;
* starts worker processes the way ``kb serve --workers N`` does (separate interpreters, each
  importing kb, loading the query embedder and the search index — ``kb.services.search.warm_up``
  — then answering a few searches as an admin and as a viewer), keeps them all alive and reads
  each one's /proc/PID/smaps_rollup;
* for three set-ups: ``model only`` (the embedder and imports, no index: what a worker costs
  before any passage), ``in-memory`` (KB_INDEX_FILES=false: the old path, every worker builds
  its own index) and ``shared files`` (the index memory-mapped from KB_HOME/index, built once
  beforehand by a worker that then exits), each with 1 worker alone and N workers together.

PSS (proportional set size) is the figure to compare: a page shared by k processes counts 1/k
in each, so the sum over workers is what the machine really spends. RSS counts shared pages in
full in every process (it double-counts the mapped index); USS is what each worker alone holds
(what killing it would free). The goal (issue 13): N=4 workers together ≤ 1.5x one worker.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from search_speed import make_corpus, make_queries, random_unit_vectors  # noqa: E402

PER_REVIEW = 500


# --------------------------------------------------------------------------- data


def synthesise(home: Path, passages: int) -> str:
    """A KB_HOME whose database holds ``passages`` embedded passages; returns the model id."""
    from sqlalchemy import insert
    from sqlmodel import Session

    from kb.db import get_engine, init_db
    from kb.models import Document, Passage, Review, ReviewStatus
    from kb.services.embedding import embedder_for

    engine = get_engine()
    init_db(engine)
    embedder = embedder_for()
    model_id, dim = embedder.model_id, embedder.dim
    texts = make_corpus(passages)
    vectors = random_unit_vectors(passages, dim)
    rng = random.Random(5)
    with Session(engine) as session:
        for first in range(0, passages, PER_REVIEW):
            n = first // PER_REVIEW
            document = Document(
                source_name=f"synthetic-{n:05d}.md",
                format="markdown",
                sha256=f"{rng.getrandbits(256):064x}",
                text=f"Synthetic review {n}",
                title=f"Synthetic review {n}",
                size_bytes=20,
            )
            session.add(document)
            session.flush()
            review = Review(
                document_id=document.id,  # type: ignore[arg-type]
                pseudonym=f"Child S{n}",
                title=f"Synthetic review {n}",
                status=ReviewStatus.EMBARGOED if n % 10 == 0 else ReviewStatus.PUBLISHED,
                year=2012 + n % 12,
            )
            session.add(review)
            session.flush()
            rows = [
                {
                    "review_id": review.id,
                    "document_id": document.id,
                    "text": texts[i],
                    "order": i - first,
                    "embedding": vectors[i].astype(np.float32).tobytes(),
                    "embedding_model": model_id,
                }
                for i in range(first, min(first + PER_REVIEW, passages))
            ]
            session.connection().execute(insert(Passage), rows)
        session.commit()
    engine.dispose()
    return model_id


# --------------------------------------------------------------------------- a worker


def worker(with_index: bool, queries: int, *, forked: bool = False) -> int:
    """One search worker: load what ``kb serve``'s warm-up loads, search, report, wait."""
    from sqlmodel import Session

    import web.app  # noqa: F401 - what a ``kb serve`` worker imports before its warm-up
    from kb.db import get_engine
    from kb.models import Role
    from kb.services import search
    from kb.services.access import Principal
    from kb.services.embedding import embedder_for

    started = time.perf_counter()
    engine = get_engine()
    embedder = embedder_for()
    search.query_vector(embedder, "warm up")
    report: dict[str, object] = {"pid": os.getpid(), "backend": embedder.backend}
    if with_index:
        search.warm_up(engine)
        principals = [
            Principal(username="admin", role=Role.ADMIN),
            Principal(username="viewer", role=Role.VIEWER),
        ]
        with Session(engine) as session:
            for i, query in enumerate(make_queries(queries)):
                search.search(session, principal=principals[i % 2], query=query, top_k=10)
        index = search.INDEXES.get(engine, embedder)
        report.update(rows=len(index), base_rows=index.base_rows, delta_rows=index.delta_rows)
    report["torch_loaded"] = "torch" in sys.modules
    report["seconds"] = round(time.perf_counter() - started, 1)
    # one write() of a short line: forked siblings share this pipe, and print() may write the
    # text and its newline separately, interleaving two reports on one line
    os.write(sys.stdout.fileno(), (json.dumps(report) + "\n").encode())
    if forked:
        signal.pause()  # siblings share stdin; the parent ends each one with SIGTERM
    sys.stdin.readline()  # stay alive (and mapped) until the parent has measured everyone
    return 0


def zygote(count: int, with_index: bool, queries: int) -> int:
    """Import what a server worker imports once, then fork ``count`` workers from it.

    Not how ``kb serve`` starts workers today (uvicorn spawns fresh interpreters): it shows
    how much a pre-forking server would share — imported code and objects stay copy-on-write
    pages of this parent. The model and index are still loaded in each child (onnxruntime's
    threads do not survive a fork).
    """
    import web.app  # noqa: F401

    gc.collect()
    gc.freeze()  # keep the collector from writing to (and so un-sharing) every object
    children = []
    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            try:
                worker(with_index, queries, forked=True)
            finally:
                os._exit(0)
        children.append(pid)
    sys.stdin.readline()
    for pid in children:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
    return 0


# --------------------------------------------------------------------------- measuring


@dataclass
class Memory:
    """One process's memory from /proc/PID/smaps_rollup, in MB."""

    rss: float
    pss: float
    uss: float
    pss_file: float

    @classmethod
    def of(cls, pid: int) -> Memory:
        fields: dict[str, float] = {}
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 3 and parts[-1] == "kB":
                    fields[parts[0].rstrip(":")] = int(parts[1]) / 1024
        uss = fields.get("Private_Clean", 0.0) + fields.get("Private_Dirty", 0.0)
        return cls(fields["Rss"], fields["Pss"], uss, fields.get("Pss_File", 0.0))


def run_workers(
    env: dict[str, str], count: int, with_index: bool, queries: int, *, fork: bool = False
) -> list[dict]:
    """Start ``count`` workers at once, wait until all answered, measure them, stop them.

    With ``fork`` one parent process forks them (its own memory is counted too, as an extra
    report, since the workers share it).
    """
    command = [sys.executable, __file__, "--worker", "--queries", str(queries)]
    if not with_index:
        command.append("--no-index")
    if fork:
        command += ["--fork", str(count)]
    procs = [
        subprocess.Popen(command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(1 if fork else count)
    ]
    reports = []
    try:
        for i in range(count):
            proc = procs[0 if fork else i]
            line = proc.stdout.readline()  # type: ignore[union-attr]
            if not line:
                raise SystemExit(f"worker {proc.pid} died (exit {proc.wait()})")
            reports.append(json.loads(line))
        time.sleep(1.0)  # let every worker settle before reading its memory
        for report in reports:
            report["memory"] = Memory.of(int(report["pid"]))
        if fork:
            reports.append({"pid": procs[0].pid, "seconds": 0, "memory": Memory.of(procs[0].pid)})
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.stdin.write("quit\n")  # type: ignore[union-attr]
                proc.stdin.flush()  # type: ignore[union-attr]
        for proc in procs:
            proc.wait(timeout=120)
    return reports


def _row(name: str, reports: list[dict], single_pss: float | None) -> float:
    mems = [r["memory"] for r in reports]
    pss = sum(m.pss for m in mems)
    ratio = f"{pss / single_pss:5.2f}x" if single_pss else "  1.00x"
    workers = sum(1 for r in reports if "backend" in r)  # not the forking parent
    print(
        f"{name:<28} {workers:>3} {sum(m.rss for m in mems):>9.0f} {pss:>9.0f} "
        f"{sum(m.uss for m in mems):>9.0f} {sum(m.pss_file for m in mems):>9.0f} {ratio:>9} "
        f"{max(r['seconds'] for r in reports):>7.1f}"
    )
    return pss


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--queries", type=int, default=20, help="searches each worker answers")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-index", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--fork", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker and args.fork:
        return zygote(args.fork, not args.no_index, args.queries)
    if args.worker:
        return worker(not args.no_index, args.queries)

    with tempfile.TemporaryDirectory(prefix="kb-index-memory-") as tmp:
        home = Path(tmp)
        env = {**os.environ, "KB_HOME": str(home), "HF_HUB_OFFLINE": "1", "KB_LOG_LEVEL": "WARNING"}
        env.pop("KB_DATABASE_URL", None)
        env["PYTHONPATH"] = str(ROOT)
        os.environ.update(KB_HOME=str(home), HF_HUB_OFFLINE="1")
        os.environ.pop("KB_DATABASE_URL", None)
        started = time.perf_counter()
        model_id = synthesise(home, args.passages)
        print(
            f"{args.passages:,} passages synthesised in {time.perf_counter() - started:.0f}s "
            f"(model {model_id}); {len(os.sched_getaffinity(0))} cores, "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        memory_env = {**env, "KB_INDEX_FILES": "false"}
        files_env = {**env, "KB_INDEX_FILES": "true"}
        t = time.perf_counter()
        builder = run_workers(files_env, 1, True, 2)[0]
        build_s = time.perf_counter() - t
        index_mb = sum(f.stat().st_size for f in (home / "index").rglob("*.npy")) / 2**20
        print(
            f"shared files built by one worker in {build_s:.0f}s: {index_mb:.0f} MB of .npy "
            f"(that builder's PSS {builder['memory'].pss:.0f} MB while it held the built index)"
        )
        header = (
            f"\n{'set-up':<28} {'n':>3} {'RSS MB':>9} {'PSS MB':>9} {'USS MB':>9} "
            f"{'PSS file':>9} {'PSS/1':>9} {'ready s':>7}"
        )
        print(header)
        results = {}
        for name, run_env, with_index, fork in (
            ("model only (no index)", memory_env, False, False),
            ("in-memory index (old)", memory_env, True, False),
            ("shared files (new)", files_env, True, False),
            ("shared files, forked", files_env, True, True),
        ):
            one = run_workers(run_env, 1, with_index, args.queries, fork=fork)
            single = _row(name, one, None)
            many = run_workers(run_env, args.workers, with_index, args.queries, fork=fork)
            together = _row(name, many, single)
            results[name] = (single, together, one[0])
        print_summary(results, args.workers)
    return 0


def print_summary(results: dict[str, tuple[float, float, dict]], workers: int) -> None:
    """Ratios, the index's own share, and whether the goal is met, in plain words."""
    base_one, base_many, base = results["model only (no index)"]
    print(f"\nworker backend {base['backend']}, torch imported by a search worker: ", end="")
    print(results["shared files (new)"][2]["torch_loaded"])
    for name in ("in-memory index (old)", "shared files (new)", "shared files, forked"):
        one, many, report = results[name]
        verdict = "met" if many <= 1.5 * one else "NOT met"
        print(
            f"{name}: {workers} workers {many:.0f} MB PSS = {many / one:.2f}x one worker "
            f"({one:.0f} MB) -> goal <= 1.5x {verdict} "
            f"(rows {report.get('rows')}, mapped base {report.get('base_rows')})"
        )
        if not name.endswith("forked"):
            index_one, index_many = one - base_one, many - base_many
            print(
                f"  the index's own share (minus the model-only run): {index_many:.0f} MB for "
                f"{workers} vs {index_one:.0f} MB for one = "
                f"{index_many / max(index_one, 1e-9):.2f}x"
            )
    old_many, new_many = results["in-memory index (old)"][1], results["shared files (new)"][1]
    print(
        f"{workers} workers together: shared files use {new_many:.0f} MB PSS vs {old_many:.0f} MB "
        f"in memory ({old_many / new_many:.2f}x less)"
    )


if __name__ == "__main__":
    raise SystemExit(main())

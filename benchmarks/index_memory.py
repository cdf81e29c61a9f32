"""Memory of N search workers at 100k passages: ``kb serve`` itself, and the set-ups before it.

Usage::

    .venv/bin/python benchmarks/index_memory.py --passages 100000 --workers 4 [--all] [--smaps]

What it does, in one run:

* synthesises ``--passages`` fictional passages (benchmarks/search_speed.py's generator; random
  unit vectors stored as the configured model's embeddings, so nothing is re-embedded: dense
  search costs the same whatever the values) into a temporary KB_HOME with a SQLite database,
  a tenth of the reviews embargoed so searches run under real allow-sets, and two logins
  (an admin and a viewer);
* builds the shared index files once (KB_HOME/index, by a worker that then exits);
* ``kb serve (pre-forked)``: the real thing. Starts ``kb serve --workers 1`` and then
  ``--workers 4`` (``--no-worker``: the ingest job process is no part of serving searches),
  logs in as the admin and the viewer over HTTP, sends searches on fresh connections until
  every worker has answered ``--queries`` of them for each login (the access log says which
  worker answered), then reads /proc/PID/smaps_rollup of EVERY server process: the gunicorn
  master (the preloaded parent, which holds what the workers share) and each worker;
* ``spawned, shared files``: the way ``kb serve --workers N`` started workers before (uvicorn
  spawning separate interpreters, each importing kb, loading the query embedder and mapping
  the index — ``kb.services.search.warm_up`` — then answering a few searches as an admin and
  as a viewer), as the baseline in the same run;
* with ``--all`` also ``model only`` (the embedder and imports, no index), ``in-memory index``
  (KB_INDEX_FILES=false: every worker builds its own index) and ``hand-forked`` (one parent
  imports web.app and forks; each child loads the model and index itself);
* with ``--smaps``, the mappings holding most of one pre-forked worker's private dirty memory
  (what each extra worker really costs).

PSS (proportional set size) is the figure to compare: a page shared by k processes counts 1/k
in each, so the sum over processes is what the machine really spends. RSS counts shared pages
in full in every process (it double-counts the mapped index and everything the master
preloaded); USS is what each process alone holds (what killing it would free). The goal
(issue 13): N=4 workers together ≤ 1.5x one worker, i.e. ``kb serve --workers 4`` (master
included) ≤ 1.5x ``kb serve --workers 1`` (master included).
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
from serve_memory import PASSWORD, run_serve  # noqa: E402

PER_REVIEW = 500


# --------------------------------------------------------------------------- data


def synthesise(home: Path, passages: int) -> str:
    """A KB_HOME whose database holds ``passages`` embedded passages; returns the model id."""
    from sqlalchemy import insert
    from sqlmodel import Session

    from kb.db import get_engine, init_db
    from kb.models import Document, Passage, Review, ReviewStatus, Role
    from kb.services.embedding import embedder_for
    from kb.services.users import create_user

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
        for username, role in (("admin", Role.ADMIN), ("viewer", Role.VIEWER)):
            create_user(session, username=username, password=PASSWORD, role=role)
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

    The hand-made experiment that led to ``kb serve``'s pre-fork (kb/cli/serving.py), kept as
    a row of ``--all``: imported code and objects stay copy-on-write pages of this parent, but
    the model and index are still loaded in each child.
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
    private_dirty: float = 0.0

    @classmethod
    def of(cls, pid: int) -> Memory:
        fields: dict[str, float] = {}
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 3 and parts[-1] == "kB":
                    fields[parts[0].rstrip(":")] = int(parts[1]) / 1024
        uss = fields.get("Private_Clean", 0.0) + fields.get("Private_Dirty", 0.0)
        return cls(
            fields["Rss"],
            fields["Pss"],
            uss,
            fields.get("Pss_File", 0.0),
            fields.get("Private_Dirty", 0.0),
        )


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
            parent = {"pid": procs[0].pid, "parent": True, "seconds": 0}
            reports.append({**parent, "memory": Memory.of(procs[0].pid)})
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
    workers = sum(1 for r in reports if not r.get("parent"))  # not the forking parent
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
    parser.add_argument("--all", action="store_true", help="also the older set-ups")
    parser.add_argument("--smaps", action="store_true", help="where a worker's memory goes")
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
        files_env = {**env, "KB_INDEX_FILES": "true"}
        t = time.perf_counter()
        builder = run_workers(files_env, 1, True, 2)[0]
        build_s = time.perf_counter() - t
        index_mb = sum(f.stat().st_size for f in (home / "index").rglob("*.npy")) / 2**20
        print(
            f"shared files built by one worker in {build_s:.0f}s: {index_mb:.0f} MB of .npy "
            f"(that builder's PSS {builder['memory'].pss:.0f} MB while it held the built index)"
        )
        print(
            f"\n{'set-up':<28} {'n':>3} {'RSS MB':>9} {'PSS MB':>9} {'USS MB':>9} "
            f"{'PSS file':>9} {'PSS/1':>9} {'ready s':>7}"
        )
        results = _measure_all(args, env, home)
        print_summary(results, args.workers)
    return 0


SERVE = "kb serve (pre-forked)"
SPAWNED = "spawned, shared files"


def _measure_all(
    args: argparse.Namespace, env: dict[str, str], home: Path
) -> dict[str, tuple[float, float, list[dict]]]:
    """Each set-up with 1 worker, then with ``--workers``: (PSS of 1, PSS of N, N's reports)."""
    memory_env = {**env, "KB_INDEX_FILES": "false"}
    files_env = {**env, "KB_INDEX_FILES": "true"}
    setups: list[tuple[str, dict[str, str], bool, bool]] = [(SPAWNED, files_env, True, False)]
    if args.all:
        setups = [
            ("model only (no index)", memory_env, False, False),
            ("in-memory index (old)", memory_env, True, False),
            *setups,
            ("hand-forked, shared files", files_env, True, True),
        ]
    results = {}
    queries = make_queries(max(200, 8 * args.queries * args.workers))
    for workers in (1, args.workers):
        reports = run_serve(
            files_env, home, workers, queries, args.queries // 2, Memory.of, smaps=args.smaps
        )
        results.setdefault(SERVE, []).append(reports)
    for name, run_env, with_index, fork in setups:
        for workers in (1, args.workers):
            reports = run_workers(run_env, workers, with_index, args.queries, fork=fork)
            results.setdefault(name, []).append(reports)
    out = {}
    for name, (one, many) in results.items():
        single = _row(name, one, None)
        out[name] = (single, _row(name, many, single), many)
    return out


def print_summary(results: dict[str, tuple[float, float, list[dict]]], workers: int) -> None:
    """Ratios, where the memory is, and whether the goal is met, in plain words."""
    for name, (one, many, reports) in results.items():
        verdict = "met" if many <= 1.5 * one else "NOT met"
        print(
            f"\n{name}: {workers} workers {many:.0f} MB PSS = {many / one:.2f}x one worker "
            f"({one:.0f} MB) -> goal <= 1.5x {verdict}"
        )
        for report in reports:
            memory = report["memory"]
            who = "parent " if report.get("parent") else "worker "
            extra = f", answered {report['answered']}" if "answered" in report else ""
            print(
                f"  {who}{report['pid']}: PSS {memory.pss:.0f} MB, private dirty "
                f"{memory.private_dirty:.0f} MB, RSS {memory.rss:.0f} MB{extra}"
            )
            for dirty, rss, mapping in report.get("smaps", []):
                print(f"      {dirty:7.1f} MB private dirty of {rss:7.1f} MB RSS  {mapping}")
    if SERVE in results and SPAWNED in results:
        serve, spawned = results[SERVE][1], results[SPAWNED][1]
        print(
            f"\n{workers} workers: kb serve (pre-forked) {serve:.0f} MB PSS vs {spawned:.0f} MB "
            f"spawned ({spawned / serve:.2f}x less)"
        )


if __name__ == "__main__":
    raise SystemExit(main())

"""The longest write transaction of an ingest, by document size: how long other writers wait.

On SQLite a write transaction holds the database's only write lock from its first write to its
commit; a web user's write waits that long (and gets a 503 past KB_DB_BUSY_TIMEOUT). Issue 13's
goal: no write transaction over about 1 s for a 5 MB document.

For each ``--sizes`` (MB) it writes a Markdown document synthesised from the demo corpus texts
(corpus/demo: paragraphs in parts, each with one varied made-up sentence so no two passages are
the same text; the generator of benchmarks/ingest_under_load.py), ingests it into a fresh
SQLite KB_HOME with tagging (``--embed``: and embeddings), then ingests a changed version of it
(a new version: people's decisions carried, the old passages and tags replaced). Reported per
ingest: total seconds, the longest write transaction (first write statement to commit,
kb/db_watch.py) and its statement count.

``--baseline DIR`` runs the same measurement on another checkout (e.g. /work/main, the code
before this change) in a subprocess of its own, and prints both with their ratio; the probe
(kb/db_watch.py) is loaded from this file's tree, so the baseline needs no change.

    .venv/bin/python benchmarks/ingest_write.py --sizes 1 5 [--embed] [--baseline /work/main]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _probe() -> Any:
    """kb/db_watch.py of this tree, loaded by path (the code measured may be another tree)."""
    spec = importlib.util.spec_from_file_location("kb_db_watch_probe", ROOT / "kb" / "db_watch.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _document(size_mb: float, seed: int) -> str:
    sys.path.insert(0, str(HERE))
    import ingest_under_load as iul  # noqa: PLC0415 - benchmarks/ingest_under_load.py

    from corpus.demo import FILES_DIR, REALISTIC_DIR  # noqa: PLC0415

    files = sorted(FILES_DIR.glob("*.md")) + sorted(REALISTIC_DIR.glob("*.txt"))
    texts = [p.read_text(errors="replace") for p in files]
    return iul.make_document(texts, seed, "write", int(size_mb * 1_000_000))


def measure(sizes: list[float], embed: bool) -> list[dict[str, Any]]:
    """Ingest each size then a new version of it; the figures of each ingest."""
    os.environ["KB_HOME"] = tempfile.mkdtemp(prefix="kb-bench-write-")
    os.environ.pop("KB_DATABASE_URL", None)
    from kb import db
    from kb.config import get_settings
    from kb.services.analysis import passage_hook
    from kb.services.ingest import IngestOptions, ingest_paths

    get_settings.cache_clear()
    db.get_engine.cache_clear()
    engine = db.get_engine()
    db.init_db(engine)
    hook = passage_hook(get_settings(), embed=embed)
    if embed:
        hook.embedder.encode(["warm up"])  # type: ignore[union-attr]
    hook.tagger.tag_many(["warm up the tagger"])
    watch_type = _probe().WriteWatch
    folder = Path(tempfile.mkdtemp(prefix="kb-bench-write-docs-"))
    rows = []
    for index, size in enumerate(sizes):
        text = _document(size, seed=index)
        path = folder / f"digest-{index}.md"
        for label, body in (("new", text), ("new version", text + "\nOne more paragraph.\n")):
            path.write_text(body, encoding="utf-8")
            with watch_type(engine) as watch:
                started = time.perf_counter()
                report = ingest_paths(
                    engine=engine, paths=[path], options=IngestOptions(), on_passages=hook
                )
                elapsed = time.perf_counter() - started
            if report.failed or not report.ingested:
                raise SystemExit(f"ingest failed: {report.failed}")
            longest = max(watch.transactions, default=(0.0, 0))
            rows.append(
                {
                    "mb": round(len(body.encode()) / 1e6, 2),
                    "ingest": label,
                    "seconds": round(elapsed, 2),
                    "longest_write_s": round(longest[0], 3),
                    "statements": longest[1],
                    "load": os.getloadavg()[0],
                }
            )
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def _run_tree(tree: Path, sizes: list[float], embed: bool) -> list[dict[str, Any]]:
    """This benchmark's measurement with ``tree``'s code, in a process of its own."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    args = [sys.executable, __file__, "--measure", "--sizes", *map(str, sizes)]
    out = subprocess.run(
        args + (["--embed"] if embed else []), env=env, check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=float, nargs="+", default=[1, 5], help="MB")
    parser.add_argument("--embed", action="store_true", help="embed passages too")
    parser.add_argument("--baseline", type=Path, help="another checkout to measure the same way")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:  # the subprocess: the code on PYTHONPATH, figures as JSON
        sys.path.insert(0, os.environ.get("PYTHONPATH", str(ROOT)))
        print(json.dumps(measure(args.sizes, args.embed)))
        return 0
    trees = [("this tree", ROOT)] + ([("baseline", args.baseline)] if args.baseline else [])
    results = {name: _run_tree(tree, args.sizes, args.embed) for name, tree in trees}
    print(f"{'code':10} {'MB':>5} {'ingest':12} {'total s':>8} {'longest write s':>16} stmts")
    for name, rows in results.items():
        for row in rows:
            print(
                f"{name:10} {row['mb']:5.2f} {row['ingest']:12} {row['seconds']:8.1f} "
                f"{row['longest_write_s']:16.3f} {row['statements']:5}  (load {row['load']:.1f})"
            )
    if args.baseline:
        for ours, base in zip(results["this tree"], results["baseline"], strict=True):
            ratio = base["longest_write_s"] / max(ours["longest_write_s"], 1e-6)
            print(
                f"{ours['mb']:.2f} MB {ours['ingest']}: longest write "
                f"{ours['longest_write_s']:.3f}s vs {base['longest_write_s']:.3f}s before "
                f"({ratio:.0f}x shorter)"
            )
    worst = max(row["longest_write_s"] for row in results["this tree"])
    print(f"goal: no write transaction over ~1 s -> {'PASS' if worst <= 1.0 else 'FAIL'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

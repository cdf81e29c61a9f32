"""Ingest throughput against pure text extraction of the same files, in one run.

Generates N ten-page review-like PDFs (fictional text), then measures
  1. extraction alone (``read_document`` on every file): the baseline;
  2. the ingest pipeline without models (read, segment, metadata, store in SQLite);
  3. optionally the pipeline with rule + model tagging (``--tag``);
  4. optionally tagging + embeddings, torch and int8 ONNX (``--embed``), with their ratio to
     tagging alone (issue 13's goal: an ingest with embeddings ≤ 2x one without).
and prints documents/s, pages/s, peak memory and each pipeline's ratio to the baseline.
Goal (issue 2): 1,000 documents in under 5 minutes on 2 cores, pipeline ≤ 2x extraction.

With embeddings, the ingest reads and tags the next document while this one is embedded on a
background thread; "embedder busy" is the time spent embedding, partly hidden that way.
``--repeat N`` alternates the pipelines N times, so load from other processes on a shared
machine falls on each of them.

    .venv/bin/python benchmarks/ingest.py --sizes 100 1000 [--tag] [--embed [--no-torch]]
        [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fpdf import FPDF  # noqa: E402

from corpus.readers import read_document  # noqa: E402

WORDS = [
    "health",
    "visitor",
    "midwife",
    "school",
    "nurse",
    "social",
    "worker",
    "police",
    "GP",
    "family",
    "mother",
    "partner",
    "baby",
    "child",
    "referral",
    "assessment",
    "strategy",
    "meeting",
    "plan",
    "neglect",
    "concerns",
    "home",
    "visit",
    "records",
    "information",
    "shared",
    "agencies",
    "escalation",
    "threshold",
    "review",
    "learning",
    "practice",
    "appointment",
    "missed",
    "attended",
    "reported",
    "observed",
    "bruising",
    "injury",
    "hospital",
    "safeguarding",
    "partnership",
]
HEADINGS = ["Background", "Chronology", "Analysis", "Findings", "Good practice", "Recommendations"]


def _sentence(rng: random.Random) -> str:
    words = rng.choices(WORDS, k=rng.randint(10, 22))
    return " ".join(words).capitalize() + "."


def write_pdf(path: Path, rng: random.Random, pages: int = 10) -> None:
    """A ten-page fictional review with headings, paragraphs and numbered lists."""
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_creation_date(datetime(2020, 1, 1, tzinfo=UTC))  # identical bytes for a seed
    for page in range(pages):
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 13)
        pdf.multi_cell(
            0, 7, f"{page + 1}. {HEADINGS[page % len(HEADINGS)]}", new_x="LMARGIN", new_y="NEXT"
        )
        pdf.set_font("Helvetica", size=10)
        for block in range(5):
            if block == 3:
                for n in range(1, 4):
                    pdf.multi_cell(0, 5, f"{n}. {_sentence(rng)}", new_x="LMARGIN", new_y="NEXT")
            else:
                text = " ".join(_sentence(rng) for _ in range(rng.randint(3, 5)))
                pdf.multi_cell(0, 5, text, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(3)
    pdf.output(str(path))


def generate(folder: Path, count: int, seed: int = 7) -> list[Path]:
    rng = random.Random(seed)
    paths = []
    for i in range(count):
        path = folder / f"review-{i:05d}.pdf"
        write_pdf(path, rng)
        paths.append(path)
    return paths


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_extraction(paths: list[Path]) -> tuple[float, int]:
    start = time.perf_counter()
    pages = sum(read_document(p).pages for p in paths)
    return time.perf_counter() - start, pages


def time_ingest(
    paths: list[Path], *, tag: bool, embed: bool = False, backend: str = "auto"
) -> tuple[float, int, float]:
    """(seconds, documents ingested, seconds spent inside the embedder: on the background
    thread, so partly hidden behind the reading and tagging of the next document)."""
    os.environ["KB_HOME"] = tempfile.mkdtemp(prefix="kb-bench-")
    os.environ.pop("KB_DATABASE_URL", None)
    os.environ["KB_EMBED_ON_INGEST"] = "false"
    os.environ["KB_EMBEDDING_BACKEND"] = backend
    from kb import db
    from kb.config import get_settings
    from kb.services.ingest import ingest_paths
    from nlp.embeddings import default_cache_dir

    os.environ.setdefault("KB_EMBEDDING_CACHE", str(default_cache_dir()))

    get_settings.cache_clear()
    db.get_engine.cache_clear()
    engine = db.get_engine()
    db.init_db(engine)
    hook = None
    if tag:
        from kb.services.analysis import passage_hook

        hook = passage_hook(get_settings(), embed=embed)
        if embed:  # load (and, the first time, export) the model outside the clock
            hook.embedder.encode(["warm up"])  # type: ignore[union-attr]
    busy = [0.0]
    if hook is not None and hook.embedder is not None:
        real = hook.embedder.encode

        def encode(texts: list[str], **kwargs: object) -> object:
            started = time.perf_counter()
            try:
                return real(texts, **kwargs)  # type: ignore[arg-type]
            finally:
                busy[0] += time.perf_counter() - started

        hook.embedder.encode = encode  # type: ignore[method-assign]
    start = time.perf_counter()
    try:
        report = ingest_paths(engine=engine, paths=paths, on_passages=hook)
    finally:
        if hook is not None and hook.embedder is not None:
            del hook.embedder.encode  # the process-wide embedder gets its own method back
    elapsed = time.perf_counter() - start
    if report.failed:
        raise SystemExit(f"ingest failed: {report.failed[:3]}")
    return elapsed, len(report.ingested), busy[0]


def report_runs(
    runs: list[tuple[str, bool, bool, str]], paths: list[Path], pages: int, base: float
) -> None:
    """Each pipeline once, with its ratio to extraction (and, with embeddings, to tagging
    alone, and the share of the run the embedder was busy)."""
    tagged = None
    for label, tag, embed, backend in runs:
        elapsed, n, busy = time_ingest(paths, tag=tag, embed=embed, backend=backend)
        tagged = elapsed if tag and not embed else tagged
        extra = f"  {elapsed / tagged:.2f}x tagging alone" if embed and tagged else ""
        if embed:
            extra += f"  (embedder busy {busy:.1f}s = {busy / elapsed:.0%} of the run)"
        print(
            f"{label:18}: {n / elapsed:8.1f} docs/s {pages / elapsed:9.1f} pages/s "
            f"{elapsed:7.1f}s  peak {peak_mb():.0f} MB  ratio {elapsed / base:.2f}x "
            f"extraction{extra}",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--tag", action="store_true", help="also time ingest with tagging")
    parser.add_argument(
        "--embed",
        action="store_true",
        help="also time tagging + embeddings (torch and onnx-int8); ratio to tagging alone",
    )
    parser.add_argument(
        "--no-torch", action="store_true", help="with --embed, skip the torch embeddings run"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="run the pipelines this many times, alternating"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kb-bench-docs-") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        all_paths = generate(folder, max(args.sizes))
        print(f"generated {len(all_paths)} ten-page PDFs in {time.perf_counter() - t0:.1f}s")
        for size in args.sizes:
            paths = all_paths[:size]
            base, pages = time_extraction(paths)
            print(f"\n== {size} documents, {pages} pages")
            print(
                f"extraction only : {size / base:8.1f} docs/s {pages / base:9.1f} pages/s "
                f"{base:7.1f}s  peak {peak_mb():.0f} MB"
            )
            runs = [("ingest (no models)", False, False, "auto")]
            if args.tag or args.embed:
                runs.append(("ingest + tagging", True, False, "auto"))
            if args.embed and not args.no_torch:
                runs.append(("+ embeddings torch", True, True, "torch"))
            if args.embed:
                runs.append(("+ embeddings int8", True, True, "onnx-int8"))
            for round_ in range(1, args.repeat + 1):
                if args.repeat > 1:
                    print(f"-- round {round_}, load average {Path('/proc/loadavg').read_text()}")
                report_runs(runs, paths, pages, base)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

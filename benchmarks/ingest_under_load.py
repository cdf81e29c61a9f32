"""Ingest under load: does a big document coming in stall the people using the site?

Usage::

    .venv/bin/python benchmarks/ingest_under_load.py                 # 60 s idle, then ingest
    .venv/bin/python benchmarks/ingest_under_load.py --duration 30 --home /tmp/iul --keep
    .venv/bin/python benchmarks/ingest_under_load.py --chart latency.svg

What it does, and why that way:

* builds the ``kb demo`` database in a temporary KB_HOME with the helpers of
  ``benchmarks/load.py`` (optionally scaled with ``--passages``), and starts ``kb serve`` on a
  free loopback port exactly as a partnership runs it: with its own ingest worker process;
* writes two distinct ~1 MB fictional-shaped documents to a scratch folder (never into the
  repository): the seed reports of ``../shared/seeds`` when present, else the demo corpus text,
  repeated in parts, each paragraph given one varied made-up sentence (agency, place, month,
  surname) so no two passages are the same text (identical passages would be analysed once and
  make the ingest look cheaper than a real one), and a run token so a reused ``--home`` ingests
  them again;
* four users log in through the real login form: two panel members and a viewer search
  (the search page, practitioner queries; a panel member's hits on the partnership's own
  unpublished Child K review write an audit line each time) and an admin edits tracker actions
  through the API (GET, then PATCH with the version read) and logs in again now and then (a
  login writes too). Mean think time ``--think`` seconds;
* phase 1, ``--duration`` seconds with nothing else running: the idle p95 of search;
* phase 2, the same users while a panel member uploads one document through
  ``POST /api/documents`` (202, then polls ``GET /api/jobs/{id}``) and a terminal runs
  ``kb ingest OTHER --json``; it lasts until both have finished (``--max-ingest`` at most);
* reports requests, p50/p95/p99 per kind and phase, every answer that is not 2xx/3xx (503s
  apart) and every transport error, the ratio search p95 during ingest / idle, and checks that
  both documents are stored correctly (document, reviews, every passage embedded, theme tags,
  the text whole); PASS/FAIL per goal of issue 13. ``--chart`` writes the latency of every
  request over time as an SVG.

Goals: 0 errors; search p95 during ingest <= 3x idle; both uploads finished and correct.
Nothing asserts: figures are printed (exit status 1 when a goal is missed, for scripts).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import load  # noqa: E402  (benchmarks/load.py: database, server and login helpers)

SEARCHERS = ("panel", "panel", "viewer")
SHARED_SEEDS = ROOT.parent / "shared" / "seeds"
OWNERS = ["Head of Service", "Designated Nurse", "Detective Inspector", "Education Lead"]
DOC_BYTES = 1_000_000


# --------------------------------------------------------------------------- documents


def source_texts() -> tuple[str, list[str]]:
    """Paragraph sources: the shared seed reports when present, else the demo corpus text."""
    seeds = sorted(SHARED_SEEDS.glob("*.txt")) if SHARED_SEEDS.is_dir() else []
    if seeds:
        return "../shared/seeds", [p.read_text(errors="replace") for p in seeds]
    from corpus.demo import FILES_DIR, REALISTIC_DIR

    files = sorted(FILES_DIR.glob("*.md")) + sorted(REALISTIC_DIR.glob("*.txt"))
    return "corpus/demo", [p.read_text(errors="replace") for p in files]


def make_document(texts: list[str], seed: int, token: str, size: int = DOC_BYTES) -> str:
    """~``size`` bytes of Markdown: the sources in parts, in an order of its own, every
    paragraph with one varied sentence so each passage is distinct."""
    rng = random.Random(seed)
    paragraphs = [
        [p.strip() for p in re.split(r"\n\s*\n", text) if len(p.strip()) > 40] for text in texts
    ]
    paragraphs = [p for p in paragraphs if p]
    out = [f"# Annual learning digest {token}-{seed}\n", f"Prepared for run {token}.\n"]
    total, part = 0, 0
    while total < size:
        part += 1
        source = rng.choice(paragraphs)
        start = rng.randrange(len(source))
        chunk = source[start : start + rng.randint(8, 30)]
        out.append(f"## Part {part}: learning from {rng.choice(load.PLACES)}\n")
        for paragraph in chunk:
            extra = (
                f" The {rng.choice(load.AGENCIES)} in {rng.choice(load.PLACES)} raised this for "
                f"Child {load._surname(rng)} in {rng.choice(load.MONTHS)} "
                f"{rng.randint(2012, 2024)}."
            )
            text = paragraph.replace("\n", " ") + extra
            out.append(text + "\n")
            total += len(text) + 2
    return "\n".join(out)


# --------------------------------------------------------------------------- recording


@dataclass
class Sample:
    at: float  # seconds since the start of phase 1
    kind: str
    ms: float
    status: int  # HTTP status; 0 = transport error (timeout, reset)
    why: str = ""


@dataclass
class Run:
    started: float = field(default_factory=time.monotonic)
    samples: list[Sample] = field(default_factory=list)
    stop: bool = False
    ingest_from: float = float("inf")
    ingest_to: float = float("inf")

    def now(self) -> float:
        return time.monotonic() - self.started

    async def timed(self, kind: str, call: Any) -> httpx.Response | None:
        at = self.now()
        began = time.perf_counter()
        try:
            response = await call
        except httpx.HTTPError as exc:
            self.samples.append(Sample(at, kind, _ms(began), 0, type(exc).__name__))
            return None
        why = "" if response.status_code < 400 else response.text[:160]
        self.samples.append(Sample(at, kind, _ms(began), response.status_code, why))
        return response

    def phase(self, sample: Sample) -> str:
        if sample.at < self.ingest_from:
            return "idle"
        return "ingest" if sample.at <= self.ingest_to else "after"


def _ms(began: float) -> float:
    return (time.perf_counter() - began) * 1000


async def think(rng: random.Random, mean: float) -> None:
    if mean > 0:
        await asyncio.sleep(min(rng.expovariate(1 / mean), mean * 5))


# --------------------------------------------------------------------------- users


async def searcher(base: str, credentials: tuple[str, str], n: int, run: Run, mean: float) -> None:
    rng = random.Random(100 + n)
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        await load.login(client, *credentials)
        await think(rng, mean)
        while not run.stop:
            query = rng.choice(load.QUERIES)
            await run.timed("search", client.get("/search", params={"q": query}))
            await think(rng, mean)


async def editor(base: str, credentials: tuple[str, str], run: Run, mean: float) -> None:
    """An admin editing tracker actions (read, then PATCH with the version read), and logging
    in again every ~15 s (a login writes its session and last-login time)."""
    rng = random.Random(7)
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        await load.login(client, *credentials)
        last_login = time.monotonic()
        while not run.stop:
            if time.monotonic() - last_login > 15:
                client.cookies.clear()
                page = await run.timed("login", client.get("/login"))
                token = load.CSRF_RE.search(page.text) if page is not None else None
                if token:
                    form = {
                        "username": credentials[0],
                        "password": credentials[1],
                        "csrf_token": token.group(1),
                    }
                    await run.timed("login", client.post("/login", data=form))
                last_login = time.monotonic()
            await _edit_once(client, run, rng)
            await think(rng, mean)


async def _edit_once(client: httpx.AsyncClient, run: Run, rng: random.Random) -> None:
    me = await run.timed("edit-read", client.get("/api/me"))
    actions = await run.timed("edit-read", client.get("/api/actions"))
    if me is None or actions is None or actions.status_code != 200 or not actions.json():
        return
    csrf = me.json().get("csrf_token") or ""
    action = rng.choice(actions.json())
    one = await run.timed("edit-read", client.get(f"/api/actions/{action['id']}"))
    if one is None or one.status_code != 200:
        return
    body = {"version": one.json()["version_id"], "owner": rng.choice(OWNERS)}
    await run.timed(
        "edit",
        client.patch(f"/api/actions/{action['id']}", json=body, headers={"X-CSRF-Token": csrf}),
    )


# --------------------------------------------------------------------------- the two ingests


async def web_upload(base: str, credentials: tuple[str, str], path: Path, run: Run) -> dict:
    """A panel member's upload: 202 with a job, polled once a second until it is done."""
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        await load.login(client, *credentials)
        me = (await client.get("/api/me")).json()
        began = time.monotonic()
        with path.open("rb") as stream:
            response = await run.timed(
                "upload",
                client.post(
                    "/api/documents",
                    files={"files": (path.name, stream, "text/markdown")},
                    headers={"X-CSRF-Token": me.get("csrf_token") or ""},
                ),
            )
        if response is None or response.status_code != 202:
            code = None if response is None else response.status_code
            return {"ok": False, "why": f"upload answered {code}"}
        location = response.headers["location"]
        job: dict[str, Any] = {}
        while True:
            await asyncio.sleep(1.0)
            polled = await run.timed("job-poll", client.get(location))
            if polled is not None and polled.status_code == 200:
                job = polled.json()
                if job["state"] == "done":
                    break
            if run.stop:
                return {"ok": False, "why": "the job did not finish in time", "job": job}
        return {"ok": True, "seconds": time.monotonic() - began, "job": job}


async def terminal_ingest(home: Path, path: Path) -> dict:
    """``kb ingest FILE --json`` in a subprocess, as an operator runs it in a terminal."""
    env = {**os.environ, "KB_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    env.pop("KB_DATABASE_URL", None)
    began = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kb", "ingest", str(path), "--json",
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    seconds = time.monotonic() - began
    try:
        report = json.loads(out)
    except json.JSONDecodeError:
        return {"ok": False, "why": f"exit {process.returncode}: {err.decode()[-300:]}"}
    return {"ok": process.returncode == 0, "seconds": seconds, "report": report}


# --------------------------------------------------------------------------- checks


def check_document(home: Path, path: Path) -> dict[str, Any]:
    """Is the file stored whole: document, reviews, passages covering the text, every passage
    embedded, theme tags? Read straight from the database after the run."""
    os.environ["KB_HOME"] = str(home)
    from sqlmodel import Session, col, func, select

    from kb import db as kb_db
    from kb.config import get_settings
    from kb.models import Document, Passage, Review, ThemeTag

    get_settings.cache_clear()
    kb_db.get_engine.cache_clear()
    engine = kb_db.get_engine()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with Session(engine) as session:
        document = session.exec(
            select(Document).where(
                (Document.sha256 == digest) | (Document.source_name == path.name)
            )
        ).first()
        if document is None:
            return {"ok": False, "why": "no document stored"}
        reviews = session.exec(
            select(func.count(col(Review.id))).where(Review.document_id == document.id)
        ).one()
        passages = session.exec(select(Passage).where(Passage.document_id == document.id)).all()
        embedded = sum(1 for p in passages if p.embedding is not None)
        ids = [p.id for p in passages]
        tags = session.exec(
            select(func.count(col(ThemeTag.id))).where(col(ThemeTag.passage_id).in_(ids))
        ).one() if ids else 0  # fmt: skip
        covered = sum(len(p.text) for p in passages) / max(1, len(document.text))
    engine.dispose()
    ok = reviews >= 1 and len(passages) > 0 and embedded == len(passages) and tags > 0
    ok = ok and covered > 0.9
    return {
        "ok": ok,
        "document": document.id,
        "reviews": reviews,
        "passages": len(passages),
        "embedded": embedded,
        "tags": tags,
        "covered": covered,
    }


def audit_lines(home: Path, since: Any) -> int:
    """Audit lines of search hits on restricted reviews written since ``since`` (the panel
    members' searches): proof that the reads wrote, and that nothing was lost."""
    os.environ["KB_HOME"] = str(home)
    from sqlmodel import Session, col, func, select

    from kb import db as kb_db
    from kb.config import get_settings
    from kb.models import AuditEvent

    get_settings.cache_clear()
    kb_db.get_engine.cache_clear()
    engine = kb_db.get_engine()
    with Session(engine) as session:
        count = session.exec(
            select(func.count(col(AuditEvent.id))).where(
                AuditEvent.action == "review.view",
                col(AuditEvent.at) >= since,
                col(AuditEvent.detail).contains("web-search"),
            )
        ).one()
    engine.dispose()
    return int(count)


# --------------------------------------------------------------------------- report


def summarise(run: Run) -> dict[str, Any]:
    """Per phase and kind: n, p50, p95, p99, errors, 503s, transport errors."""
    table: dict[tuple[str, str], dict[str, float]] = {}
    for phase in ("idle", "ingest"):
        for kind in ("search", "edit", "edit-read", "login", "upload", "job-poll"):
            chosen = [s for s in run.samples if s.kind == kind and run.phase(s) == phase]
            if not chosen:
                continue
            ms = [s.ms for s in chosen]
            table[(phase, kind)] = {
                "n": len(ms),
                "p50": load.pct(ms, 50),
                "p95": load.pct(ms, 95),
                "p99": load.pct(ms, 99),
                "max": max(ms),
                "errors": sum(1 for s in chosen if s.status == 0 or s.status >= 400),
                "503": sum(1 for s in chosen if s.status == 503),
                "transport": sum(1 for s in chosen if s.status == 0),
            }
    return table


def print_table(table: dict[tuple[str, str], dict[str, float]]) -> None:
    print(
        f"\n  {'phase':<7} {'kind':<10} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
        f"{'max ms':>8} {'err':>4} {'503':>4} {'conn':>4}"
    )
    for (phase, kind), row in table.items():
        print(
            f"  {phase:<7} {kind:<10} {row['n']:>5} {row['p50']:>8.0f} {row['p95']:>8.0f} "
            f"{row['p99']:>8.0f} {row['max']:>8.0f} {row['errors']:>4} {row['503']:>4} "
            f"{row['transport']:>4}"
        )


def write_chart(run: Run, path: Path) -> None:
    """Latency of every request over time (log scale), ingest window shaded: an SVG."""
    width, height, left, bottom = 900, 360, 60, 40
    end = max((s.at for s in run.samples), default=1.0) or 1.0
    top_ms = max((s.ms for s in run.samples), default=1000.0)
    lo, hi = np.log10(5), np.log10(max(top_ms, 100) * 1.2)

    def x(t: float) -> float:
        return left + (width - left - 10) * t / end

    def y(ms: float) -> float:
        v = (np.log10(max(ms, 5)) - lo) / (hi - lo)
        return height - bottom - v * (height - bottom - 20)

    colours = {"search": "#1f77b4", "edit": "#d62728", "login": "#2ca02c", "edit-read": "#ff7f0e"}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="11">',
        f"<title>Request latency over time; ingest from {run.ingest_from:.0f} s "
        f"to {min(run.ingest_to, end):.0f} s</title>",
    ]
    if run.ingest_from < end:
        x0, x1 = x(run.ingest_from), x(min(run.ingest_to, end))
        parts.append(
            f'<rect x="{x0:.1f}" y="20" width="{x1 - x0:.1f}" height="{height - bottom - 20}" '
            'fill="#eee"/><text x="' + f'{x0 + 4:.1f}" y="32">ingest running</text>'
        )
    for ms in (10, 100, 1000, 10000):
        if np.log10(ms) <= hi:
            parts.append(
                f'<line x1="{left}" x2="{width - 10}" y1="{y(ms):.1f}" y2="{y(ms):.1f}" '
                f'stroke="#ccc"/><text x="4" y="{y(ms) + 4:.1f}">{ms} ms</text>'
            )
    for s in run.samples:
        if s.kind in colours:
            shape = "rect" if s.status == 0 or s.status >= 400 else "circle"
            if shape == "circle":
                parts.append(
                    f'<circle cx="{x(s.at):.1f}" cy="{y(s.ms):.1f}" r="2" '
                    f'fill="{colours[s.kind]}"/>'
                )
            else:
                parts.append(
                    f'<rect x="{x(s.at) - 3:.1f}" y="{y(s.ms) - 3:.1f}" width="6" height="6" '
                    'fill="black"/>'
                )
    for i, (kind, colour) in enumerate(colours.items()):
        parts.append(
            f'<circle cx="{left + 10 + i * 90}" cy="{height - 12}" r="4" fill="{colour}"/>'
            f'<text x="{left + 18 + i * 90}" y="{height - 8}">{kind}</text>'
        )
    parts.append(f'<text x="{width - 150}" y="{height - 8}">time, s (0 to {end:.0f})</text>')
    parts.append("</svg>")
    path.write_text("\n".join(parts))


# --------------------------------------------------------------------------- main


async def run_phases(
    base: str, home: Path, logins: dict[str, Any], docs: tuple[Path, Path], args: Any
) -> tuple[Run, dict, dict]:
    run = Run()
    users = [
        asyncio.create_task(searcher(base, logins[role], i, run, args.think))
        for i, role in enumerate(SEARCHERS)
    ]
    users.append(asyncio.create_task(editor(base, logins["admin"], run, args.think)))
    await asyncio.sleep(2.0)  # logins (argon2) out of the way before the clock starts
    run.started = time.monotonic()
    await asyncio.sleep(args.duration)
    print(f"idle phase done ({args.duration:g} s); starting both ingests", flush=True)
    run.ingest_from = run.now()
    upload = asyncio.create_task(web_upload(base, logins["panel"], docs[0], run))
    terminal = asyncio.create_task(terminal_ingest(home, docs[1]))
    done, _ = await asyncio.wait({upload, terminal}, timeout=args.max_ingest)
    run.ingest_to = run.now()
    run.stop = True
    up = upload.result() if upload in done else {"ok": False, "why": "timed out"}
    term = terminal.result() if terminal in done else {"ok": False, "why": "timed out"}
    await asyncio.gather(*users, return_exceptions=True)
    for task in (upload, terminal):
        if not task.done():
            task.cancel()
    return run, up, term


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="idle phase, seconds")
    parser.add_argument("--think", type=float, default=1.0, help="mean think time, s")
    parser.add_argument("--max-ingest", type=float, default=1200.0, help="give up after, s")
    parser.add_argument("--passages", type=int, default=0, help="scale the demo up to this")
    parser.add_argument("--workers", type=int, default=1, help="kb serve --workers")
    parser.add_argument("--home", type=Path, help="KB_HOME to build in, or reuse if built")
    parser.add_argument("--keep", action="store_true", help="keep the temporary KB_HOME")
    parser.add_argument("--chart", type=Path, help="write latency over time as an SVG")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)

    home = args.home or Path(tempfile.mkdtemp(prefix="kb-iul-"))
    home.mkdir(parents=True, exist_ok=True)
    server: subprocess.Popen[bytes] | None = None
    scratch = Path(tempfile.mkdtemp(prefix="kb-iul-docs-"))
    print(f"load average before: {Path('/proc/loadavg').read_text().strip()}", flush=True)
    try:
        built = load.build_database(home, args.passages)
        print(f"database in {home}: {built['passages']} passages", flush=True)
        origin, texts = source_texts()
        token = f"{int(time.time())}"
        docs = (scratch / f"upload-{token}.md", scratch / f"terminal-{token}.md")
        for seed, path in enumerate(docs, start=1):
            path.write_text(make_document(texts, seed, token))
        sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e6:.2f} MB" for p in docs)
        print(f"documents from {origin}: {sizes}", flush=True)
        port = load.free_port()
        base = f"http://127.0.0.1:{port}"
        server = load.start_server(home, port, args.workers)
        load.wait_ready(base, server)
        asyncio.run(load._warm(base, built["logins"]["admin"], args.workers))
        from kb.models import utcnow

        since = utcnow()
        run, up, term = asyncio.run(run_phases(base, home, built["logins"], docs, args))
        print(f"load average after: {Path('/proc/loadavg').read_text().strip()}", flush=True)
    finally:
        if server is not None:
            load.stop_server(server)
    checks = [check_document(home, docs[0]), check_document(home, docs[1])]
    print(f"audit lines of restricted search hits during the run: {audit_lines(home, since)}")
    table = summarise(run)
    print_table(table)
    ok = report(run, table, up, term, checks)
    if args.chart:
        write_chart(run, args.chart)
        print(f"chart: {args.chart}")
    if args.json:
        rows = {f"{p}/{k}": v for (p, k), v in table.items()}
        args.json.write_text(json.dumps({"table": rows, "upload": up, "terminal": term,
                                         "checks": checks}, default=str, indent=1))  # fmt: skip
    shutil.rmtree(scratch, ignore_errors=True)
    if not args.keep and not args.home:
        shutil.rmtree(home, ignore_errors=True)
    return 0 if ok else 1


def report(run: Run, table: dict, up: dict, term: dict, checks: list[dict]) -> bool:
    """The goals of issue 13, PASS or FAIL each; True when all pass."""
    idle = table.get(("idle", "search"), {}).get("p95", float("nan"))
    busy = table.get(("ingest", "search"), {}).get("p95", float("nan"))
    ratio = busy / idle if idle else float("nan")
    errors = sum(row["errors"] for row in table.values())
    unavailable = sum(row["503"] for row in table.values())
    window = run.ingest_to - run.ingest_from
    print(f"\ningest window {window:.0f} s; web upload {up.get('seconds', float('nan')):.0f} s, "
          f"terminal kb ingest {term.get('seconds', float('nan')):.0f} s")  # fmt: skip
    for name, check in zip(("web upload", "kb ingest"), checks, strict=True):
        print(f"  {name}: {check}")
    examples = [s for s in run.samples if s.status == 0 or s.status >= 400][:5]
    for s in examples:
        print(f"  error: {s.kind} {s.status} {s.why!r}")
    finished = up.get("ok") and term.get("ok")
    job = up.get("job") or {}
    finished = finished and not job.get("failed") and len(job.get("ingested", [])) == 1
    finished = finished and len((term.get("report") or {}).get("ingested", [])) == 1
    goals = {
        f"0 errors (got {errors}, of which 503: {unavailable})": errors == 0,
        f"search p95 during ingest <= 3x idle ({busy:.0f} / {idle:.0f} ms = {ratio:.2f}x)": (
            ratio <= 3
        ),
        "both uploads finished and correct": bool(finished) and all(c["ok"] for c in checks),
    }
    if not finished:
        print(f"  upload: {up.get('why', '')} {term.get('why', '')}")
    for goal, met in goals.items():
        print(f"{'PASS' if met else 'FAIL'}  {goal}")
    return all(goals.values())


if __name__ == "__main__":
    raise SystemExit(main())

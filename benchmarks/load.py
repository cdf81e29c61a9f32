"""Loopback load test: the real server under N simulated practitioners.

Usage::

    .venv/bin/python benchmarks/load.py    # 50 users, 60 s, ~20k passages, a worker per core
    .venv/bin/python benchmarks/load.py --users 20 --duration 20

What it does, and why that way:

* builds a database in a temporary KB_HOME with the ``kb demo`` logic (theme model, the demo
  corpus with real embeddings and tags, the demo tracker, the demo logins), then scales it to
  ``--passages`` (default 20,000) with *synthetic* published reviews: each copies ~40 demo
  passages, appends one varied fictional sentence to each (agency, place, month, a made-up
  surname) so BM25 sees distinct documents, and reuses the source passage's vector plus small
  Gaussian noise (renormalised) instead of re-embedding — embedding 20k passages on 2 cores
  would take longer than the run, and dense-search cost does not depend on the vectors'
  values. The source passages' theme tags are copied (offsets shifted) so the dashboard and
  theme filters have realistic counts;
* starts ``kb serve --port P [--workers N]`` (on 127.0.0.1, a free port; access log
  in KB_HOME/serve.log) in a subprocess and always stops it at the end, even on Ctrl-C or an
  error;
* each simulated user logs in through the real login form (CSRF token, argon2 check; not
  timed), then loops until the deadline: search (50 %, the search page with varied
  practitioner queries), a review page (20 %), the themes dashboard (15 %) and the tracker
  (15 %), with an exponential think time (mean ``--think`` seconds; 0 = closed loop stress);
* a single-user run in the same process first is the baseline; the report gives requests/s,
  p50/p95/p99 per endpoint kind, errors, and the p95 ratio under load vs alone.

Goal: zero errors and p95 search ≤ 200 ms at 50 users. Figures are printed; nothing asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUERIES = [
    "baby bruising not referred",
    "hidden men in the household",
    "father not invited to assessment",
    "information not shared between health visitor and GP",
    "domestic abuse and coercive control",
    "child not brought to health appointments",
    "neglect and poor home conditions",
    "criminal exploitation county lines missing episodes",
    "parental mental health and substance misuse",
    "professional curiosity was lacking",
    "voice of the child not heard",
    "unsafe sleeping co-sleeping infant death",
    "escalation when agencies disagree",
    "pre-birth assessment started late",
    "self-harm in adolescents and CAMHS waiting lists",
    "elective home education and school absence",
    "disguised compliance by parents",
    "thresholds applied unevenly at the front door",
    "the MASH did not share police information",
    "young carers and the toxic trio",
]
KINDS = {"search": 0.5, "review": 0.2, "dashboard": 0.15, "tracker": 0.15}
AGENCIES = ["health visitor", "GP", "school nurse", "police", "social worker", "midwife"]
PLACES = ["Ashcombe", "Brindlemoor", "Caldervale", "Dunmere", "Eastwick", "Fallowfield"]
MONTHS = ["January", "March", "May", "July", "September", "November"]
SYLLABLES = ["ka", "lo", "mi", "ren", "sha", "tor", "vel", "din", "bro", "ul", "ost", "ya"]
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


# --------------------------------------------------------------------------- database


def build_database(home: Path, target: int, seed: int = 5) -> dict[str, Any]:
    """The demo database in ``home``, scaled to ``target`` passages; logins and review ids.

    A ``home`` that already has demo logins (from ``--home`` with ``--keep``) is reused as is.
    """
    os.environ["KB_HOME"] = str(home)
    os.environ.pop("KB_DATABASE_URL", None)
    os.environ["HF_HUB_OFFLINE"] = "1"
    from kb import db as kb_db
    from kb.config import get_settings

    get_settings.cache_clear()
    kb_db.get_engine.cache_clear()
    from kb.cli.demo import demo

    reuse = (home / "demo-logins.txt").exists()
    started = time.perf_counter()
    if not reuse:
        demo(serve=False)
    demo_seconds = time.perf_counter() - started
    engine = kb_db.get_engine()
    started = time.perf_counter()
    added = 0 if reuse else scale_up(engine, target, seed)
    logins = {}
    for line in (home / "demo-logins.txt").read_text().splitlines()[1:]:
        username, password, role = line.split("\t")
        logins[role] = (username, password)
    from sqlmodel import Session, col, func, select

    from kb.models import Passage, Review, ReviewStatus

    with Session(engine) as session:
        passages = session.exec(select(func.count(col(Passage.id)))).one()
        published = list(
            session.exec(select(Review.id).where(Review.status == ReviewStatus.PUBLISHED)).all()
        )
    engine.dispose()
    return {
        "logins": logins,
        "reviews": published,
        "passages": passages,
        "synthetic_reviews": added,
        "demo_seconds": demo_seconds,
        "scale_seconds": time.perf_counter() - started,
    }


def _surname(rng: random.Random) -> str:
    return "".join(rng.choices(SYLLABLES, k=rng.randint(2, 3))).capitalize()


def scale_up(engine: Any, target: int, seed: int, per_review: int = 40) -> int:
    """Add synthetic published reviews until there are ``target`` passages; returns how many.

    Commits every 50 reviews, so a large ``target`` is not one long transaction.
    """
    from sqlmodel import Session

    rng = random.Random(seed)
    noise = np.random.default_rng(seed)
    with Session(engine) as session:
        have, sources, tags = _copy_sources(session)
        model_id = sources[0][0].embedding_model
        added = 0
        while have < target:
            chosen = rng.sample(sources, min(per_review, len(sources), target - have))
            name = f"Child {_surname(rng)}"
            bodies = [passage.text + _varied_sentence(rng, name) for passage, _ in chosen]
            document, review = _add_synthetic_review(
                session, rng, template=chosen[0][1], name=name, bodies=bodies, index=added
            )
            start = 0
            for order, ((source, _), body) in enumerate(zip(chosen, bodies, strict=True)):
                vector = _noisy_copy(source.embedding, noise)  # type: ignore[arg-type]
                passage = _add_copied_passage(
                    session, source, review, document, body, order, start, vector, model_id
                )
                source_tags = tags.get(source.id, [])  # type: ignore[arg-type]
                _copy_tags(session, source_tags, passage, review, start)
                start += len(body) + 2
            have += len(chosen)
            added += 1
            if added % 50 == 0:
                session.commit()
        session.commit()
    return added


def _copy_sources(session: Any) -> tuple[int, list[Any], dict[int, list[Any]]]:
    """The passage count now, the embedded published (passage, review) pairs to copy, and
    each passage's theme tags, so copies get realistic tag counts without re-tagging."""
    from sqlmodel import col, func, select

    from kb.models import Passage, Review, ReviewStatus, ThemeTag

    have = session.exec(select(func.count(col(Passage.id)))).one()
    sources = list(
        session.exec(
            select(Passage, Review)
            .join(Review, col(Review.id) == Passage.review_id)
            .where(Review.status == ReviewStatus.PUBLISHED, col(Passage.embedding).is_not(None))
        ).all()
    )
    tags: dict[int, list[ThemeTag]] = defaultdict(list)
    for tag in session.exec(select(ThemeTag)).all():
        tags[tag.passage_id].append(tag)
    if not sources:
        raise SystemExit("the demo corpus has no embedded published passages to copy")
    return have, sources, tags


def _varied_sentence(rng: random.Random, name: str) -> str:
    """One fictional sentence appended to a copied passage so BM25 sees distinct documents."""
    return (
        f" The {rng.choice(AGENCIES)} in {rng.choice(PLACES)} noted this for "
        f"{name} in {rng.choice(MONTHS)} {rng.randint(2012, 2024)}."
    )


def _add_synthetic_review(
    session: Any, rng: random.Random, *, template: Any, name: str, bodies: list[str], index: int
) -> tuple[Any, Any]:
    """The document and published review holding ``bodies``; partnership, type and age band
    come from ``template`` so the dashboard's filters see plausible values."""
    from kb.models import Document, Review, ReviewStatus

    text = "\n\n".join(bodies)
    document = Document(
        source_name=f"synthetic-{index:05d}.md",
        format="markdown",
        sha256=f"{rng.getrandbits(256):064x}",
        text=text,
        title=f"Synthetic review: {name}",
        size_bytes=len(text),
    )
    session.add(document)
    session.flush()
    review = Review(
        document_id=document.id,  # type: ignore[arg-type]
        partnership_id=template.partnership_id,
        type=template.type,
        pseudonym=name,
        title=f"Synthetic review: {name}",
        status=ReviewStatus.PUBLISHED,
        year=rng.randint(2012, 2024),
        age_band=template.age_band,
        end=len(text),
    )
    session.add(review)
    session.flush()
    return document, review


def _noisy_copy(embedding: bytes, noise: np.random.Generator) -> bytes:
    """The source vector plus small Gaussian noise, renormalised: re-embedding would take
    longer than the run, and dense-search cost does not depend on the values."""
    from kb.services.embedding import from_bytes, to_bytes

    vector = from_bytes(embedding)
    vector = vector + noise.normal(0, 0.02, vector.shape).astype(np.float32)
    vector /= np.linalg.norm(vector)
    return to_bytes(vector)


def _add_copied_passage(
    session: Any,
    source: Any,
    review: Any,
    document: Any,
    body: str,
    order: int,
    start: int,
    embedding: bytes,
    model_id: str | None,
) -> Any:
    """A passage of the synthetic review, with the source passage's section and kind."""
    from kb.models import Passage

    passage = Passage(
        review_id=review.id,  # type: ignore[arg-type]
        document_id=document.id,  # type: ignore[arg-type]
        section_title=source.section_title,
        section_kind=source.section_kind,
        kind=source.kind,
        text=body,
        order=order,
        start=start,
        end=start + len(body),
        embedding=embedding,
        embedding_model=model_id,
        tagged_with=source.tagged_with,
    )
    session.add(passage)
    session.flush()
    return passage


def _copy_tags(session: Any, tags: list[Any], passage: Any, review: Any, start: int) -> None:
    """The source passage's theme tags on the copy, evidence offsets shifted to the copy's
    place in its document."""
    from kb.models import ThemeTag

    for tag in tags:
        evidence = [
            {**e, "start": start + e["passage_start"], "end": start + e["passage_end"]}
            for e in tag.evidence
            if "passage_start" in e
        ]
        session.add(
            ThemeTag(
                passage_id=passage.id,  # type: ignore[arg-type]
                review_id=review.id,  # type: ignore[arg-type]
                theme_id=tag.theme_id,
                method=tag.method,
                confidence=tag.confidence,
                evidence=evidence,
            )
        )


# --------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(home: Path, port: int, workers: int = 1) -> subprocess.Popen[bytes]:
    """``kb serve`` exactly as a partnership runs it (its access log goes to a file)."""
    env = {**os.environ, "KB_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    env.pop("KB_DATABASE_URL", None)
    log = (home / "serve.log").open("wb")
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from kb.cli import app; app()",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def wait_ready(
    base: str, server: subprocess.Popen[bytes], timeout: float = 600, log: Path | None = None
) -> None:
    """Wait until the login page answers; a server that exits first ends the run, with the
    tail of its ``log`` when one is given."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            tail = f":\n{log.read_text()[-3000:]}" if log is not None else ""
            raise SystemExit(f"the server exited with {server.returncode}{tail}")
        try:
            if httpx.get(f"{base}/login", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit("the server did not start in time")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# --------------------------------------------------------------------------- users


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    examples: list[str] = field(default_factory=list)

    def record(self, kind: str, seconds: float, ok: bool, why: str = "") -> None:
        self.latencies[kind].append(seconds * 1000)
        if not ok:
            self.errors[kind] += 1
            if len(self.examples) < 5:
                self.examples.append(f"{kind}: {why}")


async def login(client: httpx.AsyncClient, username: str, password: str) -> None:
    page = await client.get("/login")
    token = CSRF_RE.search(page.text)
    if not token:
        raise RuntimeError("no CSRF field on the login page")
    response = await client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token.group(1)},
    )
    if response.status_code != 303:
        raise RuntimeError(f"login as {username} failed: {response.status_code}")


def request_for(kind: str, rng: random.Random, reviews: list[int]) -> tuple[str, dict[str, Any]]:
    if kind == "search":
        params: dict[str, Any] = {"q": rng.choice(QUERIES)}
        if rng.random() < 0.2:
            params["since"] = rng.choice([2015, 2018, 2020])
        return "/search", params
    if kind == "review":
        return f"/reviews/{rng.choice(reviews)}", {}
    if kind == "dashboard":
        return "/themes", {}
    return "/tracker", {}


async def simulated_user(
    number: int,
    base: str,
    credentials: tuple[str, str],
    reviews: list[int],
    logged_in: asyncio.Barrier,
    deadline: list[float],
    think: float,
    stats: Stats,
    login_slots: asyncio.Semaphore,
) -> None:
    rng = random.Random(number)
    kinds, weights = list(KINDS), list(KINDS.values())
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        async with login_slots:  # argon2 costs ~0.5 s of CPU: log in a few at a time
            await login(client, *credentials)
        await logged_in.wait()
        if think > 0:
            # Users arrive at random, as between any two of their requests: released all at
            # once, 50 first requests land in the same instant, a burst no real team makes
            # (it was most of the p99 in earlier runs).
            await asyncio.sleep(min(rng.expovariate(1 / think), think * 5))
        while time.monotonic() < deadline[0]:
            kind = rng.choices(kinds, weights)[0]
            path, params = request_for(kind, rng, reviews)
            started = time.perf_counter()
            try:
                response = await client.get(path, params=params)
                ok, why = response.status_code == 200, f"{response.status_code} {path}"
            except httpx.HTTPError as exc:
                ok, why = False, f"{type(exc).__name__} {path}"
            stats.record(kind, time.perf_counter() - started, ok, why)
            if think > 0:
                await asyncio.sleep(min(rng.expovariate(1 / think), think * 5))


async def run_users(
    base: str, users: int, duration: float, think: float, logins: dict[str, Any], reviews: list[int]
) -> tuple[Stats, float]:
    """``users`` users for ``duration`` seconds after all have logged in; stats and seconds."""
    stats = Stats()
    roles = ["viewer", "panel", "admin"]
    barrier = asyncio.Barrier(users + 1)
    deadline = [float("inf")]
    slots = asyncio.Semaphore(4)
    tasks = [
        asyncio.create_task(
            simulated_user(
                i, base, logins[roles[i % 3]], reviews, barrier, deadline, think, stats, slots
            )
        )
        for i in range(users)
    ]
    await barrier.wait()
    started = time.monotonic()
    deadline[0] = started + duration
    await asyncio.gather(*tasks)
    return stats, time.monotonic() - started


# --------------------------------------------------------------------------- report


def pct(samples: list[float], q: float) -> float:
    return float(np.percentile(samples, q)) if samples else float("nan")


def report(title: str, stats: Stats, seconds: float) -> dict[str, float]:
    total = sum(len(v) for v in stats.latencies.values())
    errors = sum(stats.errors.values())
    print(f"\n{title}: {total} requests in {seconds:.1f} s = {total / seconds:.1f} req/s, "
          f"{errors} errors")  # fmt: skip
    print(
        f"  {'kind':<10} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'mean':>8} {'err':>4}"
    )
    p95s = {}
    for kind in KINDS:
        samples = stats.latencies.get(kind, [])
        p95s[kind] = pct(samples, 95)
        mean = statistics.fmean(samples) if samples else float("nan")
        print(
            f"  {kind:<10} {len(samples):>6} {pct(samples, 50):>8.1f} {p95s[kind]:>8.1f} "
            f"{pct(samples, 99):>8.1f} {mean:>8.1f} {stats.errors.get(kind, 0):>4}"
        )
    for example in stats.examples:
        print(f"  error: {example}")
    return p95s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds under load")
    parser.add_argument("--baseline", type=float, default=15.0, help="single-user seconds")
    parser.add_argument("--think", type=float, default=1.0, help="mean think time, s (0: none)")
    parser.add_argument("--passages", type=int, default=20_000)
    parser.add_argument("--keep", action="store_true", help="keep the temporary KB_HOME")
    parser.add_argument("--home", type=Path, help="KB_HOME to build in, or reuse if built")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="server processes (kb serve --workers; default one per core, as README advises)",
    )
    args = parser.parse_args(argv)

    home = args.home or Path(tempfile.mkdtemp(prefix="kb-load-"))
    home.mkdir(parents=True, exist_ok=True)
    server: subprocess.Popen[bytes] | None = None
    try:
        print(f"building the database in {home} ...", flush=True)
        built = build_database(home, args.passages)
        print(
            f"database: {built['passages']} passages, {len(built['reviews'])} published reviews "
            f"({built['synthetic_reviews']} synthetic); demo load {built['demo_seconds']:.0f} s, "
            f"scale-up {built['scale_seconds']:.0f} s",
            flush=True,
        )
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = start_server(home, port, args.workers)
        wait_ready(base, server)
        # Warm up: the first search loads the model and builds the 20k-passage index.
        started = time.perf_counter()
        asyncio.run(_warm(base, built["logins"]["admin"], args.workers))
        print(f"server up on {base}; warm-up {time.perf_counter() - started:.1f} s", flush=True)

        alone, alone_s = asyncio.run(
            run_users(base, 1, args.baseline, 0, built["logins"], built["reviews"])
        )
        base_p95 = report("single user, no think time (baseline)", alone, alone_s)
        loaded, loaded_s = asyncio.run(
            run_users(
                base, args.users, args.duration, args.think, built["logins"], built["reviews"]
            )
        )
        load_p95 = report(
            f"{args.users} users, mean think {args.think:g} s, {args.duration:g} s",
            loaded,
            loaded_s,
        )
        print("\np95 under load / p95 alone:")
        for kind in KINDS:
            print(f"  {kind:<10} {load_p95[kind] / base_p95[kind]:.2f}x")
        errors = sum(loaded.errors.values()) + sum(alone.errors.values())
        goal = load_p95["search"] <= 200 and errors == 0
        print(f"\ngoal (0 errors, p95 search <= 200 ms): {'met' if goal else 'NOT met'}")
    finally:
        if server is not None:
            stop_server(server)
            print(f"server stopped (exit {server.returncode})")
        if not args.keep and not args.home:
            shutil.rmtree(home, ignore_errors=True)
    return 0


async def _warm(base: str, admin: tuple[str, str], workers: int = 1) -> None:
    """Warm every worker: each builds its own index on its first search. Several clients at
    once (new connections are spread over the workers), more than one round per worker."""

    async def one() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=300) as client:
            await login(client, *admin)
            for query in QUERIES[:3]:
                await client.get("/search", params={"q": query})
            for path in ("/themes", "/tracker"):
                await client.get(path)

    clients = 1 if workers == 1 else 3 * workers
    await asyncio.gather(*(one() for _ in range(clients)))


if __name__ == "__main__":
    raise SystemExit(main())

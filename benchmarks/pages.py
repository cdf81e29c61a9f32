"""Page timings, one user at a time: the themes dashboard, its charts and the tracker against
the reviews list, in the same run (same machine, same database, same server).

Usage::

    .venv/bin/python benchmarks/pages.py                 # ~5k passages, 40 requests a page
    .venv/bin/python benchmarks/pages.py --passages 20000 --rounds 60

Builds the ``kb demo`` database scaled with synthetic reviews (benchmarks/load.py's builder),
starts ``kb serve`` with one worker, logs in as each demo role, warms each page twice, then
times ``--rounds`` sequential requests per page and role. Prints p50 / p95 per page and role and
each page's p95 as a multiple of the reviews list's.

Goal (issue 17): ``/themes`` and its charts p95 ≤ 2x the reviews list's p95, as every role.
Figures are printed; nothing asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import (  # noqa: E402 - benchmarks/ is not a package
    build_database,
    free_port,
    login,
    pct,
    start_server,
    stop_server,
    wait_ready,
)

PAGES = [
    "/reviews",
    "/themes",
    "/charts/heatmap.svg",
    "/charts/trend.svg",
    "/charts/recurrence.svg",
    "/tracker",
]


async def time_pages(base: str, username: str, password: str, rounds: int) -> dict[str, list]:
    """Milliseconds per request for each page, this user, after two warm-up requests."""
    out: dict[str, list[float]] = {}
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        await login(client, username, password)
        for page in PAGES:
            for _ in range(2):
                (await client.get(page)).raise_for_status()
            samples = []
            for _ in range(rounds):
                started = time.perf_counter()
                response = await client.get(page)
                samples.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
            out[page] = samples
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--passages", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--home", type=Path, help="KB_HOME to build in, or reuse if built")
    parser.add_argument("--keep", action="store_true", help="keep the temporary KB_HOME")
    args = parser.parse_args(argv)
    home = args.home or Path(tempfile.mkdtemp(prefix="kb-pages-"))
    home.mkdir(parents=True, exist_ok=True)
    server = None
    try:
        built = build_database(home, args.passages)
        print(f"database: {built['passages']} passages, {len(built['reviews'])} published reviews")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = start_server(home, port, 1)
        wait_ready(base, server)
        worst = 0.0
        print(f"{'role':8} {'page':24} {'p50 ms':>8} {'p95 ms':>8} {'p95 / reviews':>14}")
        for role, (username, password) in sorted(built["logins"].items()):
            timings = asyncio.run(time_pages(base, username, password, args.rounds))
            base_p95 = pct(timings["/reviews"], 95)
            for page, samples in timings.items():
                ratio = pct(samples, 95) / base_p95
                if page.startswith(("/themes", "/charts")):
                    worst = max(worst, ratio)
                print(
                    f"{role:8} {page:24} {pct(samples, 50):8.1f} {pct(samples, 95):8.1f} "
                    f"{ratio:13.2f}x"
                )
        met = "met" if worst <= 2 else "NOT met"
        print(f"\ngoal (/themes and charts p95 <= 2x the reviews list): {met} (worst {worst:.2f}x)")
    finally:
        if server is not None:
            stop_server(server)
        if not args.keep and not args.home:
            shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

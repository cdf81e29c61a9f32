"""``kb serve`` for benchmarks/index_memory.py: start it, search through every worker over HTTP,
measure every server process, stop it.

Kept apart from index_memory.py so each file stays readable; nothing here is a test helper.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from load import CSRF_RE, free_port, wait_ready

ROOT = Path(__file__).resolve().parents[1]
#: The synthesised home's two logins share it; the home is deleted after the run.
PASSWORD = "benchmark passphrase for index memory"
# "[pid] 127.0.0.1:5555 - "GET /api/search?q=...&as=admin HTTP/1.1" 200" (kb/cli/serving.py)
ACCESS_RE = re.compile(r'^\[(\d+)\] .*"GET /api/search\?[^" ]*&as=(admin|viewer) HTTP/1\.1" 200')
ROLES = ("admin", "viewer")


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _login(base: str, username: str) -> httpx.Cookies:
    with httpx.Client(base_url=base, timeout=60) as client:
        token = CSRF_RE.search(client.get("/login").text)
        if token is None:
            raise SystemExit("no CSRF field on the login page")
        answer = client.post(
            "/login",
            data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)},
        )
        if answer.status_code != 303:
            raise SystemExit(f"login as {username} failed: {answer.status_code}")
        return client.cookies


def _answered(log: Path) -> Counter[tuple[int, str]]:
    """(worker pid, login) → searches answered, from the access log."""
    counts: Counter[tuple[int, str]] = Counter()
    for line in log.read_text(errors="replace").splitlines():
        match = ACCESS_RE.match(line)
        if match:
            counts[(int(match.group(1)), match.group(2))] += 1
    return counts


def _search_all_workers(
    base: str, log: Path, workers: list[int], queries: list[str], per_worker: int
) -> Counter[tuple[int, str]]:
    """Searches on fresh connections (so any worker may take each), a few at once, until
    every worker has answered ``per_worker`` for each login or the queries run out."""
    cookies = {role: _login(base, role) for role in ROLES}

    def one(i: int) -> None:
        role = ROLES[i % 2]
        answer = httpx.get(
            f"{base}/api/search",
            params={"q": queries[i % len(queries)], "mode": "hybrid", "as": role},
            cookies=cookies[role],
            headers={"Connection": "close"},
            timeout=120,
        )
        answer.raise_for_status()

    sent = 0
    with ThreadPoolExecutor(max_workers=max(2, len(workers))) as pool:
        while sent < len(queries) * 4:
            batch = range(sent, sent + 4 * len(workers))
            list(pool.map(one, batch))
            sent += len(batch)
            time.sleep(0.2)  # the access log is written after the answer
            counts = _answered(log)
            if all(counts[(pid, role)] >= per_worker for pid in workers for role in ROLES):
                break
    return _answered(log)


def run_serve(
    env: dict[str, str],
    home: Path,
    workers: int,
    queries: list[str],
    per_worker: int,
    measure: Callable[[int], Any],
    smaps: bool = False,
) -> list[dict]:
    """``kb serve --workers N --no-worker``; reports for the master and each worker, each with
    its ``memory`` (``measure(pid)``, read while all of them are alive)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = home / f"serve-{workers}.log"
    command = [sys.executable, "-m", "kb", "serve", "--no-worker"]
    command += ["--port", str(port), "--workers", str(workers)]
    started = time.perf_counter()
    with log.open("wb") as out:
        server = subprocess.Popen(
            command, cwd=ROOT, env={**env, "KB_LOG_LEVEL": "INFO"}, stdout=out, stderr=out
        )
    try:
        wait_ready(base, server, timeout=900, log=log)
        ready = time.perf_counter() - started
        pids = _children(server.pid)
        counts = _search_all_workers(base, log, pids, queries, per_worker)
        time.sleep(1.0)  # let every worker settle before reading its memory
        reports: list[dict] = [{"pid": server.pid, "parent": True, "seconds": ready}]
        for pid in pids:
            answered = {role: counts[(pid, role)] for role in ROLES}
            reports.append({"pid": pid, "seconds": ready, "answered": answered})
        for report in reports:
            report["memory"] = measure(int(report["pid"]))
        if smaps and pids:
            reports[1]["smaps"] = worker_smaps(pids[0])
        return reports
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def worker_smaps(pid: int, top: int = 15) -> list[tuple[float, float, str]]:
    """(Private_Dirty MB, Rss MB, mapping) of ``pid``'s mappings holding most private dirty
    memory: what a forked worker has written to (copied) or allocated itself."""
    rows: list[tuple[float, float, str]] = []
    name, dirty, rss = "", 0.0, 0.0
    with open(f"/proc/{pid}/smaps") as fh:
        for line in fh:
            first = line.split(maxsplit=1)[0]
            if re.match(r"^[0-9a-f]+-[0-9a-f]+$", first):
                if dirty:
                    rows.append((dirty, rss, name))
                parts = line.split()
                name = parts[5] if len(parts) > 5 else "[anonymous]"
                dirty = rss = 0.0
            elif first == "Private_Dirty:":
                dirty = int(line.split()[1]) / 1024
            elif first == "Rss:":
                rss = int(line.split()[1]) / 1024
    if dirty:
        rows.append((dirty, rss, name))
    merged: dict[str, list[float]] = {}
    for d, r, n in rows:
        key = n if n.startswith(("/", "[")) else "[anonymous]"
        merged.setdefault(key, [0.0, 0.0])
        merged[key][0] += d
        merged[key][1] += r
    ordered = sorted(((d, r, n) for n, (d, r) in merged.items() if d >= 0.1), reverse=True)
    return ordered[:top]

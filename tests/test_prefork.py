"""``kb serve`` forks its workers from a preloaded parent: what must survive the fork, and what
must not be shared (kb/cli/serving.py).

The fork tests fork a fresh interpreter of their own (a script in a subprocess), never the test
process: pytest's own threads would make a fork of it a different thing from the server's.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine

from kb.services.embedding import reembed_stale
from tests.web_support import CSRF_RE, PASSWORD, World

pytest_plugins = ["tests.web_fixtures"]

ROOT = Path(__file__).resolve().parents[1]


def _run_script(script: str, *args: str, timeout: float = 300) -> dict:
    """Run ``script`` in a fresh interpreter with this test's KB_* environment; its last
    stdout line is a JSON report."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# Forks once the engine has a pooled connection; the child reports what its pool holds and
# whether it can query, then the parent checks its own connection is the one it had, unbroken.
POOL_SCRIPT = r"""
import json, os, sys
from sqlalchemy import text
from kb.db import get_engine

engine = get_engine(sys.argv[1])
with engine.connect() as conn:
    conn.execute(text("select 1"))
    before = id(conn.connection.dbapi_connection)
assert engine.pool.checkedin() == 1
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    report = {"pooled_in_child": engine.pool.checkedin()}
    with engine.connect() as conn:
        report["child_query"] = conn.execute(text("select 41 + 1")).scalar()
        report["child_reused_parent_connection"] = id(conn.connection.dbapi_connection) == before
    os.write(write, json.dumps(report).encode())
    os._exit(0)
os.close(write)
_, status = os.waitpid(pid, 0)
child = json.loads(os.read(read, 10000))
with engine.connect() as conn:
    child["parent_query"] = conn.execute(text("select 2 + 2")).scalar()
    child["parent_kept_its_connection"] = id(conn.connection.dbapi_connection) == before
child["child_status"] = status
print(json.dumps(child))
"""


def test_a_forked_child_never_shares_the_parents_database_connections(
    engine: Engine, db_url: str
) -> None:
    report = _run_script(POOL_SCRIPT, db_url)
    assert report["child_status"] == 0
    assert report["pooled_in_child"] == 0  # kb/db.py emptied the inherited pool
    assert report["child_query"] == 42 and report["child_reused_parent_connection"] is False
    # The child did not close the parent's connection on its way out (PostgreSQL: a terminate
    # message down the shared socket would have ended it; pre-ping would then have replaced it).
    assert report["parent_query"] == 4 and report["parent_kept_its_connection"] is True


# Loads the query model and runs it (as the server's preload does), forks two children that
# embed texts the parent never embedded and use the per-process embedding thread of ingest.
MODEL_SCRIPT = r"""
import json, os
import numpy as np

def threads():
    return len(os.listdir("/proc/self/task"))

import onnxruntime  # starts its one housekeeping thread at import
from kb.services import analysis
from kb.services.embedding import embedder_for

embedder = embedder_for()
before = threads()
embedder.encode(["warm up"])
report = {"backend": embedder.backend, "threads_made_by_the_session": threads() - before}
session = embedder._onnx.session()
texts = ["neglect of a baby at home", "information was not shared between agencies"]
children = []
for text in texts:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        vector = embedder.encode([text])[0]
        pool = analysis._embedding_thread()
        out = {
            "vector": vector.tolist(),
            "same_session": embedder._onnx.session() is session,
            "pool_answers": pool.submit(lambda: os.getpid()).result(timeout=30) == os.getpid(),
        }
        os.write(write, json.dumps(out).encode())
        os._exit(0)
    os.close(write)
    children.append((pid, read))
results = []
for pid, read in children:
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    results.append({**json.loads(b"".join(chunks)), "status": status})
expected = embedder.encode(texts)
report["children"] = [
    {
        "status": r["status"],
        "same_session": r["same_session"],
        "pool_answers": r["pool_answers"],
        "cosine": float(np.dot(np.asarray(r["vector"]), expected[i])),
    }
    for i, r in enumerate(results)
]
print(json.dumps(report))
"""


def test_the_query_model_loaded_before_a_fork_embeds_in_the_children(kb_env: Path) -> None:
    report = _run_script(MODEL_SCRIPT)
    if report["backend"] != "onnx-int8":
        pytest.skip("onnxruntime is not installed: the server uses torch, limited to 1 thread")
    # One intra-op thread and sequential execution: the session starts no thread pool, so
    # nothing it needs is left behind in the parent by the fork.
    assert report["threads_made_by_the_session"] == 0
    assert len(report["children"]) == 2
    for child in report["children"]:
        assert child["status"] == 0
        assert child["same_session"] is True  # not reloaded: the parent's pages are shared
        assert child["cosine"] > 0.9999  # the child's vector is the parent's vector
        assert child["pool_answers"] is True  # the pid-keyed ingest thread is the child's own


def test_preload_loads_everything_before_the_fork_and_freezes_it(
    engine: Engine, web_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc

    import torch

    from kb.cli import serving
    from kb.services.search import INDEXES

    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "true")  # restored afterwards
    threads = torch.get_num_threads()
    INDEXES.clear()
    frozen_before = gc.get_freeze_count()
    try:
        app = serving.preload(secure_cookies=False)
        key = engine.url.render_as_string(hide_password=False)
        assert key in INDEXES._indexes  # the index is built (or mapped) before any fork
        assert gc.get_freeze_count() > frozen_before
        assert torch.get_num_threads() == 1  # no OpenMP pool can start in the parent
        assert os.environ["TOKENIZERS_PARALLELISM"] == "false"
        assert app.state.engine.pool.checkedin() == 0  # no connection left to inherit
    finally:
        gc.unfreeze()
        torch.set_num_threads(threads)
        INDEXES.clear()


# --------------------------------------------------------------------------- the real server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_ready(base: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(f"{base}/login", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("kb serve did not start:\n" + log.read_text()[-3000:])


def _logged_in(base: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=60)
    page = client.get("/login")
    token = CSRF_RE.search(page.text)
    assert token, "no CSRF field on the login page"
    response = client.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)}
    )
    assert response.status_code == 303, response.text
    return client


def test_kb_serve_with_two_workers_searches_in_both_and_stops_cleanly(
    engine: Engine, web_world: World, tmp_path: Path
) -> None:
    assert reembed_stale(engine) > 0  # vectors, so a hybrid search embeds its query
    engine.dispose()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "kb", "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_ready(base, server, log)
        processes = _descendants(server.pid)
        text = log.read_text()
        workers = {
            int(line.rsplit(" ", 1)[1]) for line in text.splitlines() if "Booting worker" in line
        }
        assert len(workers) == 2 and workers <= processes, text
        assert len(processes) == 3  # the two workers and the `kb worker` job process
        clients = {name: _logged_in(base, name) for name in ("admin", "viewer")}
        served_by: dict[int, set[str]] = {pid: set() for pid in workers}
        for attempt in range(200):
            name = ("admin", "viewer")[attempt % 2]
            response = clients[name].get(
                "/api/search",
                params={"q": f"midwife and health visitor {attempt}", "mode": "hybrid"},
                headers={"Connection": "close"},  # a new connection: any worker may take it
            )
            assert response.status_code == 200, response.text
            assert response.json()["mode"] == "hybrid"
            assert response.json()["hits"], "a hybrid search found nothing"
            time.sleep(0.05)
            for line in log.read_text().splitlines():
                if f"visitor+{attempt}&" in line and line.startswith("["):
                    served_by[int(line[1 : line.index("]")])].add(name)
            if all(len(names) == 2 for names in served_by.values()):
                break
        assert all(served_by.values()), f"one worker answered no search: {served_by}"
        assert all(len(names) == 2 for names in served_by.values()), served_by
        for client in clients.values():
            client.close()
    finally:
        processes = _descendants(server.pid) | {server.pid}
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    assert code == 0, log.read_text()[-3000:]
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in processes) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in processes if _alive(pid)], "processes left behind"
    assert "Shutting down: Master" in log.read_text()

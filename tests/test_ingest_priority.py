"""Ingest runs below the web server's CPU priority (KB_INGEST_NICE): ``kb worker`` (also the
one ``kb serve`` starts) and a terminal ``kb ingest`` lower the niceness of every thread they
have, never raise it, and do it once however often they are asked.

Processes are started for real: a niceness cannot be raised back without privileges, so
lowering the test process's own would slow every later test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]


def _thread_niceness(pid: int) -> list[int]:
    """The niceness of each thread of ``pid`` (field 19 of /proc/PID/task/TID/stat)."""
    values = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread has just ended
            continue
        values.append(int(stat.rsplit(")", 1)[1].split()[16]))
    return values


def _env(tmp_path: Path, nice: int) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KB_HOME": str(tmp_path / "home")}
    env.update({"KB_INGEST_NICE": str(nice), "HF_HUB_OFFLINE": "1"})
    env["KB_DATABASE_URL"] = f"sqlite:///{tmp_path / 'kb.sqlite3'}"
    return env


pytestmark = pytest.mark.skipif(
    not Path("/proc/self/task").is_dir(), reason="per-thread niceness is read from Linux /proc"
)


def test_kb_worker_lowers_the_priority_of_all_its_threads(tmp_path: Path) -> None:
    target = min(19, os.getpriority(os.PRIO_PROCESS, 0) + 6)
    worker = subprocess.Popen(
        [sys.executable, "-m", "kb", "worker", "--poll", "0.2"],
        cwd=ROOT,
        env=_env(tmp_path, target),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        seen: list[int] = []
        while time.monotonic() < deadline and worker.poll() is None:
            seen = _thread_niceness(worker.pid)
            # Running its loop (the database made, jobs polled): more than the main thread.
            if (tmp_path / "kb.sqlite3").exists() and seen and min(seen) == target:
                break
            time.sleep(0.2)
        assert worker.poll() is None, worker.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
        assert os.getpriority(os.PRIO_PROCESS, worker.pid) == target
        assert seen and all(value == target for value in seen)
    finally:
        worker.terminate()
        worker.wait(timeout=20)


def test_lowering_is_idempotent_covers_running_threads_and_never_raises(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import os, threading, time
        from kb.cli.common import lower_priority
        ready = threading.Event()
        threading.Thread(target=lambda: (ready.set(), time.sleep(5)), daemon=True).start()
        ready.wait()
        start = os.getpriority(os.PRIO_PROCESS, 0)
        first = lower_priority(start + 4)
        second = lower_priority(start + 4)
        lower = lower_priority(start + 1)
        zero = lower_priority(0)
        tasks = [int(t.name) for t in os.scandir("/proc/self/task")]
        niceness = [os.getpriority(os.PRIO_PROCESS, t) for t in tasks]
        print(start, first, second, lower, zero, *niceness)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=_env(tmp_path, 0),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    start, first, second, lower, zero, *threads = map(int, done.stdout.split())
    target = min(19, start + 4)
    assert (first, second, lower, zero) == (target, target, target, target)
    assert len(threads) >= 2 and set(threads) == {target}


def test_kb_ingest_lowers_its_priority_to_the_setting(
    kb_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kb.cli import app
    from kb.cli import corpus as corpus_cli
    from kb.config import get_settings

    asked: list[int] = []
    monkeypatch.setattr(corpus_cli, "lower_priority", asked.append)
    monkeypatch.setenv("KB_INGEST_NICE", "13")
    monkeypatch.setenv("KB_EMBED_ON_INGEST", "false")
    get_settings.cache_clear()
    document = tmp_path / "child-q.md"
    document.write_text("# Learning review: Child Q\n\n## Findings\n\nThe GP was not told.\n")
    result = CliRunner().invoke(app, ["ingest", str(document), "--json", "--no-tag"])
    assert result.exit_code == 0, result.output
    assert asked == [13]


def test_an_ingest_waits_for_a_write_lock_a_web_request_gives_up_on(
    kb_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer holds the lock 1.5 s: with KB_DB_BUSY_TIMEOUT 0.3 s a plain connection
    fails busy; one given the ingest's longer wait stores its row once the lock is free."""
    import threading

    from sqlalchemy import create_engine, text

    from kb import db as kb_db
    from kb.config import get_settings

    monkeypatch.setenv("KB_DB_BUSY_TIMEOUT", "0.3")
    get_settings.cache_clear()
    kb_db.get_engine.cache_clear()
    engine = kb_db.get_engine()
    kb_db.init_db(engine)
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's single writer; PostgreSQL locks rows, not the database")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE probe (x INTEGER)"))
    holder = create_engine(engine.url, connect_args={"check_same_thread": False})
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        with holder.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            locked.set()
            release.wait(10)
            conn.exec_driver_sql("COMMIT")

    thread = threading.Thread(target=hold)
    thread.start()
    locked.wait(10)
    try:
        with pytest.raises(Exception) as refused, engine.begin() as conn:
            conn.execute(text("INSERT INTO probe VALUES (1)"))
        assert kb_db.is_busy_error(refused.value)
        patient = kb_db.wait_longer_for_locks(engine, 30)
        threading.Timer(1.5, release.set).start()
        began = time.monotonic()
        with patient.begin() as conn:
            conn.execute(text("INSERT INTO probe VALUES (2)"))
        assert time.monotonic() - began >= 1.0
    finally:
        release.set()
        thread.join(10)
        holder.dispose()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT x FROM probe")).scalars().all() == [2]


def test_kb_ingest_and_kb_worker_wait_longer_for_locks(
    kb_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kb.cli import admin as admin_cli
    from kb.cli import app
    from kb.cli import corpus as corpus_cli
    from kb.config import get_settings

    asked: list[float] = []

    def record(engine, seconds):  # type: ignore[no-untyped-def]
        asked.append(seconds)
        return engine

    monkeypatch.setattr(corpus_cli, "wait_longer_for_locks", record)
    monkeypatch.setattr(admin_cli, "wait_longer_for_locks", record)
    monkeypatch.setenv("KB_INGEST_LOCK_WAIT", "42")
    monkeypatch.setenv("KB_EMBED_ON_INGEST", "false")
    get_settings.cache_clear()
    document = tmp_path / "child-r.md"
    document.write_text("# Learning review: Child R\n\n## Findings\n\nThe school was not told.\n")
    assert CliRunner().invoke(app, ["ingest", str(document), "--json", "--no-tag"]).exit_code == 0
    assert CliRunner().invoke(app, ["worker", "--once"]).exit_code == 0
    assert asked == [42.0, 42.0]

"""Ingest never starves the web server: its analysis (tagging, embedding) runs in a thread at
CPU niceness KB_INGEST_NICE while the caller, which then holds the database's write lock,
keeps its priority; and ``kb ingest`` / ``kb worker`` wait KB_INGEST_LOCK_WAIT for that lock
instead of failing when another document is being stored.

Niceness is only ever lowered in threads the tests start: a priority cannot be raised back
without privileges, so lowering the test process's own would slow every later test.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kb.services.analysis import PassageAnalysis, lower_this_thread

pytestmark = pytest.mark.skipif(
    not hasattr(os, "getpriority") or not Path("/proc/self/task").is_dir(),
    reason="per-thread niceness (Linux)",
)


def _niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


class RecordingTagger:
    """A tagger that notes the niceness and thread it ran in (and can fail)."""

    def __init__(self, fail: bool = False) -> None:
        self.seen: list[tuple[int, int]] = []
        self.fail = fail

    def tag_many(self, texts: list[str]) -> list[list[object]]:
        self.seen.append((_niceness(), threading.get_native_id()))
        if self.fail:
            raise ValueError("the tagger broke on purpose")
        return [[] for _ in texts]


def test_analysis_runs_at_ingest_niceness_and_the_caller_keeps_its_own() -> None:
    before = _niceness()
    target = min(19, before + 5)
    tagger = RecordingTagger()
    analysis = PassageAnalysis(tagger, None, niceness=target)  # type: ignore[arg-type]
    analysis.prepare(["The GP was not told.", "The school was not told."])
    [(niceness, thread)] = tagger.seen
    assert niceness == target and thread != threading.get_native_id()
    assert _niceness() == before  # the caller goes on to the write transaction at its own
    assert set(analysis._prepared) == {"The GP was not told.", "The school was not told."}


def test_analysis_at_niceness_zero_runs_in_the_callers_thread() -> None:
    tagger = RecordingTagger()
    PassageAnalysis(tagger, None, niceness=0).prepare(["a passage"])  # type: ignore[arg-type]
    assert tagger.seen == [(_niceness(), threading.get_native_id())]


def test_a_failure_in_the_analysis_thread_reaches_the_caller() -> None:
    analysis = PassageAnalysis(RecordingTagger(fail=True), None, niceness=19)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="broke on purpose"):
        analysis.prepare(["a passage"])


def test_lowering_a_thread_is_idempotent_and_never_raises_its_priority() -> None:
    results: list[int] = []

    def run() -> None:
        start = _niceness()
        target = min(19, start + 4)
        results.extend(
            [target, lower_this_thread(target), lower_this_thread(target)]
            + [lower_this_thread(start), lower_this_thread(0), _niceness()]
        )

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    target, *seen = results
    assert seen == [target] * 5


def test_the_ingest_hook_takes_kb_ingest_nice(
    kb_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kb.config import get_settings
    from kb.services.analysis import passage_hook

    monkeypatch.setenv("KB_INGEST_NICE", "13")
    get_settings.cache_clear()
    assert passage_hook(get_settings(), embed=False).niceness == 13


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


def test_the_longer_wait_applies_to_every_new_connection(kb_env: Path) -> None:
    from sqlalchemy import text

    from kb import db as kb_db

    engine = kb_db.get_engine()
    kb_db.init_db(engine)
    kb_db.wait_longer_for_locks(engine, 7)
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 7000
        else:
            assert conn.execute(text("SHOW lock_timeout")).scalar() == "7s"


class RecordingEmbedder:
    """An embedder that notes the niceness and thread it encoded in."""

    model_id = "recording-embedder"

    def __init__(self) -> None:
        self.seen: list[tuple[int, int]] = []

    def encode(self, texts: list[str]) -> list[object]:
        import numpy as np

        self.seen.append((_niceness(), threading.get_native_id()))
        return [np.ones(4, dtype=np.float32) for _ in texts]


def test_embedding_in_the_background_runs_at_ingest_niceness_too() -> None:
    import kb.services.analysis as analysis_module

    before = _niceness()
    target = min(19, before + 4)
    embedder = RecordingEmbedder()
    analysis_module._EMBEDDING = None  # a fresh embedding thread, dropped again below
    try:
        analysis = PassageAnalysis(RecordingTagger(), embedder, niceness=target)  # type: ignore[arg-type]
        analysis.prepare(["The health visitor was not told.", "Nobody asked about the partner."])
        [(niceness, thread)] = embedder.seen
        assert niceness >= target and thread != threading.get_native_id()
        assert _niceness() == before
        assert all(vector is not None for _, vector in analysis._prepared.values())
    finally:
        if analysis_module._EMBEDDING is not None:
            analysis_module._EMBEDDING[1].shutdown(wait=True)
        analysis_module._EMBEDDING = None

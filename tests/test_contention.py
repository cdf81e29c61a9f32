"""A busy database is "try again" (503 + Retry-After), never a bare 500; reads never wait on
their audit line; SQLite runs in WAL mode with the configured busy timeout."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from kb import db as kb_db
from kb.config import get_settings
from kb.models import AuditEvent
from kb.services import audit_reads
from tests.conftest import BACKEND
from tests.web_support import api_csrf

pytest_plugins = ["tests.web_fixtures"]

sqlite_only = pytest.mark.skipif(BACKEND != "sqlite", reason="holds SQLite's write lock")


@pytest.fixture
def short_busy(kb_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Writers give up after 0.3 s instead of 10 s."""
    monkeypatch.setenv("KB_DB_BUSY_TIMEOUT", "0.3")
    get_settings.cache_clear()
    kb_db.get_engine.cache_clear()


@pytest.fixture
def write_lock(engine) -> Iterator[sqlite3.Connection]:  # type: ignore[no-untyped-def]
    """Another process's long write transaction: SQLite's one write lock, held."""
    path = engine.url.database
    holder = sqlite3.connect(path, isolation_level=None, timeout=0)
    holder.execute("BEGIN IMMEDIATE")
    yield holder
    holder.execute("ROLLBACK")
    holder.close()


@sqlite_only
def test_sqlite_uses_wal_and_the_configured_busy_timeout(short_busy, engine) -> None:
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 300


@sqlite_only
def test_busy_write_is_json_503_with_retry_after(short_busy, clients, web_world, request) -> None:
    c = clients["panel-a"]
    headers = api_csrf(c)
    request.getfixturevalue("write_lock")
    started = time.perf_counter()
    response = c.post(
        f"/api/tags/{web_world.hidden_tags[0]}/confirm", json={"version": 1}, headers=headers
    )
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "5"
    assert response.headers["content-type"].startswith("application/json")
    assert "busy" in response.json()["detail"] and "try again" in response.json()["detail"]
    assert time.perf_counter() - started < 5


@sqlite_only
def test_busy_form_post_is_a_busy_page_in_the_site_layout(
    short_busy, clients, web_world, request
) -> None:
    c = clients["panel-a"]
    headers = api_csrf(c)
    request.getfixturevalue("write_lock")
    response = c.post(
        f"/tags/{web_world.hidden_tags[0]}/confirm",
        data={"version": "1"},
        headers=headers,
        follow_redirects=False,
    )
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.headers["content-type"].startswith("text/html")
    assert "Busy, try again" in response.text
    assert "content-security-policy" in response.headers
    assert "<nav" in response.text  # the site's own layout, not a bare error


@sqlite_only
def test_the_tag_is_decided_once_the_lock_is_released(
    short_busy, clients, web_world, engine
) -> None:
    """503 changed nothing: the same request succeeds afterwards."""
    c = clients["panel-a"]
    headers = api_csrf(c)
    tag = web_world.hidden_tags[0]
    holder = sqlite3.connect(engine.url.database, isolation_level=None, timeout=0)
    holder.execute("BEGIN IMMEDIATE")
    try:
        busy = c.post(f"/api/tags/{tag}/confirm", json={"version": 1}, headers=headers)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert busy.status_code == 503
    done = c.post(f"/api/tags/{tag}/confirm", json={"version": 1}, headers=headers)
    assert done.status_code == 200 and done.json()["version_id"] == 2


@sqlite_only
def test_read_with_audit_line_does_not_wait_for_the_lock(
    short_busy, clients, web_world, engine
) -> None:
    """An admin opening an embargoed review while an ingest holds the lock: the page comes
    at once, and the audit line is written when the lock is free."""
    c = clients["admin"]
    holder = sqlite3.connect(engine.url.database, isolation_level=None, timeout=0)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.perf_counter()
        response = c.get(f"/api/reviews/{web_world.hidden_review}")
        elapsed = time.perf_counter() - started
        assert response.status_code == 200
        assert elapsed < 2.0
        assert audit_reads.pending() == 1
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert audit_reads.flush(timeout=20)
    with Session(engine) as session:
        views = session.exec(select(AuditEvent).where(AuditEvent.action == "review.view")).all()
    assert [(v.username, v.object_id) for v in views] == [("admin", str(web_world.hidden_review))]


def test_audit_line_is_written_at_once_when_the_database_is_free(clients, web_world, engine):
    clients["admin"].get(f"/api/reviews/{web_world.hidden_review}")
    assert audit_reads.pending() == 0
    with Session(engine) as session:
        views = session.exec(select(AuditEvent).where(AuditEvent.action == "review.view")).all()
    assert len(views) == 1


def test_busy_errors_are_recognised_and_others_are_not() -> None:
    class PgError(Exception):
        sqlstate = "55P03"

    locked = OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))
    assert kb_db.is_busy_error(locked)
    assert kb_db.is_busy_error(OperationalError("UPDATE", {}, PgError("lock timeout")))
    other = OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: x"))
    assert not kb_db.is_busy_error(other)
    assert not kb_db.is_busy_error(ValueError("database is locked"))


@sqlite_only
def test_a_busy_audit_write_leaves_no_short_timeout_behind(short_busy, engine) -> None:
    """The immediate attempt waits only 0.2 s; the pooled connection it used must go back with
    the engine's own timeout, or later requests would give up after 0.2 s too."""
    from kb.models import AuditEvent as Event

    holder = sqlite3.connect(engine.url.database, isolation_level=None, timeout=0)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(OperationalError):
            audit_reads._write(engine, Event(username="u", action="a", object_type="t"), wait=0.05)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    connections = [engine.connect() for _ in range(engine.pool.size())]
    try:
        timeouts = {c.exec_driver_sql("PRAGMA busy_timeout").scalar() for c in connections}
    finally:
        for c in connections:
            c.close()
    assert timeouts == {300}

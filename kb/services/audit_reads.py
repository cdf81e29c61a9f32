"""Audit lines of reads, written without ever blocking the read.

Why: a panel member's search that shows embargoed hits must leave an audit line, but on SQLite
every write waits for the one writer; when the audit line shared the search's transaction, a
long ingest made searches wait 30 s and then fail. Here each line is written in its own short
transaction on its own connection, waiting at most ``IMMEDIATE_WAIT`` seconds; if the database
is still busy the line goes to an in-process queue that a daemon thread writes as soon as the
lock is free (retrying with back-off), and the read returns at once. ``flush`` waits for the
queue (process exit, tests); the queue only loses lines if the process is killed while the
database stays locked, which is logged.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time

from sqlalchemy import insert
from sqlalchemy.engine import Connection, Engine

from kb.db import is_busy_error
from kb.models import AuditEvent

log = logging.getLogger(__name__)

IMMEDIATE_WAIT = 0.2
RETRIES = 20
_QUEUE: queue.Queue[tuple[Engine, AuditEvent]] = queue.Queue()
_WRITER: threading.Thread | None = None
_WRITER_LOCK = threading.Lock()


def record_read(engine: Engine, event: AuditEvent) -> None:
    """Store ``event`` now if the database is free within IMMEDIATE_WAIT, else soon after."""
    try:
        _write(engine, event, wait=IMMEDIATE_WAIT)
    except Exception as exc:
        if not is_busy_error(exc):
            raise
        _QUEUE.put((engine, event))
        _start_writer()


def pending() -> int:
    """How many lines are waiting for the database (for tests and the log)."""
    return _QUEUE.unfinished_tasks


def flush(timeout: float = 30.0) -> bool:
    """Wait up to ``timeout`` seconds for queued lines to be written; False if some remain."""
    deadline = time.monotonic() + timeout
    while _QUEUE.unfinished_tasks and time.monotonic() < deadline:
        time.sleep(0.02)
    return not _QUEUE.unfinished_tasks


def _write(engine: Engine, event: AuditEvent, *, wait: float | None) -> None:
    """Insert ``event`` in a transaction of its own; on SQLite with ``wait``, waiting at most
    that long for the write lock. The connection goes back to the pool with the engine's own
    busy timeout restored, whether the insert succeeded or not."""
    row = event.model_dump(exclude={"id"})
    short = wait is not None and engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        if short:
            conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(wait * 1000)}")  # type: ignore[operator]
        try:
            conn.execute(insert(AuditEvent.__table__).values(**row))  # type: ignore[attr-defined]
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            if short:
                _restore_timeout(conn)


def _restore_timeout(conn: Connection) -> None:
    from kb.config import get_settings

    ms = int(max(0.1, get_settings().db_busy_timeout) * 1000)
    try:
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {ms}")
        conn.rollback()
    except Exception:  # noqa: BLE001 - a broken connection is discarded by the pool anyway
        log.debug("could not restore busy_timeout", exc_info=True)
        conn.invalidate()


def _start_writer() -> None:
    global _WRITER
    with _WRITER_LOCK:
        if _WRITER is None or not _WRITER.is_alive():
            _WRITER = threading.Thread(target=_drain, name="kb-audit-reads", daemon=True)
            _WRITER.start()


def _drain() -> None:
    while True:
        engine, event = _QUEUE.get()
        try:
            for attempt in range(RETRIES):
                try:
                    _write(engine, event, wait=None)
                    break
                except Exception as exc:  # noqa: BLE001 - retried, then logged
                    if not is_busy_error(exc) or attempt == RETRIES - 1:
                        log.error("audit line %s lost: %s", event.action, exc)
                        break
                    time.sleep(min(0.1 * 2**attempt, 5.0))
        finally:
            _QUEUE.task_done()


atexit.register(flush, 10.0)

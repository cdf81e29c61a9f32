"""Engine and sessions: the one place that opens database connections.

SQLite is the embedded default (one file in KB_HOME, WAL mode so readers do not block the
ingest writer); PostgreSQL is the multi-user deployment with a connection pool. The schema is
owned by Alembic: ``init_db`` upgrades to head, so an existing database is migrated in place.

Every engine made here also keeps the ``data_version`` row (kb/models.py) that cached results
are keyed by (kb/services/cache.py): a cursor event marks the connection that ran a statement
writing anything but users, logouts and audit events, and the connection's commit event bumps
the row on that same connection just before the commit, inside the transaction; rollback and
the pool's check-in clear the mark.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, create_engine

from kb.config import get_settings, private_dir, private_file

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def make_engine(url: str) -> Engine:
    """Create an engine tuned for the backend behind ``url``.

    Both backends wait at most KB_DB_BUSY_TIMEOUT for a lock (SQLite's busy timeout, PostgreSQL's
    lock_timeout and pool timeout); past it the statement fails with an error that
    :func:`is_busy_error` recognises and the web app answers 503 + Retry-After.
    """
    settings = get_settings()
    timeout = max(0.1, settings.db_busy_timeout)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": timeout})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(
            url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_pool_size,
            pool_pre_ping=True,
            pool_timeout=timeout,
            connect_args={"options": f"-c lock_timeout={int(timeout * 1000)}"},
        )
    track_data_version(engine)
    _ENGINES.add(engine)
    return engine


#: Every engine made here, so a forked child can leave their connections to the parent.
_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def _renew_pools_in_child() -> None:
    """After ``fork``, in the child: give every engine an empty pool of its own.

    Why: ``kb serve`` forks its workers from a parent that has already used the database
    (kb/cli/serving.py). A pooled connection copied into a child is the same socket (or SQLite
    handle) as the parent's: two processes talking on one connection mix up their answers.
    ``dispose(close=False)`` drops the copies without closing them, since closing would end the
    parent's connection too (PostgreSQL's terminate message goes down the shared socket).
    """
    for engine in list(_ENGINES):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_renew_pools_in_child)


def wait_longer_for_locks(engine: Engine, seconds: float) -> Engine:
    """Let every connection of ``engine`` wait up to ``seconds`` for a lock (KB_INGEST_LOCK_WAIT).

    Why: a web request should give up quickly (KB_DB_BUSY_TIMEOUT, then a 503 the user can
    retry), but an ingest has nobody waiting on it and minutes of analysis behind it. With the
    web's timeout, two documents stored at the same moment (a web upload's job and a terminal
    ``kb ingest``) made the second fail with "database is locked" whenever the first one's
    write took longer than that on a busy machine. Connections already pooled are closed so
    that every later one gets the longer wait.
    """
    ms = int(max(0.1, seconds) * 1000)
    sqlite = engine.dialect.name == "sqlite"

    def on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {ms}" if sqlite else f"SET lock_timeout = {ms}")
        cursor.close()
        if not sqlite:
            dbapi_connection.commit()

    event.listen(engine, "connect", on_connect)
    engine.dispose()
    return engine


#: SQLite's and PostgreSQL's ways of saying "someone else holds the lock, try later".
_BUSY_MESSAGES = ("database is locked", "database table is locked", "database is busy")
_BUSY_SQLSTATES = frozenset({"55P03", "40001", "40P01"})  # lock timeout, serialization, deadlock


def is_busy_error(exc: BaseException) -> bool:
    """Whether ``exc`` means the database was too busy, not that the request was wrong."""
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    if isinstance(exc, PoolTimeout):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    orig = getattr(exc, "orig", None)
    if getattr(orig, "sqlstate", None) in _BUSY_SQLSTATES:
        return True
    return any(text in str(orig or exc).lower() for text in _BUSY_MESSAGES)


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    """Foreign keys on (SQLite ignores them otherwise) and WAL for concurrent readers."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# --------------------------------------------------------------------------- data version

#: Tables no cached result reads: writing them (a login, a logout, the audit line of a page
#: view) must not throw every cache away.
UNVERSIONED_TABLES = frozenset({"auditevent", "user", "revoked_session"})
_READ_ONLY = ("SELECT", "PRAGMA", "WITH", "SHOW", "EXPLAIN", "BEGIN", "SAVEPOINT", "RELEASE")
_DIRTY = "kb.uncommitted_writes"
_BUMP = "UPDATE data_version SET value = value + 1 WHERE id = 1"


def track_data_version(engine: Engine) -> None:
    """Bump ``data_version`` in every transaction of ``engine`` that changes cached data."""
    event.listen(engine, "before_cursor_execute", _mark_write)
    event.listen(engine, "commit", _bump_on_commit)
    event.listen(engine, "rollback", _forget_writes)
    event.listen(engine, "checkin", _forget_on_checkin)


def has_uncommitted_writes(conn: Connection) -> bool:
    """Whether ``conn``'s open transaction has written data that cached results depend on."""
    return bool(conn.info.get(_DIRTY))


def _writes_cached_data(statement: str, context: Any) -> bool:
    compiled = getattr(context, "compiled", None)
    table = getattr(getattr(compiled, "statement", None), "table", None)
    if getattr(table, "name", None) in UNVERSIONED_TABLES:
        return False
    return not statement.lstrip()[:9].upper().startswith(_READ_ONLY)


def _mark_write(
    conn: Connection, cursor: Any, statement: str, params: Any, context: Any, many: bool
) -> None:
    if _writes_cached_data(statement, context):
        conn.info[_DIRTY] = True


def _bump_on_commit(conn: Connection) -> None:
    if conn.info.pop(_DIRTY, False) and _has_version_table(conn):
        cursor = conn.connection.cursor()  # the raw DBAPI cursor: no events, same transaction
        try:
            cursor.execute(_BUMP)
        finally:
            cursor.close()


def _forget_writes(conn: Connection) -> None:
    conn.info.pop(_DIRTY, None)


def _forget_on_checkin(dbapi_connection: Any, record: Any) -> None:
    if record is not None:
        record.info.pop(_DIRTY, None)


def _has_version_table(conn: Connection) -> bool:
    """False on a schema from before revision 0002 (being migrated, or downgraded). Asked on
    every writing commit, not remembered: one catalog lookup next to the writes is cheap."""
    return bool(conn.dialect.has_table(conn, "data_version"))


@lru_cache
def get_engine(url: str | None = None) -> Engine:
    """The process-wide engine for ``url`` (default: the configured database)."""
    settings = get_settings()
    url = url or settings.resolved_database_url
    private_dir(settings.home)  # the secret key, uploads in progress, models: this user only
    if url.startswith("sqlite:///"):
        _private_sqlite_file(Path(url.removeprefix("sqlite:///")))
    return make_engine(url)


def _private_sqlite_file(path: Path) -> None:
    """The SQLite file (and its WAL / shared-memory files) readable by this user only, in a
    KB_HOME only this user may enter; created 0600 before SQLite opens it, since SQLite gives
    its -wal and -shm files the database file's mode."""
    path.parent.mkdir(parents=True, exist_ok=True)  # KB_HOME is private already
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file == path or file.exists():
            private_file(file)


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    with Session(engine or get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(url: str):  # type: ignore[no-untyped-def]
    """An Alembic config pointing at the packaged migrations and ``url``."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def init_db(engine: Engine | None = None) -> None:
    """Create or upgrade the schema to the newest migration."""
    from alembic import command

    engine = engine or get_engine()
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")

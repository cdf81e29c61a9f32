"""Fixtures: every test gets its own database, on SQLite or on a real PostgreSQL server.

KB_TEST_BACKEND=postgres runs the same tests against a PostgreSQL server started for the run
(tests/pgserver.py); the default is a fresh SQLite file per test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from kb import db as kb_db
from kb.config import get_settings
from nlp.embeddings import default_cache_dir

# Helper modules the tests import and also load as fixture plugins: rewritten like test files,
# so their asserts explain themselves (and pytest does not warn that it was too late).
pytest.register_assert_rewrite("tests.briefing_corpus", "tests.hostile_builders")

BACKEND = os.environ.get("KB_TEST_BACKEND", "sqlite")

# Every test has its own KB_HOME; the exported ONNX embedding model (nlp/onnx_backend.py) is
# the same for all of them, so it is exported once per machine, not once per test.
os.environ.setdefault("KB_EMBEDDING_CACHE", str(default_cache_dir()))


@pytest.fixture(scope="session")
def pg_server():  # type: ignore[no-untyped-def]
    if BACKEND != "postgres":
        yield None
        return
    from tests import pgserver

    server = pgserver.start()
    yield server
    server.stop()


@pytest.fixture
def db_url(tmp_path: Path, pg_server) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A database of this test's own."""
    if pg_server is None:
        yield f"sqlite:///{tmp_path / 'kb.sqlite3'}"
        return
    name = f"kbt_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_server.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield pg_server.url_for(name)
    kb_db.get_engine.cache_clear()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def kb_env(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point KB_HOME and KB_DATABASE_URL at this test's own folder and database."""
    home = tmp_path / "home"
    monkeypatch.setenv("KB_HOME", str(home))
    monkeypatch.setenv("KB_DATABASE_URL", db_url)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # `kb ingest` run in-process (CliRunner) would lower the test process's own priority.
    monkeypatch.setenv("KB_INGEST_NICE", "0")
    get_settings.cache_clear()
    kb_db.get_engine.cache_clear()
    yield home
    engine = kb_db.get_engine()
    engine.dispose()
    get_settings.cache_clear()
    kb_db.get_engine.cache_clear()


@pytest.fixture
def engine(kb_env: Path) -> Engine:
    """The test's database, migrated to the newest schema."""
    engine = kb_db.get_engine()
    kb_db.init_db(engine)
    return engine

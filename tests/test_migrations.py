"""The schema Alembic builds is the schema kb/models.py declares, on SQLite and PostgreSQL.

A column added to a model without a migration (or a migration that drifts from the models)
would work in tests that create tables from the models and fail on an upgraded deployment.
"""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import kb.models  # noqa: F401  (registers every table)


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == []

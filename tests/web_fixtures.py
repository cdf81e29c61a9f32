"""Fixtures for the web / API / security tests (``pytest_plugins = ["tests.web_fixtures"]``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from kb.config import get_settings
from kb.services import users
from tests.web_support import USERS, World, build_world, login
from web.app import create_app


@pytest.fixture
def fast_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2 parameters: the real ones cost most of a second per hash on CI machines."""
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(users, "_hasher", cheap)
    monkeypatch.setattr(users, "_DUMMY_HASH", cheap.hash("dummy-password-for-timing"))


@pytest.fixture
def web_world(engine: Engine, fast_hashing: None) -> World:
    return build_world(engine)


@pytest.fixture
def web_app(engine: Engine, fast_hashing: None, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    monkeypatch.setenv("KB_EMBED_ON_INGEST", "false")
    get_settings.cache_clear()
    return create_app()


@pytest.fixture
def anon(web_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(web_app) as test_client:
        yield test_client


@pytest.fixture
def clients(web_app: FastAPI, web_world: World) -> Iterator[dict[str, TestClient]]:
    """One logged-in client per user of the world."""
    made = {name: login(TestClient(web_app), name) for name in USERS}
    yield made
    for c in made.values():
        c.close()

"""How ``kb serve`` runs the app: warm-up at start, TCP_NODELAY, gunicorn's and uvicorn's options.

Each of these was found with benchmarks/load.py (figures in README "Measuring"); the tests pin
the behaviour, not the timings.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import threading

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from typer.testing import CliRunner
from uvicorn.config import Config
from uvicorn.server import ServerState

from kb.cli import app, serving
from kb.cli.serving import NoDelayHttpProtocol
from kb.services.search import INDEXES
from tests.web_support import World
from web.app import create_app, served_app

pytest_plugins = ["tests.web_fixtures"]


def _nodelay_of_accepted_connection(protocol_class: type) -> int:
    """Serve ``protocol_class`` on a listening socket made the way uvicorn makes the one its
    workers share (protocol number 0), connect once, and read TCP_NODELAY on the server side."""
    seen: list[int] = []

    class Recording(protocol_class):  # type: ignore[misc, valid-type]
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            sock = transport.get_extra_info("socket")
            seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    async def run() -> int:
        listener = socket.socket(family=socket.AF_INET)  # proto 0, as uvicorn's bind_socket
        listener.bind(("127.0.0.1", 0))
        config = Config(app=_no_app, log_level="warning")
        config.load()
        state = ServerState()
        server = await asyncio.get_running_loop().create_server(
            lambda: Recording(config=config, server_state=state, app_state={}), sock=listener
        )
        host, port = listener.getsockname()
        _, writer = await asyncio.open_connection(host, port)
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.01)
        writer.close()
        server.close()
        assert seen, "the server never saw the connection"
        return seen[0]

    return asyncio.run(run())


async def _no_app(scope: object, receive: object, send: object) -> None:
    """Never called: the test only opens a connection."""


def test_connections_of_a_shared_listening_socket_get_tcp_nodelay() -> None:
    from uvicorn.protocols.http.h11_impl import H11Protocol
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    assert _nodelay_of_accepted_connection(H11Protocol) == 0  # why the subclass exists
    assert _nodelay_of_accepted_connection(HttpToolsProtocol) == 0
    assert _nodelay_of_accepted_connection(NoDelayHttpProtocol) != 0


def served_with(monkeypatch: pytest.MonkeyPatch, *args: str) -> list[serving.PreforkServer]:
    """Run ``kb serve *args`` with gunicorn's main loop replaced by a recorder."""
    calls: list[serving.PreforkServer] = []
    monkeypatch.setattr(serving.PreforkServer, "run", lambda self: calls.append(self))
    result = CliRunner().invoke(app, ["serve", "--no-worker", *args])
    assert result.exit_code == 0, result.output
    return calls


def uvicorn_config(server: serving.PreforkServer) -> Config:
    """The uvicorn Config a worker of ``server`` runs with."""
    from gunicorn.glogging import Logger

    worker = server.cfg.worker_class(1, 0, [], None, 30, server.cfg, Logger(server.cfg))
    try:
        return worker.config  # type: ignore[no-any-return]
    finally:
        worker.tmp.close()


def test_serve_preforks_tuned_uvicorn_workers(kb_env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    (server,) = served_with(monkeypatch, "--workers", "2", "--port", "8123")
    cfg = server.cfg
    assert cfg.workers == 2 and cfg.preload_app is True  # loaded once, then forked
    assert cfg.worker_class is serving.KbUvicornWorker
    assert cfg.bind == ["127.0.0.1:8123"]
    assert cfg.keepalive == 30 and cfg.timeout >= 30 and cfg.graceful_timeout > 0
    assert cfg.control_socket_disable is True  # nothing listens but the app's own port
    assert cfg.accesslog == "-"
    config = uvicorn_config(server)
    assert config.http is NoDelayHttpProtocol
    assert config.server_header is False
    assert config.timeout_keep_alive == 30


def test_one_worker_is_forked_from_a_preloaded_parent_too(kb_env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    (server,) = served_with(monkeypatch)
    assert server.cfg.workers == 1 and server.cfg.preload_app is True


def test_gunicorn_reads_no_configuration_but_kb_serves(kb_env, monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """What kb serve listens on is its own options: not a gunicorn.conf.py in the working
    directory, not GUNICORN_CMD_ARGS, not WEB_CONCURRENCY."""
    (tmp_path / "gunicorn.conf.py").write_text('bind = ["0.0.0.0:9999"]\nworkers = 7\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GUNICORN_CMD_ARGS", "--bind 0.0.0.0:9998 --workers 6")
    monkeypatch.setenv("WEB_CONCURRENCY", "5")
    (server,) = served_with(monkeypatch, "--workers", "3")
    assert server.cfg.bind == ["127.0.0.1:8000"] and server.cfg.workers == 3


def test_warm_up_builds_the_index_before_the_first_search(
    engine: Engine, web_world: World, fast_hashing: None
) -> None:
    INDEXES.clear()
    key = engine.url.render_as_string(hide_password=False)
    assert key not in INDEXES._indexes
    frozen_before = gc.get_freeze_count()
    try:
        with TestClient(served_app()):
            warmers = [t for t in threading.enumerate() if t.name == "kb-warm-up"]
            assert warmers, "no warm-up thread started"
            for thread in warmers:
                thread.join(timeout=300)
            assert key in INDEXES._indexes
            assert gc.get_freeze_count() > frozen_before
    finally:
        gc.unfreeze()


def test_apps_built_for_tests_and_tools_do_not_warm_up(engine: Engine) -> None:
    with TestClient(create_app()):
        assert not [t for t in threading.enumerate() if t.name == "kb-warm-up"]


@pytest.fixture(autouse=True)
def _no_stray_index() -> None:
    INDEXES.clear()

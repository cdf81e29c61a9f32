"""How ``kb serve`` runs the web app: gunicorn forks uvicorn workers from a preloaded parent.

Why pre-fork: every worker needs the same ~3,800 imported modules (FastAPI, spaCy, torch,
onnxruntime), the query embedder and the memory-mapped search index. Started as fresh
interpreters (``uvicorn --workers``), each worker loaded all of it again: four workers took
3.4 times the memory of one (benchmarks/index_memory.py). Here the parent (the gunicorn master,
which is the ``kb serve`` process itself) imports the app, loads the embedder and maps the index
once (:func:`preload`), moves the resulting objects out of the garbage collector's sight
(``gc.freeze``, so no collection in a child writes to, and so copies, their pages) and only then
forks the workers, which share all of it copy-on-write.

What must not cross the fork, and how it does not:

* database connections: the parent closes its pool before forking, and kb/db.py gives every
  forked child fresh pools (``Engine.dispose(close=False)``), so no two processes ever talk on
  one socket or SQLite handle;
* threads and their thread pools do not survive a fork (a lock held by a thread that is gone
  stays held): the parent starts none. The ONNX query session runs with one intra-op thread and
  sequential execution, which create no onnxruntime thread pool; the tokenizer's parallelism is
  off in the server (a query is one text); torch is limited to one thread before anything could
  run an OpenMP region in the parent (libgomp's pool does not survive a fork either);
* caches keyed by process id (kb/services/analysis.py) make their own in the child.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
import sys
import time
from typing import Any

from gunicorn.app.base import BaseApplication
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn_worker import UvicornWorker

from kb.config import get_settings

log = logging.getLogger(__name__)

#: Idle connections stay open 30 s (uvicorn's default is 5): a user reading a page for longer
#: than that would otherwise send the next request on a connection the server is just closing,
#: which some clients report as an error instead of retrying.
KEEP_ALIVE_SECONDS = 30
#: The master restarts a worker that has not checked in for this long (it checks in from its
#: event loop twice per period, so only a worker whose loop is stuck is restarted).
WORKER_TIMEOUT_SECONDS = 60
#: On SIGTERM, workers finish the requests in flight for up to this long, then are killed.
GRACEFUL_SECONDS = 10


class NoDelayHttpProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol on httptools' C parser (~1 ms less CPU a request than the
    pure-Python h11), with Nagle's algorithm off on every connection.

    asyncio turns it off itself only for sockets that say they are TCP, and a listening socket
    a server shares between worker processes (inherited, or rebuilt from its file descriptor)
    does not say so (its protocol number is 0). Without this, a page written in more than one
    piece waited for the client's delayed ACK: ~40 ms more per page with two workers, measured
    with benchmarks/load.py.
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)


def trusted_proxies() -> str:
    """KB_TRUSTED_PROXIES as uvicorn wants it ("a,b"), or "" when none is configured."""
    return ",".join(p.strip() for p in get_settings().trusted_proxies.split(",") if p.strip())


class KbUvicornWorker(UvicornWorker):
    """gunicorn's uvicorn worker with the options ``kb serve`` has always had.

    Forwarded headers are believed only from the configured proxies: otherwise anyone who can
    reach the port (a local user, when it listens on loopback) could claim any client address
    and reset the login rate limit with each attempt. No ``Server`` header.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Read by UvicornWorker.__init__ when it builds the uvicorn Config.
        self.CONFIG_KWARGS = {
            "loop": "auto",
            "http": NoDelayHttpProtocol,
            "server_header": False,
            "proxy_headers": bool(trusted_proxies()),
            "access_log": True,
        }
        super().__init__(*args, **kwargs)
        # Which worker answered, as gunicorn's own lines say ("[pid]"): the access log is where
        # a slow or failing worker shows.
        for handler in logging.getLogger("uvicorn.access").handlers:
            handler.setFormatter(logging.Formatter("[%(process)d] %(message)s"))


class PreforkServer(BaseApplication):
    """gunicorn configured in code only: no gunicorn.conf.py, GUNICORN_CMD_ARGS or control
    socket is read or opened, so what ``kb serve`` listens on is exactly its own options."""

    def __init__(self, host: str, port: int, *, workers: int, secure_cookies: bool) -> None:
        self.host, self.port = host, port
        self.workers = workers
        self.secure_cookies = secure_cookies
        super().__init__()

    def load_config(self) -> None:
        bind = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        proxies = trusted_proxies()
        for key, value in {
            "bind": [bind],
            "workers": self.workers,
            "worker_class": KbUvicornWorker,
            "preload_app": True,
            "keepalive": KEEP_ALIVE_SECONDS,
            "timeout": WORKER_TIMEOUT_SECONDS,
            "graceful_timeout": GRACEFUL_SECONDS,
            # Only read by uvicorn when KB_TRUSTED_PROXIES is set (proxy_headers above).
            "forwarded_allow_ips": proxies or "127.0.0.1",
            "accesslog": "-",
            "errorlog": "-",
            "loglevel": "info",
            "control_socket_disable": True,
            "proc_name": "kb-serve",
        }.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return preload(secure_cookies=self.secure_cookies)


def preload(*, secure_cookies: bool) -> Any:
    """Build the app and load everything its searches need, in the parent, before any fork.

    The app is named, not imported: it lives in web/app.py, above the kb package.
    """
    from uvicorn.importer import import_from_string

    from kb.services import search

    started = time.perf_counter()
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # no Rust thread pool in the parent
    create_app = import_from_string("web.app:create_app")
    _torch_one_thread()
    app = create_app(secure_cookies=secure_cookies)
    engine = app.state.engine
    try:
        search.warm_up(engine)
    except Exception:  # a broken model or database shows on the first search, with its error
        log.exception("search warm-up failed")
    engine.dispose()  # the workers open their own connections
    # Imports, the model and the index leave ~600k long-lived objects. A full collection
    # walks them all (~300 ms, stalling every request in the worker: the p99 of
    # benchmarks/load.py) and writes to each object it visits, which would copy every shared
    # page into each worker. Frozen, they are out of the collector's sight; what they hold is
    # still freed by reference counting when an index is replaced.
    gc.collect()
    gc.freeze()
    log.info("app, search model and index loaded in %.1f s", time.perf_counter() - started)
    return app


def _torch_one_thread() -> None:
    """One torch thread in the server: a query is embedded on one thread anyway
    (nlp/embeddings.py), and an OpenMP thread pool started in the parent (by a first-use ONNX
    export or the torch fallback) would not survive the fork: libgomp hangs in the child."""
    torch = sys.modules.get("torch")
    if torch is None:
        import torch
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def run(host: str, port: int, *, workers: int, secure_cookies: bool) -> None:
    """Serve until SIGTERM / SIGINT (graceful: requests in flight finish)."""
    PreforkServer(host, port, workers=workers, secure_cookies=secure_cookies).run()

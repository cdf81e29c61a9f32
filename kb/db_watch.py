"""How long an engine's write transactions hold their locks: from a transaction's first write
statement to its commit or rollback.

Why: on SQLite a write transaction holds the database's only write lock from its first write
until it ends, and every other writer waits (past KB_DB_BUSY_TIMEOUT: a 503). Ingest keeps its
transactions short by doing all analysis before them (kb/services/ingest_analysis.py); the
ingest benchmark reports the longest with this, and a test checks with :meth:`open_writes` that
no model runs while one is open.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

_READ_ONLY = ("SELECT", "PRAGMA", "WITH", "SHOW", "EXPLAIN", "BEGIN", "SAVEPOINT", "RELEASE")


class WriteWatch:
    """Records the duration of every write transaction on ``engine`` while entered."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: (seconds from first write to end, statements executed) per finished transaction.
        self.transactions: list[tuple[float, int]] = []
        self._open: dict[int, list[float]] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> WriteWatch:
        event.listen(self.engine, "before_cursor_execute", self._on_execute)
        event.listen(self.engine, "commit", self._on_end)
        event.listen(self.engine, "rollback", self._on_end)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        event.remove(self.engine, "before_cursor_execute", self._on_execute)
        event.remove(self.engine, "commit", self._on_end)
        event.remove(self.engine, "rollback", self._on_end)

    def open_writes(self) -> int:
        """How many transactions have written and not yet ended, right now."""
        with self._lock:
            return len(self._open)

    def longest(self) -> float:
        """The longest finished write transaction, in seconds (0.0: none)."""
        with self._lock:
            return max((seconds for seconds, _ in self.transactions), default=0.0)

    def _on_execute(
        self, conn: Connection, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        key = id(conn)
        with self._lock:
            if key in self._open:
                self._open[key][1] += 1
            elif not statement.lstrip()[:9].upper().startswith(_READ_ONLY):
                self._open[key] = [time.perf_counter(), 1]

    def _on_end(self, conn: Connection) -> None:
        with self._lock:
            started = self._open.pop(id(conn), None)
            if started is not None:
                self.transactions.append((time.perf_counter() - started[0], int(started[1])))

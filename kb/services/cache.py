"""Cached results for the busy read paths, and the data version that keys them.

Search allow-sets, the dashboard's recurrence and matrix, the signals and the filter facets
are recomputed only when the data they read has changed. What changed is told by one row,
``data_version`` (kb/models.py): every commit that wrote any table other than users and audit
events bumps its ``value`` *inside the transaction being committed*, so a reader that sees the
new value also sees the new data, on SQLite and PostgreSQL, whether the change came from this
process, another server worker or ``kb ingest`` in a terminal. Reading it is one primary-key
lookup, where the fingerprint it replaces (counts and sums over every table) cost ~10 ms a
request at 20k passages. A change made outside kb (by hand in ``psql``) must bump it too:
``UPDATE data_version SET value = value + 1``.

How the bump happens is in kb/db.py (``track_data_version``, on every engine kb makes). A
connection holding uncommitted writes gets a fingerprint of
its own, so nothing computed from rows that may still roll back is ever served to anyone else.
Results are keyed by *who may see what* as well (``visibility_key``): one role's results never
serve another's.
"""

from __future__ import annotations

import itertools
import pickle
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy import text
from sqlmodel import Session

from kb.db import has_uncommitted_writes

T = TypeVar("T")

_READ = text("SELECT token, value FROM data_version WHERE id = 1")
_PRIVATE = itertools.count()


def data_fingerprint(session: Session) -> Hashable:
    """What cached results on this session's database are keyed by: (database token, version).

    Inside a transaction that has written but not committed, a fresh private value instead.
    """
    conn = session.connection()
    if has_uncommitted_writes(conn):
        return ("uncommitted", next(_PRIVATE))
    row = conn.execute(_READ).first()
    if row is None:  # the row was deleted by hand: correct, if uncached, results
        return ("unversioned", next(_PRIVATE))
    return (str(row[0]), int(row[1]))


class ResultCache:
    """A small thread-safe LRU of computed results, per database.

    Callers put everything the result depends on into ``key``: the visibility key (never
    share across roles or partnerships), the filters, and :func:`data_fingerprint`. Values are
    kept pickled and each caller gets its own copy (unpickling is ~10x cheaper than
    ``deepcopy``), so a caller changing its result cannot change the cache; ``copy_out=False``
    shares the value itself, for values that cannot be changed (read-only arrays).
    """

    def __init__(self, size: int = 128) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._items: OrderedDict[Hashable, Any] = OrderedDict()

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def get_or_compute(
        self, session: Session, key: Hashable, compute: Callable[[], T], *, copy_out: bool = True
    ) -> T:
        """The cached value for ``key`` on this session's database, else ``compute()``."""
        bind = session.get_bind()
        full = (bind.url.render_as_string(hide_password=False), key)  # type: ignore[union-attr]
        with self._lock:
            stored = self._items.get(full)
            if stored is not None:
                self._items.move_to_end(full)
        if stored is not None:
            return pickle.loads(stored) if copy_out else stored  # type: ignore[no-any-return]
        value = compute()
        stored = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL) if copy_out else value
        with self._lock:
            self._items[full] = stored
            self._items.move_to_end(full)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value


RESULTS = ResultCache()

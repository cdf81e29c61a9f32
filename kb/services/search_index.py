"""The search index as files every worker on the machine shares (``KB_HOME/index``).

Each server worker used to build its own in-memory ``HybridIndex``: at 100k passages that is
one copy of the vectors and BM25 matrix per worker. Here one worker builds it from the
database and writes it as a *generation* folder of ``.npy`` files (nlp/index_files.py); every
worker memory-maps the current generation, so the operating system keeps one copy in its page
cache for all of them.

Layout, per database (``<key>`` hashes the database URL)::

    KB_HOME/index/<key>/CURRENT          name of the generation to read (replaced atomically)
    KB_HOME/index/<key>/gen-<ns>-<pid>/  manifest.json + ids.npy, vecs.npy, tf_*.npy, ...
    KB_HOME/index/<key>/.lock            flock: one builder at a time

* A generation is written into a ``.tmp-*`` folder, renamed into place, then ``CURRENT`` is
  replaced with ``os.replace``: a reader sees the old generation or the new one, never half.
* Its manifest records the fingerprint it was built from: the embedding model id, the
  database's token and the passage state (:func:`kb.services.search._state`). A generation of
  another model or database is never used.
* Passages added or removed since the generation are applied in memory (the base stays
  mapped; new rows live in a small delta, removed ones are masked), so one new document does
  not make every worker rebuild. When the delta passes :data:`DELTA_MIN_ROWS` or
  :data:`DELTA_SHARE` of the base, the worker that notices writes a new generation (others
  keep reading theirs meanwhile) and the rest pick it up at their next change.
* Only the builder holding ``.lock`` writes or cleans up; generations other than the new one
  and the previous are removed (a worker still mapping one keeps its pages until it lets go).
* A missing, truncated or damaged file is refused by its digest and rebuilt from the
  database, with a warning in the log: the database stays the only source of truth.

Permissions are unchanged: the files hold every passage, and every search still passes the
caller's allow-set (kb/services/search.py ``allowed_passages``), so an embargoed passage in
the shared files is as invisible as it was in memory.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import gc
import hashlib
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from kb.config import Settings, private_dir
from nlp.index_files import IndexFilesError, open_index_dir, read_manifest, write_index_dir
from nlp.ranking import HybridIndex

log = logging.getLogger(__name__)

#: A new generation is written once the in-memory delta (added + removed passages) exceeds
#: both this many rows and this share of the generation's rows.
DELTA_MIN_ROWS = 2000
DELTA_SHARE = 0.05
CURRENT = "CURRENT"
LOCK = ".lock"

Sync = Callable[[Session, HybridIndex], None]


def index_root(settings: Settings) -> Path:
    """KB_INDEX_DIR, else KB_HOME/index."""
    return settings.index_dir or settings.home / "index"


@dataclass(slots=True)
class Loaded:
    """A worker's index and the generation its base came from (None: built in memory)."""

    index: HybridIndex
    generation: str | None


class IndexFiles:
    """The generations of one database's index under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def for_engine(cls, settings: Settings, engine: Engine) -> IndexFiles | None:
        """The folder for ``engine``'s database, or None when files are off or unusable."""
        if not settings.index_files:
            return None
        url = engine.url.render_as_string(hide_password=True)
        key = hashlib.sha256(url.encode()).hexdigest()[:16]
        try:
            return cls(private_dir(private_dir(index_root(settings)) / key))
        except OSError as exc:
            log.warning("search index folder unusable (%s); each worker keeps its own", exc)
            return None

    # -- reading ----------------------------------------------------------------------------

    def current(self) -> str | None:
        """Name of the current generation, None when there is none yet."""
        path = self.root / CURRENT
        try:
            name = path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("%s unreadable (%s); rebuilding from the database", path, exc)
            return None
        if name.startswith("gen-") and "/" not in name and name not in ("gen-", "gen-.."):
            return name
        log.warning("%s names no generation; rebuilding from the database", path)
        return None

    def meta(self, generation: str) -> dict[str, Any]:
        """What ``generation`` was built from; IndexFilesError when its manifest is unusable."""
        return read_manifest(self.root / generation)["meta"]

    def matches(self, generation: str, meta: dict[str, Any]) -> bool:
        """Whether ``generation`` was built for this model and database (``meta``'s keys)."""
        try:
            return _fits(self.meta(generation), meta)
        except IndexFilesError:
            return False

    def open(self, generation: str, *, verify: bool = True) -> tuple[HybridIndex, dict[str, Any]]:
        """The generation's index, memory-mapped; IndexFilesError when it is unusable.

        ``verify=False`` skips the digests, for the generation this process has just written.
        """
        return open_index_dir(self.root / generation, verify=verify)

    # -- writing (under the lock) -------------------------------------------------------------

    @contextmanager
    def lock(self, *, wait: bool = True) -> Iterator[bool]:
        """Hold the builders' lock; yields False at once if ``wait`` is off and it is taken."""
        fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)  # closing releases the lock

    def publish(self, index: HybridIndex, meta: dict[str, Any]) -> str:
        """Write ``index`` as the new current generation; call with the lock held."""
        started = time.perf_counter()
        tmp = self.root / f".tmp-{uuid.uuid4().hex}"
        name = f"gen-{time.time_ns()}-{os.getpid()}"
        try:
            write_index_dir(index, tmp, meta)
            tmp.rename(self.root / name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        pointer = self.root / f".{CURRENT}-{uuid.uuid4().hex}"
        pointer.write_text(name, encoding="ascii")
        previous = self.current()
        os.replace(pointer, self.root / CURRENT)
        self._clean(keep={name, previous})
        log.info(
            "search index files written: %s rows in %s (%.1f s)",
            len(index),
            self.root / name,
            time.perf_counter() - started,
        )
        return name

    def _clean(self, keep: set[str | None]) -> None:
        """Remove generations but ``keep`` and leftovers of crashed builders (lock held)."""
        for entry in self.root.iterdir():
            stale_gen = entry.name.startswith("gen-") and entry.name not in keep
            leftover = entry.name.startswith((".tmp-", f".{CURRENT}-"))
            if stale_gen or leftover:
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)


def database_token(session: Session) -> str:
    """The random token of this database (data_version): a recreated database differs."""
    row = session.connection().execute(text("SELECT token FROM data_version WHERE id = 1")).first()
    return str(row[0]) if row else ""


def load_shared(
    files: IndexFiles,
    session: Session,
    *,
    meta: dict[str, Any],
    cached: Loaded | None,
    sync: Sync,
) -> Loaded:
    """The index for the database state in ``meta``: the current generation (mapped, or the
    worker's ``cached`` copy of it) brought up to date by ``sync``, or a new generation.

    ``meta`` holds ``model``, ``database`` and ``passages`` (the state fingerprint).
    """
    loaded = _open_current(files, meta, cached)
    if loaded is None:
        loaded = _build(files, session, meta, sync)
    else:
        sync(session, loaded.index)
    index = loaded.index
    if index.delta_rows + index.dead_rows > max(DELTA_MIN_ROWS, DELTA_SHARE * index.base_rows):
        loaded = _refresh_generation(files, loaded, meta) or loaded
    return loaded


def _open_current(files: IndexFiles, meta: dict[str, Any], cached: Loaded | None) -> Loaded | None:
    """The current generation if it fits ``meta`` (the cached copy when it is the same)."""
    generation = files.current()
    if generation is None:
        return None
    try:
        if not _fits(files.meta(generation), meta):
            log.info("search index files are of another model or database; rebuilding")
            return None
        if cached is not None and cached.generation == generation:
            return cached
        index, _ = files.open(generation)
    except IndexFilesError as exc:
        log.warning("search index files unusable (%s); rebuilding from the database", exc)
        return None
    return Loaded(index, generation)


def _fits(built: dict[str, Any], meta: dict[str, Any]) -> bool:
    return all(built.get(key) == meta[key] for key in ("model", "database"))


def _build(files: IndexFiles, session: Session, meta: dict[str, Any], sync: Sync) -> Loaded:
    """Build a generation from the database under the lock, unless another worker just did.

    Waiting for a builder beats building the same index twice at once; the waiter then uses
    what the builder wrote.
    """
    with files.lock():
        loaded = _open_current(files, meta, None)
        if loaded is not None:
            sync(session, loaded.index)
            return loaded
        started = time.perf_counter()
        index = HybridIndex()
        sync(session, index)
        log.info(
            "search index built from the database: %s passages in %.1f s",
            len(index),
            time.perf_counter() - started,
        )
        try:
            generation = files.publish(index, meta)
            mapped, _ = files.open(generation, verify=False)
        except (OSError, IndexFilesError) as exc:
            log.warning("search index files not written (%s); this worker keeps its own", exc)
            return Loaded(index, None)
        del index
        _release_memory()
        return Loaded(mapped, generation)


def _refresh_generation(files: IndexFiles, loaded: Loaded, meta: dict[str, Any]) -> Loaded | None:
    """Write base + delta as a new generation if no other worker is writing one now."""
    with files.lock(wait=False) as acquired:
        if not acquired:
            return None
        current = files.current()
        if current is not None and current != loaded.generation and files.matches(current, meta):
            return None  # another worker has just written a newer one: picked up next change
        try:
            generation = files.publish(loaded.index, meta)
            mapped, _ = files.open(generation, verify=False)
        except (OSError, IndexFilesError) as exc:
            log.warning("search index files not refreshed (%s)", exc)
            return None
        return Loaded(mapped, generation)


def _release_memory() -> None:
    """Hand the heap freed by a build back to the operating system (glibc keeps it otherwise,
    and the builder would go on holding as much as a worker with its own index)."""
    gc.collect()
    # not glibc: the memory is reused, just not returned
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)

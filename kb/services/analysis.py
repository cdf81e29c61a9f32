"""What happens to new passages of an ingested document: theme tags, then embeddings.

Kept apart from ingest so ingesting stays testable without models, and so the CLI, the web
upload and ``kb demo`` all wire the same analysis in the same order.

Why in two steps: tagging and embedding a long document takes minutes, and on SQLite a write
transaction holds the database's only write lock for as long as it is open. So ingest's
analysis (kb/services/ingest_analysis.py) calls ``begin`` on the passage texts before the
document's transaction begins — tags now, embeddings on a background thread, so ``kb ingest``
can read, segment and tag the next document while this one is embedded — and ``use`` hands the
finished :class:`PassageResults` over; the write only stores them, in bulk. Called as a hook on
stored passages (``kb retag``, a hook used on its own), it analyses them in place.

Why at a lower priority: with ``niceness`` (KB_INGEST_NICE) tagging runs in a thread of its own
at that CPU niceness, and the embedding thread lowers itself the same way, so on the server's
machine a web search takes the CPU first and the ingest gets what is left. Only those threads
(and the threads they start: the embedding pool) are lowered, never the caller's: the document's
write transaction that follows holds the database's write lock, and at a low priority on a busy
machine it held it for minutes while every web write waited (and answered 503).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from sqlalchemy.engine import Engine
from sqlmodel import Session

from kb.config import Settings
from kb.models import Passage
from kb.services.embedding import embed_passages, embedder_for, stored_vectors
from kb.services.tagging import get_tagger, tag_passages
from nlp.embeddings import Embedder
from nlp.tagger import Tagger, TagResult

T = TypeVar("T")
_EMBEDDING: tuple[int, ThreadPoolExecutor] | None = None
_EMBEDDING_LOCK = threading.Lock()


def _embedding_thread() -> ThreadPoolExecutor:
    """The process's embedding thread: documents are embedded there one after another while
    the caller's thread tags the same document or reads and tags the next (onnxruntime
    releases the GIL, so the two overlap). Made per process id: a forked server worker gets
    its own rather than the parent's, whose thread did not survive the fork."""
    global _EMBEDDING
    with _EMBEDDING_LOCK:
        if _EMBEDDING is None or _EMBEDDING[0] != os.getpid():
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kb-embed")
            _EMBEDDING = (os.getpid(), pool)
        return _EMBEDDING[1]


@dataclass(slots=True)
class Preparation:
    """One document's analysis: tags now, vectors when the background embedding is done."""

    tags: dict[str, list[Any]]
    vectors: Future[dict[str, np.ndarray]] | None


@dataclass(slots=True)
class PassageResults:
    """A document's finished analysis, by distinct passage text: what its write stores."""

    tags: dict[str, list[TagResult]]
    #: Empty without an embedder.
    vectors: dict[str, np.ndarray]
    #: The embedder's model id, None without one.
    embedding_model: str | None
    #: The tagger that made ``tags``.
    tagger: Tagger

    @property
    def tagged_with(self) -> str:
        """The tagger's fingerprint (``Passage.tagged_with``)."""
        return self.tagger.fingerprint()


class PassageAnalysis:
    """A ``PassageHook`` with a ``prepare`` step that does the heavy work out of the lock."""

    def __init__(self, tagger: Tagger, embedder: Embedder | None, niceness: int = 0) -> None:
        self.tagger = tagger
        self.embedder = embedder
        self.niceness = niceness
        self._prepared: dict[str, tuple[list[Any], np.ndarray | None]] = {}
        self._lock = threading.Lock()

    def begin(
        self,
        texts: list[str],
        *,
        engine: Engine | None = None,
        source_name: str | None = None,
    ) -> Preparation:
        """Tag ``texts`` now and start embedding them in the background (no write).

        Each distinct text is analysed once. With ``engine`` and ``source_name``, passages
        whose exact text the current version of that document already has a vector for (same
        model id) keep it instead of being embedded again.
        """
        unique = list(dict.fromkeys(texts))
        vectors: Future[dict[str, np.ndarray]] | None = None
        if self.embedder is not None and unique:
            known: dict[str, np.ndarray] = {}
            if engine is not None and source_name:
                with Session(engine) as session:
                    known = stored_vectors(
                        session, unique, source_name=source_name, model_id=self.embedder.model_id
                    )
            vectors = _embedding_thread().submit(
                _embed_missing, self.embedder, unique, known, self.niceness
            )
        tags = self._tag(unique) if unique else []
        return Preparation(dict(zip(unique, tags, strict=True)), vectors)

    def _tag(self, texts: list[str]) -> list[Any]:
        """Tags of ``texts``, computed at ``niceness`` in a thread of its own when it is set."""
        return run_lowered(lambda: self.tagger.tag_many(texts), self.niceness)

    def use(self, preparation: Preparation) -> PassageResults:
        """``preparation``'s results, once its vectors are done (waits for them); also what
        the next call of the hook stores, when its passages have those texts."""
        vectors = preparation.vectors.result() if preparation.vectors is not None else {}
        prepared = {
            text: (tags, vectors.get(text) if self.embedder is not None else None)
            for text, tags in preparation.tags.items()
        }
        with self._lock:
            self._prepared = prepared
        return PassageResults(
            tags=preparation.tags,
            vectors=vectors if self.embedder is not None else {},
            embedding_model=self.embedder.model_id if self.embedder is not None else None,
            tagger=self.tagger,
        )

    def prepare(
        self,
        texts: list[str],
        *,
        engine: Engine | None = None,
        source_name: str | None = None,
    ) -> None:
        """Tag and embed ``texts`` now; replaces earlier preparations (``begin`` + ``use``)."""
        self.use(self.begin(texts, engine=engine, source_name=source_name))

    def __call__(self, session: Session, passages: list[Passage]) -> None:
        with self._lock:
            prepared, self._prepared = self._prepared, {}
        if not passages:
            return
        if prepared and all(p.text in prepared for p in passages):
            results = [prepared[p.text][0] for p in passages]
            vectors = (
                np.vstack([prepared[p.text][1] for p in passages])  # type: ignore[misc]
                if self.embedder is not None
                else None
            )
        else:
            results, vectors = None, None
        tag_passages(session, passages, self.tagger, results)
        if self.embedder is not None:
            embed_passages(session, passages, self.embedder, vectors)


def _embed_missing(
    embedder: Embedder, texts: list[str], known: dict[str, np.ndarray], niceness: int = 0
) -> dict[str, np.ndarray]:
    """Vectors of ``texts``: the ``known`` ones as they are, the others computed now (on the
    embedding thread, lowered to ``niceness`` first; the pool threads it starts inherit it)."""
    if niceness > 0:
        lower_this_thread(niceness)
    missing = [text for text in texts if text not in known]
    if missing:
        known = {**known, **dict(zip(missing, embedder.encode(missing), strict=True))}
    return known


def passage_hook(settings: Settings, *, embed: bool | None = None) -> PassageAnalysis:
    """Tag (and, when enabled, embed) the passages of each newly ingested document, the heavy
    part at niceness KB_INGEST_NICE."""
    tagger = get_tagger(settings)
    embedder = (
        embedder_for(settings) if (settings.embed_on_ingest if embed is None else embed) else None
    )
    return PassageAnalysis(tagger, embedder, niceness=settings.ingest_nice)


def run_lowered(work: Callable[[], T], niceness: int) -> T:
    """``work()`` in a thread of its own at CPU niceness ``niceness`` (in the caller's thread
    when it is 0), its exceptions re-raised in the caller's."""
    if niceness <= 0:
        return work()
    result: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            lower_this_thread(niceness)
            result.append(work())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            failure.append(exc)

    worker = threading.Thread(target=run, name="kb-ingest-analysis", daemon=True)
    worker.start()
    worker.join()
    if failure:
        raise failure[0]
    return result[0]


def lower_this_thread(niceness: int) -> int:
    """Run the calling thread at CPU niceness ``niceness`` at least; its niceness now.

    Linux keeps a niceness per thread, and threads inherit their creator's. Never raises a
    priority (that needs privileges), so asking twice does not add up.
    """
    if not hasattr(os, "getpriority"):  # pragma: no cover - not on POSIX
        return 0
    thread = threading.get_native_id()
    current = os.getpriority(os.PRIO_PROCESS, thread)
    target = min(19, niceness)
    if target > current:
        try:
            os.setpriority(os.PRIO_PROCESS, thread, target)
        except OSError:  # a platform that refuses: run at the priority we have
            return current
    return os.getpriority(os.PRIO_PROCESS, thread)

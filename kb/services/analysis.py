"""What happens to new passages of an ingested document: theme tags, then embeddings.

Kept apart from ingest.py so ingesting stays testable without models, and so the CLI, the web
upload and ``kb demo`` all wire the same analysis in the same order.

Why in two steps: tagging and embedding a long document takes minutes, and on SQLite a write
transaction holds the database's only write lock for as long as it is open. So ``prepare``
runs the models on the passage texts before the document's transaction begins (ingest calls
it), and the hook inside the transaction only stores what was computed — a second or two of
inserts instead of minutes. A passage whose text was not prepared (the hook used on its own,
or by ``kb retag``) is analysed in place, so the result never depends on the preparation.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np
from sqlmodel import Session

from kb.config import Settings
from kb.models import Passage
from kb.services.embedding import embed_passages, embedder_for
from kb.services.tagging import get_tagger, tag_passages
from nlp.embeddings import Embedder
from nlp.tagger import Tagger


class PassageAnalysis:
    """A ``PassageHook`` with a ``prepare`` step that does the heavy work out of the lock."""

    def __init__(self, tagger: Tagger, embedder: Embedder | None, niceness: int = 0) -> None:
        self.tagger = tagger
        self.embedder = embedder
        self.niceness = niceness
        self._prepared: dict[str, tuple[list[Any], np.ndarray | None]] = {}
        self._lock = threading.Lock()

    def prepare(self, texts: list[str]) -> None:
        """Tag and embed ``texts`` now (no database involved); replaces earlier preparations.

        With ``niceness`` (KB_INGEST_NICE) the work runs in a thread of its own at that CPU
        niceness: on the server's machine a web search then takes the CPU first, and the
        ingest gets what is left. Only this thread (and the threads it starts: the embedding
        pool) is lowered, not the caller's: the document's write transaction that follows
        holds the database's write lock, and at a low priority on a busy machine it held it
        for minutes while every web write waited (and answered 503).
        """
        if self.niceness <= 0:
            self._analyse(texts)
            return
        failure: list[BaseException] = []

        def run() -> None:
            try:
                lower_this_thread(self.niceness)
                self._analyse(texts)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                failure.append(exc)

        worker = threading.Thread(target=run, name="kb-ingest-analysis", daemon=True)
        worker.start()
        worker.join()
        if failure:
            raise failure[0]

    def _analyse(self, texts: list[str]) -> None:
        unique = list(dict.fromkeys(texts))
        tags = self.tagger.tag_many(unique) if unique else []
        vectors = self.embedder.encode(unique) if self.embedder is not None and unique else None
        prepared = {
            text: (tags[i], None if vectors is None else vectors[i])
            for i, text in enumerate(unique)
        }
        with self._lock:
            self._prepared = prepared

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


def passage_hook(settings: Settings, *, embed: bool | None = None) -> PassageAnalysis:
    """Tag (and, when enabled, embed) the passages of each newly ingested document, the heavy
    part at niceness KB_INGEST_NICE."""
    tagger = get_tagger(settings)
    embedder = (
        embedder_for(settings) if (settings.embed_on_ingest if embed is None else embed) else None
    )
    return PassageAnalysis(tagger, embedder, niceness=settings.ingest_nice)


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

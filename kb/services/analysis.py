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

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
from sqlalchemy.engine import Engine
from sqlmodel import Session

from kb.config import Settings
from kb.models import Passage
from kb.services.embedding import embed_passages, embedder_for, stored_vectors
from kb.services.tagging import get_tagger, tag_passages
from nlp.embeddings import Embedder
from nlp.tagger import Tagger


class PassageAnalysis:
    """A ``PassageHook`` with a ``prepare`` step that does the heavy work out of the lock."""

    def __init__(self, tagger: Tagger, embedder: Embedder | None) -> None:
        self.tagger = tagger
        self.embedder = embedder
        self._prepared: dict[str, tuple[list[Any], np.ndarray | None]] = {}
        self._lock = threading.Lock()

    def prepare(
        self,
        texts: list[str],
        *,
        engine: Engine | None = None,
        source_name: str | None = None,
    ) -> None:
        """Tag and embed ``texts`` now (no write; replaces earlier preparations).

        Each distinct text is analysed once. With ``engine`` and ``source_name``, passages
        whose exact text the current version of that document already has a vector for (same
        model id) keep it instead of being embedded again. Embedding runs on a background
        thread while this one tags: onnxruntime releases the GIL, so the two overlap.
        """
        unique = list(dict.fromkeys(texts))
        known: dict[str, np.ndarray] = {}
        if self.embedder is not None and engine is not None and source_name and unique:
            with Session(engine) as session:
                known = stored_vectors(
                    session, unique, source_name=source_name, model_id=self.embedder.model_id
                )
        missing = [text for text in unique if text not in known]
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kb-embed") as background:
            embedding: Future[np.ndarray] | None = None
            if self.embedder is not None and missing:
                embedding = background.submit(self.embedder.encode, missing)
            tags = self.tagger.tag_many(unique) if unique else []
            if embedding is not None:
                known.update(zip(missing, embedding.result(), strict=True))
        prepared = {
            text: (tags[i], known.get(text) if self.embedder is not None else None)
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
    """Tag (and, when enabled, embed) the passages of each newly ingested document."""
    tagger = get_tagger(settings)
    embedder = (
        embedder_for(settings) if (settings.embed_on_ingest if embed is None else embed) else None
    )
    return PassageAnalysis(tagger, embedder)

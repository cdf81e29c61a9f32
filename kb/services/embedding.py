"""Passage embeddings in the database: computed in batches, re-computed when the model changes.

Vectors are stored with the passage (float32 bytes plus the model id) because the database is
the source of truth: the in-memory search index is only ever a cache rebuilt from these rows.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from kb.config import Settings, get_settings
from kb.db import session_scope
from kb.models import Document, Passage
from nlp.embeddings import Embedder, get_embedder


def embedder_for(settings: Settings | None = None) -> Embedder:
    """The configured model (KB_EMBEDDING_MODEL), default the bundled all-MiniLM-L6-v2, run by
    KB_EMBEDDING_BACKEND with its exported ONNX file cached in KB_EMBEDDING_CACHE."""
    settings = settings or get_settings()
    return get_embedder(
        settings.embedding_model,
        backend=settings.embedding_backend,
        cache_dir=settings.embedding_cache or settings.model_dir,
    )


def to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def from_bytes(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32)


def stored_vectors(
    session: Session, texts: list[str], *, source_name: str, model_id: str
) -> dict[str, np.ndarray]:
    """Vectors already stored for these exact texts in the current document named
    ``source_name`` (the version a re-ingest replaces), computed by ``model_id``.

    Why: a new version of a long report usually changes a few paragraphs; the unchanged ones
    need not be embedded again. Only the same model id counts (another backend's or model's
    vectors would mix), and only identical text (a vector is a function of its text alone).
    """
    wanted = set(texts)
    if not wanted:
        return {}
    rows = session.exec(
        select(Passage.text, Passage.embedding)
        .join(Document, col(Document.id) == Passage.document_id)
        .where(
            Document.source_name == source_name,
            col(Document.is_current),
            Passage.embedding_model == model_id,
            col(Passage.embedding).is_not(None),
        )
    ).all()
    return {text: from_bytes(blob) for text, blob in rows if text in wanted and blob}


def embed_passages(
    session: Session,
    passages: list[Passage],
    embedder: Embedder,
    vectors: np.ndarray | None = None,
) -> None:
    """Embed ``passages`` in batches and store the vectors on them (``vectors``: computed by
    the caller beforehand, outside its write transaction)."""
    if not passages:
        return
    if vectors is None:
        vectors = embedder.encode([p.text for p in passages])
    for passage, vector in zip(passages, vectors, strict=True):
        passage.embedding = to_bytes(vector)
        passage.embedding_model = embedder.model_id
        session.add(passage)
    session.flush()


def reembed_stale(
    engine: Engine,
    *,
    embedder: Embedder | None = None,
    batch_size: int = 256,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Embed every passage without a vector from the current model; returns how many."""
    embedder = embedder or embedder_for()
    with session_scope(engine) as session:
        ids = list(
            session.exec(
                select(Passage.id)
                .where(col(Passage.embedding_model).is_distinct_from(embedder.model_id))
                .order_by(col(Passage.id))
            ).all()
        )
    for start in range(0, len(ids), batch_size):
        chunk = ids[start : start + batch_size]
        with session_scope(engine) as session:
            rows = list(session.exec(select(Passage).where(col(Passage.id).in_(chunk))).all())
            embed_passages(session, rows, embedder)
        if progress:
            progress(min(start + batch_size, len(ids)), len(ids))
    return len(ids)

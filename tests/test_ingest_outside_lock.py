"""Ingest runs its models before the document's write transaction: while passages are tagged
and embedded, other writers are not blocked; inside the transaction only rows are stored."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from sqlmodel import Session, select

from kb.config import get_settings
from kb.models import Passage, ThemeTag
from kb.services.analysis import passage_hook
from kb.services.ingest import IngestOptions, ingest_paths
from tests.conftest import BACKEND

DOC = """# Learning review: Child N

Published by the Fernhill Safeguarding Children Partnership.

## Findings

1. The midwife did not share what she knew with the health visitor.
2. The mother's new partner was never assessed, and nobody asked who lived in the home.
3. Neglect of the baby's health needs was not recognised: appointments were missed.
"""


def _write_lock_is_free(engine) -> bool:  # type: ignore[no-untyped-def]
    """Whether another process could start writing right now (SQLite's one write lock)."""
    probe = sqlite3.connect(engine.url.database, isolation_level=None, timeout=0)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        probe.close()


def test_tagging_and_embedding_run_outside_the_write_transaction(
    engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp_path = tmp_path / "docs"
    tmp_path.mkdir()
    (tmp_path / "child-n.md").write_text(DOC)
    hook = passage_hook(get_settings(), embed=True)
    calls: list[tuple[str, int, bool | None]] = []
    real_tag, real_encode = hook.tagger.tag_many, hook.embedder.encode  # type: ignore[union-attr]

    def tag_many(texts, *args, **kwargs):  # type: ignore[no-untyped-def]
        free = _write_lock_is_free(engine) if BACKEND == "sqlite" else None
        calls.append(("tag", len(texts), free))
        return real_tag(texts, *args, **kwargs)

    def encode(texts):  # type: ignore[no-untyped-def]
        free = _write_lock_is_free(engine) if BACKEND == "sqlite" else None
        calls.append(("embed", len(texts), free))
        return real_encode(texts)

    monkeypatch.setattr(hook.tagger, "tag_many", tag_many)
    monkeypatch.setattr(hook.embedder, "encode", encode)
    report = ingest_paths(
        engine=engine, paths=[tmp_path], options=IngestOptions(), on_passages=hook
    )
    assert report.failed == [] and len(report.ingested) == 1
    # Each model ran once, on every passage, and never inside the transaction.
    assert [kind for kind, _, _ in calls] == ["tag", "embed"]
    if BACKEND == "sqlite":
        assert all(free for _, _, free in calls), calls
    with Session(engine) as session:
        passages = session.exec(select(Passage)).all()
        assert calls[0][1] == len({p.text for p in passages})
        assert all(p.embedding and p.embedding_model for p in passages)
        tags = session.exec(select(ThemeTag)).all()
    assert tags, "the prepared tags were stored"
    # The stored vectors are the model's vectors of those texts.
    stored = np.frombuffer(passages[0].embedding, dtype=np.float32)  # type: ignore[arg-type]
    np.testing.assert_allclose(stored, real_encode([passages[0].text])[0], atol=1e-5)


def test_the_hook_alone_still_analyses_in_place(engine, tmp_path: Path) -> None:
    """Without a preparation (kb retag, other callers) the hook computes what it needs."""
    tmp_path = tmp_path / "docs"
    tmp_path.mkdir()
    (tmp_path / "child-n.md").write_text(DOC)
    hook = passage_hook(get_settings(), embed=False)
    hook.prepare = None  # type: ignore[assignment,method-assign]
    report = ingest_paths(
        engine=engine, paths=[tmp_path], options=IngestOptions(), on_passages=hook
    )
    assert len(report.ingested) == 1
    with Session(engine) as session:
        assert session.exec(select(ThemeTag)).all()


def test_already_ingested_bytes_are_not_analysed_again(
    engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp_path = tmp_path / "docs"
    tmp_path.mkdir()
    (tmp_path / "child-n.md").write_text(DOC)
    hook = passage_hook(get_settings(), embed=False)
    ingest_paths(engine=engine, paths=[tmp_path], options=IngestOptions(), on_passages=hook)
    prepared: list[int] = []
    monkeypatch.setattr(hook, "prepare", lambda texts: prepared.append(len(texts)))
    report = ingest_paths(
        engine=engine, paths=[tmp_path], options=IngestOptions(), on_passages=hook
    )
    assert len(report.skipped) == 1 and prepared == []

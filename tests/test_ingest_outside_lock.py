"""Ingest runs its models before the document's write transaction: while passages are tagged
and embedded, other writers are not blocked; inside the transaction only rows are stored."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest
from sqlmodel import Session, col, select

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


# Tagging and embedding probe from two threads at once; without this lock one probe's own
# BEGIN IMMEDIATE would make the other report the database as locked.
_PROBE = threading.Lock()


def _write_lock_is_free(engine) -> bool:  # type: ignore[no-untyped-def]
    """Whether another process could start writing right now (SQLite's one write lock)."""
    with _PROBE:
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
    # Each model ran once, on every passage (side by side: embedding runs on a background
    # thread while tagging), and never inside the transaction.
    assert sorted(kind for kind, _, _ in calls) == ["embed", "tag"]
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
    hook.begin = None  # type: ignore[assignment,method-assign]
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
    monkeypatch.setattr(hook, "begin", lambda texts, **_: prepared.append(len(texts)))
    report = ingest_paths(
        engine=engine, paths=[tmp_path], options=IngestOptions(), on_passages=hook
    )
    assert len(report.skipped) == 1 and prepared == []


REPEATED = (
    DOC
    + """
## Recommendations

1. Health agencies should share what they know about a new partner.
2. Health agencies should share what they know about a new partner.
"""
)


def _spy_encode(hook, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:  # type: ignore[no-untyped-def]
    """Record every list of texts the hook's embedder is asked for."""
    asked: list[list[str]] = []
    real = hook.embedder.encode

    def encode(texts, **kwargs):  # type: ignore[no-untyped-def]
        asked.append(list(texts))
        return real(texts, **kwargs)

    monkeypatch.setattr(hook.embedder, "encode", encode)
    return asked


def _vectors(engine) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    """Stored vector per passage text of the current documents."""
    from kb.models import Document

    with Session(engine) as session:
        rows = session.exec(
            select(Passage.text, Passage.embedding)
            .join(Document, Document.id == Passage.document_id)
            .where(col(Document.is_current))
        ).all()
    return {text: np.frombuffer(blob, dtype=np.float32) for text, blob in rows}


def test_repeated_passages_are_embedded_once_with_identical_vectors(
    engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "child-n.md").write_text(REPEATED)
    hook = passage_hook(get_settings(), embed=True)
    asked = _spy_encode(hook, monkeypatch)
    report = ingest_paths(
        engine=engine, paths=[tmp_path / "child-n.md"], options=IngestOptions(), on_passages=hook
    )
    assert len(report.ingested) == 1
    repeated = "Health agencies should share what they know about a new partner."
    assert len(asked) == 1 and len(asked[0]) == len(set(asked[0]))
    with Session(engine) as session:
        twins = [p for p in session.exec(select(Passage)).all() if repeated in p.text]
    assert len(twins) == 2 and twins[0].text == twins[1].text
    assert twins[0].embedding == twins[1].embedding


def test_a_new_version_reuses_the_vectors_of_unchanged_passages(
    engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "child-n.md"
    path.write_text(DOC)
    hook = passage_hook(get_settings(), embed=True)
    ingest_paths(engine=engine, paths=[path], options=IngestOptions(), on_passages=hook)
    before = _vectors(engine)
    changed = "The GP was never told that the family had moved."
    path.write_text(DOC.replace("appointments were missed.", changed))
    asked = _spy_encode(hook, monkeypatch)
    report = ingest_paths(engine=engine, paths=[path], options=IngestOptions(), on_passages=hook)
    assert len(report.ingested) == 1
    after = _vectors(engine)
    new_texts = set(after) - set(before)
    assert new_texts and all(changed in t for t in new_texts)
    # Only the changed passage went through the model; the others kept their stored vectors.
    assert [sorted(texts) for texts in asked] == [sorted(new_texts)]
    for text in set(after) & set(before):
        np.testing.assert_array_equal(after[text], before[text])
    with Session(engine) as session:
        models = {p.embedding_model for p in session.exec(select(Passage)).all()}
    assert models == {hook.embedder.model_id}  # type: ignore[union-attr]


def test_vectors_of_another_model_are_not_reused(
    engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import update

    path = tmp_path / "child-n.md"
    path.write_text(DOC)
    hook = passage_hook(get_settings(), embed=True)
    ingest_paths(engine=engine, paths=[path], options=IngestOptions(), on_passages=hook)
    with Session(engine) as session:
        session.exec(update(Passage).values(embedding_model="another-model"))  # type: ignore[call-overload]
        session.commit()
    path.write_text(DOC + "\nA closing line that was not there before.\n")
    asked = _spy_encode(hook, monkeypatch)
    ingest_paths(engine=engine, paths=[path], options=IngestOptions(), on_passages=hook)
    with Session(engine) as session:
        texts = {p.text for p in session.exec(select(Passage)).all() if p.embedding_model}
        current = {p.text for p in session.exec(select(Passage)).all()}
    # Every passage of the new version was embedded again, by the current model.
    assert len(asked) == 1 and set(asked[0]) == current and texts == current


def test_the_next_file_is_analysed_while_this_one_is_embedded(
    engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kb ingest runs one document ahead: b is read and tagged before a's write, each document
    still gets its own analysis in its own transaction, and a broken file fails alone."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text(DOC)
    (docs / "b.md").write_text(DOC.replace("Child N", "Child P") + "\nOne more finding.\n")
    (docs / "c.pdf").write_bytes(b"%PDF-1.4 this is not really a PDF")
    hook = passage_hook(get_settings(), embed=True)
    events: list[str] = []
    real_begin, real_use = hook.begin, hook.use

    def begin(texts, **kwargs):  # type: ignore[no-untyped-def]
        events.append(f"begin {len(texts)}")
        return real_begin(texts, **kwargs)

    def use(preparation):  # type: ignore[no-untyped-def]
        events.append(f"use {len(preparation.tags)}")
        return real_use(preparation)

    monkeypatch.setattr(hook, "begin", begin)
    monkeypatch.setattr(hook, "use", use)
    report = ingest_paths(engine=engine, paths=[docs], options=IngestOptions(), on_passages=hook)
    assert [Path(i["path"]).name for i in report.ingested] == ["a.md", "b.md"]
    assert [Path(i["path"]).name for i in report.failed] == ["c.pdf"]
    a, b = (int(e.split()[1]) for e in events if e.startswith("begin"))
    # b.md is analysed before a.md is handed to its write.
    assert events == [f"begin {a}", f"begin {b}", f"use {a}", f"use {b}"]
    with Session(engine) as session:
        passages = session.exec(select(Passage)).all()
    assert len(passages) == a + b
    for passage in passages:
        stored = np.frombuffer(passage.embedding, dtype=np.float32)  # type: ignore[arg-type]
        np.testing.assert_allclose(stored, hook.embedder.encode([passage.text])[0], atol=1e-5)  # type: ignore[union-attr]

"""An ingest's write transaction only stores: no model, no text analysis, no findings grouping
runs while it (or any write transaction) is open, on a new document and on a new version that
carries people's roles and tag decisions. And when the replaced version changes between the
analysis and the write, the write settles again from what it sees."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from kb.config import get_settings
from kb.db_watch import WriteWatch
from kb.models import Finding, Passage, Recommendation, Review, TagStatus, ThemeTag
from kb.services import ingest, ingest_analysis
from kb.services.analysis import passage_hook
from kb.services.ingest import IngestOptions, ingest_paths

DOC = """# Learning review: Child N

Published by the Fernhill Safeguarding Children Partnership.

## Background

The family moved twice in the year before the incident. The health visitor lost contact.

## Findings

1. The midwife did not share what she knew about domestic abuse with the health visitor.
2. The mother's new partner was never assessed, and nobody asked who lived in the home.
3. Neglect of the baby's health needs was not recognised: appointments were missed.

## Recommendations

1. Health agencies should share what they know about a new partner in the home.
2. The partnership should audit how missed health appointments are followed up.
"""

PARTNER = "The mother's new partner was never assessed, and nobody asked who lived in the home."


def _spy(calls: list[tuple[str, int]], name: str, real: Any, watch: WriteWatch) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append((name, watch.open_writes()))
        return real(*args, **kwargs)

    return wrapper


@pytest.fixture
def watched(engine, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """(hook, calls, watch): every slow step records how many write transactions were open."""
    hook = passage_hook(get_settings(), embed=True)
    calls: list[tuple[str, int]] = []
    with WriteWatch(engine) as watch:
        for module, name in [
            (ingest_analysis, "classify_roles"),
            (ingest_analysis, "learning_items"),
            (ingest_analysis, "find_case_summaries"),
            (ingest_analysis, "infer_metadata"),
            (ingest_analysis, "segment"),
        ]:
            monkeypatch.setattr(module, name, _spy(calls, name, getattr(module, name), watch))
        tagger = hook.tagger
        monkeypatch.setattr(tagger, "tag_many", _spy(calls, "tag", tagger.tag_many, watch))
        embedder = hook.embedder
        monkeypatch.setattr(embedder, "encode", _spy(calls, "embed", embedder.encode, watch))  # type: ignore[union-attr]

        def no_reading_back(*args: Any, **kwargs: Any) -> None:
            raise AssertionError("findings were read back inside the write")

        monkeypatch.setattr("kb.services.ingest_write.extract_findings", no_reading_back)
        yield hook, calls, watch


def _decide(engine, text: str, role: str) -> str:  # type: ignore[no-untyped-def]
    """A person sets the role of the passage with ``text`` and rejects one of its tags."""
    with Session(engine) as session:
        passage = session.exec(select(Passage).where(Passage.text == text)).one()
        passage.role, passage.role_source, passage.role_confidence = role, "person", 1.0
        tag = session.exec(select(ThemeTag).where(ThemeTag.passage_id == passage.id)).first()
        assert tag is not None, "the passage has a suggested theme to reject"
        tag.status, tag.decided_by = TagStatus.REJECTED, "panel"
        session.add_all([passage, tag])
        session.commit()
        return tag.theme_id


def _stored(engine, text: str) -> tuple[Passage, dict[str, TagStatus]]:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        passage = session.exec(
            select(Passage).where(Passage.text == text).order_by(Passage.id.desc())  # type: ignore[union-attr]
        ).first()
        assert passage is not None
        tags = session.exec(select(ThemeTag).where(ThemeTag.passage_id == passage.id)).all()
        return passage, {t.theme_id: t.status for t in tags}


def test_no_model_or_analysis_runs_inside_a_write_transaction(
    engine, tmp_path: Path, watched
) -> None:
    hook, calls, watch = watched
    path = tmp_path / "child-n.md"
    path.write_text(DOC)
    first = ingest_paths(engine=engine, paths=[path], options=IngestOptions(), on_passages=hook)
    assert len(first.ingested) == 1, first.failed
    rejected = _decide(engine, PARTNER, "front_matter")
    path.write_text(DOC.replace("lost contact.", "lost contact with the family."))
    second = ingest_paths(engine=engine, paths=[path], options=IngestOptions(), on_passages=hook)
    assert len(second.ingested) == 1, second.failed
    steps = {name for name, _ in calls}
    assert {"classify_roles", "learning_items", "tag", "embed", "segment"} <= steps
    assert [c for c in calls if c[1]] == [], "slow work ran inside a write transaction"
    assert len(watch.transactions) >= 2
    # The new version carries the person's role and rejection, and its findings are stored.
    passage, tags = _stored(engine, PARTNER)
    assert (passage.role, passage.role_source) == ("front_matter", "person")
    assert tags[rejected] == TagStatus.REJECTED
    assert passage.embedding and passage.embedding_model
    review_id = second.ingested[0]["reviews"][0]
    assert review_id == first.ingested[0]["reviews"][0]  # the review kept its identity
    with Session(engine) as session:
        findings = session.exec(select(Finding).where(Finding.review_id == review_id)).all()
        recs = session.exec(select(Recommendation).where(Recommendation.review_id == review_id))
        # Front matter is no finding: two are left, numbered by position.
        assert [f.number for f in findings] == ["1", "2"]
        assert not any("new partner was never assessed" in f.text for f in findings)
        assert [r.number for r in recs.all()] == ["1", "2"]
        stored_ids = {p.id for p in session.exec(select(Passage)).all()}
        assert all(f.passage_id in stored_ids for f in findings)
        assert any(f.themes for f in findings)


def test_a_decision_made_during_the_analysis_is_carried(
    engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The replaced version changes after the analysis read it: the write sees the change."""
    hook = passage_hook(get_settings(), embed=False)
    path = tmp_path / "child-n.md"
    path.write_text(DOC)
    ingest_paths(engine=engine, paths=[path], options=IngestOptions(), on_passages=hook)
    path.write_text(DOC + "\nA closing paragraph added in the second version of the review.\n")
    options = IngestOptions()
    analysed = ingest._analyse(engine, path, options, hook)
    assert analysed.document is not None and analysed.document.previous.person_roles == {}
    rejected = _decide(engine, PARTNER, "front_matter")  # a person, between analysis and write
    outcome, item = ingest._store(engine, analysed, options, hook, None)
    assert outcome == "ingested", item
    passage, tags = _stored(engine, PARTNER)
    assert (passage.role, passage.role_source) == ("front_matter", "person")
    assert tags[rejected] == TagStatus.REJECTED
    with Session(engine) as session:
        review = session.get(Review, item["reviews"][0])
        assert review is not None
        texts = session.exec(select(Finding.text).where(Finding.review_id == review.id)).all()
        assert len(texts) == 2 and not any("never assessed" in t for t in texts)


def test_re_extraction_keeps_one_row_per_item_when_numbers_repeat(engine, tmp_path: Path) -> None:
    """Two items numbered "1" (two lists in one review): stored twice, re-stored in place."""
    from kb.services.findings import LearningDraft, store_learning

    path = tmp_path / "child-n.md"
    path.write_text(DOC)
    report = ingest_paths(engine=engine, paths=[path], options=IngestOptions())
    review_id = report.ingested[0]["reviews"][0]
    drafts = [
        LearningDraft("1", "The first list's first finding.", None, []),
        LearningDraft("1", "The second list's first finding.", None, ["neglect"]),
    ]
    with Session(engine) as session:
        store_learning(session, review_id, drafts, [], fresh=False)
        session.commit()
        first = sorted(session.exec(select(Finding.id).where(Finding.review_id == review_id)))
        assert store_learning(session, review_id, drafts, [], fresh=False) == (2, 0)
        session.commit()
        rows = session.exec(
            select(Finding).where(Finding.review_id == review_id).order_by(Finding.id)  # type: ignore[arg-type]
        ).all()
    assert [r.id for r in rows] == first and len(rows) == 2
    assert [r.themes for r in rows] == [[], ["neglect"]]

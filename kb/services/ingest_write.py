"""Ingest's one short write: an analysed document's rows stored in bulk, nothing computed.

Why apart from the analysis (kb/services/ingest_analysis.py): on SQLite the write transaction
holds the database's only write lock, and a long one made every other user's write wait past
the busy timeout (a 1 MB report held it for two minutes while roles, tags and findings were
computed inside). Here the transaction only reads what it must re-check and inserts rows that
were ready before it began: the document, its reviews, passages (with their roles and vectors),
theme tags and findings, each table in one executemany.

What is re-checked inside: the version this file replaces. The analysis read it beforehand
(people's roles and tag decisions to carry over, the kept review's kind); if it is no longer
the same when the lock is held (another ingest, a person's decision in between), the cheap
parts are settled again here from what the transaction reads, so the result is what a fully
serial ingest would store.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy import text as sql_text
from sqlmodel import Session, col, delete, select

from kb.models import Document, Partnership, Passage, Review, ThemeTag
from kb.services.access import Principal
from kb.services.cases import match_cases
from kb.services.findings import detach_passages, extract_findings, store_learning
from kb.services.ingest_analysis import (
    AnalysedDocument,
    Previous,
    Settled,
    previous_version,
    read_previous,
    settle,
)

log = logging.getLogger(__name__)

PassageHook = Callable[[Session, list[Passage]], None]


class Raced(RuntimeError):
    """Another ingest superseded the same previous version first: start this file again."""


class NeedsAnalysis(RuntimeError):
    """The analysis stopped early because these bytes were stored, and now they are not."""


def write_document(
    session: Session,
    analysed: AnalysedDocument,
    settled: Settled | None,
    principal: Principal,
    on_passages: PassageHook | None,
) -> dict[str, Any]:
    """Store ``analysed`` in ``session``'s transaction → the report's outcome."""
    doc = analysed.extracted
    lock_name(session, doc.path.name)
    existing = session.exec(select(Document.id).where(Document.sha256 == doc.sha256)).first()
    if existing is not None:
        return {"skipped": f"already ingested as document {existing}"}
    if settled is None:
        raise NeedsAnalysis(doc.path.name)
    partnership = _partnership(session, analysed.meta.partnership)
    partnership_id = partnership.id if partnership else None
    previous = previous_version(session, doc.path.name, partnership_id, principal)
    document = Document(
        source_name=doc.path.name,
        format=doc.format,
        pages=doc.pages,
        title=doc.title,
        sha256=doc.sha256,
        size_bytes=len(doc.text.encode()),
        text=doc.text,
        version=(previous.version + 1) if previous else 1,
    )
    session.add(document)
    session.flush()
    now = read_previous(session, previous) if previous is not None else Previous()
    if now != analysed.previous:
        # Rare: the replaced version changed since the analysis. Settle again from what this
        # transaction sees (carried roles and decisions only; the models' results stand).
        log.info("%s: the previous version changed during analysis", doc.path.name)
        settled = settle(analysed, settled.results, now)
    reviews = [
        Review(document_id=document.id, partnership_id=partnership_id, **fields)  # type: ignore[arg-type]
        for fields in analysed.reviews
    ]
    fresh = [True] * len(reviews)
    if previous is not None:
        reviews, fresh = _supersede(session, previous, reviews)
    session.add_all(reviews)
    session.flush()
    for review in reviews[1:]:
        review.parent_review_id = reviews[0].id
    review_ids = [r.id for r in reviews]
    ids = _insert_passages(session, document.id, settled, review_ids)  # type: ignore[arg-type]
    _insert_tags(session, settled, ids, review_ids)  # type: ignore[arg-type]
    if on_passages is not None and getattr(on_passages, "begin", None) is None and ids:
        # A hook without an analysis step (tests, callers' own hooks) sees the stored
        # passages in the transaction, and findings are read back after it ran.
        on_passages(session, _stored_passages(session, document.id))  # type: ignore[arg-type]
        for review in reviews:
            extract_findings(session, review_id=review.id)  # type: ignore[arg-type]
    else:
        _store_learning(session, settled, ids, review_ids, fresh)  # type: ignore[arg-type]
    match_cases(session, [r.id for r in reviews if r.id is not None])
    outcome: dict[str, Any] = {"document_id": document.id, "reviews": review_ids}
    if analysed.meta.warnings:
        outcome["warnings"] = list(analysed.meta.warnings)
    return outcome


def _insert_passages(
    session: Session, document_id: int, settled: Settled, review_ids: list[int]
) -> list[int]:
    """All passages in one executemany; their ids in reading order."""
    rows = [
        {
            "review_id": review_ids[p.review],
            "document_id": document_id,
            "section_title": p.section_title,
            "section_kind": p.section_kind,
            "kind": p.kind,
            "text": p.text,
            "order": p.order,
            "start": p.start,
            "end": p.end,
            "role": p.role,
            "role_source": p.role_source,
            "role_confidence": p.role_confidence,
            "embedding": vector,
            "embedding_model": settled.embedding_model if vector is not None else None,
            "tagged_with": settled.tagged_with,
        }
        for p, vector in zip(settled.passages, settled.vectors, strict=True)
    ]
    if not rows:
        return []
    # One executemany, then the ids by order: RETURNING in parameter order would make SQLite
    # run one INSERT per row.
    session.execute(insert(Passage.__table__), rows)  # type: ignore[attr-defined]
    ids = dict(
        session.execute(
            select(Passage.order, Passage.id).where(Passage.document_id == document_id)
        ).all()
    )
    return [ids[p.order] for p in settled.passages]


def _insert_tags(session: Session, settled: Settled, ids: list[int], review_ids: list[int]) -> None:
    """All theme tags (suggestions and carried decisions) in one executemany."""
    rows = [
        {
            **tag,
            "passage_id": ids[order],
            "review_id": review_ids[settled.passages[order].review],
            "version_id": 1,
        }
        for order, tag in settled.tags
    ]
    if rows:
        session.execute(insert(ThemeTag.__table__), rows)  # type: ignore[attr-defined]


def _store_learning(
    session: Session, settled: Settled, ids: list[int], review_ids: list[int], fresh: list[bool]
) -> None:
    for index, (findings, recs) in enumerate(settled.learning):
        by_id = [_with_id(d, ids) for d in findings], [_with_id(d, ids) for d in recs]
        store_learning(session, review_ids[index], *by_id, fresh=fresh[index])


def _with_id(draft: Any, ids: list[int]) -> Any:
    """A draft whose ``passage_id`` is a passage's order, given the stored passage's id."""
    return replace(draft, passage_id=ids[draft.passage_id])


def _stored_passages(session: Session, document_id: int) -> list[Passage]:
    return list(
        session.exec(
            select(Passage).where(Passage.document_id == document_id).order_by(col(Passage.order))
        ).all()
    )


def lock_name(session: Session, name: str) -> None:
    """Serialise ingests of one file name until this transaction ends.

    Two same-named uploads at once must not both become the current version. PostgreSQL takes
    an advisory lock keyed by the name; SQLite has one writer at a time, and a first statement
    that writes (matching no row) makes this transaction that writer before it reads anything.
    """
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        session.execute(sql_text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    else:
        session.execute(sql_text("UPDATE document SET version = version WHERE 1 = 0"))


def _partnership(session: Session, name: str | None) -> Partnership | None:
    if not name:
        return None
    found = session.exec(select(Partnership).where(Partnership.name == name)).first()
    if found is None:
        found = Partnership(name=name)
        session.add(found)
        session.flush()
    return found


def _supersede(
    session: Session, previous: Document, reviews: list[Review]
) -> tuple[list[Review], list[bool]]:
    """Move a document's reviews to its new version, keeping their ids → (reviews, whether
    each is new: a kept review's findings are matched to its stored ones, not inserted).

    New reviews are matched to old ones by pseudonym; matched ones are updated in place so
    links to findings and actions survive. The old version's passages and tags go (people's
    decisions were read before, in :func:`read_previous`, and are carried by text).
    """
    retired = session.execute(
        update(Document)
        .where(col(Document.id) == previous.id, col(Document.is_current))
        .values(is_current=False)
    )
    if retired.rowcount != 1:  # type: ignore[attr-defined]
        raise Raced(previous.source_name)
    old_reviews = session.exec(select(Review).where(Review.document_id == previous.id)).all()
    by_name = {r.pseudonym: r for r in old_reviews}
    old_passage_ids = select(Passage.id).where(Passage.document_id == previous.id)
    detach_passages(session, document_id=previous.id)  # type: ignore[arg-type]
    session.exec(delete(ThemeTag).where(col(ThemeTag.passage_id).in_(old_passage_ids)))  # type: ignore[call-overload]
    session.exec(delete(Passage).where(col(Passage.document_id) == previous.id))  # type: ignore[call-overload]
    kept: list[Review] = []
    fresh: list[bool] = []
    for review in reviews:
        old = by_name.pop(review.pseudonym, None)
        if old is None:
            kept.append(review)
            fresh.append(True)
            continue
        # Partnership and status are the review's own: publishing is a separate audited action.
        # A person's kind correction and case links outlive the text they were made on.
        keep = {"id", "created_at", "version_id", "partnership_id", "status"}
        keep |= {"case_id", "case_source"}
        if old.type_source == "person" and review.type_source == "inferred":
            keep |= {"type", "type_source"}
        for name, value in review.model_dump(exclude=keep).items():
            setattr(old, name, value)
        old.version_id += 1
        kept.append(old)
        fresh.append(False)
    for orphan in by_name.values():
        orphan.document_id = previous.id  # stays attached to the old version as history
    return kept, fresh


__all__ = [
    "NeedsAnalysis",
    "Raced",
    "lock_name",
    "previous_version",
    "write_document",
]

"""Ingest: files in, reviews and passages stored, one transaction per document.

Why one transaction per document: a failure (a corrupt file, a crash, Ctrl-C) must never leave
half a document behind, and one bad file must not stop a run of hundreds. Why a content hash:
re-ingesting the same bytes must change nothing, while a changed file with the same name is a
new version of the same document whose reviews keep their identity (and their tracker links).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, delete, select

from corpus.cases import CaseSummary, find_case_summaries
from corpus.document import ExtractedDocument, ReaderError
from corpus.metadata import ReviewMeta, apply_overrides, infer_metadata
from corpus.readers import SUPPORTED_SUFFIXES, read_document
from corpus.segment import Section, segment
from kb.config import get_settings
from kb.db import session_scope
from kb.models import (
    Document,
    Partnership,
    Passage,
    Review,
    ReviewStatus,
    ReviewType,
    TagStatus,
    ThemeTag,
)
from kb.services.findings import detach_passages, extract_findings

log = logging.getLogger(__name__)

MANIFEST_NAMES = {"manifest.yaml", "manifest.yml", "manifest.csv"}

PassageHook = Callable[[Session, list[Passage]], None]


@dataclass(slots=True)
class IngestOptions:
    """What the caller knows better than inference: flags beat the manifest beats the text."""

    manifest: dict[str, dict[str, Any]] = field(default_factory=dict)
    partnership: str | None = None
    review_type: ReviewType | None = None
    status: ReviewStatus | None = None

    def overrides_for(self, path: Path) -> dict[str, Any]:
        """Manifest entry for ``path`` (by file name) with command-line flags on top."""
        merged = dict(self.manifest.get(path.name, {}))
        if self.partnership:
            merged["partnership"] = self.partnership
        if self.review_type:
            merged["type"] = self.review_type
        if self.status:
            merged["status"] = self.status
        return merged


@dataclass(slots=True)
class IngestReport:
    """The outcome of a run, in the shape ``kb ingest --json`` prints."""

    ingested: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[dict[str, Any]]]:
        return {"ingested": self.ingested, "skipped": self.skipped, "failed": self.failed}


def expand_paths(paths: Iterable[Path]) -> tuple[list[Path], list[dict[str, str]]]:
    """Files to ingest from files and folders; unsupported files in folders are reported."""
    files: list[Path] = []
    skipped: list[dict[str, str]] = []
    for path in paths:
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if child.name.startswith(".") or child.name in MANIFEST_NAMES:
                    continue
                if child.suffix.lower() in SUPPORTED_SUFFIXES:
                    files.append(child)
                else:
                    skipped.append({"path": str(child), "reason": "unsupported file type"})
        else:
            files.append(path)
    return files, skipped


def ingest_paths(
    *,
    engine: Engine,
    paths: Iterable[Path],
    options: IngestOptions | None = None,
    on_passages: PassageHook | None = None,
    progress: Callable[[int, int, Path], None] | None = None,
) -> IngestReport:
    """Ingest every file under ``paths``; failures are reported, never raised.

    ``on_passages`` runs inside each document's transaction on its new passages (tagging and
    embedding hook in here), so a document is stored with its tags or not at all.
    """
    options = options or IngestOptions()
    files, skipped = expand_paths(paths)
    report = IngestReport(skipped=skipped)
    for index, path in enumerate(files, start=1):
        outcome, item = ingest_file(engine, path, options=options, on_passages=on_passages)
        getattr(report, outcome).append(item)
        if progress:
            progress(index, len(files), path)
    return report


DocumentHook = Callable[[Session, str, dict[str, Any]], None]


def ingest_file(
    engine: Engine,
    path: Path,
    *,
    options: IngestOptions,
    on_passages: PassageHook | None = None,
    on_outcome: DocumentHook | None = None,
) -> tuple[str, dict[str, Any]]:
    """Ingest one file → ("ingested" | "skipped" | "failed", its report item); never raises.

    ``on_outcome(session, outcome, item)`` runs inside the document's transaction for an
    ingested or skipped file, so a caller's bookkeeping (an ingest job's per-file result)
    commits together with the document or not at all.
    """
    max_bytes = get_settings().max_file_mb * 1_000_000
    try:
        extracted = read_document(path, max_bytes=max_bytes)
        sections = _prepare(engine, extracted, on_passages)
        with session_scope(engine) as session:
            outcome = _ingest_one(
                session, extracted, options.overrides_for(path), on_passages, sections=sections
            )
            if outcome.get("skipped"):
                kind, item = "skipped", {"path": str(path), "reason": outcome["skipped"]}
            else:
                kind, item = "ingested", {"path": str(path), **outcome}
            if on_outcome is not None:
                on_outcome(session, kind, item)
        return kind, item
    except ReaderError as exc:
        return "failed", {"path": str(path), "error": exc.reason}
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop the run
        log.exception("ingest of %s failed", path)
        return "failed", {"path": str(path), "error": _describe(exc)}


def _prepare(
    engine: Engine, doc: ExtractedDocument, on_passages: PassageHook | None
) -> list[Section]:
    """Everything slow that needs no database, before the write transaction opens: segment
    the text and let the hook run its models on the passages (``prepare``, when it has one:
    kb/services/analysis.py). Bytes already stored are not analysed again."""
    sections = segment(doc)
    prepare = getattr(on_passages, "prepare", None)
    if prepare is None:
        return sections
    with Session(engine) as session:
        if session.exec(select(Document.id).where(Document.sha256 == doc.sha256)).first():
            return sections
    prepare([span.text for section in sections for span in section.passages])
    return sections


def _describe(exc: Exception) -> str:
    """One short line for the report: the exception type and its message's first line.

    Database errors go on with the SQL and its parameters (document text), which belong in the
    log, not in a report that an uploader sees or that must stay one line per file.
    """
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {first}"[:300] if first else type(exc).__name__


def _ingest_one(
    session: Session,
    doc: ExtractedDocument,
    overrides: dict[str, Any],
    on_passages: PassageHook | None,
    *,
    sections: list[Section] | None = None,
) -> dict[str, Any]:
    existing = session.exec(select(Document).where(Document.sha256 == doc.sha256)).first()
    if existing is not None:
        return {"skipped": f"already ingested as document {existing.id}"}
    previous = session.exec(
        select(Document).where(Document.source_name == doc.path.name, col(Document.is_current))
    ).first()
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
    sections = sections if sections is not None else segment(doc)
    meta = apply_overrides(infer_metadata(doc.text, doc.path.name), overrides)
    partnership = _partnership(session, meta.partnership)
    cases = (
        find_case_summaries(doc, sections) if meta.review_type == ReviewType.ANNUAL_REPORT else []
    )
    reviews = _build_reviews(document, meta, partnership, cases, doc)
    carried: dict[tuple[str, str], ThemeTag] = {}
    if previous is not None:
        reviews, carried = _supersede(session, previous, reviews)
    for review in reviews:
        session.add(review)
    session.flush()
    if len(reviews) > 1:
        for review in reviews[1:]:
            review.parent_review_id = reviews[0].id
    passages = _build_passages(document, sections, reviews, cases)
    session.add_all(passages)
    session.flush()
    if on_passages is not None and passages:
        on_passages(session, passages)
    if carried:
        _carry_decisions(session, passages, carried)
    for review in reviews:
        extract_findings(session, review_id=review.id)  # type: ignore[arg-type]
    return {"document_id": document.id, "reviews": [r.id for r in reviews]}


def _partnership(session: Session, name: str | None) -> Partnership | None:
    if not name:
        return None
    found = session.exec(select(Partnership).where(Partnership.name == name)).first()
    if found is None:
        found = Partnership(name=name)
        session.add(found)
        session.flush()
    return found


def _year(meta: ReviewMeta) -> int | None:
    for value in (meta.incident_date, meta.review_date, meta.publication_date):
        if value is not None:
            return value.year
    return None


def _review_from_meta(
    meta: ReviewMeta, document: Document, partnership: Partnership | None
) -> Review:
    return Review(
        document_id=document.id,  # type: ignore[arg-type]
        partnership_id=partnership.id if partnership else None,
        type=meta.review_type,
        pseudonym=meta.pseudonym or (meta.title or Path(document.source_name).stem)[:120],
        title=meta.title or document.title,
        incident_date=meta.incident_date,
        review_date=meta.review_date,
        publication_date=meta.publication_date,
        age_band=meta.age_band,
        status=meta.status,
        year=_year(meta),
        start=0,
        end=len(document.text),
    )


def _build_reviews(
    document: Document,
    meta: ReviewMeta,
    partnership: Partnership | None,
    cases: list[CaseSummary],
    doc: ExtractedDocument,
) -> list[Review]:
    """The document's own review, then one per case summary it delimits."""
    reviews = [_review_from_meta(meta, document, partnership)]
    for case in cases:
        review = _review_from_meta(meta, document, partnership)
        review.type = case.review_type
        review.pseudonym = case.pseudonym
        review.title = case.title
        # The summary's own facts, not the report's: "a 7-week-old ... admitted in June 2021".
        case_meta = infer_metadata(doc.text[case.start : case.end], "")
        review.age_band = case_meta.age_band
        review.incident_date = case_meta.incident_date
        review.review_date = review.publication_date = None
        review.year = _year(case_meta) or review.year
        review.start, review.end = case.start, case.end
        reviews.append(review)
    return reviews


def _build_passages(
    document: Document, sections: list[Section], reviews: list[Review], cases: list[CaseSummary]
) -> list[Passage]:
    """Passages in reading order, each owned by the case summary that contains it, if any."""
    passages: list[Passage] = []
    case_reviews = list(zip(cases, reviews[1:], strict=True))
    for section in sections:
        for span in section.passages:
            owner = next((r for c, r in case_reviews if c.start <= span.start < c.end), reviews[0])
            passages.append(
                Passage(
                    review_id=owner.id,  # type: ignore[arg-type]
                    document_id=document.id,  # type: ignore[arg-type]
                    section_title=section.title[:500],
                    section_kind=section.kind,
                    kind=span.kind,
                    text=span.text,
                    order=len(passages),
                    start=span.start,
                    end=span.end,
                )
            )
    return passages


def _supersede(
    session: Session, previous: Document, reviews: list[Review]
) -> tuple[list[Review], dict[tuple[str, str], ThemeTag]]:
    """Move a document's reviews to its new version, keeping their ids.

    New reviews are matched to old ones by pseudonym; matched ones are updated in place so
    links to findings and actions survive. Human tag decisions are collected so they can be
    re-applied to passages whose text did not change.
    """
    previous.is_current = False
    old_reviews = session.exec(select(Review).where(Review.document_id == previous.id)).all()
    by_name = {r.pseudonym: r for r in old_reviews}
    decided = session.exec(
        select(ThemeTag, Passage.text)
        .join(Passage, col(Passage.id) == ThemeTag.passage_id)
        .where(Passage.document_id == previous.id, ThemeTag.status != TagStatus.SUGGESTED)
    ).all()
    carried = {(text, tag.theme_id): tag for tag, text in decided}
    for tag, _ in decided:
        session.expunge(tag)
    old_passage_ids = select(Passage.id).where(Passage.document_id == previous.id)
    detach_passages(session, passage_ids=list(session.exec(old_passage_ids).all()))
    session.exec(delete(ThemeTag).where(col(ThemeTag.passage_id).in_(old_passage_ids)))  # type: ignore[call-overload]
    session.exec(delete(Passage).where(col(Passage.document_id) == previous.id))  # type: ignore[call-overload]
    kept: list[Review] = []
    for review in reviews:
        old = by_name.pop(review.pseudonym, None)
        if old is None:
            kept.append(review)
            continue
        for name, value in review.model_dump(exclude={"id", "created_at", "version_id"}).items():
            setattr(old, name, value)
        old.version_id += 1
        kept.append(old)
    for orphan in by_name.values():
        orphan.document_id = previous.id  # stays attached to the old version as history
    return kept, carried


def _carry_decisions(
    session: Session, passages: list[Passage], carried: dict[tuple[str, str], ThemeTag]
) -> None:
    """Re-apply confirmations and rejections to unchanged passages of a new version."""
    for passage in passages:
        for (text, theme_id), old in carried.items():
            if text != passage.text:
                continue
            tag = session.exec(
                select(ThemeTag).where(
                    ThemeTag.passage_id == passage.id, ThemeTag.theme_id == theme_id
                )
            ).first()
            if tag is None:
                tag = ThemeTag(
                    passage_id=passage.id,  # type: ignore[arg-type]
                    review_id=passage.review_id,
                    theme_id=theme_id,
                    method=old.method,
                    confidence=old.confidence,
                    evidence=_shift_evidence(old.evidence, passage),
                )
                session.add(tag)
            tag.status, tag.decided_by, tag.decided_at = old.status, old.decided_by, old.decided_at


def _shift_evidence(evidence: list[dict[str, Any]], passage: Passage) -> list[dict[str, Any]]:
    """Old evidence re-based onto the passage's new position in the new version's text."""
    out = []
    for item in evidence:
        rel_start = item.get("passage_start", 0)
        rel_end = item.get("passage_end", len(passage.text))
        out.append(
            {
                **item,
                "start": passage.start + rel_start,
                "end": passage.start + rel_end,
            }
        )
    return out

"""Ingest: files in, reviews and passages stored, one transaction per document.

Why one transaction per document: a failure (a corrupt file, a crash, Ctrl-C) must never leave
half a document behind, and one bad file must not stop a run of hundreds. Why a content hash:
re-ingesting the same bytes must change nothing, while a changed file with the same name is a
new version of the same document whose reviews keep their identity (and their tracker links).

Why a name alone is not an identity: two partnerships may both upload ``report.md``, and a hostile
uploader may pick the name of someone else's embargoed review. A file is a new version of a
previous document only when that document's review belongs to the same partnership and the
uploader may edit it; otherwise it is a new document. A new version never changes an existing
review's partnership or status: publishing is its own audited action
(:func:`kb.services.reviews.set_review_status`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text as sql_text
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from corpus.cases import CaseSummary, find_case_summaries
from corpus.document import ExtractedDocument, ReaderError
from corpus.kinds import Period
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
from kb.services.access import Principal, can_edit
from kb.services.cases import match_cases
from kb.services.findings import detach_passages, extract_findings
from kb.services.roles import assign_roles, person_roles

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
    #: Who is ingesting: a previous version is only superseded if they may edit its review.
    principal: Principal = field(default_factory=Principal.system)

    def type_source(self, path: Path) -> str:
        """Where the document's kind comes from: a corrected kind survives re-ingest."""
        if self.review_type:
            return "flag"
        return "manifest" if self.manifest.get(path.name, {}).get("type") else "inferred"

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
            root = path.resolve()
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if child.name.startswith(".") or child.name in MANIFEST_NAMES:
                    continue
                if not child.resolve().is_relative_to(root):
                    # A link out of the folder (to /etc/passwd, another partnership's share):
                    # the operator asked for this folder's files, nothing else.
                    reason = "a symbolic link to a file outside the folder"
                    skipped.append({"path": str(child), "reason": reason})
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
    # One document ahead: the next file is read, segmented and tagged while this one's
    # passages are still being embedded in the background; each keeps its own short write.
    pending: _Analysed | None = None
    for index, path in enumerate([*files, None]):
        analysed = _analyse(engine, path, on_passages) if path is not None else None
        if pending is not None:
            outcome, item = _store(engine, pending, options, on_passages, None)
            getattr(report, outcome).append(item)
            if progress:
                progress(index, len(files), pending.path)
        pending = analysed
    return report


class _Raced(RuntimeError):
    """Another ingest superseded the same previous version first: start this file again."""


DocumentHook = Callable[[Session, str, dict[str, Any]], None]


@dataclass(slots=True)
class _Analysed:
    """A file read and analysed, not yet stored (or the reason it cannot be)."""

    path: Path
    extracted: ExtractedDocument | None = None
    sections: list[Section] = field(default_factory=list)
    preparation: Any = None
    failure: dict[str, Any] | None = None


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
    return _store(engine, _analyse(engine, path, on_passages), options, on_passages, on_outcome)


def _analyse(engine: Engine, path: Path, on_passages: PassageHook | None) -> _Analysed:
    """Read the file and run the models on it, outside any write transaction; never raises."""
    max_bytes = get_settings().max_file_mb * 1_000_000
    try:
        extracted = read_document(path, max_bytes=max_bytes)
        sections, preparation = _prepare(engine, extracted, on_passages)
        return _Analysed(path, extracted, sections, preparation)
    except ReaderError as exc:
        return _Analysed(path, failure={"path": str(path), "error": exc.reason})
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop the run
        log.exception("ingest of %s failed", path)
        return _Analysed(path, failure={"path": str(path), "error": _describe(exc)})


def _store(
    engine: Engine,
    analysed: _Analysed,
    options: IngestOptions,
    on_passages: PassageHook | None,
    on_outcome: DocumentHook | None,
) -> tuple[str, dict[str, Any]]:
    """The analysed file's one short write transaction; never raises."""
    if analysed.failure is not None or analysed.extracted is None:
        return "failed", analysed.failure or {"path": str(analysed.path), "error": "not read"}
    try:
        if analysed.preparation is not None:
            on_passages.use(analysed.preparation)  # type: ignore[union-attr]
        return _ingest_with_retry(
            engine,
            analysed.extracted,
            options,
            analysed.path,
            on_passages,
            sections=analysed.sections,
            on_outcome=on_outcome,
        )
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop the run
        log.exception("ingest of %s failed", analysed.path)
        return "failed", {"path": str(analysed.path), "error": _describe(exc)}


def _ingest_with_retry(
    engine: Engine,
    extracted: ExtractedDocument,
    options: IngestOptions,
    path: Path,
    on_passages: PassageHook | None,
    *,
    sections: list[Section],
    on_outcome: DocumentHook | None,
) -> tuple[str, dict[str, Any]]:
    """One document's transaction, retried when a concurrent ingest of the same name won.

    The same bytes stored concurrently under another name hit the unique content hash: that is
    "already ingested", said cleanly instead of the database's IntegrityError text.
    """
    for _attempt in range(3):
        try:
            with session_scope(engine) as session:
                outcome = _ingest_one(
                    session,
                    extracted,
                    options.overrides_for(path),
                    on_passages,
                    options.principal,
                    options.type_source(path),
                    sections=sections,
                )
                result = _report_item(path, outcome)
                if on_outcome is not None:
                    on_outcome(session, *result)
                return result
        except _Raced:
            continue
        except IntegrityError:
            with Session(engine) as session:
                found = session.exec(
                    select(Document.id).where(Document.sha256 == extracted.sha256)
                ).first()
            if found is None:
                raise
            result = _report_item(path, {"skipped": f"already ingested as document {found}"})
            if on_outcome is not None:
                with session_scope(engine) as session:
                    on_outcome(session, *result)
            return result
    raise RuntimeError("the document kept changing under a concurrent ingest; try again")


def _report_item(path: Path, outcome: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if outcome.get("skipped"):
        return "skipped", {"path": str(path), "reason": outcome["skipped"]}
    return "ingested", {"path": str(path), **outcome}


def _prepare(
    engine: Engine, doc: ExtractedDocument, on_passages: PassageHook | None
) -> tuple[list[Section], Any]:
    """Everything slow that needs no database write, before the write transaction opens:
    segment the text and let the hook start its models on the passages (``begin``, when it
    has one: kb/services/analysis.py; it may read the version this file replaces to reuse its
    vectors). Returns the sections and the hook's preparation (None: nothing prepared).
    Bytes already stored are not analysed again."""
    sections = segment(doc)
    begin = getattr(on_passages, "begin", None)
    if begin is None:
        return sections, None
    with Session(engine) as session:
        if session.exec(select(Document.id).where(Document.sha256 == doc.sha256)).first():
            return sections, None
    texts = [span.text for section in sections for span in section.passages]
    return sections, begin(texts, engine=engine, source_name=doc.path.name)


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
    principal: Principal,
    type_source: str = "inferred",
    *,
    sections: list[Section] | None = None,
) -> dict[str, Any]:
    _lock_name(session, doc.path.name)
    existing = session.exec(select(Document).where(Document.sha256 == doc.sha256)).first()
    if existing is not None:
        return {"skipped": f"already ingested as document {existing.id}"}
    meta = apply_overrides(infer_metadata(doc.text, doc.path.name), overrides)
    for warning in meta.warnings:
        log.warning("%s", warning)
    partnership = _partnership(session, meta.partnership)
    previous = _previous_version(
        session, doc.path.name, partnership.id if partnership else None, principal
    )
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
    cases = (
        find_case_summaries(doc, sections) if meta.review_type == ReviewType.ANNUAL_REPORT else []
    )
    reviews = _build_reviews(document, meta, partnership, cases, doc)
    reviews[0].type_source = type_source
    carried: dict[tuple[str, str], ThemeTag] = {}
    carried_roles: dict[str, str] = {}
    if previous is not None:
        carried_roles = person_roles(session, previous.id)  # type: ignore[arg-type]
        reviews, carried = _supersede(session, previous, reviews)
    for review in reviews:
        session.add(review)
    session.flush()
    if len(reviews) > 1:
        for review in reviews[1:]:
            review.parent_review_id = reviews[0].id
    passages = _build_passages(document, sections, reviews, cases)
    assign_roles(
        session,
        passages,
        text_length=len(doc.text),
        sections=sections,
        doc_kind=reviews[0].type.value,
        carried=carried_roles,
    )
    session.add_all(passages)
    session.flush()
    if on_passages is not None and passages:
        on_passages(session, passages)
    if carried:
        _carry_decisions(session, passages, carried)
    for review in reviews:
        extract_findings(session, review_id=review.id)  # type: ignore[arg-type]
    match_cases(session, [r.id for r in reviews if r.id is not None])
    outcome: dict[str, Any] = {"document_id": document.id, "reviews": [r.id for r in reviews]}
    if meta.warnings:
        outcome["warnings"] = list(meta.warnings)
    return outcome


def _lock_name(session: Session, name: str) -> None:
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


def _previous_version(
    session: Session, name: str, partnership_id: int | None, principal: Principal
) -> Document | None:
    """The current document this file is a new version of, or None for a new document.

    Same name, same partnership (of the document's own review), and an uploader who may edit
    that review: anything else is someone else's document that merely shares a name.
    """
    candidates = session.exec(
        select(Document, Review)
        .join(Review, col(Review.document_id) == Document.id)
        .where(
            Document.source_name == name,
            col(Document.is_current),
            col(Review.parent_review_id).is_(None),
        )
        .order_by(col(Document.id), col(Review.id))
    ).all()
    for document, review in candidates:
        if review.partnership_id == partnership_id and can_edit(principal, review):
            return document
    return None


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
        period=meta.period,
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
    period = Period.parse(meta.period)
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
        # No date of its own: the report's period says when ("2020-21" -> 2020), flagged.
        own = _year(case_meta)
        review.year = own or (period.case_year if period else review.year)
        review.year_inferred = own is None and period is not None
        review.period = meta.period
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
    retired = session.execute(
        update(Document)
        .where(col(Document.id) == previous.id, col(Document.is_current))
        .values(is_current=False)
    )
    if retired.rowcount != 1:  # type: ignore[attr-defined]
        raise _Raced(previous.source_name)
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

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

Why two steps per file: everything slow happens in the analysis (kb/services/ingest_analysis.py,
no write), so the document's transaction (kb/services/ingest_write.py) only stores rows and
other users' writes wait for it a second or two at most, not minutes.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from corpus.document import ReaderError
from corpus.readers import SUPPORTED_SUFFIXES, read_document
from kb.config import get_settings
from kb.db import session_scope
from kb.models import Document, Passage, ReviewStatus, ReviewType
from kb.services.access import Principal
from kb.services.ingest_analysis import AnalysedDocument, analyse_document, settle
from kb.services.ingest_write import NeedsAnalysis, Raced, write_document

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

    ``on_passages`` is the passage hook (kb/services/analysis.py): its ``begin`` tags and
    starts embedding a document's passages before the document's write, which stores the
    results with the passages, so a document is stored with its tags or not at all. A hook
    without ``begin`` is called inside the write on the stored passages instead.
    """
    options = options or IngestOptions()
    files, skipped = expand_paths(paths)
    report = IngestReport(skipped=skipped)
    # One document ahead: the next file is read, segmented and tagged while this one's
    # passages are still being embedded in the background; each keeps its own short write.
    pending: _Analysed | None = None
    for index, path in enumerate([*files, None]):
        analysed = _analyse(engine, path, options, on_passages) if path is not None else None
        if pending is not None:
            outcome, item = _store(engine, pending, options, on_passages, None)
            getattr(report, outcome).append(item)
            if progress:
                progress(index, len(files), pending.path)
        pending = analysed
    return report


DocumentHook = Callable[[Session, str, dict[str, Any]], None]


@dataclass(slots=True)
class _Analysed:
    """A file read and analysed, not yet stored (or the reason it cannot be)."""

    path: Path
    document: AnalysedDocument | None = None
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
    analysed = _analyse(engine, path, options, on_passages)
    return _store(engine, analysed, options, on_passages, on_outcome)


def _analyse(
    engine: Engine,
    path: Path,
    options: IngestOptions,
    on_passages: PassageHook | None,
    *,
    force: bool = False,
) -> _Analysed:
    """Read the file and analyse it all, outside any write transaction; never raises."""
    max_bytes = get_settings().max_file_mb * 1_000_000
    try:
        extracted = read_document(path, max_bytes=max_bytes)
        document = analyse_document(
            engine,
            extracted,
            overrides=options.overrides_for(path),
            type_source=options.type_source(path),
            principal=options.principal,
            hook=on_passages,
            force=force,
        )
        return _Analysed(path, document)
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
    """The analysed file's one short write transaction; never raises.

    Its vectors are awaited and its rows settled first: the transaction only stores them.
    """
    for _attempt in range(2):
        document = analysed.document
        if analysed.failure is not None or document is None:
            return "failed", analysed.failure or {"path": str(analysed.path), "error": "not read"}
        try:
            return _ingest_with_retry(
                engine, document, options, analysed.path, on_passages, on_outcome
            )
        except NeedsAnalysis:
            # Stored when it was read, deleted since: analyse it after all.
            analysed = _analyse(engine, analysed.path, options, on_passages, force=True)
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the run
            log.exception("ingest of %s failed", analysed.path)
            return "failed", {"path": str(analysed.path), "error": _describe(exc)}
    return "failed", {"path": str(analysed.path), "error": "the file changed while it was read"}


def _ingest_with_retry(
    engine: Engine,
    analysed: AnalysedDocument,
    options: IngestOptions,
    path: Path,
    on_passages: PassageHook | None,
    on_outcome: DocumentHook | None,
) -> tuple[str, dict[str, Any]]:
    """One document's transaction, retried when a concurrent ingest of the same name won.

    The same bytes stored concurrently under another name hit the unique content hash: that is
    "already ingested", said cleanly instead of the database's IntegrityError text.
    """
    settled = None
    if not analysed.stored:
        use = getattr(on_passages, "use", None)
        results = use(analysed.preparation) if use and analysed.preparation is not None else None
        settled = settle(analysed, results, analysed.previous)
    for _attempt in range(3):
        try:
            with _collector_paused(), session_scope(engine) as session:
                outcome = write_document(session, analysed, settled, options.principal, on_passages)
                result = _report_item(path, outcome)
                if on_outcome is not None:
                    on_outcome(session, *result)
                return result
        except Raced:
            continue
        except IntegrityError:
            with Session(engine) as session:
                found = session.exec(
                    select(Document.id).where(Document.sha256 == analysed.extracted.sha256)
                ).first()
            if found is None:
                raise
            result = _report_item(path, {"skipped": f"already ingested as document {found}"})
            if on_outcome is not None:
                with session_scope(engine) as session:
                    on_outcome(session, *result)
            return result
    raise RuntimeError("the document kept changing under a concurrent ingest; try again")


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while the write transaction is open.

    Why: the analysis of a long document holds millions of objects (tags, evidence, vectors),
    and the write allocates enough to trigger full collections that walk all of them — about
    half of a 5 MB document's write time, with the lock held. Reference counting still frees
    what the write drops; the collector runs again once the transaction has ended.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _report_item(path: Path, outcome: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if outcome.get("skipped"):
        return "skipped", {"path": str(path), "reason": outcome["skipped"]}
    return "ingested", {"path": str(path), **outcome}


def _describe(exc: Exception) -> str:
    """One short line for the report: the exception type and its message's first line.

    Database errors go on with the SQL and its parameters (document text), which belong in the
    log, not in a report that an uploader sees or that must stay one line per file.
    """
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {first}"[:300] if first else type(exc).__name__

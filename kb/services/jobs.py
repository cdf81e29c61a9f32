"""Ingest jobs: a web upload is queued in the database and run by a background worker.

Why: ingesting a large document takes minutes; inside a web request it held a server thread
(and, on SQLite, the write lock) for all of that time, and the uploader's browser waited on one
long request. Now the upload only stores the files (one short transaction) and answers 202 with
the job; ``kb worker`` processes (or the one ``kb serve`` starts) claim queued jobs, and the
Upload page polls ``GET /api/jobs/{id}`` for per-file progress and results.

Claiming is safe with any number of workers: on PostgreSQL ``SELECT … FOR UPDATE SKIP LOCKED``,
on SQLite a conditional UPDATE (SQLite has one writer, so the first UPDATE wins). A worker
renews ``heartbeat_at`` while it runs; a job whose heartbeat is older than the lease belonged
to a worker that died and is claimed again. Each file is done exactly once: its result is
written in the same transaction as its document, guarded by the file's state, so a second run
of the job skips files already done and can never store a document twice.

Permissions live here, like every decision in kb/services: only panel members and admins queue
uploads; a user sees only their own jobs (an admin sees all), and someone else's job is
reported as missing rather than forbidden.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import threading
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from kb.config import Settings
from kb.db import session_scope
from kb.models import (
    FileState,
    IngestJob,
    IngestJobFile,
    JobState,
    ReviewStatus,
    Role,
    utcnow,
)
from kb.services import audit
from kb.services.access import Principal
from kb.services.reviews import NotFound
from kb.services.uploads import (
    CHUNK,
    MAX_FILES,
    UploadError,
    UploadTooLarge,
    check_uploader,
    count_against_quota,
    safe_filename,
    unique_name,
)
from kb.services.users import UnknownUser, partnership_name, principal_named

log = logging.getLogger(__name__)

#: A running job whose worker has not renewed its heartbeat for this long is claimed again.
LEASE = timedelta(seconds=120)
HEARTBEAT_SECONDS = 10.0


class TooManyJobs(UploadError):
    """The user already has as many unfinished uploads as KB_MAX_QUEUED_JOBS allows."""


# --------------------------------------------------------------------------- queueing


def enqueue_upload(
    engine: Engine,
    *,
    principal: Principal,
    files: Iterable[tuple[str | None, BinaryIO]],
    settings: Settings,
    partnership: str | None = None,
    status: ReviewStatus | None = None,
) -> dict[str, Any]:
    """Queue uploaded streams as one job (one short transaction) → the job as ``job_view``.

    A panel member's uploads always belong to their own partnership. Refused as a whole
    (UploadError, UploadTooLarge, TooManyJobs) before anything is stored.
    """
    check_uploader(principal)
    files = list(files)
    if not files:
        raise UploadError("no files were uploaded")
    if len(files) > MAX_FILES:
        raise UploadError(f"at most {MAX_FILES} files per upload")
    max_bytes = settings.max_file_mb * 1_000_000
    contents: list[tuple[str, str, bytes]] = []
    taken: set[str] = set()
    for original, stream in files:
        name = unique_name(safe_filename(original), taken)
        taken.add(name)
        contents.append((name, (original or "")[:300], _read_limited(stream, max_bytes, name)))
    with session_scope(engine) as session:
        if principal.role == Role.PANEL:
            partnership = partnership_name(session, principal.partnership_id)
        unfinished = session.exec(
            select(func.count(col(IngestJob.id))).where(
                IngestJob.username == (principal.username or ""),
                IngestJob.state != JobState.DONE,
            )
        ).one()
        if unfinished >= settings.max_queued_jobs:
            raise TooManyJobs(
                f"you already have {unfinished} uploads waiting or running (at most "
                f"{settings.max_queued_jobs}); try again when one has finished"
            )
        count_against_quota(
            session,
            principal=principal,
            size=sum(len(data) for _, _, data in contents),
            files=len(contents),
            settings=settings,
        )
        job = IngestJob(
            username=principal.username or "",
            partnership=partnership or None,
            status=status.value if status else None,
        )
        session.add(job)
        session.flush()
        for position, (name, original, data) in enumerate(contents):
            session.add(
                IngestJobFile(
                    job_id=job.id,  # type: ignore[arg-type]
                    position=position,
                    name=name,
                    original=original,
                    size_bytes=len(data),
                    content=data,
                )
            )
        session.flush()
        return job_view(session, job)


def _read_limited(stream: BinaryIO, max_bytes: int, name: str) -> bytes:
    parts: list[bytes] = []
    size = 0
    while chunk := stream.read(CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise UploadTooLarge(f"{name} is larger than {max_bytes // 1_000_000} MB")
        parts.append(chunk)
    return b"".join(parts)


# --------------------------------------------------------------------------- reading


def job_view(session: Session, job: IngestJob) -> dict[str, Any]:
    """The job as the API shows it: state, per-file progress, and (as files finish) results in
    the shape of ``kb ingest --json`` (``path`` is the stored safe name)."""
    rows = session.exec(
        select(IngestJobFile)
        .where(IngestJobFile.job_id == job.id)
        .order_by(col(IngestJobFile.position))
    ).all()
    files = [
        {"path": f.name, "original": f.original, "size_bytes": f.size_bytes, "state": f.state}
        for f in rows
    ]
    result: dict[str, list[dict[str, Any]]] = {"ingested": [], "skipped": [], "failed": []}
    for f in rows:
        if f.state in (FileState.INGESTED, FileState.SKIPPED, FileState.FAILED):
            result[f.state.value].append({"path": f.name, "original": f.original, **f.result})
    done = sum(1 for f in rows if f.state not in (FileState.PENDING, FileState.RUNNING))
    return {
        "id": job.id,
        "state": job.state,
        "username": job.username,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "attempts": job.attempts,
        "progress": {"done": done, "total": len(rows)},
        "files": files,
        **result,
    }


def get_job(session: Session, *, principal: Principal, job_id: int) -> dict[str, Any]:
    """One job for its owner or an admin; NotFound for anyone else (no hint that it exists)."""
    job = session.get(IngestJob, job_id)
    if job is None or not _may_see(principal, job):
        raise NotFound(f"job {job_id} not found")
    return job_view(session, job)


def list_jobs(session: Session, *, principal: Principal, limit: int = 20) -> list[dict[str, Any]]:
    """The principal's newest jobs (an admin: everyone's)."""
    query = select(IngestJob).order_by(col(IngestJob.id).desc()).limit(limit)
    if principal.role != Role.ADMIN:
        query = query.where(IngestJob.username == (principal.username or ""))
    return [job_view(session, job) for job in session.exec(query).all()]


def _may_see(principal: Principal, job: IngestJob) -> bool:
    return principal.role == Role.ADMIN or (
        principal.username is not None and principal.username == job.username
    )


# --------------------------------------------------------------------------- running


def worker_name() -> str:
    """host:pid, so an operator can tell which worker ran (or abandoned) a job."""
    return f"{socket.gethostname()}:{os.getpid()}"[:100]


def claim_next(engine: Engine, worker: str) -> int | None:
    """Claim the oldest queued job, or a running one whose worker died; its id or None."""
    now = utcnow()
    claimable = or_(
        col(IngestJob.state) == JobState.QUEUED,
        (col(IngestJob.state) == JobState.RUNNING) & (col(IngestJob.heartbeat_at) < now - LEASE),
    )
    with session_scope(engine) as session:
        query = select(IngestJob.id).where(claimable).order_by(col(IngestJob.id)).limit(1)
        if engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        job_id = session.exec(query).first()
        if job_id is None:
            return None
        claimed = session.exec(  # type: ignore[call-overload]
            update(IngestJob)
            .where(col(IngestJob.id) == job_id, claimable)
            .values(
                state=JobState.RUNNING,
                worker=worker,
                attempts=IngestJob.attempts + 1,
                started_at=now,
                heartbeat_at=now,
            )
        )
        return job_id if claimed.rowcount == 1 else None


def heartbeat(engine: Engine, job_id: int, worker: str) -> None:
    """Renew the claim (a short transaction of its own)."""
    with session_scope(engine) as session:
        session.exec(  # type: ignore[call-overload]
            update(IngestJob)
            .where(col(IngestJob.id) == job_id, col(IngestJob.worker) == worker)
            .values(heartbeat_at=utcnow())
        )


def run_job(engine: Engine, job_id: int, *, settings: Settings, worker: str) -> None:
    """Ingest every file of a claimed job not done yet, each exactly once, then finish it."""
    from kb.services.analysis import passage_hook
    from kb.services.ingest import IngestOptions

    with Session(engine) as session:
        job = session.get(IngestJob, job_id)
        if job is None:
            return
        pending = session.exec(
            select(IngestJobFile.id)
            .where(
                IngestJobFile.job_id == job_id,
                col(IngestJobFile.state).in_([FileState.PENDING, FileState.RUNNING]),
            )
            .order_by(col(IngestJobFile.position))
        ).all()
        try:  # the uploader's rights now: a new version only of what they may still edit
            owner = principal_named(session, job.username)
        except UnknownUser:  # disabled or removed since: nothing of theirs supersedes anything
            owner = Principal(username=job.username, role=Role.VIEWER)
        options = IngestOptions(
            partnership=job.partnership,
            status=ReviewStatus(job.status) if job.status else None,
            principal=owner,
        )
    hook = passage_hook(settings)
    stop = threading.Event()
    beat = threading.Thread(
        target=_beat, args=(engine, job_id, worker, stop), name="kb-job-heartbeat", daemon=True
    )
    beat.start()
    try:
        scratch = settings.home / "uploads"
        scratch.mkdir(parents=True, exist_ok=True, mode=0o700)
        for file_id in pending:
            _run_file(engine, file_id, options=options, hook=hook, owner=owner, scratch=scratch)
    except BaseException:
        # Stopped (SIGTERM, Ctrl-C) or broken: hand the job back now rather than after the
        # lease. Files already done stay done; the one in progress was rolled back.
        _release(engine, job_id, worker)
        raise
    finally:
        stop.set()
        beat.join(timeout=5)
    with session_scope(engine) as session:
        session.exec(  # type: ignore[call-overload]
            update(IngestJob)
            .where(col(IngestJob.id) == job_id)
            .values(state=JobState.DONE, finished_at=utcnow(), heartbeat_at=utcnow())
        )


def _release(engine: Engine, job_id: int, worker: str) -> None:
    try:
        with session_scope(engine) as session:
            session.exec(  # type: ignore[call-overload]
                update(IngestJob)
                .where(col(IngestJob.id) == job_id, col(IngestJob.worker) == worker)
                .values(state=JobState.QUEUED, worker=None)
            )
    except Exception:  # noqa: BLE001 - the lease hands it back later anyway
        log.warning("could not hand job %s back to the queue", job_id, exc_info=True)


def _beat(engine: Engine, job_id: int, worker: str, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_SECONDS):
        try:
            heartbeat(engine, job_id, worker)
        except Exception:  # noqa: BLE001 - a missed beat only shortens the lease
            log.warning("heartbeat of job %s failed", job_id, exc_info=True)


def _run_file(
    engine: Engine, file_id: int, *, options: Any, hook: Any, owner: Principal, scratch: Path
) -> None:
    """One file: written to a private (0700) folder under KB_HOME/uploads, ingested, removed;
    its result recorded in the document's own transaction (a failure: in one of its own)."""
    from kb.services.ingest import ingest_file

    with session_scope(engine) as session:
        row = session.get(IngestJobFile, file_id)
        if row is None or row.state not in (FileState.PENDING, FileState.RUNNING):
            return
        row.state = FileState.RUNNING
        name, data = row.name, row.content or b""
    with tempfile.TemporaryDirectory(prefix="job-", dir=scratch) as folder:
        path = Path(folder) / name
        path.write_bytes(data)

        def record(session: Session, outcome: str, item: dict[str, Any]) -> None:
            _finish_file(session, file_id, outcome, item, folder)
            if outcome == "ingested":
                audit.record(
                    session,
                    principal=owner,
                    action="document.upload",
                    object_type="document",
                    object_id=item["document_id"],
                    detail={"reviews": item["reviews"], "job_file": file_id},
                )

        outcome, item = ingest_file(
            engine, path, options=options, on_passages=hook, on_outcome=record
        )
        if outcome == "failed":
            try:
                with session_scope(engine) as session:
                    _finish_file(session, file_id, outcome, item, folder)
            except FileAlreadyDone:  # another worker stored it; its result stands
                log.info("job file %s was finished by another worker", file_id)


class FileAlreadyDone(RuntimeError):
    """Another worker finished this file first: this transaction must not store it again."""


def _finish_file(
    session: Session, file_id: int, outcome: str, item: dict[str, Any], folder: str
) -> None:
    """Mark the file done with its result, only if it is not done yet (exactly once)."""
    if outcome == "ingested":
        result: dict[str, Any] = {"document_id": item["document_id"], "reviews": item["reviews"]}
    elif outcome == "skipped":
        reason = item["reason"]
        result = {"reason": "already ingested" if reason.startswith("already ingested") else reason}
    else:
        result = {"error": item["error"].replace(folder + os.sep, "").replace(folder, "")}
    changed = session.exec(  # type: ignore[call-overload]
        update(IngestJobFile)
        .where(
            col(IngestJobFile.id) == file_id,
            col(IngestJobFile.state).in_([FileState.PENDING, FileState.RUNNING]),
        )
        .values(state=FileState(outcome), result=result, content=None)
    )
    if changed.rowcount != 1:
        raise FileAlreadyDone(f"job file {file_id} was finished by another worker")


def run_pending(
    engine: Engine, *, settings: Settings, worker: str | None = None, max_jobs: int | None = None
) -> int:
    """Run claimable jobs until none is left (or ``max_jobs``); how many ran."""
    worker = worker or worker_name()
    ran = 0
    while max_jobs is None or ran < max_jobs:
        job_id = claim_next(engine, worker)
        if job_id is None:
            break
        log.info("job %s claimed by %s", job_id, worker)
        run_job(engine, job_id, settings=settings, worker=worker)
        ran += 1
    return ran


def work_forever(
    engine: Engine, *, settings: Settings, poll: float = 2.0, stop: threading.Event | None = None
) -> None:
    """The worker loop of ``kb worker``: run what is claimable, then wait ``poll`` seconds."""
    stop = stop or threading.Event()
    worker = worker_name()
    log.info("ingest worker %s started", worker)
    while not stop.is_set():
        try:
            run_pending(engine, settings=settings, worker=worker)
        except Exception:  # noqa: BLE001 - a database hiccup must not end the worker
            log.exception("ingest worker: claiming or running a job failed")
        stop.wait(poll)

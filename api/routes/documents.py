"""POST /api/documents: queue an upload (202 + Location of its job); GET /api/jobs/{id}: its
per-file progress and results. The ingest itself runs in a worker (kb/services/jobs.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from pydantic import BaseModel

from api.deps import CurrentPrincipal, PanelOrAdmin, SessionDep
from kb.models import ReviewStatus
from kb.services import jobs

router = APIRouter(tags=["documents"])


class JobProgress(BaseModel):
    done: int
    total: int


class JobOut(BaseModel):
    """An ingest job. ``ingested`` / ``skipped`` / ``failed`` fill in as files finish, in the
    shape of ``kb ingest --json`` (``path`` is the stored safe name, ``original`` the upload's)."""

    id: int
    state: str
    username: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int
    progress: JobProgress
    files: list[dict[str, Any]]
    ingested: list[dict[str, Any]]
    skipped: list[dict[str, Any]]
    failed: list[dict[str, Any]]


@router.post(
    "/documents",
    status_code=202,
    responses={
        202: {"description": "Queued; the Location header names the job to poll"},
        403: {"description": "Viewers may not upload"},
        413: {"description": "A file is larger than KB_MAX_FILE_MB"},
        429: {"description": "Too many of your uploads are still waiting (KB_MAX_QUEUED_JOBS)"},
    },
)
def upload_documents(
    request: Request,
    response: Response,
    principal: PanelOrAdmin,
    files: Annotated[list[UploadFile], File(description="PDF, DOCX, HTML, Markdown or text")],
    partnership: Annotated[str | None, Form(description="Admins only; panel: their own")] = None,
    status: Annotated[ReviewStatus | None, Form(description="Default: inferred")] = None,
) -> JobOut:
    """Queue the files for ingest and tagging; poll the job for progress and results."""
    job = jobs.enqueue_upload(
        request.app.state.engine,
        principal=principal,
        files=((f.filename, f.file) for f in files),
        settings=request.app.state.settings,
        partnership=partnership,
        status=status,
    )
    response.headers["Location"] = f"/api/jobs/{job['id']}"
    return JobOut(**job)


@router.get("/jobs", tags=["jobs"])
def list_jobs(session: SessionDep, principal: CurrentPrincipal) -> list[JobOut]:
    """Your newest uploads (an admin: everyone's)."""
    return [JobOut(**job) for job in jobs.list_jobs(session, principal=principal)]


@router.get("/jobs/{job_id}", tags=["jobs"], responses={404: {"description": "No such job"}})
def get_job(session: SessionDep, principal: CurrentPrincipal, job_id: int) -> JobOut:
    """One of your uploads: state, per-file progress, results so far."""
    return JobOut(**jobs.get_job(session, principal=principal, job_id=job_id))

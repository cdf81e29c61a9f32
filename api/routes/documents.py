"""POST /api/documents: upload one or more documents to ingest (panel members and admins)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from pydantic import BaseModel

from api.deps import PanelOrAdmin
from kb.models import ReviewStatus
from kb.services.uploads import ingest_upload, store_uploads

router = APIRouter(tags=["documents"])


class UploadResult(BaseModel):
    """Per-file results in the shape of ``kb ingest --json`` (``path`` is the stored safe name)."""

    ingested: list[dict[str, Any]]
    skipped: list[dict[str, Any]]
    failed: list[dict[str, Any]]


@router.post(
    "/documents",
    responses={
        403: {"description": "Viewers may not upload"},
        413: {"description": "A file is larger than KB_MAX_FILE_MB"},
    },
)
def upload_documents(
    request: Request,
    principal: PanelOrAdmin,
    files: Annotated[list[UploadFile], File(description="PDF, DOCX, HTML, Markdown or text")],
    partnership: Annotated[str | None, Form(description="Admins only; panel: their own")] = None,
    status: Annotated[ReviewStatus | None, Form(description="Default: inferred")] = None,
) -> UploadResult:
    """Store the files under KB_HOME/uploads with sanitised names, ingest and tag them."""
    settings = request.app.state.settings
    batch = store_uploads(((f.filename, f.file) for f in files), settings=settings)
    result = ingest_upload(
        request.app.state.engine,
        principal=principal,
        batch=batch,
        settings=settings,
        partnership=partnership,
        status=status,
    )
    return UploadResult(**result)

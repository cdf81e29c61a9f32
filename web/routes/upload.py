"""The upload page; the files go to POST /api/documents from static/upload.js."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.deps import SessionDep, WebPrincipal
from kb.models import Role
from kb.services.uploads import may_upload
from kb.services.users import partnership_name
from web.rendering import render

router = APIRouter()


@router.get("/upload", name="upload_page")
def upload_page(request: Request, session: SessionDep, principal: WebPrincipal) -> HTMLResponse:
    """The form; the files go to POST /api/documents from static/upload.js (with a progress bar)."""
    context = {
        "can_upload": may_upload(principal),
        "own_partnership": partnership_name(session, principal.partnership_id),
        "is_admin": principal.role == Role.ADMIN,
    }
    return render(request, "upload.html", context)

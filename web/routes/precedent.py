"""The precedent page: paste (or upload) a new notification, see prior cases like it, the themes
it probably carries, what was tried for them and questions for the rapid review; download all of
it as a DOCX. Renders ``api.routes.precedent.precedent_data``, as the JSON API does.

Nothing pasted is stored: the text is posted back with the DOCX form rather than kept on the
server. Bad input (empty, too long, too short, an unsupported file) re-renders the form with the
reason, never an error page.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from api.deps import SessionDep, WebPrincipal
from api.routes import precedent as precedent_api
from kb.services.access import Principal
from kb.services.precedent import MAX_CHARS, PrecedentError
from kb.services.precedent_export import MAX_FILE_BYTES, read_notification, to_docx
from web.rendering import render

router = APIRouter()

Text = Annotated[str, Form(max_length=MAX_CHARS * 2)]


@router.get("/precedent", name="precedent_page")
def precedent_page(request: Request, principal: WebPrincipal) -> HTMLResponse:
    """The empty form."""
    return render(request, "precedent.html", _context(principal))


@router.post("/precedent", name="precedent_form")
def precedent_form(
    request: Request, session: SessionDep, principal: WebPrincipal, text: Text = ""
) -> HTMLResponse:
    """The answer for pasted text (or the form again with what was wrong)."""
    return _answer(request, session, principal, text, "The pasted text")


@router.post("/precedent/upload", name="precedent_upload")
async def precedent_upload(
    request: Request,
    session: SessionDep,
    principal: WebPrincipal,
    file: Annotated[UploadFile | None, File()] = None,
) -> HTMLResponse:
    """The answer for an uploaded notification (sent by static/precedent.js with the CSRF
    header; read in memory, never stored)."""
    if file is None or not file.filename:
        return _error(request, principal, "Choose a file to upload.", "")
    data = await file.read(MAX_FILE_BYTES + 1)
    try:
        text = read_notification(data, file.filename)
    except PrecedentError as exc:
        return _error(request, principal, str(exc), "")
    return _answer(request, session, principal, text, file.filename)


@router.post("/precedent/docx", name="precedent_docx")
def precedent_docx(
    request: Request, session: SessionDep, principal: WebPrincipal, text: Text = ""
) -> Response:
    """The same answer as a DOCX for the rapid review meeting."""
    try:
        result = precedent_api.precedent_data(
            session, principal, text, settings=request.app.state.settings, audit_via="web-precedent"
        )
    except PrecedentError as exc:
        return _error(request, principal, str(exc), text)
    return Response(
        to_docx(result),
        media_type=precedent_api.DOCX_TYPE,
        headers={"Content-Disposition": 'attachment; filename="precedent.docx"'},
    )


def _answer(
    request: Request, session: SessionDep, principal: Principal, text: str, source: str
) -> HTMLResponse:
    try:
        result = precedent_api.precedent_data(
            session,
            principal,
            text,
            settings=request.app.state.settings,
            source=source,
            audit_via="web-precedent",
        )
    except PrecedentError as exc:
        return _error(request, principal, str(exc), text)
    context = _context(principal)
    context.update(text=text, result=result, labels={t["id"]: t["label"] for t in result["themes"]})
    return render(request, "precedent.html", context)


def _error(request: Request, principal: Principal, message: str, text: str) -> HTMLResponse:
    context = _context(principal)
    context.update(error=message, text=text[: MAX_CHARS + 1])
    return render(request, "precedent.html", context, status_code=400)


def _context(principal: Principal) -> dict[str, Any]:
    return {"text": "", "result": None, "error": None, "max_chars": MAX_CHARS, "labels": {}}

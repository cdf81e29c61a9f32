"""Precedent for a new incident: ``POST /api/precedent`` (JSON text), ``/api/precedent/upload``
(a file), ``/api/precedent/docx`` (the same answer as a DOCX for the rapid review meeting).

``precedent_data`` is the data function the /precedent page renders too. Nothing pasted or
uploaded is stored; restricted reviews that shape the answer are audited like search hits.
Input the caller can fix (empty, too long, too short, unsupported file) is a 400 with a message.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, HTTPException, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlmodel import Session

from api.deps import CurrentPrincipal, SessionDep
from kb.config import Settings
from kb.services import audit
from kb.services.access import Principal
from kb.services.embedding import embedder_for
from kb.services.precedent import MAX_CHARS, PrecedentError, precedent
from kb.services.precedent_export import MAX_FILE_BYTES, read_notification, to_docx
from kb.services.reviews import review_statuses
from kb.services.tagging import get_tagger

router = APIRouter(tags=["precedent"])

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
BAD = {400: {"description": "Empty, too long or too short text; unsupported or unreadable file"}}


class PrecedentIn(BaseModel):
    """A pasted notification or rapid-review draft (never stored)."""

    text: str = Field(max_length=MAX_CHARS * 2, description="The notification text.")


class CaseOut(BaseModel):
    case_id: int | None
    review_id: int
    title: str
    summary: str
    score: float
    shared_themes: list[str]
    passages: list[dict[str, Any]]


class ThemeOut(BaseModel):
    id: str
    label: str
    evidence: str
    confidence: float | None = None


class TriedOut(BaseModel):
    theme: str
    action_id: int | None
    ref: str
    description: str
    status: str
    impact_rating: str | None
    recurred_after: bool
    theme_label: str | None = None
    completed_date: str | None = None
    due_date: str | None = None


class PrecedentOut(BaseModel):
    themes: list[ThemeOut]
    cases: list[CaseOut]
    tried: list[TriedOut]
    questions: list[str]
    message: str | None = None


def precedent_data(
    session: Session,
    principal: Principal,
    text: str,
    *,
    settings: Settings,
    source: str = "pasted text",
    audit_via: str | None = "api-precedent",
) -> dict[str, Any]:
    """The precedent answer; PrecedentError for text that cannot be used."""
    result = precedent(
        session,
        principal=principal,
        text=text,
        tagger=get_tagger(settings),
        embedder=embedder_for(settings),
        source=source,
    )
    if audit_via:
        review_ids = {p["review_id"] for c in result["cases"] for p in c["passages"]}
        for review_id, status in review_statuses(
            session, principal=principal, review_ids=sorted(review_ids)
        ).items():
            audit.record_review_view(
                session,
                principal=principal,
                review={"id": review_id, "status": status},
                via=audit_via,
            )
    return result


def _answer(
    session: Session, principal: Principal, text: str, request: Request, source: str
) -> dict[str, Any]:
    try:
        return precedent_data(
            session, principal, text, settings=request.app.state.settings, source=source
        )
    except PrecedentError as exc:
        raise HTTPException(400, str(exc)) from exc


@router.post("/precedent", responses=BAD)
def post_precedent(
    request: Request, session: SessionDep, principal: CurrentPrincipal, body: PrecedentIn
) -> PrecedentOut:
    """Similar prior cases, likely themes with evidence, what was tried, reflective questions."""
    return PrecedentOut(**_answer(session, principal, body.text, request, "pasted text"))


@router.post("/precedent/upload", responses=BAD)
async def upload_precedent(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    file: Annotated[UploadFile, File(description="PDF, DOCX, HTML, Markdown or text")],
) -> PrecedentOut:
    """The same answer for an uploaded notification (read in memory, never stored)."""
    data = await file.read(MAX_FILE_BYTES + 1)
    name = file.filename or "the file"
    try:
        text = read_notification(data, name)
    except PrecedentError as exc:
        raise HTTPException(400, str(exc)) from exc
    return PrecedentOut(**_answer(session, principal, text, request, name))


@router.post("/precedent/docx", responses=BAD)
def docx_precedent(
    request: Request, session: SessionDep, principal: CurrentPrincipal, body: PrecedentIn
) -> Response:
    """The answer as a DOCX for the rapid review meeting."""
    result = _answer(session, principal, body.text, request, "pasted text")
    return Response(
        to_docx(result),
        media_type=DOCX_TYPE,
        headers={"Content-Disposition": 'attachment; filename="precedent.docx"'},
    )

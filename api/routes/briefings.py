"""7-minute briefings: build and save a draft, list, read, edit, delete, export.

Each endpoint wraps a *data function* (``create``, ``briefings_list``, ``briefing_data``,
``edit``, ``remove``, ``export_file``) that the web pages call too. Confidentiality lives in
kb.services.briefings: a briefing that draws on reviews the caller may not see is "not found"
(404, never 403, so its existence does not leak), and restricted material is only used when the
caller may see it *and* asks for it. Exports carry the RESTRICTED marking and are audited when
restricted, because a download leaves the system.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlmodel import Session

from api.deps import CurrentPrincipal, SessionDep
from kb.models import BriefingPublic
from kb.services.access import Principal
from kb.services.briefing_export import to_docx, to_html, to_pdf
from kb.services.briefing_rules import record_export
from kb.services.briefings import (
    InvalidBriefing,
    build_briefing,
    delete_briefing,
    get_briefing,
    list_briefings,
    save_briefing,
    update_briefing,
)
from kb.services.reviews import list_reviews

router = APIRouter(tags=["briefings"])

HIDDEN = {404: {"description": "No such briefing for you"}}
EDIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    **HIDDEN,
    409: {"description": "Someone changed the briefing since you read it: reload"},
    422: {"description": "The edit would break the briefing's shape"},
}
MAX_NOTES = 2000


class BriefingCreate(BaseModel):
    """Exactly one of ``theme_id`` and ``review_id``."""

    theme_id: str | None = Field(default=None, max_length=100, examples=["hidden-men"])
    review_id: int | None = None
    include_restricted: bool = Field(
        default=False,
        description="Also use unpublished and embargoed reviews you may see (marked RESTRICTED).",
    )
    notes: str | None = Field(
        default=None, max_length=MAX_NOTES, description="Your own text for 'The wider picture'."
    )


class BriefingItemIn(BaseModel):
    text: str
    review_id: int | None = None
    passage_id: int | None = None


class BriefingSectionIn(BaseModel):
    number: int
    heading: str
    items: list[BriefingItemIn]


class BriefingPatch(BaseModel):
    """A new title and / or all seven sections (as GET returns them; ``sources`` is kept)."""

    version: int = Field(ge=1, description="The briefing's version_id when you read it.")
    title: str | None = None
    sections: list[BriefingSectionIn] | None = None


class BriefingSummary(BaseModel):
    id: int
    title: str
    theme_id: str | None
    review_id: int | None
    restricted: bool
    created_by: str | None
    updated_at: datetime
    version_id: int


class ReviewChoice(BaseModel):
    id: int
    pseudonym: str
    year: int | None
    status: str


@dataclass(frozen=True, slots=True)
class ExportFile:
    content: bytes
    media_type: str
    filename: str


FORMATS: dict[str, str] = {
    "html": "text/html; charset=utf-8",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pdf": "application/pdf",
}


# --------------------------------------------------------------------------- data functions


@contextmanager
def _unprocessable() -> Iterator[None]:
    """InvalidBriefing (a bad request body, not a server fault) → 422 with the service's words."""
    try:
        yield
    except InvalidBriefing as exc:
        raise HTTPException(422, str(exc)) from exc


def create(session: Session, principal: Principal, body: BriefingCreate) -> BriefingPublic:
    """Build a briefing and save it as an editable draft."""
    with _unprocessable():
        draft = build_briefing(
            session,
            principal=principal,
            theme_id=body.theme_id,
            review_id=body.review_id,
            include_restricted=body.include_restricted,
            notes=(body.notes or "").strip() or None,
        )
        return save_briefing(session, principal=principal, draft=draft)


def briefings_list(
    session: Session,
    principal: Principal,
    *,
    theme_id: str | None = None,
    review_id: int | None = None,
) -> list[BriefingSummary]:
    """Saved briefings the principal may see now, most recently updated first."""
    rows = list_briefings(session, principal=principal, theme_id=theme_id, review_id=review_id)
    return [BriefingSummary.model_validate(row.model_dump()) for row in rows]


def review_choices(session: Session, principal: Principal) -> list[ReviewChoice]:
    """Every review the principal may brief on (restricted ones need include_restricted)."""
    return [
        ReviewChoice(id=r.id, pseudonym=r.pseudonym, year=r.year, status=str(r.status))
        for r in list_reviews(session, principal=principal)
        if r.id is not None
    ]


def briefing_data(session: Session, principal: Principal, briefing_id: int) -> BriefingPublic:
    return get_briefing(session, principal=principal, briefing_id=briefing_id)


def edit(
    session: Session,
    principal: Principal,
    briefing_id: int,
    *,
    version: int,
    title: str | None = None,
    sections: list[dict[str, Any]] | None = None,
) -> BriefingPublic:
    """Edit title and / or sections; a stale ``version`` raises Conflict (409)."""
    with _unprocessable():
        return update_briefing(
            session,
            principal=principal,
            briefing_id=briefing_id,
            title=title,
            sections=sections,
            expected_version=version,
        )


def remove(session: Session, principal: Principal, briefing_id: int, *, version: int) -> None:
    """Delete a draft; the service says who may (its author or an admin) and a briefing the
    caller cannot see is "not found", never "forbidden"."""
    delete_briefing(session, principal=principal, briefing_id=briefing_id, expected_version=version)


def export_file(session: Session, principal: Principal, briefing_id: int, fmt: str) -> ExportFile:
    """The briefing as one A4 page in ``fmt`` (html, docx, pdf); restricted exports are
    audited (ids only) because a file leaves the system's access control."""
    briefing = get_briefing(session, principal=principal, briefing_id=briefing_id)
    if fmt == "html":
        content = to_html(briefing).encode("utf-8")
    else:
        writer = to_docx if fmt == "docx" else to_pdf
        with tempfile.TemporaryDirectory(prefix="kb-briefing-") as tmp:
            content = writer(briefing, Path(tmp) / f"briefing.{fmt}").read_bytes()
    record_export(
        session,
        principal=principal,
        briefing_id=briefing.id,
        fmt=fmt,
        restricted=briefing.restricted,
        via="api",
    )
    return ExportFile(content, FORMATS[fmt], export_filename(briefing, fmt))


def export_filename(briefing: BriefingPublic, fmt: str) -> str:
    """``briefing-12-hidden-men.docx``: ASCII only, so it is safe in any header or file system."""
    title = briefing.title.removeprefix("7-minute briefing:")
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower().encode("ascii", "ignore").decode()).strip("-")
    slug = slug[:60].rstrip("-")
    return f"briefing-{briefing.id}{'-' + slug if slug else ''}.{fmt}"


def download(file: ExportFile) -> Response:
    return Response(
        content=file.content,
        media_type=file.media_type,
        headers={"Content-Disposition": f'attachment; filename="{file.filename}"'},
    )


# --------------------------------------------------------------------------- routes


@router.post(
    "/briefings",
    status_code=status.HTTP_201_CREATED,
    responses={404: {"description": "Unknown theme, or no such review for you"}},
)
def create_briefing(
    session: SessionDep, principal: CurrentPrincipal, body: BriefingCreate
) -> BriefingPublic:
    """Build a 7-minute briefing on a theme or a review and save it as a draft."""
    return create(session, principal, body)


@router.get("/briefings")
def read_briefings(
    session: SessionDep,
    principal: CurrentPrincipal,
    theme_id: Annotated[str | None, Query(max_length=100)] = None,
    review_id: int | None = None,
) -> list[BriefingSummary]:
    """Saved briefings you may see (optionally about one theme or one review)."""
    return briefings_list(session, principal, theme_id=theme_id, review_id=review_id)


@router.get("/briefings/{briefing_id}", responses=HIDDEN)
def read_briefing(
    session: SessionDep, principal: CurrentPrincipal, briefing_id: int
) -> BriefingPublic:
    """One saved briefing with its seven sections, items and sources."""
    return briefing_data(session, principal, briefing_id)


@router.patch("/briefings/{briefing_id}", responses=EDIT_RESPONSES)
def patch_briefing(
    session: SessionDep, principal: CurrentPrincipal, briefing_id: int, body: BriefingPatch
) -> BriefingPublic:
    """Edit the title and / or the sections, sending the ``version`` you read."""
    sections = None
    if body.sections is not None:
        sections = [s.model_dump() for s in body.sections]
    return edit(
        session, principal, briefing_id, version=body.version, title=body.title, sections=sections
    )


@router.delete(
    "/briefings/{briefing_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**EDIT_RESPONSES, 403: {"description": "Not your briefing"}},
)
def delete_briefing_route(
    session: SessionDep,
    principal: CurrentPrincipal,
    briefing_id: int,
    version: Annotated[int, Query(ge=1, description="The version_id you read.")],
) -> Response:
    """Delete a draft (its author or an admin)."""
    remove(session, principal, briefing_id, version=version)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _export_route(fmt: str) -> None:
    @router.get(
        f"/briefings/{{briefing_id}}/export.{fmt}",
        name=f"export_briefing_{fmt}",
        response_class=Response,
        responses={**HIDDEN, 200: {"content": {FORMATS[fmt].split(";")[0]: {}}}},
    )
    def export_briefing(
        session: SessionDep, principal: CurrentPrincipal, briefing_id: int
    ) -> Response:
        return download(export_file(session, principal, briefing_id, fmt))

    export_briefing.__doc__ = f"The briefing as one A4 page ({fmt.upper()}, as an attachment)."


for _fmt in FORMATS:
    _export_route(_fmt)

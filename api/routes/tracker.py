"""The tracker: actions (with optimistic locking), training, signals, spreadsheet import/export.

Actions are only as visible as the reviews behind them (kb.services.tracker), so every list,
signal and export here is the principal's own view. Who may change what is the service's rule
(kb.services.tracker.check_may_edit: viewers read; panel members change their own
partnership's and partnership-wide actions; admins all): its Forbidden becomes 403 in
api/main.py. Edits carry the ``version`` the editor saw: a stale one gets 409 and the current
action, so nobody overwrites a change they have not seen.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, HTTPException, Query, Request, UploadFile, status
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlmodel import Session

from api.deps import CurrentPrincipal, SessionDep
from api.routes.themes import MEDIA, download
from kb.models import (
    ActionCreate,
    ActionPublic,
    ActionUpdate,
    TrainingCoursePublic,
    TrainingSessionPublic,
)
from kb.services.access import Principal
from kb.services.errors import Conflict
from kb.services.signals import signals
from kb.services.tracker import (
    check_may_edit,
    create_action,
    delete_action,
    get_action,
    list_actions,
    list_courses,
    list_sessions,
    update_action,
)
from kb.services.tracker_io import CSV_NAMES, TrackerImportError, export_tracker, import_tracker

router = APIRouter(tags=["tracker"])

CONFLICT = {409: {"description": "Someone changed the action since you read it: reload"}}
SHEETS = {"actions": "Actions", "training": "Training", "sessions": "Sessions"}


class ActionPatch(ActionUpdate):
    """The fields to change, and the version you read (409 when someone changed it since)."""

    version: int = Field(ge=1, description="The action's version_id when you read it.")


class SignalReview(BaseModel):
    id: int
    pseudonym: str
    date: str | None
    type: str | None = None


class SignalAction(BaseModel):
    ref: str
    description: str
    completed_date: str | None
    status: str


class Signal(BaseModel):
    """Same shape as ``kb tracker signals --json``."""

    kind: str
    theme: str | None
    headline: str = ""
    summary: str
    reviews: list[SignalReview]
    actions: list[SignalAction]


class ImportCounts(BaseModel):
    created: int
    updated: int


class ImportResult(BaseModel):
    """Same shape as ``kb tracker import --json``."""

    actions: ImportCounts
    training: ImportCounts
    sessions: ImportCounts


def _bad_request(exc: ValueError) -> HTTPException:
    return HTTPException(status.HTTP_400_BAD_REQUEST, str(exc))


# --------------------------------------------------------------------------- data functions


def actions_data(session: Session, principal: Principal) -> list[ActionPublic]:
    """The actions ``principal`` may see, by ref."""
    return list_actions(session, principal=principal)


def courses_data(session: Session, principal: Principal) -> list[TrainingCoursePublic]:
    """Every course, with links only to the actions ``principal`` may see (the service's rule)."""
    return list_courses(session, principal=principal)


def sessions_data(session: Session, course_id: int | None = None) -> list[TrainingSessionPublic]:
    """Delivered training sessions (of one course, or all), by ref."""
    return list_sessions(session, course_id=course_id)


def signals_data(request: Request, session: Session, principal: Principal) -> list[Signal]:
    """What needs attention, computed only from what ``principal`` may see."""
    threshold = request.app.state.settings.similarity_threshold
    found = signals(session, principal=principal, similarity_threshold=threshold)
    return [Signal.model_validate(s) for s in found]


def create_action_data(session: Session, principal: Principal, data: ActionCreate) -> ActionPublic:
    """Add an action (Forbidden → 403 when it is not the principal's to add) and audit it."""
    try:
        action = create_action(session, principal=principal, data=data)
    except ValueError as exc:  # unknown theme ids
        raise _bad_request(exc) from exc
    return action


def update_action_data(
    session: Session, principal: Principal, action_id: int, data: ActionUpdate, version: int
) -> ActionPublic:
    """Change an action; Forbidden (→ 403) when it is not the principal's to change, Conflict
    (→ 409) when ``version`` is not the current one."""
    try:
        action = update_action(
            session, principal=principal, action_id=action_id, data=data, expected_version=version
        )
    except ValueError as exc:
        raise _bad_request(exc) from exc
    return action


def delete_action_data(
    session: Session, principal: Principal, action_id: int, version: int
) -> None:
    delete_action(session, principal=principal, action_id=action_id, expected_version=version)


def conflict_response(
    session: Session, principal: Principal, action_id: int, exc: Conflict
) -> JSONResponse:
    """409 with the message and the action as it is now, so the client can merge and retry."""
    current = get_action(session, principal=principal, action_id=action_id)
    return JSONResponse(
        {"detail": str(exc), "current": current.model_dump(mode="json")},
        status_code=status.HTTP_409_CONFLICT,
    )


async def _store(
    files: list[UploadFile], folder: Path, max_bytes: int
) -> tuple[Path, dict[str, str]]:
    """Write the uploads into ``folder`` under the names import_tracker understands; returns
    the path to import and stored name → uploaded name (so errors name the user's file)."""
    suffixes = {Path(f.filename or "").suffix.lower() for f in files}
    if not files or not suffixes <= {".xlsx", ".csv"} or len(suffixes) != 1:
        raise TrackerImportError(["upload one .xlsx workbook, or one or more .csv files"])
    if ".xlsx" in suffixes and len(files) != 1:
        raise TrackerImportError(["upload a single .xlsx workbook"])
    known = set(CSV_NAMES.values())
    targets: list[str] = []
    for upload in files:
        name = Path(upload.filename or "").name.lower()
        if suffixes == {".xlsx"}:
            targets.append("tracker.xlsx")
        elif name in known:
            targets.append(name)
        elif len(files) == 1:
            targets.append(CSV_NAMES["Actions"])
        else:
            raise TrackerImportError(
                [f"name the CSV files {', '.join(sorted(known))} (got {upload.filename!r})"]
            )
    if len(set(targets)) != len(targets):
        raise TrackerImportError(["the same CSV file was uploaded twice"])
    for upload, target in zip(files, targets, strict=True):
        content = await upload.read(max_bytes + 1)
        if len(content) > max_bytes:
            raise TrackerImportError([f"{upload.filename} is larger than {max_bytes} bytes"])
        (folder / target).write_bytes(content)
    names = {t: Path(f.filename or "").name or t for f, t in zip(files, targets, strict=True)}
    return (folder / "tracker.xlsx" if suffixes == {".xlsx"} else folder), names


async def import_data(
    request: Request, session: Session, principal: Principal, files: list[UploadFile]
) -> dict[str, Any]:
    """Validate the whole upload, then upsert; TrackerImportError lists every problem.

    Who may import what is checked by import_tracker; refusing a viewer before reading the
    upload just saves the work (it raises the same Forbidden the service would).
    """
    check_may_edit(principal)
    max_bytes = request.app.state.settings.max_file_mb * 1_000_000
    with tempfile.TemporaryDirectory(prefix="kb-tracker-") as tmp:
        path, names = await _store(files, Path(tmp), max_bytes)
        counts = import_tracker(session, principal=principal, path=path, names=names)
    return counts


def export_data(session: Session, principal: Principal, fmt: str, sheet: str = "actions") -> bytes:
    """The tracker as ``principal`` may see it: the workbook, or one sheet as CSV."""
    with tempfile.TemporaryDirectory(prefix="kb-tracker-") as tmp:
        folder = Path(tmp)
        if fmt == "xlsx":
            written = export_tracker(session, principal=principal, path=folder / "tracker.xlsx")
            return written[0].read_bytes()
        export_tracker(session, principal=principal, path=folder / CSV_NAMES["Actions"])
        return (folder / CSV_NAMES[SHEETS[sheet]]).read_bytes()


# --------------------------------------------------------------------------- routes: actions


@router.get("/actions")
def read_actions(session: SessionDep, principal: CurrentPrincipal) -> list[ActionPublic]:
    """Tracked actions you may see (links into reviews hidden from you are left out)."""
    return actions_data(session, principal)


@router.post("/actions", status_code=status.HTTP_201_CREATED)
def create_action_route(
    session: SessionDep, principal: CurrentPrincipal, body: ActionCreate
) -> ActionPublic:
    """Add an action answering recommendations of reviews you may see (panel and admin)."""
    return create_action_data(session, principal, body)


@router.get("/actions/{action_id}", responses={404: {"description": "No such action for you"}})
def read_action(session: SessionDep, principal: CurrentPrincipal, action_id: int) -> ActionPublic:
    """One action with its visible links and its ``version_id`` (send it back when editing)."""
    return get_action(session, principal=principal, action_id=action_id)


@router.patch("/actions/{action_id}", response_model=ActionPublic, responses=CONFLICT)
def patch_action(
    session: SessionDep, principal: CurrentPrincipal, action_id: int, body: ActionPatch
) -> Any:
    """Change the fields given; 409 (with the current action) when ``version`` is stale."""
    data = ActionUpdate.model_validate(body.model_dump(exclude_unset=True, exclude={"version"}))
    try:
        return update_action_data(session, principal, action_id, data, body.version)
    except Conflict as exc:
        return conflict_response(session, principal, action_id, exc)


@router.delete("/actions/{action_id}", status_code=status.HTTP_204_NO_CONTENT, responses=CONFLICT)
def delete_action_route(
    session: SessionDep,
    principal: CurrentPrincipal,
    action_id: int,
    version: Annotated[int, Query(ge=1, description="The version_id you read.")],
) -> Response:
    """Remove an action and its links; 409 when ``version`` is stale."""
    try:
        delete_action_data(session, principal, action_id, version)
    except Conflict as exc:
        return conflict_response(session, principal, action_id, exc)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --------------------------------------------------------------------------- routes: training


@router.get("/training/courses")
def read_courses(session: SessionDep, principal: CurrentPrincipal) -> list[TrainingCoursePublic]:
    """Training courses with their themes and the (visible) actions they deliver."""
    return courses_data(session, principal)


@router.get("/training/sessions")
def read_sessions(
    session: SessionDep,
    principal: CurrentPrincipal,
    course_id: Annotated[int | None, Query(description="Only this course's sessions.")] = None,
) -> list[TrainingSessionPublic]:
    """Delivered sessions with attendance, scores and learning gain."""
    return sessions_data(session, course_id)


@router.get("/signals")
def read_signals(
    request: Request, session: SessionDep, principal: CurrentPrincipal
) -> list[Signal]:
    """Recurrence after action, déjà-vu recommendations, rising themes, overdue actions and
    actions without evidence of impact, each with its explanation, reviews and actions."""
    return signals_data(request, session, principal)


# --------------------------------------------------------------------------- routes: files


@router.post(
    "/tracker/import",
    response_model=ImportResult,
    responses={400: {"description": "Every problem, by sheet, row and column; nothing written"}},
)
async def import_route(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    files: Annotated[
        list[UploadFile], File(description="tracker.xlsx, or actions/training/sessions .csv files")
    ],
) -> Any:
    """Import (upsert by Ref) actions, training and sessions; all or nothing."""
    try:
        return await import_data(request, session, principal, files)
    except TrackerImportError as exc:
        return JSONResponse(
            {"detail": str(exc), "problems": exc.problems}, status_code=status.HTTP_400_BAD_REQUEST
        )


@router.get(
    "/tracker/export.xlsx",
    response_class=Response,
    responses={200: {"content": {MEDIA["xlsx"]: {}}}},
)
def export_xlsx(session: SessionDep, principal: CurrentPrincipal) -> Response:
    """The tracker workbook (Actions, Training, Sessions) in the import layout."""
    return download(export_data(session, principal, "xlsx"), "xlsx", "tracker")


@router.get("/tracker/export.csv", response_class=Response)
def export_csv(
    session: SessionDep,
    principal: CurrentPrincipal,
    sheet: Annotated[Literal["actions", "training", "sessions"], Query()] = "actions",
) -> Response:
    """One sheet of the tracker as CSV (import them back together, under these names)."""
    return download(export_data(session, principal, "csv", sheet), "csv", sheet)

"""The tracker for scrutiny: filters, the summary strip and the signals export.

The web tracker page calls :func:`scrutiny_data` too, so the page, ``/api/tracker/summary`` and
``/api/signals/export.*`` narrow and count the same actions and signals. Filters arrive as URL
parameters; an empty one (a form's "Any") means no filter.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import Response
from pydantic import BaseModel
from sqlmodel import Session

from api.deps import CurrentPrincipal, SessionDep
from api.routes.themes import MEDIA, download
from kb.models import ActionStatus
from kb.services.access import Principal
from kb.services.tracker import theme_labels
from kb.services.tracker_view import TrackerFilter, scrutiny, signals_file, signals_table

router = APIRouter(tags=["tracker"])


def tracker_filter(
    theme: Annotated[str, Query(max_length=100)] = "",
    partnership: Annotated[str, Query(max_length=200)] = "",
    case: Annotated[
        str,
        Query(
            max_length=200,
            description="A case id (r<review id> for a review linked to no other); "
            "a pseudonym still works",
        ),
    ] = "",
    status_: Annotated[str, Query(alias="status", max_length=30)] = "",
    overdue: Annotated[str, Query(max_length=5, description="yes: only overdue actions")] = "",
    impact: Annotated[str, Query(max_length=10, description="with / without evidence")] = "",
) -> TrackerFilter:
    """The filters from the URL; a value that is not one of the choices is a 422 naming it."""
    try:
        parsed_status = ActionStatus(status_) if status_ else None
    except ValueError:
        choices = ", ".join(s.value for s in ActionStatus)
        raise HTTPException(422, f"status {status_!r} is not one of: {choices}") from None
    if impact not in ("", "with", "without"):
        raise HTTPException(422, f"impact {impact!r} is not one of: with, without")
    if overdue.lower() not in ("", "yes", "true", "1", "no", "false", "0"):
        raise HTTPException(422, f"overdue {overdue!r} is not yes or no")
    return TrackerFilter(
        theme=theme.strip() or None,
        partnership=partnership.strip() or None,
        case=case.strip() or None,
        status=parsed_status,
        overdue=overdue.lower() in ("yes", "true", "1"),
        impact=impact or None,  # type: ignore[arg-type]
    )


FilterDep = Annotated[TrackerFilter, Depends(tracker_filter)]
UNKNOWN_CASE = {404: {"description": "No such case among the reviews you may see"}}


class SummaryOut(BaseModel):
    actions: int
    by_status: dict[str, int]
    overdue: int
    done: int
    with_impact: int
    without_impact: int
    signals: int
    by_kind: dict[str, int]


def scrutiny_data(
    request: Request,
    session: Session,
    principal: Principal,
    f: TrackerFilter,
    today: date | None = None,
) -> dict[str, Any]:
    """Filtered actions and signals, their summary, and the choices for the filter form."""
    threshold = request.app.state.settings.similarity_threshold
    return scrutiny(session, principal, f, similarity_threshold=threshold, today=today)


def known_case(data: dict[str, Any], f: TrackerFilter) -> dict[str, Any]:
    """``data``, or a 404 when the case filter names no case the principal may see: a hidden
    case answers exactly as a missing one."""
    if data["case_unknown"]:
        raise HTTPException(404, f"no case {f.case!r} among the reviews you may see")
    return data


@router.get("/tracker/summary", responses=UNKNOWN_CASE)
def read_summary(
    request: Request, session: SessionDep, principal: CurrentPrincipal, f: FilterDep
) -> SummaryOut:
    """Counts for the actions and signals matching the filters: actions by status, overdue,
    completed with and without evidence of impact, signals by kind."""
    data = known_case(scrutiny_data(request, session, principal, f), f)["summary"]
    return SummaryOut(
        **{
            **data,
            "by_status": {s.value: n for s, n in data["by_status"]},
            "by_kind": {kind: n for _, n, kind in data["by_kind"]},
        }
    )


def _export(fmt: str) -> None:
    def export(
        request: Request, session: SessionDep, principal: CurrentPrincipal, f: FilterDep
    ) -> Response:
        data = known_case(scrutiny_data(request, session, principal, f), f)
        table = signals_table(data["signals"], theme_labels(), f, data["today"])
        return download(signals_file(table, fmt), fmt, "signals")

    export.__doc__ = (
        f"The signals matching the filters as a .{fmt} file: each signal's full text, its "
        "cases once, the reviews and actions behind it."
    )
    router.add_api_route(
        f"/signals/export.{fmt}",
        export,
        methods=["GET"],
        name=f"signals_export_{fmt}",
        response_class=Response,
        responses={200: {"content": {MEDIA[fmt].split(";")[0]: {}}}, **UNKNOWN_CASE},
        status_code=status.HTTP_200_OK,
    )


for _fmt in ("csv", "xlsx"):
    _export(_fmt)

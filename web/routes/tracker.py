"""The tracker page: signals first, then actions and training grouped by theme, edit forms.

Edits POST the version the editor saw; a stale one re-renders the page with a 409, the
editor's unsaved values and the action as it is now, so no update is lost silently. Import
goes to POST /api/tracker/import from static/tracker.js (multipart needs the CSRF header).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import SessionDep, WebPrincipal
from api.routes import scrutiny as scrutiny_api
from api.routes import tracker as tracker_api
from kb.models import ActionPublic, ActionStatus, ActionUpdate, ImpactRating
from kb.services.access import Principal
from kb.services.errors import Conflict
from kb.services.tracker import get_action, may_edit, theme_labels
from kb.services.tracker_format import SCORE_SCALE
from kb.services.tracker_view import KIND_TITLES, TrackerFilter, cases_of
from web.page_cache import render_shared
from web.rendering import render

router = APIRouter()

NO_THEME = ""


@router.get("/tracker", name="tracker_page")
def tracker_page(
    request: Request,
    session: SessionDep,
    principal: WebPrincipal,
    saved: Annotated[int | None, Query()] = None,
) -> HTMLResponse:
    """Summary strip, filters (in the URL), signals, then actions and training by theme."""
    return _page(request, session, principal, saved=saved)


def _lenient_filter(request: Request) -> TrackerFilter:
    """The page's filters; a value that is not a choice (an old bookmark) is ignored."""
    params = request.query_params
    try:
        status = ActionStatus(params.get("status", "")) if params.get("status") else None
    except ValueError:
        status = None
    impact = params.get("impact") if params.get("impact") in ("with", "without") else None
    return TrackerFilter(
        theme=params.get("theme", "").strip()[:100] or None,
        partnership=params.get("partnership", "").strip()[:200] or None,
        case=params.get("case", "").strip()[:200] or None,
        status=status,
        overdue=params.get("overdue", "") in ("yes", "true", "1"),
        impact=impact,  # type: ignore[arg-type]
    )


def _page(
    request: Request,
    session: SessionDep,
    principal: Principal,
    *,
    saved: int | None = None,
    conflict: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    f = _lenient_filter(request)
    if saved is None and conflict is None:  # the page everyone of this role sees: cached
        return render_shared(
            request,
            "tracker.html",
            session=session,
            principal=principal,
            key=f,  # a frozen dataclass: every filter field is in the key
            build=lambda: _context(request, session, principal, f),
        )
    context = _context(request, session, principal, f)
    context["saved"] = next((a for a in context.pop("everything") if a.id == saved), None)
    context["conflict"] = conflict
    return render(request, "tracker.html", context, status_code=status_code)


def _context(
    request: Request, session: SessionDep, principal: Principal, f: TrackerFilter
) -> dict[str, Any]:
    """What tracker.html shows: the same for every user of one role and partnership."""
    labels = theme_labels()
    data = scrutiny_api.scrutiny_data(request, session, principal, f)
    actions = data["actions"]
    everything = tracker_api.actions_data(session, principal)  # cached: refs of hidden-by-filter
    courses = tracker_api.courses_data(session, principal)
    sessions = tracker_api.sessions_data(session)
    by_course: dict[int, list[Any]] = defaultdict(list)
    for row in sessions:
        by_course[row.course_id].append(row)
    refs = {a.id: a.ref for a in everything}
    groups = _groups(actions, courses, labels, only=f.theme, filtered=f.active())
    first_group: dict[int, str] = {}
    for group in groups:  # the anchor #action-<id> goes on an action's first appearance
        for action in group["actions"]:
            first_group.setdefault(action.id, group["id"])
    query = urlencode(f.query())
    return {
        "filter": f,
        "options": data["options"],
        "summary": data["summary"],
        "signals": [
            {**s, "title": KIND_TITLES.get(s["kind"], s["kind"]), "cases": cases_of(s["reviews"])}
            for s in data["signals"]
        ],
        "export_suffix": f"?{query}" if query else "",
        "overdue_href": "/tracker?" + urlencode({**f.query(), "overdue": "yes"}) + "#actions",
        "cases_of_action": data["context"].cases,
        "case_selected": data["context"].case or None,
        "case_unknown": data["case_unknown"],
        "partnership_names": data["context"].partnerships,
        "groups": groups,
        "first_group": first_group,
        "labels": labels,
        "sessions": by_course,
        "action_refs": refs,
        "action_ids": {a.ref: a.id for a in actions},
        "editable": {a.id for a in actions if may_edit(principal, a.partnership_id)},
        "can_import": may_edit(principal),
        "statuses": list(ActionStatus),
        "ratings": list(ImpactRating),
        "score_scale": SCORE_SCALE,
        "everything": everything,
        "today": data["today"],
    }


def _groups(
    actions: list[ActionPublic],
    courses: list[Any],
    labels: dict[str, str],
    *,
    only: str | None = None,
    filtered: bool = False,
) -> list[dict[str, Any]]:
    """One group per theme (by label) holding its actions and courses; untagged ones last.

    With a theme filter only that theme's group is shown; with any filter, only themes that
    still have actions (their courses alongside).
    """
    groups: dict[str, dict[str, list[Any]]] = defaultdict(lambda: {"actions": [], "courses": []})
    for action in actions:
        for theme in action.theme_ids or [NO_THEME]:
            groups[theme]["actions"].append(action)
    for course in courses:
        for theme in course.theme_ids or [NO_THEME]:
            if not filtered or theme in groups:
                groups[theme]["courses"].append(course)
    keep = [t for t in groups if only is None or t == only]
    order = sorted(keep, key=lambda t: (t == NO_THEME, labels.get(t, t).lower()))
    return [
        {
            "id": theme,
            "label": labels.get(theme, theme) if theme else "No theme",
            **groups[theme],
        }
        for theme in order
    ]


def _optional_date(value: str) -> date | None:
    return date.fromisoformat(value) if value.strip() else None


@router.post("/tracker/actions/{action_id}", name="edit_action_form")
def edit_action_form(
    request: Request,
    session: SessionDep,
    principal: WebPrincipal,
    action_id: int,
    version: Annotated[int, Form(ge=1)],
    status: Annotated[ActionStatus, Form()],
    completed_date: Annotated[str, Form(max_length=10)] = "",
    impact_evidence: Annotated[str, Form(max_length=5000)] = "",
    impact_rating: Annotated[ImpactRating | Literal[""] | None, Form()] = None,
) -> Response:
    """Save status, completion date and impact; a stale version shows what was not saved."""
    try:
        completed = _optional_date(completed_date)
    except ValueError:
        raise HTTPException(422, f"{completed_date!r} is not a date (YYYY-MM-DD)") from None
    data = ActionUpdate(
        status=status,
        completed_date=completed,
        impact_evidence=impact_evidence.strip() or None,
        impact_rating=impact_rating or None,
    )
    try:
        tracker_api.update_action_data(session, principal, action_id, data, version)
    except Conflict as exc:
        current = get_action(session, principal=principal, action_id=action_id)
        conflict = {
            "action": current,
            "message": str(exc),
            "submitted": {
                "status": status.value,
                "completed_date": completed.isoformat() if completed else "",
                "impact_evidence": impact_evidence,
                "impact_rating": impact_rating.value if impact_rating else "",
            },
        }
        return _page(request, session, principal, conflict=conflict, status_code=409)
    return RedirectResponse(f"/tracker?saved={action_id}#action-{action_id}", status_code=303)

"""The tracker page: signals first, then actions and training grouped by theme, edit forms.

Edits POST the version the editor saw; a stale one re-renders the page with a 409, the
editor's unsaved values and the action as it is now, so no update is lost silently. Import
goes to POST /api/tracker/import from static/tracker.js (multipart needs the CSRF header).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import SessionDep, WebPrincipal
from api.routes import tracker as tracker_api
from kb.models import ActionPublic, ActionStatus, ActionUpdate, ImpactRating
from kb.services.access import Principal
from kb.services.errors import Conflict
from kb.services.tracker import get_action, may_edit, theme_labels
from web.rendering import render

router = APIRouter()

NO_THEME = ""
SIGNAL_TITLES = {
    "recurrence_after_action": "Recurred after action",
    "deja_vu": "Déjà vu",
    "rising": "Rising theme",
    "overdue": "Overdue action",
    "no_impact_evidence": "No evidence of impact",
}


@router.get("/tracker", name="tracker_page")
def tracker_page(
    request: Request,
    session: SessionDep,
    principal: WebPrincipal,
    saved: Annotated[int | None, Query()] = None,
) -> HTMLResponse:
    return _page(request, session, principal, saved=saved)


def _page(
    request: Request,
    session: SessionDep,
    principal: Principal,
    *,
    saved: int | None = None,
    conflict: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    labels = theme_labels()
    actions = tracker_api.actions_data(session, principal)
    courses = tracker_api.courses_data(session, principal)
    sessions = tracker_api.sessions_data(session)
    by_course: dict[int, list[Any]] = defaultdict(list)
    for row in sessions:
        by_course[row.course_id].append(row)
    refs = {a.id: a.ref for a in actions}
    groups = _groups(actions, courses, labels)
    first_group: dict[int, str] = {}
    for group in groups:  # the anchor #action-<id> goes on an action's first appearance
        for action in group["actions"]:
            first_group.setdefault(action.id, group["id"])
    context = {
        "signals": [
            {**s.model_dump(), "title": SIGNAL_TITLES.get(s.kind, s.kind)}
            for s in tracker_api.signals_data(request, session, principal)
        ],
        "groups": groups,
        "first_group": first_group,
        "labels": labels,
        "sessions": by_course,
        "action_refs": refs,
        "action_ids": {ref: action_id for action_id, ref in refs.items()},
        "editable": {a.id for a in actions if may_edit(principal, a.partnership_id)},
        "can_import": may_edit(principal),
        "statuses": list(ActionStatus),
        "ratings": list(ImpactRating),
        "saved": next((a for a in actions if a.id == saved), None),
        "conflict": conflict,
        "today": date.today(),
    }
    return render(request, "tracker.html", context, status_code=status_code)


def _groups(
    actions: list[ActionPublic], courses: list[Any], labels: dict[str, str]
) -> list[dict[str, Any]]:
    """One group per theme (by label) holding its actions and courses; untagged ones last."""
    groups: dict[str, dict[str, list[Any]]] = defaultdict(lambda: {"actions": [], "courses": []})
    for action in actions:
        for theme in action.theme_ids or [NO_THEME]:
            groups[theme]["actions"].append(action)
    for course in courses:
        for theme in course.theme_ids or [NO_THEME]:
            groups[theme]["courses"].append(course)
    order = sorted(groups, key=lambda t: (t == NO_THEME, labels.get(t, t).lower()))
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

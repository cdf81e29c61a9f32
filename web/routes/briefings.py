"""Briefings: the builder (a theme or a review), saved drafts, one draft's preview and edit form.

Every route calls a data function of api/routes/briefings.py, so the page and the JSON API
cannot disagree about who sees which briefing. Downloads link to the API's export routes (the
session cookie authenticates them). Forms POST with the CSRF field and answer with a 303.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import SessionDep, WebPrincipal
from api.routes import briefings as briefings_api
from kb.models import BriefingPublic
from kb.services.access import Principal
from kb.services.briefing_export import RESTRICTED_MARKING, view_of
from kb.services.briefing_rules import may_change
from kb.services.reviews import NotFound
from web.rendering import render
from web.routes.reviews import theme_labels

router = APIRouter()

NEW_ITEM = "new"


@router.get("/briefings", name="briefings_page")
def briefings_page(
    request: Request,
    session: SessionDep,
    principal: WebPrincipal,
    theme: Annotated[str | None, Query(max_length=100)] = None,
    deleted: Annotated[bool, Query()] = False,
) -> HTMLResponse:
    """The builder and the saved drafts; ``?theme=`` preselects a theme (links from themes),
    ``?deleted=1`` confirms a delete."""
    return _builder(request, session, principal, selected_theme=theme, deleted=deleted)


@router.post("/briefings", name="build_briefing_form")
def build_briefing_form(
    request: Request,
    session: SessionDep,
    principal: WebPrincipal,
    theme_id: Annotated[str, Form(max_length=100)] = "",
    review_id: Annotated[str, Form(max_length=20)] = "",
    include_restricted: Annotated[bool, Form()] = False,
    notes: Annotated[str, Form(max_length=briefings_api.MAX_NOTES)] = "",
) -> Response:
    """Build and save a draft, then show it; a bad choice re-renders the builder with why."""
    theme = theme_id.strip() or None
    review = int(review_id) if review_id.strip().isdigit() else None
    if (theme is None) == (review is None):
        return _builder(
            request,
            session,
            principal,
            error="Choose either a theme or a review.",
            status_code=422,
        )
    body = briefings_api.BriefingCreate(
        theme_id=theme,
        review_id=review,
        include_restricted=include_restricted and principal.sees_restricted,
        notes=notes,
    )
    try:
        saved = briefings_api.create(session, principal, body)
    except NotFound as exc:  # e.g. an unpublished review without "include restricted"
        return _builder(
            request,
            session,
            principal,
            error=str(exc),
            selected_theme=body.theme_id,
            status_code=404,
        )
    return RedirectResponse(f"/briefings/{saved.id}", status_code=303)


@router.get("/briefings/{briefing_id}", name="briefing_page")
def briefing_page(
    request: Request, session: SessionDep, principal: WebPrincipal, briefing_id: int
) -> HTMLResponse:
    """One draft: the seven numbered sections with citations, downloads and the edit form
    (``?saved=1`` after an edit says it was saved)."""
    briefing = briefings_api.briefing_data(session, principal, briefing_id)
    context = briefing_context(request, briefing, principal)
    context["saved"] = request.query_params.get("saved") == "1"
    return render(request, "briefing.html", context)


@router.post("/briefings/{briefing_id}/edit", name="edit_briefing_form")
def edit_briefing_form(
    session: SessionDep,
    principal: WebPrincipal,
    briefing_id: int,
    version: Annotated[int, Form(ge=1)],
    title: Annotated[str, Form(max_length=300)],
    heading: Annotated[list[str], Form()],
    item_ref: Annotated[list[str] | None, Form()] = None,
    item_text: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Save the edited title, headings and item texts (an emptied item is removed).

    Items keep their citations by reference (``section:index`` into the version the editor saw);
    the version check makes a reference into a newer version impossible (409 instead).
    """
    current = briefings_api.briefing_data(session, principal, briefing_id)
    sections = edited_sections(current, heading, item_ref or [], item_text or [])
    briefings_api.edit(
        session, principal, briefing_id, version=version, title=title, sections=sections
    )
    return RedirectResponse(f"/briefings/{briefing_id}?saved=1", status_code=303)


@router.get("/briefings/{briefing_id}/delete", name="confirm_delete_briefing")
def confirm_delete_briefing(
    request: Request, session: SessionDep, principal: WebPrincipal, briefing_id: int
) -> HTMLResponse:
    """The confirmation step before a delete: a page, so it works without JavaScript."""
    briefing = briefings_api.briefing_data(session, principal, briefing_id)
    context = briefing_context(request, briefing, principal)
    return render(request, "briefing_delete.html", context)


@router.post("/briefings/{briefing_id}/delete", name="delete_briefing_form")
def delete_briefing_form(
    session: SessionDep,
    principal: WebPrincipal,
    briefing_id: int,
    version: Annotated[int, Form(ge=1)],
) -> Response:
    briefings_api.remove(session, principal, briefing_id, version=version)
    return RedirectResponse("/briefings?deleted=1", status_code=303)


# --------------------------------------------------------------------------- helpers


def _builder(
    request: Request,
    session: SessionDep,
    principal: Principal,
    *,
    selected_theme: str | None = None,
    error: str | None = None,
    status_code: int = 200,
    deleted: bool = False,
) -> HTMLResponse:
    labels = theme_labels(request)
    themes = sorted(labels.items(), key=lambda pair: pair[1].lower())
    return render(
        request,
        "briefings.html",
        {
            "themes": themes,
            "theme_labels": labels,
            "selected_theme": selected_theme if selected_theme in labels else None,
            "reviews": briefings_api.review_choices(session, principal),
            "drafts": briefings_api.briefings_list(session, principal),
            "can_restrict": principal.sees_restricted,
            "error": error,
            "deleted": deleted,
        },
        status_code=status_code,
    )


def briefing_context(
    request: Request, briefing: BriefingPublic, principal: Principal
) -> dict[str, Any]:
    """Sections as the exports show them, each item with a link to the passage it quotes."""
    view = view_of(briefing)
    labels = {
        int(src["review_id"]): str(src["label"])
        for section in briefing.sections
        for src in section.get("sources", [])
    }
    sections = []
    for shown, stored in zip(view.sections, briefing.sections, strict=True):
        items = []
        for index, (item, raw) in enumerate(zip(shown.items, stored["items"], strict=True)):
            href = None
            if item.review_id is not None:
                href = f"/reviews/{item.review_id}"
                if item.passage_id is not None:
                    href += f"#passage-{item.passage_id}"
            items.append(
                {
                    "ref": f"{shown.number}:{index}",
                    "text": raw["text"],
                    "href": href,
                    "cite": item.cite or labels.get(item.review_id or -1, "source"),
                    "quote": item.passage_id is not None,
                }
            )
        sections.append({"number": shown.number, "heading": shown.heading, "points": items})
    subject = None
    if briefing.theme_id:
        subject = theme_labels(request).get(briefing.theme_id, briefing.theme_id)
    return {
        "briefing": briefing,
        "sections": sections,
        "subject": subject,
        "marking": RESTRICTED_MARKING if briefing.restricted else None,
        "exports": [
            (fmt.upper(), f"/api/briefings/{briefing.id}/export.{fmt}")
            for fmt in briefings_api.FORMATS
        ],
        "can_delete": may_change(principal, briefing.created_by, "delete"),
        "can_edit": may_change(principal, briefing.created_by, "edit"),
    }


def edited_sections(
    current: BriefingPublic, headings: list[str], refs: list[str], texts: list[str]
) -> list[dict[str, Any]]:
    """The stored sections with the form's headings and item texts applied.

    ``refs`` pair with ``texts``: ``"3:1"`` is item 1 of section 3 (its citation is kept),
    ``"3:new"`` a new uncited point. Blank texts drop the item. Malformed references are
    ignored: the form only ever sends well-formed ones.
    """
    by_section: dict[int, list[dict[str, Any]]] = {s["number"]: [] for s in current.sections}
    stored = {s["number"]: s["items"] for s in current.sections}
    for ref, text in zip(refs, texts, strict=False):
        number_text, _, index_text = ref.partition(":")
        if not number_text.isdigit() or int(number_text) not in by_section or not text.strip():
            continue
        number = int(number_text)
        if index_text == NEW_ITEM:
            by_section[number].append({"text": text, "review_id": None, "passage_id": None})
        elif index_text.isdigit() and int(index_text) < len(stored[number]):
            original = stored[number][int(index_text)]
            by_section[number].append(
                {
                    "text": text,
                    "review_id": original["review_id"],
                    "passage_id": original["passage_id"],
                    "role": original.get("role"),  # the cited passage's role stays with it
                }
            )
    sections = []
    for position, section in enumerate(current.sections):
        heading = headings[position] if position < len(headings) else section["heading"]
        sections.append(
            {
                "number": section["number"],
                "heading": heading.strip() or section["heading"],
                "items": by_section[section["number"]],
            }
        )
    return sections

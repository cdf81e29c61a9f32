"""Reviews list, the review page (full text, highlighted evidence, legend) and tag decisions."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from functools import cache
from types import MappingProxyType
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from api.deps import SessionDep, WebPrincipal
from api.routes import reviews as reviews_api
from api.routes import tags as tags_api
from kb.models import PassageRole, ReviewStatus, ReviewType, TagStatus, ThemeTagPublic
from kb.services.access import Principal
from kb.services.reviews import SORTS, ReviewFilter, get_review, review_facets
from kb.services.tagging import may_decide
from kb.services.tracker import may_edit
from web.highlight import colour_for, evidence_spans, highlight
from web.rendering import enum_label, render, theme_colours_of

log = logging.getLogger(__name__)

router = APIRouter()


@router.get("/", name="home")
def home(principal: WebPrincipal) -> Response:
    return RedirectResponse("/search", status_code=303)


@router.get("/reviews", name="reviews_page")
def reviews_page(
    request: Request,
    session: SessionDep,
    principal: WebPrincipal,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=reviews_api.MAX_LIMIT)] = 50,
) -> HTMLResponse:
    """The reviews list: search by name, filters (kind, partnership, year, status, theme), sort.

    Empty form fields mean "any"; a value that is not one of the choices is ignored rather than
    refused, so an old bookmark still opens the list.
    """
    filters = _list_filters(request.query_params)
    page = reviews_api.reviews_page(session, principal, offset=offset, limit=limit, filters=filters)
    facets = review_facets(session, principal=principal)
    labels = theme_labels(request)
    query = {k: v for k, v in request.query_params.items() if k not in ("offset", "limit") and v}
    return render(
        request,
        "reviews.html",
        {
            "page": page,
            "filters": filters,
            "types": list(ReviewType),
            "statuses": list(ReviewStatus),
            "partnerships": facets["partnerships"],
            "years": facets["years"],
            "themes": sorted(labels.items(), key=lambda item: item[1].lower()),
            "sorts": SORTS,
            "prev_href": _page_href(query, max(0, offset - limit), limit) if offset > 0 else None,
            "next_href": (
                _page_href(query, offset + limit, limit) if offset + limit < page.total else None
            ),
        },
    )


def _list_filters(params: Any) -> ReviewFilter:
    def choice(name: str, enum: Any) -> Any:
        try:
            return enum(params.get(name)) if params.get(name) else None
        except ValueError:
            return None

    year = params.get("year", "")
    return ReviewFilter(
        q=params.get("q", "").strip()[:200],
        review_type=choice("type", ReviewType),
        partnership=params.get("partnership") or None,
        year=int(year) if year.isdigit() else None,
        status=choice("status", ReviewStatus),
        theme=params.get("theme") or None,
        sort=params.get("sort") if params.get("sort") in SORTS else "added",
    )


def _page_href(query: dict[str, str], offset: int, limit: int) -> str:
    return "?" + urlencode({**query, "offset": offset, "limit": limit})


@router.get("/reviews/{review_id}", name="review_page")
def review_page(
    request: Request, session: SessionDep, principal: WebPrincipal, review_id: int
) -> HTMLResponse:
    """The full text of the review's passages with each theme's evidence highlighted."""
    detail = reviews_api.review_data(session, principal, review_id, audit_via="web")
    tags = reviews_api.tags_data(session, principal, review_id, audit_via=None)  # audited above
    precision = tags_api.precision_data(session, principal)
    context = review_context(request, detail, tags, principal, precision)
    review = get_review(session, principal=principal, review_id=review_id)
    context["can_edit"] = may_edit(principal, review.partnership_id)
    context["role_options"] = role_options()
    context["kinds"] = [kind.value for kind in ReviewType]
    context["can_decide"] = may_decide(session, principal=principal, review_id=review_id)
    return render(request, "review.html", context)


@cache
def role_options() -> Mapping[str, Markup]:
    """Passage role → the ``<option>`` list with that role selected, built once per process:
    an editor's review page has one role form per passage, and rendering the options in the
    template (a label filter per option per passage) was a fifth of the page's CPU."""
    roles = [role.value for role in PassageRole]
    option = Markup('<option value="{}"{}>{}</option>')
    selected = Markup(" selected")
    return MappingProxyType(
        {
            chosen: Markup("").join(
                option.format(r, selected if r == chosen else "", enum_label(r)) for r in roles
            )
            for chosen in ["", *roles]
        }
    )


def review_context(
    request: Request,
    detail: dict[str, Any],
    tags: list[ThemeTagPublic],
    principal: Principal,
    precision: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    labels = theme_labels(request)
    colours = theme_colours_of(request)
    key_of: dict[str, int] = {}  # the legend's numbers, 1… in order of first appearance
    by_passage: dict[int, list[ThemeTagPublic]] = defaultdict(list)
    # Within a passage, the suggestion a decision would teach most comes first.
    for tag in sorted(
        tags, key=lambda t: (t.status != TagStatus.SUGGESTED, -tags_api.uncertainty(t.confidence))
    ):
        key_of.setdefault(tag.theme_id, len(key_of) + 1)
        by_passage[tag.passage_id].append(tag)
    legend = []
    for theme_id, key in key_of.items():
        own = [t for t in tags if t.theme_id == theme_id]
        legend.append(
            {
                "id": theme_id,
                "key": key,
                "label": labels.get(theme_id, theme_id),
                "colour": colour_for(theme_id, colours),
                "confidence": max(t.confidence for t in own),
                "passages": len(own),
                "confirmed": sum(t.status == TagStatus.CONFIRMED for t in own),
                "rejected": sum(t.status == TagStatus.REJECTED for t in own),
                "precision": (precision or {}).get(theme_id, {}).get("precision"),
            }
        )
    sections = []
    for section in detail["sections"]:
        passages = []
        for passage in section["passages"]:
            own = by_passage.get(passage["id"], [])
            spans = evidence_spans(own, len(passage["text"]))
            passages.append(
                {
                    "id": passage["id"],
                    "role": passage.get("role", "other"),
                    "role_source": passage.get("role_source", "model"),
                    "html": highlight(passage["text"], spans, colours, key_of, labels),
                    "tags": [
                        {
                            "tag": t,
                            "key": key_of[t.theme_id],
                            "label": labels.get(t.theme_id, t.theme_id),
                            "colour": colour_for(t.theme_id, colours),
                        }
                        for t in own
                    ],
                }
            )
        sections.append({**section, "passages": passages})
    return {
        "review": detail,
        "sections": sections,
        "legend": legend,
        "can_decide": False,  # set by the page from the service's rule
    }


def theme_labels(request: Request) -> dict[str, str]:
    """Theme id → label from the configured taxonomy (ids themselves if it cannot load)."""
    try:
        from kb.services.tagging import get_taxonomy

        taxonomy = get_taxonomy(request.app.state.settings)
        return {theme_id: theme.label for theme_id, theme in taxonomy.themes.items()}
    except Exception:  # noqa: BLE001 - labels are cosmetic; the page must still render
        log.exception("could not load the taxonomy for theme labels")
        return {}


# --------------------------------------------------------------------------- tag decisions


@router.get("/tags/queue", name="tags_queue_page")
def tags_queue_page(
    request: Request,
    session: SessionDep,
    principal: WebPrincipal,
    limit: Annotated[int, Query(ge=1, le=tags_api.MAX_QUEUE)] = 50,
) -> HTMLResponse:
    """ "Tags to check": suggestions ordered by uncertainty, each theme's measured precision."""
    queue = tags_api.queue_data(session, principal, limit=limit)
    labels = theme_labels(request)
    rows = []
    for tag in queue.tags:
        measured = queue.precision.get(tag.theme_id, {})
        rows.append(
            {
                "tag": tag,
                "label": labels.get(tag.theme_id, tag.theme_id),
                "precision": measured.get("precision"),
                "decided": measured.get("confirmed", 0) + measured.get("rejected", 0),
                "can_decide": may_decide(session, principal=principal, review_id=tag.review_id),
            }
        )
    context = {"rows": rows}
    return render(request, "tags_queue.html", context)


def _decide(
    session: SessionDep,
    principal: Principal,
    tag_id: int,
    status: TagStatus,
    version: int,
    back: str | None = None,
) -> Response:
    """Decide, then return to where the decision was made (the queue or the review)."""
    tag = tags_api.decide(session, principal, tag_id, status, version)
    if back == "queue":
        return RedirectResponse("/tags/queue", status_code=303)
    return RedirectResponse(f"/reviews/{tag.review_id}#passage-{tag.passage_id}", status_code=303)


BackField = Annotated[str | None, Form(max_length=10)]


@router.post("/tags/{tag_id}/confirm", name="confirm_tag_form")
def confirm_tag_form(
    session: SessionDep,
    principal: WebPrincipal,
    tag_id: int,
    version: Annotated[int, Form(ge=1)],
    back: BackField = None,
) -> Response:
    return _decide(session, principal, tag_id, TagStatus.CONFIRMED, version, back)


@router.post("/tags/{tag_id}/reject", name="reject_tag_form")
def reject_tag_form(
    session: SessionDep,
    principal: WebPrincipal,
    tag_id: int,
    version: Annotated[int, Form(ge=1)],
    back: BackField = None,
) -> Response:
    return _decide(session, principal, tag_id, TagStatus.REJECTED, version, back)

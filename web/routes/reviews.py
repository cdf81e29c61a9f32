"""Reviews list, the review page (full text, highlighted evidence, legend) and tag decisions."""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import SessionDep, WebPrincipal
from api.routes import reviews as reviews_api
from api.routes import tags as tags_api
from kb.models import TagStatus, ThemeTagPublic
from kb.services.access import Principal
from web.highlight import PALETTE_SIZE, evidence_spans, highlight
from web.rendering import render

log = logging.getLogger(__name__)

router = APIRouter()


@router.get("/", name="home")
def home(principal: WebPrincipal) -> Response:
    return RedirectResponse("/reviews", status_code=303)


@router.get("/reviews", name="reviews_page")
def reviews_page(
    request: Request,
    session: SessionDep,
    principal: WebPrincipal,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=reviews_api.MAX_LIMIT)] = 50,
) -> HTMLResponse:
    page = reviews_api.reviews_page(session, principal, offset=offset, limit=limit)
    return render(
        request,
        "reviews.html",
        {
            "page": page,
            "prev_offset": max(0, offset - limit) if offset > 0 else None,
            "next_offset": offset + limit if offset + limit < page.total else None,
        },
    )


@router.get("/reviews/{review_id}", name="review_page")
def review_page(
    request: Request, session: SessionDep, principal: WebPrincipal, review_id: int
) -> HTMLResponse:
    """The full text of the review's passages with each theme's evidence highlighted."""
    detail = reviews_api.review_data(session, principal, review_id, audit_via="web")
    tags = reviews_api.tags_data(session, principal, review_id, audit_via=None)  # audited above
    precision = tags_api.precision_data(session, principal)
    context = review_context(request, detail, tags, principal, precision)
    return render(request, "review.html", context)


def review_context(
    request: Request,
    detail: dict[str, Any],
    tags: list[ThemeTagPublic],
    principal: Principal,
    precision: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    labels = theme_labels(request)
    colour_of: dict[str, int] = {}
    by_passage: dict[int, list[ThemeTagPublic]] = defaultdict(list)
    # Within a passage, the suggestion a decision would teach most comes first.
    for tag in sorted(
        tags, key=lambda t: (t.status != TagStatus.SUGGESTED, -tags_api.uncertainty(t.confidence))
    ):
        colour_of.setdefault(tag.theme_id, len(colour_of))
        by_passage[tag.passage_id].append(tag)
    legend = []
    for theme_id, colour in colour_of.items():
        own = [t for t in tags if t.theme_id == theme_id]
        legend.append(
            {
                "id": theme_id,
                "label": labels.get(theme_id, theme_id),
                "colour": colour % PALETTE_SIZE,
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
                    "html": highlight(passage["text"], spans, colour_of),
                    "tags": [
                        {
                            "tag": t,
                            "label": labels.get(t.theme_id, t.theme_id),
                            "colour": colour_of[t.theme_id] % PALETTE_SIZE,
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
        "can_decide": principal.role in tags_api.DECIDERS,
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
            }
        )
    context = {"rows": rows, "can_decide": principal.role in tags_api.DECIDERS}
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

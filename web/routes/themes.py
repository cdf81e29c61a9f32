"""The themes dashboard: recurrence table, theme × year heatmap and trend lines, with filters.

Every table and chart here comes from the data functions of ``api.routes.themes`` (the JSON
twins), so the page, its charts and the exports count the same reviews: only visible ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import SessionDep, WebPrincipal
from api.routes import themes as themes_api
from api.routes.themes import FiltersDep, ThemeFilters
from kb.models import ReviewType
from kb.services.access import Principal
from kb.services.national import comparison
from kb.services.reviews import review_facets
from kb.services.tracker import theme_labels
from web import charts
from web.page_cache import render_shared
from web.rendering import theme_colours_of

router = APIRouter()

TREND_TOP = 5
SVG = "image/svg+xml"


@router.get("/themes", name="themes_page")
def themes_page(
    request: Request, session: SessionDep, principal: WebPrincipal, filters: FiltersDep
) -> HTMLResponse:
    """The dashboard; the charts are <img> elements pointing at /charts/*.svg (same filters).

    The same for every user of one role and partnership: rendered once per data version."""
    return render_shared(
        request,
        "themes.html",
        session=session,
        principal=principal,
        key=filters,  # a frozen dataclass: every filter field is in the key
        build=lambda: _context(request, session, principal, filters),
    )


def _context(
    request: Request, session: SessionDep, principal: Principal, filters: ThemeFilters
) -> dict[str, Any]:
    recurrence = themes_api.recurrence_data(session, principal, filters)
    matrix = themes_api.matrix_data(session, principal, filters)
    query = urlencode(filters.query())
    suffix = f"?{query}" if query else ""
    facets = review_facets(session, principal=principal)
    national = comparison(recurrence.model_dump()["themes"], theme_labels())
    return {
        "filters": filters,
        "recurrence": recurrence,
        "matrix": matrix,
        "trend": matrix.themes[:TREND_TOP],
        "charts": {name: f"/charts/{name}.svg{suffix}" for name in charts.chart_names()},
        "exports": themes_api.export_links(filters),
        "types": [t.value for t in ReviewType],
        "partnerships": facets["partnerships"],
        "years": facets["years"],
        "search_href": _search_href(request),
        "national": national,
    }


def _search_href(request: Request) -> Callable[[str], str]:
    """theme id → the search page filtered by that theme."""
    try:
        base = str(request.app.url_path_for("search_page"))
    except Exception:  # noqa: BLE001 - search page not installed: link the conventional path
        base = "/search"
    hrefs: dict[str, str] = {}  # the heatmap asks once per cell: encode each theme once

    def href(theme_id: str) -> str:
        if theme_id not in hrefs:
            hrefs[theme_id] = f"{base}?{urlencode({'theme': theme_id})}"
        return hrefs[theme_id]

    return href


# --------------------------------------------------------------------------- charts


def _svg(content: str) -> Response:
    return Response(content, media_type=SVG)


@router.get("/charts/heatmap.svg", name="heatmap_chart")
def heatmap_chart(session: SessionDep, principal: WebPrincipal, filters: FiltersDep) -> Response:
    """Theme × year heatmap of the reviews you may see."""
    return _svg(
        charts.heatmap_svg(themes_api.matrix_data(session, principal, filters).model_dump())
    )


@router.get("/charts/trend.svg", name="trend_chart")
def trend_chart(
    request: Request, session: SessionDep, principal: WebPrincipal, filters: FiltersDep
) -> Response:
    """Reviews per year for the top themes, each line in its theme's colour."""
    matrix = themes_api.matrix_data(session, principal, filters).model_dump()
    return _svg(charts.trend_svg(matrix, top=TREND_TOP, colours=theme_colours_of(request)))


@router.get("/charts/national.svg", name="national_chart")
def national_chart(session: SessionDep, principal: WebPrincipal, filters: FiltersDep) -> Response:
    """Each theme's local share (dot) beside the national reference figure (bar)."""
    themes = themes_api.recurrence_data(session, principal, filters).model_dump()["themes"]
    return _svg(charts.national_svg(comparison(themes, theme_labels())))


@router.get("/charts/recurrence.svg", name="recurrence_chart")
def recurrence_chart(session: SessionDep, principal: WebPrincipal, filters: FiltersDep) -> Response:
    """The "N of M reviews" bars."""
    return _svg(
        charts.recurrence_svg(themes_api.recurrence_data(session, principal, filters).model_dump())
    )

"""The search page: a form (a textarea, so a whole pasted paragraph works) and hits by review.

The form is a GET, so a search is a URL that can be bookmarked or shared with a colleague who
has the same access (their own access applies when they open it). Form fields arrive as strings,
empty ones meaning "any"; they are parsed here into the same ``SearchQuery`` the JSON API builds,
and ``search_data`` does the rest, so the page and /api/search can never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup, escape
from starlette.datastructures import QueryParams

from api.deps import SessionDep, WebPrincipal
from api.routes import search as search_api
from kb.models import AgeBand, ReviewType
from kb.services.reviews import review_facets
from web.rendering import render

router = APIRouter()

AGE_BAND_LABELS = {
    AgeBand.UNBORN: "Unborn",
    AgeBand.UNDER_1: "Under 1",
    AgeBand.AGE_1_4: "1–4",
    AgeBand.AGE_5_9: "5–9",
    AgeBand.AGE_10_14: "10–14",
    AgeBand.AGE_15_17: "15–17",
    AgeBand.ADULT: "18 and over",
}
MODE_LABELS = {
    "hybrid": "Words and meaning",
    "bm25": "Exact words",
    "dense": "Meaning only",
}
TOP_CHOICES = (10, 20, 50)
FIELDS = (
    "q",
    "like",
    "type",
    "partnership",
    "since",
    "until",
    "section",
    "age_band",
    "mode",
    "order",
)
ROLE_LABELS = {
    "finding": "Finding",
    "recommendation": "Recommendation",
    "action": "Action",
    "good_practice": "Good practice",
    "case_synopsis": "Case synopsis",
    "other": "Other",
    "front_matter": "Front matter",
    "partnership_business": "Partnership business",
}
ORDER_LABELS = {"": "Automatic", "learning": "Learning first", "relevance": "Best match first"}


@router.get("/search", name="search_page")
def search_page(request: Request, session: SessionDep, principal: WebPrincipal) -> HTMLResponse:
    """Empty form, results grouped by review, or the form with what was wrong with the input."""
    params = request.query_params
    settings = request.app.state.settings
    form = {name: params.get(name, "").strip() for name in FIELDS}
    form["themes"] = [t for t in params.getlist("theme") if t]
    form["roles"] = [r for r in params.getlist("role") if r]
    form["top"] = params.get("top", str(search_api.DEFAULT_TOP))
    context: dict[str, Any] = {
        "form": form,
        "theme_groups": search_api.theme_groups(settings),
        "types": list(ReviewType),
        "partnerships": review_facets(session, principal=principal)["partnerships"],
        "sections": search_api.SECTION_KINDS,
        "age_bands": AGE_BAND_LABELS,
        "modes": MODE_LABELS,
        "roles": ROLE_LABELS,
        "orders": ORDER_LABELS,
        "top_choices": TOP_CHOICES,
        "max_query": search_api.MAX_QUERY_CHARS,
        "results": None,
        "groups": [],
        "error": None,
    }
    if not form["q"] and not form["like"]:
        return render(request, "search.html", context)  # the empty state
    try:
        query = parse_form(params)
        results = search_api.search_data(
            session, principal, query, settings=settings, audit_via="web-search"
        )
    except search_api.SearchError as exc:
        context["error"] = str(exc)
        return render(request, "search.html", context, status_code=400)
    labels = search_api.theme_labels(settings) if results.hits else {}
    context["results"] = results
    context["groups"] = display_groups(results, labels, params)
    context["prev_url"] = page_url(params, results.page - 1) if results.page > 1 else None
    context["next_url"] = page_url(params, results.page + 1) if results.has_next else None
    return render(request, "search.html", context)


def parse_form(params: QueryParams) -> search_api.SearchQuery:
    """The form's strings as a SearchQuery; SearchError says which field is wrong and why."""

    def text(name: str) -> str | None:
        value = params.get(name, "").strip()
        return value or None

    def number(name: str, label: str) -> int | None:
        value = text(name)
        if value is None:
            return None
        try:
            return int(value)
        except ValueError:
            raise search_api.SearchError(f"{label} must be a whole number") from None

    def choice(name: str, label: str, allowed: Sequence[str]) -> str | None:
        value = text(name)
        if value is not None and value not in allowed:
            raise search_api.SearchError(f"unknown {label} {value!r}")
        return value

    review_type = choice("type", "review type", [t.value for t in ReviewType])
    age_band = choice("age_band", "age band", [a.value for a in AgeBand])
    mode = choice("mode", "search mode", search_api.MODES) or "hybrid"
    years = [number("since", "the first year"), number("until", "the last year")]
    for year in years:
        if year is not None and not search_api.MIN_YEAR <= year <= search_api.MAX_YEAR:
            raise search_api.SearchError(f"{year} is not a plausible year")
    return search_api.SearchQuery(
        q=params.get("q", ""),
        like=number("like", "the passage id"),
        themes=[t for t in params.getlist("theme") if t],
        review_type=ReviewType(review_type) if review_type else None,
        partnership=text("partnership"),
        since=years[0],
        until=years[1],
        section=choice("section", "section kind", search_api.SECTION_KINDS),
        age_band=AgeBand(age_band) if age_band else None,
        mode=cast(search_api.Mode, mode),  # checked against MODES above
        top=number("top", "results per page") or search_api.DEFAULT_TOP,
        page=number("page", "the page") or 1,
        roles=[r for r in params.getlist("role") if r],
        order=cast(search_api.Order | None, choice("order", "order", search_api.ORDERS)),
    )


def display_groups(
    results: search_api.SearchResults, labels: dict[str, str], params: QueryParams
) -> list[dict[str, Any]]:
    """Hits under their case (its reviews named), each with an escaped, highlighted snippet,
    theme chips and the tracker actions answering it."""
    by_id = {hit.passage_id: hit for hit in results.hits}
    reviews = {group.review_id: group for group in results.reviews}
    groups = []
    for case in results.cases:
        hits = [_display_hit(by_id[pid], reviews, labels, params) for pid in case.passage_ids]
        groups.append(
            {
                "label": case.label,
                "case_id": case.case_id,
                "reviews": [reviews[rid] for rid in case.review_ids],
                "hits": hits,
            }
        )
    return groups


def _display_hit(
    hit: search_api.HitOut,
    reviews: dict[int, search_api.ReviewGroup],
    labels: dict[str, str],
    params: QueryParams,
) -> dict[str, Any]:
    return {
        "hit": hit,
        "review": reviews[hit.review_id],
        "review_url": f"/reviews/{hit.review_id}",
        "snippet": snippet_html(hit.snippet, hit.highlights),
        "themes": [
            {"id": t, "label": labels.get(t, t), "url": with_params(params, theme=[t], page=None)}
            for t in hit.themes
        ],
        "like_url": "/search?" + urlencode({"like": hit.passage_id}),
    }


def snippet_html(text: str, highlights: Sequence[tuple[int, int]]) -> Markup:
    """``text`` escaped piece by piece, matched terms wrapped in ``<mark class="q">``.

    Document text is untrusted: only the ``<mark>`` tags added here are markup. Overlapping or
    out-of-range offsets are skipped, never trusted.
    """
    parts: list[Markup] = []
    pos = 0
    for start, end in sorted(highlights):
        if start < pos or end > len(text) or start >= end:
            continue
        parts.append(escape(text[pos:start]))
        parts.append(Markup('<mark class="q">{}</mark>').format(text[start:end]))
        pos = end
    parts.append(escape(text[pos:]))
    return Markup("").join(parts)


def with_params(params: QueryParams, **changes: list[str] | None) -> str:
    """This search's URL with some parameters replaced (None drops one)."""
    items = [(k, v) for k, v in params.multi_items() if k not in changes and v != ""]
    for name, values in changes.items():
        items.extend((name, v) for v in values or [])
    return "/search?" + urlencode(items)


def page_url(params: QueryParams, page: int) -> str:
    return with_params(params, page=[str(page)] if page > 1 else None)

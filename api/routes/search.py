"""Search prior learning: ``GET /api/search`` and "more like this" for one passage.

``search_data`` is the data function the search page renders too. Access control and filters are
applied by kb/services/search.py *before* ranking, so a review the caller may not see never
contributes a hit, a snippet, a count or a score. Hits from unpublished or embargoed reviews
quote those reviews, so returning them is audited like opening the review.

Input errors: unknown enum values and out-of-range numbers are 422 (FastAPI validation); a blank
query, an unknown theme or a year range that ends before it starts are 400; a passage the caller
may not see is 404, exactly like one that does not exist.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Annotated, Literal, get_args

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel
from sqlmodel import Session

from api.deps import CurrentPrincipal, SessionDep
from kb.config import Settings
from kb.models import AgeBand, ReviewType
from kb.services.access import Principal
from kb.services.embedding import embedder_for
from kb.services.reviews import review_statuses
from kb.services.search import (
    MAX_PAGE,
    MAX_QUERY_CHARS,
    MAX_TOP,
    MAX_YEAR,
    MIN_YEAR,
    SearchError,
    SearchFilters,
    SearchHit,
    check_search,
    group_by_review,
    more_like_this,
    search,
)
from kb.services.search_learning import (  # noqa: F401 - ORDERS, Order used by web/
    ORDERS,
    ROLES,
    Order,
    default_order,
    group_by_case,
)
from kb.services.tagging import Taxonomy, get_taxonomy

log = logging.getLogger(__name__)

router = APIRouter(tags=["search"])

Mode = Literal["hybrid", "bm25", "dense"]
MODES: tuple[Mode, ...] = ("hybrid", "bm25", "dense")
# The section kinds corpus/segment.py assigns (kept here so api/ does not import corpus/).
SectionKindParam = Literal[
    "background", "findings", "recommendations", "good_practice", "action_plan", "other"
]
SECTION_KINDS: tuple[str, ...] = get_args(SectionKindParam)
DEFAULT_TOP = 10
__all__ = ["MAX_PAGE", "MAX_QUERY_CHARS", "MAX_TOP", "MAX_YEAR", "MIN_YEAR", "SearchError"]


@dataclass(slots=True)
class SearchQuery:
    """One search request, from the API's query parameters or the page's form."""

    q: str = ""
    like: int | None = None
    themes: list[str] = field(default_factory=list)
    review_type: ReviewType | None = None
    partnership: str | None = None
    since: int | None = None
    until: int | None = None
    section: str | None = None
    age_band: AgeBand | None = None
    mode: Mode = "hybrid"
    top: int = DEFAULT_TOP
    page: int = 1
    roles: list[str] = field(default_factory=list)
    order: Order | None = None  # None: learning first for a pasted paragraph

    def filters(self) -> SearchFilters:
        return SearchFilters(
            themes=list(self.themes),
            review_type=self.review_type,
            partnership=self.partnership,
            since=self.since,
            until=self.until,
            section_kind=self.section,
            age_band=self.age_band,
            roles=list(self.roles),
        )


class ActionOut(BaseModel):
    """A tracker action answering the recommendation a hit quotes."""

    action_id: int
    ref: str
    description: str
    status: str
    impact_rating: str | None
    completed_date: str | None
    url: str


class HitOut(BaseModel):
    """One passage: the ``kb search --json`` fields plus where to read it in context."""

    review_id: int
    review_title: str
    pseudonym: str
    passage_id: int
    section: str
    section_kind: str
    text: str
    snippet: str
    highlights: list[tuple[int, int]]
    score: float
    themes: list[str]
    url: str
    role: str = "other"
    case_id: int | None = None
    case_label: str | None = None
    similarity: float | None = None
    actions: list[ActionOut] = []


class ReviewGroup(BaseModel):
    """The hits of one review (ids into ``hits``), reviews in the order of their best hit."""

    review_id: int
    review_title: str
    pseudonym: str
    status: str
    best_score: float
    passage_ids: list[int]


class CaseGroup(BaseModel):
    """The hits of one case (a rapid review and the LCSPR that followed are one case)."""

    case_id: int | None
    label: str
    review_ids: list[int]
    passage_ids: list[int]


class SearchResults(BaseModel):
    query: str
    like: int | None
    mode: str
    page: int
    top: int
    has_next: bool
    hits: list[HitOut]
    reviews: list[ReviewGroup]
    order: str = "relevance"
    cases: list[CaseGroup] = []
    no_close_match: bool = False  # the query matched nothing closely enough to show


# --------------------------------------------------------------------------- data functions


def _taxonomy(settings: Settings) -> Taxonomy | None:
    """The configured taxonomy, or None if it cannot load (search must keep working then)."""
    try:
        return get_taxonomy(settings)
    except Exception:  # noqa: BLE001 - themes only label and validate; never block a search
        log.exception("could not load the taxonomy for theme filters")
        return None


def theme_labels(settings: Settings) -> dict[str, str]:
    """Theme id → label ({} when the taxonomy cannot load: theme ids are then not checked)."""
    taxonomy = _taxonomy(settings)
    return {theme.id: theme.label for theme in taxonomy} if taxonomy else {}


def theme_groups(settings: Settings) -> list[tuple[str, list[tuple[str, str]]]]:
    """(group label, [(theme id, label)]) for the theme select, in taxonomy order."""
    taxonomy = _taxonomy(settings)
    if taxonomy is None:
        return []
    return [
        (taxonomy.groups.get(group, group), [(t.id, t.label) for t in themes])
        for group, themes in taxonomy.by_group().items()
        if themes
    ]


def check(query: SearchQuery, known_themes: dict[str, str]) -> None:
    """Raise SearchError for input that is well-typed but cannot mean anything (the service's
    rule, shared with ``kb search``)."""
    check_search(
        query=query.q,
        like=query.like,
        themes=query.themes,
        since=query.since,
        until=query.until,
        top=query.top,
        page=query.page,
        known_themes=known_themes,
        roles=query.roles,
        order=query.order,
    )


def search_data(
    session: Session,
    principal: Principal,
    query: SearchQuery,
    *,
    settings: Settings,
    audit_via: str | None,
) -> SearchResults:
    """One page of hits for ``query`` (text search, or more-like-this when ``like`` is set).

    Raises SearchError for bad input and NotFound when ``like`` names a passage the principal
    may not see. Pages are cut from the best ``top * page + 1`` hits (the extra one tells
    whether a next page exists); MAX_PAGE and MAX_TOP bound that to 1001 passages.
    """
    check(query, theme_labels(settings) if query.themes else {})
    wanted = query.top * query.page + 1
    embedder = embedder_for(settings)
    if query.like is not None:
        ranked = more_like_this(
            session,
            principal=principal,
            passage_id=query.like,
            filters=query.filters(),
            top_k=wanted,
            embedder=embedder,
        )
    else:
        ranked = search(
            session,
            principal=principal,
            query=query.q,
            filters=query.filters(),
            top_k=wanted,
            mode=query.mode,
            embedder=embedder,
            order=query.order,
        )
    start = query.top * (query.page - 1)
    hits = ranked[start : start + query.top]
    groups = group_by_review(hits)
    status = review_statuses(  # hits quote their reviews: restricted ones count as viewed
        session,
        principal=principal,
        review_ids=[g["review_id"] for g in groups],
        audit_via=audit_via,
    )
    return SearchResults(
        query=query.q,
        like=query.like,
        order=query.order or default_order(query.q),
        no_close_match=query.like is None and not ranked,
        cases=[
            CaseGroup(
                case_id=g["case_id"],
                label=g["label"],
                review_ids=g["review_ids"],
                passage_ids=[h.passage_id for h in g["hits"]],
            )
            for g in group_by_case(hits)
        ],
        mode="dense" if query.like is not None else query.mode,
        page=query.page,
        top=query.top,
        has_next=len(ranked) > start + query.top,
        hits=[_hit_out(h) for h in hits],
        reviews=[
            ReviewGroup(
                review_id=g["review_id"],
                review_title=g["review_title"],
                pseudonym=g["pseudonym"],
                status=status[g["review_id"]],
                best_score=max(h.score for h in g["hits"]),
                passage_ids=[h.passage_id for h in g["hits"]],
            )
            for g in groups
        ],
    )


def _hit_out(hit: SearchHit) -> HitOut:
    return HitOut(**hit.as_dict(), url=f"/reviews/{hit.review_id}#passage-{hit.passage_id}")


def _run(
    session: Session, principal: Principal, query: SearchQuery, request: Request, via: str
) -> SearchResults:
    try:
        return search_data(
            session, principal, query, settings=request.app.state.settings, audit_via=via
        )
    except SearchError as exc:
        raise HTTPException(400, str(exc)) from exc


# --------------------------------------------------------------------------- routes

Themes = Annotated[list[str], Query(alias="theme", description="Theme id (repeatable: any of).")]
Year = Annotated[int | None, Query(ge=MIN_YEAR, le=MAX_YEAR)]
Top = Annotated[int, Query(ge=1, le=MAX_TOP, description="Hits per page.")]
Page = Annotated[int, Query(ge=1, le=MAX_PAGE)]
NOT_FOUND = {404: {"description": "No such passage for you"}}
BAD = {400: {"description": "Blank query, unknown theme or an empty year range"}}


def filter_params(
    theme: Themes = [],  # noqa: B006 - FastAPI copies defaults per request
    type: Annotated[ReviewType | None, Query(description="Review type.")] = None,  # noqa: A002
    partnership: str | None = None,
    since: Year = None,
    until: Year = None,
    age_band: AgeBand | None = None,
    section: SectionKindParam | None = None,
    top: Top = DEFAULT_TOP,
    page: Page = 1,
    role: Annotated[
        list[str], Query(description="Passage role (repeatable: any of), e.g. finding.")
    ] = [],  # noqa: B006 - FastAPI copies defaults per request
) -> SearchQuery:
    """The filter and paging parameters search and "more like this" share."""
    return SearchQuery(
        themes=theme,
        review_type=type,
        partnership=partnership or None,
        since=since,
        until=until,
        section=section,
        age_band=age_band,
        top=top,
        page=page,
        roles=role,
    )


Filters = Annotated[SearchQuery, Depends(filter_params)]


@router.get("/search", responses=BAD)
def read_search(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    filters: Filters,
    q: Annotated[str, Query(max_length=MAX_QUERY_CHARS, description="Words or a paragraph.")] = "",
    mode: Mode = "hybrid",
    order: Annotated[
        Order | None,
        Query(description="relevance, or learning (findings, recommendations, actions first)."),
    ] = None,
) -> SearchResults:
    """Passages best matching ``q`` among the reviews you may see, best first, by review and
    by case too. Nothing close enough: ``hits`` is empty and ``no_close_match`` true."""
    query = replace(filters, q=q, mode=mode, order=order)
    return _run(session, principal, query, request, "api-search")


@router.get("/passages/{passage_id}/similar", responses={**NOT_FOUND, **BAD})
def read_similar(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    passage_id: int,
    filters: Filters,
) -> SearchResults:
    """More like this: the passages most similar in meaning to one you may see."""
    return _run(session, principal, replace(filters, like=passage_id), request, "api-similar")

"""Themes: the taxonomy, the "N of M reviews" recurrence table and the theme × year matrix.

The data functions here (``recurrence_data``, ``matrix_data``) are what the dashboard page and
its charts call too, so the table, the charts, the JSON and the exports always count the same
reviews: only those the principal may see (hidden reviews never count, not even as a total).
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlmodel import Session

from api.deps import CurrentPrincipal, SessionDep
from kb.models import ReviewType
from kb.services.access import Principal
from kb.services.recurrence import export_recurrence, theme_recurrence, theme_year_matrix
from kb.services.reviews import review_pseudonyms
from kb.services.tracker import theme_labels

router = APIRouter(tags=["themes"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MEDIA = {"csv": "text/csv; charset=utf-8", "xlsx": XLSX}
Blank = Literal[""]  # an empty form field (the dashboard's filter form) means "no filter"


class ThemeOut(BaseModel):
    id: str
    label: str
    group: str | None = None
    description: str | None = None


class ThemeCount(BaseModel):
    id: str
    label: str
    reviews: int
    share: float
    review_ids: list[int]


class Recurrence(BaseModel):
    """Same shape as ``kb themes recurrence --json``."""

    total_reviews: int
    themes: list[ThemeCount]


class MatrixRow(BaseModel):
    id: str
    label: str
    counts: list[int]


class Matrix(BaseModel):
    """Same shape as ``kb themes matrix --json``."""

    years: list[int]
    totals: list[int]
    themes: list[MatrixRow]


@dataclass(frozen=True)
class ThemeFilters:
    """Which reviews count; the same filters as ``kb themes recurrence``."""

    review_type: ReviewType | None = None
    partnership: str | None = None
    since: int | None = None
    until: int | None = None
    include_reports: bool = False

    def query(self) -> dict[str, str]:
        """The filters as query parameters (for chart and export links)."""
        out = {
            "type": self.review_type.value if self.review_type else None,
            "partnership": self.partnership,
            "since": self.since,
            "until": self.until,
            "include_reports": "true" if self.include_reports else None,
        }
        return {k: str(v) for k, v in out.items() if v is not None}


def theme_filters(
    review_type: Annotated[
        ReviewType | Blank | None, Query(alias="type", description="Only reviews of this type.")
    ] = None,
    partnership: Annotated[
        str | None, Query(max_length=200, description="Only this partnership's reviews.")
    ] = None,
    since: Annotated[int | Blank | None, Query(description="First year (inclusive).")] = None,
    until: Annotated[int | Blank | None, Query(description="Last year (inclusive).")] = None,
    include_reports: Annotated[
        bool, Query(description="Count annual reports as reviews too.")
    ] = False,
) -> ThemeFilters:
    """Query parameters → filters; blank values (an untouched form field) mean no filter."""
    return ThemeFilters(
        review_type=review_type or None,
        partnership=(partnership or "").strip() or None,
        since=since if isinstance(since, int) else None,
        until=until if isinstance(until, int) else None,
        include_reports=include_reports,
    )


FiltersDep = Annotated[ThemeFilters, Depends(theme_filters)]

# --------------------------------------------------------------------------- data functions


def taxonomy_data(request: Request) -> list[ThemeOut]:
    """Every theme of the configured taxonomy (labels only when the full taxonomy cannot load)."""
    try:
        from kb.services.tagging import get_taxonomy

        taxonomy = get_taxonomy(request.app.state.settings)
    except Exception:  # noqa: BLE001 - the label list still answers "which themes exist"
        return [ThemeOut(id=k, label=v) for k, v in sorted(theme_labels().items())]
    return [
        ThemeOut(id=t.id, label=t.label, group=t.group or None, description=t.description or None)
        for t in taxonomy.themes.values()
    ]


def recurrence_data(session: Session, principal: Principal, filters: ThemeFilters) -> Recurrence:
    """The recurrence table over the reviews ``principal`` may see."""
    data = theme_recurrence(session, principal=principal, **asdict(filters))
    return Recurrence.model_validate(data)


def matrix_data(session: Session, principal: Principal, filters: ThemeFilters) -> Matrix:
    """Reviews per theme per year over the reviews ``principal`` may see."""
    data = theme_year_matrix(session, principal=principal, **asdict(filters))
    return Matrix.model_validate(data)


def export_bytes(
    data: BaseModel, fmt: str, *, names: dict[int, str] | None = None, scope: str = ""
) -> bytes:
    """The table or matrix as a .csv or .xlsx file (written by the service, read back)."""
    with tempfile.TemporaryDirectory(prefix="kb-export-") as tmp:
        path = export_recurrence(
            data.model_dump(), Path(tmp) / f"export.{fmt}", names=names, scope=scope
        )
        return path.read_bytes()


def export_scope(filters: ThemeFilters) -> str:
    """The filters in words, for an export's title ("type lcspr; since 2019")."""
    words = {"include_reports": lambda _: "annual reports counted"}
    return "; ".join(
        words[k](v) if k in words else f"{k} {v}" for k, v in filters.query().items()
    )


def download(content: bytes, fmt: str, name: str) -> Response:
    """A file download with a fixed, harmless file name."""
    return Response(
        content,
        media_type=MEDIA[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'},
    )


# --------------------------------------------------------------------------- routes


@router.get("/themes")
def read_themes(request: Request, principal: CurrentPrincipal) -> list[ThemeOut]:
    """The taxonomy: every theme id with its label, group and description."""
    return taxonomy_data(request)


@router.get("/themes/recurrence")
def read_recurrence(
    session: SessionDep, principal: CurrentPrincipal, filters: FiltersDep
) -> Recurrence:
    """In how many of the reviews you may see each theme appears (N of M), most frequent first."""
    return recurrence_data(session, principal, filters)


@router.get("/themes/matrix")
def read_matrix(session: SessionDep, principal: CurrentPrincipal, filters: FiltersDep) -> Matrix:
    """Reviews per theme per year (quiet years as zeros; ``totals`` = reviews per year)."""
    return matrix_data(session, principal, filters)


def _export_route(kind: str, fmt: str) -> None:
    data_function = recurrence_data if kind == "recurrence" else matrix_data

    def export(session: SessionDep, principal: CurrentPrincipal, filters: FiltersDep) -> Response:
        data = data_function(session, principal, filters)
        ids = sorted({i for t in getattr(data, "themes", []) for i in getattr(t, "review_ids", [])})
        names = review_pseudonyms(session, principal=principal, review_ids=ids)
        content = export_bytes(data, fmt, names=names, scope=export_scope(filters))
        return download(content, fmt, kind)

    export.__doc__ = f"The {kind} table as a .{fmt} file (the reviews you may see)."
    router.add_api_route(
        f"/themes/{kind}.{fmt}",
        export,
        methods=["GET"],
        name=f"themes_{kind}_{fmt}",
        response_class=Response,
        responses={200: {"content": {MEDIA[fmt].split(";")[0]: {}}}},
    )


for _kind in ("recurrence", "matrix"):
    for _fmt in ("csv", "xlsx"):
        _export_route(_kind, _fmt)


def export_links(filters: ThemeFilters) -> dict[str, str]:
    """Download links for the dashboard, carrying its filters."""
    query = urlencode(filters.query())
    suffix = f"?{query}" if query else ""
    return {
        f"{kind}_{fmt}": f"/api/themes/{kind}.{fmt}{suffix}"
        for kind in ("recurrence", "matrix")
        for fmt in ("csv", "xlsx")
    }

"""Theme recurrence: in how many reviews does each theme appear, overall and year by year.

Counts are of *cases* of review kinds (SCR, LCSPR, rapid review): a child reviewed twice (a
rapid review summarised in an annual report, then the LCSPR) counts once, with the themes of
all its documents (kb/services/cases.py); ``review_ids`` still lists every document.

This is the scrutineer's table ("information sharing in 13 of 13 reviews"). A review has a
theme when any of its passages carries a tag of it that a person has not rejected; suggested
tags count, so the table is useful before anyone has reviewed every tag. Annual reports are
left out by default because their case summaries are counted as reviews of their own, and the
report itself would count every theme a second time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, func
from sqlmodel import Session, col, select

from kb.models import REVIEW_KINDS, Partnership, Review, ReviewType, TagStatus, ThemeTag
from kb.services.access import Principal, visibility_key, visible_reviews
from kb.services.cache import RESULTS, data_fingerprint
from kb.services.cases import case_keys
from kb.services.national import load_reference
from kb.services.readable_export import Percent, Table, csv_bytes, xlsx_bytes
from kb.services.tracker import theme_labels


def review_filter(
    principal: Principal,
    *,
    review_type: ReviewType | str | None = None,
    partnership: str | None = None,
    since: int | None = None,
    until: int | None = None,
    include_reports: bool = False,
) -> list[ColumnElement[bool]]:
    """Conditions on ``Review`` (joined to Partnership) shared by the table and the matrix."""
    conditions = [visible_reviews(principal)]
    if review_type is not None:
        conditions.append(col(Review.type) == ReviewType(review_type))
    elif not include_reports:
        conditions.append(col(Review.type).in_(sorted(REVIEW_KINDS)))
    if partnership:
        conditions.append(func.lower(Partnership.name) == partnership.strip().lower())
    if since is not None:
        conditions.append(col(Review.year) >= since)
    if until is not None:
        conditions.append(col(Review.year) <= until)
    return conditions


def _reviews(session: Session, conditions: list[ColumnElement[bool]]) -> dict[int, int | None]:
    """Review id → year of every review the conditions select."""
    rows = session.exec(
        select(Review.id, Review.year)
        .join(Partnership, col(Review.partnership_id) == Partnership.id, isouter=True)
        .where(*conditions)
    ).all()
    return {rid: year for rid, year in rows}


def reviews_by_theme(session: Session, review_ids: list[int]) -> dict[str, set[int]]:
    """Theme id → reviews having at least one non-rejected tag of it."""
    rows = session.exec(
        select(ThemeTag.theme_id, ThemeTag.review_id)
        .where(col(ThemeTag.review_id).in_(review_ids), ThemeTag.status != TagStatus.REJECTED)
        .distinct()
    ).all()
    themes: dict[str, set[int]] = defaultdict(set)
    for theme_id, review_id in rows:
        themes[theme_id].add(review_id)
    return themes


def review_themes(
    session: Session, *, principal: Principal, include_reports: bool = False
) -> tuple[dict[int, int | None], dict[str, set[int]]]:
    """The visible reviews (id → year) and, per theme, the reviews having it: the raw material
    signals share with the table."""
    reviews = _reviews(session, review_filter(principal, include_reports=include_reports))
    return reviews, reviews_by_theme(session, list(reviews))


def _cached(
    session: Session,
    compute: Callable[..., dict[str, Any]],
    *,
    principal: Principal,
    review_type: ReviewType | str | None,
    partnership: str | None,
    since: int | None,
    until: int | None,
    include_reports: bool,
) -> dict[str, Any]:
    """``compute`` recomputed only when the data changed, and never shared between principals
    who may see different reviews (the visibility key is part of the cache key)."""
    filters: dict[str, Any] = {
        "review_type": ReviewType(review_type) if review_type is not None else None,
        "partnership": partnership.strip().lower() if partnership else None,
        "since": since,
        "until": until,
        "include_reports": include_reports,
    }
    key = (
        compute.__name__,
        visibility_key(principal),
        tuple(filters.items()),
        tuple(sorted(theme_labels().items())),
        data_fingerprint(session),
    )
    return RESULTS.get_or_compute(
        session, key, lambda: compute(session, principal=principal, **filters)
    )


def theme_recurrence(
    session: Session,
    *,
    principal: Principal,
    review_type: ReviewType | str | None = None,
    partnership: str | None = None,
    since: int | None = None,
    until: int | None = None,
    include_reports: bool = False,
) -> dict[str, Any]:
    """Cached :func:`_theme_recurrence` (see its docstring)."""
    return _cached(
        session,
        _theme_recurrence,
        principal=principal,
        review_type=review_type,
        partnership=partnership,
        since=since,
        until=until,
        include_reports=include_reports,
    )


def _theme_recurrence(
    session: Session,
    *,
    principal: Principal,
    review_type: ReviewType | str | None = None,
    partnership: str | None = None,
    since: int | None = None,
    until: int | None = None,
    include_reports: bool = False,
) -> dict[str, Any]:
    """``{"total_reviews": M, "themes": [{id, label, reviews: N, share, review_ids}]}``, most
    frequent first (ties by id); ``share`` is N / M rounded to 4 places."""
    conditions = review_filter(
        principal,
        review_type=review_type,
        partnership=partnership,
        since=since,
        until=until,
        include_reports=include_reports,
    )
    reviews = _reviews(session, conditions)
    themes = reviews_by_theme(session, list(reviews))
    cases = case_keys(session, reviews)
    labels = theme_labels()
    total = len(set(cases.values()))
    rows = [
        {
            "id": theme_id,
            "label": labels.get(theme_id, theme_id),
            "reviews": len({cases[rid] for rid in ids}),
            "share": round(len({cases[rid] for rid in ids}) / total, 4) if total else 0.0,
            "review_ids": sorted(ids),
        }
        for theme_id, ids in themes.items()
    ]
    rows.sort(key=lambda row: (-row["reviews"], row["id"]))
    return {"total_reviews": total, "themes": rows}


def theme_year_matrix(
    session: Session,
    *,
    principal: Principal,
    review_type: ReviewType | str | None = None,
    partnership: str | None = None,
    since: int | None = None,
    until: int | None = None,
    include_reports: bool = False,
) -> dict[str, Any]:
    """Cached :func:`_theme_year_matrix` (see its docstring)."""
    return _cached(
        session,
        _theme_year_matrix,
        principal=principal,
        review_type=review_type,
        partnership=partnership,
        since=since,
        until=until,
        include_reports=include_reports,
    )


def _theme_year_matrix(
    session: Session,
    *,
    principal: Principal,
    review_type: ReviewType | str | None = None,
    partnership: str | None = None,
    since: int | None = None,
    until: int | None = None,
    include_reports: bool = False,
) -> dict[str, Any]:
    """Reviews per theme per year: ``{"years", "totals", "themes": [{id, label, counts}]}``.

    Years run without gaps from the first to the last year with a dated review, so a chart
    shows quiet years as zeros; ``totals`` (reviews per year) lets a reader turn counts into
    shares. Reviews without a year are left out.
    """
    conditions = review_filter(
        principal,
        review_type=review_type,
        partnership=partnership,
        since=since,
        until=until,
        include_reports=include_reports,
    )
    reviews = {rid: y for rid, y in _reviews(session, conditions).items() if y is not None}
    if not reviews:
        return {"years": [], "totals": [], "themes": []}
    cases = case_keys(session, reviews)
    case_year: dict[tuple[str, int], int] = {}
    for rid, year in reviews.items():  # a case counts once, in its earliest year
        key = cases[rid]
        case_year[key] = min(year, case_year.get(key, year))  # type: ignore[type-var]
    years = list(range(min(case_year.values()), max(case_year.values()) + 1))
    index = {year: i for i, year in enumerate(years)}
    totals = [0] * len(years)
    for year in case_year.values():
        totals[index[year]] += 1
    labels = theme_labels()
    rows = []
    for theme_id, ids in reviews_by_theme(session, list(reviews)).items():
        counts = [0] * len(years)
        for key in {cases[rid] for rid in ids}:
            counts[index[case_year[key]]] += 1
        rows.append({"id": theme_id, "label": labels.get(theme_id, theme_id), "counts": counts})
    rows.sort(key=lambda row: (-sum(row["counts"]), row["id"]))
    return {"years": years, "totals": totals, "themes": rows}


def recurrence_table(
    data: dict[str, Any], *, names: dict[int, str] | None = None, scope: str = ""
) -> Table:
    """The recurrence table or the theme × year matrix as a readable table.

    Reviews are named by pseudonym (``names``: review id → pseudonym; ids never appear),
    shares are percentages, and the title says what is counted and over which reviews.
    The theme id comes last, for whoever joins the file to other data.
    """
    suffix = f" ({scope})" if scope else ""
    if "years" in data:
        dated = sum(data.get("totals", []))
        rows: list[list[Any]] = []
        for t in data["themes"]:
            total = sum(t["counts"])
            share = Percent(total / dated) if dated else None
            rows.append([t["label"], *t["counts"], total, share, t["id"]])
        rows.append(["All reviews", *data.get("totals", []), dated, None, ""])
        return Table(
            name="Themes by year",
            title=f"Reviews per theme per year, {dated} dated reviews{suffix}",
            columns=["Theme", *[str(y) for y in data["years"]], "Total", "Share", "Theme id"],
            rows=rows,
        )
    names = names or {}
    total = data["total_reviews"]
    reference = load_reference()
    return Table(
        name="Recurrence",
        title=f"In how many reviews each theme appears, of {total} reviews{suffix}",
        columns=[
            "Theme", "Reviews", "Of", "Share", "National figure", "National source",
            "Which reviews", "Theme id",
        ],
        rows=[
            [
                t["label"],
                t["reviews"],
                total,
                Percent(t["share"]),
                "; ".join(f"{f.measure} {f.shown()}" for f in reference.get(t["id"], [])),
                "; ".join(
                    dict.fromkeys(
                        f"{f.source.citation()}; {f.source.period}"
                        for f in reference.get(t["id"], [])
                    )
                ),
                "; ".join(sorted(names.get(i, "(not shown)") for i in t["review_ids"])),
                t["id"],
            ]
            for t in data["themes"]
        ],
    )  # fmt: skip


def export_recurrence(
    data: dict[str, Any], path: Path, *, names: dict[int, str] | None = None, scope: str = ""
) -> Path:
    """Write the table (or matrix) to CSV or XLSX, chosen by ``path``'s suffix."""
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("csv", "xlsx"):
        raise ValueError(f"cannot export to {path.name}: use .csv or .xlsx")
    path.parent.mkdir(parents=True, exist_ok=True)
    table = recurrence_table(data, names=names, scope=scope)
    path.write_bytes(csv_bytes(table) if fmt == "csv" else xlsx_bytes([table]))
    return path


def reference_date(review: Review) -> date | None:
    """When a review's events happened: incident date, else review date, else publication."""
    return review.incident_date or review.review_date or review.publication_date

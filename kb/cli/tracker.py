"""``kb themes`` and ``kb tracker``: recurrence tables, the action tracker and its signals.

The CLI is the local operator on their own database, so it acts as ``Principal.system()``;
the same services behind the API apply the caller's visibility instead.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from kb.cli.common import console, fail, print_json, ready_engine
from kb.db import session_scope
from kb.models import ActionStatus, ReviewType
from kb.services.access import Principal
from kb.services.recurrence import export_recurrence, theme_recurrence, theme_year_matrix
from kb.services.reviews import review_pseudonyms
from kb.services.tracker import list_actions, theme_labels
from kb.services.tracker_io import TrackerImportError, export_tracker, import_tracker
from kb.services.tracker_view import TrackerFilter, scrutiny, signals_table, write_signals

themes_app = typer.Typer(help="Theme recurrence across reviews and years.", no_args_is_help=True)
tracker_app = typer.Typer(help="Actions, training and signals.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (a stable contract).")]
TypeOpt = Annotated[ReviewType | None, typer.Option("--type", help="Only reviews of this type.")]
PartnershipOpt = Annotated[str | None, typer.Option(help="Only this partnership's reviews.")]
SinceOpt = Annotated[int | None, typer.Option(help="First year (inclusive).")]
UntilOpt = Annotated[int | None, typer.Option(help="Last year (inclusive).")]
ReportsOpt = Annotated[bool, typer.Option(help="Count annual reports as reviews too.")]


def _query(fn: Callable[..., dict[str, Any]], **filters: Any) -> dict[str, Any]:
    """Run a recurrence query as the command line's system principal (it sees everything)."""
    with session_scope(ready_engine()) as session:
        return fn(session, principal=Principal.system(), **filters)


@themes_app.command("recurrence")
def recurrence(
    type_: TypeOpt = None,
    partnership: PartnershipOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    include_reports: ReportsOpt = False,
    out: Annotated[Path | None, typer.Option(help="Also write the table (.csv or .xlsx).")] = None,
    json_: JsonFlag = False,
) -> None:
    """In how many reviews each theme appears (N of M), most frequent first."""
    data = _query(
        theme_recurrence,
        review_type=type_,
        partnership=partnership,
        since=since,
        until=until,
        include_reports=include_reports,
    )
    _maybe_export(data, out)
    if json_:
        print_json(data)
        return
    table = Table("theme", "label", "reviews", "share", title=f"{data['total_reviews']} reviews")
    for row in data["themes"]:
        table.add_row(
            row["id"],
            row["label"],
            f"{row['reviews']} / {data['total_reviews']}",
            f"{row['share']:.0%}",
        )
    Console().print(table)


def _maybe_export(data: dict[str, Any], out: Path | None) -> None:
    if out is None:
        return
    ids = sorted({i for t in data["themes"] for i in t.get("review_ids", [])})
    with session_scope(ready_engine()) as session:
        names = review_pseudonyms(session, principal=Principal.system(), review_ids=ids)
    try:
        export_recurrence(data, out, names=names)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    console.print(f"written {out}")


@themes_app.command("matrix")
def matrix(
    type_: TypeOpt = None,
    partnership: PartnershipOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    include_reports: ReportsOpt = False,
    out: Annotated[Path | None, typer.Option(help="Also write the matrix (.csv or .xlsx).")] = None,
    json_: JsonFlag = False,
) -> None:
    """Reviews per theme per year."""
    data = _query(
        theme_year_matrix,
        review_type=type_,
        partnership=partnership,
        since=since,
        until=until,
        include_reports=include_reports,
    )
    _maybe_export(data, out)
    if json_:
        print_json(data)
        return
    table = Table("theme", *[str(y) for y in data["years"]])
    for row in data["themes"]:
        table.add_row(row["label"], *[str(c or "·") for c in row["counts"]])
    table.add_row("[bold]reviews[/bold]", *[str(t) for t in data["totals"]])
    Console().print(table)


@tracker_app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="Tracker .xlsx, a CSV, or a folder of CSVs.")],
    json_: JsonFlag = False,
) -> None:
    """Import (upsert by Ref) actions, training and sessions; all or nothing."""
    if not path.exists():
        raise fail(f"{path} does not exist")
    try:
        with session_scope(ready_engine()) as session:
            counts = import_tracker(session, principal=Principal.system(), path=path)
    except TrackerImportError as exc:
        for problem in exc.problems:
            console.print(f"  {problem}", highlight=False, markup=False)
        raise fail(f"{len(exc.problems)} problem(s) in {path.name}; nothing was imported") from exc
    if json_:
        print_json(counts)
        return
    for name, done in counts.items():
        console.print(f"{name}: {done['created']} created, {done['updated']} updated")


@tracker_app.command("export")
def export(
    path: Annotated[Path, typer.Argument(help="Write to .xlsx, or .csv (plus sibling CSVs).")],
) -> None:
    """Export the tracker in the import layout (docs/TRACKER_FORMAT.md)."""
    with session_scope(ready_engine()) as session:
        written = export_tracker(session, principal=Principal.system(), path=path)
    for file in written:
        console.print(f"written {file}")


@tracker_app.command("signals")
def signals_(
    out: Annotated[
        Path | None, typer.Option(help="Also write the signals to a .xlsx or .csv file.")
    ] = None,
    theme: Annotated[str | None, typer.Option(help="Only this theme (id).")] = None,
    partnership: Annotated[str | None, typer.Option(help="Only this partnership.")] = None,
    case: Annotated[
        str | None,
        typer.Option(help="Only this case: its id, r<review id>, or a review pseudonym."),
    ] = None,
    status: Annotated[
        ActionStatus | None, typer.Option(help="Only signals about actions in this status.")
    ] = None,
    overdue: Annotated[bool, typer.Option(help="Only signals about overdue actions.")] = False,
    impact: Annotated[
        str | None, typer.Option(help="with / without: completed actions with(out) evidence.")
    ] = None,
    json_: JsonFlag = False,
) -> None:
    """What needs attention: recurrence after action, déjà vu, rising themes, overdue, no impact."""
    from kb.config import get_settings

    if impact not in (None, "with", "without"):
        raise fail(f"--impact must be 'with' or 'without', not {impact!r}")
    if out is not None and out.suffix.lower() not in (".csv", ".xlsx"):
        raise fail(f"cannot export signals to {out.name}: use .csv or .xlsx")
    f = TrackerFilter(theme, partnership, case, status, overdue, impact)  # type: ignore[arg-type]
    threshold = get_settings().similarity_threshold
    with session_scope(ready_engine()) as session:
        data = scrutiny(session, Principal.system(), f, similarity_threshold=threshold)
    if data["case_unknown"]:
        raise fail(f"--case {case!r}: no such case")
    found = data["signals"]
    if out is not None:
        write_signals(signals_table(found, theme_labels(), f, data["today"]), out)
    if json_:
        print_json(found)
        return
    table = Table("kind", "theme", "summary", show_lines=True)
    for item in found:
        table.add_row(item["kind"], item["theme"] or "", item["summary"])
    Console().print(table)
    if out is not None:
        console.print(f"written {out}")


@tracker_app.command("actions")
def actions(json_: JsonFlag = False) -> None:
    """List tracked actions."""
    with session_scope(ready_engine()) as session:
        rows = [
            a.model_dump(mode="json") for a in list_actions(session, principal=Principal.system())
        ]
    if json_:
        print_json(rows)
        return
    table = Table("ref", "agency", "action", "due", "status", "completed", "impact", "themes")
    for a in rows:
        table.add_row(
            a["ref"],
            a["agency"] or "",
            a["description"],
            a["due_date"] or "",
            a["status"],
            a["completed_date"] or "",
            a["impact_rating"] or "",
            ", ".join(a["theme_ids"]),
        )
    Console().print(table)

"""``kb init``, ``kb ingest`` and ``kb reviews``: getting documents in and looking at them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from corpus.metadata import ManifestError, load_manifest
from kb.cli.common import console, fail, print_json, progress_bar, ready_engine, shown
from kb.config import get_settings
from kb.db import session_scope, wait_longer_for_locks
from kb.models import ReviewStatus, ReviewType, Role
from kb.services.access import Principal
from kb.services.analysis import passage_hook
from kb.services.errors import Conflict, Forbidden
from kb.services.ingest import IngestOptions, IngestReport, ingest_paths
from kb.services.reviews import (
    NotFound,
    list_reviews,
    review_detail,
    review_summary,
    set_review_status,
)
from kb.services.uploads import UploadForbidden, check_uploader
from kb.services.users import UnknownUser, partnership_name, principal_named

reviews_app = typer.Typer(help="List and show reviews.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (a stable contract).")]


def init() -> None:
    """Create (or upgrade) the database: KB_DATABASE_URL, default a SQLite file in KB_HOME."""
    engine = ready_engine()
    console.print(f"database ready: {engine.url.render_as_string(hide_password=True)}")


def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to ingest.")],
    manifest: Annotated[
        Path | None, typer.Option(help="CSV or YAML metadata keyed by file name.")
    ] = None,
    partnership: Annotated[str | None, typer.Option(help="Partnership of every file.")] = None,
    type_: Annotated[ReviewType | None, typer.Option("--type", help="Review type.")] = None,
    status: Annotated[ReviewStatus | None, typer.Option(help="Publication status.")] = None,
    tag: Annotated[bool, typer.Option(help="Tag themes (and embed) while ingesting.")] = True,
    as_user: Annotated[
        str | None,
        typer.Option("--as-user", help="Ingest for this user (their rules); default: operator."),
    ] = None,
    json_: JsonFlag = False,
) -> None:
    """Ingest documents (PDF, DOCX, HTML, Markdown, text); exits 1 if any file failed."""
    settings = get_settings()
    # A document being stored by a web upload's job makes this one wait, not fail.
    wait_longer_for_locks(ready_engine(), settings.ingest_lock_wait)
    principal = _ingesting_principal(as_user)
    if principal.role == Role.PANEL:  # a panel member's documents are their partnership's
        with session_scope(ready_engine()) as session:
            partnership = partnership_name(session, principal.partnership_id)
    options = IngestOptions(
        partnership=partnership, review_type=type_, status=status, principal=principal
    )
    manifests = [manifest] if manifest else _manifests_beside(paths)
    try:
        for found in manifests:
            options.manifest.update(load_manifest(found))
    except ManifestError as exc:
        raise fail(str(exc)) from exc
    report = run_ingest(paths, options, tag=tag)
    if json_:
        print_json(report.as_dict())
    else:
        _print_report(report)
    if report.failed:
        raise typer.Exit(1)


def _ingesting_principal(as_user: str | None) -> Principal:
    """The operator (admin) by default; ``--as-user`` applies that user's upload rule."""
    if not as_user:
        return Principal.system()
    with session_scope(ready_engine()) as session:
        try:
            principal = principal_named(session, as_user)
            check_uploader(principal)
        except (UnknownUser, UploadForbidden) as exc:
            raise fail(str(exc)) from exc
    return principal


def run_ingest(paths: list[Path], options: IngestOptions, *, tag: bool = True) -> IngestReport:
    """Ingest with a progress bar; shared by ``kb ingest`` and ``kb demo``."""
    engine = ready_engine()
    hook = passage_hook(get_settings()) if tag else None
    with progress_bar("ingesting") as bar:
        task = bar.add_task("ingesting", total=None, item="")

        def advance(done: int, total: int, path: Path) -> None:
            bar.update(task, completed=done, total=total, item=path.name)

        return ingest_paths(
            engine=engine, paths=paths, options=options, on_passages=hook, progress=advance
        )


def _manifests_beside(paths: list[Path]) -> list[Path]:
    """A folder's own manifest.yaml / manifest.csv applies to the files in it."""
    found = []
    for path in paths:
        for name in ("manifest.yaml", "manifest.yml", "manifest.csv"):
            if path.is_dir() and (path / name).is_file():
                found.append(path / name)
    return found


def _print_report(report: IngestReport) -> None:
    for item in report.ingested:
        console.print(
            f"[green]ingested[/green] {shown(item['path'])} → document {item['document_id']}, "
            f"reviews {item['reviews']}",
            highlight=False,
        )
    for item in report.skipped:
        console.print(
            f"[yellow]skipped[/yellow] {shown(item['path'])}: {shown(item['reason'])}",
            highlight=False,
        )
    for item in report.failed:
        console.print(
            f"[red]failed[/red] {shown(item['path'])}: {shown(item['error'])}", highlight=False
        )
    console.print(
        f"{len(report.ingested)} ingested, {len(report.skipped)} skipped, "
        f"{len(report.failed)} failed"
    )


@reviews_app.command("list")
def reviews_list(json_: JsonFlag = False) -> None:
    """List reviews."""
    with session_scope(ready_engine()) as session:
        rows = [review_summary(r) for r in list_reviews(session, principal=Principal.system())]
    if json_:
        print_json(rows)
        return
    table = Table("id", "type", "pseudonym", "partnership", "year", "status", "passages")
    for row in rows:
        table.add_row(
            *(str(row[k] or "") for k in ("id", "type", "pseudonym", "partnership", "year")),
            row["status"],
            str(row["passages"]),
        )
    Console().print(table)


@reviews_app.command("show")
def reviews_show(review_id: int, json_: JsonFlag = False) -> None:
    """Show one review with its sections and passages."""
    with session_scope(ready_engine()) as session:
        try:
            detail = review_detail(session, principal=Principal.system(), review_id=review_id)
        except NotFound as exc:
            raise fail(str(exc)) from exc
    if json_:
        print_json(detail)
        return
    out = Console()
    out.print(f"[bold]{detail['pseudonym']}[/bold] ({detail['type']}, {detail['status']})")
    for section in detail["sections"]:
        out.print(f"\n[bold underline]{section['title'] or '(untitled)'}[/] [{section['kind']}]")
        for passage in section["passages"]:
            out.print(f"  [{passage['id']}] {passage['text']}", highlight=False, markup=False)


@reviews_app.command("status")
def reviews_status(
    review_id: int,
    status: Annotated[ReviewStatus, typer.Argument(help="The new publication status.")],
    as_user: Annotated[
        str | None,
        typer.Option("--as-user", help="Act as this user (their rules); default: operator."),
    ] = None,
    version: Annotated[int | None, typer.Option(help="Refuse if changed since.")] = None,
    json_: JsonFlag = False,
) -> None:
    """Change a review's publication status (audited; the only way status changes)."""
    with session_scope(ready_engine()) as session:
        try:
            principal = principal_named(session, as_user) if as_user else Principal.system()
            review = set_review_status(
                session,
                principal=principal,
                review_id=review_id,
                status=status,
                expected_version=version,
            )
            out = {"id": review.id, "status": str(review.status), "version": review.version_id}
        except (NotFound, Forbidden, Conflict, UnknownUser) as exc:
            raise fail(str(exc)) from exc
    if json_:
        print_json(out)
    else:
        console.print(f"review {review_id} is now {out['status']}")

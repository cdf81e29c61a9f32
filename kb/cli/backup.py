"""``kb export-all`` and ``kb import-all``: back up and restore the whole knowledge base.

The backup holds unpublished and embargoed reviews and users' password hashes, so the file is
written with mode 0600 and these commands print counts only, never row contents. Both commands
leave an audit event (who exported / restored everything, when, how many rows).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress as Bar
from rich.progress import TaskID

from kb.cli.common import console, fail, print_json, progress_bar, ready_engine
from kb.services.access import Principal
from kb.services.backup import (
    BackupError,
    BackupSummary,
    Progress,
    count_rows,
    export_all,
    import_all,
    read_manifest,
    record_backup_event,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print the counts as JSON (stable).")]


def export_all_command(
    file: Annotated[Path, typer.Argument(help="The backup file to write (a .zip).")],
    embeddings: Annotated[
        bool,
        typer.Option(
            help="Include passage embeddings (--no-embeddings: a smaller file; they are "
            "recomputed on the first search after a restore)."
        ),
    ] = True,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    json_: JsonFlag = False,
) -> None:
    """Write the whole knowledge base to one file (mode 0600: it holds password hashes)."""
    engine = ready_engine()
    total = sum(count_rows(engine).values())
    try:
        with progress_bar("exporting", enabled=not json_) as bar:
            summary = export_all(
                engine,
                file,
                include_embeddings=embeddings,
                overwrite=force,
                progress=_advance(bar, "exporting", total),
            )
    except (BackupError, OSError) as exc:
        raise fail(str(exc)) from exc
    _audit("backup.export", summary)
    if json_:
        print_json(summary.as_json())
        return
    console.print(
        f"exported {summary.rows} rows from {len(summary.tables)} tables to {file} "
        "(mode 0600: it holds unpublished reviews and password hashes, keep it safe)",
        highlight=False,
    )


def import_all_command(
    file: Annotated[Path, typer.Argument(help="A file written by `kb export-all`.")],
    replace: Annotated[
        bool,
        typer.Option("--replace", help="Delete everything in the database and restore the file."),
    ] = False,
    json_: JsonFlag = False,
) -> None:
    """Restore a backup into an empty database (or, with --replace, in place of its contents)."""
    engine = ready_engine()
    try:
        manifest = read_manifest(file)
        total = sum(int(t.get("rows", 0)) for t in manifest.get("tables", []))
        with progress_bar("restoring", enabled=not json_) as bar:
            progress = _advance(bar, "restoring", total)
            summary = import_all(engine, file, replace=replace, progress=progress)
    except BackupError as exc:
        raise fail(str(exc)) from exc
    _audit("backup.import", summary, replaced=replace)
    if json_:
        print_json({**summary.as_json(), "replaced": replace})
        return
    extra = "" if summary.embeddings else "; embeddings will be recomputed on the first search"
    console.print(
        f"restored {summary.rows} rows into {len(summary.tables)} tables from {file}{extra}",
        highlight=False,
    )


def _advance(bar: Bar, description: str, total: int) -> Progress:
    """Advance ``bar`` by table; its task appears with the first rows, so a file refused before
    any row is read leaves no empty bar behind the error."""
    tasks: list[TaskID] = []

    def advance(table: str, rows: int) -> None:
        if not tasks:
            tasks.append(bar.add_task(description, total=total, item=""))
        bar.update(tasks[0], advance=rows, item=table)

    return advance


def _audit(action: str, summary: BackupSummary, *, replaced: bool | None = None) -> None:
    """The operator's backup or restore, audited by the service (as admin "system")."""
    record_backup_event(
        ready_engine(), principal=Principal.system(), action=action, summary=summary,
        replaced=replaced,
    )  # fmt: skip

"""``kb demo``: one command from a fresh checkout to a working tool with fictional data."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated

import typer

from corpus.demo import FILES_DIR, MANIFEST, REALISTIC_DIR, TRACKER
from corpus.metadata import load_manifest
from kb.cli.common import console, ready_engine, shown
from kb.cli.corpus import run_ingest
from kb.config import get_settings, private_file
from kb.db import session_scope
from kb.models import Role
from kb.services.access import Principal
from kb.services.ingest import IngestOptions
from kb.services.tagging import train_model

DEMO_USERS = (
    ("admin", Role.ADMIN, None),
    ("panel", Role.PANEL, "Northmoor Safeguarding Children Partnership"),
    ("viewer", Role.VIEWER, None),
)


def demo(
    serve: Annotated[bool, typer.Option(help="Serve the web app when loaded.")] = True,
    host: Annotated[
        str, typer.Option(help="Address to serve on (loopback by default).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8000,
) -> None:
    """Create the database, load the demo corpus and tracker, create demo logins, serve."""
    engine = ready_engine()
    console.print(f"training the theme model: {train_model(engine)}")
    report = run_ingest([FILES_DIR, REALISTIC_DIR], IngestOptions(manifest=load_manifest(MANIFEST)))
    console.print(
        f"demo corpus: {len(report.ingested)} ingested, {len(report.skipped)} already there, "
        f"{len(report.failed)} failed"
    )
    for item in report.failed:
        console.print(
            f"[red]failed[/red] {shown(item['path'])}: {shown(item['error'])}", highlight=False
        )
    _import_tracker()
    _demo_logins(get_settings().home / "demo-logins.txt")
    if serve:
        from kb.cli.admin import serve as serve_command

        serve_command(host=host, port=port)


def _import_tracker() -> None:
    from kb.services.tracker_io import import_tracker

    if TRACKER.exists():
        with session_scope(ready_engine()) as session:
            result = import_tracker(session, principal=Principal.system(), path=TRACKER)
        console.print(f"demo tracker imported: {result}")


def _demo_logins(path: Path) -> None:
    """Create the demo users once; their random passwords are kept in KB_HOME (mode 0600)."""
    from kb.services.users import create_user, find_user

    if path.exists():
        console.print(f"demo logins: see {path}")
        return
    lines = []
    with session_scope(ready_engine()) as session:
        for username, role, partnership in DEMO_USERS:
            if find_user(session, username) is not None:
                continue
            password = secrets.token_urlsafe(9)
            create_user(
                session, username=username, password=password, role=role, partnership=partnership
            )
            lines.append(f"{username}\t{password}\t{role.value}")
    private_file(path)  # passwords: this user only
    path.write_text("username\tpassword\trole\n" + "\n".join(lines) + "\n")
    console.print(f"demo logins (also in {path}):")
    for line in lines:
        console.print("  " + line.replace("\t", "  "), highlight=False)

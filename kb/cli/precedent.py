"""``kb precedent``: prior cases, likely themes, what was tried and questions for a new incident."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from kb.cli.common import fail, print_json, ready_engine
from kb.db import session_scope
from kb.services.access import Principal
from kb.services.precedent import PrecedentError, precedent
from kb.services.precedent_export import read_notification, to_docx
from kb.services.tagging import get_tagger
from kb.services.users import principal_named


def precedent_command(
    source: Annotated[
        str,
        typer.Argument(
            help="The notification: a PDF/DOCX/HTML/Markdown/text file, or - for stdin."
        ),
    ],
    as_user: Annotated[
        str | None, typer.Option("--as-user", help="As this user (their visibility).")
    ] = None,
    docx: Annotated[
        Path | None, typer.Option("--docx", help="Also write the answer to this DOCX file.")
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Which prior cases look like this incident, which themes it probably carries, what was
    tried for them (and whether they recurred), and questions for the rapid review. Nothing
    read is stored."""
    try:
        if source == "-":
            text, name = sys.stdin.read(), "standard input"
        else:
            path = Path(source)
            if not path.is_file():
                raise fail(f"{source}: no such file")
            text, name = read_notification(path.read_bytes(), path.name), path.name
        with session_scope(ready_engine()) as session:
            principal = principal_named(session, as_user) if as_user else Principal.system()
            result = precedent(
                session, principal=principal, text=text, tagger=get_tagger(), source=name
            )
    except PrecedentError as exc:
        raise fail(str(exc)) from exc
    if docx is not None:
        docx.write_bytes(to_docx(result))
    if json_:
        print_json(result)
        return
    _print(result)


def _print(result: dict) -> None:  # type: ignore[type-arg]
    out = Console(highlight=False)
    if result.get("message"):
        out.print(result["message"], markup=False)
    out.print("[bold]Themes it probably carries[/bold]")
    for theme in result["themes"]:
        out.print(f"  {theme['label']}: “{theme['evidence']}”", markup=False)
    out.print("[bold]Prior cases most like it[/bold]")
    for case in result["cases"]:
        shared = ", ".join(case["shared_themes"]) or "no shared theme"
        out.print(f"  {case['title']} ({case['score']:.2f}; {shared})", markup=False)
    out.print("[bold]What was tried[/bold]")
    for row in result["tried"]:
        again = "recurred after" if row["recurred_after"] else "not seen again"
        out.print(
            f"  {row['theme']}: {row['ref']} {row['description']} — {row['status']}, "
            f"impact {row['impact_rating'] or 'not rated'}, {again}",
            markup=False,
        )
    out.print("[bold]Questions[/bold]")
    for question in result["questions"]:
        out.print(f"  - {question}", markup=False)

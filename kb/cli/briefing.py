"""``kb briefing``: a 7-minute briefing on a theme or a review, printed, exported or saved."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from kb.cli.common import console, fail, print_json, ready_engine
from kb.db import session_scope
from kb.services.access import Principal
from kb.services.briefing_export import SUFFIXES, export, view_of
from kb.services.briefing_rules import record_export
from kb.services.briefings import (
    BriefingDraft,
    InvalidBriefing,
    NotFound,
    build_briefing,
    cli_json,
    save_briefing,
)


def briefing(
    theme: Annotated[str | None, typer.Option("--theme", help="Theme id, e.g. hidden-men.")] = None,
    review: Annotated[int | None, typer.Option("--review", help="Review id.")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the briefing to FILE.html, .docx or .pdf.")
    ] = None,
    include_restricted: Annotated[
        bool,
        typer.Option(
            "--include-restricted",
            help="Also use unpublished and embargoed reviews (the briefing is marked RESTRICTED).",
        ),
    ] = False,
    save: Annotated[bool, typer.Option("--save", help="Save the draft for editing.")] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON (a stable contract).")] = False,
) -> None:
    """Build a 7-minute briefing (seven numbered sections, extractive and cited).

    Published reviews only unless --include-restricted is given, even for the local operator.
    """
    if (theme is None) == (review is None):
        raise fail("give exactly one of --theme or --review", code=2)
    if out is not None and out.suffix.lower() not in SUFFIXES:
        raise fail(escape(f"cannot write '{out.name}': use .html, .docx or .pdf"))
    principal = Principal.system()
    with session_scope(ready_engine()) as session:
        try:
            draft = build_briefing(
                session,
                principal=principal,
                theme_id=theme,
                review_id=review,
                include_restricted=include_restricted,
            )
        except (NotFound, InvalidBriefing) as exc:
            raise fail(escape(str(exc))) from exc  # ids typed by the user are not markup
        saved_id = save_briefing(session, principal=principal, draft=draft).id if save else None
        written = export(draft, out) if out is not None else None
        if out is not None:
            record_export(
                session,
                principal=principal,
                briefing_id=saved_id,
                fmt=out.suffix.lower().lstrip("."),
                restricted=draft.restricted,
                via="cli",
            )
    if draft.restricted:
        console.print("[bold red]RESTRICTED[/]: this briefing quotes unpublished review material")
    if saved_id is not None:
        console.print(f"saved briefing {saved_id}")
    if out is not None:
        console.print(f"wrote {written}", highlight=False)
    if json_:
        print_json(cli_json(draft))
    elif out is None:
        _print(draft)


def _print(draft: BriefingDraft) -> None:
    """A readable plain rendering on stdout (markup off: review text is not rich markup)."""
    view = view_of(draft)
    out = Console()
    if view.marking:
        out.print(view.marking, style="bold red", markup=False, highlight=False)
    out.print(view.title, style="bold", markup=False, highlight=False)
    for section in view.sections:
        out.print(f"\n{section.number}. {section.heading}", style="bold underline", markup=False)
        for item in section.items:
            cite = f" ({item.cite})" if item.cite else ""
            out.print(f"  • {item.text}{cite}", markup=False, highlight=False)

"""``kb search``: find prior learning by meaning, theme and filters."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from kb.cli.common import fail, print_json, ready_engine
from kb.db import session_scope
from kb.models import AgeBand, ReviewStatus, ReviewType
from kb.services.access import Principal
from kb.services.reviews import NotFound
from kb.services.search import SearchFilters, group_by_review, more_like_this, search
from kb.services.users import principal_named


def search_command(
    query: Annotated[str, typer.Argument(help="Words, or a whole paragraph from a new case.")] = "",
    theme: Annotated[
        list[str] | None, typer.Option("--theme", help="Theme id (repeatable).")
    ] = None,
    type_: Annotated[ReviewType | None, typer.Option("--type", help="Review type.")] = None,
    partnership: Annotated[str | None, typer.Option(help="Partnership name.")] = None,
    since: Annotated[int | None, typer.Option(help="From this year.")] = None,
    until: Annotated[int | None, typer.Option(help="Up to this year.")] = None,
    section: Annotated[str | None, typer.Option(help="Section kind, e.g. findings.")] = None,
    age_band: Annotated[AgeBand | None, typer.Option(help="Child's age band.")] = None,
    status: Annotated[ReviewStatus | None, typer.Option(help="Publication status.")] = None,
    top: Annotated[int, typer.Option(help="How many passages.")] = 10,
    mode: Annotated[str, typer.Option(help="hybrid, bm25 or dense.")] = "hybrid",
    like: Annotated[int | None, typer.Option(help="More like this passage id.")] = None,
    as_user: Annotated[
        str | None, typer.Option("--as-user", help="Search as this user (their visibility).")
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Search passages of all reviews (hybrid BM25 + embeddings), best first."""
    if mode not in ("hybrid", "bm25", "dense"):
        raise fail(f"--mode must be hybrid, bm25 or dense, not {mode!r}")
    if not query and like is None:
        raise fail("give a QUERY or --like PASSAGE_ID")
    filters = SearchFilters(
        themes=theme or [],
        review_type=type_,
        partnership=partnership,
        since=since,
        until=until,
        section_kind=section,
        age_band=age_band,
        status=status,
    )
    with session_scope(ready_engine()) as session:
        principal = principal_named(session, as_user) if as_user else Principal.system()
        try:
            if like is not None:
                hits = more_like_this(
                    session, principal=principal, passage_id=like, filters=filters, top_k=top
                )
            else:
                hits = search(
                    session, principal=principal, query=query, filters=filters, top_k=top, mode=mode
                )  # type: ignore[arg-type]
        except NotFound as exc:
            raise fail(str(exc)) from exc
    if json_:
        print_json([h.as_dict() for h in hits])
        return
    out = Console()
    for group in group_by_review(hits):
        out.print(f"\n[bold]{group['review_title']}[/bold] (review {group['review_id']})")
        for hit in group["hits"]:
            out.print(f"  [dim]{hit.score:.4f} · {hit.section} · passage {hit.passage_id}[/dim]")
            out.print(f"  {hit.snippet}", markup=False, highlight=False)
            if hit.themes:
                out.print(f"  [cyan]{', '.join(hit.themes)}[/cyan]")


models_app = typer.Typer(
    help="The embedding model: prepare it ahead of first use.", no_args_is_help=True
)


def models_export(
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Export the bundled model to its int8 ONNX file now (a build step), so the first ingest or
    search does not pay for it. Prints the backend in use and the model id stored with vectors."""
    from kb.services.embedding import embedder_for

    embedder = embedder_for()
    result = {"backend": embedder.backend, "model_id": embedder.model_id}
    if json_:
        print_json(result)
    else:
        Console().print(f"{result['backend']}  {result['model_id']}", highlight=False)


models_app.command("export")(models_export)

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
from kb.services.search import (
    SearchError,
    SearchFilters,
    check_search,
    more_like_this,
    search,
)
from kb.services.search_hit import SearchHit
from kb.services.search_learning import group_by_case
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
    role: Annotated[
        list[str] | None,
        typer.Option("--role", help="Passage role (repeatable), e.g. finding, recommendation."),
    ] = None,
    order: Annotated[
        str | None,
        typer.Option(help="relevance or learning (default: learning for a pasted paragraph)."),
    ] = None,
    as_user: Annotated[
        str | None, typer.Option("--as-user", help="Search as this user (their visibility).")
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Search passages of all reviews (hybrid BM25 + embeddings), best first."""
    if mode not in ("hybrid", "bm25", "dense"):
        raise fail(f"--mode must be hybrid, bm25 or dense, not {mode!r}")
    try:  # the API's rule: same limits, same messages
        check_search(
            query=query,
            like=like,
            themes=theme or [],
            since=since,
            until=until,
            top=top,
            known_themes=_known_themes(),
            roles=role or [],
            order=order,
        )
    except SearchError as exc:
        raise fail(str(exc)) from exc
    filters = SearchFilters(
        themes=theme or [],
        review_type=type_,
        partnership=partnership,
        since=since,
        until=until,
        section_kind=section,
        age_band=age_band,
        status=status,
        roles=role or [],
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
                    session,
                    principal=principal,
                    query=query,
                    filters=filters,
                    top_k=top,
                    mode=mode,  # type: ignore[arg-type]
                    order=order,  # type: ignore[arg-type]
                )
        except NotFound as exc:
            raise fail(str(exc)) from exc
    if json_:
        print_json([h.as_dict() for h in hits])
        return
    _print_hits(hits)


def _print_hits(hits: list[SearchHit]) -> None:
    """Hits for a terminal, grouped by case, each with the actions answering it."""
    out = Console()
    if not hits:
        out.print("No close match: nothing you may see is close enough to this query.")
        return
    for group in group_by_case(hits):
        out.print(f"\n[bold]{group['label']}[/bold] (reviews {group['review_ids']})")
        for hit in group["hits"]:
            match = f"match {hit.similarity:.2f} · " if hit.similarity is not None else ""
            out.print(
                f"  [dim]{match}{hit.role} · {hit.section} · passage {hit.passage_id}[/dim]",
                markup=True,
                highlight=False,
            )
            out.print(f"  {hit.snippet}", markup=False, highlight=False)
            if hit.themes:
                out.print(f"  [cyan]{', '.join(hit.themes)}[/cyan]")
            for action in hit.actions:
                impact = f", impact {action['impact_rating']}" if action["impact_rating"] else ""
                out.print(
                    f"  → {action['ref']}: {action['description']} ({action['status']}{impact})",
                    markup=False,
                    highlight=False,
                )


def _known_themes() -> dict[str, str]:
    """Theme id → label of the configured taxonomy (unknown theme ids are refused)."""
    from kb.config import get_settings
    from kb.services.tagging import get_taxonomy

    taxonomy = get_taxonomy(get_settings())
    return {theme_id: theme.label for theme_id, theme in taxonomy.themes.items()}


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

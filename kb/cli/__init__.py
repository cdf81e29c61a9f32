"""The ``kb`` command line: every capability of the knowledge base from a terminal."""

from __future__ import annotations

import logging

import typer

from kb.cli import admin, briefing, corpus, demo, search, themes, tracker
from kb.config import get_settings

app = typer.Typer(
    help="Safeguarding learning knowledge base: ingest reviews, tag themes, search, track.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("init")(corpus.init)
app.command("ingest")(corpus.ingest)
app.add_typer(corpus.reviews_app, name="reviews")
app.command("tag")(themes.tag)
app.add_typer(themes.tags_app, name="tags")
app.add_typer(themes.eval_app, name="eval")
app.command("retag")(themes.retag)
app.command("train")(themes.train)
app.command("search")(search.search_command)
app.command("demo")(demo.demo)
app.add_typer(tracker.tracker_app, name="tracker")
app.add_typer(tracker.themes_app, name="themes")
app.command("briefing")(briefing.briefing)
app.add_typer(admin.users_app, name="users")
app.command("serve")(admin.serve)


@app.callback()
def _configure() -> None:
    """Logging to stderr at KB_LOG_LEVEL, so stdout stays clean for --json."""
    logging.basicConfig(level=get_settings().log_level.upper(), format="%(levelname)s %(message)s")

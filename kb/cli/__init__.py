"""The ``kb`` command line: every capability of the knowledge base from a terminal."""

from __future__ import annotations

import logging

import typer

from kb.cli import (  # review_edits adds its commands to reviews_app
    admin,
    backup,
    briefing,
    corpus,
    demo,
    precedent,
    review_edits,  # noqa: F401
    search,
    themes,
    tracker,
)
from kb.config import get_settings

app = typer.Typer(
    help="Safeguarding learning knowledge base: ingest reviews, tag themes, search, track.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("init")(corpus.init)
app.command("ingest")(corpus.ingest)
app.add_typer(corpus.reviews_app, name="reviews")  # + review_edits: role, set-type, link
app.command("tag")(themes.tag)
app.add_typer(themes.tags_app, name="tags")
app.add_typer(themes.eval_app, name="eval")
app.command("retag")(themes.retag)
app.command("train")(themes.train)
app.command("search")(search.search_command)
app.add_typer(search.models_app, name="models")
app.command("demo")(demo.demo)
app.add_typer(tracker.tracker_app, name="tracker")
app.add_typer(tracker.themes_app, name="themes")
app.command("briefing")(briefing.briefing)
app.command("precedent")(precedent.precedent_command)
app.add_typer(admin.users_app, name="users")
app.command("serve")(admin.serve)
app.command("worker")(admin.worker)
app.command("export-all")(backup.export_all_command)
app.command("import-all")(backup.import_all_command)


@app.callback()
def _configure() -> None:
    """Logging to stderr at KB_LOG_LEVEL, so stdout stays clean for --json."""
    level = get_settings().log_level.upper()
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # Libraries narrate their own start-up at INFO; only their warnings matter to a user.
    for noisy in ("spacy", "alembic", "sentence_transformers", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))

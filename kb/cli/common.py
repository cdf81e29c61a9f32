"""What every ``kb`` command shares: JSON output, the engine, progress bars, errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy.engine import Engine

from kb.db import get_engine, init_db

#: Messages go to stderr unwrapped: an error naming a long path stays one greppable line.
console = Console(stderr=True, soft_wrap=True)


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def print_json(data: Any) -> None:
    """The public ``--json`` contract: one JSON document on stdout, nothing else there."""
    sys.stdout.write(json.dumps(data, default=_default, ensure_ascii=False) + "\n")


def shown(value: object) -> str:
    """Text safe to print on one line through Rich: control characters (a newline in a file
    name) become escapes and square brackets are not taken as markup."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(value))
    return escape(text)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print a one-line error and return the Exit to raise."""
    console.print(f"[red]error:[/red] {shown(message)}", highlight=False, markup=True)
    return typer.Exit(code)


def ready_engine() -> Engine:
    """The configured database, created or upgraded on first use."""
    engine = get_engine()
    init_db(engine)
    return engine


@contextmanager
def progress_bar(description: str, *, enabled: bool = True) -> Iterator[Progress]:
    """A progress bar on stderr (so ``--json`` output on stdout stays clean)."""
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[item]}", markup=False),  # file names are not markup
        console=console,
        disable=not enabled,
        transient=False,
    )
    with progress:
        yield progress

"""What every ``kb`` command shares: JSON output, the engine, progress bars, errors."""

from __future__ import annotations

import json
import os
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


def lower_priority(niceness: int) -> int:
    """Run this process at CPU niceness ``niceness`` at least (KB_INGEST_NICE); the niceness now.

    Why: ingesting is CPU-bound for minutes (segmenting, tagging, embedding on every core).
    Next to ``kb serve`` on the same machine, a ``kb worker`` or a terminal ``kb ingest`` at the
    same priority took half the CPU from the server, and searches waited seconds; at a lower
    priority the ingest gets what the server leaves over, and takes no longer on an idle
    machine. On Linux a niceness belongs to each thread, so every thread already started
    (libraries start thread pools on import) is lowered too. Never raises priority (that needs
    privileges); idempotent, so running two commands in one process does not add up.
    """
    if not hasattr(os, "getpriority"):  # pragma: no cover - not on POSIX
        return 0
    current = os.getpriority(os.PRIO_PROCESS, 0)
    target = min(19, niceness)
    if target <= current:
        return current
    tasks = Path("/proc/self/task")
    threads = [int(t.name) for t in tasks.iterdir()] if tasks.is_dir() else [0]
    for thread in threads:
        try:
            if os.getpriority(os.PRIO_PROCESS, thread) < target:
                os.setpriority(os.PRIO_PROCESS, thread, target)
        except OSError:  # a thread that has just ended, or a platform that refuses
            continue
    return os.getpriority(os.PRIO_PROCESS, 0)


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

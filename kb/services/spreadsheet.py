"""Exports are data, never formulas: the one place CSV and XLSX cells are written.

Why: exports hold text other people typed (an action description, a theme label from a
partnership's taxonomy). A spreadsheet opening a CSV cell that starts with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return evaluates it (``=HYPERLINK("http://…"&G3, …)`` sends a
neighbouring cell to a stranger), and openpyxl stores any string starting with ``=`` as a real
formula. So every CSV cell of text that could be read as a formula gets a leading ``'`` (the
OWASP advice; :func:`csv_unquote` takes it off again when the app reads its own export back) and
every XLSX text cell is stored with the string data type.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.worksheet.worksheet import Worksheet

#: First characters that make a spreadsheet treat a cell as a formula (or a DDE command).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """One CSV cell: empty for None, ISO dates, and text that cannot run as a formula."""
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_unquote(value: str) -> str:
    """The text :func:`csv_cell` neutralised, as it was typed (a CSV export read back)."""
    if value.startswith("'") and value[1:2] and value[1:].startswith(FORMULA_STARTS):
        return value[1:]
    return value


def write_csv(path: Path, rows: Iterable[Iterable[Any]]) -> None:
    """Write ``rows`` to ``path`` with every cell made safe by :func:`csv_cell`."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        for row in rows:
            writer.writerow([csv_cell(v) for v in row])


def append_row(sheet: Worksheet, row: Iterable[Any]) -> None:
    """Append ``row`` to ``sheet`` with text stored as text, never as a formula.

    Control characters are legal in the database but not in a worksheet: they are dropped
    rather than failing the whole export.
    """
    sheet.append([text_cell(sheet, v) if isinstance(v, str) else v for v in row])


def text_cell(sheet: Worksheet, value: str) -> Cell:
    """A worksheet cell holding ``value`` as a string (openpyxl would store "=…" as a formula),
    without the control characters a worksheet cannot hold."""
    cell = Cell(sheet, value=ILLEGAL_CHARACTERS_RE.sub("", value))
    cell.data_type = "s"
    return cell

"""Exports people can read: a title, column headings, widths, a frozen header, percentages.

Used by the signals export and the themes tables. A CSV starts with the title line, a blank
line, then the headings; a workbook sheet has the title in A1, the headings in row 3 (bold,
frozen with everything above them), each column as wide as its longest value (within limits)
and shares stored as numbers with a percentage format, so they sort and sum. Text that a
spreadsheet would run as a formula (``=…``, ``+…``, ``-…``, ``@…``) is kept as text: a CSV cell
gets a leading ``'`` and a workbook cell is stored as a string.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import Cell
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from kb.services.spreadsheet import FORMULA_STARTS, csv_cell, text_cell

MIN_WIDTH, MAX_WIDTH = 8, 60
HEADER_ROW = 3  # title in row 1, a blank row, then the headings


class Percent(float):
    """A share (0.63) that is shown as a percentage: "63%" in CSV, a % format in Excel."""


@dataclass
class Table:
    """One sheet: a title saying what and for whom, headings and rows."""

    name: str  # the sheet name (31 characters at most in Excel)
    title: str
    columns: Sequence[str]
    rows: list[list[Any]] = field(default_factory=list)


def _text_cell(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def csv_value(value: Any) -> Any:
    """One CSV cell: empty for None, ISO dates, "63%" for shares, text that cannot run."""
    if isinstance(value, Percent):
        return f"{value * 100:.0f}%"
    return csv_cell(value)


def csv_bytes(table: Table) -> bytes:
    """The table as UTF-8 CSV (with a BOM, so Excel reads accents right)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([_text_cell(table.title)])
    writer.writerow([])
    writer.writerow([csv_value(c) for c in table.columns])
    for row in table.rows:
        writer.writerow([csv_value(v) for v in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def xlsx_bytes(tables: Sequence[Table]) -> bytes:
    """The tables as one workbook, a sheet each."""
    workbook = Workbook()
    workbook.remove(workbook.active)  # type: ignore[arg-type]
    for table in tables:
        _sheet(workbook, table)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _sheet(workbook: Workbook, table: Table) -> None:
    sheet = workbook.create_sheet(table.name[:31])
    sheet.append([_cell(sheet, table.title)])
    sheet["A1"].font = Font(bold=True, size=13)
    sheet.append([])
    sheet.append([_cell(sheet, c) for c in table.columns])
    for cell in sheet[HEADER_ROW]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    for row in table.rows:
        sheet.append([_cell(sheet, v) for v in row])
    for row in sheet.iter_rows(min_row=HEADER_ROW + 1):
        for cell in row:
            if isinstance(cell.value, str) and len(cell.value) > MAX_WIDTH:
                cell.alignment = Alignment(wrap_text=True, vertical="top")
    sheet.freeze_panes = sheet.cell(row=HEADER_ROW + 1, column=1)
    for index, column in enumerate(table.columns, start=1):
        values = [column, *(row[index - 1] for row in table.rows if len(row) >= index)]
        longest = max(len(str(csv_value(v))) for v in values)
        sheet.column_dimensions[get_column_letter(index)].width = min(
            MAX_WIDTH, max(MIN_WIDTH, longest + 2)
        )


def _cell(sheet: Any, value: Any) -> Any:
    if isinstance(value, Percent):
        cell = Cell(sheet, value=float(value))
        cell.number_format = "0%"
        return cell
    if isinstance(value, str):
        return text_cell(sheet, value)  # never a formula, whatever it starts with
    return value

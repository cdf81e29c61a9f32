"""The tracker workbook's layout (docs/TRACKER_FORMAT.md): sheets, columns, required cells.

Shared by the importer (kb.services.tracker_io), its row checks (kb.services.tracker_rows) and
the export, so the three can never disagree about a column's name.
"""

from __future__ import annotations

import csv
import re
import zipfile
from dataclasses import dataclass
from typing import Any

from openpyxl.utils.exceptions import InvalidFileException

ACTIONS, TRAINING, SESSIONS = "Actions", "Training", "Sessions"
COLUMNS: dict[str, tuple[str, ...]] = {
    ACTIONS: (
        "Ref", "Review", "Recommendation", "Themes", "Agency", "Owner", "Action", "Due date",
        "Status", "Completed", "Evidence of impact", "Impact rating",
    ),
    TRAINING: ("Ref", "Course", "Themes", "Provider", "Linked actions", "Description"),
    SESSIONS: (
        "Ref", "Course ref", "Date", "Attendance", "Pre score", "Post score", "Learning gain",
    ),
}  # fmt: skip
REQUIRED = {
    ACTIONS: ("Ref", "Action"),
    TRAINING: ("Ref", "Course"),
    SESSIONS: ("Ref", "Course ref"),
}
#: Training scores are mean self-ratings of knowledge or confidence on this scale (inclusive):
#: pages and exports print it beside every score, and import refuses a score outside it.
SCORE_SCALE = (1.0, 5.0)
CSV_NAMES = {ACTIONS: "actions.csv", TRAINING: "training.csv", SESSIONS: "sessions.csv"}
SEP = "; "
_STATUS_ALIASES = {"complete": "completed", "done": "completed", "open": "in_progress",
                   "ongoing": "in_progress", "not_yet_started": "not_started"}  # fmt: skip
_UK_DATE = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})$")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ][\d:.]+)?$")
_QUALIFIED_REC = re.compile(r"^(.*\S)\s*#\s*(\S+)$")
# What a damaged or mislabelled file raises while openpyxl / csv read it: not a zip, a zip
# without the workbook parts, broken XML inside (ElementTree's and lxml's parse errors are both
# SyntaxErrors), undecodable text, an unreadable file.
UNREADABLE = (
    OSError, ValueError, KeyError, TypeError, IndexError, zipfile.BadZipFile,
    zipfile.LargeZipFile, InvalidFileException, SyntaxError, csv.Error,
)  # fmt: skip


class TrackerImportError(ValueError):
    """The workbook has problems; ``problems`` lists every one, nothing was written."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = "; ".join(problems[:5]) + (
            f"; … {len(problems) - 5} more" if len(problems) > 5 else ""
        )
        super().__init__(f"{len(problems)} problem(s) in the tracker: {shown}")


class _Bad(ValueError):
    """A single cell's value is wrong; the message says why, without the location."""


@dataclass
class Sheet:
    """A sheet as header → value dicts, with the spreadsheet row number of each row."""

    name: str
    columns: list[str]
    rows: list[tuple[int, dict[str, Any]]]

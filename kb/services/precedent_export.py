"""Precedent results as a DOCX for the rapid review meeting, and notifications read from files.

The DOCX holds what the screen shows (themes with evidence, similar cases, what was tried,
questions) and nothing else: not the pasted text, which the panel already has. Files are read
with the corpus readers into text in memory; nothing is kept after the call.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

from corpus.document import ReaderError
from corpus.readers import SUPPORTED_SUFFIXES, read_document
from kb.services.precedent import MAX_CHARS, PrecedentError

MAX_FILE_BYTES = 20_000_000


def read_notification(data: bytes, filename: str) -> str:
    """The text of an uploaded notification (PDF, DOCX, HTML, Markdown or text).

    PrecedentError names the file and the problem (unsupported format, unreadable, too big).
    The bytes go to a private temporary file only because the readers take a path; it is
    deleted before this returns.
    """
    suffix = Path(filename or "").suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        kinds = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise PrecedentError(f"{filename or 'the file'}: unsupported format (use {kinds})")
    if len(data) > MAX_FILE_BYTES:
        raise PrecedentError(f"{filename}: the file is larger than {MAX_FILE_BYTES:,} bytes")
    with tempfile.TemporaryDirectory(prefix="kb-precedent-") as folder:
        path = Path(folder) / f"notification{suffix}"
        path.write_bytes(data)
        try:
            text = read_document(path, max_bytes=MAX_FILE_BYTES).text
        except ReaderError as exc:
            raise PrecedentError(f"{filename}: could not be read ({exc})") from None
    if len(text) > MAX_CHARS:
        raise PrecedentError(
            f"{filename}: {len(text):,} characters of text; the limit is {MAX_CHARS:,} "
            "(upload the notification, not the whole case file)"
        )
    return text


def to_docx(result: dict[str, Any], *, title: str = "Precedent for the rapid review") -> bytes:
    """One document: themes, similar cases, what was tried, questions for the meeting."""
    from docx import Document
    from docx.shared import Pt

    doc = Document()
    style = doc.styles["Normal"]
    style.font.name = "Arial"  # type: ignore[attr-defined]
    style.font.size = Pt(10)  # type: ignore[attr-defined]
    doc.add_heading(title, level=1)
    doc.add_heading("Themes it probably carries", level=2)
    for theme in result["themes"] or [{"label": "None recognised", "evidence": ""}]:
        para = doc.add_paragraph(style="List Bullet")
        para.add_run(theme["label"]).bold = True
        if theme.get("evidence"):
            para.add_run(f": “{theme['evidence']}”")
    doc.add_heading("Prior cases most like it", level=2)
    for case in result["cases"] or [{"title": "No close prior case", "score": 0}]:
        para = doc.add_paragraph(style="List Bullet")
        para.add_run(case["title"]).bold = True
        if case.get("shared_themes"):
            para.add_run(f" (shared themes: {', '.join(case['shared_themes'])})")
        if case.get("summary"):
            para.add_run(f". {case['summary']}")
        for passage in case.get("passages", []):
            doc.add_paragraph(f"“{passage['text']}”", style="List Bullet 2")
    _tried_table(doc, result["tried"])
    doc.add_heading("Questions for the meeting", level=2)
    for question in result["questions"]:
        doc.add_paragraph(question, style="List Number")
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def _tried_table(doc: Any, tried: list[dict[str, Any]]) -> None:
    doc.add_heading("What was tried for these themes", level=2)
    if not tried:
        doc.add_paragraph("No tracker action is recorded for these themes.")
        return
    table = doc.add_table(rows=1, cols=5)
    table.style = "Light Grid Accent 1"
    for cell, text in zip(
        table.rows[0].cells, ("Theme", "Action", "Status", "Impact", "Recurred after"), strict=True
    ):
        cell.text = text
    for row in tried:
        cells = table.add_row().cells
        cells[0].text = row.get("theme_label", row["theme"])
        cells[1].text = f"{row['ref']}: {row['description']}"
        done = f" ({row['completed_date']})" if row.get("completed_date") else ""
        cells[2].text = f"{row['status'].replace('_', ' ')}{done}"
        cells[3].text = (row["impact_rating"] or "not rated").replace("_", " ")
        cells[4].text = "yes" if row["recurred_after"] else "no"

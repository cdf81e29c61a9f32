"""The ``kb`` command contracts: JSON shapes, exit codes, errors naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kb.cli import app
from nlp.roles import ROLES

REVIEW = """# Serious Case Review: Child P

Harrowby Safeguarding Children Board

## Background

Child P was a 10-week-old baby. Her mother's new partner moved into the home in May; he was
never spoken to by the health visitor or the social worker.

## Findings

1. Agencies did not share information about the partner's history of violence.
2. There was no evidence of substance misuse in the household.

## Recommendations

1. The board should ensure that every adult in the household is identified and assessed.
"""


@pytest.fixture
def runner(kb_env: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("KB_EMBED_ON_INGEST", "false")
    from kb.config import get_settings

    get_settings.cache_clear()
    return CliRunner()


def _docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "child-p.md").write_text(REVIEW, encoding="utf-8")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 truncated")
    return folder


def test_ingest_json_contract_and_exit_code(runner: CliRunner, tmp_path: Path) -> None:
    folder = _docs(tmp_path)
    result = runner.invoke(app, ["ingest", str(folder), "--json"])
    assert result.exit_code == 1, result.output  # one file failed
    data = json.loads(result.stdout)
    assert set(data) == {"ingested", "skipped", "failed"}
    [ingested] = data["ingested"]
    assert set(ingested) >= {"document_id", "path", "reviews"}
    assert ingested["path"].endswith("child-p.md")
    [failed] = data["failed"]
    assert failed["path"].endswith("broken.pdf") and failed["error"]

    again = runner.invoke(app, ["ingest", str(folder / "child-p.md"), "--json"])
    assert again.exit_code == 0
    assert json.loads(again.stdout)["skipped"][0]["path"].endswith("child-p.md")


def test_reviews_list_and_show_contract(runner: CliRunner, tmp_path: Path) -> None:
    folder = _docs(tmp_path)
    runner.invoke(app, ["ingest", str(folder / "child-p.md"), "--status", "published"])
    listed = json.loads(runner.invoke(app, ["reviews", "list", "--json"]).stdout)
    [row] = listed
    assert set(row) >= {
        "id",
        "type",
        "pseudonym",
        "partnership",
        "year",
        "status",
        "document_id",
        "passages",
    }
    assert row["type"] == "scr" and row["pseudonym"] == "Child P"
    assert row["status"] == "published" and row["passages"] >= 4
    shown = json.loads(runner.invoke(app, ["reviews", "show", str(row["id"]), "--json"]).stdout)
    assert [s["kind"] for s in shown["sections"] if s["kind"] != "other"][:3] == [
        "background",
        "findings",
        "recommendations",
    ]
    passage = shown["sections"][1]["passages"][0]
    assert set(passage) == {"id", "text", "start", "end", "role", "role_source", "role_confidence"}
    assert passage["role"] in ROLES
    missing = runner.invoke(app, ["reviews", "show", "999"])
    assert missing.exit_code == 1 and "999" in missing.output


def test_tag_stdin_contract_with_evidence_offsets(runner: CliRunner) -> None:
    text = (
        "The 6-week-old baby was taken to hospital with bruising.\n\n"
        "There were no concerns about domestic abuse.\n"
    )
    result = runner.invoke(app, ["tag", "-", "--json"], input=text)
    assert result.exit_code == 0, result.output
    [line] = result.stdout.strip().splitlines()
    data = json.loads(line)
    assert data["source"] == "-"
    ids = {t["id"] for t in data["themes"]}
    assert "under-1s" in ids
    assert "domestic-abuse" not in ids
    for theme in data["themes"]:
        assert set(theme) >= {"id", "label", "confidence", "evidence"}
        assert 0 < theme["confidence"] <= 1 and theme["evidence"]
        for ev in theme["evidence"]:
            assert text[ev["start"] : ev["end"]] == ev["text"]


def test_ingest_reports_manifest_errors_naming_the_file(runner: CliRunner, tmp_path: Path) -> None:
    folder = _docs(tmp_path)
    manifest = tmp_path / "meta.yaml"
    manifest.write_text("child-p.md:\n  status: maybe\n")
    result = runner.invoke(app, ["ingest", str(folder / "child-p.md"), "--manifest", str(manifest)])
    assert result.exit_code == 1
    assert "meta.yaml" in result.output and "status" in result.output

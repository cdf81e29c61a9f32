"""7-minute briefings: saved drafts, edits, who may see them, and the CLI.

The corpus and its helpers are in tests/briefing_corpus.py.
"""

from __future__ import annotations

import json

import pytest
import typer
from pypdf import PdfReader
from sqlmodel import Session
from typer.testing import CliRunner

from kb.models import (
    Review,
    ReviewStatus,
)
from kb.services.access import Principal
from kb.services.briefings import (
    Conflict,
    InvalidBriefing,
    NotFound,
    cli_json,
    get_briefing,
    list_briefings,
    save_briefing,
    update_briefing,
)
from tests.briefing_corpus import (
    ADMIN,
    VIEWER,
    build,
    panel,
)

pytest_plugins = ["tests.briefing_corpus"]  # the corpus and taxonomy fixtures


def test_saved_drafts_and_optimistic_locking(engine, corpus, taxonomy) -> None:
    draft = build(engine, taxonomy, VIEWER, theme_id="hidden-men")
    with Session(engine) as session:
        saved = save_briefing(session, principal=VIEWER, draft=draft)
        session.commit()
    assert saved.version_id == 1 and saved.created_by == "val" and not saved.restricted
    sections = [dict(s) for s in saved.sections]
    sections[3] = {
        **sections[3],
        "items": [
            *sections[3]["items"],
            {
                "text": "Local data: 40% of referrals name no father.",
                "review_id": None,
                "passage_id": None,
            },
        ],
    }
    with Session(engine) as session:
        updated = update_briefing(
            session,
            principal=VIEWER,
            briefing_id=saved.id,
            title="Hidden men: team meeting",
            sections=sections,
            expected_version=1,
        )
        session.commit()
    assert updated.version_id == 2 and updated.title == "Hidden men: team meeting"
    assert updated.sections[3]["items"][-1]["text"].startswith("Local data")
    assert updated.sections[1]["sources"] == saved.sections[1]["sources"]
    with Session(engine) as session, pytest.raises(Conflict):
        update_briefing(
            session, principal=VIEWER, briefing_id=saved.id, title="Stale", expected_version=1
        )
    with Session(engine) as session:
        again = get_briefing(session, principal=VIEWER, briefing_id=saved.id)
        assert again.title == "Hidden men: team meeting" and again.version_id == 2
        assert [b.id for b in list_briefings(session, principal=VIEWER)] == [saved.id]


def test_bad_edits_are_refused(engine, corpus, taxonomy) -> None:
    draft = build(engine, taxonomy, VIEWER, theme_id="hidden-men")
    with Session(engine) as session:
        saved = save_briefing(session, principal=VIEWER, draft=draft)
        session.commit()
    base = [dict(s) for s in saved.sections]

    def edit(sections):  # type: ignore[no-untyped-def]
        with Session(engine) as session:
            update_briefing(
                session,
                principal=VIEWER,
                briefing_id=saved.id,
                sections=sections,
                expected_version=1,
            )

    with pytest.raises(InvalidBriefing):
        edit(base[:6])
    leak = {
        "text": "quote",
        "review_id": corpus.reviews["E"],
        "passage_id": corpus.passages["E-f1"],
    }
    with pytest.raises(NotFound):
        edit([*base[:2], {**base[2], "items": [leak]}, *base[3:]])
    wrong = {
        "text": "quote",
        "review_id": corpus.reviews["A"],
        "passage_id": corpus.passages["C-f1"],
    }
    with pytest.raises(InvalidBriefing):
        edit([*base[:2], {**base[2], "items": [wrong]}, *base[3:]])


def test_restricted_briefings_are_hidden_from_those_who_cannot_see_them(
    engine, corpus, taxonomy
) -> None:
    north, south = panel(corpus, "Northshire"), panel(corpus, "Southshire")
    draft = build(engine, taxonomy, north, theme_id="hidden-men", include_restricted=True)
    with Session(engine) as session:
        saved = save_briefing(session, principal=north, draft=draft)
        session.commit()
    assert saved.restricted
    with Session(engine) as session:
        for who in (VIEWER, south, Principal.anonymous()):
            assert list_briefings(session, principal=who) == []
            with pytest.raises(NotFound):
                get_briefing(session, principal=who, briefing_id=saved.id)
        assert [b.id for b in list_briefings(session, principal=north)] == [saved.id]
        assert [b.id for b in list_briefings(session, principal=ADMIN)] == [saved.id]
        with pytest.raises(NotFound):
            save_briefing(session, principal=VIEWER, draft=draft)


def test_briefing_hidden_when_a_source_review_is_embargoed_later(engine, corpus, taxonomy) -> None:
    draft = build(engine, taxonomy, VIEWER, theme_id="hidden-men")
    with Session(engine) as session:
        saved = save_briefing(session, principal=VIEWER, draft=draft)
        session.get(Review, corpus.reviews["C"]).status = ReviewStatus.EMBARGOED
        session.commit()
    with Session(engine) as session:
        assert list_briefings(session, principal=VIEWER) == []
        assert [b.id for b in list_briefings(session, principal=ADMIN)] == [saved.id]


def test_cli_json_contract(engine, corpus, tmp_path) -> None:
    from kb.cli.briefing import briefing as briefing_command  # the kb.cli package imports all

    app = typer.Typer()
    app.command("briefing")(briefing_command)
    app.command("noop", hidden=True)(lambda: None)  # keep "briefing" a named sub-command
    runner = CliRunner()

    result = runner.invoke(app, ["briefing", "--theme", "hidden-men", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"title", "restricted", "sections"} and data["restricted"] is False
    assert len(data["sections"]) == 7
    for number, sec in enumerate(data["sections"], start=1):
        assert set(sec) == {"number", "heading", "items"} and sec["number"] == number
        for item in sec["items"]:
            assert set(item) == {"text", "review_id", "passage_id", "role"}
    assert "falconer" not in result.stdout and "lighthouse" not in result.stdout

    result = runner.invoke(
        app, ["briefing", "--theme", "hidden-men", "--json", "--include-restricted"]
    )
    assert result.exit_code == 0 and json.loads(result.stdout)["restricted"] is True
    assert "falconer" in result.stdout

    out = tmp_path / "briefing.pdf"
    result = runner.invoke(
        app, ["briefing", "--review", str(corpus.reviews["A"]), "--out", str(out), "--save"]
    )
    assert result.exit_code == 0, result.output
    assert len(PdfReader(str(out)).pages) == 1

    for args, message in (
        (["--theme", "nonsense"], "unknown theme"),
        (["--review", "9999"], "not found"),
        (["--review", str(corpus.reviews["E"])], "not published"),
        (["--theme", "hidden-men", "--out", str(tmp_path / "b.txt")], ".html, .docx or .pdf"),
    ):
        result = runner.invoke(app, ["briefing", *args])
        assert result.exit_code == 1, args
        assert message in result.output, result.output
    assert runner.invoke(app, ["briefing"]).exit_code == 2


def test_cli_json_helper_matches_saved_shape(engine, corpus, taxonomy) -> None:
    draft = build(engine, taxonomy, VIEWER, theme_id="hidden-men")
    with Session(engine) as session:
        saved = save_briefing(session, principal=VIEWER, draft=draft)
    assert cli_json(saved) == cli_json(draft)


def test_briefing_is_registered_as_a_kb_command(kb_env) -> None:
    from kb.cli import app

    result = CliRunner().invoke(app, ["briefing", "--help"])
    assert result.exit_code == 0 and "--include-restricted" in result.output

"""The tracker for scrutiny: filters, the summary strip, full signal texts, the signals export."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

from openpyxl import load_workbook
from sqlalchemy.engine import Engine
from sqlmodel import Session

from kb.models import ActionStatus, ActionUpdate
from kb.services.readable_export import csv_bytes, xlsx_bytes
from kb.services.tracker import update_action
from kb.services.tracker_view import TrackerFilter, cases_of, scrutiny, signals_table
from tests.test_tracker_recurrence import ADMIN, VIEWER
from tests.test_tracker_signals import TODAY, _add, world  # noqa: F401 - fixture
from tests.web_support import MARKER

pytest_plugins = ["tests.web_fixtures"]

LONG = (
    "Write to every GP practice about the escalation policy for babies under one, with the "
    "named nurse's details and the date of the next audit"
)


def _run(engine: Engine, f: TrackerFilter, principal=ADMIN) -> dict:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        return scrutiny(session, principal, f, similarity_threshold=0.82, today=TODAY)


def _refs(data: dict) -> list[str]:
    return [a.ref for a in data["actions"]]


def test_summary_counts_every_action_and_signal(engine: Engine, world: dict[str, int]) -> None:  # noqa: F811
    data = _run(engine, TrackerFilter())
    s = data["summary"]
    assert s["actions"] == 7
    assert dict(s["by_status"]) == {
        ActionStatus.NOT_STARTED: 1,
        ActionStatus.IN_PROGRESS: 2,
        ActionStatus.COMPLETED: 3,
        ActionStatus.CLOSED: 1,
    }
    assert s["overdue"] == 2  # A3 and A7 (A4 is not yet due)
    assert (s["done"], s["with_impact"], s["without_impact"]) == (4, 3, 1)  # A2 has none
    assert s["signals"] == len(data["signals"]) == sum(n for _, n, _ in s["by_kind"])
    assert {kind for _, _, kind in s["by_kind"]} == {
        "recurrence_after_action", "deja_vu", "rising", "overdue", "no_impact_evidence",
    }  # fmt: skip
    # The viewer's summary never counts the embargoed review's action (A7).
    assert _run(engine, TrackerFilter(), VIEWER)["summary"]["overdue"] == 1


def test_filters_narrow_actions_and_signals(engine: Engine, world: dict[str, int]) -> None:  # noqa: F811
    overdue = _run(engine, TrackerFilter(overdue=True))
    assert _refs(overdue) == ["A3", "A7"]
    # Signals about an overdue action: its own, and the repeated recommendation A3 answers.
    assert {s["kind"] for s in overdue["signals"]} == {"overdue", "deja_vu"}
    assert all({a["ref"] for a in s["actions"]} & {"A3", "A7"} for s in overdue["signals"])
    without = _run(engine, TrackerFilter(impact="without"))
    assert _refs(without) == ["A2"]
    assert [s["kind"] for s in without["signals"]] == ["no_impact_evidence"]
    assert _refs(_run(engine, TrackerFilter(impact="with"))) == ["A1", "A5", "A6"]
    assert _refs(_run(engine, TrackerFilter(status=ActionStatus.CLOSED))) == ["A5"]
    theme = _run(engine, TrackerFilter(theme="hidden-men"))
    assert _refs(theme) == ["A1"]
    assert theme["signals"] and all(s["theme"] == "hidden-men" for s in theme["signals"])
    case = _run(engine, TrackerFilter(case="child f"))  # a case is a pseudonym, any case
    assert _refs(case) == ["A3"]
    assert case["signals"]
    assert all(any(r["pseudonym"] == "Child F" for r in s["reviews"]) for s in case["signals"])
    assert "Child F" in [c.label for c in case["options"]["cases"]]
    nothing = _run(engine, TrackerFilter(partnership="Nowhere"))
    assert nothing["actions"] == [] and nothing["signals"] == []


def test_signal_texts_are_never_cut(engine: Engine, world: dict[str, int]) -> None:  # noqa: F811
    with Session(engine) as session:
        _add(session, "A8", LONG, status=ActionStatus.NOT_STARTED, due_date=date(2023, 1, 2))
        session.commit()
    data = _run(engine, TrackerFilter(overdue=True))
    [signal] = [s for s in data["signals"] if s["actions"][0]["ref"] == "A8"]
    assert LONG in signal["summary"] and "…" not in signal["summary"]
    assert signal["headline"] == "A8 is 364 days overdue"


def test_cases_are_listed_once() -> None:
    reviews = [
        {"id": 2, "pseudonym": "Child F", "date": "2021-06-14", "type": "lcspr"},
        {"id": 1, "pseudonym": "Child F", "date": "2021-06-01", "type": "rapid_review"},
        {"id": 3, "pseudonym": "Child H", "date": None, "type": "lcspr"},
    ]
    cases = cases_of(reviews)
    assert [c["pseudonym"] for c in cases] == ["Child F", "Child H"]
    assert [r["id"] for r in cases[0]["reviews"]] == [1, 2]  # in date order, under one case
    table = signals_table(
        [
            {"kind": "rising", "theme": "neglect", "headline": "h", "summary": "=cmd()",
             "reviews": reviews, "actions": [{"ref": "A1", "status": "in_progress"}]},
        ],
        {"neglect": "Neglect"},
        TrackerFilter(theme="neglect"),
        TODAY,
    )  # fmt: skip
    row = table.rows[0]
    assert row[1] == "Neglect" and row[4] == "Child F; Child H"
    assert row[5].startswith("Child F (Rapid review, 2021-06-01); Child F (LCSPR, 2021-06-14)")
    assert row[6] == "A1 (in progress)"
    assert table.title == "Tracker signals, 2024-01-01 (theme neglect)"
    lines = list(csv.reader(io.StringIO(csv_bytes(table).decode("utf-8-sig"))))
    assert lines[0] == [table.title] and lines[1] == [] and lines[2][0] == "Signal"
    assert lines[3][3] == "'=cmd()"  # text, never a formula
    book = load_workbook(io.BytesIO(xlsx_bytes([table])))
    sheet = book["Signals"]
    assert sheet["A1"].value == table.title and sheet["A3"].value == "Signal"
    assert sheet.freeze_panes == "A4" and sheet["A3"].font.bold
    assert sheet["D4"].data_type == "s" and sheet["D4"].value == "=cmd()"
    assert sheet.column_dimensions["F"].width > sheet.column_dimensions["B"].width


def test_signals_export_api_follows_filters_and_access(clients, web_world) -> None:
    admin = clients["admin"].get("/api/signals/export.csv")
    assert admin.status_code == 200 and admin.headers["content-type"].startswith("text/csv")
    assert MARKER in admin.text  # the embargoed review's action, which admin may see
    viewer = clients["viewer"].get("/api/signals/export.csv")
    assert viewer.status_code == 200 and MARKER not in viewer.text
    narrowed = clients["admin"].get("/api/signals/export.csv", params={"impact": "with"})
    assert MARKER not in narrowed.text and "(impact with)" in narrowed.text
    xlsx = clients["admin"].get("/api/signals/export.xlsx", params={"theme": "domestic-abuse"})
    sheet = load_workbook(io.BytesIO(xlsx.content))["Signals"]
    assert sheet["A4"].value == "No evidence of impact"
    bad = clients["admin"].get("/api/signals/export.csv", params={"status": "finished"})
    assert bad.status_code == 422 and "not one of" in bad.text
    summary = clients["admin"].get("/api/tracker/summary", params={"impact": "without"}).json()
    assert summary["actions"] == 1 and summary["without_impact"] == 1
    assert summary["by_kind"] == {"no_impact_evidence": 1}
    assert clients["viewer"].get("/api/tracker/summary").json()["actions"] == 0


def test_tracker_page_filters_summary_and_collapsible_signals(clients, web_world) -> None:
    html = clients["admin"].get("/tracker", params={"impact": "without"}).text
    assert '<option value="without" selected>' in html
    assert "<details>" in html and "No evidence of impact" in html
    assert f'href="/reviews/{web_world.hidden_review}"' in html  # the review behind the signal
    assert 'href="/api/signals/export.xlsx?impact=without"' in html
    assert "Completed without evidence" in html
    empty = clients["admin"].get("/tracker", params={"partnership": "Oakvale"}).text
    assert "No signals for these filters." in empty
    assert "No actions match these filters." in empty
    assert clients["admin"].get("/tracker?status=bogus").status_code == 200  # old bookmark


def test_cli_signals_out(engine: Engine, world: dict[str, int], tmp_path: Path) -> None:  # noqa: F811
    from tests.test_tracker_cli import app, runner

    out = tmp_path / "signals.xlsx"
    result = runner.invoke(app, ["tracker", "signals", "--overdue", "--out", str(out)])
    assert result.exit_code == 0, result.output
    sheet = load_workbook(out)["Signals"]
    kinds = {row[0] for row in sheet.iter_rows(min_row=4, values_only=True)}
    assert kinds == {"Overdue action", "Same recommendation again"}
    bad = runner.invoke(app, ["tracker", "signals", "--out", str(tmp_path / "s.pdf")])
    assert bad.exit_code != 0 and "use .csv or .xlsx" in bad.output


def test_cached_view_follows_an_edit(engine: Engine, world: dict[str, int]) -> None:  # noqa: F811
    """The view is cached by data version: an edit must show at once, never a stale summary."""
    before = _run(engine, TrackerFilter(impact="without"))
    assert _refs(before) == ["A2"]
    a2 = before["actions"][0]
    before["actions"].clear()  # a caller changing its copy must not change the cache
    with Session(engine) as session:
        update_action(
            session,
            principal=ADMIN,
            action_id=a2.id,
            data=ActionUpdate(impact_evidence="Audit in March: every practice had the policy"),
            expected_version=None,
        )
        session.commit()
    after = _run(engine, TrackerFilter(impact="without"))
    assert _refs(after) == []
    assert _refs(_run(engine, TrackerFilter(impact="with"))) == ["A1", "A2", "A5", "A6"]

"""Tracker workbook import / export: located errors, all-or-nothing, lossless round trips."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from openpyxl import Workbook
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from kb.models import (
    Action,
    ActionStatus,
    ActionUpdate,
    ImpactRating,
    Review,
    Role,
    TrainingCourse,
    TrainingSession,
)
from kb.services.access import Principal
from kb.services.errors import Conflict
from kb.services.tracker import (
    delete_course,
    get_action,
    list_actions,
    list_courses,
    list_sessions,
    update_action,
)
from kb.services.tracker_io import COLUMNS, TrackerImportError, export_tracker, import_tracker
from tests.test_tracker_recurrence import ADMIN, VIEWER, build_corpus

ACTIONS_VECTOR = np.eye(8, dtype=np.float32)[4]
ACTIONS = [
    ["NM-01", "Child E", "1", "hidden-men", "Partnership", "L&D lead",
     "Training on engaging fathers", "31/01/2020", "Completed", date(2020, 3, 15),
     "Audit: fathers recorded in 40% of cases", "some"],
    ["NM-02", "Child F; Child H", "Child F #1; Child H #3", "information-sharing; hidden-men",
     "ICB", None, "Mandatory household field in the handover", "2023-06-30", "in progress",
     None, None, None],
    ["NM-03", None, None, "Neglect", "Children's services", "Head of service",
     "Relaunch the neglect strategy", datetime(2022, 1, 31), "CLOSED", "2022-12-01", None, "None"],
    ["EV-01", "Child X", "1", None, "Easterby", None, "Embargoed review action", None,
     "not started", None, None, None],
]  # fmt: skip
TRAINING = [
    ["C-01", "Hidden Men: Finding Ways Forward", "hidden-men", "NSCP", "NM-01; NM-02",
     "Half-day course"],
    ["C-02", "Graded Care Profile 2", "neglect", None, "NM-03", None],
]  # fmt: skip
SESSIONS = [
    ["S-01", "C-01", "12/02/2020", 24, 2.5, 4.0],
    ["S-02", "C-01", date(2020, 3, 1), "18", "3", "4.5"],
    ["S-03", "C-02", "2021-05-04", None, None, None],
]


def write_workbook(path: Path, sheets: dict[str, list[list[Any]]]) -> Path:
    workbook = Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        ws = workbook.create_sheet(name)
        ws.append(list(COLUMNS[name][: len(rows[0]) if rows else None]))
        for row in rows:
            ws.append(row)
    workbook.save(path)
    return path


def _good(tmp_path: Path) -> Path:
    return write_workbook(
        tmp_path / "tracker.xlsx", {"Actions": ACTIONS, "Training": TRAINING, "Sessions": SESSIONS}
    )


def snapshot(engine: Engine) -> dict[str, Any]:
    """Every field of every tracker row, keyed by ref (ids replaced by refs)."""
    with Session(engine) as session:
        actions = list_actions(session, principal=ADMIN)
        courses = list_courses(session, principal=ADMIN)
        refs = {a.id: a.ref for a in actions}
        course_refs = {c.id: c.ref for c in courses}
        return {
            "actions": {
                a.ref: a.model_dump(exclude={"id", "version_id", "course_ids"}) for a in actions
            },
            "courses": {
                c.ref: {
                    **c.model_dump(exclude={"id", "action_ids"}),
                    "actions": sorted(refs[i] for i in c.action_ids),
                }
                for c in courses
            },  # fmt: skip
            "sessions": {
                s.ref: {
                    **s.model_dump(exclude={"id", "course_id"}),
                    "course": course_refs[s.course_id],
                }
                for s in list_sessions(session)
            },
        }


def _counts(engine: Engine) -> tuple[int, int, int]:
    with Session(engine) as session:
        return tuple(
            session.exec(select(func.count()).select_from(m)).one()
            for m in (Action, TrainingCourse, TrainingSession)
        )  # type: ignore[return-value]


@pytest.fixture
def ids(engine: Engine) -> dict[str, int]:
    return build_corpus(engine)


def _import(engine: Engine, path: Path, principal=ADMIN) -> dict:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        result = import_tracker(session, principal=principal, path=path)
        session.commit()
    return result


def test_import_parses_every_column(engine: Engine, ids: dict[str, int], tmp_path: Path) -> None:
    counts = _import(engine, _good(tmp_path))
    assert counts == {
        "actions": {"created": 4, "updated": 0},
        "training": {"created": 2, "updated": 0},
        "sessions": {"created": 3, "updated": 0},
    }
    data = snapshot(engine)
    first = data["actions"]["NM-01"]
    assert first["due_date"] == date(2020, 1, 31) and first["completed_date"] == date(2020, 3, 15)
    assert first["status"] == ActionStatus.COMPLETED and first["impact_rating"] == ImpactRating.SOME
    assert len(first["recommendation_ids"]) == 1 and first["theme_ids"] == ["hidden-men"]
    assert first["partnership_id"] is not None
    assert len(data["actions"]["NM-02"]["recommendation_ids"]) == 2
    third = data["actions"]["NM-03"]
    assert third["status"] == ActionStatus.CLOSED and third["impact_rating"] == ImpactRating.NONE
    assert third["theme_ids"] == ["neglect"]  # label accepted, stored as id
    assert third["due_date"] == date(2022, 1, 31)
    assert data["courses"]["C-01"]["actions"] == ["NM-01", "NM-02"]
    assert data["sessions"]["S-01"]["learning_gain"] == 1.5
    assert data["sessions"]["S-02"]["attendance"] == 18
    assert data["sessions"]["S-03"]["learning_gain"] is None


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_round_trip_is_lossless(
    engine: Engine, ids: dict[str, int], tmp_path: Path, suffix: str
) -> None:
    _import(engine, _good(tmp_path))
    before = snapshot(engine)
    out = tmp_path / "out" / f"tracker{suffix}"
    with Session(engine) as session:
        written = export_tracker(session, principal=ADMIN, path=out)
    assert len(written) == (1 if suffix == ".xlsx" else 3)
    with Session(engine) as session:  # wipe training, then import the export back
        for course in list_courses(session, principal=ADMIN):
            delete_course(session, course_id=course.id)
        session.commit()
    counts = _import(engine, out)
    assert counts["training"]["created"] == 2 and counts["actions"]["updated"] == 4
    assert snapshot(engine) == before


def test_export_as_viewer_leaves_out_hidden_reviews(
    engine: Engine, ids: dict[str, int], tmp_path: Path
) -> None:
    _import(engine, _good(tmp_path))
    with Session(engine) as session:
        export_tracker(session, principal=VIEWER, path=tmp_path / "v" / "actions.csv")
    text = (tmp_path / "v" / "actions.csv").read_text()
    assert "EV-01" not in text and "Child X" not in text
    assert "NM-01" in text


def test_errors_name_sheet_row_column_and_write_nothing(
    engine: Engine, ids: dict[str, int], tmp_path: Path
) -> None:
    bad_actions = [list(row) for row in ACTIONS]
    bad_actions[1][7] = "31/13/2021"  # row 3
    bad_actions[2][3] = "hiden-men"  # row 4
    bad_actions[0][8] = "finished"  # row 2
    bad_actions[3][1] = "Child Z"  # row 5
    bad_actions[0][2] = "9"
    bad_sessions = [list(row) for row in SESSIONS] + [["S-01", "C-99", "2020-01-01", -1, "x", 72]]
    path = write_workbook(
        tmp_path / "bad.xlsx",
        {"Actions": bad_actions, "Training": TRAINING, "Sessions": bad_sessions},
    )
    with pytest.raises(TrackerImportError) as info:
        _import(engine, path)
    problems = info.value.problems
    assert "sheet 'Actions', row 3, column 'Due date': '31/13/2021' is not a date" in problems
    assert any(
        p.startswith("sheet 'Actions', row 4, column 'Themes': unknown theme 'hiden-men' (valid: ")
        and "hidden-men" in p
        for p in problems
    )
    assert any(
        p.startswith("sheet 'Actions', row 2, column 'Status': 'finished' is not one of")
        for p in problems
    )
    assert "sheet 'Actions', row 5, column 'Review': unknown review 'Child Z'" in problems
    assert any(
        p.startswith("sheet 'Actions', row 2, column 'Recommendation': review 'Child E' has no "
                     "recommendation 9") for p in problems
    )  # fmt: skip
    assert "sheet 'Sessions', row 5, column 'Ref': 'S-01' is already used on row 2" in problems
    assert "sheet 'Sessions', row 5, column 'Course ref': unknown course 'C-99'" in problems
    assert "sheet 'Sessions', row 5, column 'Attendance': '-1' is not a whole number" in problems
    assert "sheet 'Sessions', row 5, column 'Pre score': 'x' is not a number" in problems
    # Scores are on a 1–5 scale: a percentage is refused, not stored beside 1–5 scores.
    assert "sheet 'Sessions', row 5, column 'Post score': 72 is outside the 1–5 score scale" in (
        problems
    )
    assert _counts(engine) == (0, 0, 0)


def test_failed_reimport_keeps_previous_state(
    engine: Engine, ids: dict[str, int], tmp_path: Path
) -> None:
    _import(engine, _good(tmp_path))
    before = snapshot(engine)
    changed = [list(row) for row in ACTIONS]
    changed[0][6] = "A new description"
    changed[1][8] = "sort of"
    with pytest.raises(TrackerImportError):
        _import(engine, write_workbook(tmp_path / "b.xlsx", {"Actions": changed}))
    assert snapshot(engine) == before


def test_hidden_reviews_cannot_be_referenced_by_another_partnership(
    engine: Engine, ids: dict[str, int], tmp_path: Path
) -> None:
    # Viewers may not import at all (tests/test_tracker_permissions.py); a Northmoor panel
    # member may, but cannot see, and so cannot name, Easterby's embargoed review.
    with Session(engine) as session:
        northmoor = session.get(Review, ids["B"]).partnership_id
    panel = Principal("panel", Role.PANEL, northmoor)
    path = write_workbook(tmp_path / "v.xlsx", {"Actions": [ACTIONS[3]]})
    with pytest.raises(TrackerImportError) as info:
        _import(engine, path, principal=panel)
    assert info.value.problems == [
        "sheet 'Actions', row 2, column 'Review': unknown review 'Child X'"
    ]


def test_missing_required_column_and_single_csv(
    engine: Engine, ids: dict[str, int], tmp_path: Path
) -> None:
    csv_path = tmp_path / "plan.csv"
    csv_path.write_text("Ref,Themes\nA-1,neglect\n", encoding="utf-8")
    with pytest.raises(TrackerImportError) as info:
        _import(engine, csv_path)
    assert "sheet 'Actions', column 'Action': column is missing" in info.value.problems
    csv_path.write_text("ref,action,due date,status\nA-1,Do it,01/02/2024,Done\n", encoding="utf-8")
    _import(engine, csv_path)
    [action] = snapshot(engine)["actions"].values()
    assert action["due_date"] == date(2024, 2, 1) and action["status"] == ActionStatus.COMPLETED


def test_optimistic_locking_on_actions(engine: Engine, ids: dict[str, int], tmp_path: Path) -> None:
    _import(engine, _good(tmp_path))
    with Session(engine) as session:
        action = next(a for a in list_actions(session, principal=ADMIN) if a.ref == "NM-02")
        updated = update_action(
            session, principal=ADMIN, action_id=action.id,
            data=ActionUpdate(status=ActionStatus.COMPLETED, theme_ids=["neglect"]),
            expected_version=action.version_id,
        )  # fmt: skip
        assert updated.version_id == action.version_id + 1 and updated.theme_ids == ["neglect"]
        assert updated.recommendation_ids == action.recommendation_ids
        with pytest.raises(Conflict):
            update_action(
                session, principal=ADMIN, action_id=action.id,
                data=ActionUpdate(owner="someone"), expected_version=action.version_id,
            )  # fmt: skip
        assert get_action(session, principal=ADMIN, action_id=action.id).owner is None


def test_namesakes_are_qualified_on_import_and_export(
    engine: Engine, ids: dict[str, int], tmp_path: Path
) -> None:
    from kb.models import ReviewType
    from tests.test_tracker_recurrence import EASTERBY, Spec, add_review

    with Session(engine) as session:
        add_review(session, Spec("E2", "Child E", ReviewType.LCSPR, EASTERBY, date(2020, 1, 1),
                                 recs=[("Another recommendation.", ACTIONS_VECTOR)]))  # fmt: skip
        session.commit()
    row = ["E2-1", "Child E", "1", None, None, None, "d", None, None, None, None, None]
    with pytest.raises(TrackerImportError) as info:
        _import(engine, write_workbook(tmp_path / "a.xlsx", {"Actions": [row]}))
    [problem] = info.value.problems
    assert "'Child E' is ambiguous: write 'Child E (Northmoor" in problem
    row[1] = "Child E (easterby and vale)"
    _import(engine, write_workbook(tmp_path / "b.xlsx", {"Actions": [row]}))
    before = snapshot(engine)
    with Session(engine) as session:
        export_tracker(session, principal=ADMIN, path=tmp_path / "out.csv")
    assert "Child E (Easterby and Vale)" in (tmp_path / "out.csv").read_text()
    _import(engine, tmp_path / "out.csv")
    assert snapshot(engine) == before

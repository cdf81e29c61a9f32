"""Who may change tracker actions, enforced by the service (and so by the API, the web pages
and the spreadsheet import alike): viewers read only; a panel member changes their own
partnership's actions and partnership-wide ones, never another partnership's; a corrupt
workbook is a 400 naming the file, not a 500.

The world is tests/web_support.py (Fernhill, with the embargoed review and HID-1; Oakvale)
plus a published Oakvale review with a recommendation and three visible actions: FERN-1
(Fernhill), OAK-1 (Oakvale) and ALL-1 (no partnership).
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from kb.models import (
    Action,
    ActionCourseLink,
    ActionCreate,
    ActionRecommendationLink,
    ActionUpdate,
    Document,
    Partnership,
    Recommendation,
    Review,
    ReviewStatus,
    ReviewType,
    Role,
    TrainingCourse,
)
from kb.services.access import Principal
from kb.services.errors import Forbidden
from kb.services.reviews import NotFound
from kb.services.tracker import (
    create_action,
    delete_action,
    get_action,
    list_courses,
    may_edit,
    update_action,
)
from kb.services.tracker_io import COLUMNS, TrackerImportError, import_tracker
from tests.web_support import World, api_csrf

pytest_plugins = ["tests.web_fixtures"]

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass
class Plan:
    """Ids of the partnerships, recommendations and actions the tests edit."""

    fernhill: int
    oakvale: int
    fernhill_rec: int  # of the published Fernhill review (Child P)
    oakvale_rec: int  # of the published Oakvale review (Child O)
    hidden_rec: int  # of the embargoed Fernhill review
    fern: int
    oak: int
    shared: int
    hidden: int  # HID-1 of the world


@pytest.fixture
def plan(engine: Engine, web_world: World) -> Plan:
    with Session(engine) as session:
        ids = {p.name: p.id for p in session.exec(select(Partnership)).all()}
        document = Document(source_name="o.md", format="markdown", sha256="o" * 64, text="O.")
        session.add(document)
        session.flush()
        review = Review(
            document_id=document.id,
            partnership_id=ids["Oakvale"],
            type=ReviewType.LCSPR,
            pseudonym="Child O",
            status=ReviewStatus.PUBLISHED,
            year=2022,
        )
        session.add(review)
        session.flush()
        recs = [
            Recommendation(review_id=web_world.published_review, number="1", text="Share."),
            Recommendation(review_id=review.id, number="1", text="Record fathers."),
        ]
        session.add_all(recs)
        actions = [
            Action(ref="FERN-1", description="Fernhill audit", partnership_id=ids["Fernhill"]),
            Action(ref="OAK-1", description="Oakvale audit", partnership_id=ids["Oakvale"]),
            Action(ref="ALL-1", description="Shared protocol", partnership_id=None),
        ]
        session.add_all(actions)
        session.flush()
        hidden_rec = session.exec(
            select(ActionRecommendationLink.recommendation_id).where(
                ActionRecommendationLink.action_id == web_world.hidden_action
            )
        ).one()
        session.commit()
        return Plan(
            fernhill=ids["Fernhill"],
            oakvale=ids["Oakvale"],
            fernhill_rec=recs[0].id,  # type: ignore[arg-type]
            oakvale_rec=recs[1].id,  # type: ignore[arg-type]
            hidden_rec=hidden_rec,
            fern=actions[0].id,  # type: ignore[arg-type]
            oak=actions[1].id,  # type: ignore[arg-type]
            shared=actions[2].id,  # type: ignore[arg-type]
            hidden=web_world.hidden_action,
        )


def _panel(plan: Plan, partnership: str = "fernhill") -> Principal:
    return Principal("panel-x", Role.PANEL, getattr(plan, partnership))


VIEWER = Principal("viewer-x", Role.VIEWER, None)


def _version(session: Session, action_id: int) -> int:
    action = session.get(Action, action_id)
    assert action is not None
    return action.version_id


def _workbook(sheets: dict[str, list[list[Any]]]) -> bytes:
    book = Workbook()
    book.remove(book.active)  # type: ignore[arg-type]
    for name, rows in sheets.items():
        ws = book.create_sheet(name)
        ws.append(list(COLUMNS[name]))
        for row in rows:
            ws.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _action_row(ref: str, review: str | None = None, rec: str | None = None) -> list[Any]:
    return [ref, review, rec, None, None, None, f"Imported {ref}", None, "in progress"]


def _import(session: Session, principal: Principal, tmp_path: Path, data: bytes) -> dict:
    path = tmp_path / "tracker.xlsx"
    path.write_bytes(data)
    return import_tracker(session, principal=principal, path=path)


# --------------------------------------------------------------------------- service level


def test_panel_member_edits_own_and_shared_actions_only(engine: Engine, plan: Plan) -> None:
    panel = _panel(plan)
    with Session(engine) as session:
        for action_id in (plan.fern, plan.shared):
            done = update_action(
                session,
                principal=panel,
                action_id=action_id,
                data=ActionUpdate(owner="Fernhill lead"),
                expected_version=_version(session, action_id),
            )
            assert done.owner == "Fernhill lead"
        with pytest.raises(Forbidden, match="own partnership"):
            update_action(
                session,
                principal=panel,
                action_id=plan.oak,
                data=ActionUpdate(owner="Fernhill lead"),
                expected_version=_version(session, plan.oak),
            )
        with pytest.raises(Forbidden, match="own partnership"):
            delete_action(
                session,
                principal=panel,
                action_id=plan.oak,
                expected_version=_version(session, plan.oak),
            )
        with pytest.raises(Forbidden):  # nor move its own action to another partnership
            update_action(
                session,
                principal=panel,
                action_id=plan.fern,
                data=ActionUpdate(partnership_id=plan.oakvale),
                expected_version=_version(session, plan.fern),
            )
        oak = get_action(session, principal=panel, action_id=plan.oak)
        assert oak.owner is None and oak.version_id == 1
        delete_action(
            session,
            principal=panel,
            action_id=plan.fern,
            expected_version=_version(session, plan.fern),
        )
        assert session.get(Action, plan.fern) is None
    assert may_edit(panel, plan.fernhill) and may_edit(panel, None)
    assert not may_edit(panel, plan.oakvale) and not may_edit(VIEWER)


def test_panel_member_cannot_create_another_partnerships_action(engine: Engine, plan: Plan) -> None:
    panel = _panel(plan)
    with Session(engine) as session:
        with pytest.raises(Forbidden):
            create_action(
                session,
                principal=panel,
                data=ActionCreate(ref="N-1", description="x", partnership_id=plan.oakvale),
            )
        # No partnership given, but the recommendation makes it Oakvale's: refused as well.
        with pytest.raises(Forbidden):
            create_action(
                session,
                principal=panel,
                data=ActionCreate(
                    ref="N-2", description="x", recommendation_ids=[plan.oakvale_rec]
                ),
            )
        mine = create_action(
            session,
            principal=panel,
            data=ActionCreate(ref="N-3", description="x", recommendation_ids=[plan.fernhill_rec]),
        )
        assert mine.partnership_id == plan.fernhill
        refs = set(session.exec(select(Action.ref)).all())
    assert "N-1" not in refs and "N-2" not in refs


def test_viewer_cannot_write_anything(engine: Engine, plan: Plan, tmp_path: Path) -> None:
    with Session(engine) as session:
        with pytest.raises(Forbidden, match="only panel members and admins"):
            create_action(session, principal=VIEWER, data=ActionCreate(ref="V-1", description="x"))
        with pytest.raises(Forbidden):
            update_action(
                session,
                principal=VIEWER,
                action_id=plan.shared,
                data=ActionUpdate(owner="me"),
                expected_version=1,
            )
        with pytest.raises(Forbidden):
            delete_action(session, principal=VIEWER, action_id=plan.shared, expected_version=1)
        with pytest.raises(Forbidden):
            _import(session, VIEWER, tmp_path, _workbook({"Actions": [_action_row("V-2")]}))
        assert session.get(Action, plan.shared).owner is None  # type: ignore[union-attr]


def test_hidden_action_is_not_found_rather_than_forbidden(engine: Engine, plan: Plan) -> None:
    """A refusal must not confirm that an action hidden from the principal exists."""
    with Session(engine) as session, pytest.raises(NotFound):
        update_action(
            session,
            principal=_panel(plan, "oakvale"),
            action_id=plan.hidden,
            data=ActionUpdate(owner="x"),
            expected_version=1,
        )


def test_import_reports_other_partnerships_rows_and_writes_nothing(
    engine: Engine, plan: Plan, tmp_path: Path
) -> None:
    rows = [
        _action_row("FERN-1"),  # own: fine
        _action_row("OAK-1"),  # Oakvale's existing action
        _action_row("NEW-1", "Child O", "1"),  # would create an Oakvale action
        _action_row("NEW-2", "Child P", "1"),  # a new Fernhill action: fine
    ]
    with Session(engine) as session:
        with pytest.raises(TrackerImportError) as info:
            _import(session, _panel(plan), tmp_path, _workbook({"Actions": rows}))
        problems = info.value.problems
        assert len(problems) == 2, problems
        assert problems[0].startswith("sheet 'Actions', row 3, column 'Ref': 'OAK-1' is an action")
        assert "Oakvale" in problems[0] and "own partnership" in problems[0]
        assert problems[1].startswith("sheet 'Actions', row 4, column 'Review': 'Child O'")
        assert "Oakvale" in problems[1]
        assert session.get(Action, plan.oak).description == "Oakvale audit"  # type: ignore[union-attr]
        assert not session.exec(select(Action).where(Action.ref == "NEW-2")).first()
        # Without the other partnership's rows the same panel member's import goes through.
        counts = _import(
            session, _panel(plan), tmp_path, _workbook({"Actions": [rows[0], rows[3]]})
        )
        assert counts["actions"] == {"created": 1, "updated": 1}
        new = session.exec(select(Action).where(Action.ref == "NEW-2")).one()
        assert new.partnership_id == plan.fernhill


def test_admin_import_may_change_every_partnership(
    engine: Engine, plan: Plan, tmp_path: Path
) -> None:
    admin = Principal("admin-x", Role.ADMIN)
    rows = [_action_row("OAK-1"), _action_row("NEW-1", "Child O", "1")]
    with Session(engine) as session:
        counts = _import(session, admin, tmp_path, _workbook({"Actions": rows}))
    assert counts["actions"] == {"created": 1, "updated": 1}


def test_edits_keep_links_the_editor_cannot_see(engine: Engine, plan: Plan, tmp_path: Path) -> None:
    """ALL-1 answers a published and an embargoed recommendation; TC-1 delivers HID-1. An
    Oakvale panel member sees neither hidden link, so their edits must not drop them."""
    with Session(engine) as session:
        session.add_all(
            [
                ActionRecommendationLink(
                    action_id=plan.shared, recommendation_id=plan.fernhill_rec
                ),
                ActionRecommendationLink(action_id=plan.shared, recommendation_id=plan.hidden_rec),
            ]
        )
        session.commit()
    oak = _panel(plan, "oakvale")
    with Session(engine) as session:
        shown = get_action(session, principal=oak, action_id=plan.shared)
        assert shown.recommendation_ids == [plan.fernhill_rec]
        update_action(
            session,
            principal=oak,
            action_id=plan.shared,
            data=ActionUpdate(recommendation_ids=[plan.fernhill_rec, plan.oakvale_rec]),
            expected_version=shown.version_id,
        )
        row = ["ALL-1", None, None, None, None, None, "Shared protocol", None, "completed"]
        course = ["TC-1", "Domestic abuse awareness", None, None, None, None]
        _import(session, oak, tmp_path, _workbook({"Actions": [row], "Training": [course]}))
        links = set(
            session.exec(
                select(ActionRecommendationLink.recommendation_id).where(
                    ActionRecommendationLink.action_id == plan.shared
                )
            ).all()
        )
        assert plan.hidden_rec in links
        tc1 = session.exec(select(TrainingCourse).where(TrainingCourse.ref == "TC-1")).one()
        delivered = session.exec(
            select(ActionCourseLink.action_id).where(ActionCourseLink.course_id == tc1.id)
        ).all()
        assert plan.hidden in delivered


def test_course_list_hides_links_to_hidden_actions_not_courses(engine: Engine, plan: Plan) -> None:
    with Session(engine) as session:
        viewer = {c.ref: c for c in list_courses(session, principal=VIEWER)}
        admin = {c.ref: c for c in list_courses(session, principal=Principal.system())}
    assert viewer["TC-1"].title == "Domestic abuse awareness"
    assert viewer["TC-1"].action_ids == []
    assert admin["TC-1"].action_ids == [plan.hidden]


def _rewritten(data: bytes, member: str, content: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, zipfile.ZipFile(out, "w") as zout:
        for item in zin.infolist():
            zout.writestr(item, content if item.filename == member else zin.read(item.filename))
    return out.getvalue()


def _zip_of(name: str, content: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(name, content)
    return out.getvalue()


GOOD = _workbook({"Actions": [_action_row("G-1")]})
CORRUPT = {
    "not a zip": b"PK? this is not a workbook",
    "empty": b"",
    "truncated": GOOD[: len(GOOD) // 2],
    "a zip of something else": _zip_of("notes.txt", b"hello"),
    "broken sheet XML": _rewritten(GOOD, "xl/worksheets/sheet1.xml", b"<worksheet><sheetData>"),
    "broken workbook XML": _rewritten(GOOD, "xl/workbook.xml", b"garbage"),
}


@pytest.mark.parametrize("kind", list(CORRUPT))
def test_corrupt_workbook_is_an_import_error_naming_the_file(
    engine: Engine, plan: Plan, tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "plan-2024.xlsx"
    path.write_bytes(CORRUPT[kind])
    with Session(engine) as session, pytest.raises(TrackerImportError) as info:
        import_tracker(session, principal=_panel(plan), path=path)
    [problem] = info.value.problems
    assert problem.startswith("cannot read plan-2024.xlsx: ")
    assert str(tmp_path) not in problem  # no server paths in messages


def test_unreadable_csv_names_the_csv(engine: Engine, plan: Plan, tmp_path: Path) -> None:
    (tmp_path / "actions.csv").write_text("Ref,Action\nC-1,ok\n", encoding="utf-8")
    (tmp_path / "training.csv").write_bytes(b"Ref,Course\nT-1,\xff\xfe bad\n")
    with Session(engine) as session, pytest.raises(TrackerImportError) as info:
        import_tracker(
            session,
            principal=_panel(plan),
            path=tmp_path,
            names={"training.csv": "Training.CSV"},
        )
    assert info.value.problems == ["cannot read Training.CSV: not UTF-8 text"]


# --------------------------------------------------------------------------- over HTTP


def _patch(client: TestClient, action_id: int, **fields: Any) -> Any:
    version = client.get(f"/api/actions/{action_id}").json()["version_id"]
    return client.patch(
        f"/api/actions/{action_id}", json={"version": version, **fields}, headers=api_csrf(client)
    )


def _upload(client: TestClient, name: str, data: bytes) -> Any:
    return client.post(
        "/api/tracker/import", files=[("files", (name, data, XLSX))], headers=api_csrf(client)
    )


def test_http_panel_member_of_a_cannot_touch_bs_action(
    clients: dict[str, TestClient], plan: Plan
) -> None:
    panel = clients["panel-a"]  # Fernhill
    refused = _patch(panel, plan.oak, status="completed")
    assert refused.status_code == 403 and "own partnership" in refused.json()["detail"]
    gone = panel.delete(f"/api/actions/{plan.oak}", params={"version": 1}, headers=api_csrf(panel))
    assert gone.status_code == 403
    assert clients["admin"].get(f"/api/actions/{plan.oak}").json()["status"] == "not_started"
    mine = _patch(panel, plan.fern, status="completed")
    assert mine.status_code == 200 and mine.json()["status"] == "completed"
    create = panel.post(
        "/api/actions",
        json={"ref": "N-9", "description": "x", "recommendation_ids": [plan.oakvale_rec]},
        headers=api_csrf(panel),
    )
    assert create.status_code == 403
    imported = _upload(panel, "ours.xlsx", _workbook({"Actions": [_action_row("OAK-1")]}))
    assert imported.status_code == 400
    [problem] = imported.json()["problems"]
    assert problem.startswith("sheet 'Actions', row 2, column 'Ref': 'OAK-1' is an action")
    page = panel.get("/tracker").text  # edit forms only where the service would allow them
    assert f'action="/tracker/actions/{plan.fern}"' in page
    assert f'action="/tracker/actions/{plan.oak}"' not in page


def test_http_viewer_cannot_write(clients: dict[str, TestClient], plan: Plan) -> None:
    viewer = clients["viewer"]
    headers = api_csrf(viewer)
    assert _patch(viewer, plan.shared, owner="me").status_code == 403
    delete = viewer.delete(f"/api/actions/{plan.shared}", params={"version": 1}, headers=headers)
    assert delete.status_code == 403
    create = viewer.post("/api/actions", json={"ref": "V-1", "description": "x"}, headers=headers)
    assert create.status_code == 403
    upload = _upload(viewer, "tracker.xlsx", _workbook({"Actions": [_action_row("V-2")]}))
    assert upload.status_code == 403 and "only panel members and admins" in upload.text


def test_http_corrupt_xlsx_is_400_with_the_file_name(
    clients: dict[str, TestClient], plan: Plan
) -> None:
    admin = clients["admin"]
    for kind in ("not a zip", "broken workbook XML"):
        response = _upload(admin, "Q3 action plan.xlsx", CORRUPT[kind])
        assert response.status_code == 400, response.text
        body = response.json()
        assert body["problems"][0].startswith("cannot read Q3 action plan.xlsx: ")
        assert "Q3 action plan.xlsx" in body["detail"]

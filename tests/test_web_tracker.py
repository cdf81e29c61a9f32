"""The tracker page and its JSON API through the real HTTP client: visibility, optimistic
locking (409, no lost update), located import errors and export round trips.

The world (tests/web_support.py) has action HID-1 answering only the embargoed review; each
test adds a published recommendation and action PUB-1 answering it through the API.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook, load_workbook

from kb.services.tracker_io import COLUMNS
from tests.web_support import MARKER, World, api_csrf, create_action, csrf_from

pytest_plugins = ["tests.web_fixtures"]

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def pub_action(engine, web_world: World, clients: dict[str, TestClient]) -> dict[str, Any]:
    """PUB-1: an action of panel-a's partnership answering the published review."""
    return create_action(
        engine,
        web_world,
        clients["panel-a"],
        number="1",
        ref="PUB-1",
        description="Joint midwife and health visitor handover",
        due_date="2020-01-31",
    )


def _refs(client: TestClient) -> set[str]:
    return {a["ref"] for a in client.get("/api/actions").json()}


def test_actions_visible_only_through_visible_reviews(clients, web_world, pub_action) -> None:
    assert _refs(clients["viewer"]) == {"PUB-1"}
    assert _refs(clients["panel-b"]) == {"PUB-1"}
    assert _refs(clients["panel-a"]) == {"PUB-1", "HID-1"}
    hidden = f"/api/actions/{web_world.hidden_action}"
    assert clients["viewer"].get(hidden).status_code == 404
    assert MARKER in clients["admin"].get(hidden).text
    courses = {c["ref"]: c for c in clients["viewer"].get("/api/training/courses").json()}
    assert courses["TC-1"]["action_ids"] == []  # the link to HID-1 is not shown
    admin_courses = clients["admin"].get("/api/training/courses").json()
    assert [c["action_ids"] for c in admin_courses] == [[web_world.hidden_action]]
    assert clients["viewer"].get("/api/training/sessions").json() == []


def test_signals_only_from_visible_material(clients, pub_action) -> None:
    admin = clients["admin"].get("/api/signals").json()
    kinds = {(s["kind"], tuple(a["ref"] for a in s["actions"])) for s in admin}
    assert ("no_impact_evidence", ("HID-1",)) in kinds
    assert ("overdue", ("PUB-1",)) in kinds  # due 2020-01-31, still in progress
    viewer = clients["viewer"].get("/api/signals")
    assert MARKER not in viewer.text and "HID-1" not in viewer.text
    assert [s["kind"] for s in viewer.json()] == ["overdue"]
    page = clients["panel-a"].get("/tracker").text
    assert page.index('id="signals"') < page.index('id="actions"')
    assert "No evidence of impact" in page and "days overdue" in page


def test_create_needs_editor_role_and_own_partnership(clients, pub_action) -> None:
    viewer = clients["viewer"]
    body = {"ref": "V-1", "description": "Viewer action"}
    refused = viewer.post("/api/actions", json=body, headers=api_csrf(viewer))
    assert refused.status_code == 403
    panel_b = clients["panel-b"]
    patch = {"version": pub_action["version_id"], "status": "completed"}
    other = panel_b.patch(f"/api/actions/{pub_action['id']}", json=patch, headers=api_csrf(panel_b))
    assert other.status_code == 403 and "own partnership" in other.json()["detail"]
    unknown = clients["admin"].post(
        "/api/actions",
        json={"ref": "A-2", "description": "x", "theme_ids": ["nope"]},
        headers=api_csrf(clients["admin"]),
    )
    assert unknown.status_code == 400 and "unknown theme" in unknown.json()["detail"]


def test_patch_with_stale_version_is_409_and_loses_nothing(clients, pub_action) -> None:
    panel, admin = clients["panel-a"], clients["admin"]
    url = f"/api/actions/{pub_action['id']}"
    seen = pub_action["version_id"]
    first = admin.patch(
        url,
        json={"version": seen, "impact_evidence": "Audit: 9 of 10 handovers joint"},
        headers=api_csrf(admin),
    )
    assert first.status_code == 200 and first.json()["version_id"] == seen + 1
    stale = panel.patch(url, json={"version": seen, "status": "closed"}, headers=api_csrf(panel))
    assert stale.status_code == 409
    body = stale.json()
    assert "changed by someone else" in body["detail"] and "reload" in body["detail"]
    assert body["current"]["version_id"] == seen + 1
    assert body["current"]["impact_evidence"] == "Audit: 9 of 10 handovers joint"
    now = panel.get(url).json()
    assert now["status"] == "in_progress" and now["impact_evidence"].startswith("Audit")
    retry = panel.patch(
        url, json={"version": seen + 1, "status": "closed"}, headers=api_csrf(panel)
    )
    assert retry.status_code == 200 and retry.json()["impact_evidence"].startswith("Audit")
    missing_version = panel.patch(url, json={"status": "closed"}, headers=api_csrf(panel))
    assert missing_version.status_code == 422


def test_delete_checks_version(clients, pub_action) -> None:
    admin = clients["admin"]
    url = f"/api/actions/{pub_action['id']}"
    stale = admin.delete(url, params={"version": 99}, headers=api_csrf(admin))
    assert stale.status_code == 409
    gone = admin.delete(url, params={"version": pub_action["version_id"]}, headers=api_csrf(admin))
    assert gone.status_code == 204
    assert admin.get(url).status_code == 404


def _edit_form(client: TestClient, action_id: int, version: int, **fields: str) -> Any:
    token = csrf_from(client.get("/tracker").text)
    data = {"csrf_token": token, "version": str(version), "status": "completed", **fields}
    return client.post(f"/tracker/actions/{action_id}", data=data, follow_redirects=False)


def test_edit_form_saves_and_stale_edit_shows_a_clear_message(clients, pub_action) -> None:
    panel, admin = clients["panel-a"], clients["admin"]
    page = panel.get("/tracker").text
    assert f'action="/tracker/actions/{pub_action["id"]}"' in page
    version = pub_action["version_id"]
    saved = _edit_form(
        admin,
        pub_action["id"],
        version,
        completed_date="2024-05-01",
        impact_evidence="Re-audit shows joint handovers",
        impact_rating="some",
    )
    assert saved.status_code == 303
    assert (
        saved.headers["location"] == f"/tracker?saved={pub_action['id']}#action-{pub_action['id']}"
    )
    assert "Saved PUB-1" in admin.get(saved.headers["location"]).text
    # panel-a still holds the old version: refused, told why, shown both values.
    stale = _edit_form(panel, pub_action["id"], version, impact_evidence="My other evidence")
    assert stale.status_code == 409
    assert "Not saved: PUB-1 was changed by someone else" in stale.text
    assert "Re-audit shows joint handovers" in stale.text and "My other evidence" in stale.text
    current = panel.get(f"/api/actions/{pub_action['id']}").json()
    assert current["impact_evidence"] == "Re-audit shows joint handovers"
    assert current["impact_rating"] == "some" and current["completed_date"] == "2024-05-01"
    # The re-rendered form carries the new version, so a deliberate retry goes through.
    assert f'name="version" value="{version + 1}"' in stale.text


def test_viewer_page_has_no_edit_or_import_and_no_hidden_action(clients, pub_action) -> None:
    page = clients["viewer"].get("/tracker")
    assert page.status_code == 200
    assert "PUB-1" in page.text and "Information sharing" in page.text
    assert "/tracker/actions/" not in page.text and 'id="tracker-import"' not in page.text
    assert MARKER not in page.text and "HID-1" not in page.text
    assert "Domestic abuse awareness" in page.text  # the course, without its hidden action
    refused = _edit_form(clients["viewer"], pub_action["id"], pub_action["version_id"])
    assert refused.status_code == 403
    panel = clients["panel-a"].get("/tracker").text
    assert 'id="tracker-import"' in panel and "/static/tracker.js" in panel


def _upload(client: TestClient, files: list[tuple[str, bytes, str]]) -> Any:
    return client.post(
        "/api/tracker/import",
        files=[("files", f) for f in files],
        headers=api_csrf(client),
    )


def _workbook(rows: list[list[Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = "Actions"
    sheet.append(list(COLUMNS["Actions"]))
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_import_errors_name_sheet_row_and_column(clients, pub_action) -> None:
    admin = clients["admin"]
    bad = _workbook(
        [
            ["N-1", None, None, "information-sharing", None, None, "Good row", "2024-01-31"],
            ["N-2", None, None, "no-such-theme", None, None, "Bad row", "31/02/2024"],
        ]
    )
    response = _upload(admin, [("tracker.xlsx", bad, XLSX)])
    assert response.status_code == 400
    problems = response.json()["problems"]
    assert any(p.startswith("sheet 'Actions', row 3, column 'Due date'") for p in problems)
    assert any("row 3, column 'Themes'" in p and "no-such-theme" in p for p in problems)
    assert "N-1" not in _refs(admin)  # all or nothing
    rows = "Ref,Action,Status\nC-1,Csv action,finished\n"
    csv_bad = _upload(admin, [("my-actions.csv", rows.encode(), "text/csv")])
    assert csv_bad.status_code == 400
    assert csv_bad.json()["problems"][0].startswith("sheet 'Actions', row 2, column 'Status'")
    wrong = _upload(admin, [("notes.txt", b"hello", "text/plain")])
    assert wrong.status_code == 400 and ".xlsx" in wrong.json()["detail"]
    broken = _upload(admin, [("tracker.xlsx", b"not a zip", XLSX)])
    assert broken.status_code == 400 and "cannot read" in broken.json()["problems"][0]
    viewer = _upload(clients["viewer"], [("tracker.xlsx", bad, XLSX)])
    assert viewer.status_code == 403


def _comparable(client: TestClient) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in a.items() if k != "version_id"} for a in client.get("/api/actions").json()
    ]


def test_xlsx_export_round_trips(clients, pub_action) -> None:
    admin = clients["admin"]
    before = _comparable(admin)
    export = admin.get("/api/tracker/export.xlsx")
    assert export.status_code == 200 and export.headers["content-type"] == XLSX
    assert 'filename="tracker.xlsx"' in export.headers["content-disposition"]
    book = load_workbook(io.BytesIO(export.content))
    assert book.sheetnames == ["Actions", "Training", "Sessions"]
    result = _upload(admin, [("tracker.xlsx", export.content, XLSX)])
    assert result.status_code == 200, result.text
    assert result.json()["actions"] == {"created": 0, "updated": 2}
    assert result.json()["training"] == {"created": 0, "updated": 1}
    assert _comparable(admin) == before


def test_csv_export_round_trips_and_hides_what_it_should(clients, pub_action) -> None:
    admin, viewer = clients["admin"], clients["viewer"]
    before = _comparable(admin)
    files = []
    for sheet in ("actions", "training", "sessions"):
        got = admin.get("/api/tracker/export.csv", params={"sheet": sheet})
        assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
        files.append((f"{sheet}.csv", got.content, "text/csv"))
    assert MARKER in files[0][1].decode()  # admin sees HID-1 and its review
    result = _upload(admin, files)
    assert result.status_code == 200, result.text
    assert result.json()["actions"] == {"created": 0, "updated": 2}
    assert _comparable(admin) == before
    mine = viewer.get("/api/tracker/export.csv").text
    rows = list(csv.reader(io.StringIO(mine)))
    assert [r[0] for r in rows[1:]] == ["PUB-1"] and MARKER not in mine
    xlsx = viewer.get("/api/tracker/export.xlsx").content
    cells = [
        str(c)
        for ws in load_workbook(io.BytesIO(xlsx)).worksheets
        for row in ws.iter_rows(values_only=True)
        for c in row
    ]
    assert "HID-1" not in cells and not [c for c in cells if re.search(MARKER, c)]

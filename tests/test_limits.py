"""Limits: typed text has a length limit everywhere it enters, JSON bodies are small, and one
user's upload volume per day is bounded (SECURITY.md, "Limits")."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from kb.models import MAX_TEXT, Action, ActionCreate
from kb.services.access import Principal
from kb.services.tracker import create_action
from tests.web_support import World, api_csrf

pytest_plugins = ["tests.web_fixtures"]

LONG = "x" * (MAX_TEXT + 1)


def test_action_text_is_limited_through_the_api(clients, web_world: World, engine) -> None:
    panel = clients["panel-a"]
    headers = api_csrf(panel)
    made = panel.post("/api/actions", json={"ref": "L-1", "description": LONG}, headers=headers)
    assert made.status_code == 422
    ok = panel.post("/api/actions", json={"ref": "L-1", "description": "Short"}, headers=headers)
    assert ok.status_code == 201, ok.text
    for field in ("description", "impact_evidence"):
        body = {"version": 1, field: LONG}
        edit = panel.patch(f"/api/actions/{ok.json()['id']}", json=body, headers=headers)
        assert edit.status_code == 422, edit.text
    long_owner = {"version": 1, "owner": "o" * 201}
    edit = panel.patch(f"/api/actions/{ok.json()['id']}", json=long_owner, headers=headers)
    assert edit.status_code == 422
    with Session(engine) as session:
        action = session.exec(select(Action).where(Action.ref == "L-1")).one()
        assert action.description == "Short" and action.version_id == 1


def test_action_text_is_limited_in_the_service(engine) -> None:
    data = ActionCreate.model_construct(ref="S-1", description=LONG)  # skips pydantic
    with Session(engine) as session, pytest.raises(ValueError, match="longer than 10000"):
        create_action(session, principal=Principal.system(), data=data)


def test_tracker_import_refuses_long_cells(clients, web_world: World, engine) -> None:
    admin = clients["admin"]
    body = f"Ref,Action,Owner\nIMP-1,{LONG},someone\nIMP-2,fine,{'o' * 201}\n".encode()
    response = admin.post(
        "/api/tracker/import",
        files=[("files", ("actions.csv", body, "text/csv"))],
        headers=api_csrf(admin),
    )
    assert response.status_code == 400
    text = response.text
    assert "row 2, column 'Action': longer than 10000 characters" in text
    assert "row 3, column 'Owner': longer than 200 characters" in text
    with Session(engine) as session:
        assert session.exec(select(Action).where(Action.ref == "IMP-1")).first() is None


def test_finding_corrections_are_limited(clients, web_world: World) -> None:
    panel = clients["panel-a"]
    response = panel.patch(
        f"/api/findings/{web_world.hidden_finding}", json={"text": LONG}, headers=api_csrf(panel)
    )
    assert response.status_code == 422


def test_json_bodies_have_a_small_limit_separate_from_uploads(clients, web_world: World) -> None:
    admin = clients["admin"]
    limit = admin.app.state.settings.max_json_kb * 1000
    big = admin.post(
        "/api/briefings",
        content=b'{"theme_id": "' + b"a" * limit + b'"}',
        headers={**api_csrf(admin), "content-type": "application/json"},
    )
    assert big.status_code == 413
    # A multipart upload of the same size is still accepted (it is under the upload limit).
    upload = admin.post(
        "/api/documents",
        files=[("files", ("big.md", b"# Big\n\n" + b"words " * (limit // 6), "text/markdown"))],
        data={"partnership": "Fernhill"},
        headers=api_csrf(admin),
    )
    assert upload.status_code == 202, upload.text  # queued as an ingest job


def test_upload_volume_per_user_per_day(clients, web_world: World, monkeypatch) -> None:
    panel, other = clients["panel-a"], clients["panel-b"]
    monkeypatch.setattr(panel.app.state.settings, "max_upload_mb_per_day", 1)
    chunk = b"# Report\n\n" + b"lorem ipsum " * 50_000  # ~0.6 MB

    def send(client, name: str):
        return client.post(
            "/api/documents",
            files=[("files", (name, chunk + name.encode(), "text/markdown"))],
            headers=api_csrf(client),
        )

    assert send(panel, "one.md").status_code == 202  # queued
    refused = send(panel, "two.md")
    assert refused.status_code == 429
    assert "at most 1 MB per user in 24 hours" in refused.json()["detail"]
    assert send(other, "three.md").status_code == 202  # another user's own allowance

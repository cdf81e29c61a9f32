"""The JSON API: reviews, tags, tag decisions, errors, OpenAPI, visibility by role."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from kb.models import AuditEvent
from tests.web_support import (
    MARKER,
    PASSWORD,
    SEES_EMBARGOED,
    USERS,
    api_csrf,
)

pytest_plugins = ["tests.web_fixtures"]


def test_api_requires_login(anon, web_world) -> None:
    for path in ("/api/me", "/api/reviews", f"/api/reviews/{web_world.published_review}"):
        response = anon.get(path)
        assert response.status_code == 401
        assert response.json()["detail"].startswith("not authenticated")
        assert "basic" not in response.headers.get("www-authenticate", "").lower()


def test_me(clients) -> None:
    me = clients["panel-b"].get("/api/me").json()
    assert me["username"] == "panel-b" and me["role"] == "panel"
    assert me["partnership"] == "Oakvale" and me["csrf_token"]


@pytest.mark.parametrize("user", list(USERS))
def test_visibility_of_embargoed_review(clients, web_world, user) -> None:
    c = clients[user]
    sees = SEES_EMBARGOED[user]
    listing = c.get("/api/reviews").json()
    ids = [item["id"] for item in listing["items"]]
    assert web_world.published_review in ids
    assert (web_world.hidden_review in ids) is sees
    assert listing["total"] == (2 if sees else 1)
    detail = c.get(f"/api/reviews/{web_world.hidden_review}")
    tags = c.get(f"/api/reviews/{web_world.hidden_review}/tags")
    if sees:
        assert detail.status_code == 200 and MARKER in detail.text
        assert tags.status_code == 200 and len(tags.json()) == len(web_world.hidden_tags)
    else:
        # 404, never 403: a hidden review's existence must not leak.
        assert detail.status_code == 404 and tags.status_code == 404
        assert detail.json() == {"detail": f"review {web_world.hidden_review} not found"}
        assert MARKER not in detail.text + tags.text + listing.__repr__()


def test_pagination(clients, web_world) -> None:
    c = clients["admin"]
    first = c.get("/api/reviews", params={"offset": 0, "limit": 1}).json()
    second = c.get("/api/reviews", params={"offset": 1, "limit": 1}).json()
    assert first["total"] == second["total"] == 2
    assert (first["offset"], first["limit"]) == (0, 1)
    assert [i["id"] for i in first["items"] + second["items"]] == sorted(
        [web_world.published_review, web_world.hidden_review]
    )
    bad = c.get("/api/reviews", params={"limit": 0})
    assert bad.status_code == 422 and isinstance(bad.json()["detail"], str)


def test_unknown_review_is_404_json(clients) -> None:
    response = clients["admin"].get("/api/reviews/999999")
    assert response.status_code == 404
    assert response.json() == {"detail": "review 999999 not found"}


def test_confirm_twice_with_same_version_conflicts(clients, web_world, engine) -> None:
    c = clients["panel-a"]
    tag_id = web_world.hidden_tags[0]
    headers = api_csrf(c)
    first = c.post(f"/api/tags/{tag_id}/confirm", json={"version": 1}, headers=headers)
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "confirmed" and first.json()["version_id"] == 2
    assert first.json()["decided_by"] == "panel-a"
    second = c.post(f"/api/tags/{tag_id}/reject", json={"version": 1}, headers=headers)
    assert second.status_code == 409
    assert "reload" in second.json()["detail"]
    with Session(engine) as session:
        events = session.exec(select(AuditEvent).where(AuditEvent.action == "tag.confirm")).all()
    assert [(e.username, e.object_id) for e in events] == [("panel-a", str(tag_id))]


def test_tag_decisions_respect_roles_and_visibility(clients, web_world) -> None:
    hidden_tag = web_world.hidden_tags[0]
    viewer = clients["viewer"]
    response = viewer.post(
        f"/api/tags/{web_world.published_tags[0]}/confirm",
        json={"version": 1},
        headers=api_csrf(viewer),
    )
    assert response.status_code == 403
    other_panel = clients["panel-b"]
    response = other_panel.post(
        f"/api/tags/{hidden_tag}/confirm", json={"version": 1}, headers=api_csrf(other_panel)
    )
    assert response.status_code == 404 and MARKER not in response.text
    bad = clients["admin"].post(
        f"/api/tags/{hidden_tag}/confirm", json={}, headers=api_csrf(clients["admin"])
    )
    assert bad.status_code == 422 and "version" in bad.json()["detail"]


def test_basic_auth_for_scripts(web_app, web_world) -> None:
    from fastapi.testclient import TestClient

    with TestClient(web_app) as script:
        assert script.get("/api/me", auth=("admin", PASSWORD)).json()["username"] == "admin"
        wrong = script.get("/api/me", auth=("admin", "wrong password!"))
        assert wrong.status_code == 401
        assert "basic" not in wrong.headers.get("www-authenticate", "").lower()
        # No cookie, so no CSRF token is needed: browsers never send Basic on their own.
        ok = script.post(
            f"/api/tags/{web_world.published_tags[0]}/confirm",
            json={"version": 1},
            auth=("panel-a", PASSWORD),
        )
        assert ok.status_code == 200, ok.text
        assert "kb_session" not in script.cookies


def test_openapi_schema_needs_login(anon, clients) -> None:
    assert anon.get("/api/openapi.json").status_code == 401
    schema = clients["viewer"].get("/api/openapi.json").json()
    paths = schema["paths"]
    assert {
        "/api/reviews",
        "/api/reviews/{review_id}",
        "/api/reviews/{review_id}/tags",
        "/api/tags/{tag_id}/confirm",
        "/api/tags/{tag_id}/reject",
        "/api/documents",
        "/api/me",
    } <= set(paths)
    assert not any(not p.startswith("/api") for p in paths), "web pages leaked into the schema"


def test_audit_of_embargoed_views_has_no_document_text(clients, web_world, engine) -> None:
    clients["admin"].get(f"/api/reviews/{web_world.hidden_review}")
    clients["panel-a"].get(f"/reviews/{web_world.hidden_review}")
    clients["admin"].get(f"/api/reviews/{web_world.published_review}")  # published: not audited
    with Session(engine) as session:
        events = session.exec(select(AuditEvent)).all()
    views = [e for e in events if e.action == "review.view"]
    assert {(e.username, e.object_id) for e in views} == {
        ("admin", str(web_world.hidden_review)),
        ("panel-a", str(web_world.hidden_review)),
    }
    assert {e.detail for e in views} == {"status=embargoed via=api", "status=embargoed via=web"}
    for event in events:
        dumped = " ".join(str(v) for v in event.model_dump().values())
        assert MARKER.lower() not in dumped.lower()
        assert "password" not in dumped.lower() and "argon2" not in dumped

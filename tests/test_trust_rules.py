"""Rules live in the services: hidden answers like missing, and the CLI refuses what the API does.

* A hidden passage or tag answers exactly like a missing one (same status, same body once the
  id asked for is swapped), naming only that id: never its review.
* Deciding a tag needs the panel of the review's partnership (or admin), through the API, the
  web form and ``kb tags confirm --as-user`` alike, and each decision is audited in the service.
* A viewer may edit only their own briefings; only the author or an admin deletes one.
* ``kb briefing --out`` of restricted material is audited; ``kb search`` refuses what the API
  refuses.
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlmodel import Session, col, select
from typer.testing import CliRunner

from kb.cli import app
from kb.models import AuditEvent, Briefing, TagStatus, ThemeTag
from tests.web_support import MARKER, World, api_csrf

pytest_plugins = ["tests.web_fixtures"]
runner = CliRunner()
MISSING = 987_654


def _same_as_missing(get, hidden: int) -> None:
    """``get(id)`` answers for a hidden id exactly as for a missing one."""
    hidden_answer, missing_answer = get(hidden), get(MISSING)
    assert hidden_answer.status_code == missing_answer.status_code
    assert _normalised(hidden_answer.text, hidden) == _normalised(missing_answer.text, MISSING)
    assert MARKER not in hidden_answer.text


def _normalised(body: str, asked: int) -> str:
    """The body with the id asked for (as a whole number) and the page's CSRF token blanked."""
    body = re.sub(r'name="csrf_token" value="[^"]*"', "", body)
    return re.sub(rf"(?<![\w-]){asked}(?![\w-])", "N", body)


def test_hidden_passage_and_tag_answer_like_missing(clients, web_world: World) -> None:
    passage, tag = web_world.hidden_passages[0], web_world.hidden_tags[0]
    for name in ("viewer", "panel-b"):
        c = clients[name]
        headers = api_csrf(c)
        _same_as_missing(lambda i, c=c: c.get(f"/api/passages/{i}/similar"), passage)
        _same_as_missing(lambda i, c=c: c.get(f"/search?like={i}"), passage)
        for verb in ("confirm", "reject"):
            _same_as_missing(
                lambda i, c=c, h=headers, v=verb: c.post(
                    f"/api/tags/{i}/{v}", json={"version": 1}, headers=h
                ),
                tag,
            )
        body = c.get(f"/api/passages/{passage}/similar").json()
        assert body == {"detail": f"passage {passage} not found"}


def test_tag_decisions_follow_the_partnership(clients, web_world: World, engine) -> None:
    tag = web_world.published_tags[0]  # Fernhill's published review

    def post(name: str):
        c = clients[name]
        return c.post(f"/api/tags/{tag}/confirm", json={"version": 1}, headers=api_csrf(c))

    assert post("viewer").status_code == 403
    assert post("panel-b").status_code == 403  # another partnership's review
    with Session(engine) as session:
        assert session.get(ThemeTag, tag).status == TagStatus.SUGGESTED
    assert post("panel-a").status_code == 200
    with Session(engine) as session:
        [event] = session.exec(select(AuditEvent).where(AuditEvent.action == "tag.confirm"))
        assert event.username == "panel-a" and event.object_id == str(tag)


def test_kb_tags_confirm_as_user_refuses_what_the_api_refuses(
    web_world: World, engine, fast_hashing
) -> None:
    tag = str(web_world.published_tags[0])
    viewer = runner.invoke(app, ["tags", "confirm", tag, "--as-user", "viewer"])
    assert viewer.exit_code == 1 and "only panel members and admins" in viewer.output
    other = runner.invoke(app, ["tags", "reject", tag, "--as-user", "panel-b"])
    assert other.exit_code == 1 and "own partnership" in other.output
    hidden = str(web_world.hidden_tags[0])
    unseen = runner.invoke(app, ["tags", "confirm", hidden, "--as-user", "viewer"])
    assert unseen.exit_code == 1 and f"tag {hidden} not found" in unseen.output
    assert MARKER not in unseen.output
    with Session(engine) as session:
        assert session.get(ThemeTag, int(tag)).status == TagStatus.SUGGESTED
        assert not session.exec(select(AuditEvent).where(AuditEvent.action == "tag.confirm")).all()
    done = runner.invoke(app, ["tags", "confirm", tag, "--as-user", "panel-a"])
    assert done.exit_code == 0, done.output
    operator = runner.invoke(app, ["tags", "reject", hidden])  # the operator acts as admin
    assert operator.exit_code == 0, operator.output
    with Session(engine) as session:
        events = session.exec(
            select(AuditEvent).where(col(AuditEvent.action).in_(["tag.confirm", "tag.reject"]))
        ).all()
        assert sorted((e.action, e.username) for e in events) == [
            ("tag.confirm", "panel-a"),
            ("tag.reject", "cli"),
        ]


def _published_briefing(client) -> dict:
    response = client.post(
        "/api/briefings", json={"theme_id": "under-1s"}, headers=api_csrf(client)
    )
    assert response.status_code in (200, 201), response.text
    return response.json()


def test_viewer_may_not_edit_or_delete_someone_elses_briefing(
    clients, web_world: World, engine
) -> None:
    saved = _published_briefing(clients["admin"])
    bid = saved["id"]
    viewer, panel = clients["viewer"], clients["panel-b"]
    edit = {"version": 1, "title": "Taken over"}
    refused = viewer.patch(f"/api/briefings/{bid}", json=edit, headers=api_csrf(viewer))
    assert refused.status_code == 403
    gone = viewer.delete(f"/api/briefings/{bid}?version=1", headers=api_csrf(viewer))
    assert gone.status_code == 403
    assert (
        panel.delete(f"/api/briefings/{bid}?version=1", headers=api_csrf(panel)).status_code == 403
    )
    with Session(engine) as session:
        row = session.get(Briefing, bid)
        assert row.title == saved["title"] and row.version_id == 1
    # A viewer edits their own; panel members may edit shared drafts.
    own = _published_briefing(viewer)
    mine = viewer.patch(f"/api/briefings/{own['id']}", json=edit, headers=api_csrf(viewer))
    assert mine.status_code == 200, mine.text
    assert (
        panel.patch(f"/api/briefings/{bid}", json=edit, headers=api_csrf(panel)).status_code == 200
    )


def test_kb_briefing_out_of_restricted_material_is_audited(
    web_world: World, engine, tmp_path: Path
) -> None:
    out = tmp_path / "b.html"
    result = runner.invoke(
        app,
        ["briefing", "--review", str(web_world.hidden_review), "--include-restricted",
         "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert out.is_file()
    with Session(engine) as session:
        [event] = session.exec(select(AuditEvent).where(AuditEvent.action == "briefing.export"))
        assert event.username == "system" and "format=html" in (event.detail or "")


def test_kb_search_validates_like_the_api(clients, web_world: World, engine) -> None:
    api = clients["admin"].get("/api/search", params={"q": "baby", "theme": "not-a-theme"})
    assert api.status_code == 400 and "unknown theme not-a-theme" in api.text
    cli = runner.invoke(app, ["search", "baby", "--theme", "not-a-theme"])
    assert cli.exit_code == 1 and "unknown theme not-a-theme" in cli.output
    for args, message in (
        (["baby", "--top", "0"], "top must be between 1 and 50"),
        (["baby", "--since", "2020", "--until", "2019"], "ends before it starts"),
        (["x" * 4001], "longer than 4000 characters"),
        (["   "], "give a query"),
    ):
        refused = runner.invoke(app, ["search", *args])
        assert refused.exit_code == 1 and message in refused.output, refused.output


def test_enable_does_not_revive_sessions_from_before_the_disable(
    clients, web_world: World, engine
) -> None:
    viewer = clients["viewer"]
    assert viewer.get("/api/me").status_code == 200
    assert runner.invoke(app, ["users", "disable", "viewer"]).exit_code == 0
    assert viewer.get("/api/me").status_code == 401
    assert runner.invoke(app, ["users", "enable", "viewer"]).exit_code == 0
    assert viewer.get("/api/me").status_code == 401  # the old cookie stays dead
    with Session(engine) as session:
        actions = session.exec(
            select(AuditEvent.action, AuditEvent.username).where(
                col(AuditEvent.action).in_(["user.disable", "user.enable"])
            )
        ).all()
        assert sorted(actions) == [("user.disable", "system"), ("user.enable", "system")]

"""Account life cycle: logout on every worker, changing and resetting passwords, disabling.

ASVS 2.1.5 / 2.1.6 (change your password with the current one), 3.3.1 (logout holds), 3.3.3
(a password change ends the other sessions).
"""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kb.cli import app as cli
from tests.web_support import PASSWORD, csrf_from, login
from web.app import create_app

pytest_plugins = ["tests.web_fixtures"]

runner = CliRunner()
NEW_PASSWORD = "a brand new passphrase"


def _change(client: TestClient, current: str, new: str, confirm: str | None = None):  # type: ignore[no-untyped-def]
    page = client.get("/account/password")
    assert page.status_code == 200
    return client.post(
        "/account/password",
        data={
            "current": current,
            "new": new,
            "confirm": new if confirm is None else confirm,
            "csrf_token": csrf_from(page.text),
        },
    )


def test_logout_holds_on_another_worker_and_after_a_restart(web_app, web_world) -> None:
    with TestClient(web_app) as c:
        login(c, "viewer")
        cookie = c.cookies["kb_session"]
        token = c.get("/api/me").json()["csrf_token"]
        assert c.post("/logout", data={"csrf_token": token}, follow_redirects=False).is_redirect
    # A second app on the same database is what another worker, or a restarted server, is.
    with TestClient(create_app(), cookies={"kb_session": cookie}) as other_worker:
        assert other_worker.get("/api/me").status_code == 401


def test_change_password_needs_the_current_one_and_ends_other_sessions(web_app, web_world) -> None:
    with TestClient(web_app) as here, TestClient(web_app) as elsewhere:
        login(here, "viewer")
        login(elsewhere, "viewer")
        wrong = _change(here, "not my password at all", NEW_PASSWORD)
        assert wrong.status_code == 400 and "current password is wrong" in wrong.text
        mismatch = _change(here, PASSWORD, NEW_PASSWORD, confirm=NEW_PASSWORD + "!")
        assert mismatch.status_code == 400 and "do not match" in mismatch.text
        short = _change(here, PASSWORD, "too short")
        assert short.status_code == 400 and "at least 12" in short.text
        assert elsewhere.get("/api/me").status_code == 200  # nothing changed yet
        done = _change(here, PASSWORD, NEW_PASSWORD)
        assert done.status_code == 200 and "was changed" in done.text
        assert here.get("/api/me").status_code == 200  # this browser stays logged in
        assert elsewhere.get("/api/me").status_code == 401  # every other session ended
    with TestClient(web_app) as fresh:
        page = fresh.get("/login")
        old = fresh.post(
            "/login",
            data={"username": "viewer", "password": PASSWORD, "csrf_token": csrf_from(page.text)},
        )
        assert old.status_code == 401
        login(fresh, "viewer", NEW_PASSWORD)


def test_wrong_current_passwords_hit_the_login_rate_limit(web_app, web_world) -> None:
    with TestClient(web_app) as c:
        login(c, "viewer")
        statuses = [_change(c, f"guess number {i:04d}", NEW_PASSWORD).status_code for i in range(6)]
        assert statuses[:5] == [400] * 5 and statuses[5] == 429
        assert _change(c, PASSWORD, NEW_PASSWORD).status_code == 429  # even the right one, now


def test_password_page_needs_login_and_csrf(web_app, web_world) -> None:
    with TestClient(web_app) as anon:
        assert "/login" in str(anon.get("/account/password").url)
    with TestClient(web_app) as c:
        login(c, "viewer")
        data = {"current": PASSWORD, "new": NEW_PASSWORD, "confirm": NEW_PASSWORD}
        assert c.post("/account/password", data=data).status_code == 403


def test_cli_reset_disable_enable_and_list(web_app, web_world) -> None:
    with TestClient(web_app) as session:
        login(session, "viewer")
        passwd = ["users", "passwd", "viewer", "--password-stdin"]
        reset = runner.invoke(cli, passwd, input="short\n")
        assert reset.exit_code == 1 and "at least 12" in reset.output
        unknown = runner.invoke(cli, ["users", "disable", "nobody-here"])
        assert unknown.exit_code == 1 and "no user 'nobody-here'" in unknown.output
        reset = runner.invoke(cli, passwd, input=NEW_PASSWORD + "\n")
        assert reset.exit_code == 0, reset.output
        assert session.get("/api/me").status_code == 401  # their sessions ended
        login(session, "viewer", NEW_PASSWORD)
        assert runner.invoke(cli, ["users", "disable", "viewer"]).exit_code == 0
        assert session.get("/api/me").status_code == 401
        listed = runner.invoke(cli, ["users", "list", "--json"])
        rows = {row["username"]: row for row in json.loads(listed.stdout)}
        assert rows["viewer"] == {
            "username": "viewer",
            "role": "viewer",
            "partnership": "Fernhill",
            "active": False,
        }
        assert "password" not in listed.stdout and "argon2" not in listed.stdout
        assert runner.invoke(cli, ["users", "enable", "viewer"]).exit_code == 0
        login(session, "viewer", NEW_PASSWORD)

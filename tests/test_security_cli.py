"""``kb users add`` (passwords never echoed or stored in clear) and ``kb serve`` host checks."""

from __future__ import annotations

from sqlmodel import Session, select
from typer.testing import CliRunner

from kb.cli import app
from kb.models import AuditEvent, Role, User
from kb.services.users import authenticate

pytest_plugins = ["tests.web_fixtures"]
runner = CliRunner()
SECRET = "s3cret-and-long-enough"


def test_users_add_from_stdin(engine, fast_hashing) -> None:
    result = runner.invoke(
        app,
        [
            "users",
            "add",
            "Alice",
            "--role",
            "panel",
            "--partnership",
            "Fernhill",
            "--password-stdin",
        ],
        input=SECRET + "\n",
    )
    assert result.exit_code == 0, result.output
    assert "created user alice (panel)" in result.output
    assert SECRET not in result.output and "argon2" not in result.output
    with Session(engine) as session:
        user = session.exec(select(User).where(User.username == "alice")).one()
        assert user.role == Role.PANEL and user.password_hash.startswith("$argon2id$")
        assert SECRET not in user.password_hash
        assert authenticate(session, username="ALICE", password=SECRET) is not None
        assert authenticate(session, username="alice", password=SECRET + "x") is None
        [event] = session.exec(select(AuditEvent).where(AuditEvent.action == "user.create"))
        assert SECRET not in (event.detail or "")


def test_users_add_prompts_hidden(engine, fast_hashing) -> None:
    result = runner.invoke(
        app, ["users", "add", "bob", "--role", "viewer"], input=f"{SECRET}\n{SECRET}\n"
    )
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output


def test_users_add_rejects_bad_input(engine, fast_hashing) -> None:
    short = runner.invoke(
        app, ["users", "add", "carol", "--role", "viewer", "--password-stdin"], input="short\n"
    )
    assert short.exit_code == 1 and "at least 12 characters" in short.output
    bad_name = runner.invoke(
        app,
        ["users", "add", "<b>x</b>", "--role", "admin", "--password-stdin"],
        input=SECRET + "\n",
    )
    assert bad_name.exit_code == 1 and "username must be" in bad_name.output
    panel = runner.invoke(
        app, ["users", "add", "dave", "--role", "panel", "--password-stdin"], input=SECRET + "\n"
    )
    assert panel.exit_code == 1 and "--partnership" in panel.output
    runner.invoke(
        app, ["users", "add", "erin", "--role", "viewer", "--password-stdin"], input=SECRET + "\n"
    )
    again = runner.invoke(
        app, ["users", "add", "Erin", "--role", "viewer", "--password-stdin"], input=SECRET + "\n"
    )
    assert again.exit_code == 1 and "already exists" in again.output


def test_serve_refuses_public_host_without_flag(kb_env, monkeypatch) -> None:
    from kb.cli import serving

    calls: list[serving.PreforkServer] = []
    monkeypatch.setattr(serving.PreforkServer, "run", lambda self: calls.append(self))
    refused = runner.invoke(app, ["serve", "--no-worker", "--host", "0.0.0.0"])
    assert refused.exit_code == 1 and "refusing to listen on 0.0.0.0" in refused.output
    assert calls == []
    ok = runner.invoke(
        app, ["serve", "--no-worker", "--host", "0.0.0.0", "--public", "--port", "8123"]
    )
    assert ok.exit_code == 0, ok.output
    assert "warning" in ok.output and calls[-1].cfg.bind == ["0.0.0.0:8123"]
    local = runner.invoke(app, ["serve", "--no-worker"])
    assert local.exit_code == 0 and calls[-1].cfg.bind == ["127.0.0.1:8000"]
    ipv6 = runner.invoke(app, ["serve", "--no-worker", "--host", "::1"])
    assert ipv6.exit_code == 0 and calls[-1].cfg.bind == ["[::1]:8000"]

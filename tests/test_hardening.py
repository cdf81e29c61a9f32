"""Smaller holes: forwarded headers, symbolic links out of an ingest folder, file modes."""

from __future__ import annotations

import stat
from pathlib import Path

from sqlmodel import Session, select
from typer.testing import CliRunner

from kb.cli import app
from kb.config import get_settings
from kb.models import Document

runner = CliRunner()
TEXT = b"# Child K\n\n## Background\n\nChild K was a 2-year-old.\n"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_serve_believes_forwarded_headers_only_from_configured_proxies(kb_env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tests.test_serving import served_with, uvicorn_config

    config = uvicorn_config(served_with(monkeypatch)[-1])
    assert config.proxy_headers is False
    monkeypatch.setenv("KB_TRUSTED_PROXIES", " 10.1.2.3, 127.0.0.1 ")
    get_settings.cache_clear()
    server = served_with(monkeypatch)[-1]
    config = uvicorn_config(server)
    assert config.proxy_headers is True
    assert server.cfg.forwarded_allow_ips == ["10.1.2.3", "127.0.0.1"]
    assert list(config.forwarded_allow_ips) == ["10.1.2.3", "127.0.0.1"]  # what uvicorn trusts


def test_ingest_refuses_symlinks_leaving_the_folder(engine, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.md").write_bytes(TEXT + b"Not for this folder.\n")
    folder = tmp_path / "incoming"
    (folder / "sub").mkdir(parents=True)
    (folder / "real.md").write_bytes(TEXT)
    (folder / "link.md").symlink_to(outside / "secret.md")
    (folder / "sub" / "dirlink").symlink_to(outside, target_is_directory=True)
    (folder / "inside.md").symlink_to(folder / "real.md")  # stays in the folder: fine
    result = runner.invoke(app, ["ingest", str(folder), "--no-tag", "--json"])
    assert result.exit_code == 0, result.output
    assert "symbolic link to a file outside the folder" in result.output
    with Session(engine) as session:
        names = set(session.exec(select(Document.source_name)).all())
    # The link inside the folder and its target have the same bytes: one document.
    assert len(names) == 1 and names <= {"real.md", "inside.md"}


def test_kb_home_database_and_secret_key_are_private(kb_env: Path) -> None:
    kb_env.mkdir(mode=0o755)
    kb_env.chmod(0o755)  # made by hand, too open
    assert runner.invoke(app, ["init"]).exit_code == 0
    assert _mode(kb_env) == 0o700
    url = get_settings().resolved_database_url
    if url.startswith("sqlite:///"):
        database = Path(url.removeprefix("sqlite:///"))
        assert _mode(database) == 0o600
        for extra in ("-wal", "-shm"):
            side = database.with_name(database.name + extra)
            if side.exists():
                assert _mode(side) == 0o600
    from web.app import create_app

    create_app()
    assert _mode(kb_env / "secret_key") == 0o600

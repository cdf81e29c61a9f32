"""POST /api/documents: roles, sanitised names (path traversal), size limit, the queued job's
results (run by a worker, here in-process), audit."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session, select

from kb.config import get_settings
from kb.db import get_engine
from kb.models import AuditEvent, Review, ReviewStatus
from kb.services import jobs
from kb.services.uploads import safe_filename
from tests.web_support import api_csrf

pytest_plugins = ["tests.web_fixtures"]

LCSPR = b"""# Local Child Safeguarding Practice Review: Child U

Published by the Fernhill Safeguarding Children Partnership.

## Background

Child U was a 3-month-old baby living with her mother and her mother's new partner.

## Findings

1. Information held by the midwife was not shared with the health visitor.
"""


def _all_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def finished(client, response) -> dict:  # type: ignore[no-untyped-def]
    """202 + Location → run the queue as a worker would → the finished job via the API."""
    assert response.status_code == 202, response.text
    location = response.headers["location"]
    assert location == f"/api/jobs/{response.json()['id']}"
    assert response.json()["state"] == "queued"
    assert jobs.run_pending(get_engine(), settings=get_settings()) >= 1
    job = client.get(location)
    assert job.status_code == 200, job.text
    assert job.json()["state"] == "done"
    return job.json()


def test_safe_filename() -> None:
    assert safe_filename("../../etc/passwd.md") == "passwd.md"
    assert safe_filename("..\\..\\windows\\win.ini") == "win.ini"
    assert safe_filename("/abs/path/.hidden.txt") == "hidden.txt"
    assert safe_filename("..") == "upload"
    assert safe_filename("") == "upload"
    assert safe_filename("Child <Q> report\x00.PDF") == "Child _Q_ report_.pdf"
    assert "/" not in safe_filename("a/" * 300 + "b" * 500 + ".docx")


def test_upload_with_path_traversal_name_is_stored_safely(clients, tmp_path, engine) -> None:
    home = get_settings().home
    before = _all_files(tmp_path)
    c = clients["panel-a"]
    response = c.post(
        "/api/documents",
        files=[("files", ("../../etc/passwd.md", LCSPR, "text/markdown"))],
        headers=api_csrf(c),
    )
    body = finished(c, response)
    assert body["failed"] == [] and body["skipped"] == []
    [item] = body["ingested"]
    assert item["path"] == "passwd.md" and item["original"] == "../../etc/passwd.md"
    assert str(home) not in str(body)  # no server paths in results
    # Nothing was written outside KB_HOME/uploads, and the batch folder is gone again.
    new_files = _all_files(tmp_path) - before
    assert all(home in p.parents for p in new_files), new_files
    assert not any((home / "uploads").rglob("*.md"))
    assert not (tmp_path / "etc").exists() and not (home.parent / "etc").exists()
    with Session(engine) as session:
        [review] = [session.get(Review, rid) for rid in item["reviews"]][:1]
        assert review.status == ReviewStatus.IN_PROGRESS  # restricted by default
        events = session.exec(select(AuditEvent).where(AuditEvent.action == "document.upload"))
        assert [e.username for e in events] == ["panel-a"]
    # The panel member's upload belongs to their partnership, so they see it and others do not.
    assert c.get(f"/api/reviews/{item['reviews'][0]}").status_code == 200
    assert clients["panel-b"].get(f"/api/reviews/{item['reviews'][0]}").status_code == 404


def test_upload_several_files_with_per_file_results(clients) -> None:
    c = clients["admin"]
    response = c.post(
        "/api/documents",
        files=[
            ("files", ("one.md", LCSPR, "text/markdown")),
            ("files", ("one.md", LCSPR, "text/markdown")),  # same bytes, same name
            ("files", ("broken.pdf", b"%PDF-1.4 not really", "application/pdf")),
        ],
        data={"status": "published", "partnership": "Oakvale"},
        headers=api_csrf(c),
    )
    body = finished(c, response)
    assert [i["path"] for i in body["ingested"]] == ["one.md"]
    assert body["skipped"] == [
        {"path": "one-2.md", "original": "one.md", "reason": "already ingested"}
    ]
    assert [f["path"] for f in body["failed"]] == ["broken.pdf"]


def test_upload_needs_panel_or_admin(clients) -> None:
    c = clients["viewer"]
    response = c.post(
        "/api/documents", files=[("files", ("x.md", LCSPR, "text/markdown"))], headers=api_csrf(c)
    )
    assert response.status_code == 403
    assert response.json()["detail"] == "this needs the panel or admin role"


def test_oversized_upload_is_413(clients, monkeypatch) -> None:
    c = clients["admin"]
    settings = c.app.state.settings
    monkeypatch.setattr(settings, "max_file_mb", 1)
    big = b"# Big\n\n" + b"words " * 200_000
    response = c.post(
        "/api/documents", files=[("files", ("big.md", big, "text/markdown"))], headers=api_csrf(c)
    )
    assert response.status_code == 413
    assert "larger than 1 MB" in response.json()["detail"]
    assert not any((settings.home / "uploads").rglob("big.md"))


def test_upload_without_files_is_422(clients) -> None:
    c = clients["admin"]
    response = c.post("/api/documents", data={"status": "published"}, headers=api_csrf(c))
    assert response.status_code == 422

"""Document identity: a same-named file is a new version only of the uploader's own document.

The attack: a panel member of another partnership uploads a file with the same name as an
embargoed review's document. It must become a new document of the uploader's partnership; the
embargoed review keeps its partnership, status, passages and findings, and stays hidden. The same
holds for ``kb ingest`` and for two partnerships that both upload ``report.md`` by accident.
A new version never changes status: that is its own audited action.
"""

from __future__ import annotations

import threading
from pathlib import Path

from sqlmodel import Session, col, func, select
from typer.testing import CliRunner

from kb.cli import app
from kb.config import get_settings
from kb.db import get_engine
from kb.models import AuditEvent, Document, Finding, Passage, Review, ReviewStatus, Role
from kb.services import jobs
from kb.services.access import Principal
from kb.services.ingest import IngestOptions, ingest_paths
from tests.web_support import MARKER, World, api_csrf

pytest_plugins = ["tests.web_fixtures"]
runner = CliRunner()

HIDDEN_NAME = "b.md"  # the embargoed review's document in the test world (sha "b")
ATTACK = b"""# Local Child Safeguarding Practice Review: Child Decoy

## Background

Child Decoy was a 4-month-old baby. Nothing here belongs to another partnership.

## Findings

1. The health visitor did not share the concern.
"""


def _snapshot(engine, world: World) -> dict:
    """Everything about the embargoed review that an attack must not change."""
    with Session(engine) as session:
        review = session.get(Review, world.hidden_review)
        document = session.get(Document, world.hidden_document)
        passages = session.exec(
            select(func.count(col(Passage.id))).where(Passage.review_id == review.id)
        ).one()
        findings = session.exec(
            select(func.count(col(Finding.id))).where(Finding.review_id == review.id)
        ).one()
        return {
            "partnership": review.partnership_id,
            "status": review.status,
            "document": review.document_id,
            "version": review.version_id,
            "passages": passages,
            "findings": findings,
            "current": document.is_current,
        }


def _upload(client, name: str, body: bytes, **data: str):
    """Upload, run the queued job as a worker would, and answer with the finished job."""
    queued = client.post(
        "/api/documents",
        files=[("files", (name, body, "text/markdown"))],
        data=data,
        headers=api_csrf(client),
    )
    assert queued.status_code == 202, queued.text
    assert jobs.run_pending(get_engine(), settings=get_settings()) >= 1
    return client.get(queued.headers["location"])


def test_same_named_upload_from_another_partnership_is_a_new_document(
    clients, web_world: World, engine
) -> None:
    before = _snapshot(engine, web_world)
    response = _upload(clients["panel-b"], HIDDEN_NAME, ATTACK, status="published")
    assert response.status_code == 200, response.text
    [item] = response.json()["ingested"]
    assert item["document_id"] != web_world.hidden_document
    assert web_world.hidden_review not in item["reviews"]
    assert _snapshot(engine, web_world) == before
    with Session(engine) as session:
        new = session.get(Review, item["reviews"][0])
        assert new.partnership_id != before["partnership"]  # Oakvale's own document
        assert session.get(Document, item["document_id"]).version == 1
    # Still hidden from the attacker and from viewers; nothing of it leaks into the answer.
    for name in ("panel-b", "viewer"):
        assert clients[name].get(f"/api/reviews/{web_world.hidden_review}").status_code == 404
        briefing = clients[name].get(f"/api/briefings/{web_world.hidden_briefing}")
        assert briefing.status_code == 404 and MARKER not in briefing.text
    assert MARKER not in response.text


def test_admin_upload_for_another_partnership_is_a_new_document(
    clients, web_world: World, engine
) -> None:
    before = _snapshot(engine, web_world)
    response = _upload(clients["admin"], HIDDEN_NAME, ATTACK, partnership="Oakvale")
    [item] = response.json()["ingested"]
    assert item["document_id"] != web_world.hidden_document
    assert _snapshot(engine, web_world) == before


def test_own_partnership_upload_is_a_new_version_keeping_status(
    clients, web_world: World, engine
) -> None:
    before = _snapshot(engine, web_world)
    # Same pseudonym (the title, here) as the stored review: its new version.
    second = f"Child {MARKER}\n\nBackground\n\nA second draft of the text.\n".encode()
    response = _upload(clients["panel-a"], HIDDEN_NAME, second, status="published")
    [item] = response.json()["ingested"]
    with Session(engine) as session:
        document = session.get(Document, item["document_id"])
        review = session.get(Review, web_world.hidden_review)
        assert document.version == 2
        assert not session.get(Document, web_world.hidden_document).is_current
        # The review keeps its id, its partnership and its status; only the text moved on.
        assert review.document_id == document.id
        assert review.partnership_id == before["partnership"]
        assert review.status == ReviewStatus.EMBARGOED
    assert clients["viewer"].get(f"/api/reviews/{web_world.hidden_review}").status_code == 404


def test_kb_ingest_of_a_same_named_file_for_another_partnership(
    web_world: World, engine, tmp_path: Path
) -> None:
    folder = tmp_path / "incoming"
    folder.mkdir()
    (folder / HIDDEN_NAME).write_bytes(ATTACK)
    before = _snapshot(engine, web_world)
    result = runner.invoke(
        app, ["ingest", str(folder), "--partnership", "Oakvale", "--no-tag", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert _snapshot(engine, web_world) == before
    (folder / HIDDEN_NAME).write_bytes(ATTACK + b"\nA second draft.\n")
    as_panel = runner.invoke(
        app, ["ingest", str(folder), "--as-user", "panel-b", "--no-tag", "--status", "published"]
    )
    assert as_panel.exit_code == 0, as_panel.output
    assert _snapshot(engine, web_world) == before
    with Session(engine) as session:
        current = session.exec(
            select(Document).where(Document.source_name == HIDDEN_NAME, col(Document.is_current))
        ).all()
        # Fernhill's embargoed document and Oakvale's second version: one current each.
        assert sorted(d.version for d in current) == [1, 2]


def test_kb_ingest_as_viewer_is_refused(web_world: World, engine, tmp_path: Path) -> None:
    (tmp_path / "x.md").write_bytes(ATTACK)
    result = runner.invoke(app, ["ingest", str(tmp_path / "x.md"), "--as-user", "viewer"])
    assert result.exit_code == 1 and "panel members and admins" in result.output


def test_concurrent_same_named_ingests_never_duplicate_current_versions(
    web_world: World, engine, tmp_path: Path
) -> None:
    """Six threads ingest different ``report.md`` files for one partnership, and the same bytes
    under two other names: versions 1..n, one current, and a clean "already ingested"."""
    paths = []
    for n in range(4):
        folder = tmp_path / f"f{n}"
        folder.mkdir()
        (folder / "report.md").write_bytes(ATTACK + f"\nDraft {n}.\n".encode())
        paths.append(folder / "report.md")
    for name in ("same-1.md", "same-2.md"):
        (tmp_path / name).write_bytes(ATTACK + b"\nThe same bytes.\n")
        paths.append(tmp_path / name)
    principal = Principal(username="panel-a", role=Role.PANEL, partnership_id=1)
    options = IngestOptions(partnership="Fernhill", principal=principal)
    reports: list = []
    barrier = threading.Barrier(len(paths))

    def one(path: Path) -> None:
        barrier.wait(timeout=30)
        reports.append(ingest_paths(engine=engine, paths=[path], options=options))

    threads = [threading.Thread(target=one, args=(p,)) for p in paths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert all(not r.failed for r in reports), [r.failed for r in reports]
    skipped = [s["reason"] for r in reports for s in r.skipped]
    assert len(skipped) == 1 and skipped[0].startswith("already ingested"), skipped
    with Session(engine) as session:
        reports_docs = session.exec(
            select(Document).where(Document.source_name == "report.md")
        ).all()
        assert sorted(d.version for d in reports_docs) == [1, 2, 3, 4]
        assert sum(d.is_current for d in reports_docs) == 1


def test_status_change_is_its_own_audited_action(clients, web_world: World, engine) -> None:
    url = f"/api/reviews/{web_world.hidden_review}/status"
    published = f"/api/reviews/{web_world.published_review}/status"

    def post(name: str, target: str, status: str):
        c = clients[name]
        return c.post(target, json={"status": status}, headers=api_csrf(c))

    # Hidden review: like a missing one. Visible but not theirs: refused.
    assert post("panel-b", url, "published").status_code == 404
    assert post("viewer", url, "published").status_code == 404
    assert post("panel-b", published, "embargoed").status_code == 403
    assert post("viewer", published, "embargoed").status_code == 403
    assert _snapshot(engine, web_world)["status"] == ReviewStatus.EMBARGOED
    ok = post("panel-a", url, "published")
    assert ok.status_code == 200 and ok.json()["status"] == "published"
    with Session(engine) as session:
        [event] = session.exec(select(AuditEvent).where(AuditEvent.action == "review.status"))
        assert event.username == "panel-a" and event.object_id == str(web_world.hidden_review)


def test_kb_reviews_status_as_user_follows_the_same_rule(web_world: World, engine) -> None:
    review = str(web_world.published_review)
    refused = runner.invoke(app, ["reviews", "status", review, "embargoed", "--as-user", "panel-b"])
    assert refused.exit_code == 1 and "own panel or an admin" in refused.output
    hidden = runner.invoke(
        app, ["reviews", "status", str(web_world.hidden_review), "published", "--as-user", "viewer"]
    )
    assert hidden.exit_code == 1 and f"review {web_world.hidden_review} not found" in hidden.output
    done = runner.invoke(app, ["reviews", "status", review, "embargoed", "--json"])
    assert done.exit_code == 0, done.output
    with Session(engine) as session:
        assert session.get(Review, web_world.published_review).status == ReviewStatus.EMBARGOED

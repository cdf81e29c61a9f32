"""Ingest jobs: queued by uploads, claimed by workers, each file done exactly once, a killed
worker's job taken over, per-user limits, and jobs visible only to their owner (or an admin)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlmodel import Session, col, func, select

from kb.config import get_settings
from kb.db import get_engine
from kb.models import Document, FileState, IngestJob, IngestJobFile, JobState, utcnow
from kb.services import jobs
from tests.web_support import api_csrf

pytest_plugins = ["tests.web_fixtures"]


def _doc(title: str, body: str) -> bytes:
    return (
        f"# {title}\n\nPublished by the Fernhill partnership.\n\n## Findings\n\n{body}\n".encode()
    )


ONE = _doc("Learning review: Child V", "The school nurse did not know about the new partner.")
TWO = _doc("Learning review: Child W", "Neighbours had raised concerns twice with the police.")


def _upload(client, *files: tuple[str, bytes]):  # type: ignore[no-untyped-def]
    return client.post(
        "/api/documents",
        files=[("files", (name, data, "text/markdown")) for name, data in files],
        headers=api_csrf(client),
    )


def _documents(engine) -> int:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        return session.exec(select(func.count(col(Document.id)))).one()


def test_a_job_is_visible_to_its_owner_and_admins_only(clients, web_world) -> None:
    queued = _upload(clients["panel-a"], ("one.md", ONE))
    assert queued.status_code == 202
    location = queued.headers["location"]
    assert clients["panel-a"].get(location).status_code == 200
    assert clients["admin"].get(location).status_code == 200
    hidden = clients["panel-b"].get(location)
    assert hidden.status_code == 404 and hidden.json() == clients["panel-b"].get(
        "/api/jobs/999999"
    ).json() | {"detail": hidden.json()["detail"]}
    assert clients["viewer"].get(location).status_code == 404
    mine = [j["id"] for j in clients["panel-a"].get("/api/jobs").json()]
    assert mine[0] == queued.json()["id"] and set(mine) == {
        queued.json()["id"],
        web_world.hidden_job,
    }
    assert clients["panel-b"].get("/api/jobs").json() == []
    assert len(clients["admin"].get("/api/jobs").json()) == 2


def test_per_user_limit_on_unfinished_uploads(clients, monkeypatch) -> None:
    monkeypatch.setenv("KB_MAX_QUEUED_JOBS", "1")
    get_settings.cache_clear()
    clients["panel-a"].app.state.settings = get_settings()
    assert _upload(clients["panel-a"], ("one.md", ONE)).status_code == 202
    refused = _upload(clients["panel-a"], ("two.md", TWO))
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "30"
    assert "at most 1" in refused.json()["detail"]
    assert _upload(clients["panel-b"], ("two.md", TWO)).status_code == 202  # per user
    jobs.run_pending(get_engine(), settings=get_settings())
    assert _upload(clients["panel-a"], ("two.md", TWO)).status_code == 202  # done: room again


def test_two_workers_never_claim_the_same_job(clients) -> None:
    engine = get_engine()
    first = _upload(clients["admin"], ("one.md", ONE)).json()["id"]
    second = _upload(clients["admin"], ("two.md", TWO)).json()["id"]
    assert jobs.claim_next(engine, "worker-a") == first
    assert jobs.claim_next(engine, "worker-b") == second
    assert jobs.claim_next(engine, "worker-c") is None


def test_a_killed_workers_job_is_taken_over_and_each_file_done_once(clients) -> None:
    engine = get_engine()
    settings = get_settings()
    before = _documents(engine)
    job_id = _upload(clients["admin"], ("one.md", ONE), ("two.md", TWO)).json()["id"]
    # Worker A claims the job, finishes the first file and is killed (no more heartbeats).
    assert jobs.claim_next(engine, "worker-a") == job_id
    with Session(engine) as session:
        first_file = session.exec(
            select(IngestJobFile.id).where(
                IngestJobFile.job_id == job_id, IngestJobFile.position == 0
            )
        ).one()
    from kb.services.analysis import passage_hook
    from kb.services.ingest import IngestOptions

    jobs._run_file(
        engine,
        first_file,
        options=IngestOptions(),
        hook=passage_hook(settings, embed=False),
        owner=jobs.Principal.system(),
        scratch=settings.home,
    )
    assert _documents(engine) == before + 1
    # Within the lease nobody else may take it...
    assert jobs.claim_next(engine, "worker-b") is None
    # ...after it, worker B does, and runs only what is left.
    with Session(engine) as session:
        session.exec(
            update(IngestJob)
            .where(col(IngestJob.id) == job_id)
            .values(heartbeat_at=utcnow() - jobs.LEASE - timedelta(seconds=1))
        )
        session.commit()
    assert jobs.run_pending(engine, settings=settings, worker="worker-b") == 1
    job = clients["admin"].get(f"/api/jobs/{job_id}").json()
    assert job["state"] == "done" and job["attempts"] == 2
    assert sorted(i["path"] for i in job["ingested"]) == ["one.md", "two.md"]
    assert job["skipped"] == [] and job["failed"] == []
    assert _documents(engine) == before + 2
    with Session(engine) as session:  # the bytes are dropped once a file is done
        assert (
            session.exec(select(IngestJobFile).where(col(IngestJobFile.content).is_not(None))).all()
            == []
        )


def test_a_file_finished_elsewhere_is_not_stored_twice(clients) -> None:
    engine = get_engine()
    job_id = _upload(clients["admin"], ("one.md", ONE)).json()["id"]
    with Session(engine) as session:
        row = session.exec(select(IngestJobFile).where(IngestJobFile.job_id == job_id)).one()
        jobs._finish_file(session, row.id, "failed", {"error": "x"}, "/tmp")  # type: ignore[arg-type]
        session.commit()
        with pytest.raises(jobs.FileAlreadyDone):
            jobs._finish_file(session, row.id, "ingested", {"document_id": 1, "reviews": [1]}, "")  # type: ignore[arg-type]
        session.rollback()
        assert session.get(IngestJobFile, row.id).state == FileState.FAILED  # type: ignore[union-attr]


def test_a_stopped_worker_hands_its_job_back(clients, monkeypatch) -> None:
    engine = get_engine()
    job_id = _upload(clients["admin"], ("one.md", ONE)).json()["id"]
    assert jobs.claim_next(engine, "worker-a") == job_id

    def interrupted(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(jobs, "_run_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        jobs.run_job(engine, job_id, settings=get_settings(), worker="worker-a")
    with Session(engine) as session:
        job = session.get(IngestJob, job_id)
        assert job is not None and job.state == JobState.QUEUED and job.worker is None
    assert jobs.claim_next(engine, "worker-b") == job_id


def test_a_failing_document_fails_alone_with_its_reason(clients) -> None:
    engine = get_engine()
    before = _documents(engine)
    broken = b"%PDF-1.4 this is not a real PDF"
    job_id = _upload(clients["panel-a"], ("broken.pdf", broken), ("one.md", ONE)).json()["id"]
    jobs.run_pending(engine, settings=get_settings())
    job = clients["panel-a"].get(f"/api/jobs/{job_id}").json()
    assert [i["path"] for i in job["ingested"]] == ["one.md"]
    [failure] = job["failed"]
    assert failure["path"] == "broken.pdf" and failure["error"]
    assert str(get_settings().home) not in failure["error"]  # no server paths
    assert job["progress"] == {"done": 2, "total": 2}
    assert {f["state"] for f in job["files"]} == {"failed", "ingested"}
    assert _documents(engine) == before + 1

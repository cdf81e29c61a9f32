"""Two people at once: optimistic locking under real concurrency, and search during ingest.

Every edit endpoint takes the ``version`` its editor read. When two editors read version N and
save together, exactly one save may win; the other must get 409 with a message saying what to
do, and the winner's change must be the one stored (no lost update, no 500). The requests are
released together from two threads, each with its own client, session cookie and database
connection, so the version check and the write really race; a sequential round also pins down
"the first save wins".

Search while ingesting: a thread searches in a loop while another ingests documents. Every hit
must be a passage of a committed review whose stored text is the hit's text, a viewer must never
see a hit of an embargoed review half-way through an ingest, and nothing may raise.

Runs on SQLite (default) and PostgreSQL (``KB_TEST_BACKEND=postgres``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from kb.config import get_settings
from kb.models import Passage, Review, ReviewStatus, Role
from kb.services.access import Principal
from kb.services.analysis import passage_hook
from kb.services.ingest import IngestOptions, ingest_paths
from kb.services.search import search
from tests.web_support import World, api_csrf

pytest_plugins = ["tests.web_fixtures"]

ROUNDS = 3  # simultaneous rounds per resource: each is a fresh race
EDITORS = ("panel-a", "admin")  # both may edit the Fernhill action, tags and briefing


Send = Callable[[TestClient, dict[str, str], str, int], httpx.Response]


def _race(clients: dict[str, TestClient], send: Send, version: int) -> dict[str, httpx.Response]:
    """Both editors send ``send(client, headers, value, version)`` at the same moment."""
    headers = {name: api_csrf(clients[name]) for name in EDITORS}
    barrier = threading.Barrier(len(EDITORS))

    def one(name: str) -> httpx.Response:
        barrier.wait(timeout=30)
        return send(clients[name], headers[name], f"{name} edit", version)

    with ThreadPoolExecutor(max_workers=len(EDITORS)) as pool:
        futures = {name: pool.submit(one, name) for name in EDITORS}
        return {name: future.result(timeout=120) for name, future in futures.items()}


def _one_winner(responses: dict[str, httpx.Response]) -> tuple[str, httpx.Response]:
    """Exactly one 200 and one 409 with a clear message; the winner's name and response."""
    codes = sorted(r.status_code for r in responses.values())
    assert codes == [200, 409], {n: (r.status_code, r.text[:300]) for n, r in responses.items()}
    loser = next(r for r in responses.values() if r.status_code == 409)
    detail = loser.json()["detail"]
    assert "changed by" in detail and "reload" in detail, detail
    return next((n, r) for n, r in responses.items() if r.status_code == 200)


# --------------------------------------------------------------------------- actions


def _patch_action(action_id: int) -> Send:
    def send(client: TestClient, headers: dict[str, str], value: str, version: int):
        body = {"description": value, "version": version}
        return client.patch(f"/api/actions/{action_id}", json=body, headers=headers)

    return send


def test_action_edit_first_save_wins_then_stale_gets_409(clients, web_world: World) -> None:
    action = web_world.hidden_action
    a, b = clients["panel-a"], clients["admin"]
    version = a.get(f"/api/actions/{action}").json()["version_id"]
    assert b.get(f"/api/actions/{action}").json()["version_id"] == version  # both read N

    first = a.patch(
        f"/api/actions/{action}",
        json={"description": "Panel A's wording", "version": version},
        headers=api_csrf(a),
    )
    assert first.status_code == 200, first.text
    second = b.patch(
        f"/api/actions/{action}",
        json={"description": "Admin's wording", "status": "in_progress", "version": version},
        headers=api_csrf(b),
    )
    assert second.status_code == 409
    body = second.json()
    assert "changed by someone else" in body["detail"] and "reload" in body["detail"]
    # The 409 carries the action as it is now, so the client can merge and retry.
    assert body["current"]["description"] == "Panel A's wording"
    assert body["current"]["version_id"] == version + 1

    now = b.get(f"/api/actions/{action}").json()
    assert now["description"] == "Panel A's wording" and now["version_id"] == version + 1
    assert now["status"] == first.json()["status"] != "in_progress"


def test_simultaneous_action_edits_have_exactly_one_winner(clients, web_world: World) -> None:
    action = web_world.hidden_action
    for _ in range(ROUNDS):
        version = clients["admin"].get(f"/api/actions/{action}").json()["version_id"]
        winner, response = _one_winner(_race(clients, _patch_action(action), version))
        assert response.json()["version_id"] == version + 1
        now = clients["panel-a"].get(f"/api/actions/{action}").json()
        assert now["description"] == f"{winner} edit" and now["version_id"] == version + 1


# --------------------------------------------------------------------------- tags


def _decide(tag_id: int) -> Send:
    def send(client: TestClient, headers: dict[str, str], value: str, version: int):
        verb = "confirm" if value.startswith("panel-a") else "reject"
        return client.post(f"/api/tags/{tag_id}/{verb}", json={"version": version}, headers=headers)

    return send


def _tag(client: TestClient, review_id: int, tag_id: int) -> dict[str, Any]:
    tags = client.get(f"/api/reviews/{review_id}/tags").json()
    return next(t for t in tags if t["id"] == tag_id)


def test_tag_decision_first_wins_then_stale_gets_409(clients, web_world: World) -> None:
    tag_id, review = web_world.published_tags[0], web_world.published_review
    a, b = clients["panel-a"], clients["admin"]
    version = _tag(a, review, tag_id)["version_id"]
    assert _tag(b, review, tag_id)["version_id"] == version

    first = a.post(f"/api/tags/{tag_id}/confirm", json={"version": version}, headers=api_csrf(a))
    assert first.status_code == 200, first.text
    second = b.post(f"/api/tags/{tag_id}/reject", json={"version": version}, headers=api_csrf(b))
    assert second.status_code == 409
    assert "changed by panel-a" in second.json()["detail"]
    assert "reload" in second.json()["detail"]
    now = _tag(b, review, tag_id)
    assert (now["status"], now["decided_by"], now["version_id"]) == (
        "confirmed",
        "panel-a",
        version + 1,
    )


def test_simultaneous_tag_decisions_have_exactly_one_winner(clients, web_world: World) -> None:
    tag_id, review = web_world.published_tags[1], web_world.published_review
    for _ in range(ROUNDS):
        version = _tag(clients["admin"], review, tag_id)["version_id"]
        winner, response = _one_winner(_race(clients, _decide(tag_id), version))
        expected = "confirmed" if winner == "panel-a" else "rejected"
        assert response.json()["status"] == expected
        now = _tag(clients["admin"], review, tag_id)
        assert (now["status"], now["decided_by"], now["version_id"]) == (
            expected,
            winner,
            version + 1,
        )


# --------------------------------------------------------------------------- briefings


def _patch_briefing(briefing_id: int) -> Send:
    def send(client: TestClient, headers: dict[str, str], value: str, version: int):
        body = {"title": value, "version": version}
        return client.patch(f"/api/briefings/{briefing_id}", json=body, headers=headers)

    return send


def test_briefing_edit_first_wins_then_stale_gets_409(clients, web_world: World) -> None:
    briefing = web_world.hidden_briefing
    a, b = clients["panel-a"], clients["admin"]
    read_a = a.get(f"/api/briefings/{briefing}").json()
    version = read_a["version_id"]
    assert b.get(f"/api/briefings/{briefing}").json()["version_id"] == version

    sections = read_a["sections"]
    sections[0]["items"] = [{"text": "Panel A rewrote the story."}]
    first = a.patch(
        f"/api/briefings/{briefing}",
        json={"version": version, "sections": sections},
        headers=api_csrf(a),
    )
    assert first.status_code == 200, first.text
    second = b.patch(
        f"/api/briefings/{briefing}",
        json={"version": version, "title": "Admin's title"},
        headers=api_csrf(b),
    )
    assert second.status_code == 409
    assert "changed by someone else" in second.json()["detail"]
    now = b.get(f"/api/briefings/{briefing}").json()
    assert now["version_id"] == version + 1 and now["title"] == read_a["title"]
    assert now["sections"][0]["items"][0]["text"] == "Panel A rewrote the story."


def test_simultaneous_briefing_edits_have_exactly_one_winner(clients, web_world: World) -> None:
    briefing = web_world.hidden_briefing
    for _ in range(ROUNDS):
        version = clients["admin"].get(f"/api/briefings/{briefing}").json()["version_id"]
        winner, response = _one_winner(_race(clients, _patch_briefing(briefing), version))
        assert response.json()["version_id"] == version + 1
        now = clients["panel-a"].get(f"/api/briefings/{briefing}").json()
        assert now["title"] == f"{winner} edit" and now["version_id"] == version + 1


# --------------------------------------------------------------------------- ingest + search

WORDS = ("lanternfell", "quorrish", "brambleton", "mistwick")  # fictional, one per batch


def _document(n: int) -> str:
    word = WORDS[n % len(WORDS)]
    return f"""# Local Child Safeguarding Practice Review: Child Q{n}

## Background

Child Q{n} was a {n + 2}-month-old baby living with her mother and the mother's new partner
in {word} lane. The health visitor did not ask who else lived in the home.

## Findings

1. Information about the partner's history was not shared between the police and children's
social care before the {word} incident.
2. The school nurse raised a concern about neglect which was not followed up (case {n}).

## Recommendations

1. Every agency should ask about all adults in the household at each contact ({word}).
"""


@pytest.fixture
def documents(tmp_path: Path) -> tuple[Path, dict[str, dict[str, Any]]]:
    """Twelve fictional reviews, every third one embargoed."""
    folder = tmp_path / "incoming"
    folder.mkdir()
    manifest: dict[str, dict[str, Any]] = {}
    for n in range(12):
        name = f"child-q{n}.md"
        (folder / name).write_text(_document(n), encoding="utf-8")
        manifest[name] = {
            "status": "embargoed" if n % 3 == 2 else "published",
            "partnership": "Fernhill",
            "incident_date": f"{2015 + n % 8}-03-01",
        }
    return folder, manifest


def _check_hits(engine: Engine, principal: Principal, hits: list[Any]) -> None:
    """Every hit is a committed passage of a committed review the principal may see, verbatim."""
    if not hits:
        return
    with Session(engine) as session:
        rows = session.exec(
            select(Passage, Review)
            .join(Review, col(Review.id) == Passage.review_id)
            .where(col(Passage.id).in_([h.passage_id for h in hits]))
        ).all()
    stored = {p.id: (p, r) for p, r in rows}
    for hit in hits:
        assert hit.passage_id in stored, f"hit {hit.passage_id} is not a committed passage"
        passage, review = stored[hit.passage_id]
        assert (passage.review_id, passage.text) == (hit.review_id, hit.text)
        assert review.pseudonym == hit.pseudonym
        if principal.role == Role.VIEWER:
            assert review.status == ReviewStatus.PUBLISHED, f"viewer saw {review.pseudonym}"


def test_search_during_ingest_sees_only_committed_consistent_passages(
    engine: Engine, documents: tuple[Path, dict[str, dict[str, Any]]]
) -> None:
    folder, manifest = documents
    settings = get_settings()
    hook = passage_hook(settings)
    files = sorted(folder.iterdir())
    # A first document so the index exists before the race starts.
    first = ingest_paths(
        engine=engine,
        paths=files[:1],
        options=IngestOptions(manifest=manifest),
        on_passages=hook,
    )
    assert not first.failed, first.failed

    principals = [Principal.system(), Principal(username="viewer", role=Role.VIEWER)]
    queries = ["baby mother's new partner", "information not shared police", *WORDS]
    done = threading.Event()
    rounds = [0]

    def search_loop() -> None:
        while not done.is_set() or rounds[0] < 3:
            for n, query in enumerate(queries):
                principal = principals[n % 2]
                mode = ("hybrid", "bm25", "dense")[rounds[0] % 3]
                with Session(engine) as session:
                    hits = search(session, principal=principal, query=query, top_k=20, mode=mode)
                _check_hits(engine, principal, hits)
            rounds[0] += 1

    def ingest_rest() -> Any:
        try:
            return ingest_paths(
                engine=engine,
                paths=files[1:],
                options=IngestOptions(manifest=manifest),
                on_passages=hook,
            )
        finally:
            done.set()

    with ThreadPoolExecutor(max_workers=2) as pool:
        searching = pool.submit(search_loop)
        ingesting = pool.submit(ingest_rest)
        report = ingesting.result(timeout=600)
        searching.result(timeout=600)  # re-raises any failed check or exception

    assert not report.failed, report.failed
    assert len(report.ingested) == len(files) - 1
    assert rounds[0] >= 3
    # Afterwards the index has caught up with everything that was committed.
    with Session(engine) as session:
        hits = search(session, principal=Principal.system(), query=WORDS[1], top_k=50, mode="bm25")
        viewer_hits = search(
            session, principal=principals[1], query=WORDS[1], top_k=50, mode="bm25"
        )
    assert {h.pseudonym for h in hits} == {f"Child Q{n}" for n in range(12) if n % 4 == 1}
    assert {h.pseudonym for h in viewer_hits} == {
        f"Child Q{n}" for n in range(12) if n % 4 == 1 and n % 3 != 2
    }

"""Learning from people: the "Tags to check" queue (most uncertain first), per-theme precision
from decisions, visibility of embargoed reviews, and the web page's decide-and-return loop."""

from __future__ import annotations

from sqlmodel import Session

from kb.models import ThemeTag
from kb.services.tagging import uncertainty
from tests.web_support import MARKER, api_csrf, csrf_from

pytest_plugins = ["tests.web_fixtures"]


def _set_confidence(engine, tag_id: int, value: float) -> None:
    with Session(engine) as session:
        tag = session.get(ThemeTag, tag_id)
        tag.confidence = value
        session.add(tag)
        session.commit()


def test_uncertainty_peaks_at_a_coin_toss() -> None:
    assert uncertainty(0.5) == 1.0
    assert uncertainty(0.99) < uncertainty(0.7) < uncertainty(0.55)
    assert uncertainty(0.0) == uncertainty(1.0) == 0.0


def test_queue_orders_by_uncertainty_and_hides_embargoed(clients, web_world, engine) -> None:
    sure, unsure = web_world.published_tags[0], web_world.published_tags[-1]
    assert sure != unsure
    _set_confidence(engine, sure, 0.98)
    _set_confidence(engine, unsure, 0.52)
    queue = clients["panel-a"].get("/api/tags/queue").json()
    ids = [t["id"] for t in queue["tags"]]
    assert ids.index(unsure) < ids.index(sure)
    assert set(web_world.hidden_tags) <= set(ids)  # panel of the same partnership sees them
    other = clients["panel-b"].get("/api/tags/queue")
    assert other.status_code == 200 and MARKER not in other.text
    assert not set(web_world.hidden_tags) & {t["id"] for t in other.json()["tags"]}


def test_precision_is_measured_from_decisions(clients, web_world) -> None:
    panel = clients["panel-a"]
    queue = panel.get("/api/tags/queue").json()
    by_id = {t["id"]: t for t in queue["tags"]}
    first, second = web_world.published_tags[0], web_world.published_tags[1]
    panel.post(f"/api/tags/{first}/confirm", json={"version": 1}, headers=api_csrf(panel))
    panel.post(f"/api/tags/{second}/reject", json={"version": 1}, headers=api_csrf(panel))
    after = panel.get("/api/tags/queue").json()
    assert first not in {t["id"] for t in after["tags"]}  # decided tags leave the queue
    for tag_id, status in ((first, "confirmed"), (second, "rejected")):
        measured = after["precision"][by_id[tag_id]["theme_id"]]
        assert measured[status] >= 1 and 0.0 <= measured["precision"] <= 1.0


def test_queue_page_decides_and_comes_back(clients, web_world) -> None:
    panel = clients["panel-a"]
    page = panel.get("/tags/queue")
    assert page.status_code == 200 and "Tags to check" in page.text
    tag_id = web_world.published_tags[0]
    response = panel.post(
        f"/tags/{tag_id}/confirm",
        data={"version": 1, "back": "queue", "csrf_token": csrf_from(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/tags/queue"
    viewer_page = clients["viewer"].get("/tags/queue")
    assert viewer_page.status_code == 200 and 'action="/tags/' not in viewer_page.text

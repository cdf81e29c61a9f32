"""The search page and /api/search: access control, filters, escaping, more-like-this, paging."""

from __future__ import annotations

import re

import pytest
from sqlmodel import Session

from kb.services.audit import recent_events
from tests.web_support import MARKER, SEARCH_WORD, SEES_EMBARGOED, USERS

pytest_plugins = ["tests.web_fixtures"]

CONTRACT = {
    "review_id",
    "review_title",
    "passage_id",
    "section",
    "text",
    "snippet",
    "score",
    "themes",
}


@pytest.mark.parametrize("user", list(USERS))
def test_embargoed_review_only_for_those_who_may_see_it(clients, web_world, user) -> None:
    c = clients[user]
    api = c.get("/api/search", params={"q": SEARCH_WORD, "top": 50})
    page = c.get("/search", params={"q": SEARCH_WORD, "top": 50})
    assert api.status_code == 200 and page.status_code == 200
    hidden = {h["passage_id"] for h in api.json()["hits"]} & set(web_world.hidden_passages)
    if SEES_EMBARGOED[user]:
        assert hidden and MARKER in api.text and MARKER in page.text
        top = api.json()["hits"][0]
        assert top["review_id"] == web_world.hidden_review and SEARCH_WORD in top["snippet"]
        assert f'href="/reviews/{web_world.hidden_review}#passage-' in page.text
    else:
        assert not hidden
        assert MARKER.lower() not in api.text.lower() and MARKER.lower() not in page.text.lower()
        assert '<mark class="q">' not in page.text  # no snippet matched the embargoed word
        bm25 = c.get("/api/search", params={"q": SEARCH_WORD, "mode": "bm25"}).json()
        assert bm25["hits"] == [] and bm25["reviews"] == []


def test_json_contract_and_grouping(clients, web_world) -> None:
    body = clients["admin"].get("/api/search", params={"q": "baby health visitor"}).json()
    assert body["mode"] == "hybrid" and body["page"] == 1 and body["top"] == 10
    assert body["hits"] and all(set(hit) >= CONTRACT for hit in body["hits"])
    scores = [h["score"] for h in body["hits"]]
    assert scores == sorted(scores, reverse=True)
    hit = body["hits"][0]
    assert hit["url"] == f"/reviews/{hit['review_id']}#passage-{hit['passage_id']}"
    grouped = [pid for group in body["reviews"] for pid in group["passage_ids"]]
    assert sorted(grouped) == sorted(h["passage_id"] for h in body["hits"])
    assert {g["review_id"]: g["status"] for g in body["reviews"]} == {
        web_world.published_review: "published",
        web_world.hidden_review: "embargoed",
    }
    page = clients["admin"].get("/search", params={"q": "baby health visitor"}).text
    assert '<span class="status status-embargoed">Embargoed</span>' in page


def test_search_is_audited_for_restricted_hits(clients, engine, web_world) -> None:
    clients["admin"].get("/api/search", params={"q": SEARCH_WORD, "mode": "bm25"})
    clients["admin"].get("/search", params={"q": SEARCH_WORD, "mode": "bm25"})
    with Session(engine) as session:
        events = recent_events(session, username="admin")
    views = [(e.object_id, (e.detail or "")) for e in events if e.action == "review.view"]
    assert len(views) == 2 and all(oid == str(web_world.hidden_review) for oid, _ in views)
    assert "api-search" in views[1][1] and "web-search" in views[0][1]


def test_filters_narrow_results(clients, web_world) -> None:
    c = clients["admin"]
    words = "information shared midwife health visitor baby mother partner"

    def ids(**params: object) -> set[int]:
        body = c.get("/api/search", params={"q": words, "mode": "bm25", "top": 50, **params})
        assert body.status_code == 200, body.text
        return {h["passage_id"] for h in body.json()["hits"]}

    everything = ids()
    assert len(everything) >= 3
    findings = ids(section="findings")
    assert findings and findings < everything
    assert findings == {web_world.published_passages[-1], web_world.hidden_passages[-1]}
    shared = ids(theme="information-sharing")
    assert shared == {web_world.published_passages[-1]}
    either = ids(theme=["information-sharing", "domestic-abuse"])
    assert either == {web_world.published_passages[-1], web_world.hidden_passages[-1]}
    assert ids(since=2024) == set() and ids(until=2022) == set()
    assert ids(since=2023, until=2023) == everything
    assert ids(partnership="Oakvale") == set() and ids(partnership="fernhill") == everything
    assert ids(type="scr") == set() and ids(type="lcspr") == everything
    # The page applies the same filters and keeps them selected in the form.
    page = c.get("/search", params={"q": words, "mode": "bm25", "theme": "information-sharing"})
    assert page.text.count('class="hit"') == 1
    assert '<option value="information-sharing" selected>' in page.text
    none = c.get("/search", params={"q": words, "mode": "bm25", "since": "2030"})
    assert "No passages match with these filters" in none.text


def test_bad_input_gives_clear_errors(clients, web_world) -> None:
    c = clients["viewer"]
    cases = {
        "blank query": ({"q": "  "}, 400, "give a query"),
        "years reversed": ({"q": "baby", "since": 2023, "until": 2020}, 400, "ends before"),
        "unknown theme": ({"q": "baby", "theme": "no-such-theme"}, 400, "unknown theme"),
        "bad type": ({"q": "baby", "type": "novel"}, 422, "type"),
        "bad mode": ({"q": "baby", "mode": "psychic"}, 422, "mode"),
        "bad section": ({"q": "baby", "section": "preface"}, 422, "section"),
        "top too big": ({"q": "baby", "top": 500}, 422, "top"),
        "page zero": ({"q": "baby", "page": 0}, 422, "page"),
        "query too long": ({"q": "baby " * 1000}, 422, "q"),
    }
    for name, (params, status, words) in cases.items():
        response = c.get("/api/search", params=params)
        assert response.status_code == status, (name, response.text)
        assert words in response.json()["detail"], name
    # The page shows what is wrong beside the form instead of an error page.
    page = c.get("/search", params={"q": "baby", "since": "twenty", "theme": "no-such-theme"})
    assert page.status_code == 400 and "must be a whole number" in page.text
    assert 'name="q"' in page.text and "baby</textarea>" in page.text
    page = c.get("/search", params={"q": "baby", "type": "novel"})
    assert page.status_code == 400 and "unknown review type" in page.text


def test_snippet_is_escaped_then_highlighted(clients) -> None:
    page = clients["viewer"].get("/search", params={"q": "script alert pwned", "mode": "bm25"})
    assert page.status_code == 200
    assert "<script>alert" not in page.text and "alert('pwned')" not in page.text
    assert '&lt;<mark class="q">script</mark>&gt;<mark class="q">alert</mark>(&#39;' in page.text
    assert '<mark class="q">pwned</mark>&#39;)&lt;/<mark class="q">script</mark>&gt;' in page.text
    assert "&amp; more." in page.text
    api = clients["viewer"].get("/api/search", params={"q": "script", "mode": "bm25"}).json()
    hit = api["hits"][0]
    assert "<script>alert('pwned')</script>" in hit["text"]  # JSON is data; HTML escapes it
    start, end = hit["highlights"][0]
    assert hit["snippet"][start:end] == "script"


def test_page_states_and_result_links(clients, web_world) -> None:
    c = clients["viewer"]
    empty = c.get("/search")
    assert empty.status_code == 200 and 'href="/search" aria-current="page"' in empty.text
    assert "<textarea" in empty.text and 'class="empty-state"' in empty.text
    assert '<optgroup label="' in empty.text and 'value="domestic-abuse"' in empty.text
    assert '<option value="Fernhill">' in empty.text and 'class="hit"' not in empty.text
    nothing = c.get("/search", params={"q": "xylophonic quasarwort", "mode": "bm25"})
    assert nothing.status_code == 200 and "No passages match." in nothing.text
    page = c.get("/search", params={"q": "midwife health visitor not shared", "mode": "bm25"})
    pid = web_world.published_passages[-1]
    assert f'href="/reviews/{web_world.published_review}#passage-{pid}"' in page.text
    assert f'href="/search?like={pid}"' in page.text
    assert re.search(r'<a class="chip t\d+" href="[^"]*theme=information-sharing[^"]*"', page.text)
    assert ">Information sharing" in page.text or "information-sharing" in page.text
    assert 'rel="stylesheet" href="/static/search.css"' in page.text
    assert c.get("/static/search.css").status_code == 200


def test_pasted_paragraph_works(clients, web_world) -> None:
    paragraph = (
        "New referral today.\r\nThe mother has a new partner who has moved in; no agency knows "
        "who he is. The health visitor saw the 4-month-old baby last week, but the midwife's "
        "notes were not shared with her.\r\n\r\nWhat did earlier reviews learn about this?"
    )
    page = clients["viewer"].get("/search", params={"q": paragraph})
    assert page.status_code == 200 and page.text.count('class="hit"') >= 2
    assert "notes were not shared with her." in page.text  # kept in the textarea
    api = clients["viewer"].get("/api/search", params={"q": paragraph, "mode": "dense"})
    assert api.status_code == 200 and api.json()["hits"]


def test_pagination(clients) -> None:
    c = clients["admin"]
    words = "baby mother health visitor midwife domestic abuse"
    first = c.get("/api/search", params={"q": words, "top": 2}).json()
    second = c.get("/api/search", params={"q": words, "top": 2, "page": 2}).json()
    everything = c.get("/api/search", params={"q": words, "top": 4}).json()
    assert first["has_next"] and len(first["hits"]) == 2 and len(second["hits"]) == 2
    both = [h["passage_id"] for h in first["hits"] + second["hits"]]
    assert both == [h["passage_id"] for h in everything["hits"]]
    page = c.get("/search", params={"q": words, "top": "2"}).text
    assert re.search(r'href="/search\?[^"]*page=2"', page) and "Previous" not in page


def test_more_like_this(clients, web_world) -> None:
    source = web_world.published_passages[0]
    viewer = clients["viewer"].get(f"/api/passages/{source}/similar").json()
    ids = [h["passage_id"] for h in viewer["hits"]]
    assert ids and source not in ids and set(ids) <= set(web_world.published_passages)
    assert viewer["like"] == source and viewer["mode"] == "dense"
    admin = clients["admin"].get(f"/api/passages/{source}/similar", params={"top": 50}).json()
    assert {h["passage_id"] for h in admin["hits"]} & set(web_world.hidden_passages)
    # A hidden passage is not found, exactly like a missing one, and says nothing about it.
    hidden = web_world.hidden_passages[0]
    for user, sees in SEES_EMBARGOED.items():
        response = clients[user].get(f"/api/passages/{hidden}/similar")
        assert response.status_code == (200 if sees else 404), user
        if not sees:
            assert MARKER not in response.text and response.json()["detail"]
            page = clients[user].get("/search", params={"like": hidden})
            assert page.status_code == 404 and MARKER not in page.text
    assert clients["admin"].get("/api/passages/999999/similar").status_code == 404
    page = clients["viewer"].get("/search", params={"like": source})
    assert page.status_code == 200 and "<h2>Similar passages</h2>" in page.text
    assert page.text.count('class="hit"') == len(ids)


def test_nonsense_query_says_no_close_match(clients) -> None:
    body = clients["viewer"].get("/api/search", params={"q": "xqzv plorp"}).json()
    assert body["hits"] == [] and body["no_close_match"] is True and body["cases"] == []
    page = clients["viewer"].get("/search", params={"q": "xqzv plorp"})
    assert page.status_code == 200 and "No close match" in page.text
    bad = clients["viewer"].get("/api/search", params={"q": "baby", "role": "gossip"})
    assert bad.status_code == 400 and "unknown role" in bad.text

"""The tracker's case filter through the real HTTP client: a case is the Case linking a child's
documents (``?case=<id>``, ``r<review id>`` for an unlinked review), offered in a select built
from what the user may see. A case whose reviews are all embargoed is never offered, never
named, and asking for it answers exactly as an id that does not exist.

The world (tests/web_support.py): the embargoed review (Fernhill) with action HID-1; PUB-1
(tests/test_web_tracker.py's fixture) answers the published review.
"""

from __future__ import annotations

import re

import pytest
from sqlmodel import Session

from kb.models import Case, Review
from tests.test_web_tracker import pub_action  # noqa: F401 - fixture
from tests.web_support import MARKER, World

pytest_plugins = ["tests.web_fixtures"]

MISSING = 999999


def _link(engine, label: str, *review_ids: int) -> int:  # type: ignore[no-untyped-def]
    """A Case holding ``review_ids`` (what matching or a person would make)."""
    with Session(engine) as session:
        first = session.get(Review, review_ids[0])
        case = Case(label=label, partnership_id=first.partnership_id)
        session.add(case)
        session.flush()
        for rid in review_ids:
            review = session.get(Review, rid)
            review.case_id, review.case_source = case.id, "person"
            session.add(review)
        session.commit()
        return case.id  # type: ignore[return-value]


def _options(page: str) -> dict[str, str]:
    select = re.search(r'<select name="case">(.*?)</select>', page, re.S)
    assert select, page
    return dict(re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', select.group(1)))


def _scrub(page: str, *values: str) -> str:
    """The page without its per-request token and without the asked-for value itself."""
    page = re.sub(r'value="[A-Za-z0-9_\-\.]{20,}"', 'value="TOKEN"', page)
    page = re.sub(r'content="[A-Za-z0-9_\-\.]{20,}"', 'content="TOKEN"', page)
    for value in values:  # where the page repeats what was asked: the notice, links, the form
        for form in (f"“{value}”", f"case={value}", f'value="{value}"'):
            page = page.replace(form, form.replace(value, "ASKED"))
    return page


@pytest.fixture
def hidden_case(engine, web_world: World, pub_action) -> int:  # noqa: F811
    return _link(engine, f"Child {MARKER}", web_world.hidden_review)


def test_case_filter_by_id_for_those_who_may_see_it(clients, hidden_case) -> None:
    for user in ("admin", "panel-a"):
        c = clients[user]
        options = _options(c.get("/tracker").text)
        assert options[str(hidden_case)] == f"Child {MARKER}"
        page = c.get("/tracker", params={"case": hidden_case}).text
        assert "HID-1" in page and 'id="case-unknown"' not in page
        assert f'<option value="{hidden_case}" selected>' in page
        summary = c.get("/api/tracker/summary", params={"case": hidden_case})
        assert summary.status_code == 200 and summary.json()["actions"] == 1
        everything = c.get("/api/tracker/summary").json()["actions"]
        assert everything == 2  # PUB-1 and HID-1: the filter narrowed it


def test_unlinked_review_is_a_case_of_its_own(clients, web_world, pub_action) -> None:  # noqa: F811
    c = clients["viewer"]
    value = f"r{web_world.published_review}"
    assert _options(c.get("/tracker").text)[value] == "Child P"
    summary = c.get("/api/tracker/summary", params={"case": value})
    assert summary.status_code == 200 and summary.json()["actions"] == 1


@pytest.mark.parametrize("user", ["panel-b", "viewer"])
def test_hidden_case_answers_like_a_missing_one(clients, web_world, hidden_case, user) -> None:
    c = clients[user]
    page = c.get("/tracker").text
    assert str(hidden_case) not in _options(page) and MARKER not in page
    for hidden, missing in ((str(hidden_case), str(MISSING)),
                            (f"r{web_world.hidden_review}", f"r{MISSING}")):  # fmt: skip
        shown = c.get("/tracker", params={"case": hidden})
        absent = c.get("/tracker", params={"case": missing})
        assert shown.status_code == absent.status_code == 200
        assert 'id="case-unknown"' in shown.text and MARKER not in shown.text
        assert _scrub(shown.text, hidden) == _scrub(absent.text, missing)
        for url in ("/api/tracker/summary", "/api/signals/export.csv"):
            a = c.get(url, params={"case": hidden})
            b = c.get(url, params={"case": missing})
            assert a.status_code == b.status_code == 404
            assert a.json()["detail"].replace(hidden, "X") == b.json()["detail"].replace(
                missing, "X"
            )


def test_a_case_is_named_only_by_reviews_you_may_see(
    engine,
    clients,
    web_world,
    pub_action,  # noqa: F811 - fixture
) -> None:
    case = _link(engine, f"Child {MARKER}", web_world.hidden_review, web_world.published_review)
    for user in ("panel-b", "viewer"):
        page = clients[user].get("/tracker").text
        assert _options(page)[str(case)] == "Child P" and MARKER not in page
    assert _options(clients["admin"].get("/tracker").text)[str(case)] == f"Child P / Child {MARKER}"


def test_old_pseudonym_links_still_filter(clients, hidden_case) -> None:
    c = clients["admin"]
    page = c.get("/tracker", params={"case": f"child {MARKER.lower()}"}).text
    assert "HID-1" in page and 'id="case-unknown"' not in page
    assert f'<option value="{hidden_case}" selected>' in page
    summary = c.get("/api/tracker/summary", params={"case": f"Child {MARKER}"}).json()
    assert summary["actions"] == 1

"""Every route of the app, found by walking ``app.routes``, so routes added later are covered.

* Each GET route is called by each role with the ids of the embargoed review (and its document,
  passages, tags, theme) in its path parameters, with and without typical query parameters; a
  role that may not see the embargoed review must never receive its marker word.
* Each GET route but /login and /static refuses anonymous requests.
* Each state-changing route refuses a logged-in request without the CSRF token.

Adding a route with a new path parameter name fails here until PARAMS says which restricted
object to put in it: that is deliberate, so nobody forgets to think about what it could leak.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

from starlette.routing import Mount

try:  # FastAPI >= 0.16x keeps included routers lazily; this walks them (public helper)
    from fastapi.routing import iter_route_contexts
except ImportError:  # older FastAPI: app.routes is already flat

    def iter_route_contexts(routes):  # type: ignore[no-untyped-def]
        return iter(routes)


from tests.web_support import MARKER, SEARCH_WORD, SEES_EMBARGOED, USERS, World

pytest_plugins = ["tests.web_fixtures"]

# Path parameter name → the restricted object to substitute.
PARAMS: dict[str, Callable[[World], Any]] = {
    "review_id": lambda w: w.hidden_review,
    "document_id": lambda w: w.hidden_document,
    "passage_id": lambda w: w.hidden_passages[0],
    "tag_id": lambda w: w.hidden_tags[0],
    "theme_id": lambda w: w.hidden_theme,
    "briefing_id": lambda w: w.hidden_briefing,
    "action_id": lambda w: w.hidden_action,
    "finding_id": lambda w: w.hidden_finding,
    "recommendation_id": lambda w: w.hidden_recommendation,
    "job_id": lambda w: w.hidden_job,
}
# Query parameters future search / theme / list pages are likely to take; harmless otherwise.
QUERY = {"q": SEARCH_WORD, "query": SEARCH_WORD, "theme": "domestic-abuse", "limit": 200}
PUBLIC_GETS = {"/login"}
MOUNTS_WITHOUT_DATA = {"static"}  # files from web/static only
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
PARAM_RE = re.compile(r"{([^}:]+)(?::[^}]*)?}")


def _routes(app) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """Every endpoint (path, methods) of the app, included routers flattened."""
    for route in iter_route_contexts(app.routes):
        original = getattr(route, "original_route", route)
        if isinstance(original, Mount):
            assert route.name in MOUNTS_WITHOUT_DATA, (
                f"mount {route.path!r} is not covered: walk its routes here or list it as "
                "serving no review data"
            )
            continue
        assert isinstance(route.path, str) and route.methods, f"unknown route {route!r}"
        yield route


def _fill(path: str, world: World) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in PARAMS, (
            f"path parameter {name!r} in {path!r} has no restricted id in PARAMS: add one so "
            "this test can check the route does not leak embargoed material"
        )
        return str(PARAMS[name](world))

    return PARAM_RE.sub(value, path)


def _text(response) -> str:  # type: ignore[no-untyped-def]
    """Headers and body as text, opening zip containers (xlsx, docx) so exports are checked too
    (a Content-Disposition file name can leak a pseudonym as easily as a page can)."""
    headers = " ".join(f"{k}: {v}" for k, v in response.headers.items())
    body = response.content
    if body[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            return headers + " ".join(
                archive.read(name).decode("utf-8", "replace") for name in archive.namelist()
            )
    return headers + body.decode("utf-8", "replace")


def _get_paths(app, world: World) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(
        _fill(route.path, world) for route in _routes(app) if "GET" in (route.methods or set())
    )


def test_no_route_leaks_embargoed_material(web_app, web_world, clients) -> None:
    paths = _get_paths(web_app, web_world)
    assert f"/api/reviews/{web_world.hidden_review}" in paths  # the walk found the routes
    checked = 0
    for user in USERS:
        client = clients[user]
        for path in paths:
            for params in ({}, QUERY):
                response = client.get(path, params=params, follow_redirects=False)
                assert response.status_code < 500, (user, path, response.text[:300])
                body = _text(response).lower()
                if not SEES_EMBARGOED[user]:
                    assert MARKER.lower() not in body, f"{path} leaks embargoed text to {user}"
                checked += 1
    assert checked >= 2 * len(USERS) * 5
    # The planted marker is reachable for roles that may see it (the test is not vacuous).
    for user, sees in SEES_EMBARGOED.items():
        detail = clients[user].get(f"/api/reviews/{web_world.hidden_review}")
        assert (MARKER in detail.text) is sees


def test_every_page_needs_login(web_app, web_world, anon) -> None:
    for path in _get_paths(web_app, web_world):
        response = anon.get(path, follow_redirects=False)
        if path in PUBLIC_GETS:
            assert response.status_code == 200
        elif path.startswith("/api"):
            assert response.status_code == 401, path
        else:
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/login?next="), path


def test_every_state_changing_route_requires_csrf(web_app, web_world, clients) -> None:
    routes = [r for r in _routes(web_app) if (r.methods or set()) & STATE_CHANGING]
    assert len(routes) >= 5
    for route in routes:
        path = _fill(route.path, web_world)
        for method in sorted((route.methods or set()) & STATE_CHANGING):
            for user in ("viewer", "admin"):
                client = clients[user]
                for kwargs in ({"json": {"version": 1}}, {"data": {"version": "1"}}):
                    response = client.request(method, path, follow_redirects=False, **kwargs)
                    assert response.status_code == 403, (method, path, response.status_code)
                    assert "CSRF" in response.text
                forged = client.request(
                    method, path, headers={"X-CSRF-Token": "forged"}, follow_redirects=False
                )
                assert forged.status_code == 403, (method, path)

"""Pages whose body is rendered once per role, partnership and data version (web/page_cache.py):
the tracker and the themes dashboard. A cached body must never carry one user's view, token or
name to another, and must follow every change of the data it shows.

The world (tests/web_support.py) has action HID-1 answering only the embargoed review, whose
text holds MARKER; panel-a (Fernhill) and the admin may see it, the viewer and panel-b may not.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.web_support import MARKER, World, api_csrf, create_action, csrf_from, login
from web.page_cache import PAGES, PLACEHOLDER

pytest_plugins = ["tests.web_fixtures"]


def test_a_page_cached_for_one_role_is_never_served_to_another(clients) -> None:
    PAGES.clear()
    for path in ("/tracker", "/themes"):
        admin = clients["admin"].get(path).text  # rendered first: cached for the admin role
        assert MARKER in admin or "HID-1" in admin or "Domestic abuse" in admin
        for name in ("viewer", "panel-b"):
            page = clients[name].get(path)
            assert page.status_code == 200
            assert MARKER not in page.text and "HID-1" not in page.text, (path, name)
        assert ("HID-1" in clients["panel-a"].get("/tracker").text) is True
    viewer_themes = clients["viewer"].get("/themes").text
    start, end = viewer_themes.index('<section id="national"'), viewer_themes.index("</main>")
    rest = viewer_themes[:start] + viewer_themes[end:]
    assert "Domestic abuse" not in rest  # the hidden review's theme only in the national list


def test_each_session_gets_its_own_token_and_name_in_a_shared_page(
    web_app: FastAPI, web_world: World
) -> None:
    PAGES.clear()
    first, second = (login(TestClient(web_app), "viewer") for _ in range(2))
    other = login(TestClient(web_app), "panel-b")
    try:
        for path in ("/tracker", "/themes"):
            for client, name in ((first, "viewer"), (second, "viewer"), (other, "panel-b")):
                html = client.get(path).text
                token = api_csrf(client)["X-CSRF-Token"]
                assert PLACEHOLDER not in html
                assert csrf_from(html) == token  # every form on it posts this session's token
                fields = html.count('name="csrf_token"') + html.count("data-csrf=")
                assert html.count(token) == fields
                assert f'<span class="who">{name} (' in html
        tokens = {api_csrf(c)["X-CSRF-Token"] for c in (first, second, other)}
        assert len(tokens) == 3
        # The token in the cached page works: the logout form posts it.
        form = {"csrf_token": csrf_from(second.get("/tracker").text)}
        assert second.post("/logout", data=form, follow_redirects=False).status_code == 303
        assert first.get("/tracker", follow_redirects=False).status_code == 200  # still in
    finally:
        for client in (first, second, other):
            client.close()


def test_a_shared_page_follows_every_change_of_its_data(engine, clients, web_world) -> None:
    PAGES.clear()
    panel = clients["panel-a"]
    before = panel.get("/tracker").text
    assert "PUB-2" not in before
    action = create_action(
        engine,
        web_world,
        panel,
        number="2",
        ref="PUB-2",
        description="Quarterly audit of joint handovers",
    )
    assert "Quarterly audit of joint handovers" in panel.get("/tracker").text
    assert "Quarterly audit of joint handovers" in clients["viewer"].get("/tracker").text
    patch = {"version": action["version_id"], "impact_evidence": "Nine of ten handovers joint"}
    changed = panel.patch(f"/api/actions/{action['id']}", json=patch, headers=api_csrf(panel))
    assert changed.status_code == 200
    assert "Nine of ten handovers joint" in clients["viewer"].get("/tracker").text


def test_filters_are_part_of_the_key(clients, web_world) -> None:
    PAGES.clear()
    admin = clients["admin"]
    everything = admin.get("/tracker").text
    assert "HID-1" in everything
    only = admin.get("/tracker", params={"partnership": "Oakvale"}).text
    assert "HID-1" not in only  # Fernhill's action, filtered out: not the unfiltered body
    assert admin.get("/tracker").text.count("HID-1") == everything.count("HID-1")

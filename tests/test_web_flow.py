"""Flow through the pages: landing on Search, finding a review, stable theme colours."""

from __future__ import annotations

import re

from tests.web_support import MARKER, PASSWORD, csrf_from

pytest_plugins = ["tests.web_fixtures"]


def test_login_lands_on_search(anon, web_world) -> None:
    page = anon.get("/login")
    response = anon.post(
        "/login",
        data={"username": "viewer", "password": PASSWORD, "csrf_token": csrf_from(page.text)},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/search"
    assert anon.get("/", follow_redirects=False).headers["location"] == "/search"


def _names(html: str) -> list[str]:
    table = html[html.index('id="reviews-table"') :]
    return re.findall(r'<a href="/reviews/\d+">([^<]+)</a>', table)


def test_reviews_list_search_filters_and_sort(clients, web_world) -> None:
    c = clients["admin"]
    assert _names(c.get("/reviews").text) == ["Child P", f"Child {MARKER}"]
    assert _names(c.get("/reviews?q=published").text) == ["Child P"]  # title words count
    assert _names(c.get("/reviews?status=embargoed").text) == [f"Child {MARKER}"]
    assert _names(c.get("/reviews?theme=under-1s").text) == ["Child P"]
    assert _names(c.get("/reviews?partnership=oakvale").text) == []
    assert "No reviews match these filters." in c.get("/reviews?partnership=Oakvale").text
    assert _names(c.get("/reviews?year=2023&type=lcspr&sort=name").text) == [
        "Child P",
        f"Child {MARKER}",
    ]
    assert _names(c.get("/reviews?sort=passages").text)[0] in ("Child P", f"Child {MARKER}")
    # An unknown choice (an old bookmark) is ignored, not an error.
    assert c.get("/reviews?status=lost&sort=sideways&year=abc").status_code == 200
    # Filters never widen access: the viewer's list never has the embargoed review.
    assert MARKER not in clients["viewer"].get("/reviews?q=zebra").text
    api = c.get("/api/reviews", params={"theme": "domestic-abuse"}).json()
    assert [r["pseudonym"] for r in api["items"]] == [f"Child {MARKER}"] and api["total"] == 1


def test_theme_colour_is_the_same_on_every_page(clients, web_world, web_app) -> None:
    """A theme's highlight colour comes from the taxonomy order, not from the order themes
    happen to appear on one page; every highlight is followed by its legend number."""
    from kb.services.tagging import get_taxonomy

    order = list(get_taxonomy(web_app.state.settings).themes)
    html = clients["admin"].get(f"/reviews/{web_world.published_review}").text
    for theme in ("under-1s", "information-sharing"):
        colour = order.index(theme) % 12
        assert re.search(rf'<mark class="t{colour}" data-themes="{theme}"', html), theme
    assert '<sup class="key" aria-hidden="true">' in html
    assert '<span class="visually-hidden"> (theme: ' in html

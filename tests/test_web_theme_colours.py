"""One colour per theme everywhere: a theme's chip on the search page, its highlight and legend
on a review, its heading in the tracker and its line on the trend chart share one palette
entry (web/highlight.taxonomy_colours), always next to the theme's name."""

from __future__ import annotations

import re

from nlp.taxonomy import load_taxonomy
from web import charts
from web.highlight import THEME_INK, colour_for, ink_for, taxonomy_colours

pytest_plugins = ["tests.web_fixtures"]


def _expected(theme_id: str) -> str:
    return f"t{colour_for(theme_id, taxonomy_colours())}"


def test_colours_follow_the_taxonomy_order_and_differ_between_neighbours() -> None:
    ids = [theme.id for theme in load_taxonomy()]
    colours = taxonomy_colours()
    assert [colours[t] for t in ids[:12]] == list(range(12))
    assert colours["under-1s"] != colours["non-accidental-injury"]
    assert colour_for("a-partnership-theme", {}) == colour_for("a-partnership-theme", {})


def test_search_chips_use_the_theme_colour_and_name(clients, web_world) -> None:
    page = clients["viewer"].get(
        "/search", params={"q": "midwife health visitor not shared", "mode": "bm25"}
    )
    chips = re.findall(r'<a class="chip (t\d+)" href="[^"]*" title="[^"]*" data-theme="([^"]+)">'
                       r"([^<]+)</a>", page.text)  # fmt: skip
    assert chips, page.text
    for colour, theme_id, label in chips:
        assert colour == _expected(theme_id)
        assert label.strip()  # never colour alone
    assert "information-sharing" in {theme for _, theme, _ in chips}


def test_review_page_and_search_agree_on_a_theme_colour(clients, web_world) -> None:
    review = clients["viewer"].get(f"/reviews/{web_world.published_review}").text
    search = clients["viewer"].get("/search", params={"q": "not shared", "mode": "bm25"}).text
    for theme_id in ("under-1s", "information-sharing"):
        assert f'<mark class="{_expected(theme_id)}" data-themes="{theme_id}"' in review
    colour = _expected("information-sharing")
    assert re.search(rf'class="chip {colour}"[^>]*data-theme="information-sharing"', search)


def test_tracker_marks_themes_with_their_colour(clients, web_world) -> None:
    page = clients["admin"].get("/tracker").text
    colour = _expected("domestic-abuse")
    assert re.search(rf'<mark class="theme {colour}">Domestic abuse[^<]*</mark>', page), page


def test_trend_lines_take_the_theme_hue() -> None:
    matrix = {
        "years": [2021, 2022],
        "totals": [3, 4],
        "themes": [{"id": "neglect", "label": "Neglect", "counts": [1, 2]}],
    }
    colours = taxonomy_colours()
    svg = charts.trend_svg(matrix, top=5, colours=colours)
    ink = ink_for("neglect", colours)
    assert ink in THEME_INK and ink.lower() in svg.lower()

"""The themes dashboard and its JSON / CSV / XLSX / SVG twins, through the real HTTP client.

The world (tests/web_support.py) has one published review (under-1s, information sharing) and
one embargoed review (domestic abuse, hidden men) in 2023: a viewer must count 1 review, an
admin 2, in every table, chart and export.
"""

from __future__ import annotations

import csv
import io
import re

import pytest
from openpyxl import load_workbook
from sqlmodel import Session

from kb.models import Role
from kb.services.access import Principal
from kb.services.recurrence import theme_recurrence, theme_year_matrix
from tests.web_support import MARKER

pytest_plugins = ["tests.web_fixtures"]

ADMIN = Principal(username="admin", role=Role.ADMIN)


def _svg_texts(svg: str) -> list[str]:
    return re.findall(r"<text[^>]*>([^<]*)</text>", svg)


def test_recurrence_json_counts_only_visible_reviews(clients, engine) -> None:
    viewer = clients["viewer"].get("/api/themes/recurrence").json()
    assert viewer["total_reviews"] == 1
    assert {t["id"]: t["reviews"] for t in viewer["themes"]} == {
        "under-1s": 1,
        "information-sharing": 1,
    }
    admin = clients["admin"].get("/api/themes/recurrence").json()
    assert admin["total_reviews"] == 2
    assert {t["id"]: t["reviews"] for t in admin["themes"]}["domestic-abuse"] == 1
    # The same JSON as `kb themes recurrence --json` computes for that principal.
    with Session(engine) as session:
        assert admin == theme_recurrence(session, principal=ADMIN)
        matrix = theme_year_matrix(session, principal=ADMIN)
    assert clients["admin"].get("/api/themes/matrix").json() == matrix
    viewer_matrix = clients["viewer"].get("/api/themes/matrix").json()
    assert viewer_matrix["years"] == [2023] and viewer_matrix["totals"] == [1]
    assert MARKER not in str(viewer) + str(viewer_matrix)


def test_filters(clients) -> None:
    admin = clients["admin"]
    assert admin.get("/api/themes/recurrence", params={"partnership": "Oakvale"}).json() == {
        "total_reviews": 0,
        "themes": [],
    }
    assert admin.get("/api/themes/recurrence", params={"since": 2024}).json()["total_reviews"] == 0
    both = {"type": "lcspr", "partnership": "fernhill", "since": 2023, "until": 2023}
    assert admin.get("/api/themes/recurrence", params=both).json()["total_reviews"] == 2
    # An untouched form field is "no filter"; a wrong value is a clear 422.
    blank = {"type": "", "partnership": "", "since": "", "until": ""}
    assert admin.get("/api/themes/recurrence", params=blank).json()["total_reviews"] == 2
    bad = admin.get("/api/themes/recurrence", params={"type": "novel"})
    assert bad.status_code == 422 and "type" in bad.json()["detail"]


def test_taxonomy_list(clients) -> None:
    themes = clients["viewer"].get("/api/themes").json()
    by_id = {t["id"]: t for t in themes}
    assert len(themes) >= 27
    assert by_id["information-sharing"]["label"] == "Information sharing and communication"


def test_dashboard_table_and_links(clients) -> None:
    page = clients["viewer"].get("/themes")
    assert page.status_code == 200
    html = page.text
    table = html[html.index('id="recurrence-table"') :]
    table = table[: table.index("</table>")]
    assert "Information sharing" in table and "1/1" in table
    # The national comparison lists every theme with a national figure (domestic abuse too),
    # with the viewer's own count: 0 of the 1 review they may see. Nowhere else may it appear.
    start, end = html.index('<section id="national"'), html.index('<section id="matrix"')
    national, rest = html[start:end], html[:start] + html[end:]
    assert "0% (0/1)" in national[national.index("Domestic abuse") :]
    assert "Domestic abuse" not in rest and MARKER not in html
    assert 'href="/search?theme=information-sharing"' in html
    assert 'src="/charts/heatmap.svg"' in html and 'src="/charts/trend.svg"' in html
    assert 'aria-current="page"' in html[: html.index("</nav>")]  # the Themes nav link is lit
    admin = clients["admin"].get("/themes", params={"partnership": "Fernhill", "since": ""}).text
    assert "1/2" in admin and "Domestic abuse" in admin
    assert 'src="/charts/recurrence.svg?partnership=Fernhill"' in admin
    assert "/api/themes/recurrence.csv?partnership=Fernhill" in admin


def test_exports_exclude_hidden_reviews(clients) -> None:
    viewer = clients["viewer"].get("/api/themes/recurrence.csv")
    assert viewer.status_code == 200 and viewer.headers["content-type"].startswith("text/csv")
    assert 'filename="recurrence.csv"' in viewer.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(viewer.text.lstrip("\ufeff"))))
    assert rows[2][:4] == ["Theme", "Reviews", "Of", "Share"]
    assert {r[-1]: (r[1], r[2]) for r in rows[3:]} == {
        "under-1s": ("1", "1"),
        "information-sharing": ("1", "1"),
    }
    assert {r[6] for r in rows[3:]} == {"Child P"}  # pseudonyms, not review ids
    admin_rows = list(
        csv.reader(io.StringIO(clients["admin"].get("/api/themes/recurrence.csv").text))
    )
    assert list({r[2] for r in admin_rows[3:]}) == ["2"]
    assert MARKER not in viewer.text
    book = load_workbook(io.BytesIO(clients["viewer"].get("/api/themes/matrix.xlsx").content))
    sheet = book.active
    values = [[c for c in row] for row in sheet.iter_rows(values_only=True)]
    assert values[2] == ["Theme", "2023", "Total", "Share", "Theme id"]
    assert {row[-1] for row in values[3:-1]} == {"under-1s", "information-sharing"}
    assert values[-1][:3] == ["All reviews", 1, 1]
    titled = clients["viewer"].get("/api/themes/recurrence.csv", params={"type": "lcspr"}).text
    assert "(type lcspr)" in titled.splitlines()[0]


def test_charts_count_only_visible_reviews(clients) -> None:
    viewer, admin = clients["viewer"], clients["admin"]
    bars = viewer.get("/charts/recurrence.svg")
    assert bars.status_code == 200 and bars.headers["content-type"].startswith("image/svg+xml")
    texts = _svg_texts(bars.text)
    assert "Information sharing and communication" in texts and " 1/1" in texts
    assert not [t for t in texts if "Domestic" in t or "/2" in t]
    assert " 1/2" in _svg_texts(admin.get("/charts/recurrence.svg").text)
    heat_viewer = _svg_texts(viewer.get("/charts/heatmap.svg").text)
    heat_admin = _svg_texts(admin.get("/charts/heatmap.svg").text)
    assert "2023" in heat_viewer and "Domestic abuse" not in heat_viewer
    assert "Domestic abuse" in heat_admin
    trend = viewer.get("/charts/trend.svg").text
    assert "All reviews" in _svg_texts(trend) and "Domestic abuse" not in trend
    for svg in (bars.text, trend):
        # Clean under the page's CSP: no scripts, no style attributes or elements.
        assert "<script" not in svg and "style=" not in svg and "<style" not in svg
    # Deterministic: the same data gives the same bytes.
    assert viewer.get("/charts/recurrence.svg").text == bars.text


def test_charts_follow_filters_and_handle_no_data(clients) -> None:
    empty = clients["admin"].get("/charts/heatmap.svg", params={"partnership": "Oakvale"})
    assert empty.status_code == 200
    assert "No dated reviews match these filters" in empty.text
    page = clients["admin"].get("/themes", params={"partnership": "Oakvale"}).text
    assert "No tagged themes" in page


def test_charts_carry_totals_shares_and_direct_labels(clients) -> None:
    """The heatmap ends each row with its total and share; trend lines are named at their ends
    (no legend to match by colour); the matrix table has the same totals and shares."""
    viewer = clients["viewer"]
    heat = _svg_texts(viewer.get("/charts/heatmap.svg").text)
    assert "Total (share)" in heat and "1 (100%)" in heat
    trend = _svg_texts(viewer.get("/charts/trend.svg").text)
    # The themes' names are written beside their lines' ends (and "All reviews" beside its own).
    assert "All reviews" in trend and "Information sharing and communication" in trend
    page = viewer.get("/themes").text
    matrix = page[page.index('id="matrix-table"') :]
    assert '<th scope="col" class="num">Total</th><th scope="col" class="num">Share</th>' in matrix
    assert "100%" in matrix
    assert "Trends for the 0" not in clients["admin"].get("/themes?partnership=Oakvale").text


def test_national_comparison_table_chart_and_export(clients) -> None:
    """Each national figure beside the local share, with its source and period (from the data
    file, not code): as a table, a dot-and-bar chart and in the recurrence export."""
    from kb.services.national import load_reference

    reference = load_reference()
    assert reference["domestic-abuse"][0].share == 0.55
    assert reference["domestic-abuse"][0].source.reviews == 235
    admin = clients["admin"]
    page = admin.get("/themes").text
    table = page[page.index('id="national-table"') :]
    table = table[: table.index("</table>")]
    assert "Domestic abuse reported" in table and "55%" in table and "≈75%" in table
    assert "100% (1/2)" not in table and "50% (1/2)" in table  # admin: 1 of 2 reviews
    assert "April 2017 to September 2019" in table
    chart = _svg_texts(admin.get("/charts/national.svg").text)
    assert "England 55%" in chart and "Here 50%" in chart
    rows = list(csv.reader(io.StringIO(admin.get("/api/themes/recurrence.csv").text)))
    domestic = next(r for r in rows[3:] if r[-1] == "domestic-abuse")
    assert domestic[4] == "Domestic abuse reported 55%" and "2017 to 2019" in domestic[5]


def test_a_damaged_reference_file_names_the_file_and_entry(tmp_path) -> None:
    from kb.services.national import ReferenceError, load_reference

    bad = tmp_path / "ref.yaml"
    bad.write_text(
        "sources: {s: {title: T, publisher: P, published: 2022, period: X, reviews: 10}}\n"
        "figures: [{theme: neglect, source: s, measure: M, share: 75}]\n",
        encoding="utf-8",
    )
    with pytest.raises(ReferenceError, match=r"ref.yaml: figure 1: 'share' must be a number"):
        load_reference(bad)

"""A real browser on the themes dashboard and the tracker (headless Debian Chromium).

Checks what only a browser can: the SVG charts load as images under the CSP, and the tracker's
import script (static/tracker.js) posts with the CSRF header and lists located problems.
"""

from __future__ import annotations

import pytest

from tests.test_web_browser import ARGS, CHROMIUM, live_server  # noqa: F401 - fixture
from tests.web_support import PASSWORD

pytest_plugins = ["tests.web_fixtures"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium"),
]


def test_dashboard_charts_load_and_tracker_import_reports_problems(live_server, tmp_path) -> None:  # noqa: F811
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    bad = tmp_path / "actions.csv"
    bad.write_text("Ref,Action,Due date\nB-1,Bad date,not-a-date\n", encoding="utf-8")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(f"{live_server}/themes")
            assert "/login" in page.url
            page.fill("input[name=username]", "panel-a")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url("**/themes")
            assert page.locator("h1").inner_text() == "Themes"
            for chart in ("recurrence", "heatmap", "trend"):
                page.wait_for_function(
                    "id => { const img = document.getElementById(id);"
                    " return img && img.complete; }",
                    arg=f"chart-{chart}",
                )
                width = page.eval_on_selector(f"#chart-{chart}", "img => img.naturalWidth")
                assert width > 0, chart
            table = page.locator("#recurrence-table")
            assert "1/2" in table.inner_text()  # panel-a sees both Fernhill reviews
            assert table.locator("a[href='/search?theme=domestic-abuse']").count() == 1

            page.goto(f"{live_server}/tracker")
            page.set_input_files("#tracker-import input[type=file]", str(bad))
            page.click("#tracker-import button[type=submit]")
            page.wait_for_selector("#import-problems li")
            problem = page.locator("#import-problems li").first.inner_text()
            assert problem.startswith("sheet 'Actions', row 2, column 'Due date'")
            assert "Nothing was imported (400)" in page.locator("#import-status").inner_text()
        finally:
            browser.close()
    assert not [e for e in errors if "Content Security Policy" in e], errors

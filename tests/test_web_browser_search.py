"""A real browser: log in, search, open the review from a hit, confirm a theme there."""

from __future__ import annotations

import re

import pytest

from tests.test_web_browser import ARGS, CHROMIUM, live_server  # noqa: F401 - fixture
from tests.web_support import PASSWORD

pytest_plugins = ["tests.web_fixtures"]
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium"),
]


def test_search_open_hit_and_confirm_tag(live_server, web_world) -> None:  # noqa: F811
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(f"{live_server}/search")
            assert "/login" in page.url
            page.fill("input[name=username]", "panel-a")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url("**/search")
            assert page.locator(".empty-state").count() == 1
            # A pasted, multi-line paragraph, exact-word matching, findings only.
            page.fill(
                "textarea[name=q]",
                "The midwife knew.\nInformation was not shared with the health visitor.",
            )
            page.select_option("select[name=mode]", "bm25")
            page.select_option("select[name=section]", "findings")
            page.click("form.search-form button[type=submit]")
            page.wait_for_url(re.compile(r".*/search\?.*q=.*"))
            hits = page.locator("li.hit")
            assert hits.count() >= 1
            passage = web_world.published_passages[-1]
            hit = page.locator(f"#hit-{passage}")
            assert hit.locator("mark.q").count() >= 2
            assert "Information sharing" in hit.locator("ul.chips").inner_text()
            hit.locator("a.open").click()
            page.wait_for_url(f"**/reviews/{web_world.published_review}#passage-{passage}")
            assert page.locator("h1").inner_text() == "Child P"
            tag_id = web_world.published_tags[-1]
            assert page.locator(f"#passage-{passage} #tag-{tag_id}").count() == 1
            page.click(f"#tag-{tag_id} button.confirm")
            page.wait_for_load_state()
            assert "confirmed by panel-a" in page.locator(f"#tag-{tag_id}").inner_text()
        finally:
            browser.close()
    assert not [e for e in errors if "Content Security Policy" in e], errors

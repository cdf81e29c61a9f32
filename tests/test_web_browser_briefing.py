"""A real browser: log in, build a briefing on a theme, download it as Word and open it."""

from __future__ import annotations

from pathlib import Path

import pytest
from docx import Document as DocxDocument

from kb.services.briefings import DEFAULT_HEADINGS
from tests.test_briefing_export import docx_paragraphs
from tests.test_web_browser import ARGS, CHROMIUM, live_server  # noqa: F401 - fixture
from tests.web_support import PASSWORD

pytest_plugins = ["tests.web_fixtures"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium"),
]


def test_build_a_theme_briefing_and_download_the_docx(live_server, tmp_path: Path) -> None:  # noqa: F811
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_page(accept_downloads=True)
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(f"{live_server}/briefings")
            assert "/login" in page.url
            page.fill("input[name=username]", "viewer")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url("**/briefings")
            assert page.locator("input[name=include_restricted]").count() == 0
            page.select_option("#build-theme select[name=theme_id]", "under-1s")
            page.click("#build-theme button[type=submit]")
            page.wait_for_url("**/briefings/*")
            assert page.locator("ol.briefing-sections > li").count() == 7
            assert "Under-1s" in page.locator("h1").inner_text()
            with page.expect_download() as info:
                page.click("a.button:text-is('DOCX')")
            download = info.value
            assert download.suggested_filename.endswith(".docx")
            target = tmp_path / download.suggested_filename
            download.save_as(str(target))
        finally:
            browser.close()
    doc = DocxDocument(str(target))
    paragraphs = docx_paragraphs(doc)  # the seven boxes sit in a two-column table
    headings = [p.text for p in paragraphs if p.style.name.startswith("Heading 2")]
    assert headings == [f"{n}. {h}" for n, h in enumerate(DEFAULT_HEADINGS, start=1)]
    assert not [e for e in errors if "Content Security Policy" in e], errors

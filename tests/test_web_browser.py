"""A real browser: log in, open a review, confirm a theme (headless Debian Chromium)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from tests.web_support import PASSWORD

pytest_plugins = ["tests.web_fixtures"]

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium"),
]
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def live_server(web_app, web_world):  # type: ignore[no-untyped-def]
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(web_app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_login_open_review_and_confirm_tag(live_server, web_world) -> None:
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(f"{live_server}/reviews/{web_world.published_review}")
            assert "/login" in page.url
            page.fill("input[name=username]", "panel-a")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"**/reviews/{web_world.published_review}")
            assert page.locator("h1").inner_text() == "Child P"
            assert page.locator("mark[data-themes='under-1s']").count() >= 1
            tag_id = web_world.published_tags[0]
            page.click(f"#tag-{tag_id} button.confirm")
            page.wait_for_load_state()
            assert "confirmed by panel-a" in page.locator(f"#tag-{tag_id}").inner_text()
            assert page.locator(f"#tag-{tag_id} button.confirm").count() == 0
            # The upload page's script loads under the CSP (no violations logged).
            page.goto(f"{live_server}/upload")
            assert page.locator("progress#upload-progress").count() == 1
        finally:
            browser.close()
    assert not [e for e in errors if "Content Security Policy" in e], errors


def test_viewer_never_sees_the_embargoed_review(live_server, web_world) -> None:
    """Through every page a viewer would use: list, search, dashboard, tracker, briefings and
    the embargoed review's own URL (a 404 page, exactly like a review that does not exist)."""
    from playwright.sync_api import sync_playwright

    from tests.web_support import MARKER, SEARCH_WORD

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(f"{live_server}/login")
            page.fill("input[name=username]", "viewer")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_load_state()
            seen = []
            for path in (
                "/reviews",
                f"/search?q={SEARCH_WORD}",  # a word both reviews contain
                "/themes",
                "/tracker",
                "/briefings",
            ):
                response = page.goto(f"{live_server}{path}")
                assert response is not None and response.status == 200, path
                seen.append(page.content())
            assert "Child P" in seen[0]
            hidden = page.goto(f"{live_server}/reviews/{web_world.hidden_review}")
            assert hidden is not None and hidden.status == 404
            seen.append(page.content())
            assert not [html for html in seen if MARKER in html]
        finally:
            browser.close()

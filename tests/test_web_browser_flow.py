"""The flow in a real browser (headless Debian Chromium): landing page, keyboard, phone filters,
a confirmed delete, and no links a user cannot follow."""

from __future__ import annotations

import pytest

from tests.test_web_browser import ARGS, CHROMIUM, live_server  # noqa: F401 - fixture
from tests.test_web_browser_a11y import PHONE, browser_session, log_in
from tests.web_support import World

pytest_plugins = ["tests.web_fixtures"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium"),
]


def test_keyboard_landing_and_confirmed_delete(live_server: str, web_world: World) -> None:  # noqa: F811
    with browser_session() as browser:
        page = log_in(browser.new_context(), live_server, "admin")
        assert page.url.endswith("/search")  # login lands on Search
        # The first Tab reaches the skip link; following it moves focus to the content.
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"
        ring = page.evaluate(
            "() => { const s = getComputedStyle(document.activeElement);"
            " return [s.outlineStyle, s.outlineWidth, s.outlineColor]; }"
        )
        assert ring == ["solid", "3px", "rgb(11, 61, 145)"]
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"
        # A focused dark button gets the same ring (outside it, on the light page background).
        page.focus("form.logout button")
        width = page.evaluate("getComputedStyle(document.activeElement).outlineWidth")
        assert width == "3px"

        # Deleting a draft asks first, on its own page.
        page.goto(f"{live_server}/briefings/{web_world.hidden_briefing}")
        page.click("text=Delete this draft…")
        page.wait_for_url(f"**/briefings/{web_world.hidden_briefing}/delete")
        assert page.locator("h1").inner_text() == "Delete this draft?"
        page.click("text=No, keep it")
        page.wait_for_url(f"**/briefings/{web_world.hidden_briefing}")
        page.click("text=Delete this draft…")
        page.click("button:has-text('Yes, delete it')")
        page.wait_for_url("**/briefings?deleted=1")
        assert "The draft was deleted." in page.locator("[role=status]").first.inner_text()


def test_phone_filters_fold_and_viewer_sees_no_upload(live_server: str, web_world: World) -> None:  # noqa: F811
    with browser_session() as browser:
        phone = log_in(browser.new_context(viewport=PHONE), live_server, "viewer")
        assert phone.locator("nav a[href='/upload']").count() == 0
        phone.goto(f"{live_server}/reviews")
        year = phone.locator("select[name=year]")
        assert not year.is_visible()  # folded away on a phone
        phone.click("details.fold summary")
        year.select_option("2023")
        phone.click("button:has-text('Show')")
        phone.wait_for_url("**/reviews?*year=2023*")
        assert year.is_visible()  # a set filter keeps the box open
        assert phone.locator("#reviews-table tbody tr").count() == 1
        # On a phone a table row is a stacked card, its cells labelled by their column.
        label = phone.eval_on_selector(
            "#reviews-table td[data-label=Year]", "td => getComputedStyle(td, '::before').content"
        )
        assert label == '"Year: "'

        # Search: the filters fold away too, so results start near the top of a phone screen.
        phone.goto(f"{live_server}/search?q=kestrelmoss")
        assert not phone.locator("select[name=theme]").is_visible()
        top = phone.eval_on_selector(".results", "el => el.getBoundingClientRect().top")
        assert top < 700, top

        desk = log_in(browser.new_context(), live_server, "panel-a")
        assert desk.locator("nav a[href='/upload']").count() == 1
        desk.goto(f"{live_server}/reviews")
        assert desk.locator("select[name=year]").is_visible()  # always shown on wide screens
        assert not desk.locator("details.fold summary").is_visible()


def test_precedent_upload_works_again_on_the_page_it_returns(
    live_server: str, web_world: World, tmp_path  # noqa: F811
) -> None:
    """The upload form is sent by a script; the page it gets back replaces the body, and that
    page's upload form must be sent the same way (not as a plain post the CSRF check refuses)."""
    short = tmp_path / "short.txt"
    short.write_text("A baby was hurt.\n")
    longer = tmp_path / "notification.txt"
    longer.write_text(
        "A seven week old baby was taken to hospital with bruising to the face. The mother's "
        "new partner had moved into the household and was not known to children's services.\n"
    )
    with browser_session() as browser:
        page = log_in(browser.new_context(), live_server, "admin")
        page.goto(f"{live_server}/precedent")
        page.set_input_files("#precedent-upload input[type=file]", str(short))
        page.click("button:has-text('Upload and find precedent')")
        page.wait_for_selector("p.error")
        assert "fewer than" in page.locator("p.error").inner_text()
        page.set_input_files("#precedent-upload input[type=file]", str(longer))
        page.click("button:has-text('Upload and find precedent')")
        page.wait_for_selector("section.precedent")
        assert page.locator("p.error").count() == 0
        assert "Themes it probably carries" in page.locator("section.precedent").inner_text()

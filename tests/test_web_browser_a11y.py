"""Accessibility and phone layout in a real browser (headless Debian Chromium).

Every page, as every role: axe-core (bundled by ``axe-playwright-python``) finds no serious or
critical violation at desktop width, and at a phone's width (390 px) no page scrolls sideways:
wide tables scroll inside their own box or become stacked cards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.test_web_browser import ARGS, CHROMIUM, live_server  # noqa: F401 - fixture
from tests.web_support import PASSWORD, SEARCH_WORD, SEES_EMBARGOED, USERS, World

pytest_plugins = ["tests.web_fixtures"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium"),
]
PHONE = {"width": 390, "height": 844}
BAD = {"serious", "critical"}


def pages_for(user: str, world: World) -> list[str]:
    """Every page this user can open (the restricted briefing only for those who may see it)."""
    pages = [
        "/search",
        f"/search?q={SEARCH_WORD}",
        f"/search?like={world.published_passages[0]}",
        "/reviews",
        f"/reviews/{world.published_review}",
        "/themes",
        "/tracker",
        "/briefings",
        "/upload",
        "/account/password",
    ]
    if SEES_EMBARGOED[user]:
        pages += [f"/reviews/{world.hidden_review}", f"/briefings/{world.hidden_briefing}"]
    return pages


@contextmanager
def browser_session() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def log_in(context: Any, base: str, user: str) -> Any:
    # The first search loads the embedding model: slow on a busy 2-core machine.
    context.set_default_timeout(120_000)
    page = context.new_page()
    page.goto(f"{base}/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return page


def serious(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page, one line per failing node."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    out = []
    for violation in results.response["violations"]:
        if violation.get("impact") in BAD:
            for node in violation["nodes"]:
                out.append(f"{violation['id']}: {node['target']} {node.get('failureSummary', '')}")
    return out


def sideways(page: Any) -> tuple[int, str]:
    """How many pixels the page is wider than the viewport (0: no sideways scrolling), and the
    innermost element sticking out furthest (to say what to fix)."""
    return tuple(
        page.evaluate(
            """() => {
              const root = document.documentElement;
              const over = Math.max(root.scrollWidth, document.body.scrollWidth)
                - root.clientWidth;
              let worst = "", right = root.clientWidth;
              for (const el of document.body.querySelectorAll("*")) {
                const box = el.getBoundingClientRect();
                if (box.right > right + 0.5) {
                  right = box.right;
                  worst = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
                    + (el.className && typeof el.className === "string"
                       ? "." + el.className.split(" ").join(".") : "");
                }
              }
              return [over, worst];
            }"""
        )
    )


def test_no_serious_accessibility_violations_on_any_page_for_any_role(
    live_server: str,  # noqa: F811
    web_world: World,
) -> None:
    problems: dict[str, list[str]] = {}
    with browser_session() as browser:
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{live_server}/login")
        problems["anonymous /login"] = serious(page)
        context.close()
        for user in USERS:
            context = browser.new_context()
            page = log_in(context, live_server, user)
            for path in pages_for(user, web_world):
                response = page.goto(f"{live_server}{path}")
                assert response is not None and response.status == 200, (user, path)
                if found := serious(page):
                    problems[f"{user} {path}"] = found
            context.close()
    failing = {k: v for k, v in problems.items() if v}
    assert not failing, f"serious/critical axe violations: {failing}"


def test_no_page_scrolls_sideways_on_a_phone(live_server: str, web_world: World) -> None:  # noqa: F811
    wide: dict[str, int] = {}
    culprits: dict[str, str] = {}
    with browser_session() as browser:
        context = browser.new_context(viewport=PHONE)
        page = context.new_page()
        page.goto(f"{live_server}/login")
        wide["anonymous /login"] = sideways(page)[0]
        context.close()
        for user in USERS:
            context = browser.new_context(viewport=PHONE)
            page = log_in(context, live_server, user)
            for path in pages_for(user, web_world):
                page.goto(f"{live_server}{path}")
                wide[f"{user} {path}"], culprits[f"{user} {path}"] = sideways(page)
            context.close()
    too_wide = {k: (v, culprits.get(k)) for k, v in wide.items() if v > 0}
    assert not too_wide, f"pages wider than 390 px (by px): {too_wide}"

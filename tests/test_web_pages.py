"""HTML pages: navigation, reviews list and review page with highlighted, escaped evidence."""

from __future__ import annotations

import re

import pytest

from tests.web_support import MARKER, SEES_EMBARGOED, USERS, csrf_from

pytest_plugins = ["tests.web_fixtures"]


def test_layout_navigation(clients) -> None:
    html = clients["viewer"].get("/reviews").text
    for label in ("Search", "Reviews", "Themes", "Tracker", "Briefings"):
        assert label in html
    assert 'href="/reviews" aria-current="page"' in html
    assert "viewer (viewer)" in html and 'action="/logout"' in html
    assert '<a class="skip-link" href="#main">' in html and '<main id="main"' in html
    # Viewers may not upload, so they are not offered the link; panel members are.
    assert 'href="/upload"' not in html
    assert 'href="/upload"' in clients["panel-a"].get("/reviews").text


@pytest.mark.parametrize("user", list(USERS))
def test_reviews_list_and_review_page_by_role(clients, web_world, user) -> None:
    c = clients[user]
    listing = c.get("/reviews").text
    assert "Child P" in listing
    assert (MARKER in listing) is SEES_EMBARGOED[user]
    page = c.get(f"/reviews/{web_world.hidden_review}")
    if SEES_EMBARGOED[user]:
        assert page.status_code == 200 and MARKER in page.text
        assert "your viewing is recorded" in page.text
    else:
        assert page.status_code == 404 and MARKER not in page.text
        assert "Not found" in page.text


def test_document_text_is_escaped_and_evidence_marked(clients, web_world) -> None:
    html = clients["viewer"].get(f"/reviews/{web_world.published_review}").text
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt; &amp; more." in html
    assert re.search(
        r'<mark class="t\d" data-themes="under-1s" [^>]*>5-month-old baby</mark>', html
    )
    assert re.search(
        r'<mark class="t\d" data-themes="information-sharing"[^>]*>not shared</mark>', html
    )
    # Legend of themes with confidence.
    assert "80%" in html and "legend" in html
    # Viewers cannot decide, so no forms for them.
    assert "/confirm" not in html


def test_confirm_and_reject_forms_for_panel(clients, web_world) -> None:
    c = clients["panel-a"]
    url = f"/reviews/{web_world.published_review}"
    html = c.get(url).text
    for tag_id in web_world.published_tags:
        assert f'action="/tags/{tag_id}/confirm"' in html
        assert f'action="/tags/{tag_id}/reject"' in html
    token = csrf_from(html)
    first, second = web_world.published_tags
    done = c.post(f"/tags/{first}/confirm", data={"version": "1", "csrf_token": token})
    assert done.status_code == 200 and "confirmed by panel-a" in done.text
    assert f'action="/tags/{first}/confirm"' not in done.text
    c.post(f"/tags/{second}/reject", data={"version": "1", "csrf_token": token})
    stale = c.post(f"/tags/{second}/confirm", data={"version": "1", "csrf_token": token})
    assert stale.status_code == 409 and "reload and try again" in stale.text


def test_viewer_cannot_decide_through_the_form(clients, web_world) -> None:
    c = clients["viewer"]
    token = csrf_from(c.get("/reviews").text)
    response = c.post(
        f"/tags/{web_world.published_tags[0]}/confirm", data={"version": "1", "csrf_token": token}
    )
    assert response.status_code == 403


def test_upload_page(clients) -> None:
    viewer = clients["viewer"].get("/upload").text
    assert "Only panel members and admins" in viewer and "<progress" not in viewer
    panel = clients["panel-a"].get("/upload").text
    assert '<progress id="upload-progress"' in panel and 'src="/static/upload.js"' in panel
    assert 'type="file" name="files" multiple' in panel and "Fernhill" in panel
    assert re.search(r'data-csrf="[^"]+"', panel)


def test_unknown_page_is_html_404(clients) -> None:
    response = clients["viewer"].get("/no/such/page")
    assert response.status_code == 404 and "<html" in response.text


def test_highlight_overlaps_and_bad_offsets() -> None:
    from kb.models import TagStatus, ThemeTagPublic
    from web.highlight import evidence_spans, highlight

    def tag(theme: str, start: int, end: int, status: TagStatus = TagStatus.SUGGESTED):
        return ThemeTagPublic(
            id=1,
            passage_id=1,
            review_id=1,
            theme_id=theme,
            status=status,
            version_id=1,
            evidence=[{"passage_start": start, "passage_end": end}],
        )

    text = "a <b> & c"
    spans = evidence_spans(
        [tag("x", 0, 5), tag("y", 2, 9), tag("z", 0, 9, TagStatus.REJECTED), tag("w", 7, 99)], 9
    )
    keys = {"x": 1, "y": 2, "w": 3}
    labels = {"x": "Ex", "y": "Why <y>"}
    html = str(highlight(text, spans, {"x": 0, "y": 1, "w": 2}, keys, labels))
    # Colour is never the only signal: each run ends with its key numbers (the legend's) and,
    # for screen readers, the themes' names (escaped like the text).
    assert html == (
        '<mark class="t0" data-themes="x" title="Ex">a </mark>'
        '<sup class="key" aria-hidden="true">1</sup>'
        '<span class="visually-hidden"> (theme: Ex)</span>'
        '<mark class="t0" data-themes="x y" title="Ex, Why &lt;y&gt;">&lt;b&gt;</mark>'
        '<sup class="key" aria-hidden="true">1,2</sup>'
        '<span class="visually-hidden"> (theme: Ex, Why &lt;y&gt;)</span>'
        '<mark class="t1" data-themes="y" title="Why &lt;y&gt;"> &amp;</mark>'
        '<sup class="key" aria-hidden="true">2</sup>'
        '<span class="visually-hidden"> (theme: Why &lt;y&gt;)</span>'
        '<mark class="t2" data-themes="w y" title="w, Why &lt;y&gt;"> c</mark>'
        '<sup class="key" aria-hidden="true">3,2</sup>'
        '<span class="visually-hidden"> (theme: w, Why &lt;y&gt;)</span>'
    )

"""Briefings through the real HTTP client: JSON API, exports, the builder page and edit form.

The world (tests/web_support.py) has a published review (Child P, tagged under-1s and
information-sharing, with a ``<script>`` in its text) and an embargoed one whose every word
carries MARKER (tagged hidden-men and domestic-abuse), plus a saved briefing quoting it.
"""

from __future__ import annotations

import io
import re

from docx import Document as DocxDocument
from pypdf import PdfReader
from sqlmodel import Session, select

from kb.models import AuditEvent
from kb.services.briefing_export import RESTRICTED_MARKING
from kb.services.briefings import DEFAULT_HEADINGS
from tests.test_briefing_export import docx_paragraphs
from tests.web_support import MARKER, api_csrf, csrf_from

pytest_plugins = ["tests.web_fixtures"]

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PDF_MARKING = RESTRICTED_MARKING.replace("–", "-")  # the PDF core fonts draw a hyphen


def create(client, **body):  # type: ignore[no-untyped-def]
    response = client.post("/api/briefings", json=body, headers=api_csrf(client))
    assert response.status_code == 201, response.text
    return response.json()


def docx_text(content: bytes) -> tuple[str, list[str]]:
    """All text (body, headers, footers) and the section headings of a .docx."""
    doc = DocxDocument(io.BytesIO(content))
    paragraphs = docx_paragraphs(doc)  # the seven boxes sit in a two-column table
    parts = [p.text for p in paragraphs]
    for section in doc.sections:
        parts += [p.text for p in (*section.header.paragraphs, *section.footer.paragraphs)]
    headings = [p.text for p in paragraphs if p.style.name.startswith("Heading 2")]
    return "\n".join(parts), headings


def pdf_text(content: bytes) -> tuple[str, int]:
    reader = PdfReader(io.BytesIO(content))
    return "\n".join(page.extract_text() for page in reader.pages), len(reader.pages)


# --------------------------------------------------------------------------- confidentiality


def test_viewer_theme_briefing_never_contains_the_marker(clients, web_world) -> None:
    viewer = clients["viewer"]
    for theme in ("hidden-men", "domestic-abuse"):
        # Asking for restricted material is ignored for a role that may not see it.
        saved = create(viewer, theme_id=theme, include_restricted=True)
        assert saved["restricted"] is False and len(saved["sections"]) == 7
        assert MARKER.lower() not in str(saved).lower()
        for fmt in ("html", "docx", "pdf"):
            response = viewer.get(f"/api/briefings/{saved['id']}/export.{fmt}")
            assert response.status_code == 200
            body = {
                "html": lambda c: c.decode(),
                "docx": lambda c: docx_text(c)[0],
                "pdf": lambda c: pdf_text(c)[0],
            }[fmt](response.content)
            assert MARKER.lower() not in body.lower() and "RESTRICTED" not in body
    listed = viewer.get("/api/briefings").json()
    assert web_world.hidden_briefing not in {b["id"] for b in listed}
    assert MARKER not in viewer.get("/briefings").text


def test_admin_with_restricted_material_gets_marker_and_marking(clients, web_world, engine) -> None:
    admin = clients["admin"]
    saved = create(admin, theme_id="hidden-men", include_restricted=True)
    assert saved["restricted"] is True and MARKER in str(saved)
    bid = saved["id"]

    html = admin.get(f"/api/briefings/{bid}/export.html")
    assert html.status_code == 200 and html.headers["content-type"] == "text/html; charset=utf-8"
    assert html.headers["content-disposition"] == (
        f'attachment; filename="briefing-{bid}-hidden-men.html"'
    )
    assert RESTRICTED_MARKING in html.text and MARKER in html.text

    docx = admin.get(f"/api/briefings/{bid}/export.docx")
    assert docx.headers["content-type"] == DOCX_TYPE
    assert docx.headers["content-disposition"].endswith(
        f'filename="briefing-{bid}-hidden-men.docx"'
    )
    text, _ = docx_text(docx.content)
    assert text.count(RESTRICTED_MARKING) >= 3  # banner, page header and page footer
    assert MARKER in text

    pdf = admin.get(f"/api/briefings/{bid}/export.pdf")
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"].endswith(f'filename="briefing-{bid}-hidden-men.pdf"')
    text, pages = pdf_text(pdf.content)
    assert pages == 1 and PDF_MARKING in text and MARKER in text

    page = admin.get(f"/briefings/{bid}")
    assert page.status_code == 200 and RESTRICTED_MARKING in page.text
    # Every download of restricted material is audited, with ids only.
    with Session(engine) as session:
        events = session.exec(
            select(AuditEvent).where(AuditEvent.action == "briefing.export")
        ).all()
    assert sorted(e.detail for e in events if e.object_id == str(bid)) == [
        "format=docx",
        "format=html",
        "format=pdf",
    ]
    assert all(MARKER not in (e.detail or "") for e in events)


def test_restricted_briefing_is_not_found_for_those_who_may_not_see_it(clients, web_world) -> None:
    bid = web_world.hidden_briefing
    assert MARKER in clients["panel-a"].get(f"/api/briefings/{bid}").text
    for user in ("viewer", "panel-b"):
        client = clients[user]
        for path in (
            f"/api/briefings/{bid}",
            f"/api/briefings/{bid}/export.html",
            f"/api/briefings/{bid}/export.docx",
            f"/api/briefings/{bid}/export.pdf",
            f"/briefings/{bid}",
        ):
            response = client.get(path)
            assert response.status_code == 404, (user, path)
            assert MARKER not in response.text
        headers = api_csrf(client)
        patch = client.patch(
            f"/api/briefings/{bid}", json={"version": 1, "title": "x"}, headers=headers
        )
        assert patch.status_code == 404
        gone = client.delete(f"/api/briefings/{bid}", params={"version": 1}, headers=headers)
        assert gone.status_code == 404  # not 403: its existence is not revealed
        assert bid not in {b["id"] for b in client.get("/api/briefings").json()}
    assert bid in {b["id"] for b in clients["panel-a"].get("/api/briefings").json()}


def test_restricted_review_needs_the_flag_and_the_right(clients, web_world) -> None:
    hidden = web_world.hidden_review
    for user, message in (("admin", "not published"), ("panel-b", "not found")):
        client = clients[user]
        response = client.post(
            "/api/briefings",
            json={"review_id": hidden, "include_restricted": user == "panel-b"},
            headers=api_csrf(client),
        )
        assert response.status_code == 404 and message in response.json()["detail"]
        assert MARKER not in response.text
    saved = create(clients["panel-a"], review_id=hidden, include_restricted=True)
    assert saved["restricted"] and saved["title"] == f"7-minute briefing: Child {MARKER}"


# --------------------------------------------------------------------------- editing


def test_edit_with_version_and_stale_edit_is_409(clients, web_world) -> None:
    viewer = clients["viewer"]
    saved = create(viewer, theme_id="under-1s")
    bid, headers = saved["id"], api_csrf(viewer)
    sections = saved["sections"]
    sections[3]["items"].append({"text": "Local data: our own figures.", "review_id": None})
    sections[5]["heading"] = "Talk about it"
    done = viewer.patch(
        f"/api/briefings/{bid}",
        json={"version": 1, "title": "Babies: team meeting", "sections": sections},
        headers=headers,
    )
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["version_id"] == 2 and body["title"] == "Babies: team meeting"
    assert body["sections"][3]["items"][-1]["text"] == "Local data: our own figures."
    assert body["sections"][5]["heading"] == "Talk about it"

    stale = viewer.patch(
        f"/api/briefings/{bid}", json={"version": 1, "title": "Older"}, headers=headers
    )
    assert stale.status_code == 409
    assert "changed by someone else" in stale.json()["detail"]
    assert "reload and try again" in stale.json()["detail"]
    assert viewer.get(f"/api/briefings/{bid}").json()["title"] == "Babies: team meeting"

    bad = viewer.patch(
        f"/api/briefings/{bid}", json={"version": 2, "sections": sections[:6]}, headers=headers
    )
    assert bad.status_code == 422 and "7 sections" in bad.json()["detail"]
    leak = [dict(s) for s in sections]
    leak[2] = {
        **leak[2],
        "items": [
            {
                "text": "quote",
                "review_id": web_world.hidden_review,
                "passage_id": web_world.hidden_passages[0],
            }
        ],
    }
    refused = viewer.patch(
        f"/api/briefings/{bid}", json={"version": 2, "sections": leak}, headers=headers
    )
    assert refused.status_code == 404


def test_bad_requests(clients) -> None:
    viewer = clients["viewer"]
    headers = api_csrf(viewer)
    both = viewer.post(
        "/api/briefings", json={"theme_id": "under-1s", "review_id": 1}, headers=headers
    )
    assert both.status_code == 422 and "exactly one" in both.json()["detail"]
    unknown = viewer.post("/api/briefings", json={"theme_id": "hiden-men"}, headers=headers)
    assert unknown.status_code == 404 and "did you mean 'hidden-men'" in unknown.json()["detail"]
    assert viewer.get("/api/briefings/999999").status_code == 404


def test_delete_by_author_or_admin_with_version(clients, web_world) -> None:
    viewer, panel = clients["viewer"], clients["panel-a"]
    saved = create(viewer, theme_id="under-1s")
    bid = saved["id"]
    other = panel.delete(f"/api/briefings/{bid}", params={"version": 1}, headers=api_csrf(panel))
    assert other.status_code == 403
    headers = api_csrf(viewer)
    stale = viewer.delete(f"/api/briefings/{bid}", params={"version": 7}, headers=headers)
    assert stale.status_code == 409
    assert (
        viewer.delete(f"/api/briefings/{bid}", params={"version": 1}, headers=headers).status_code
        == 204
    )
    assert viewer.get(f"/api/briefings/{bid}").status_code == 404


# --------------------------------------------------------------------------- exports


def test_docx_download_is_a_valid_document_with_seven_numbered_sections(clients) -> None:
    viewer = clients["viewer"]
    saved = create(viewer, theme_id="under-1s")
    response = viewer.get(f"/api/briefings/{saved['id']}/export.docx")
    assert response.status_code == 200 and response.content[:2] == b"PK"
    text, headings = docx_text(response.content)
    assert headings == [f"{n}. {h}" for n, h in enumerate(DEFAULT_HEADINGS, start=1)]
    assert "7-minute briefing: Under-1s" in text
    assert "<script>alert('pwned')</script>" in text  # text, never markup, in Word
    html = viewer.get(f"/api/briefings/{saved['id']}/export.html").text
    assert "<script>alert" not in html and "&lt;script&gt;" in html


# --------------------------------------------------------------------------- pages


def test_builder_page_offers_restricted_material_only_to_roles_that_may_see_it(
    clients,
) -> None:
    viewer = clients["viewer"].get("/briefings")
    assert viewer.status_code == 200
    assert 'href="/briefings" aria-current="page"' in viewer.text
    assert 'name="theme_id"' in viewer.text and 'name="review_id"' in viewer.text
    assert 'name="include_restricted"' not in viewer.text
    assert '<option value="under-1s"' in viewer.text
    for user in ("panel-a", "admin"):
        assert 'name="include_restricted"' in clients[user].get("/briefings").text
    preselected = clients["viewer"].get("/briefings", params={"theme": "hidden-men"}).text
    assert '<option value="hidden-men" selected>' in preselected


def test_build_preview_edit_and_delete_through_the_pages(clients, web_world) -> None:
    c = clients["viewer"]
    token = csrf_from(c.get("/briefings").text)
    built = c.post(
        "/briefings",
        data={"theme_id": "under-1s", "csrf_token": token},
        follow_redirects=False,
    )
    assert built.status_code == 303
    url = built.headers["location"]
    bid = int(url.rsplit("/", 1)[1])
    page = c.get(url).text
    numbers = re.findall(r'<span class="num">(\d)</span>', page)
    assert numbers == [str(n) for n in range(1, 8)]
    for heading in DEFAULT_HEADINGS:
        assert heading in page
    passage = web_world.published_passages[0]
    assert f'href="/reviews/{web_world.published_review}#passage-{passage}"' in page
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page
    for fmt in ("html", "docx", "pdf"):
        assert f'href="/api/briefings/{bid}/export.{fmt}" download' in page
    assert 'name="version" value="1"' in page and RESTRICTED_MARKING not in page

    # The edit form: new title, first point of section 6 removed, a new point in section 4.
    saved = c.get(f"/api/briefings/{bid}").json()
    refs, texts = [], []
    for section in saved["sections"]:
        for index, item in enumerate(section["items"]):
            refs.append(f"{section['number']}:{index}")
            texts.append("" if section["number"] == 6 and index == 0 else item["text"])
        refs.append(f"{section['number']}:new")
        texts.append("Our local figures." if section["number"] == 4 else "")
    form = {
        "csrf_token": csrf_from(page),
        "version": "1",
        "title": "Babies: our briefing",
        "heading": [s["heading"] for s in saved["sections"]],
        "item_ref": refs,
        "item_text": texts,
    }
    edited = c.post(f"/briefings/{bid}/edit", data=form, follow_redirects=False)
    assert edited.status_code == 303 and edited.headers["location"] == f"{url}?saved=1"
    assert "Saved (version 2)." in c.get(edited.headers["location"]).text
    after = c.get(f"/api/briefings/{bid}").json()
    assert after["version_id"] == 2 and after["title"] == "Babies: our briefing"
    assert after["sections"][3]["items"][-1] == {
        "text": "Our local figures.",
        "review_id": None,
        "passage_id": None,
        "role": None,
    }
    assert after["sections"][5]["items"] == saved["sections"][5]["items"][1:]
    assert after["sections"][2]["items"] == saved["sections"][2]["items"]  # citations kept
    cited = [i for s in after["sections"] for i in s["items"] if i["passage_id"] is not None]
    assert cited and all(i["role"] for i in cited)  # and the roles of the passages they cite

    stale = c.post(f"/briefings/{bid}/edit", data=form)
    assert stale.status_code == 409 and "reload and try again" in stale.text

    # Deleting takes two steps: the draft's page links to a confirmation page (no script
    # needed), whose form does the delete.
    page = c.get(url).text
    assert f'href="/briefings/{bid}/delete"' in page
    assert f'action="/briefings/{bid}/delete"' not in page
    confirm = c.get(f"/briefings/{bid}/delete")
    assert confirm.status_code == 200 and "Delete this draft?" in confirm.text
    assert f'action="/briefings/{bid}/delete"' in confirm.text
    token = csrf_from(confirm.text)
    removed = c.post(
        f"/briefings/{bid}/delete",
        data={"csrf_token": token, "version": "2"},
        follow_redirects=False,
    )
    assert removed.status_code == 303 and removed.headers["location"] == "/briefings?deleted=1"
    assert "The draft was deleted." in c.get(removed.headers["location"]).text
    assert c.get(url).status_code == 404


def test_builder_form_errors_rerender_the_page(clients, web_world) -> None:
    admin = clients["admin"]
    token = csrf_from(admin.get("/briefings").text)
    hidden = admin.post(
        "/briefings", data={"review_id": str(web_world.hidden_review), "csrf_token": token}
    )
    assert hidden.status_code == 404 and "include restricted material" in hidden.text
    assert 'name="include_restricted"' in hidden.text
    empty = admin.post("/briefings", data={"csrf_token": token})
    assert empty.status_code == 422 and "Choose either a theme or a review" in empty.text
    built = admin.post(
        "/briefings",
        data={
            "review_id": str(web_world.hidden_review),
            "include_restricted": "true",
            "csrf_token": token,
        },
    )
    assert built.status_code == 200 and RESTRICTED_MARKING in built.text and MARKER in built.text

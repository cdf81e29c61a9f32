"""Review page and API: passage roles shown and corrected, kinds corrected, cases linked.

Permission and audit live in kb/services (tested in test_kb_realdocs.py); here: the page shows
roles and the case, forms and endpoints exist only for editors and do what they say.
"""

from __future__ import annotations

from sqlmodel import Session, select

from kb.models import AuditEvent, Passage, PassageRole, Review
from tests.web_support import api_csrf, csrf_from

pytest_plugins = ["tests.web_fixtures"]


def test_review_page_shows_roles_and_offers_forms_to_editors_only(clients, web_world) -> None:
    url = f"/reviews/{web_world.published_review}"
    passage = web_world.published_passages[0]
    viewer = clients["viewer"].get(url).text
    assert "Role:" in viewer and f'/passages/{passage}/role"' not in viewer
    editor = clients["panel-a"].get(url).text
    assert f'action="/reviews/{web_world.published_review}/passages/{passage}/role"' in editor
    assert f'action="/reviews/{web_world.published_review}/type"' in editor
    # A panel member of another partnership may see the published review but not edit it.
    other = clients["panel-b"].get(url).text
    assert f'/passages/{passage}/role"' not in other


def test_role_form_sets_the_role(clients, web_world, engine) -> None:
    c = clients["panel-a"]
    url = f"/reviews/{web_world.published_review}"
    passage = web_world.published_passages[0]
    token = csrf_from(c.get(url).text)
    response = c.post(
        f"{url}/passages/{passage}/role",
        data={"role": "good_practice", "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"].endswith(
        f"#passage-{passage}"
    )
    page = c.get(url).text
    assert "Good practice" in page and "(confirmed)" in page
    # Its form offers every role, with the one now set selected (and only that one).
    form = page[page.index(f'action="{url}/passages/{passage}/role"') :]
    select = form[form.index("<select") : form.index("</select>")]
    assert select.count("<option ") == len(PassageRole)
    assert select.count(" selected") == 1
    assert '<option value="good_practice" selected>Good practice</option>' in select
    with Session(engine) as session:
        row = session.get(Passage, passage)
        assert row.role == "good_practice" and row.role_source == "person"  # type: ignore[union-attr]


def test_api_roles_kinds_and_cases(clients, web_world, engine) -> None:
    c = clients["admin"]
    headers = api_csrf(c)
    rid, passage = web_world.published_review, web_world.published_passages[0]
    shown = c.get(f"/api/reviews/{rid}").json()
    first = shown["sections"][0]["passages"][0]
    assert {"role", "role_source", "role_confidence"} <= set(first)
    assert "year_inferred" in shown and "case" in shown
    bad = c.put(f"/api/reviews/{rid}/passages/{passage}/role", json={"role": "x"}, headers=headers)
    assert bad.status_code == 400 and "use one of" in bad.json()["detail"]
    ok = c.put(
        f"/api/reviews/{rid}/passages/{passage}/role", json={"role": "finding"}, headers=headers
    )
    assert ok.status_code == 200 and ok.json()["role_source"] == "person"
    kind = c.put(f"/api/reviews/{rid}/type", json={"type": "lcspr"}, headers=headers)
    assert kind.json() == {"id": rid, "type": "lcspr", "type_source": "person"}
    linked = c.post(
        f"/api/reviews/{rid}/case",
        json={"other_review_id": web_world.hidden_review},
        headers=headers,
    )
    assert linked.status_code == 200
    case = c.get(f"/api/reviews/{rid}").json()["case"]
    assert [r["id"] for r in case["reviews"]] == [web_world.hidden_review]
    # A viewer learns nothing of a case whose other document is embargoed.
    assert clients["viewer"].get(f"/api/reviews/{rid}").json()["case"] is None
    assert c.delete(f"/api/reviews/{rid}/case", headers=headers).json()["case_id"] is None
    with Session(engine) as session:
        actions = {e.action for e in session.exec(select(AuditEvent)).all()}
        assert {"set_role", "set_type", "link_case", "unlink_case"} <= actions
        assert session.get(Review, rid).case_source == "person"  # type: ignore[union-attr]


def test_viewer_cannot_change_roles_over_the_api(clients, web_world) -> None:
    c = clients["viewer"]
    rid, passage = web_world.published_review, web_world.published_passages[0]
    response = c.put(
        f"/api/reviews/{rid}/passages/{passage}/role",
        json={"role": "finding"},
        headers=api_csrf(c),
    )
    assert response.status_code == 403

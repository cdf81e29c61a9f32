"""Findings and recommendations over the API: read by whoever sees the review, corrected only
by panel members of its partnership and admins, hidden ones answering 404 like missing ones."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from kb.models import AuditEvent, Finding, Recommendation
from tests.web_support import MARKER, SEES_EMBARGOED, USERS, api_csrf

pytest_plugins = ["tests.web_fixtures"]


@pytest.mark.parametrize("user", list(USERS))
def test_learning_of_the_embargoed_review_by_role(clients, web_world, user) -> None:
    c = clients[user]
    response = c.get(f"/api/reviews/{web_world.hidden_review}/findings")
    if SEES_EMBARGOED[user]:
        body = response.json()
        assert [f["id"] for f in body["findings"]] == [web_world.hidden_finding]
        assert [r["id"] for r in body["recommendations"]] == [web_world.hidden_recommendation]
        assert MARKER in response.text
    else:
        assert response.status_code == 404 and MARKER not in response.text
        edit = c.patch(
            f"/api/recommendations/{web_world.hidden_recommendation}",
            json={"text": "changed"},
            headers=api_csrf(c),
        )
        assert edit.status_code == 404
        assert edit.json() == {
            "detail": f"recommendation {web_world.hidden_recommendation} not found"
        }


def test_corrections_are_kept_audited_and_checked(clients, web_world, engine) -> None:
    panel = clients["panel-a"]  # Fernhill, the embargoed review's partnership
    url = f"/api/recommendations/{web_world.hidden_recommendation}"
    done = panel.patch(
        url, json={"text": "Agencies should share notifications.", "themes": ["domestic-abuse"]},
        headers=api_csrf(panel),
    )  # fmt: skip
    assert done.status_code == 200, done.text
    assert done.json()["themes"] == ["domestic-abuse"]
    bad = panel.patch(url, json={"themes": ["not-a-theme"]}, headers=api_csrf(panel))
    assert bad.status_code == 400 and "not-a-theme" in bad.json()["detail"]
    finding = panel.patch(
        f"/api/findings/{web_world.hidden_finding}", json={"text": "  "}, headers=api_csrf(panel)
    )
    assert finding.status_code == 400 and "empty" in finding.json()["detail"]
    with Session(engine) as session:
        row = session.get(Recommendation, web_world.hidden_recommendation)
        assert row.text == "Agencies should share notifications." and row.edited
        events = session.exec(
            select(AuditEvent).where(AuditEvent.action == "recommendation.edit")
        ).all()
        assert [e.object_id for e in events] == [str(web_world.hidden_recommendation)]


def test_only_editors_of_the_partnership_correct_published_learning(
    clients, web_world, engine
) -> None:
    with Session(engine) as session:
        row = Finding(review_id=web_world.published_review, number="1", text="Nobody asked.")
        session.add(row)
        session.commit()
        finding_id = row.id
    url = f"/api/findings/{finding_id}"
    for user, expected in (("viewer", 403), ("panel-b", 403), ("panel-a", 200), ("admin", 200)):
        c = clients[user]
        assert c.get(f"/api/reviews/{web_world.published_review}/findings").status_code == 200
        response = c.patch(url, json={"text": f"by {user}"}, headers=api_csrf(c))
        assert response.status_code == expected, (user, response.text)
    with Session(engine) as session:
        assert session.get(Finding, finding_id).text == "by admin"

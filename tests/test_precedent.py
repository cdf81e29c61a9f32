"""The precedent view: similar prior cases, likely themes with evidence, what was tried (and did
the theme recur), reflective questions; embargo applies to every part; bad input is a message."""

from __future__ import annotations

import io
from datetime import date

import pytest
from sqlmodel import Session, select

from kb.models import ActionCreate, ActionStatus, ImpactRating, Review, Role
from kb.services.access import Principal
from kb.services.precedent import PrecedentError, precedent
from kb.services.precedent_export import read_notification, to_docx
from kb.services.tagging import get_tagger
from kb.services.tracker import create_action
from tests.test_kb_search import VIEWER, ingest_docs
from tests.web_support import api_csrf, csrf_from

pytest_plugins = ["tests.web_fixtures"]

ADMIN = Principal(username="a", role=Role.ADMIN)
NOTIFICATION = (
    "A ten-week-old baby was admitted with bruising and a fractured skull. The mother's new "
    "partner, an unknown man, had been living in the household; professionals never identified "
    "him or checked his history."
)


@pytest.fixture
def corpus(engine, tmp_path):  # type: ignore[no-untyped-def]
    return ingest_docs(engine, tmp_path)


def answer(engine, principal: Principal, text: str = NOTIFICATION) -> dict:  # type: ignore[no-untyped-def,type-arg]
    with Session(engine) as session:
        return precedent(session, principal=principal, text=text, tagger=get_tagger())


def test_contract_cases_themes_questions(corpus) -> None:  # type: ignore[no-untyped-def]
    result = answer(corpus, VIEWER)
    assert set(result) >= {"themes", "cases", "tried", "questions"}
    assert result["themes"] and all(set(t) >= {"id", "label", "evidence"} for t in result["themes"])
    for theme in result["themes"]:
        assert theme["evidence"] in " ".join(NOTIFICATION.split())
    assert "hidden-men" in {t["id"] for t in result["themes"]}
    keys = {"case_id", "review_id", "title", "summary", "score", "shared_themes", "passages"}
    assert result["cases"] and all(set(c) >= keys for c in result["cases"])
    assert result["cases"][0]["title"].endswith("Child A")
    assert all(c["passages"] for c in result["cases"])
    assert result["questions"] and all(isinstance(q, str) for q in result["questions"])


def test_embargoed_review_never_shapes_the_answer(corpus) -> None:  # type: ignore[no-untyped-def]
    with Session(corpus) as session:
        hidden = session.exec(select(Review).where(Review.pseudonym == "Child C")).one()
    viewer = answer(corpus, VIEWER)
    assert hidden.id not in {c["review_id"] for c in viewer["cases"]}
    assert "zebrawood" not in repr(viewer)
    admin = answer(corpus, ADMIN)
    assert hidden.id in {c["review_id"] for c in admin["cases"]}


def test_tried_reports_status_impact_and_recurrence(corpus) -> None:  # type: ignore[no-untyped-def]
    with Session(corpus) as session:
        create_action(
            session,
            principal=ADMIN,
            data=ActionCreate(
                ref="HM-1",
                description="Ask about every adult in the household at each contact",
                status=ActionStatus.COMPLETED,
                completed_date=date(2019, 6, 1),
                impact_rating=ImpactRating(list(ImpactRating)[0].value),
                theme_ids=["hidden-men"],
            ),
        )
        session.commit()
    rows = [r for r in answer(corpus, ADMIN)["tried"] if r["ref"] == "HM-1"]
    assert rows and rows[0]["theme"] == "hidden-men" and rows[0]["status"] == "completed"
    assert rows[0]["impact_rating"] is not None
    # Child C (2023, embargoed) carries hidden men after June 2019: visible to the admin only.
    assert rows[0]["recurred_after"] is True
    viewer_rows = [r for r in answer(corpus, VIEWER)["tried"] if r["ref"] == "HM-1"]
    assert viewer_rows and viewer_rows[0]["recurred_after"] is False


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "empty"), ("   ", "empty"), ("baby hurt", "fewer than"), ("x " * 40_000, "limit")],
)
def test_bad_text_is_a_clear_message(corpus, text: str, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PrecedentError, match=message):
        answer(corpus, VIEWER, text)


def test_no_theme_still_answers(corpus) -> None:  # type: ignore[no-untyped-def]
    result = answer(
        corpus, VIEWER, "The weather in the town was mild all week and the shops were busy."
    )
    assert result["themes"] == [] and "message" in result


def test_files_and_docx() -> None:
    assert "unknown man" in read_notification(NOTIFICATION.encode(), "note.txt")
    with pytest.raises(PrecedentError, match="unsupported format"):
        read_notification(b"\x00\x01", "note.exe")
    from docx import Document

    result = {
        "themes": [{"id": "hidden-men", "label": "Hidden men", "evidence": "He lived there."}],
        "cases": [
            {
                "title": "Child A",
                "summary": "A baby.",
                "score": 0.7,
                "shared_themes": ["hidden-men"],
                "passages": [{"text": "Nobody asked."}],
            }
        ],
        "tried": [
            {
                "theme": "hidden-men",
                "ref": "HM-1",
                "description": "Ask",
                "status": "completed",
                "impact_rating": None,
                "recurred_after": True,
            }
        ],
        "questions": ["Who else lived there?"],
    }
    text = "\n".join(p.text for p in Document(io.BytesIO(to_docx(result))).paragraphs)
    assert "Hidden men" in text and "Child A" in text and "Who else lived there?" in text


def test_api_and_page(clients) -> None:  # type: ignore[no-untyped-def]
    viewer = clients["viewer"]
    headers = api_csrf(viewer)
    api = viewer.post("/api/precedent", json={"text": NOTIFICATION}, headers=headers)
    assert api.status_code == 200, api.text
    assert set(api.json()) >= {"themes", "cases", "tried", "questions"}
    bad = viewer.post("/api/precedent", json={"text": ""}, headers=headers)
    assert bad.status_code == 400 and "empty" in bad.json()["detail"]
    upload = viewer.post(
        "/api/precedent/upload",
        files={"file": ("note.exe", b"MZ", "application/octet-stream")},
        headers=headers,
    )
    assert upload.status_code == 400 and "unsupported format" in upload.json()["detail"]
    page = viewer.get("/precedent")
    assert page.status_code == 200 and "Precedent for a new incident" in page.text
    token = csrf_from(page.text)
    shown = viewer.post("/precedent", data={"text": NOTIFICATION, "csrf_token": token})
    assert shown.status_code == 200 and "Prior cases most like it" in shown.text
    empty = viewer.post("/precedent", data={"text": " ", "csrf_token": token})
    assert empty.status_code == 400 and "is empty" in empty.text and "<form" in empty.text
    docx = viewer.post("/api/precedent/docx", json={"text": NOTIFICATION}, headers=headers)
    assert docx.status_code == 200 and docx.content[:2] == b"PK"

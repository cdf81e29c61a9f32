"""Shared helpers for the web / API / security tests: a small fictional world, logging in.

The world has two partnerships, a published review (with a ``<script>`` in its text) and an
embargoed review whose text, pseudonym and title carry the marker word ``Zebraquill`` (and a
saved restricted briefing quotes it): a role that may not see the embargoed review must never
receive that word, whatever the route.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from kb.models import (
    Action,
    ActionCourseLink,
    ActionRecommendationLink,
    ActionStatus,
    ActionThemeLink,
    Document,
    FileState,
    Finding,
    IngestJob,
    IngestJobFile,
    JobState,
    Partnership,
    Passage,
    Recommendation,
    Review,
    ReviewStatus,
    ReviewType,
    Role,
    ThemeTag,
    TrainingCourse,
)
from kb.services.access import Principal
from kb.services.briefings import build_briefing, save_briefing
from kb.services.users import create_user

MARKER = "Zebraquill"
SEARCH_WORD = "kestrelmoss"
PASSWORD = "correct horse battery"
USERS = {
    "viewer": (Role.VIEWER, "Fernhill"),
    "panel-a": (Role.PANEL, "Fernhill"),
    "panel-b": (Role.PANEL, "Oakvale"),
    "admin": (Role.ADMIN, None),
}
SEES_EMBARGOED = {"panel-a": True, "admin": True, "viewer": False, "panel-b": False}

PUBLISHED_TEXT = (
    "Background\n\n"
    "Child P was a 5-month-old baby. The note said <script>alert('pwned')</script> & more.\n\n"
    "Findings\n\n"
    "Information was not shared between the midwife and the health visitor.\n"
)
EMBARGOED_TEXT = (
    "Background\n\n"
    f"Child {MARKER} lived with her mother. {SEARCH_WORD} {MARKER} appeared in the record.\n\n"
    "Findings\n\n"
    f"Domestic abuse by the mother's partner was not explored ({MARKER}).\n"
)


@dataclass
class World:
    published_review: int
    published_passages: list[int]
    published_tags: list[int]
    hidden_review: int
    hidden_document: int
    hidden_passages: list[int]
    hidden_tags: list[int]
    hidden_theme: str
    hidden_briefing: int = 0  # a saved briefing quoting the embargoed review (restricted)
    hidden_action: int = 0  # an action answering only the embargoed review's recommendation
    hidden_finding: int = 0  # a finding of the embargoed review
    hidden_recommendation: int = 0  # the embargoed review's recommendation (linked to the action)
    hidden_job: int = 0  # panel-a's upload job, its file named after the embargoed review


def _passages(text: str) -> list[tuple[str, str, int, int]]:
    """(section title, passage text, start, end) for every non-heading paragraph."""
    out = []
    section = ""
    for match in re.finditer(r"[^\n]+", text):
        line = match.group(0)
        if line in ("Background", "Findings"):
            section = line
            continue
        out.append((section, line, match.start(), match.end()))
    return out


def _add_review(
    session: Session,
    *,
    text: str,
    pseudonym: str,
    title: str,
    status: ReviewStatus,
    partnership: Partnership,
    sha: str,
    evidence_words: dict[str, str],
) -> tuple[Review, Document, list[Passage], list[ThemeTag]]:
    document = Document(
        source_name=f"{sha}.md", format="markdown", sha256=sha * 8, text=text, title=title
    )
    session.add(document)
    session.flush()
    review = Review(
        document_id=document.id,
        partnership_id=partnership.id,
        type=ReviewType.LCSPR,
        pseudonym=pseudonym,
        title=title,
        status=status,
        year=2023,
        end=len(text),
    )
    session.add(review)
    session.flush()
    passages, tags = [], []
    for order, (section, body, start, end) in enumerate(_passages(text)):
        assert text[start:end] == body
        passage = Passage(
            review_id=review.id,
            document_id=document.id,
            section_title=section,
            section_kind=section.lower(),
            text=body,
            order=order,
            start=start,
            end=end,
        )
        session.add(passage)
        session.flush()
        passages.append(passage)
        for theme_id, word in evidence_words.items():
            at = body.find(word)
            if at < 0:
                continue
            tag = ThemeTag(
                passage_id=passage.id,
                review_id=review.id,
                theme_id=theme_id,
                method="rules",
                confidence=0.8,
                evidence=[
                    {
                        "text": word,
                        "start": start + at,
                        "end": start + at + len(word),
                        "passage_start": at,
                        "passage_end": at + len(word),
                    }
                ],
            )
            session.add(tag)
            session.flush()
            tags.append(tag)
    return review, document, passages, tags


def _add_hidden_action(session: Session, review: Review) -> int:
    """A recommendation of the embargoed review and an action answering only it (completed
    without evidence of impact, so it raises a signal), delivered by a course everyone sees."""
    rec = Recommendation(review_id=review.id, number="1", text=f"{MARKER} agencies should share.")
    session.add(rec)
    session.flush()
    action = Action(
        ref="HID-1",
        description=f"Follow up the {MARKER} review",
        agency=f"{MARKER} team",
        status=ActionStatus.COMPLETED,
        completed_date=date(2023, 6, 1),
        partnership_id=review.partnership_id,
    )
    session.add(action)
    session.flush()
    course = TrainingCourse(ref="TC-1", title="Domestic abuse awareness")
    session.add(course)
    session.flush()
    session.add_all(
        [
            ActionRecommendationLink(action_id=action.id, recommendation_id=rec.id),
            ActionThemeLink(action_id=action.id, theme_id="domestic-abuse"),
            ActionCourseLink(action_id=action.id, course_id=course.id),
        ]
    )
    session.flush()
    return action.id  # type: ignore[return-value]


def build_world(engine: Engine) -> World:
    with Session(engine, expire_on_commit=False) as session:
        fernhill, oakvale = Partnership(name="Fernhill"), Partnership(name="Oakvale")
        session.add_all([fernhill, oakvale])
        session.flush()
        pub, _, pub_passages, pub_tags = _add_review(
            session,
            text=PUBLISHED_TEXT,
            pseudonym="Child P",
            title="Child P: a published review",
            status=ReviewStatus.PUBLISHED,
            partnership=fernhill,
            sha="a",
            evidence_words={"under-1s": "5-month-old baby", "information-sharing": "not shared"},
        )
        hid, hid_doc, hid_passages, hid_tags = _add_review(
            session,
            text=EMBARGOED_TEXT,
            pseudonym=f"Child {MARKER}",
            title=f"{MARKER} embargoed review",
            status=ReviewStatus.EMBARGOED,
            partnership=fernhill,
            sha="b",
            evidence_words={"domestic-abuse": "Domestic abuse", "hidden-men": MARKER},
        )
        for username, (role, partnership) in USERS.items():
            create_user(
                session, username=username, password=PASSWORD, role=role, partnership=partnership
            )
        admin = Principal(username="admin", role=Role.ADMIN)
        draft = build_briefing(session, principal=admin, review_id=hid.id, include_restricted=True)
        briefing = save_briefing(session, principal=admin, draft=draft)
        hidden_action = _add_hidden_action(session, hid)
        hidden_finding = Finding(review_id=hid.id, number="1", text=f"{MARKER} was not seen.")
        session.add(hidden_finding)
        session.flush()
        hidden_rec = session.exec(
            select(Recommendation.id).where(Recommendation.review_id == hid.id)
        ).one()
        job = IngestJob(username="panel-a", partnership="Fernhill", state=JobState.DONE)
        session.add(job)
        session.flush()
        session.add(
            IngestJobFile(
                job_id=job.id,  # type: ignore[arg-type]
                position=0,
                name="child.md",
                original=f"{MARKER}.md",
                state=FileState.FAILED,
                result={"error": f"{MARKER}: a reason naming the embargoed review"},
            )
        )
        session.commit()
        return World(
            published_review=pub.id,
            published_passages=[p.id for p in pub_passages],
            published_tags=[t.id for t in pub_tags],
            hidden_review=hid.id,
            hidden_document=hid_doc.id,
            hidden_passages=[p.id for p in hid_passages],
            hidden_tags=[t.id for t in hid_tags],
            hidden_theme="domestic-abuse",
            hidden_briefing=briefing.id,
            hidden_action=hidden_action,
            hidden_finding=hidden_finding.id,  # type: ignore[arg-type]
            hidden_recommendation=hidden_rec,
            hidden_job=job.id,  # type: ignore[arg-type]
        )


CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def login(client: TestClient, username: str, password: str = PASSWORD) -> TestClient:
    """Log in through the real form; the client keeps the session cookie."""
    page = client.get("/login")
    response = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_from(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return client


def api_csrf(client: TestClient) -> dict[str, str]:
    """The X-CSRF-Token header for this client's session (from GET /api/me)."""
    return {"X-CSRF-Token": client.get("/api/me").json()["csrf_token"]}


def create_action(
    engine: Engine, world: World, client: TestClient, *, number: str, **fields: object
) -> dict[str, Any]:
    """An action answering a new recommendation of the published review, made through the API
    as ``client`` would (so the tracker's caches see a real write); returns the API's JSON."""
    with Session(engine) as session:
        rec = Recommendation(review_id=world.published_review, number=number, text="Act.")
        session.add(rec)
        session.commit()
        rec_id = rec.id
    body = {
        "agency": "Health",
        "status": "in_progress",
        "recommendation_ids": [rec_id],
        "theme_ids": ["information-sharing"],
        **fields,
    }
    created = client.post("/api/actions", json=body, headers=api_csrf(client))
    assert created.status_code == 201, created.text
    return created.json()

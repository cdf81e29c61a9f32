"""Signals on the known corpus: each kind present when it should be, absent when not."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from kb.models import ActionCreate, ActionStatus, ImpactRating, Recommendation
from kb.services.access import Principal
from kb.services.signals import signals
from kb.services.tracker import create_action
from tests.test_tracker_recurrence import ADMIN, VIEWER, build_corpus

TODAY = date(2024, 1, 1)


def _rec(session: Session, review_id: int, number: str) -> int:
    return session.exec(
        select(Recommendation.id).where(
            Recommendation.review_id == review_id, Recommendation.number == number
        )
    ).one()


def _add(session: Session, ref: str, description: str, **fields) -> None:  # type: ignore[no-untyped-def]
    create_action(
        session, principal=ADMIN, data=ActionCreate(ref=ref, description=description, **fields)
    )


@pytest.fixture
def world(engine: Engine) -> dict[str, int]:
    ids = build_corpus(engine)
    done = ActionStatus.COMPLETED
    with Session(engine) as session:
        _add(
            session,
            "A1",
            "Training on engaging fathers",
            theme_ids=["hidden-men"],
            status=done,
            completed_date=date(2020, 3, 15),
            impact_rating=ImpactRating.SOME,
            impact_evidence="Audit: fathers recorded in 40% of cases",
            recommendation_ids=[_rec(session, ids["E"], "1")],
        )
        _add(
            session,
            "A2",
            "Relaunch the neglect strategy",
            theme_ids=["neglect"],
            status=done,
            completed_date=date(2023, 1, 1),
        )
        _add(
            session,
            "A3",
            "Audit the handover",
            theme_ids=["information-sharing"],
            status=ActionStatus.IN_PROGRESS,
            due_date=date(2023, 6, 30),
            agency="ICB",
            recommendation_ids=[_rec(session, ids["F"], "1")],
        )
        _add(
            session,
            "A4",
            "Not yet due",
            status=ActionStatus.IN_PROGRESS,
            due_date=date(2024, 6, 30),
        )
        _add(
            session,
            "A5",
            "Remind agencies of escalation",
            status=ActionStatus.CLOSED,
            completed_date=date(2021, 1, 1),
            impact_rating=ImpactRating.NONE,
            impact_evidence="No change seen",
        )
        _add(
            session,
            "A6",
            "ICON programme",
            status=done,
            completed_date=date(2021, 1, 1),
            impact_rating=ImpactRating.STRONG,
            impact_evidence="Re-audit shows ICON at 95%",
            due_date=date(2020, 1, 1),
        )
        _add(
            session,
            "A7",
            "Embargoed case action",
            theme_ids=["sexual-abuse"],
            status=ActionStatus.NOT_STARTED,
            due_date=date(2023, 9, 1),
            recommendation_ids=[_rec(session, ids["X"], "1")],
        )
        session.commit()  # fmt: skip
    return ids


def _of(found: list[dict], kind: str) -> list[dict]:
    return [s for s in found if s["kind"] == kind]


def test_signal_shape(engine: Engine, world: dict[str, int]) -> None:
    with Session(engine) as session:
        found = signals(session, principal=ADMIN, today=TODAY)
    assert {s["kind"] for s in found} == {
        "recurrence_after_action", "deja_vu", "rising", "overdue", "no_impact_evidence",
    }  # fmt: skip
    for item in found:
        # The original fields stay (a public contract); headline, type and partnership_id were
        # added for the tracker page's collapsed list and filters.
        assert set(item) == {"kind", "theme", "headline", "summary", "reviews", "actions"}
        assert item["headline"] and "…" not in item["summary"] + item["headline"]
        assert all(
            set(r) == {"id", "pseudonym", "date", "type", "partnership_id"} for r in item["reviews"]
        )
        assert all(
            set(a) == {"ref", "description", "completed_date", "status"} for a in item["actions"]
        )


def test_recurrence_after_action(engine: Engine, world: dict[str, int]) -> None:
    with Session(engine) as session:
        viewer = _of(signals(session, principal=VIEWER, today=TODAY), "recurrence_after_action")
        admin = _of(signals(session, principal=ADMIN, today=TODAY), "recurrence_after_action")
    # neglect recurs only BEFORE A2 was completed (2023-01): no signal for it
    assert [s["theme"] for s in viewer] == ["hidden-men"]
    [signal] = viewer
    assert signal["summary"].startswith("Training on engaging fathers completed 2020-03; ")
    assert signal["summary"].endswith("recurred in Child F (2021-06) and Child H (2022-01)")
    assert [r["pseudonym"] for r in signal["reviews"]] == ["Child F", "Child H"]
    assert signal["reviews"][0]["date"] == "2021-06-14"
    assert [a["ref"] for a in signal["actions"]] == ["A1"]
    assert signal["actions"][0]["completed_date"] == "2020-03-15"
    # Child X (Easterby, 2023) is another partnership's review: A1 is Northmoor's action
    assert [r["pseudonym"] for r in admin[0]["reviews"]] == ["Child F", "Child H"]


def test_deja_vu_clusters_across_reviews_only(engine: Engine, world: dict[str, int]) -> None:
    with Session(engine) as session:
        admin = _of(signals(session, principal=ADMIN, today=TODAY), "deja_vu")
        viewer = _of(signals(session, principal=VIEWER, today=TODAY), "deja_vu")
    assert [[r["pseudonym"] for r in s["reviews"]] for s in admin] == [
        ["Child D", "Child F", "Child H"],  # annual report's copy is not counted
        ["Child E", "Child X"],
    ]
    assert admin[0]["summary"].startswith("Recommended in 3 reviews since 2017: ")
    assert "Child D #1; Child F #1; Child H #3" in admin[0]["summary"]
    assert [a["ref"] for a in admin[0]["actions"]] == ["A3"]
    assert [a["ref"] for a in admin[1]["actions"]] == ["A1", "A7"]
    # Child H's two identical recommendations are one review: not a déjà vu on their own;
    # Child F #2 is similar to the fathers cluster but below the threshold
    assert len(viewer) == 1 and len(viewer[0]["reviews"]) == 3
    with Session(engine) as session:
        strict = _of(signals(session, principal=ADMIN, similarity_threshold=0.99), "deja_vu")
    assert strict == []


def test_rising_needs_a_minimum_count(engine: Engine, world: dict[str, int]) -> None:
    with Session(engine) as session:
        admin = _of(signals(session, principal=ADMIN, today=TODAY), "rising")
        viewer = _of(signals(session, principal=VIEWER, today=TODAY), "rising")
    # sexual-abuse is 1 of 4 recent reviews vs 0 before: one review is not a trend
    assert [s["theme"] for s in admin] == ["domestic-abuse"]
    assert (
        "4 of 4 reviews (100%) in 2021–2023, up from 0 of 3 (0%) in 2016–2020"
        in (admin[0]["summary"])
    )
    assert [r["pseudonym"] for r in admin[0]["reviews"]] == [
        "Child F", "Child H", "Child L", "Child X",
    ]  # fmt: skip
    assert (
        "3 of 3 reviews (100%) in 2020–2022, up from 0 of 3 (0%) in 2016–2019"
        in (viewer[0]["summary"])
    )


def test_overdue_and_no_impact(engine: Engine, world: dict[str, int]) -> None:
    with Session(engine) as session:
        admin = signals(session, principal=ADMIN, today=TODAY)
        viewer = signals(session, principal=VIEWER, today=TODAY)
        later = signals(session, principal=ADMIN, today=date(2025, 1, 1))
    overdue = _of(admin, "overdue")
    assert [s["actions"][0]["ref"] for s in overdue] == ["A3", "A7"]
    assert overdue[0]["summary"] == (
        'A3 "Audit the handover" (ICB) was due 2023-06-30 and is 185 days overdue '
        "(status: in progress)"
    )
    assert [r["pseudonym"] for r in overdue[0]["reviews"]] == ["Child F"]
    assert [s["actions"][0]["ref"] for s in _of(viewer, "overdue")] == ["A3"]  # A7 is hidden
    assert [s["actions"][0]["ref"] for s in _of(later, "overdue")] == [
        "A3",
        "A7",
        "A4",
    ]  # most overdue first
    no_impact = _of(admin, "no_impact_evidence")
    assert [s["actions"][0]["ref"] for s in no_impact] == ["A2", "A5"]
    assert "with no evidence of impact recorded" in no_impact[0]["summary"]
    assert "impact rated none" in no_impact[1]["summary"]


def test_panel_member_sees_own_embargoed_review(engine: Engine, world: dict[str, int]) -> None:
    from kb.models import Review, Role

    with Session(engine) as session:
        partnership = session.get(Review, world["X"]).partnership_id
        panel = signals(session, principal=Principal("p", Role.PANEL, partnership), today=TODAY)
    assert "A7" in [s["actions"][0]["ref"] for s in _of(panel, "overdue")]

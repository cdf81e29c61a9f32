"""Search service: hybrid ranking, filters, access control before ranking, index freshness."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from kb.config import get_settings
from kb.models import ReviewStatus, Role
from kb.services.access import Principal
from kb.services.analysis import passage_hook
from kb.services.ingest import IngestOptions, ingest_paths
from kb.services.reviews import NotFound
from kb.services.search import SearchFilters, group_by_review, more_like_this, search

DOCS = {
    "child-a.md": (
        "published",
        2018,
        """# Serious Case Review: Child A

## Background

Child A was a 7-week-old baby. The mother's boyfriend had moved in, but no agency knew who he
was or asked about him.

## Findings

1. Professionals never identified the man living in the household or checked his history.

## Recommendations

1. Health visitors should ask about every adult living in the home at each contact.
""",
    ),
    "child-b.md": (
        "published",
        2022,
        """# Local Child Safeguarding Practice Review: Child B

## Background

Child B, aged 14, went missing repeatedly and was found carrying drugs for older young men.

## Findings

1. The school did not share concerns about criminal exploitation with the police.

## Recommendations

1. Return home interviews should be shared with the exploitation team within 72 hours.
""",
    ),
    "child-c.md": (
        "embargoed",
        2023,
        """# Local Child Safeguarding Practice Review: Child C

## Background

Child C was a baby hurt by her mother's new boyfriend, a man unknown to every service. The
zebrawood case file records this.

## Findings

1. Nobody knew about the boyfriend who lived in the home: the zebrawood finding.
""",
    ),
}


@pytest.fixture
def corpus(engine, tmp_path: Path):  # type: ignore[no-untyped-def]
    return ingest_docs(engine, tmp_path)


def ingest_docs(engine, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The three fictional reviews above in a fresh knowledge base (also used by precedent)."""
    folder = tmp_path / "docs"
    folder.mkdir()
    manifest = {}
    for name, (status, year, text) in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
        manifest[name] = {
            "status": status,
            "incident_date": f"{year}-01-15",
            "partnership": "Fernhill SCP",
        }
    report = ingest_paths(
        engine=engine,
        paths=[folder],
        options=IngestOptions(manifest=manifest),
        on_passages=passage_hook(get_settings()),
    )
    assert not report.failed
    return engine


VIEWER = Principal(username="v", role=Role.VIEWER)


def test_hybrid_search_finds_paraphrase_with_contract_fields(corpus) -> None:  # type: ignore[no-untyped-def]
    with Session(corpus) as session:
        hits = search(
            session, principal=VIEWER, query="baby hurt by mum's partner nobody knew about"
        )
    assert hits[0].pseudonym == "Child A"
    row = hits[0].as_dict()
    assert set(row) >= {
        "review_id",
        "review_title",
        "passage_id",
        "section",
        "text",
        "snippet",
        "score",
        "themes",
    }
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_embargoed_review_leaves_no_trace_for_viewer(corpus) -> None:  # type: ignore[no-untyped-def]
    with Session(corpus) as session:
        for mode in ("hybrid", "bm25", "dense"):
            hits = search(
                session, principal=VIEWER, query="zebrawood boyfriend", mode=mode, top_k=50
            )
            assert all(h.pseudonym != "Child C" for h in hits)
            assert all("zebrawood" not in h.text for h in hits)
        admin_hits = search(session, principal=Principal.system(), query="zebrawood", mode="bm25")
    assert admin_hits and admin_hits[0].pseudonym == "Child C"


def test_filters_apply_before_ranking(corpus) -> None:  # type: ignore[no-untyped-def]
    with Session(corpus) as session:
        recs = search(
            session,
            principal=VIEWER,
            query="share information",
            filters=SearchFilters(section_kind="recommendations"),
            top_k=20,
            floor=None,  # filters, not the "no close match" floor, are under test here
        )
        assert recs and {h.section_kind for h in recs} == {"recommendations"}
        recent = search(
            session, principal=VIEWER, query="baby", top_k=20, filters=SearchFilters(since=2020)
        )
        assert {h.pseudonym for h in recent} <= {"Child B"}
        themed = search(
            session,
            principal=VIEWER,
            query="young people",
            top_k=20,
            filters=SearchFilters(themes=["child-exploitation"]),
            floor=None,
        )
        assert themed and all("child-exploitation" in h.themes for h in themed)


def test_index_catches_up_with_new_documents(corpus, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with Session(corpus) as session:
        assert not search(session, principal=VIEWER, query="quokka", mode="bm25")
    extra = tmp_path / "child-d.md"
    extra.write_text("# Rapid review: Child D\n\n## Findings\n\nThe quokka drawing was missed.\n")
    ingest_paths(
        engine=corpus,
        paths=[extra],
        on_passages=passage_hook(get_settings()),
        options=IngestOptions(status=ReviewStatus.PUBLISHED),
    )
    with Session(corpus) as session:
        hits = search(session, principal=VIEWER, query="quokka", mode="bm25")
    assert hits and hits[0].pseudonym == "Child D"


def test_more_like_this_and_grouping(corpus) -> None:  # type: ignore[no-untyped-def]
    with Session(corpus) as session:
        [first] = search(session, principal=VIEWER, query="man living in the household", top_k=1)
        similar = more_like_this(session, principal=VIEWER, passage_id=first.passage_id, top_k=5)
        assert first.passage_id not in {h.passage_id for h in similar}
        assert all(h.pseudonym != "Child C" for h in similar)
        groups = group_by_review(search(session, principal=VIEWER, query="baby", top_k=10))
        assert len({g["review_id"] for g in groups}) == len(groups)
        hidden = search(session, principal=Principal.system(), query="zebrawood", mode="bm25")
        with pytest.raises(NotFound):
            more_like_this(session, principal=VIEWER, passage_id=hidden[0].passage_id)


def test_nonsense_query_returns_nothing(corpus) -> None:  # type: ignore[no-untyped-def]
    with Session(corpus) as session:
        assert search(session, principal=VIEWER, query="xqzv plorp") == []
        assert search(session, principal=VIEWER, query="recipe for lemon drizzle cake") == []
        hits = search(session, principal=VIEWER, query="baby hurt by mother's boyfriend")
        assert hits and all(h.similarity is not None and h.similarity > 0 for h in hits)


def test_role_filter_and_learning_first(corpus) -> None:  # type: ignore[no-untyped-def]
    from kb.models import Passage

    with Session(corpus) as session:
        for passage in session.exec(select(Passage)).all():
            passage.role = {"findings": "finding", "background": "case_synopsis"}.get(
                passage.section_kind, "recommendation"
            )
            session.add(passage)
        session.commit()
        query = "a man living with the baby that no agency knew about"
        found = search(
            session, principal=VIEWER, query=query, filters=SearchFilters(roles=["finding"])
        )
        assert found and {h.role for h in found} == {"finding"}
        learning = search(session, principal=VIEWER, query=query, order="learning", top_k=20)
        tiers = [0 if h.role in ("finding", "recommendation") else 1 for h in learning]
        assert tiers == sorted(tiers)
        relevance = search(session, principal=VIEWER, query=query, order="relevance", top_k=20)
        assert {h.passage_id for h in relevance} == {h.passage_id for h in learning}


def test_hits_carry_the_actions_answering_them(corpus) -> None:  # type: ignore[no-untyped-def]
    from datetime import date

    from kb.models import ActionCreate, ActionStatus, ImpactRating, Recommendation
    from kb.services.tracker import create_action

    admin = Principal(username="a", role=Role.ADMIN)
    with Session(corpus) as session:
        rec = session.exec(
            select(Recommendation).where(col(Recommendation.text).contains("Health visitors"))
        ).first()
        assert rec is not None and rec.passage_id is not None
        create_action(
            session,
            principal=admin,
            data=ActionCreate(
                ref="HV-1",
                description="Adults in the home recorded at every contact",
                status=ActionStatus.COMPLETED,
                completed_date=date(2020, 1, 1),
                impact_rating=ImpactRating.SOME,
                recommendation_ids=[rec.id],  # type: ignore[list-item]
            ),
        )
        session.commit()
        hits = search(
            session,
            principal=VIEWER,
            query="health visitors should ask about every adult living in the home",
            top_k=20,
        )
        answered = [h for h in hits if h.passage_id == rec.passage_id]
        assert answered and answered[0].actions[0]["ref"] == "HV-1"
        assert answered[0].actions[0]["status"] == "completed"
        assert answered[0].actions[0]["impact_rating"] == "some"
        assert all(not h.actions for h in hits if h.passage_id != rec.passage_id)

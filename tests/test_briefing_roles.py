"""Briefings built from passage roles: Background quotes case synopses, "What we found" findings,
"What practitioners should do" recommendations and actions; front matter, partnership business
and a partnership's acceptance of recommendations are never quoted; one item per case."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session

from kb.models import Case, Passage, Review
from kb.services.briefing_roles import is_acceptance, is_agency_level, practice_wording
from tests.briefing_corpus import VIEWER, Corpus, build, section

pytest_plugins = ["tests.briefing_corpus"]  # the corpus and taxonomy fixtures


ROLES = {
    "A-bg": "front_matter",
    "A-f1": "finding",
    "A-r1": "recommendation",
    "B-bg": "case_synopsis",
    "B-f1": "finding",
    "B-f2": "finding",
    "B-r1": "partnership_business",
    "C-bg": "case_synopsis",
    "C-f1": "finding",
    "C-r1": "recommendation",
}


def set_roles(engine: Engine, corpus: Corpus, roles: dict[str, str]) -> None:
    with Session(engine) as session:
        for key, role in roles.items():
            passage = session.get(Passage, corpus.passages[key])
            assert passage is not None
            passage.role = role
            session.add(passage)
        session.commit()


def roles_of(engine: Engine, draft, number: int) -> list[str | None]:  # type: ignore[no-untyped-def]
    return [i["role"] for i in section(draft, number) if i["passage_id"] is not None]


def test_sections_quote_only_their_roles(engine, corpus, taxonomy) -> None:  # type: ignore[no-untyped-def]
    set_roles(engine, corpus, ROLES)
    draft = build(engine, taxonomy, VIEWER, theme_id="hidden-men")
    assert set(roles_of(engine, draft, 1)) <= {"case_synopsis"}
    assert set(roles_of(engine, draft, 3)) == {"finding"}
    assert set(roles_of(engine, draft, 5)) <= {"recommendation", "action"}
    quoted = {i["passage_id"] for s in draft.sections for i in s.items}
    assert corpus.passages["A-bg"] not in quoted  # front matter
    assert corpus.passages["B-r1"] not in quoted  # partnership business
    background = {i["review_id"]: i for i in section(draft, 1)}
    assert background[corpus.reviews["A"]]["passage_id"] is None  # named, nothing quoted
    assert background[corpus.reviews["C"]]["text"].startswith("Child C (LCSPR, 2021): Child C")


def test_one_item_per_case_across_linked_reviews(engine, corpus, taxonomy) -> None:  # type: ignore[no-untyped-def]
    set_roles(engine, corpus, ROLES)
    with Session(engine) as session:
        case = Case(label="Family AB")
        session.add(case)
        session.flush()
        for key in "AB":
            review = session.get(Review, corpus.reviews[key])
            assert review is not None
            review.case_id = case.id
            session.add(review)
        session.commit()
    draft = build(engine, taxonomy, VIEWER, theme_id="hidden-men")
    for number in (1, 3, 5):
        cited = [i["review_id"] for i in section(draft, number) if i["passage_id"]]
        ab = [rid for rid in cited if rid in {corpus.reviews["A"], corpus.reviews["B"]}]
        assert len(ab) <= 1, number
    assert len([i for i in section(draft, 1) if i["review_id"]]) == 2  # case AB named once


def test_practice_wording() -> None:
    assert is_acceptance("The Partnership accepts all four recommendations of the review.")
    assert is_acceptance("All recommendations were accepted by the board in March.")
    assert not is_acceptance("Health visitors should ask about every adult in the home.")
    assert is_agency_level("1. The Partnership should seek assurance that agencies record …")
    assert is_agency_level("The Safeguarding Partnership should commission an audit.")
    assert not is_agency_level("Health visitors should ask about every adult in the home.")


def test_acceptance_never_and_agency_level_last(engine, corpus, taxonomy) -> None:  # type: ignore[no-untyped-def]
    set_roles(engine, corpus, {**ROLES, "B-r1": "recommendation"})
    with Session(engine) as session:
        passage = session.get(Passage, corpus.passages["B-r1"])
        assert passage is not None
        passage.text = "The Partnership accepts all four recommendations of this review."
        session.add(passage)
        session.commit()
    draft = build(engine, taxonomy, VIEWER, theme_id="hidden-men")
    texts = [i["text"] for i in section(draft, 5)]
    assert not any("accepts" in t for t in texts)
    assert texts[0].startswith("Health services must invite fathers")  # practice first
    assert texts[-1].startswith("The partnership should")  # agency-level after it


def test_cli_json_carries_role(engine, corpus, taxonomy) -> None:  # type: ignore[no-untyped-def]
    from kb.services.briefings import cli_json

    set_roles(engine, corpus, ROLES)
    data = cli_json(build(engine, taxonomy, VIEWER, theme_id="hidden-men"))
    items = [i for s in data["sections"] for i in s["items"]]
    assert all({"text", "review_id", "passage_id", "role"} <= set(i) for i in items)
    assert {i["role"] for i in items if i["passage_id"]} <= {
        "case_synopsis",
        "finding",
        "recommendation",
        "action",
    }


def test_agency_level_reworded_for_practice() -> None:
    assert (
        practice_wording(
            "3. The Safeguarding Partnership should ensure that practitioners routinely ask who "
            "else lives in the home."
        )
        == "Practitioners should routinely ask who else lives in the home."
    )
    assert (
        practice_wording(
            "The Board must be assured that all school staff know how to escalate a concern."
        )
        == "All school staff should know how to escalate a concern."
    )
    assert practice_wording("The LSCP should ensure that GPs must see the child alone.") == (
        "GPs must see the child alone."
    )
    # Not about what practitioners do, or a subject that goes on: left as written.
    assert practice_wording("The Partnership should ensure that the toolkit is relaunched.") is None
    assert practice_wording("The Partnership should commission an audit of referrals.") is None
    assert (
        practice_wording(
            "The Partnership should ensure that professionals working with teenagers are trained."
        )
        is None
    )
    assert practice_wording("Health visitors should ask about every adult in the home.") is None


def test_reworded_recommendation_keeps_its_citation(engine, corpus, taxonomy) -> None:  # type: ignore[no-untyped-def]
    set_roles(engine, corpus, {**ROLES, "B-r1": "recommendation"})
    with Session(engine) as session:
        passage = session.get(Passage, corpus.passages["B-r1"])
        assert passage is not None
        passage.text = (
            "The Partnership should ensure that practitioners ask every mother about the men "
            "in the home, including fathers who live elsewhere."
        )
        session.add(passage)
        session.commit()
    draft = build(engine, taxonomy, VIEWER, theme_id="hidden-men")
    [item] = [
        i for i in section(draft, 5) if i["text"].startswith("Practitioners should ask every")
    ]
    assert item["passage_id"] == corpus.passages["B-r1"] and item["review_id"]
    assert item["role"] == "recommendation"
    assert not any(i["text"].startswith("The Partnership should") for i in section(draft, 5))

"""``kb reviews role / set-type / link / unlink``: correcting what a document is.

The same services as the review page and the API (audited, as the local operator "system").
"""

from __future__ import annotations

from kb.cli.common import console, fail, print_json, ready_engine
from kb.cli.corpus import JsonFlag, reviews_app
from kb.db import session_scope
from kb.services.access import Principal
from kb.services.cases import link_reviews, unlink_review
from kb.services.review_kinds import set_review_type
from kb.services.reviews import NotFound
from kb.services.roles import set_passage_role


@reviews_app.command("role")
def reviews_role(passage_id: int, role: str, json_: JsonFlag = False) -> None:
    """Set a passage's role (front_matter, partnership_business, case_synopsis, finding,
    recommendation, action, good_practice, other); findings are re-extracted."""
    try:
        with session_scope(ready_engine()) as session:
            passage = set_passage_role(
                session, principal=Principal.system(), passage_id=passage_id, role=role
            )
            out = {"id": passage.id, "role": passage.role, "review_id": passage.review_id}
    except (NotFound, ValueError) as exc:
        raise fail(str(exc)) from exc
    _done(out, f"passage {passage_id} is now {role}", json_)


@reviews_app.command("set-type")
def reviews_set_type(review_id: int, kind: str, json_: JsonFlag = False) -> None:
    """Correct a document's kind (scr, lcspr, rapid_review, annual_report, newsletter, ...);
    the correction survives re-ingest."""
    try:
        with session_scope(ready_engine()) as session:
            review = set_review_type(
                session, principal=Principal.system(), review_id=review_id, review_type=kind
            )
            out = {"id": review.id, "type": review.type.value, "type_source": review.type_source}
    except (NotFound, ValueError) as exc:
        raise fail(str(exc)) from exc
    _done(out, f"review {review_id} is now {kind}", json_)


@reviews_app.command("link")
def reviews_link(review_id: int, other_review_id: int, json_: JsonFlag = False) -> None:
    """Say two reviews are about the same child: recurrence counts them once."""
    try:
        with session_scope(ready_engine()) as session:
            case = link_reviews(
                session,
                principal=Principal.system(),
                review_id=review_id,
                other_review_id=other_review_id,
            )
            out = {"case_id": case.id, "review_ids": sorted({review_id, other_review_id})}
    except (NotFound, ValueError) as exc:
        raise fail(str(exc)) from exc
    _done(out, f"reviews {review_id} and {other_review_id} are case {out['case_id']}", json_)


@reviews_app.command("unlink")
def reviews_unlink(review_id: int, json_: JsonFlag = False) -> None:
    """Take a review out of its case; matching will not link it again."""
    try:
        with session_scope(ready_engine()) as session:
            review = unlink_review(session, principal=Principal.system(), review_id=review_id)
            out = {"id": review.id, "case_id": review.case_id}
    except NotFound as exc:
        raise fail(str(exc)) from exc
    _done(out, f"review {review_id} is in no case", json_)


def _done(out: dict[str, object], message: str, json_: bool) -> None:
    if json_:
        print_json(out)
    else:
        console.print(message, highlight=False)


__all__ = ["reviews_link", "reviews_role", "reviews_set_type", "reviews_unlink"]

"""Review page forms that correct what a document is: a passage's role, the document's kind,
and the case (the other documents about the same child) it belongs to.

Each form posts to a kb service that checks permission and audits (the same ones the API and
``kb reviews role / set-type / link / unlink`` call) and answers with a 303 back to the page.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException
from fastapi.responses import RedirectResponse, Response

from api.deps import SessionDep, WebPrincipal
from kb.services.cases import link_reviews, unlink_review
from kb.services.review_kinds import set_review_type
from kb.services.reviews import NotFound
from kb.services.roles import set_passage_role

router = APIRouter()


def _back(review_id: int, anchor: str = "") -> Response:
    return RedirectResponse(f"/reviews/{review_id}{anchor}", status_code=303)


@router.post("/reviews/{review_id}/passages/{passage_id}/role", name="passage_role_form")
def passage_role_form(
    session: SessionDep,
    principal: WebPrincipal,
    review_id: int,
    passage_id: int,
    role: Annotated[str, Form(max_length=30)],
) -> Response:
    try:
        passage = set_passage_role(session, principal=principal, passage_id=passage_id, role=role)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from exc
    if passage.review_id != review_id:
        raise NotFound(f"passage {passage_id} not found")
    return _back(review_id, f"#passage-{passage_id}")


@router.post("/reviews/{review_id}/type", name="review_type_form")
def review_type_form(
    session: SessionDep,
    principal: WebPrincipal,
    review_id: int,
    kind: Annotated[str, Form(max_length=30)],
) -> Response:
    try:
        set_review_type(session, principal=principal, review_id=review_id, review_type=kind)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from exc
    return _back(review_id)


@router.post("/reviews/{review_id}/case/link", name="case_link_form")
def case_link_form(
    session: SessionDep,
    principal: WebPrincipal,
    review_id: int,
    other_review_id: Annotated[int, Form(ge=1)],
) -> Response:
    try:
        link_reviews(
            session, principal=principal, review_id=review_id, other_review_id=other_review_id
        )
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from exc
    return _back(review_id, "#case")


@router.post("/reviews/{review_id}/case/unlink", name="case_unlink_form")
def case_unlink_form(session: SessionDep, principal: WebPrincipal, review_id: int) -> Response:
    unlink_review(session, principal=principal, review_id=review_id)
    return _back(review_id, "#case")

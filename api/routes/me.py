"""GET /api/me: who am I, and the CSRF token a browser script needs for writes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel

from api.deps import CurrentPrincipal, SessionDep
from api.security import public_session_info
from kb.services.users import partnership_name

router = APIRouter(tags=["me"])


class Me(BaseModel):
    username: str | None
    role: str
    partnership: str | None
    csrf_token: str | None = None


@router.get("/me")
def read_me(request: Request, session: SessionDep, principal: CurrentPrincipal) -> Me:
    """The logged-in user; ``csrf_token`` only for cookie sessions (send it as X-CSRF-Token)."""
    return Me(
        username=principal.username,
        role=principal.role.value,
        partnership=partnership_name(session, principal.partnership_id),
        csrf_token=public_session_info(request).get("csrf_token"),
    )

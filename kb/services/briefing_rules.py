"""Who may change a saved briefing, and the audit line of a briefing that leaves the system.

Why a module of its own: the API, the web pages and the command line all edit, delete and
export briefings, and the rule must be one rule. A briefing is shared work: its author, panel
members and admins may edit it; a viewer may edit only their own. Deleting throws work away that
others may rely on, so only its author or an admin may delete it. A briefing quoting restricted
material is audited (ids only) whenever it is written to a file, because a file leaves the
system's access control.
"""

from __future__ import annotations

from typing import Literal

from sqlmodel import Session

from kb.models import Role
from kb.services.access import Principal
from kb.services.audit import record
from kb.services.errors import Forbidden

Change = Literal["edit", "delete"]


def change_refusal(principal: Principal, author: str | None, change: Change) -> str | None:
    """Why ``principal`` may not ``change`` a briefing written by ``author`` (None: they may)."""
    own = author is not None and author == principal.username
    if own or principal.role == Role.ADMIN:
        return None
    if change == "edit" and principal.role == Role.PANEL:
        return None
    if change == "edit":
        return "viewers may only edit their own briefings"
    return "only the briefing's author or an admin may delete it"


def may_change(principal: Principal, author: str | None, change: Change) -> bool:
    """Whether the page should offer the edit or delete form."""
    return change_refusal(principal, author, change) is None


def check_may_change(principal: Principal, author: str | None, change: Change) -> None:
    """Forbidden unless ``principal`` may make ``change`` (the briefing is already visible)."""
    refusal = change_refusal(principal, author, change)
    if refusal is not None:
        raise Forbidden(refusal)


def record_export(
    session: Session,
    *,
    principal: Principal,
    briefing_id: int | None,
    fmt: str,
    restricted: bool,
    via: str,
) -> None:
    """Audit a restricted briefing written to a file (API download or ``kb briefing --out``)."""
    if not restricted:
        return
    record(
        session,
        principal=principal,
        action="briefing.export",
        object_type="briefing",
        object_id=briefing_id,
        detail={"format": fmt} if via == "api" else {"format": fmt, "via": via},
    )

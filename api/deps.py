"""Dependencies every route declares: the database session and who the request acts for.

Routes follow the FastAPI full-stack template::

    @router.get("/reviews")
    def read_reviews(session: SessionDep, principal: CurrentPrincipal) -> ReviewPage: ...

Authentication, in order: the signed session cookie of a logged-in user (web pages and the
browser's fetch calls), else HTTP Basic on /api for scripts (``curl -u alice https://…/api/me``;
rate-limited like the login form). There is no anonymous access: every page and endpoint but
/login and /static needs a user, so nothing restricted can leak through a forgotten check, and
even published material is only shown to people the partnership has given an account.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from sqlmodel import Session

from api.security import client_ip, session_matches, session_user_id
from kb.db import session_scope
from kb.models import Role
from kb.services.access import Principal
from kb.services.users import authenticate, get_active_user, principal_for


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request: committed before the response is sent, rolled back on error."""
    with session_scope(request.app.state.engine) as session:
        yield session


# scope="function": commit before the response goes out, so the next request sees the change.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


class LoginRequired(Exception):
    """Raised for web pages: the app answers with a redirect to /login."""


def resolve_principal(request: Request, session: Session) -> Principal | None:
    """The principal of a logged-in session or valid Basic credentials on /api, else None."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    principal = _from_session(request, session)
    if principal is None and request.url.path.startswith("/api"):
        principal = _from_basic(request, session)
    request.state.principal = principal
    return principal


def _from_session(request: Request, session: Session) -> Principal | None:
    uid = session_user_id(request, session)
    if uid is None:
        return None
    user = get_active_user(session, uid)
    if user is None or not session_matches(request, user, request.app.state.secret_key):
        return None
    return principal_for(user)


def _from_basic(request: Request, session: Session) -> Principal | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        username, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "malformed Basic credentials") from None
    if not sep:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "malformed Basic credentials")
    limiter = request.app.state.login_limiter
    ip = client_ip(request)
    wait = limiter.retry_after(username, ip)
    if wait:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"too many failed logins; try again in {wait} seconds",
            headers={"Retry-After": str(wait)},
        )
    user = authenticate(session, username=username, password=password)
    if user is None:
        limiter.failed(username, ip)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid username or password")
    limiter.succeeded(username, ip)
    return principal_for(user)


def current_principal(request: Request, session: SessionDep) -> Principal:
    """API dependency: 401 JSON without credentials.

    No ``WWW-Authenticate: Basic`` challenge is sent on purpose: browsers would then prompt for,
    cache and silently resend Basic credentials, which would bypass the CSRF protection.
    """
    principal = resolve_principal(request, session)
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "not authenticated: log in, or use HTTP Basic credentials",
            headers={"WWW-Authenticate": 'Cookie realm="kb"'},
        )
    return principal


def web_principal(request: Request, session: SessionDep) -> Principal:
    """Web-page dependency: a redirect to the login page instead of a 401."""
    principal = resolve_principal(request, session)
    if principal is None:
        raise LoginRequired()
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
WebPrincipal = Annotated[Principal, Depends(web_principal)]


def require_role(*roles: Role):  # type: ignore[no-untyped-def]
    """A dependency admitting only ``roles`` (403 otherwise): ``Depends(require_role(ADMIN))``."""

    def check(principal: CurrentPrincipal) -> Principal:
        if principal.role not in roles:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"this needs the {' or '.join(r.value for r in roles)} role",
            )
        return principal

    return check


PanelOrAdmin = Annotated[Principal, Depends(require_role(Role.PANEL, Role.ADMIN))]

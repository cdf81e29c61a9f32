"""Log in and log out (sessions and CSRF are in web/security.py)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import SessionDep
from kb.services import audit
from kb.services.access import Principal
from kb.services.users import authenticate
from web.rendering import render, safe_next
from web.security import client_ip, end_session, start_session

log = logging.getLogger(__name__)

router = APIRouter()


@router.get("/login", name="login_page")
def login_page(request: Request, next: str | None = None) -> HTMLResponse:  # noqa: A002
    return render(request, "login.html", {"next": safe_next(next), "error": None})


@router.post("/login", name="login_submit")
def login_submit(
    request: Request,
    session: SessionDep,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=2000)],
    next: Annotated[str, Form()] = "/reviews",  # noqa: A002
) -> Response:
    """Check credentials (rate-limited per username + IP) and start a fresh session."""
    limiter = request.app.state.login_limiter
    ip = client_ip(request)
    wait = limiter.retry_after(username, ip)
    if wait:
        context = {"next": safe_next(next), "error": f"Too many attempts. Try again in {wait} s."}
        response = render(request, "login.html", context, status_code=429)
        response.headers["Retry-After"] = str(wait)
        return response
    user = authenticate(session, username=username, password=password)
    if user is None:
        limiter.failed(username, ip)
        log.warning("failed login from %s", ip)
        context = {"next": safe_next(next), "error": "Wrong username or password."}
        return render(request, "login.html", context, status_code=401)
    limiter.succeeded(username, ip)
    start_session(request, user, request.app.state.secret_key)
    audit.record(
        session,
        principal=Principal(username=user.username, role=user.role),
        action="login",
        object_type="user",
        object_id=user.id,
    )
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout", name="logout")
def logout(request: Request) -> Response:
    end_session(request)
    return RedirectResponse("/login", status_code=303)

"""Log in and log out (sessions and CSRF are in api/security.py)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import SessionDep, WebPrincipal
from api.security import client_ip, end_session, start_session
from kb.services.users import UserError, authenticate, change_password, record_login
from web.rendering import render, safe_next

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
    next: Annotated[str, Form()] = "/search",  # noqa: A002
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
    record_login(session, user)
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout", name="logout")
def logout(request: Request, session: SessionDep) -> Response:
    end_session(request, session)
    return RedirectResponse("/login", status_code=303)


@router.get("/account/password", name="password_page")
def password_page(request: Request, principal: WebPrincipal) -> HTMLResponse:
    return render(request, "password.html", {"error": None, "done": False})


@router.post("/account/password", name="password_submit")
def password_submit(
    request: Request,
    session: SessionDep,
    principal: WebPrincipal,
    current: Annotated[str, Form(max_length=2000)],
    new: Annotated[str, Form(max_length=2000)],
    confirm: Annotated[str, Form(max_length=2000)],
) -> Response:
    """Change your own password with the current one; your other sessions end.

    Wrong current passwords count against the login rate limit, so this form cannot be used
    to guess a password the login form would stop.
    """
    limiter = request.app.state.login_limiter
    ip = client_ip(request)
    wait = limiter.retry_after(principal.username, ip)
    error = f"Too many attempts. Try again in {wait} s." if wait else None
    if error is None and new != confirm:
        error = "The new passwords do not match."
    if error is None:
        try:
            user = change_password(session, username=principal.username, current=current, new=new)
        except UserError as exc:
            if "current password" in str(exc):
                limiter.failed(principal.username, ip)
            error = str(exc).capitalize() + "."
    if error is not None:
        status = 429 if wait else 400
        return render(request, "password.html", {"error": error, "done": False}, status_code=status)
    start_session(request, user, request.app.state.secret_key)  # this browser stays logged in
    return render(request, "password.html", {"error": None, "done": True})

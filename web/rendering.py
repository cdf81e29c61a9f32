"""Rendering shared by every page: templates (autoescaped), navigation, CSRF field, errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.routing import NoMatchFound

from api.security import csrf_token
from kb.services.access import Principal
from kb.services.uploads import may_upload
from web.highlight import colour_for, taxonomy_colours

HERE = Path(__file__).parent
templates = Jinja2Templates(
    env=Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        auto_reload=False,  # templates ship with the code: no stat() of each file per page
    )
)

ACRONYMS = {"scr", "lcspr", "sar", "dhr"}


def enum_label(value: object) -> str:
    """Readable enum values in pages: lcspr → LCSPR, rapid_review → Rapid review."""
    text = str(getattr(value, "value", value) or "")
    return text.upper() if text in ACRONYMS else text.replace("_", " ").capitalize()


templates.env.filters["label"] = enum_label

# (label, route name). Links whose route does not exist yet are shown greyed out.
NAV = [
    ("Search", "search_page"),
    ("Precedent", "precedent_page"),
    ("Reviews", "reviews_page"),
    ("Themes", "themes_page"),
    ("Tracker", "tracker_page"),
    ("Briefings", "briefings_page"),
    ("Upload", "upload_page"),
]

# --------------------------------------------------------------------------- rendering


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    """Render a page with what base.html needs (navigation, the user, the CSRF field).

    The user is the principal the request's ``WebPrincipal`` dependency resolved (None on the
    login page), so pages never pass it themselves.
    """
    return templates.TemplateResponse(
        request, template, {**base_context(request), **(context or {})}, status_code=status_code
    )


def base_context(request: Request, *, token: str | None = None) -> dict[str, Any]:
    """What base.html and every page's blocks may use: the theme colours, the user, the
    navigation and the CSRF field (``token`` stands in for the session's own when given: see
    web/page_cache.py)."""
    token = csrf_token(request) if token is None else token
    field = Markup('<input type="hidden" name="csrf_token" value="{}">').format(token)
    colours = theme_colours_of(request)
    return {
        # palette index of a theme (class "t{n}", static/style.css): one colour per theme on
        # every page, always beside the theme's name
        "theme_colour": lambda theme_id: colour_for(theme_id, colours),
        "principal": getattr(request.state, "principal", None),
        "nav": _nav(request),
        "csrf_token": token,
        "csrf_field": lambda: field,  # once per page, not per form (a review has one per tag)
    }


def theme_colours_of(request: Request) -> dict[str, int]:
    """Theme id → palette index for this app's taxonomy (web/highlight.taxonomy_colours)."""
    settings = getattr(request.app.state, "settings", None)
    return taxonomy_colours(tuple(getattr(settings, "taxonomy_files", ()) or ()))


# Links only some users may follow: (route name, who may). Hidden from the others, so a
# viewer never meets a link that leads to a refusal.
NAV_ALLOWED: dict[str, Callable[[Principal], bool]] = {"upload_page": may_upload}


def _nav(request: Request) -> list[dict[str, Any]]:
    principal = getattr(request.state, "principal", None)
    hidden = {
        name for name, allowed in NAV_ALLOWED.items() if principal is None or not allowed(principal)
    }
    return [
        {"label": label, "href": href, "current": href == request.url.path}
        for (label, href), (_, name) in zip(_nav_links(request.app), NAV, strict=True)
        if name not in hidden
    ]


def _nav_links(app: Any) -> list[tuple[str, str | None]]:
    """(label, href) per NAV entry, looked up once per app: routes do not change after start,
    and resolving six names walks every route of every router on each page otherwise."""
    links: list[tuple[str, str | None]] | None = getattr(app.state, "nav_links", None)
    if links is None:
        links = []
        for label, name in NAV:
            try:
                links.append((label, app.url_path_for(name)))
            except NoMatchFound:
                links.append((label, None))
        app.state.nav_links = links
    return links


def safe_next(target: str | None) -> str:
    """Only local paths: "//evil.example" and "/\\evil" would leave the site."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/search"
    return target


def error_page(request: Request, status_code: int, message: str) -> HTMLResponse:
    """The HTML twin of the API's {"detail": ...} errors."""
    return render(
        request,
        "error.html",
        {"status": status_code, "message": message},
        status_code=status_code,
    )


def login_redirect(request: Request) -> Response:
    """To the login page, coming back here afterwards (or to Search after a form post)."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        target = "/search"
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

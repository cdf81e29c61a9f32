"""The HTML pages: each one renders the same data function as its /api twin.

Pattern for a new page (search, themes, tracker, briefings), one module per page here:

1. the data function lives beside the JSON route in ``api/routes/<name>.py`` and calls a kb
   service (never a query in api/ or web/);
2. ``web/routes/<name>.py`` has ``router = APIRouter()`` and a route that declares
   ``session: SessionDep`` and ``principal: WebPrincipal`` (a redirect to /login instead of a
   401), calls that data function and returns ``render(request, "<name>.html", {...})``; the
   template ``{% extends "base.html" %}``;
3. the route's ``name`` (``search_page``, ``themes_page``, ``tracker_page``,
   ``briefings_page``) lights up the navigation link in base.html;
4. state-changing forms POST with ``{{ csrf_field() }}`` and answer with a 303 redirect;
   scripts live in web/static and send the ``X-CSRF-Token`` header (see static/upload.js);
5. list the module below.
"""

from __future__ import annotations

from fastapi import APIRouter

from web.routes import (
    auth,
    briefings,
    cases,
    precedent,
    reviews,
    search,
    themes,
    tracker,
    upload,
)

web_router = APIRouter(include_in_schema=False)
for module in (auth, reviews, cases, search, precedent, briefings, themes, tracker, upload):
    web_router.include_router(module.router)

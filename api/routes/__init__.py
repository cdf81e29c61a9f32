"""The JSON API under /api: one module per resource, each a thin layer over kb services.

To add a resource: write ``api/routes/<name>.py`` with ``router = APIRouter(tags=[...])`` and
routes that declare ``session: SessionDep`` and ``principal: CurrentPrincipal``, keep the data
function (the one the web page calls too) next to it, and list the module below.
"""

from __future__ import annotations

from fastapi import APIRouter

from api.routes import (
    briefings,
    cases,
    documents,
    findings,
    me,
    precedent,
    reviews,
    schema,
    scrutiny,
    search,
    tags,
    themes,
    tracker,
)

api_router = APIRouter(prefix="/api")
for module in (
    me,
    reviews,
    cases,
    findings,
    tags,
    documents,
    search,
    briefings,
    precedent,
    themes,
    scrutiny,  # before tracker: /signals/export.* must not be read as another route's path
    tracker,
    schema,
):
    api_router.include_router(module.router)

"""GET /api/openapi.json, behind login like everything else (it names every endpoint)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from api.deps import CurrentPrincipal

router = APIRouter(tags=["meta"])


@router.get("/openapi.json", include_in_schema=False)
def openapi_schema(request: Request, principal: CurrentPrincipal) -> dict[str, Any]:
    return request.app.openapi()

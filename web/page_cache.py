"""Pages that are the same for everyone who sees the same data, rendered once per data version.

The tracker and the themes dashboard show the same body to every user of one role and
partnership until the data changes, yet rendering their templates cost more CPU than anything
else they do (the tracker's ~5,700 template calls: ~6 ms of its ~17 ms a request at 20k
passages, measured with py-spy under ``benchmarks/load.py``). Here their blocks (title, head,
content, scripts) are rendered once per key and kept; each request renders only the layout
around them: the navigation, the user's name and their CSRF token.

Why a cached body can never show one user what belongs to another:

* the key holds the principal's visibility key (role and partnership: what they may see, and
  what they may edit), the caller's own key (filters), today's date and the data fingerprint
  (kb/services/cache.py), so a change to anything the page reads renders it again;
* the blocks are rendered without ``principal`` in their context: a template that referred to
  the user would render nothing there, not another user's name;
* the user's CSRF token is never cached: blocks are rendered with a random placeholder made at
  start-up (never sent to anyone, so no stored text can contain it), replaced by the token of the
  request being answered.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Hashable
from datetime import date
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup, escape
from sqlmodel import Session

from api.security import csrf_token
from kb.services.access import Principal, visibility_key
from kb.services.cache import ResultCache, data_fingerprint
from web.rendering import base_context, templates

#: Stands for the CSRF token in cached blocks; random per start, so unguessable.
PLACEHOLDER = f"csrf-placeholder-{secrets.token_hex(16)}"
#: Rendered blocks; a tracker body is ~100 KB, so 64 entries stay under ~7 MB per worker.
PAGES = ResultCache(size=64)
_WRAPPER = "shared_page.html"


def render_shared(
    request: Request,
    template: str,
    *,
    session: Session,
    principal: Principal,
    key: Hashable,
    build: Callable[[], dict[str, Any]],
) -> HTMLResponse:
    """``template`` rendered from ``build()``, its blocks cached under ``key`` (+ who may see
    what, today and the data version); ``build`` runs only when the blocks are not cached."""
    full_key = (
        "page",
        template,
        visibility_key(principal),
        key,
        date.today().isoformat(),
        data_fingerprint(session),
    )
    blocks = PAGES.get_or_compute(
        session, full_key, lambda: _render_blocks(request, template, build()), copy_out=False
    )
    token = csrf_token(request)
    escaped = str(escape(token))
    filled = {name: Markup(html.replace(PLACEHOLDER, escaped)) for name, html in blocks.items()}
    context = {**base_context(request, token=token), "blocks": filled}
    return templates.TemplateResponse(request, _WRAPPER, context)


def _render_blocks(request: Request, template: str, context: dict[str, Any]) -> dict[str, str]:
    """Each block ``template`` defines, rendered with a placeholder CSRF token, no principal."""
    shared = base_context(request, token=PLACEHOLDER)
    shared.pop("principal", None)
    shared.pop("nav", None)
    page = templates.env.get_template(template)
    ctx = page.new_context({"request": request, **shared, **context})
    return {name: "".join(render(ctx)) for name, render in page.blocks.items()}

"""The whole application, composed in one place: the JSON API plus the HTML pages and static files.

Why here: dependencies point web → api → kb → nlp, corpus, so only a module on the top layer may
import both the API (``api.main.create_api_app``) and the pages (``web.routes``). ``kb serve``
names :func:`create_app` by its import path (``web.app:create_app``, kb/cli/serving.py) and
builds the app once, in the parent it forks its workers from, so the command line does not
import the layers above it either. :func:`served_app` / :func:`secure_app` are factories for
running the app under another ASGI server (``uvicorn --factory web.app:served_app``).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.main import Pages, create_api_app
from kb.config import Settings
from web.rendering import error_page, login_redirect
from web.routes import web_router

STATIC_DIR = Path(__file__).resolve().parent / "static"


def create_app(
    settings: Settings | None = None, *, secure_cookies: bool = False, warm_up: bool = False
) -> FastAPI:
    """The app for ``settings`` (default: the KB_* environment); see ``api.main.create_api_app``
    for ``secure_cookies`` and ``warm_up``."""
    app = create_api_app(
        settings,
        secure_cookies=secure_cookies,
        warm_up=warm_up,
        pages=Pages(error_page=error_page, login_redirect=login_redirect),
    )
    app.include_router(web_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def served_app() -> FastAPI:
    """The app for another ASGI server's workers (each builds its own): it loads the search
    model and index in the background as it starts (``kb serve`` loads them before forking).

    Caches in the app (search index, results) are per worker and keyed by the database's data
    version, so every worker sees every change.
    """
    return create_app(warm_up=True)


def secure_app() -> FastAPI:
    """:func:`served_app` with Secure cookies (served over HTTPS)."""
    return create_app(secure_cookies=True, warm_up=True)

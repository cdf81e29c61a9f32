"""The JSON API application: routes under /api, middleware, error handlers.

The whole app (API plus the HTML pages at / and /static) is composed in ``web/app.py``, the one
module allowed to import both; this module imports nothing from ``web/`` (dependencies point
web → api → kb). Pages and API are one app so they share the session cookie, the CSRF rule, the
security headers and the error shapes: ``web/app.py`` passes its error page and login redirect in
as :class:`Pages`. Middleware, outermost first: security headers (so even refusals carry them) →
request size limit → signed session → CSRF check → routes.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError, DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from api.deps import LoginRequired
from api.routes import api_router
from api.security import (
    SECURE_SESSION_COOKIE,
    SESSION_COOKIE,
    SESSION_MAX_AGE,
    BodySizeLimitMiddleware,
    CSRFMiddleware,
    LoginRateLimiter,
    SecurityHeadersMiddleware,
)
from kb.config import Settings, get_settings, load_secret_key
from kb.db import get_engine, is_busy_error
from kb.services import errors, search, tagging
from kb.services.jobs import TooManyJobs
from kb.services.reviews import NotFound
from kb.services.uploads import (
    MAX_FILES,
    UploadError,
    UploadForbidden,
    UploadQuotaExceeded,
    UploadTooLarge,
)
from kb.services.users import UserError

log = logging.getLogger(__name__)
CONFLICTS = tuple({errors.Conflict, tagging.Conflict})
BUSY_MESSAGE = "The knowledge base is busy; nothing was changed. Please try again in a moment."
RETRY_AFTER_SECONDS = 5


@dataclass(frozen=True, slots=True)
class Pages:
    """What the HTML side lends the app: how an error and "log in first" look outside /api."""

    error_page: Callable[[Request, int, str], Response]
    login_redirect: Callable[[Request], Response]


def create_api_app(
    settings: Settings | None = None,
    *,
    secure_cookies: bool = False,
    warm_up: bool = False,
    pages: Pages | None = None,
) -> FastAPI:
    """Build the app for ``settings`` (default: the KB_* environment).

    ``secure_cookies`` (turn it on whenever the app is served over HTTPS) marks the session cookie
    Secure with the ``__Host-`` prefix and sends HSTS. ``warm_up`` (``kb serve``) loads the
    search model and index in the background as the server starts, so the first searches do
    not wait for them.
    """
    settings = settings or get_settings()
    app = FastAPI(
        lifespan=_warm_up_lifespan if warm_up else None,
        title="Safeguarding learning knowledge base",
        version="0.1.0",
        description=(
            "Reviews, theme tags and documents. Authenticate with the web session cookie "
            "(send the X-CSRF-Token header from GET /api/me on writes) or with HTTP Basic."
        ),
        openapi_url=None,  # served by api/routes/schema.py, behind login
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = get_engine(settings.resolved_database_url)
    app.state.secret_key = load_secret_key(settings)
    app.state.login_limiter = LoginRateLimiter()

    app.state.pages = pages
    app.include_router(api_router)

    # add_middleware wraps: the last added is the outermost.
    cookie = SECURE_SESSION_COOKIE if secure_cookies else SESSION_COOKIE
    app.add_middleware(CSRFMiddleware, cookie_name=cookie)
    app.add_middleware(
        SessionMiddleware,
        secret_key=app.state.secret_key,
        session_cookie=cookie,
        max_age=SESSION_MAX_AGE,
        same_site="lax",
        https_only=secure_cookies,
    )
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_file_mb * 1_000_000 * MAX_FILES + 1_000_000,
        max_other_bytes=settings.max_json_kb * 1000,
    )
    app.add_middleware(SecurityHeadersMiddleware, hsts=secure_cookies)
    _error_handlers(app)
    return app


@asynccontextmanager
async def _warm_up_lifespan(app: FastAPI) -> AsyncIterator[None]:
    threading.Thread(
        target=_warm_up, args=(app.state.engine,), name="kb-warm-up", daemon=True
    ).start()
    yield


def _warm_up(engine: Engine) -> None:
    started = time.perf_counter()
    try:
        search.warm_up(engine)
    except Exception:  # a broken model or database shows on the first search, with its error
        log.exception("search warm-up failed")
        return
    # Imports, the model and the index leave ~600k long-lived objects that every full garbage
    # collection would walk again (~300 ms, stalling every request in the worker; the p99 of
    # benchmarks/load.py). Freezing moves them out of the collector's sight; what they hold is
    # still freed by reference counting when an index is replaced.
    gc.freeze()
    log.info("search model and index ready in %.1f s", time.perf_counter() - started)


def _is_api(request: Request) -> bool:
    return request.url.path == "/api" or request.url.path.startswith("/api/")


def _error(request: Request, status_code: int, message: str, **extra: object) -> Response:
    """{"detail": message} for the API, the error page for the web."""
    pages: Pages | None = request.app.state.pages
    if _is_api(request) or pages is None:
        return JSONResponse({"detail": message, **extra}, status_code=status_code)
    return pages.error_page(request, status_code, message)


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        response = _error(request, exc.status_code, str(exc.detail))
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
            for e in exc.errors()
        )
        if _is_api(request):
            errs = [{"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in exc.errors()]
            return _error(request, 422, f"invalid request: {problems}", errors=errs)
        return _error(request, 422, f"Invalid request: {problems}")

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        pages: Pages | None = request.app.state.pages
        if pages is None:
            return JSONResponse({"detail": "log in first"}, status_code=401)
        return pages.login_redirect(request)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> Response:
        return _error(request, 404, str(exc))

    async def conflict(request: Request, exc: Exception) -> Response:
        return _error(request, 409, str(exc))

    for cls in CONFLICTS:
        app.add_exception_handler(cls, conflict)

    @app.exception_handler(UploadTooLarge)
    async def too_large(request: Request, exc: UploadTooLarge) -> Response:
        return _error(request, 413, str(exc))

    @app.exception_handler(errors.Forbidden)
    @app.exception_handler(UploadForbidden)
    async def forbidden(request: Request, exc: Exception) -> Response:
        return _error(request, 403, str(exc))

    @app.exception_handler(OverflowError)  # SQLite: an integer wider than 64 bits
    @app.exception_handler(DataError)  # PostgreSQL: a value out of its column's range
    async def out_of_range(request: Request, exc: Exception) -> Response:
        """An id or number no row can have is the request's fault, not a server error."""
        return _error(request, 422, "invalid request: a number in the request is out of range")

    @app.exception_handler(UploadQuotaExceeded)
    async def over_quota(request: Request, exc: UploadQuotaExceeded) -> Response:
        return _error(request, 429, str(exc))

    @app.exception_handler(TooManyJobs)
    async def too_many_jobs(request: Request, exc: TooManyJobs) -> Response:
        response = _error(request, 429, str(exc))
        response.headers["Retry-After"] = "30"
        return response

    @app.exception_handler(UploadError)
    @app.exception_handler(UserError)
    async def bad_request(request: Request, exc: Exception) -> Response:
        return _error(request, 400, str(exc))

    @app.exception_handler(DBAPIError)
    @app.exception_handler(PoolTimeout)
    async def busy(request: Request, exc: Exception) -> Response:
        """A lock held past KB_DB_BUSY_TIMEOUT (a long write elsewhere) is "try again", never
        a bare 500; any other database error still is one, logged with its traceback."""
        if not is_busy_error(exc):
            raise exc
        log.warning("database busy: %s %s answered 503", request.method, request.url.path)
        response = _error(request, 503, BUSY_MESSAGE)
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

"""Sessions, CSRF, security headers, request size and login rate limits for the web app and API.

Design (see also api/deps.py for who a request acts as):

* **Sessions** are Starlette's signed cookie (``kb_session``: HttpOnly, SameSite=Lax, 8 hours).
  The cookie holds a random session id, the user id, the login time, a fingerprint of the
  password hash and the CSRF token; never a role (re-read from the database on every request, so
  demotion or deactivation applies at once). Logging in discards everything in the old cookie
  and issues a new session id and CSRF token (no session fixation). Logging out revokes the
  session id in the database (every worker refuses it); changing a password invalidates every
  session of that user.
* **CSRF**: every non-GET/HEAD/OPTIONS request that carries the session cookie, and every non-GET
  request to a web page (the login form included, against login CSRF), must present the
  session's synchronizer token in the ``X-CSRF-Token`` header or a ``csrf_token`` field of a
  url-encoded form; otherwise 403. A cross-site ``Origin`` header is rejected as well. Scripts
  that use HTTP Basic on /api without the cookie need no token: browsers never attach Basic
  credentials on their own because the app never sends a ``WWW-Authenticate: Basic`` challenge.
* **Headers**: a strict CSP (no inline script or style), no framing, nosniff, same-origin
  referrers and ``Cache-Control: no-store`` on everything but static files, so restricted pages
  are not kept in shared browser caches.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlmodel import Session
from starlette.requests import HTTPConnection, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kb.models import User
from kb.services.users import revoke_session, session_revoked

log = logging.getLogger(__name__)

SESSION_COOKIE = "kb_session"
# With HTTPS the __Host- prefix makes browsers refuse the cookie unless it is Secure, host-only
# and path=/, so a sibling subdomain cannot plant a session cookie (fixation).
SECURE_SESSION_COOKIE = "__Host-kb_session"
SESSION_MAX_AGE = 8 * 60 * 60
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_FORM_BYTES = 64 * 1024

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


# --------------------------------------------------------------------------- sessions


def password_fingerprint(secret: str, user: User) -> str:
    """Changes whenever the password does, so a new password ends every old session, and
    whenever the account is disabled (``session_epoch``), so enabling it revives none."""
    material = f"{user.password_hash}\n{user.session_epoch}".encode()
    return hmac.new(secret.encode(), material, hashlib.sha256).hexdigest()[:24]


def start_session(request: Request, user: User, secret: str) -> None:
    """Log ``user`` in: a brand-new session (id and CSRF token), nothing kept from before."""
    session = request.session
    session.clear()
    session.update(
        {
            "sid": secrets.token_urlsafe(24),
            "uid": user.id,
            "at": int(time.time()),
            "ph": password_fingerprint(secret, user),
            "csrf": secrets.token_urlsafe(32),
        }
    )


def end_session(request: Request, db: Session) -> None:
    """Log out: revoke the session id in the database (until the cookie would expire anyway,
    on every worker) and clear the cookie."""
    sid = request.session.get("sid")
    at = request.session.get("at")
    if isinstance(sid, str) and sid:
        start = at if isinstance(at, int) else int(time.time())
        until = datetime.fromtimestamp(start + SESSION_MAX_AGE, tz=UTC)
        revoke_session(db, sid=sid, until=until)
    request.session.clear()


def session_user_id(connection: HTTPConnection, db: Session) -> int | None:
    """The user id of a live session: not expired (8 h from login) and not logged out."""
    session = connection.session
    uid, sid, at = session.get("uid"), session.get("sid"), session.get("at")
    if not isinstance(uid, int) or not isinstance(sid, str) or not isinstance(at, int):
        return None
    if time.time() - at > SESSION_MAX_AGE:
        return None
    if session_revoked(db, sid=sid):
        return None
    return uid


def session_matches(connection: HTTPConnection, user: User, secret: str) -> bool:
    expected = password_fingerprint(secret, user)
    return hmac.compare_digest(str(connection.session.get("ph", "")), expected)


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created for anonymous sessions too (the login form needs it)."""
    token = request.session.get("csrf")
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


# --------------------------------------------------------------------------- middleware


def _wants_json(scope: Scope) -> bool:
    if scope["path"].startswith("/api"):
        return True
    accept = dict(scope.get("headers") or []).get(b"accept", b"")
    return b"application/json" in accept and b"text/html" not in accept


async def _reject(scope: Scope, send: Send, status: int, message: str) -> None:
    if _wants_json(scope):
        body = json.dumps({"detail": message}).encode()
        ctype = b"application/json"
    else:
        from html import escape

        body = (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Refused</title>"
            "<link rel='stylesheet' href='/static/style.css'></head><body><main>"
            f"<h1>Request refused</h1><p class='error'>{escape(message)}</p>"
            "<p><a href='/'>Back to the knowledge base</a></p></main></body></html>"
        ).encode()
        ctype = b"text/html; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class CSRFMiddleware:
    """Synchronizer-token CSRF check; must sit *inside* SessionMiddleware (needs the session)."""

    def __init__(self, app: ASGIApp, *, cookie_name: str = SESSION_COOKIE) -> None:
        self.app = app
        self.cookie_name = cookie_name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        has_cookie = self.cookie_name in conn.cookies
        is_api = scope["path"].startswith("/api/") or scope["path"] == "/api"
        if is_api and not has_cookie:
            # HTTP Basic (or no credentials at all: authentication will answer 401).
            await self.app(scope, receive, send)
            return
        if not _same_origin(conn):
            await _reject(scope, send, 403, "Cross-site request refused (Origin mismatch).")
            return
        expected = conn.session.get("csrf")
        token = conn.headers.get(CSRF_HEADER)
        if token is None and conn.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            body = await _read_body(receive, MAX_FORM_BYTES)
            if body is None:
                await _reject(scope, send, 413, "Form too large.")
                return
            fields = parse_qs(body.decode("latin-1"), keep_blank_values=True)
            token = (fields.get(CSRF_FIELD) or [None])[0]
            receive = _replay(body)
        if not (
            isinstance(expected, str)
            and expected
            and token
            and hmac.compare_digest(token.encode(), expected.encode())
        ):
            await _reject(
                scope,
                send,
                403,
                "CSRF token missing or invalid: reload the page and try again "
                "(scripts: send the X-CSRF-Token header from GET /api/me, or use HTTP Basic "
                "without the session cookie).",
            )
            return
        await self.app(scope, receive, send)


def _same_origin(conn: HTTPConnection) -> bool:
    origin = conn.headers.get("origin")
    if origin is None:
        return True  # non-browser clients; the token still has to match
    host = conn.headers.get("host", "")
    return urlsplit(origin).netloc.lower() == host.lower() and origin != "null"


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


class BodySizeLimitMiddleware:
    """413 before reading a request body bigger than allowed.

    Two limits: multipart uploads (documents, tracker workbooks) may be as large as the largest
    allowed upload batch; every other body (JSON, url-encoded forms) gets the small
    ``max_other_bytes``, so a JSON route cannot be made to parse tens of megabytes.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, max_other_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_other_bytes = max_bytes if max_other_bytes is None else max_other_bytes

    def _limit(self, scope: Scope) -> int:
        kind = HTTPConnection(scope).headers.get("content-type", "").lower()
        return self.max_bytes if kind.startswith("multipart/") else self.max_other_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        length = HTTPConnection(scope).headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _reject(scope, send, 413, "Request too large.")
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, tracking_send)
        except _TooLarge:
            if not started:
                await _reject(scope, send, 413, "Request too large.")


class _TooLarge(BaseException):  # noqa: N818
    """BaseException so FastAPI's "error parsing the body" (except Exception) cannot turn it
    into a 400 on its way out to BodySizeLimitMiddleware."""


class SecurityHeadersMiddleware:
    """Security headers on every response; no-store on everything but /static."""

    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.extra = list(SECURITY_HEADERS)
        if hsts:  # only when served over HTTPS, or browsers would refuse plain-HTTP set-ups
            self.extra.append((b"strict-transport-security", b"max-age=31536000"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"server"]
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in self.extra if k not in present]
                if not static and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


# --------------------------------------------------------------------------- login rate limit


class LoginRateLimiter:
    """At most ``attempts`` failures per username + client IP in ``window`` seconds.

    In memory and per process: enough to stop password guessing against one server; a
    multi-process deployment behind a proxy should add a limit at the proxy too.
    """

    def __init__(self, attempts: int = 5, window: float = 15 * 60, max_keys: int = 10_000):
        self.attempts = attempts
        self.window = window
        self.max_keys = max_keys
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, username: str, ip: str) -> int:
        """Seconds until another attempt is allowed (0 when allowed now)."""
        now = time.monotonic()
        with self._lock:
            failures = self._prune(self._key(username, ip), now)
            if failures is None or len(failures) < self.attempts:
                return 0
            return max(1, int(failures[0] + self.window - now) + 1)

    def failed(self, username: str, ip: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._failures) >= self.max_keys:
                self._evict(now)
            self._failures.setdefault(self._key(username, ip), deque()).append(now)

    def succeeded(self, username: str, ip: str) -> None:
        with self._lock:
            self._failures.pop(self._key(username, ip), None)

    def _key(self, username: str, ip: str) -> tuple[str, str]:
        return (username.strip().lower()[:100], ip)

    def _prune(self, key: tuple[str, str], now: float) -> deque[float] | None:
        failures = self._failures.get(key)
        while failures and failures[0] < now - self.window:
            failures.popleft()
        if failures is not None and not failures:
            del self._failures[key]
            return None
        return failures

    def _evict(self, now: float) -> None:
        for key in list(self._failures):
            self._prune(key, now)
        while len(self._failures) >= self.max_keys:
            self._failures.pop(next(iter(self._failures)))


def client_ip(connection: HTTPConnection) -> str:
    return connection.client.host if connection.client else "unknown"


def public_session_info(request: Request) -> dict[str, Any]:
    """What GET /api/me may reveal about the session: only its CSRF token."""
    return {"csrf_token": request.session.get("csrf")} if request.session else {}

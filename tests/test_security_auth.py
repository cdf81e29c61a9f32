"""Login, sessions, CSRF, security headers, rate limiting and the secret key file."""

from __future__ import annotations

import stat

from fastapi.testclient import TestClient

from kb.config import get_settings
from tests.web_support import PASSWORD, api_csrf, csrf_from, login

pytest_plugins = ["tests.web_fixtures"]


def test_pages_redirect_to_login_and_back(web_app, web_world) -> None:
    with TestClient(web_app) as c:
        response = c.get("/reviews?offset=0", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/login?next=%2Freviews%3Foffset%3D0"
        page = c.get(response.headers["location"])
        assert 'name="next" value="/reviews?offset=0"' in page.text
        done = c.post(
            "/login",
            data={
                "username": "viewer",
                "password": PASSWORD,
                "next": "/reviews?offset=0",
                "csrf_token": csrf_from(page.text),
            },
            follow_redirects=False,
        )
        assert done.headers["location"] == "/reviews?offset=0"


def test_wrong_password_and_unknown_user(web_app, web_world) -> None:
    with TestClient(web_app) as c:
        for username in ("viewer", "nobody"):
            page = c.get("/login")
            response = c.post(
                "/login",
                data={
                    "username": username,
                    "password": "not the password",
                    "csrf_token": csrf_from(page.text),
                },
            )
            assert response.status_code == 401
            assert "Wrong username or password." in response.text
        assert c.get("/api/me").status_code == 401


def test_open_redirect_is_refused(web_app, web_world) -> None:
    with TestClient(web_app) as c:
        page = c.get("/login")
        response = c.post(
            "/login",
            data={
                "username": "viewer",
                "password": PASSWORD,
                "next": "//evil.example/x",
                "csrf_token": csrf_from(page.text),
            },
            follow_redirects=False,
        )
        assert response.headers["location"] == "/search"


def test_login_without_csrf_is_refused(web_app, web_world) -> None:
    with TestClient(web_app) as c:
        response = c.post("/login", data={"username": "viewer", "password": PASSWORD})
        assert response.status_code == 403
        assert "CSRF token missing or invalid" in response.text


def test_session_rotates_on_login_and_dies_on_logout(web_app, web_world) -> None:
    with TestClient(web_app) as c:
        page = c.get("/login")
        before_cookie, before_token = c.cookies["kb_session"], csrf_from(page.text)
        login(c, "viewer")
        after_cookie, after_token = c.cookies["kb_session"], api_csrf(c)["X-CSRF-Token"]
        assert after_cookie != before_cookie and after_token != before_token
        set_cookie = c.get("/login").headers.get("set-cookie", "")
        assert set_cookie == ""  # an existing session is not reissued on every page
        # The anonymous pre-login cookie does not authenticate.
        with TestClient(web_app, cookies={"kb_session": before_cookie}) as fixated:
            assert fixated.get("/api/me").status_code == 401
        response = c.post("/logout", data={"csrf_token": after_token}, follow_redirects=False)
        assert response.status_code == 303
    # Replaying the logged-out cookie fails: the session id was revoked.
    with TestClient(web_app, cookies={"kb_session": after_cookie}) as replay:
        assert replay.get("/api/me").status_code == 401


def test_cookie_flags(web_app, web_world) -> None:
    with TestClient(web_app) as c:
        page = c.get("/login")
        cookie = page.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "max-age=28800" in cookie


def test_csrf_on_api_writes_with_cookie(clients, web_world) -> None:
    c = clients["admin"]
    url = f"/api/tags/{web_world.published_tags[0]}/confirm"
    missing = c.post(url, json={"version": 1})
    assert missing.status_code == 403
    assert missing.json()["detail"].startswith("CSRF token missing or invalid")
    cross = c.post(
        url, json={"version": 1}, headers={**api_csrf(c), "Origin": "https://evil.example"}
    )
    assert cross.status_code == 403
    ok = c.post(url, json={"version": 1}, headers={**api_csrf(c), "Origin": "http://testserver"})
    assert ok.status_code == 200


def test_csrf_on_web_forms(clients, web_world) -> None:
    c = clients["panel-a"]
    tag = web_world.published_tags[0]
    assert c.post(f"/tags/{tag}/confirm", data={"version": "1"}).status_code == 403
    page = c.get(f"/reviews/{web_world.published_review}")
    response = c.post(
        f"/tags/{tag}/confirm",
        data={"version": "1", "csrf_token": csrf_from(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"].startswith(f"/reviews/{web_world.published_review}#")


def test_security_headers_everywhere(web_app, clients) -> None:
    with TestClient(web_app) as anon:
        responses = [
            anon.get("/login"),
            anon.get("/static/style.css"),
            anon.get("/api/reviews"),
            clients["viewer"].get("/reviews"),
            clients["viewer"].get("/api/reviews/999"),
        ]
    for response in responses:
        headers = response.headers
        assert headers["content-security-policy"].startswith("default-src 'self'")
        assert "script-src 'self'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
        assert "server" not in headers
    assert responses[3].headers["cache-control"] == "no-store"
    assert "no-store" not in responses[1].headers.get("cache-control", "")


def test_no_inline_scripts_or_styles(clients, web_world) -> None:
    for path in ("/reviews", f"/reviews/{web_world.published_review}", "/upload"):
        html = clients["admin"].get(path).text
        assert "<script>" not in html and " style=" not in html and "<style" not in html
        assert "onclick" not in html.lower()


def test_login_rate_limit(web_app, web_world) -> None:
    with TestClient(web_app) as c:
        for _ in range(5):
            token = csrf_from(c.get("/login").text)
            c.post(
                "/login",
                data={"username": "admin", "password": "wrong guess!", "csrf_token": token},
            )
        token = csrf_from(c.get("/login").text)
        blocked = c.post(
            "/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token}
        )
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
        assert c.get("/api/me", auth=("admin", PASSWORD)).status_code == 429
        # Other users from the same address are not locked out.
        login(c, "viewer")


def test_secret_key_file_is_private_and_stable(web_app) -> None:
    path = get_settings().home / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = path.read_text()
    from web.app import create_app

    create_app()
    assert path.read_text() == key and len(key) >= 32


def test_deactivated_user_loses_session(clients, engine) -> None:
    from sqlmodel import Session, select

    from kb.models import User

    with Session(engine) as session:
        user = session.exec(select(User).where(User.username == "viewer")).one()
        user.active = False
        session.add(user)
        session.commit()
    assert clients["viewer"].get("/api/me").status_code == 401


def test_secure_cookie_mode(engine, fast_hashing, web_world) -> None:
    from web.app import create_app

    with TestClient(create_app(secure_cookies=True), base_url="https://testserver") as c:
        page = c.get("/login")
        cookie = page.headers["set-cookie"]
        assert cookie.startswith("__Host-kb_session=") and "secure" in cookie.lower()
        assert page.headers["strict-transport-security"].startswith("max-age=")
        login(c, "viewer")
        assert c.get("/api/me").json()["username"] == "viewer"
        # The CSRF check follows the renamed cookie.
        assert c.post("/logout").status_code == 403


def test_templates_never_mark_text_safe() -> None:
    from pathlib import Path

    import web

    for template in (Path(web.__file__).parent / "templates").glob("*.html"):
        source = template.read_text()
        assert "|safe" not in source.replace(" ", ""), template.name
        assert "autoescape false" not in source, template.name


def test_chunked_body_over_the_limit_is_413() -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from api.security import BodySizeLimitMiddleware

    async def echo(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(len(await request.body())))

    app = BodySizeLimitMiddleware(
        Starlette(routes=[Route("/", echo, methods=["POST"])]), max_bytes=10
    )
    with TestClient(app) as c:
        assert c.post("/", content=b"12345").text == "5"
        assert c.post("/", content=b"x" * 11).status_code == 413  # by Content-Length
        chunked = c.post("/", content=iter([b"123456", b"789012"]))  # no Content-Length
        assert chunked.status_code == 413

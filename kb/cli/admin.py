"""``kb users add`` and ``kb serve``: accounts and the web app.

Passwords are read from a hidden prompt (typed twice) or, for scripts, from stdin with
``--password-stdin``; they are never taken as an argument (shell history, ``ps``), echoed, logged
or printed, and neither is their hash.
"""

from __future__ import annotations

import ipaddress
import sys
from typing import Annotated, Any

import typer

from kb.cli.common import console, fail, ready_engine
from kb.db import session_scope
from kb.models import Role
from kb.services import audit
from kb.services.access import Principal
from kb.services.users import UserError, create_user, validate_password

users_app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)


@users_app.command("add")
def users_add(
    username: Annotated[
        str, typer.Argument(help="Login name (lower-case letters, digits, . _ -).")
    ],
    role: Annotated[
        Role,
        typer.Option(
            help="viewer: published only; panel: + own partnership's "
            "restricted reviews; admin: everything."
        ),
    ],
    partnership: Annotated[
        str | None, typer.Option(help="The user's partnership (required for panel).")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin (scripts).")
    ] = False,
) -> None:
    """Create a user. The password is prompted for (hidden) unless --password-stdin."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        validate_password(password)
        with session_scope(ready_engine()) as session:
            user = create_user(
                session, username=username, password=password, role=role, partnership=partnership
            )
            audit.record(
                session,
                principal=Principal.system(),
                action="user.create",
                object_type="user",
                object_id=user.id,
                detail={"username": user.username, "role": user.role},
            )
            name, user_role = user.username, user.role.value
    except UserError as exc:
        raise fail(str(exc)) from exc
    console.print(f"created user {name} ({user_role})", highlight=False)


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on (loopback by default).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    public: Annotated[
        bool, typer.Option("--public", help="Allow a non-loopback host such as 0.0.0.0.")
    ] = False,
    secure_cookies: Annotated[
        bool, typer.Option("--secure-cookies", help="Mark cookies Secure (serving over HTTPS).")
    ] = False,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=16,
            help="Worker processes (one per core serves more users at once; each loads the "
            "search model and index, ~0.5 GB; login rate limits are per worker).",
        ),
    ] = 1,
) -> None:
    """Serve the web pages and the JSON API (login required for everything)."""
    import uvicorn

    from api.main import create_app

    if not _is_loopback(host):
        if not public:
            raise fail(
                f"refusing to listen on {host}: anyone on the network could reach unpublished "
                "reviews. Put the app behind an HTTPS reverse proxy and pass --public (and "
                "--secure-cookies) if you really mean it."
            )
        console.print(
            f"[yellow]warning:[/yellow] listening on {host}: serve it only behind HTTPS "
            "(a reverse proxy), with --secure-cookies, and keep KB_SECRET_KEY secret.",
            highlight=False,
        )
    ready_engine()
    options = {"host": host, "port": port, "server_header": False, "log_level": "info"}
    if workers > 1:  # workers import the app themselves: pass a factory by name
        factory = "kb.cli.admin:secure_app" if secure_cookies else "api.main:create_app"
        uvicorn.run(factory, factory=True, workers=workers, access_log=True, **options)  # type: ignore[arg-type]
        return
    uvicorn.run(create_app(secure_cookies=secure_cookies), access_log=True, **options)  # type: ignore[arg-type]


def secure_app() -> Any:
    """The app with Secure cookies: the factory ``kb serve --secure-cookies --workers N`` runs.

    Caches in the app (search index, results) are per worker and keyed by a fingerprint of
    the database, so every worker sees every change.
    """
    from api.main import create_app

    return create_app(secure_cookies=True)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False

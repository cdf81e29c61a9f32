"""``kb users add`` and ``kb serve``: accounts and the web app.

Passwords are read from a hidden prompt (typed twice) or, for scripts, from stdin with
``--password-stdin``; they are never taken as an argument (shell history, ``ps``), echoed, logged
or printed, and neither is their hash.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import subprocess
import sys
from typing import Annotated, Any

import typer

from kb.cli.common import console, fail, print_json, ready_engine
from kb.config import get_settings
from kb.db import session_scope, wait_longer_for_locks
from kb.models import Role
from kb.services.access import Principal
from kb.services.users import (
    UserError,
    create_user,
    list_users,
    partnership_name,
    set_active,
    set_password,
    validate_password,
)

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
                session,
                username=username,
                password=password,
                role=role,
                partnership=partnership,
                actor=Principal.system(),
            )
            name, user_role = user.username, user.role.value
    except UserError as exc:
        raise fail(str(exc)) from exc
    console.print(f"created user {name} ({user_role})", highlight=False)


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("New password", hide_input=True, confirmation_prompt=True))


def _account_change(change: Any) -> str:
    """Run ``change(session, actor) -> User`` as the operator (audited by the service as an
    admin named "system"); the user's name, or fail."""
    try:
        with session_scope(ready_engine()) as session:
            user = change(session, Principal.system())
            return str(user.username)
    except UserError as exc:
        raise fail(str(exc)) from exc


@users_app.command("passwd")
def users_passwd(
    username: Annotated[str, typer.Argument(help="The account whose password to reset.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin (scripts).")
    ] = False,
) -> None:
    """Reset a user's password; their sessions end (people change their own on the web)."""
    password = _read_password(password_stdin)
    name = _account_change(
        lambda s, actor: set_password(s, username=username, password=password, actor=actor)
    )
    console.print(f"password of {name} reset; their sessions have ended", highlight=False)


@users_app.command("disable")
def users_disable(
    username: Annotated[str, typer.Argument(help="The account to disable.")],
) -> None:
    """Disable an account: its sessions stop working on their next request; data is kept."""
    name = _account_change(
        lambda s, actor: set_active(s, username=username, active=False, actor=actor)
    )
    console.print(f"disabled {name}", highlight=False)


@users_app.command("enable")
def users_enable(
    username: Annotated[str, typer.Argument(help="The account to enable again.")],
) -> None:
    """Enable a disabled account again (the old password still applies)."""
    name = _account_change(
        lambda s, actor: set_active(s, username=username, active=True, actor=actor)
    )
    console.print(f"enabled {name}", highlight=False)


@users_app.command("list")
def users_list(
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List accounts: username, role, partnership, active (never password hashes)."""
    with session_scope(ready_engine()) as session:
        rows = [
            {
                "username": user.username,
                "role": user.role.value,
                "partnership": partnership_name(session, user.partnership_id),
                "active": user.active,
            }
            for user in list_users(session)
        ]
    if json_output:
        print_json(rows)
        return
    for row in rows:
        state = "" if row["active"] else "  (disabled)"
        where = f", {row['partnership']}" if row["partnership"] else ""
        console.print(f"{row['username']}  {row['role']}{where}{state}", highlight=False)


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
            help="Worker processes (one per core serves more users at once). They are forked "
            "from one parent that has loaded the search model and mapped the index, and share "
            "both; login rate limits are per worker.",
        ),
    ] = 1,
    worker: Annotated[
        bool,
        typer.Option(
            "--worker/--no-worker",
            help="Also run one ingest worker (a process of its own) for web uploads.",
        ),
    ] = True,
) -> None:
    """Serve the web pages and the JSON API (login required for everything)."""
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
    job_worker = _start_worker() if worker else None
    server_pid = os.getpid()
    try:
        _run_server(host, port, secure_cookies, workers)
    finally:
        # A forked server worker leaves through here too when it exits: only the process that
        # started the job worker stops it.
        if job_worker is not None and os.getpid() == server_pid:
            job_worker.terminate()
            try:
                job_worker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                job_worker.kill()


def _start_worker() -> subprocess.Popen[bytes]:
    """``kb worker`` as a child process: ingest (CPU-bound spaCy and embeddings) must not take
    the GIL from the server's request threads. A killed worker's job is taken over by the next
    worker after the lease (kb/services/jobs.py)."""
    command = [sys.executable, "-m", "kb", "worker", "--exit-with", str(os.getpid())]
    return subprocess.Popen(command)


def _run_server(host: str, port: int, secure_cookies: bool, workers: int) -> None:
    """gunicorn forking uvicorn workers from a parent that has loaded the app, the search model
    and the index once (kb/cli/serving.py: why, and what must not cross the fork)."""
    from kb.cli import serving

    serving.run(host, port, workers=workers, secure_cookies=secure_cookies)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def worker(
    poll: Annotated[float, typer.Option(help="Seconds between looks for queued jobs.")] = 2.0,
    once: Annotated[
        bool, typer.Option("--once", help="Run what is queued now, then exit.")
    ] = False,
    exit_with: Annotated[
        int | None,
        typer.Option(hidden=True, help="Stop when this process (kb serve) has gone."),
    ] = None,
) -> None:
    """Run queued ingest jobs (web uploads). Start as many as you like, on any machine that
    reaches the database: each job is claimed by one worker (PostgreSQL: FOR UPDATE SKIP
    LOCKED), and a dead worker's job is taken over after its lease."""
    import threading

    from kb.services import jobs

    settings = get_settings()
    engine = wait_longer_for_locks(ready_engine(), settings.ingest_lock_wait)
    if once:
        ran = jobs.run_pending(engine, settings=settings)
        console.print(f"ran {ran} job(s)", highlight=False)
        return

    def stop_now(*_: object) -> None:
        raise SystemExit(0)  # a job in progress is handed back to the queue (jobs.run_job)

    signal.signal(signal.SIGTERM, stop_now)
    if exit_with is not None:
        _watch_parent(exit_with)
    with contextlib.suppress(KeyboardInterrupt):
        jobs.work_forever(engine, settings=settings, poll=poll, stop=threading.Event())


def _watch_parent(pid: int) -> None:
    """End this worker when ``kb serve`` ends, however it ends (a SIGKILL leaves the server
    no chance to stop its worker itself)."""
    import threading
    import time

    def watch() -> None:
        while os.getppid() == pid:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="kb-worker-parent-watch", daemon=True).start()

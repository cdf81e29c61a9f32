"""A throwaway PostgreSQL server for the test run (Debian's postgresql binaries).

The suite runs against a real server, not a mock: KB_TEST_BACKEND=postgres makes the fixtures
start one in a temporary folder on a free loopback port and stop it at the end. Each test then
gets its own database on it.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class PgServer:
    data_dir: Path
    port: int
    bin_dir: Path
    user: str | None

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def url_for(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        _run(self, [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "stop"])
        shutil.rmtree(self.data_dir, ignore_errors=True)


def find_bin_dir() -> Path:
    """The newest installed PostgreSQL server binaries."""
    env = os.environ.get("KB_TEST_PG_BIN")
    if env:
        return Path(env)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not candidates:
        raise RuntimeError("PostgreSQL server not installed (apt-get install postgresql)")
    return Path(candidates[-1]).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(server: PgServer, argv: list[str]) -> None:
    if server.user:
        argv = ["runuser", "-u", server.user, "--", *argv]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def start() -> PgServer:
    """initdb + pg_ctl start; as root the server runs as the 'postgres' user."""
    bin_dir = find_bin_dir()
    data_dir = Path(tempfile.mkdtemp(prefix="kb-pg-"))
    user = None
    if os.geteuid() == 0:
        user = "postgres"
        entry = pwd.getpwnam(user)
        os.chown(data_dir, entry.pw_uid, entry.pw_gid)
    server = PgServer(data_dir=data_dir, port=_free_port(), bin_dir=bin_dir, user=user)
    _run(
        server,
        [
            str(bin_dir / "initdb"),
            "-D",
            str(data_dir),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
    )
    options = (
        f"-p {server.port} -k {data_dir} -c listen_addresses=127.0.0.1 "
        "-c fsync=off -c full_page_writes=off -c max_connections=200"
    )
    _run(
        server,
        [
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data_dir),
            "-o",
            options,
            "-l",
            str(data_dir / "server.log"),
            "-w",
            "start",
        ],
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
            return server
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"PostgreSQL did not start; see {data_dir / 'server.log'}")

"""A PostgreSQL server of the test run's own: ``initdb`` into a temporary folder, started on
a free port of 127.0.0.1, one new database per test, stopped at the end. Needs Debian's
``postgresql`` package (``make setup`` installs it); no system service is used. As root the
server runs as the ``postgres`` user (PostgreSQL refuses to run as root)."""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import itertools
from pathlib import Path


def _bin(name: str) -> str:
    """A server program: on PATH, or in Debian's versioned folder (newest first)."""
    found = shutil.which(name)
    if found:
        return found
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                         key=lambda p: int(Path(p).parent.name), reverse=True):
        if os.access(f"{folder}/{name}", os.X_OK):
            return f"{folder}/{name}"
    raise RuntimeError("PostgreSQL is not installed (initdb not found): run `make setup`")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    USER = "dealerdocs"

    def __init__(self) -> None:
        # its own folder under the system's temp dir: pytest's are private to root, and the
        # server runs as postgres
        self.folder = Path(tempfile.mkdtemp(prefix="dealerdocs-pg-"))
        self.port = _free_port()
        self._names = itertools.count(1)
        self._as: list[str] = []
        if os.geteuid() == 0:
            pwd.getpwnam("postgres")   # Debian's package makes this user
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self._as, *args], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, timeout=120)
        if done.returncode:
            raise RuntimeError(f"{Path(args[0]).name} failed: {done.stderr.strip()}")

    def start(self) -> "PostgresServer":
        if self._as:
            shutil.chown(self.folder, "postgres")
        data = self.folder / "data"
        self._run(_bin("initdb"), "-D", str(data), "-A", "trust", "-U", self.USER, "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-sync")
        self._run(_bin("pg_ctl"), "-D", str(data), "-l", str(self.folder / "server.log"), "-w",
                  "-o", f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
                        f"-c max_connections=200 -c shared_buffers=32MB", "start")
        return self

    def stop(self) -> None:
        self._run(_bin("pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.USER}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A new, empty database; its URL."""
        import psycopg

        name = f"t{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

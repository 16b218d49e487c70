"""Test support: a real, throwaway PostgreSQL server, started by the suite itself once per session.

initdb + pg_ctl from Debian's `postgresql` package (/usr/lib/postgresql/<version>/bin, the newest; or
$POLICY_WATCHDOG_PG_BIN), in a fresh temporary folder, listening on a unix socket in that folder only (no
TCP port to collide with anyone's). PostgreSQL refuses to run as root: when the suite runs as root, the
server runs as the unprivileged `nobody` (or $POLICY_WATCHDOG_PG_USER) and the folder is handed to it.
Durability is switched off (fsync, full_page_writes): the data dies with the session anyway.

Each test that asks for a database gets a fresh one (`PostgresServer.create_database`), dropped afterwards.

    backend           fixture, parametrised: "sqlite" and "postgres"; `backend.open(dir)` a Storage,
                      `backend.storage_lines()` the [storage] keys of a config for it
    postgres_server   fixture: the session's server
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from watchdog.storage.interfaces import Storage
from watchdog.storage.sqlite import SqliteStorage

PG_USER = os.environ.get("POLICY_WATCHDOG_PG_USER", "nobody")
SUPERUSER = "watchdog"
SETTINGS = {
    "listen_addresses": "",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "64MB",
    "log_min_messages": "warning",
}


def pg_bindir() -> Path:
    """Where initdb and pg_ctl are; a clear failure naming the package when PostgreSQL is not installed."""
    explicit = os.environ.get("POLICY_WATCHDOG_PG_BIN")
    if explicit:
        return Path(explicit)
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=_major)
    if found:
        return found[-1].parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise RuntimeError(
        "PostgreSQL's server binaries (initdb, pg_ctl) are not installed: the tests start a real PostgreSQL "
        "server. Install them (Debian/Ubuntu: apt-get install postgresql) or set POLICY_WATCHDOG_PG_BIN."
    )


def _major(initdb: Path) -> int:
    return int(initdb.parent.parent.name.split(".")[0])


class PostgresServer:
    """One PostgreSQL server in a temporary folder, reachable on a unix socket there."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="pw-pg-"))
        self.data = self.root / "data"
        self._user = pwd.getpwnam(PG_USER) if os.geteuid() == 0 else None
        if self._user is not None:
            os.chown(self.root, self._user.pw_uid, self._user.pw_gid)

    @property
    def socket_dir(self) -> Path:
        return self.root

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@/{database}?host={self.socket_dir}"

    def start(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8")
        options = " ".join(f"-c {key}={value or repr('')}" for key, value in SETTINGS.items())
        log = str(self.root / "server.log")
        start = ("-w", "-t", "60", "-o", f"-k {self.socket_dir} {options}", "start")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, *start)

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def create_database(self) -> str:
        """A fresh, empty database; its URL."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        self.sql(f"CREATE DATABASE {name}")
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.split("@/", 1)[1].split("?", 1)[0]
        self.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def sql(self, statement: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as connection:
            connection.execute(statement.encode())

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _run(self, program: str, *args: str) -> str:
        done = subprocess.run(
            [str(self.bindir / program), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            cwd=self.root,
            user=self._user.pw_uid if self._user else None,
            group=self._user.pw_gid if self._user else None,
            env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C.UTF-8"},
        )
        if done.returncode != 0:
            output = f"{done.stdout}\n{done.stderr}\n{self.log()}"
            raise RuntimeError(f"{program} {' '.join(args)} failed:\n{output}")
        return done.stdout


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer(pg_bindir())
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh database of the session's server, dropped after the test."""
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)


@dataclass(frozen=True)
class Backend:
    """The archive backend a parametrised test runs against."""

    name: str  # "sqlite" | "postgres"
    url: str | None = None  # the database of this test (postgres)

    def open(
        self, directory: Path, *, node: str = "test-node", lease: timedelta = timedelta(seconds=60)
    ) -> Storage:
        """The archive (SQLite: in `directory`; PostgreSQL: this test's database, `directory` for files)."""
        if self.url is None:
            return SqliteStorage.open(directory, node=node)
        from watchdog.storage.postgres import PostgresStorage

        return PostgresStorage.open(self.url, directory=directory, node=node, lease=lease, connections=8)

    def storage_lines(self) -> list[str]:
        """The keys to put under [storage] in a config for this backend."""
        return [] if self.url is None else [f'url = "{self.url}"']


class _Current:
    """The backend of the running test, for the config writers of support.harness and support.daemon."""

    backend: Backend | None = None


CURRENT = _Current()


def storage_lines() -> list[str]:
    """The [storage] keys of the running test's backend (none: SQLite in the storage dir)."""
    return CURRENT.backend.storage_lines() if CURRENT.backend else []


@pytest.fixture
def each_backend(backend: Backend) -> Iterator[Backend]:
    """Every test of a module on both backends (`pytestmark = pytest.mark.usefixtures("each_backend")`):
    the configs the tests write (support.harness, support.daemon) point at this test's archive."""
    CURRENT.backend = backend
    try:
        yield backend
    finally:
        CURRENT.backend = None


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield Backend("sqlite")
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database()
    try:
        yield Backend("postgres", url)
    finally:
        server.drop_database(url)

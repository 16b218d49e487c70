"""Storage, PostgreSQL backend: the connection pool, transactions, sessions and schema migrations.

One `Database` per open archive: a psycopg_pool ConnectionPool shared by the daemon's threads. Every unit of
work borrows a connection for one transaction (`transaction()`: a write in READ COMMITTED, whose row locks
order concurrent writers; `transaction(read_only=True)`: a consistent REPEATABLE READ snapshot), and
`Session` runs its statements. Every psycopg error becomes a StorageError naming the database (password
hidden) and the problem, in one line. Connections run in UTC, autocommit outside explicit transactions.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any, LiteralString

import psycopg
from psycopg import sql
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from watchdog.errors import StorageError
from watchdog.storage.address import redacted_url
from watchdog.storage.migrations import Migration, migrations
from watchdog.storage.sql import Dialect

log = logging.getLogger(__name__)

MIGRATIONS: tuple[Migration, ...] = migrations("postgres")
CONNECT_TIMEOUT = 30.0  # seconds to wait for the first connection (the database may be starting)
MIGRATION_LOCK = 0x706F6C6963790001  # advisory lock key: one node migrates at a time ("policy" + 1)

Row = DictRow


def no_nul(text: str) -> str:
    """PostgreSQL's text cannot hold NUL: a reason quoting a hostile server keeps U+FFFD in its place (the
    reasons are words for people, never hashed)."""
    return text.replace("\x00", "\ufffd")


def _same(moment: datetime) -> datetime:
    return moment


# the shared statements (storage/sql.py) in PostgreSQL: psycopg's placeholders, arrays, timestamptz, jsonb
DIALECT = Dialect(
    name="postgres",
    param="%s",
    in_values="= ANY(?)",
    json_each="jsonb_array_elements_text",
    values=list,
    time=_same,
    json=Jsonb,
    text=no_nul,
)
Params = Sequence[Any] | Mapping[str, Any] | None
Query = LiteralString | bytes | sql.SQL | sql.Composed


class Session:
    """Statements on one connection, inside the transaction that borrowed it."""

    def __init__(self, connection: psycopg.Connection[DictRow], address: str) -> None:
        self.connection = connection
        self.address = address

    def execute(self, sql: Query, params: Params = None) -> int:
        """Run a statement; the number of rows it touched."""
        try:
            return self.connection.execute(sql, params).rowcount
        except psycopg.Error as exc:
            raise database_error(self.address, exc) from exc

    def query(self, sql: Query, params: Params = None) -> list[Row]:
        try:
            return self.connection.execute(sql, params).fetchall()
        except psycopg.Error as exc:
            raise database_error(self.address, exc) from exc

    def one(self, sql: Query, params: Params = None) -> Row | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def consistent(self) -> AbstractContextManager[Session]:
        """Several reads that must agree: already inside this session's transaction."""
        return nullcontext(self)

    def many(self, sql: Query, rows: Sequence[Sequence[Any] | Mapping[str, Any]]) -> None:
        """One statement for many parameter rows (pipelined by psycopg)."""
        try:
            with self.connection.cursor() as cursor:
                cursor.executemany(sql, rows)
        except psycopg.Error as exc:
            raise database_error(self.address, exc) from exc


class Database:
    """The archive's connection pool. `address` is the URL without its password, for messages."""

    def __init__(self, pool: ConnectionPool[psycopg.Connection[DictRow]], address: str) -> None:
        self.pool = pool
        self.address = address

    @classmethod
    def connect(cls, url: str, *, max_size: int, name: str) -> Database:
        address = redacted_url(url)
        pool: ConnectionPool[psycopg.Connection[DictRow]] = ConnectionPool(
            url,
            min_size=1,
            max_size=max(max_size, 2),
            kwargs={"autocommit": True, "row_factory": dict_row, "application_name": name[:63]},
            configure=_configure,
            connection_class=psycopg.Connection[DictRow],
            name=f"policy-watchdog {address}",
            open=False,
        )
        try:
            pool.open(wait=True, timeout=CONNECT_TIMEOUT)
        except (PoolTimeout, psycopg.Error) as exc:
            pool.close()
            raise StorageError(
                f"cannot reach the archive database {address} within {CONNECT_TIMEOUT:g} s: "
                f"{_first_line(exc)}"
            ) from exc
        return cls(pool, address)

    @contextmanager
    def transaction(self, *, read_only: bool = False) -> Iterator[Session]:
        """One transaction on a connection of its own: committed when the block ends, rolled back when it
        raises. read_only: one consistent snapshot of the archive (REPEATABLE READ, READ ONLY)."""
        with self.connection() as connection, _wrapped(self.address):
            # BEGIN and COMMIT written out (psycopg's Transaction object costs more Python than the
            # statements); one round trip each
            connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY" if read_only else "BEGIN")
            try:
                yield Session(connection, self.address)
            except BaseException:
                connection.rollback()
                raise
            connection.commit()

    def query(self, sql: Query, params: Params = None) -> list[Row]:
        """One statement on its own (autocommit: atomic by itself, one round trip)."""
        with self.connection() as connection:
            return Session(connection, self.address).query(sql, params)

    def one(self, sql: Query, params: Params = None) -> Row | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def consistent(self) -> AbstractContextManager[Session]:
        """Several reads that must agree: one snapshot of the archive."""
        return self.transaction(read_only=True)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Statements each on their own (autocommit), on one borrowed connection."""
        with self.connection() as connection:
            yield Session(connection, self.address)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[DictRow]]:
        """A connection of the pool, for as long as the block runs (held: session-level advisory locks)."""
        with _wrapped(self.address), self.pool.connection() as connection:
            yield connection

    def close(self) -> None:
        self.pool.close()


def lock_key(kind: str, name: str) -> int:
    """The advisory-lock key of a host or a channel: the same number on every node (the first 8 bytes of
    a SHA-256, as PostgreSQL's signed bigint)."""
    digest = hashlib.sha256(f"policy-watchdog {kind} {name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _configure(connection: psycopg.Connection[DictRow]) -> None:
    connection.execute("SET TIME ZONE 'UTC'")


@contextmanager
def _wrapped(address: str) -> Iterator[None]:
    try:
        yield
    except PoolTimeout as exc:
        raise StorageError(f"no connection to the archive database {address}: {_first_line(exc)}") from exc
    except psycopg.Error as exc:
        raise database_error(address, exc) from exc


def database_error(address: str, exc: BaseException) -> StorageError:
    return StorageError(f"archive database error ({address}): {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --------------------------------------------------------------------------- migrations


def applied_migrations(session: Session) -> list[str]:
    exists = session.one("SELECT to_regclass('schema_migrations') IS NOT NULL AS present")
    if exists is None or not exists["present"]:
        return []
    return [row["name"] for row in session.query("SELECT name FROM schema_migrations ORDER BY name")]


def migrate(db: Database) -> list[str]:
    """Apply the pending migrations in one transaction, under an advisory lock (nodes starting together
    wait for the first one). Refuses an archive migrated by a newer release (StorageError)."""
    with db.transaction() as session:
        session.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        session.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(name text PRIMARY KEY, applied_at timestamptz NOT NULL)"
        )
        done = applied_migrations(session)
        unknown = sorted(set(done) - {m.name for m in MIGRATIONS})
        if unknown:
            raise StorageError(
                f"the archive database {db.address} was upgraded by a newer release of policy-watchdog "
                f"(migrations {', '.join(unknown)}); upgrade this node too"
            )
        applied = []
        for migration in MIGRATIONS:
            if migration.name in done:
                continue
            for statement in migration.statements:
                session.execute(statement.encode())  # our own SQL files (bytes: a query of our making)
            session.execute(
                "INSERT INTO schema_migrations (name, applied_at) VALUES (%s, %s)",
                (migration.name, datetime.now(UTC)),
            )
            applied.append(migration.name)
    if applied:
        log.info("archive database %s upgraded: %s", db.address, ", ".join(applied))
    return applied

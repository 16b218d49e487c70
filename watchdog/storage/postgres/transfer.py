"""Storage, PostgreSQL backend: the rows of copy-archive (storage/transfer.py), as stored: timestamptz in
UTC, jsonb, booleans; the identity columns moved past the copied ids at the end."""

from __future__ import annotations

from datetime import UTC, datetime

from psycopg import sql
from psycopg.types.json import Jsonb

from watchdog.storage.postgres.connection import DIALECT, Database, Session
from watchdog.storage.transfer import BOOL, INT, JSON, TIME, Converters, SqlRows, SqlSink

_OUT: Converters = {TIME: lambda v: v.astimezone(UTC), BOOL: bool, INT: int}
_IN: Converters = {JSON: Jsonb, TIME: lambda v: _aware(v)}
# integer ids the database hands out
IDENTITIES = ("snapshots", "outbox", "outbox_attempts", "import_ledger", "chain_relinks", "chain_superseded")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def rows_of(session: Session) -> SqlRows:
    """RowSource: inside one REPEATABLE READ snapshot (PostgresStorage.export)."""
    return SqlRows(session, DIALECT, _OUT)


class PostgresSink(SqlSink):
    """RowSink: each batch in its own transaction."""

    def __init__(self, db: Database) -> None:
        super().__init__(db, DIALECT, _IN)
        self._pool = db

    def finish(self) -> None:
        """The identity columns go on after the copied ids."""
        with self._pool.transaction() as session:
            for table in IDENTITIES:
                query = sql.SQL(
                    "SELECT setval(pg_get_serial_sequence({}, 'id'), coalesce(max(id), 0) + 1, false) FROM {}"
                ).format(sql.Literal(table), sql.Identifier(table))
                session.execute(query)

"""Storage, PostgreSQL backend: the rows of copy-archive (storage/transfer.py), as stored. Table and column
names come from transfer.COLUMNS and are quoted as identifiers; values are parameters."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from watchdog.storage.interfaces import Row
from watchdog.storage.postgres.connection import Database, Session
from watchdog.storage.transfer import BOOL, COLUMNS, INT, JSON, TIME, Converters, convert_row

_OUT: Converters = {TIME: lambda v: v.astimezone(UTC), BOOL: bool, INT: int}
_IN: Converters = {JSON: Jsonb, TIME: lambda v: _aware(v)}
# integer ids the database hands out
IDENTITIES = ("snapshots", "outbox", "outbox_attempts", "import_ledger", "chain_relinks", "chain_superseded")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _columns(table: str) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(name) for name in COLUMNS[table])


class PostgresRows:
    """RowSource: inside one REPEATABLE READ snapshot (PostgresStorage.export)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def count(self, table: str) -> int:
        row = self._session.one(sql.SQL("SELECT count(*) AS n FROM {}").format(sql.Identifier(table)))
        return int(row["n"]) if row else 0

    def rows(self, table: str, after: object | None, limit: int) -> list[Row]:
        query = sql.SQL("SELECT {} FROM {} {} ORDER BY id LIMIT %s").format(
            _columns(table),
            sql.Identifier(table),
            sql.SQL("WHERE id > %s") if after is not None else sql.SQL(""),
        )
        params: tuple[Any, ...] = (after, limit) if after is not None else (limit,)
        return [convert_row(r, table, _OUT) for r in self._session.query(query, params)]


class PostgresSink:
    """RowSink: each batch in its own transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def record_hashes(self, table: str, ids: Sequence[str]) -> dict[str, str]:
        query = sql.SQL("SELECT id, record_hash FROM {} WHERE id = ANY(%s)").format(sql.Identifier(table))
        return {r["id"]: r["record_hash"] for r in self._db.query(query, (list(ids),))}

    def upsert(self, table: str, rows: Sequence[Row]) -> None:
        names = list(COLUMNS[table])
        query = sql.SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT (id) DO UPDATE SET {}").format(
            sql.Identifier(table),
            _columns(table),
            sql.SQL(", ").join(sql.Placeholder() for _ in names),
            sql.SQL(", ").join(
                sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(n), sql.Identifier(n))
                for n in names
                if n != "id"
            ),
        )
        values = [[convert_row(row, table, _IN)[n] for n in names] for row in rows]
        with self._db.transaction() as session:
            session.many(query, values)

    def finish(self) -> None:
        """The identity columns go on after the copied ids."""
        with self._db.transaction() as session:
            for table in IDENTITIES:
                query = sql.SQL(
                    "SELECT setval(pg_get_serial_sequence({}, 'id'), coalesce(max(id), 0) + 1, false) FROM {}"
                ).format(sql.Literal(table), sql.Identifier(table))
                session.execute(query)

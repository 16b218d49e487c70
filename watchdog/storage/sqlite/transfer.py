"""Storage, SQLite backend: the rows of copy-archive (storage/transfer.py), as stored. SQLite keeps times as
ISO-8601 text (chain.ts), JSON as text and flags as 0/1: converted here to the neutral form and back. Table
and column names come from transfer.COLUMNS, never from input."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from watchdog.storage.chain import ts
from watchdog.storage.interfaces import Row
from watchdog.storage.sqlite.connection import Database
from watchdog.storage.transfer import BOOL, COLUMNS, INT, JSON, TIME, Converters, convert_row

_OUT: Converters = {TIME: datetime.fromisoformat, JSON: json.loads, BOOL: bool, INT: int}
_IN: Converters = {TIME: ts, JSON: lambda v: json.dumps(v, ensure_ascii=False), BOOL: int}


def _columns(table: str) -> str:
    return ", ".join(COLUMNS[table])


class SqliteRows:
    """RowSource: inside one read transaction (SqliteStorage.export)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def count(self, table: str) -> int:
        row = self._db.one(f"SELECT count(*) FROM {table}")  # noqa: S608 (a name from COLUMNS)
        return int(row[0]) if row else 0

    def rows(self, table: str, after: object | None, limit: int) -> list[Row]:
        where, params = ("WHERE id > ?", [after, limit]) if after is not None else ("", [limit])
        query = f"SELECT {_columns(table)} FROM {table} {where} ORDER BY id LIMIT ?"  # noqa: S608 (COLUMNS)
        return [convert_row(dict(r), table, _OUT) for r in self._db.query(query, params)]


class SqliteSink:
    """RowSink: each batch in its own transaction, on the writer's connection (the storage dir's lock)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def record_hashes(self, table: str, ids: Sequence[str]) -> dict[str, str]:
        marks = ",".join("?" * len(ids))
        query = f"SELECT id, record_hash FROM {table} WHERE id IN ({marks})"  # noqa: S608 (COLUMNS)
        return {r[0]: r[1] for r in self._db.query(query, list(ids))}

    def upsert(self, table: str, rows: Sequence[Row]) -> None:
        names = list(COLUMNS[table])
        updates = ", ".join(f"{n} = excluded.{n}" for n in names if n != "id")
        query = (
            f"INSERT INTO {table} ({_columns(table)}) VALUES ({','.join('?' * len(names))}) "  # noqa: S608
            f"ON CONFLICT(id) DO UPDATE SET {updates}"
        )
        with self._db.transaction():
            for row in rows:
                converted: dict[str, Any] = convert_row(row, table, _IN)
                self._db.execute(query, [converted[n] for n in names])

    def finish(self) -> None:
        """Nothing: SQLite's INTEGER PRIMARY KEY goes on after the largest id by itself."""

"""Storage, SQLite backend: the rows of copy-archive (storage/transfer.py), as stored. SQLite keeps times as
ISO-8601 text (chain.ts), JSON as text and flags as 0/1: converted here to the neutral form and back."""

from __future__ import annotations

import json
from datetime import datetime

from watchdog.storage.chain import ts
from watchdog.storage.sqlite.connection import DIALECT, Database
from watchdog.storage.transfer import BOOL, INT, JSON, TIME, Converters, SqlRows, SqlSink

_OUT: Converters = {TIME: datetime.fromisoformat, JSON: json.loads, BOOL: bool, INT: int}
_IN: Converters = {TIME: ts, JSON: lambda v: json.dumps(v, ensure_ascii=False), BOOL: int}


def rows_of(db: Database) -> SqlRows:
    """RowSource: inside one read transaction (SqliteStorage.export)."""
    return SqlRows(db, DIALECT, _OUT)


def sink_of(db: Database) -> SqlSink:
    """RowSink: each batch in its own transaction, on the writer's connection (the storage dir's lock)."""
    return SqlSink(db, DIALECT, _IN)

"""Storage, transfer: `copy-archive`, the whole archive from one store to another (SQLite -> PostgreSQL and
back), rows as they are stored: ids, hashes, chain links, the outbox and its attempt log, every blob.

    with source.export() as rows:                 # one consistent read of the source (RowSource)
        for table in TABLES: dest.importer().upsert(table, rows.rows(table, after, 500))   # batches

Rows travel in a neutral form (COLUMNS: times as aware datetimes, JSON as Python values, flags as bools);
each backend converts to and from its own column types (`SqlRows` and `SqlSink` read and write them, once for
both backends, with the backend's converters and Dialect). A batch is written in one transaction, as an
upsert on the row's id, so the copy is idempotent (a second run changes nothing), resumable (an interrupted
run is simply run again) and follows a source that moved meanwhile (the daemon kept running: state columns
such as last_seen, alerted, delivered_at are brought up to date). A version or change record that exists on
both sides with another record hash means the destination holds a different archive: refused, nothing
overwritten. `verify` then passes on both sides: the records, their hashes and links are the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from watchdog.errors import StorageError
from watchdog.storage.interfaces import Blobs, Row, RowSink, RowSource, Storage
from watchdog.storage.records import Row as Stored
from watchdog.storage.sql import Cursor, Dialect, SqlDatabase

TEXT, INT, TIME, JSON, BOOL = "text", "int", "time", "json", "bool"

# Every column of every archive table, in the order the tables are written (references first). A test
# checks this against both backends' schemas: a new column must be added here, or copies would lose it.
COLUMNS: dict[str, dict[str, str]] = {
    "targets": {
        "id": TEXT,
        "name": TEXT,
        "url": TEXT,
        "current_version": TEXT,
        "last_check_at": TIME,
        "last_status": TEXT,
        "last_reason": TEXT,
        "last_change_at": TIME,
        "consecutive_failures": INT,
        "failing": BOOL,
        "next_due_at": TIME,
        "etag": TEXT,
        "last_modified": TEXT,
        "chain_head": TEXT,
        "chain_seq": INT,
        "version_seq": INT,
        "change_seq": INT,
        "event_seq": INT,
        "last_node": TEXT,
    },
    "snapshots": {
        "id": INT,
        "target_id": TEXT,
        "url": TEXT,
        "final_url": TEXT,
        "status": INT,
        "headers": JSON,
        "body_hash": TEXT,
        "fetched_at": TIME,
        "fetcher": TEXT,
        "config_fingerprint": TEXT,
        "outcome": TEXT,
        "reason_code": TEXT,
        "reason": TEXT,
        "text_hash": TEXT,
        "alternative": TEXT,
    },
    "versions": {
        "id": TEXT,
        "target_id": TEXT,
        "seq": INT,
        "text_hash": TEXT,
        "snapshot_id": INT,
        "first_seen": TIME,
        "last_seen": TIME,
        "technical": BOOL,
        "length": INT,
        "chain_seq": INT,
        "prev_hash": TEXT,
        "record_hash": TEXT,
        "source": TEXT,
        "recorded_at": TIME,
        "provenance": JSON,
    },
    "changes": {
        "id": TEXT,
        "target_id": TEXT,
        "seq": INT,
        "from_version": TEXT,
        "to_version": TEXT,
        "detected_at": TIME,
        "kind": TEXT,
        "reverted_to": TEXT,
        "topics": JSON,
        "severity": TEXT,
        "summary": TEXT,
        "evidence": JSON,
        "alerted": BOOL,
        "chain_seq": INT,
        "prev_hash": TEXT,
        "record_hash": TEXT,
        "sections": JSON,
    },
    "events": {"id": TEXT, "target_id": TEXT, "kind": TEXT, "at": TIME, "reason": TEXT},
    "outbox": {
        "id": INT,
        "event_id": TEXT,
        "channel_key": TEXT,
        "alert_hash": TEXT,
        "created_at": TIME,
        "attempts": INT,
        "next_attempt_at": TIME,
        "delivered_at": TIME,
        "last_error": TEXT,
    },
    "outbox_attempts": {"id": INT, "outbox_id": INT, "at": TIME, "outcome": TEXT, "error": TEXT},
    # imports (issue 15): what each import took from its sources, and the chain links an import re-linked
    # (verify checks them); the sentence index is not copied: it is derived from the versions' texts, and
    # an SQLite archive rebuilds it when a writer opens it
    "import_ledger": {
        "id": INT,
        "target_id": TEXT,
        "source": TEXT,
        "ref": TEXT,
        "recorded_at": TIME,
        "outcome": TEXT,
        "version_id": TEXT,
        "reason": TEXT,
        "imported_at": TIME,
    },
    "chain_relinks": {
        "id": INT,
        "target_id": TEXT,
        "at": TIME,
        "position": INT,
        "inserted": INT,
        "old_head": TEXT,
        "old_count": INT,
    },
    "chain_superseded": {
        "id": INT,
        "relink_id": INT,
        "record_id": TEXT,
        "chain_seq": INT,
        "prev_hash": TEXT,
        "record_hash": TEXT,
    },
}
TABLES: tuple[str, ...] = tuple(COLUMNS)
CHAINED = ("versions", "changes")  # immutable records: a differing record hash is another archive
# columns of each table that point at blobs
BLOB_COLUMNS = {"snapshots": "body_hash", "versions": "text_hash", "outbox": "alert_hash"}
BATCH = 500


@dataclass(frozen=True, slots=True)
class CopyReport:
    rows: dict[str, int]
    blobs: int

    def summary(self) -> str:
        counts = ", ".join(f"{n} {table.replace('_', ' ')}" for table, n in self.rows.items())
        return f"{counts}; {self.blobs} blobs"


Progress = Callable[[str, int, int], None]  # (what, done, total)
Converters = Mapping[str, Callable[[Any], Any]]  # column kind -> conversion


def copy_archive(source: Storage, dest: Storage, *, progress: Progress | None = None) -> CopyReport:
    """Copy every row and blob of `source` into `dest` (see the module docstring)."""
    report = progress or (lambda _what, _done, _total: None)
    sink = dest.importer()
    copied: dict[str, int] = {}
    blobs: set[str] = set()
    with source.export() as rows:
        for table in TABLES:
            total, done = rows.count(table), 0
            report(table, 0, total)
            for batch in _batches(rows, table):
                _refuse_another_archive(sink, table, batch)
                column = BLOB_COLUMNS.get(table)
                if column:  # blobs first: a row never refers to a blob the destination lacks
                    _copy_blobs(source.blobs, dest.blobs, {r[column] for r in batch} - blobs)
                    blobs |= {r[column] for r in batch}
                sink.upsert(table, batch)
                done += len(batch)
                report(table, done, total)
            copied[table] = done
    sink.finish()
    return CopyReport(copied, len(blobs))


def _batches(rows: RowSource, table: str) -> Iterator[list[Row]]:
    after: object | None = None
    while True:
        batch = rows.rows(table, after, BATCH)
        if not batch:
            return
        yield batch
        after = batch[-1]["id"]


def _refuse_another_archive(sink: RowSink, table: str, batch: Sequence[Row]) -> None:
    if table not in CHAINED:
        return
    theirs = sink.record_hashes(table, [r["id"] for r in batch])
    clash = next((r["id"] for r in batch if r["id"] in theirs and theirs[r["id"]] != r["record_hash"]), None)
    if clash is not None:
        raise StorageError(
            f"the destination already holds a different {table[:-1]} {clash} (another archive): nothing "
            "of it is overwritten; copy into an empty database or storage dir"
        )


def _copy_blobs(source: Blobs, dest: Blobs, digests: set[str]) -> None:
    for digest in sorted(digests):
        dest.put(source.get(digest))  # content-addressed: the same name on both sides, stored once


def convert_row(row: Stored, table: str, convert: Converters) -> Row:
    """A row with each column converted by its kind's function (absent kinds unchanged; NULL stays)."""
    kinds = COLUMNS[table]
    return {
        name: (None if row[name] is None else convert.get(kind, _same)(row[name]))
        for name, kind in kinds.items()
    }


def _same(value: Any) -> Any:
    return value


# --------------------------------------------------------------------------- rows in and out, as stored
# Table and column names come from COLUMNS (a KeyError for any other), never from input.


def _names(table: str) -> str:
    return ", ".join(COLUMNS[table])


def _table(table: str) -> str:
    if table not in COLUMNS:
        raise KeyError(f"not an archive table: {table!r}")
    return table


class SqlRows:
    """RowSource: inside one consistent read (a backend's `export()`), each row converted by `out`."""

    def __init__(self, cursor: Cursor, dialect: Dialect, out: Converters) -> None:
        self._cursor = cursor
        self._dialect = dialect
        self._out = out

    def count(self, table: str) -> int:
        row = self._cursor.one(self._dialect.sql(f"SELECT count(*) AS n FROM {_table(table)}"))  # noqa: S608
        return int(row["n"]) if row else 0

    def rows(self, table: str, after: object | None, limit: int) -> list[Row]:
        where, params = ("WHERE id > ?", (after, limit)) if after is not None else ("", (limit,))
        query = f"SELECT {_names(table)} FROM {table} {where} ORDER BY id LIMIT ?"  # noqa: S608 (COLUMNS)
        return [
            convert_row(r, table, self._out) for r in self._cursor.query(self._dialect.sql(query), params)
        ]


class SqlSink:
    """RowSink: each batch in its own transaction, each row converted by `into` and upserted on its id."""

    def __init__(self, db: SqlDatabase, dialect: Dialect, into: Converters) -> None:
        self._db = db
        self._dialect = dialect
        self._into = into

    def record_hashes(self, table: str, ids: Sequence[str]) -> dict[str, str]:
        query = f"SELECT id, record_hash FROM {table} WHERE id {{in_values}}"  # noqa: S608 (COLUMNS)
        rows = self._db.query(self._dialect.sql(query), (self._dialect.values(list(ids)),))
        return {r["id"]: r["record_hash"] for r in rows}

    def upsert(self, table: str, rows: Sequence[Row]) -> None:
        names = list(COLUMNS[table])
        updates = ", ".join(f"{n} = excluded.{n}" for n in names if n != "id")
        query = (
            f"INSERT INTO {table} ({_names(table)}) VALUES ({', '.join('?' * len(names))}) "  # noqa: S608
            f"ON CONFLICT (id) DO UPDATE SET {updates}"
        )
        values = [[convert_row(row, table, self._into)[n] for n in names] for row in rows]
        with self._db.transaction() as cursor:
            cursor.many(self._dialect.sql(query), values)

    def finish(self) -> None:
        """After the last batch (SQLite: nothing; its INTEGER PRIMARY KEY goes on after the largest id)."""

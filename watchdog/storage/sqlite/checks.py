"""Storage, SQLite backend: CheckStore, a check's state read in one read transaction and its results written
in one transaction (storage/write.py decides the rows, ids and hash-chain links; storage/statements.py runs
them). The storage dir's writer lock makes this process the only writer: the target's row needs no lock."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from watchdog.models import CheckState, Target
from watchdog.storage.blobs import BlobStore
from watchdog.storage.records import target_row
from watchdog.storage.sqlite.connection import DIALECT, Database
from watchdog.storage.sqlite.search import statements
from watchdog.storage.statements import REGISTER_TARGET, UPSERT_TARGET, read_check
from watchdog.storage.write import write_check

if TYPE_CHECKING:
    from watchdog.results import CheckRecord, Recorded


class SqliteChecks:
    """CheckStore: a check's state read in one read transaction, its results written in one transaction."""

    def __init__(self, db: Database, blobs: BlobStore) -> None:
        self._db = db
        self._blobs = blobs

    def sync_targets(self, targets: Sequence[Target]) -> None:
        with self._db.transaction() as db:
            db.many(DIALECT.sql(REGISTER_TARGET), [(t.id, t.name, t.url) for t in targets])

    def set_next_due(self, due: Mapping[str, datetime]) -> None:
        if not due:
            return
        with self._db.transaction() as db:
            db.many(
                DIALECT.sql("UPDATE targets SET next_due_at = ? WHERE id = ?"),
                [(DIALECT.time(at), target_id) for target_id, at in due.items()],
            )

    def read_check(self, target_id: str, *, recent_since: datetime, snapshots: int) -> CheckState:
        return read_check(self._db, DIALECT, target_id, recent_since=recent_since, snapshots=snapshots)

    def record_check(self, record: CheckRecord) -> Recorded:
        _put_blobs(self._blobs, record)  # first: content-addressed, fsynced; the transaction only refers
        with self._db.transaction() as db:
            row = db.one(DIALECT.sql(UPSERT_TARGET), (record.target_id, record.name, record.url))
            assert row is not None  # RETURNING always yields the row written
            return write_check(record, target_row(row), statements(db))


def _put_blobs(blobs: BlobStore, record: CheckRecord) -> None:
    if record.snapshot is not None:
        blobs.put(record.snapshot.capture.body)
    if record.version is not None:
        blobs.put_text(record.version.text)
    for alert in record.alerts:
        blobs.put_text(alert.payload)

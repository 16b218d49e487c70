"""Storage, SQLite backend: the Outbox (rows owed to channels) and its attempt log."""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime

from watchdog.models import (
    Attempt,
    AttemptOutcome,
    Delivery,
)
from watchdog.storage.blobs import BlobStore
from watchdog.storage.chain import ts
from watchdog.storage.sqlite.connection import (
    Database,
)
from watchdog.storage.sqlite.rows import (
    dt,
    parse_ts,
)

# --------------------------------------------------------------------------- the outbox


class SqliteOutbox:
    """Outbox: rows owed to channels (queued by record_check), their delivery and attempt log."""

    def __init__(self, db: Database, blobs: BlobStore) -> None:
        self._db = db
        self._blobs = blobs

    def pending_deliveries(self, now: datetime, *, channel: str | None = None) -> list[Delivery]:
        rows = self._db.query(
            "SELECT * FROM outbox WHERE delivered_at IS NULL AND next_attempt_at <= ? "
            "AND (? IS NULL OR channel_key = ?) ORDER BY id",
            (ts(now), channel, channel),
        )
        return [self._delivery(row) for row in rows]

    def all_pending(self, *, channel: str | None = None) -> list[Delivery]:
        rows = self._db.query(
            "SELECT * FROM outbox WHERE delivered_at IS NULL AND (? IS NULL OR channel_key = ?) ORDER BY id",
            (channel, channel),
        )
        return [self._delivery(row) for row in rows]

    def channel_turn(self, channel_key: str) -> AbstractContextManager[bool]:
        del channel_key  # one writer (the storage dir's lock): always this process's turn
        return nullcontext(True)

    def mark_delivered(self, delivery_id: int, at: datetime) -> None:
        # its own short transaction: the window in which a crash can cause a duplicate is the time between
        # the channel accepting the message and this commit
        with self._db.transaction():
            cursor = self._db.execute(
                "UPDATE outbox SET delivered_at = ?, attempts = attempts + 1, last_error = NULL "
                "WHERE id = ? AND delivered_at IS NULL",
                (ts(at), delivery_id),
            )
            if cursor.rowcount:
                self._log(delivery_id, at, "delivered", None)

    def mark_failed(
        self,
        delivery_id: int,
        error: str,
        retry_at: datetime,
        *,
        at: datetime,
        outcome: AttemptOutcome = "failed",
    ) -> None:
        with self._db.transaction():
            self._db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ?",
                (error[:2000], ts(retry_at), delivery_id),
            )
            self._log(delivery_id, at, outcome, error[:2000])

    def _log(self, delivery_id: int, at: datetime, outcome: AttemptOutcome, error: str | None) -> None:
        self._db.execute(
            "INSERT INTO outbox_attempts (outbox_id, at, outcome, error) VALUES (?,?,?,?)",
            (delivery_id, ts(at), outcome, error),
        )

    def attempts(self, delivery_id: int) -> list[Attempt]:
        rows = self._db.query("SELECT * FROM outbox_attempts WHERE outbox_id = ? ORDER BY id", (delivery_id,))
        return [Attempt(int(r["outbox_id"]), dt(r["at"]), r["outcome"], r["error"]) for r in rows]

    def deliveries_for(self, event_id: str) -> list[tuple[str, datetime | None, int]]:
        rows = self._db.query(
            "SELECT channel_key, delivered_at, attempts FROM outbox WHERE event_id = ?", (event_id,)
        )
        return [(r[0], parse_ts(r[1]), int(r[2])) for r in rows]

    def _delivery(self, row: sqlite3.Row) -> Delivery:
        payload = self._blobs.get_text(row["alert_hash"])
        return Delivery(
            int(row["id"]), row["channel_key"], payload, int(row["attempts"]), dt(row["created_at"])
        )

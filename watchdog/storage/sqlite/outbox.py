"""Storage, SQLite backend: the Outbox (rows owed to channels) and its attempt log."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime

from watchdog.models import (
    Attempt,
    AttemptOutcome,
    Delivery,
    OwedAlert,
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

# undelivered rows, with how many of their attempts ended (or were left) with an unknown outcome
_PENDING_ALL = (
    "SELECT o.*, (SELECT COUNT(*) FROM outbox_attempts a WHERE a.outbox_id = o.id AND a.outcome = 'unknown') "
    "AS uncertain_sends FROM outbox o WHERE o.delivered_at IS NULL AND (? IS NULL OR o.channel_key = ?) "
    "ORDER BY o.id"
)
_PENDING_DUE = (
    "SELECT o.*, (SELECT COUNT(*) FROM outbox_attempts a WHERE a.outbox_id = o.id AND a.outcome = 'unknown') "
    "AS uncertain_sends FROM outbox o WHERE o.delivered_at IS NULL AND o.next_attempt_at <= ? "
    "AND (? IS NULL OR o.channel_key = ?) ORDER BY o.id"
)
# an attempt begun and never completed: the sending process stopped mid-send
_IN_FLIGHT = "no outcome recorded: the sender stopped during the send (the channel may have the alert)"


class SqliteOutbox:
    """Outbox: rows owed to channels (queued by record_check), their delivery and attempt log."""

    def __init__(self, db: Database, blobs: BlobStore) -> None:
        self._db = db
        self._blobs = blobs

    def pending_deliveries(self, now: datetime, *, channel: str | None = None) -> list[Delivery]:
        rows = self._db.query(_PENDING_DUE, (ts(now), channel, channel))
        return [self._delivery(row) for row in rows]

    def all_pending(self, *, channel: str | None = None) -> list[Delivery]:
        rows = self._db.query(_PENDING_ALL, (channel, channel))
        return [self._delivery(row) for row in rows]

    def channel_turn(self, channel_key: str) -> AbstractContextManager[bool]:
        del channel_key  # one writer (the storage dir's lock): always this process's turn
        return nullcontext(True)

    def begin_attempt(self, delivery_id: int, at: datetime, *, retry_at: datetime) -> int:
        with self._db.transaction():
            self._db.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ? WHERE id = ?",
                (ts(retry_at), delivery_id),
            )
            return self._log(delivery_id, at, "unknown", _IN_FLIGHT)

    def mark_delivered(self, delivery_id: int, at: datetime, *, attempt: int | None = None) -> None:
        # its own short transaction: the window in which a crash can cause a duplicate is the time between
        # the channel accepting the message and this commit
        with self._db.transaction():
            if self._db.execute(
                "UPDATE outbox SET delivered_at = ?, attempts = attempts + ?, last_error = NULL "
                "WHERE id = ? AND delivered_at IS NULL",
                (ts(at), int(attempt is None), delivery_id),  # begin_attempt counted it already
            ):
                self._complete(delivery_id, at, "delivered", None, attempt)

    def mark_delivered_many(
        self, delivery_ids: Sequence[int], at: datetime, *, attempts: Mapping[int, int] | None = None
    ) -> None:
        # several rows delivered by one message (a digest): all of them count, or none does
        with self._db.transaction():
            for delivery_id in delivery_ids:
                attempt = (attempts or {}).get(delivery_id)
                if self._db.execute(
                    "UPDATE outbox SET delivered_at = ?, attempts = attempts + ?, last_error = NULL "
                    "WHERE id = ? AND delivered_at IS NULL",
                    (ts(at), int(attempt is None), delivery_id),
                ):
                    self._complete(delivery_id, at, "delivered", None, attempt)

    def mark_failed(
        self,
        delivery_id: int,
        error: str,
        retry_at: datetime,
        *,
        at: datetime,
        outcome: AttemptOutcome = "failed",
        attempt: int | None = None,
    ) -> None:
        with self._db.transaction():
            self._db.execute(
                "UPDATE outbox SET attempts = attempts + ?, last_error = ?, next_attempt_at = ? WHERE id = ?",
                (int(attempt is None), error[:2000], ts(retry_at), delivery_id),
            )
            self._complete(delivery_id, at, outcome, error[:2000], attempt)

    def _complete(
        self, delivery_id: int, at: datetime, outcome: AttemptOutcome, error: str | None, attempt: int | None
    ) -> None:
        if attempt is None:
            self._log(delivery_id, at, outcome, error)
            return
        self._db.execute(
            "UPDATE outbox_attempts SET outcome = ?, error = ? WHERE id = ? AND outbox_id = ?",
            (outcome, error, attempt, delivery_id),
        )

    def _log(self, delivery_id: int, at: datetime, outcome: AttemptOutcome, error: str | None) -> int:
        row = self._db.one(
            "INSERT INTO outbox_attempts (outbox_id, at, outcome, error) VALUES (?,?,?,?) RETURNING id",
            (delivery_id, ts(at), outcome, error),
        )
        assert row is not None  # RETURNING always yields the row written
        return int(row["id"])

    def enqueue_notice(self, alert: OwedAlert, *, at: datetime) -> int:
        digest = self._blobs.put_text(alert.payload)  # first, as record_check does: rows only refer to it
        with self._db.transaction():
            return sum(
                self._db.execute(
                    "INSERT OR IGNORE INTO outbox "
                    "(event_id, channel_key, alert_hash, created_at, next_attempt_at) VALUES (?,?,?,?,?)",
                    (alert.event_id, key, digest, ts(at), ts(at)),
                )
                for key in alert.channel_keys
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
            int(row["id"]),
            row["channel_key"],
            payload,
            int(row["attempts"]),
            dt(row["created_at"]),
            next_attempt_at=dt(row["next_attempt_at"]),
            uncertain_sends=int(row["uncertain_sends"]),
            last_error=row["last_error"],
        )

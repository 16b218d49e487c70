"""Storage, the Outbox (rows owed to channels, their delivery and attempt log), once for both backends
(storage/sql.py: shared SQL spelled by the backend's Dialect).

A backend subclasses `SqlOutbox` for what it alone knows: where alert payloads are kept (SQLite: blob files,
written before the rows that refer to them; PostgreSQL: the `blobs` table, in the rows' transaction) and
whose turn it is to deliver a channel (one SQLite writer: always this process's; PostgreSQL: an advisory
lock per channel, so one node at a time).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING

from watchdog.deferred import deferred
from watchdog.models import AttemptOutcome
from watchdog.storage.records import Row, moment, moment_or_none
from watchdog.storage.sql import Cursor, Dialect, SqlDatabase
from watchdog.storage.statements import enqueue

if TYPE_CHECKING:
    from watchdog import messages
    from watchdog.messages import Attempt, Delivery
    from watchdog.results import OwedAlert
else:
    messages = deferred("watchdog.messages")  # the rows' types: read after a check's requests, if ever

# undelivered rows (all, or those due by a time), with how many of their attempts ended (or were left)
# with an unknown outcome
_PENDING = (
    "SELECT o.*, (SELECT COUNT(*) FROM outbox_attempts a WHERE a.outbox_id = o.id AND a.outcome = 'unknown') "
    "AS uncertain_sends FROM outbox o WHERE o.delivered_at IS NULL "
    "AND (CAST(? AS TEXT) IS NULL OR o.channel_key = ?) "
    "AND (CAST(? AS TEXT) IS NULL OR o.next_attempt_at <= ?) "
    "ORDER BY o.id"
)
_DELIVERED = (
    "UPDATE outbox SET delivered_at = ?, attempts = attempts + ?, last_error = NULL "
    "WHERE id = ? AND delivered_at IS NULL"
)
# an attempt begun and never completed: the sending process stopped mid-send
_IN_FLIGHT = "no outcome recorded: the sender stopped during the send (the channel may have the alert)"
ERROR_LENGTH = 2000  # an attempt's error kept, in characters


class SqlOutbox(ABC):
    """Outbox on a backend's database, in its dialect."""

    def __init__(self, db: SqlDatabase, dialect: Dialect) -> None:
        self._db = db
        self._dialect = dialect

    @abstractmethod
    def channel_turn(self, channel_key: str) -> AbstractContextManager[bool]: ...

    @abstractmethod
    def _payloads(self, digests: Sequence[str]) -> Mapping[str, str]:
        """The alert payloads (texts) of these blob digests (StorageError when one is missing)."""

    @abstractmethod
    def _store_payload(self, cursor: Cursor, text: str) -> str:
        """Keep an alert's payload before rows refer to it (its digest); `cursor`: the rows' transaction."""

    def pending_deliveries(self, now: datetime, *, channel: str | None = None) -> list[Delivery]:
        at = self._dialect.time(now)
        return self._deliveries(self._db.query(self._dialect.sql(_PENDING), (channel, channel, at, at)))

    def all_pending(self, *, channel: str | None = None) -> list[Delivery]:
        return self._deliveries(self._db.query(self._dialect.sql(_PENDING), (channel, channel, None, None)))

    def begin_attempt(self, delivery_id: int, at: datetime, *, retry_at: datetime) -> int:
        with self._db.transaction() as cursor:
            cursor.execute(
                self._dialect.sql(
                    "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ? WHERE id = ?"
                ),
                (self._dialect.time(retry_at), delivery_id),
            )
            return self._log(cursor, delivery_id, at, "unknown", _IN_FLIGHT)

    def mark_delivered(self, delivery_id: int, at: datetime, *, attempt: int | None = None) -> None:
        # its own short transaction: the window in which a crash can cause a duplicate is the time between
        # the channel accepting the message and this commit
        self.mark_delivered_many(
            [delivery_id], at, attempts={} if attempt is None else {delivery_id: attempt}
        )

    def mark_delivered_many(
        self, delivery_ids: Sequence[int], at: datetime, *, attempts: Mapping[int, int] | None = None
    ) -> None:
        # several rows delivered by one message (a digest): all of them count, or none does
        with self._db.transaction() as cursor:
            for delivery_id in delivery_ids:
                attempt = (attempts or {}).get(delivery_id)
                params = (self._dialect.time(at), int(attempt is None), delivery_id)  # begun: counted already
                if cursor.execute(self._dialect.sql(_DELIVERED), params):
                    self._complete(cursor, delivery_id, at, "delivered", None, attempt)

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
        text = self._dialect.text(error[:ERROR_LENGTH])
        with self._db.transaction() as cursor:
            cursor.execute(
                self._dialect.sql(
                    "UPDATE outbox SET attempts = attempts + ?, last_error = ?, next_attempt_at = ? "
                    "WHERE id = ?"
                ),
                (int(attempt is None), text, self._dialect.time(retry_at), delivery_id),
            )
            self._complete(cursor, delivery_id, at, outcome, text, attempt)

    def _complete(
        self,
        cursor: Cursor,
        delivery_id: int,
        at: datetime,
        outcome: AttemptOutcome,
        error: str | None,
        attempt: int | None,
    ) -> None:
        """The attempt's outcome: on its begun row, or (none begun) a row of its own."""
        if attempt is None:
            self._log(cursor, delivery_id, at, outcome, error)
            return
        cursor.execute(
            self._dialect.sql(
                "UPDATE outbox_attempts SET outcome = ?, error = ? WHERE id = ? AND outbox_id = ?"
            ),
            (outcome, error, attempt, delivery_id),
        )

    def _log(
        self, cursor: Cursor, delivery_id: int, at: datetime, outcome: AttemptOutcome, error: str | None
    ) -> int:
        row = cursor.one(
            self._dialect.sql(
                "INSERT INTO outbox_attempts (outbox_id, at, outcome, error) VALUES (?, ?, ?, ?) RETURNING id"
            ),
            (delivery_id, self._dialect.time(at), outcome, error),
        )
        assert row is not None  # RETURNING always yields the row written
        return int(row["id"])

    def enqueue_notice(self, alert: OwedAlert, *, at: datetime) -> int:
        with self._db.transaction() as cursor:
            digest = self._store_payload(cursor, alert.payload)  # first, as record_check does
            return sum(
                enqueue(cursor, self._dialect, alert.event_id, key, digest, at) for key in alert.channel_keys
            )

    def attempts(self, delivery_id: int) -> list[Attempt]:
        rows = self._db.query(
            self._dialect.sql("SELECT * FROM outbox_attempts WHERE outbox_id = ? ORDER BY id"), (delivery_id,)
        )
        return [
            messages.Attempt(int(r["outbox_id"]), moment(r["at"]), r["outcome"], r["error"]) for r in rows
        ]

    def deliveries_for(self, event_id: str) -> list[tuple[str, datetime | None, int]]:
        rows = self._db.query(
            self._dialect.sql(
                "SELECT channel_key, delivered_at, attempts FROM outbox WHERE event_id = ? ORDER BY id"
            ),
            (event_id,),
        )
        return [(r["channel_key"], moment_or_none(r["delivered_at"]), int(r["attempts"])) for r in rows]

    def _deliveries(self, rows: Sequence[Row]) -> list[Delivery]:
        payloads = self._payloads(sorted({row["alert_hash"] for row in rows}))
        return [
            messages.Delivery(
                int(row["id"]),
                row["channel_key"],
                payloads[row["alert_hash"]],
                int(row["attempts"]),
                moment(row["created_at"]),
                next_attempt_at=moment_or_none(row["next_attempt_at"]),
                uncertain_sends=int(row["uncertain_sends"]),
                last_error=row["last_error"],
            )
            for row in rows
        ]

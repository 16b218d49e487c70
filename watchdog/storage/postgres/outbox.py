"""Storage, PostgreSQL backend: the Outbox, shared by every node. A channel's rows are delivered by one node
at a time: `channel_turn` holds a session-level advisory lock on the channel for the delivery pass, taken
without waiting (another node delivering it now: this node skips it), and released by PostgreSQL itself
when the holder's connection ends (a killed node, a lost network), so the next pass anywhere resumes it.
Rows are read again inside the turn, so a row another node delivered a moment ago is never sent twice."""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

import psycopg

from watchdog.errors import StorageError
from watchdog.models import Attempt, AttemptOutcome, Delivery, OwedAlert
from watchdog.storage.postgres.blobs import insert_blob
from watchdog.storage.postgres.connection import Database, Row, Session, database_error, lock_key, no_nul
from watchdog.storage.postgres.rows import utc

# payloads come with their rows: one query, not one per row
_PENDING = (
    "SELECT o.id, o.channel_key, o.attempts, o.created_at, o.alert_hash, o.next_attempt_at, o.last_error, "
    "(SELECT COUNT(*) FROM outbox_attempts a WHERE a.outbox_id = o.id AND a.outcome = 'unknown') "
    "AS uncertain_sends, b.data FROM outbox o "
    "LEFT JOIN blobs b ON b.digest = o.alert_hash WHERE o.delivered_at IS NULL "
    "AND (%s::text IS NULL OR o.channel_key = %s) AND (%s::timestamptz IS NULL OR o.next_attempt_at <= %s) "
    "ORDER BY o.id"
)
# an attempt begun and never completed: the sending process stopped mid-send
_IN_FLIGHT = "no outcome recorded: the sender stopped during the send (the channel may have the alert)"


class PostgresOutbox:
    """Outbox of a PostgreSQL archive."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def pending_deliveries(self, now: datetime, *, channel: str | None = None) -> list[Delivery]:
        rows = self._db.query(_PENDING, (channel, channel, now, now))
        return [self._delivery(row) for row in rows]

    def all_pending(self, *, channel: str | None = None) -> list[Delivery]:
        rows = self._db.query(_PENDING, (channel, channel, None, None))
        return [self._delivery(row) for row in rows]

    @contextmanager
    def channel_turn(self, channel_key: str) -> Iterator[bool]:
        """Hold the right to deliver `channel_key`'s rows for the block: True, or False (without waiting)
        while another node holds it."""
        key = lock_key("outbox", channel_key)
        with self._db.connection() as connection:
            try:
                got = connection.execute("SELECT pg_try_advisory_lock(%s) AS got", (key,)).fetchone()
            except psycopg.Error as exc:
                raise database_error(self._db.address, exc) from exc
            mine = bool(got and got["got"])
            try:
                yield mine
            finally:
                if mine:
                    connection.execute("SELECT pg_advisory_unlock(%s)", (key,))

    def begin_attempt(self, delivery_id: int, at: datetime, *, retry_at: datetime) -> int:
        with self._db.transaction() as session:
            session.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = %s WHERE id = %s",
                (retry_at, delivery_id),
            )
            row = session.one(
                "INSERT INTO outbox_attempts (outbox_id, at, outcome, error) "
                "VALUES (%s, %s, 'unknown', %s) RETURNING id",
                (delivery_id, at, _IN_FLIGHT),
            )
            assert row is not None
            return int(row["id"])

    def mark_delivered(self, delivery_id: int, at: datetime, *, attempt: int | None = None) -> None:
        # its own short transaction: the window in which a crash can cause a duplicate is the time between
        # the channel accepting the message and this commit
        with self._db.transaction() as session:
            if session.execute(
                "UPDATE outbox SET delivered_at = %s, attempts = attempts + %s, last_error = NULL "
                "WHERE id = %s AND delivered_at IS NULL",
                (at, int(attempt is None), delivery_id),  # begin_attempt counted it already
            ):
                self._complete(session, delivery_id, at, "delivered", None, attempt)

    def mark_delivered_many(
        self, delivery_ids: Sequence[int], at: datetime, *, attempts: Mapping[int, int] | None = None
    ) -> None:
        # several rows delivered by one message (a digest): all of them count, or none does
        with self._db.transaction() as session:
            for delivery_id in delivery_ids:
                attempt = (attempts or {}).get(delivery_id)
                if session.execute(
                    "UPDATE outbox SET delivered_at = %s, attempts = attempts + %s, last_error = NULL "
                    "WHERE id = %s AND delivered_at IS NULL",
                    (at, int(attempt is None), delivery_id),
                ):
                    self._complete(session, delivery_id, at, "delivered", None, attempt)

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
        text = no_nul(error[:2000])
        with self._db.transaction() as session:
            session.execute(
                "UPDATE outbox SET attempts = attempts + %s, last_error = %s, next_attempt_at = %s "
                "WHERE id = %s",
                (int(attempt is None), text, retry_at, delivery_id),
            )
            self._complete(session, delivery_id, at, outcome, text, attempt)

    @staticmethod
    def _complete(
        session: Session,
        delivery_id: int,
        at: datetime,
        outcome: AttemptOutcome,
        error: str | None,
        attempt: int | None,
    ) -> None:
        if attempt is None:
            session.execute(
                "INSERT INTO outbox_attempts (outbox_id, at, outcome, error) VALUES (%s, %s, %s, %s)",
                (delivery_id, at, outcome, error),
            )
        else:
            session.execute(
                "UPDATE outbox_attempts SET outcome = %s, error = %s WHERE id = %s AND outbox_id = %s",
                (outcome, error, attempt, delivery_id),
            )

    def enqueue_notice(self, alert: OwedAlert, *, at: datetime) -> int:
        with self._db.transaction() as session:  # the payload in the rows' transaction, as record_check does
            digest = insert_blob(session, alert.payload.encode("utf-8"))
            return sum(
                session.execute(
                    "INSERT INTO outbox (event_id, channel_key, alert_hash, created_at, next_attempt_at) "
                    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (event_id, channel_key) DO NOTHING",
                    (alert.event_id, key, digest, at, at),
                )
                for key in alert.channel_keys
            )

    def attempts(self, delivery_id: int) -> list[Attempt]:
        rows = self._db.query(
            "SELECT * FROM outbox_attempts WHERE outbox_id = %s ORDER BY id", (delivery_id,)
        )
        return [Attempt(int(r["outbox_id"]), r["at"].astimezone(UTC), r["outcome"], r["error"]) for r in rows]

    def deliveries_for(self, event_id: str) -> list[tuple[str, datetime | None, int]]:
        rows = self._db.query(
            "SELECT channel_key, delivered_at, attempts FROM outbox WHERE event_id = %s ORDER BY id",
            (event_id,),
        )
        return [(r["channel_key"], utc(r["delivered_at"]), int(r["attempts"])) for r in rows]

    def _delivery(self, row: Row) -> Delivery:
        if row["data"] is None:
            raise StorageError(
                f"blob {row['alert_hash']} is missing from the archive database {self._db.address}"
            )
        try:
            payload = zlib.decompress(row["data"]).decode("utf-8")
        except (zlib.error, UnicodeDecodeError) as exc:
            raise StorageError(f"blob {row['alert_hash']} is unreadable: {exc}") from exc
        return Delivery(
            int(row["id"]),
            row["channel_key"],
            payload,
            int(row["attempts"]),
            row["created_at"].astimezone(UTC),
            next_attempt_at=utc(row["next_attempt_at"]),
            uncertain_sends=int(row["uncertain_sends"]),
            last_error=row["last_error"],
        )

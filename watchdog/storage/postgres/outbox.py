"""Storage, PostgreSQL backend: the Outbox, shared by every node. A channel's rows are delivered by one node
at a time: `channel_turn` holds a session-level advisory lock on the channel for the delivery pass, taken
without waiting (another node delivering it now: this node skips it), and released by PostgreSQL itself
when the holder's connection ends (a killed node, a lost network), so the next pass anywhere resumes it.
Rows are read again inside the turn, so a row another node delivered a moment ago is never sent twice."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import psycopg

from watchdog.storage.outbox import SqlOutbox
from watchdog.storage.postgres.blobs import PostgresBlobs, insert_blob
from watchdog.storage.postgres.connection import DIALECT, Database, database_error, lock_key
from watchdog.storage.sql import Cursor


class PostgresOutbox(SqlOutbox):
    """Outbox of a PostgreSQL archive (storage/outbox.py), its payloads in the `blobs` table."""

    def __init__(self, db: Database, blobs: PostgresBlobs) -> None:
        super().__init__(db, DIALECT)
        self._pool = db
        self._blobs = blobs

    @contextmanager
    def channel_turn(self, channel_key: str) -> Iterator[bool]:
        """Hold the right to deliver `channel_key`'s rows for the block: True, or False (without waiting)
        while another node holds it."""
        key = lock_key("outbox", channel_key)
        with self._pool.connection() as connection:
            try:
                got = connection.execute("SELECT pg_try_advisory_lock(%s) AS got", (key,)).fetchone()
            except psycopg.Error as exc:
                raise database_error(self._pool.address, exc) from exc
            mine = bool(got and got["got"])
            try:
                yield mine
            finally:
                if mine:
                    connection.execute("SELECT pg_advisory_unlock(%s)", (key,))

    def _payloads(self, digests: Sequence[str]) -> Mapping[str, str]:
        """All in one query, not one per row."""
        return {digest: data.decode("utf-8") for digest, data in self._blobs.get_many(digests).items()}

    def _store_payload(self, cursor: Cursor, text: str) -> str:
        return insert_blob(cursor, text.encode("utf-8"))  # in the rows' transaction, as record_check does

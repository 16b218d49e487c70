"""Storage, PostgreSQL backend: content-addressed blobs in the `blobs` table, so every node reads every raw
capture, text and alert payload. A blob is stored zlib-compressed, named by the SHA-256 of its content (as in
the SQLite backend's files), written once (ON CONFLICT DO NOTHING: writers of the same blob never clash),
and written in the same transaction as the rows that refer to it when a check records it."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from watchdog.errors import StorageError
from watchdog.storage.blobs import LEVEL, TextBlobs, decompressed, stored_problem
from watchdog.storage.chain import sha256
from watchdog.storage.postgres.connection import Database
from watchdog.storage.sql import Cursor


def insert_blob(session: Cursor, data: bytes) -> str:
    """Store `data` in the session's transaction (idempotent); its digest."""
    digest = sha256(data)
    session.execute(
        "INSERT INTO blobs (digest, size, data) VALUES (%s, %s, %s) ON CONFLICT (digest) DO NOTHING",
        (digest, len(data), zlib.compress(data, LEVEL)),
    )
    return digest


class PostgresBlobs(TextBlobs):
    """The `Blobs` of a PostgreSQL archive."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def put(self, data: bytes) -> str:
        with self._db.transaction() as session:
            return insert_blob(session, data)

    def stored(self, digest: str) -> bytes:
        row = self._db.one("SELECT data FROM blobs WHERE digest = %s", (digest,))
        if row is None:
            raise StorageError(f"blob {digest} is missing from the archive database {self._db.address}")
        return bytes(row["data"])

    def get_many(self, digests: Sequence[str]) -> dict[str, bytes]:
        """Several blobs in one query (the outbox's payloads); StorageError: one is missing or unreadable."""
        rows = self._db.query("SELECT digest, data FROM blobs WHERE digest = ANY(%s)", (list(digests),))
        found = {row["digest"]: bytes(row["data"]) for row in rows}
        for digest in digests:
            if digest not in found:
                raise StorageError(f"blob {digest} is missing from the archive database {self._db.address}")
        return {digest: decompressed(digest, found[digest]) for digest in digests}

    def problem(self, digest: str) -> str | None:
        """None when the blob is present, readable and its content hashes to its name; else what is wrong."""
        row = self._db.one("SELECT data FROM blobs WHERE digest = %s", (digest,))
        return "is missing" if row is None else stored_problem(digest, bytes(row["data"]))

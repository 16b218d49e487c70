"""Storage, SQLite backend: the Outbox (storage/outbox.py), its payloads in the blob files."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext

from watchdog.storage.blobs import BlobStore
from watchdog.storage.outbox import SqlOutbox
from watchdog.storage.sql import Cursor
from watchdog.storage.sqlite.connection import DIALECT, Database


class SqliteOutbox(SqlOutbox):
    """Outbox: rows owed to channels (queued by record_check), their delivery and attempt log."""

    def __init__(self, db: Database, blobs: BlobStore) -> None:
        super().__init__(db, DIALECT)
        self._blobs = blobs

    def channel_turn(self, channel_key: str) -> AbstractContextManager[bool]:
        del channel_key  # one writer (the storage dir's lock): always this process's turn
        return nullcontext(True)

    def _payloads(self, digests: Sequence[str]) -> Mapping[str, str]:
        return {digest: self._blobs.get_text(digest) for digest in digests}

    def _store_payload(self, cursor: Cursor, text: str) -> str:
        del cursor  # a file, fsynced before the rows that refer to it are committed
        return self._blobs.put_text(text)

"""Storage, SQLite backend: ArchiveReader (storage/reader.py), with FTS5 for the sentence search."""

from __future__ import annotations

from collections.abc import Sequence

from watchdog.storage.blobs import BlobStore
from watchdog.storage.reader import SqlArchive
from watchdog.storage.records import Row
from watchdog.storage.search import fts5_query
from watchdog.storage.sql import Cursor
from watchdog.storage.sqlite.connection import DIALECT, Database, applied_migrations


class SqliteArchive(SqlArchive):
    """ArchiveReader on a Database (the writer's connection, or a reader's own)."""

    def __init__(self, db: Database, blobs: BlobStore) -> None:
        super().__init__(db, DIALECT, blobs)
        self._db = db

    def migrations(self) -> list[str]:
        return applied_migrations(self._db)

    def _matching(
        self, cursor: Cursor, terms: tuple[str, ...], *, any_term: bool, target: str | None, limit: int
    ) -> Sequence[Row]:
        return cursor.query(
            "SELECT s.id, s.target_id, s.text, s.first_version, s.last_version, fv.first_seen, "
            "lv.last_seen, t.current_version FROM sentences_fts f "
            "JOIN sentences s ON s.id = f.rowid JOIN targets t ON t.id = s.target_id "
            "JOIN versions fv ON fv.id = s.first_version JOIN versions lv ON lv.id = s.last_version "
            "WHERE sentences_fts MATCH ? AND (? IS NULL OR s.target_id = ?) "
            "ORDER BY f.rank, s.id LIMIT ?",
            (fts5_query(terms, any_term=any_term), target, target, limit),
        )

"""Storage, PostgreSQL backend: ArchiveReader (storage/reader.py), on the pool (each read on its own) or
inside one read-only snapshot transaction (`PostgresStorage.reading()`: publish, verify, export), with
PostgreSQL's full-text search for the sentence search (storage/postgres/search.py)."""

from __future__ import annotations

from collections.abc import Sequence

from watchdog.storage.interfaces import Blobs
from watchdog.storage.postgres.connection import DIALECT, Database, Session, applied_migrations
from watchdog.storage.postgres.search import ts_query
from watchdog.storage.reader import SqlArchive
from watchdog.storage.records import Row
from watchdog.storage.sql import Cursor


class PostgresArchive(SqlArchive):
    """ArchiveReader of a PostgreSQL archive."""

    def __init__(self, reads: Database | Session, blobs: Blobs) -> None:
        super().__init__(reads, DIALECT, blobs)
        self._pg = reads

    def migrations(self) -> list[str]:
        with self._pg.consistent() as session:
            return applied_migrations(session)

    def _matching(
        self, cursor: Cursor, terms: tuple[str, ...], *, any_term: bool, target: str | None, limit: int
    ) -> Sequence[Row]:
        query = ts_query(len(terms), any_term=any_term)
        return cursor.query(
            "SELECT s.id, s.target_id, s.text, s.first_version, s.last_version, fv.first_seen, "  # noqa: S608
            "lv.last_seen, t.current_version FROM sentences s JOIN targets t ON t.id = s.target_id "
            "JOIN versions fv ON fv.id = s.first_version JOIN versions lv ON lv.id = s.last_version "
            f"WHERE to_tsvector('watchdog_words', s.text) @@ {query} "
            "AND (%s::text IS NULL OR s.target_id = %s) "
            f"ORDER BY ts_rank(to_tsvector('watchdog_words', s.text), {query}) DESC, s.id LIMIT %s",
            (*terms, target, target, *terms, limit),
        )

"""Storage, SQLite backend: the sentence index (storage/search.py says what it holds; storage/statements.py
writes it with each version, in its transaction): new sentences, each with its FTS5 entry (by trigger); and
the index built for the versions of an archive from before it when a writer opens it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial

from watchdog.models import Version
from watchdog.storage.blobs import BlobStore
from watchdog.storage.chain import ts
from watchdog.storage.records import version
from watchdog.storage.sqlite.connection import DIALECT, Database
from watchdog.storage.statements import Statements

log = logging.getLogger(__name__)


def statements(db: Database) -> Statements:
    """The shared statements of a write (storage/statements.py) on this database, indexing here."""
    return Statements(db, DIALECT, partial(insert_sentences, db))


def insert_sentences(db: Database, version: Version, new: Sequence[tuple[str, str]]) -> dict[str, int]:
    """A version's new sentences (hash, text) into the index, each with its full-text entry (by trigger);
    their ids by hash."""
    at = ts(version.first_seen)
    added = {}
    for digest, sentence in new:
        row = db.one(
            "INSERT INTO sentences (target_id, hash, text, first_version, first_at, last_version, last_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (version.target_id, digest, sentence, version.id, at, version.id, at),
        )
        assert row is not None  # RETURNING always yields the row written
        added[digest] = int(row["id"])
    return added


def index_missing(db: Database, blobs: BlobStore) -> int:
    """Index the versions the sentence index does not hold yet (an archive from before it), each target's in
    recording order, one transaction per version; how many."""
    rows = db.query(
        "SELECT * FROM versions WHERE id NOT IN (SELECT version_id FROM version_sentences) "
        "ORDER BY target_id, chain_seq"
    )
    if rows:
        log.info("building the search index of %d archived version(s)", len(rows))
    for row in rows:
        with db.transaction():
            statements(db).index_version(version(row), blobs.get_text(row["text_hash"]))
    return len(rows)

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


# Rows per INSERT: 7 parameters each, under the 999 parameters a statement may hold in any SQLite build.
ROWS_PER_INSERT = 100
_INSERT_SENTENCES = (
    "INSERT INTO sentences (target_id, hash, text, first_version, first_at, last_version, last_at) "
    "VALUES {rows} RETURNING id, hash"
)
_SENTENCE_ROW = "(?, ?, ?, ?, ?, ?, ?)"  # placeholders only: the values are parameters


def insert_sentences(db: Database, version: Version, new: Sequence[tuple[str, str]]) -> dict[str, int]:
    """A version's new sentences (hash, text) into the index, each with its full-text entry (by trigger);
    their ids by hash. A hundred rows per statement (a new policy brings hundreds of sentences): the rows
    are inserted in order, so they get the ids one statement per row gave them; RETURNING's order is not
    promised, so each row comes back with its hash."""
    at = ts(version.first_seen)
    added: dict[str, int] = {}
    for first in range(0, len(new), ROWS_PER_INSERT):
        chunk = new[first : first + ROWS_PER_INSERT]
        params = [
            value
            for digest, sentence in chunk
            for value in (version.target_id, digest, sentence, version.id, at, version.id, at)
        ]
        rows = db.query(_INSERT_SENTENCES.format(rows=", ".join([_SENTENCE_ROW] * len(chunk))), params)
        added.update((str(row["hash"]), int(row["id"])) for row in rows)
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

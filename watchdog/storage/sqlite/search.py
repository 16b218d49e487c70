"""Storage, SQLite backend: the sentence index (storage/search.py says what it holds): written with each
version, in its transaction; built for the versions of an archive from before it when a writer opens it."""

from __future__ import annotations

import json
import logging

from watchdog.models import Version
from watchdog.storage.blobs import BlobStore
from watchdog.storage.chain import ts
from watchdog.storage.records import version
from watchdog.storage.search import pack_ids, sentences_of
from watchdog.storage.sqlite.connection import Database

log = logging.getLogger(__name__)


def index_version(db: Database, version: Version, text: str) -> None:
    """Add a version's sentences to the index (storage/search.py): a new sentence gets its row (and, by
    trigger, its full-text entry); a known one moves its first or last version when this version comes
    before or after them in recording order (an import adds history before the live versions)."""
    found = sentences_of(text)
    at = ts(version.first_seen)
    known = {
        row["hash"]: row
        for row in db.query(
            "SELECT id, hash, first_at, last_at FROM sentences "
            "WHERE target_id = ? AND hash IN (SELECT value FROM json_each(?))",
            (version.target_id, json.dumps([digest for digest, _ in found])),
        )
    }
    ids: list[int] = []
    earlier: list[tuple[str, str, int]] = []
    later: list[tuple[str, str, int]] = []
    for digest, sentence in found:
        row = known.get(digest)
        if row is None:
            added = db.one(
                "INSERT INTO sentences (target_id, hash, text, first_version, first_at, last_version, "
                "last_at) VALUES (?,?,?,?,?,?,?) RETURNING id",
                (version.target_id, digest, sentence, version.id, at, version.id, at),
            )
            assert added is not None  # RETURNING always yields the row written
            ids.append(int(added["id"]))
            continue
        ids.append(int(row["id"]))
        if at < row["first_at"]:
            earlier.append((version.id, at, int(row["id"])))
        if at >= row["last_at"]:
            later.append((version.id, at, int(row["id"])))
    db.many("UPDATE sentences SET first_version = ?, first_at = ? WHERE id = ?", earlier)
    db.many("UPDATE sentences SET last_version = ?, last_at = ? WHERE id = ?", later)
    db.execute(
        "INSERT INTO version_sentences (version_id, target_id, ids) VALUES (?,?,?)",
        (version.id, version.target_id, pack_ids(ids)),
    )


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
            index_version(db, version(row), blobs.get_text(row["text_hash"]))
    return len(rows)

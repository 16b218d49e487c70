"""Storage, the statements of a check's read and write and of an import's write, once for both backends
(storage/sql.py: written in shared SQL, spelled by the backend's Dialect, run on its Cursor).

storage/write.py and storage/import_write.py decide the rows, ids and hash-chain links; `Statements` runs
them inside the backend's transaction, the sentence index (storage/search.py) included. What differs
between the backends is around it, in their checks.py, imports.py and search.py: where blobs go, how the
target's row is locked (SQLite: the file's write lock; PostgreSQL: the upsert's row lock and the node's
lease), and how new sentences enter the full-text index (one row each under SQLite's FTS5 trigger; one
statement for all of them in PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from watchdog.models import CheckState, Sequences, Snapshot, Version
from watchdog.storage.records import (
    change_entry,
    moment,
    sequences,
    snapshot,
    target_state,
    version,
    version_entry,
)
from watchdog.storage.search import pack_ids, sentences_of
from watchdog.storage.sql import Cursor, Dialect, Reads
from watchdog.storage.write import TargetRow

if TYPE_CHECKING:  # annotations only: an import's and verify's (watchdog/archived.py says why), a write's
    from watchdog.archived import ChainEntry, ImportLedgerEntry, Relink
    from watchdog.results import ChangeRecord, Event

# Register the target (name and URL follow the config) ...
REGISTER_TARGET = (
    "INSERT INTO targets (id, name, url) VALUES (?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET name = excluded.name, url = excluded.url"
)
# ... and read its row as it is now (PostgreSQL: locked by the upsert until the transaction ends)
UPSERT_TARGET = REGISTER_TARGET + " RETURNING *"


def read_check(
    reads: Reads, dialect: Dialect, target_id: str, *, recent_since: datetime, snapshots: int
) -> CheckState:
    """CheckStore.read_check: a check's state, read in one consistent snapshot."""
    sql = dialect.sql
    with reads.consistent() as cursor:
        row = cursor.one(sql("SELECT * FROM targets WHERE id = ?"), (target_id,))
        current = current_snapshot = None
        if row is not None and row["current_version"] is not None:
            found = cursor.one(sql("SELECT * FROM versions WHERE id = ?"), (row["current_version"],))
            current = version(found) if found else None
        if current is not None and current.snapshot_id is not None:
            raw = cursor.one(sql("SELECT * FROM snapshots WHERE id = ?"), (current.snapshot_id,))
            current_snapshot = snapshot(raw) if raw else None
        recent = cursor.query(
            sql("SELECT * FROM versions WHERE target_id = ? AND last_seen >= ? ORDER BY seq DESC"),
            (target_id, dialect.time(recent_since)),
        )
        latest = cursor.query(
            sql("SELECT * FROM snapshots WHERE target_id = ? ORDER BY id DESC LIMIT ?"),
            (target_id, snapshots),
        )
    return CheckState(
        target_id=target_id,
        target=target_state(row) if row else None,
        current=current,
        current_snapshot=current_snapshot,
        recent=tuple(version(r) for r in recent),
        latest_snapshots=tuple(snapshot(r) for r in latest),
        sequences=sequences(row) if row else Sequences(),
    )


# A backend's insert of a version's new sentences (hash, text) into the sentence index: their ids by hash.
InsertSentences = Callable[[Version, Sequence[tuple[str, str]]], Mapping[str, int]]


class Statements:
    """RowWriter (storage/write.py) and ImportWriter (storage/import_write.py) on a backend's cursor, inside
    the write's transaction. `insert_sentences`: the backend's, for the sentence index (full-text search
    differs: SQLite's FTS5 table follows by trigger, PostgreSQL's GIN index by itself)."""

    def __init__(self, cursor: Cursor, dialect: Dialect, insert_sentences: InsertSentences) -> None:
        self._cursor = cursor
        self._dialect = dialect
        self._insert_sentences = insert_sentences

    def _run(self, statement: str, params: Sequence[Any]) -> int:
        return self._cursor.execute(self._dialect.sql(statement), params)

    def _one(self, statement: str, params: Sequence[Any]) -> Any:
        return self._cursor.one(self._dialect.sql(statement), params)

    def _query(self, statement: str, params: Sequence[Any]) -> Sequence[Any]:
        return self._cursor.query(self._dialect.sql(statement), params)

    # ----------------------------------------------------------------- a check's statements (RowWriter)

    def insert_snapshot(self, row: Snapshot) -> int:
        d = self._dialect
        found = self._one(
            "INSERT INTO snapshots (target_id, url, final_url, status, headers, body_hash, fetched_at, "
            "fetcher, config_fingerprint, outcome, reason_code, reason, text_hash, alternative) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                row.target_id,
                row.url,
                row.final_url,
                row.status,
                d.json([list(pair) for pair in row.headers]),
                row.body_hash,
                d.time(row.fetched_at),
                row.fetcher,
                row.config_fingerprint,
                row.outcome,
                row.reason_code,
                d.words(row.reason),
                row.text_hash,
                row.alternative,
            ),
        )
        return int(found["id"])

    def snapshot(self, snapshot_id: int) -> Snapshot | None:
        found = self._one("SELECT * FROM snapshots WHERE id = ?", (snapshot_id,))
        return None if found is None else snapshot(found)

    def insert_version(self, row: Version, chain_seq: int) -> None:
        d = self._dialect
        self._run(
            "INSERT INTO versions (id, target_id, seq, text_hash, snapshot_id, first_seen, last_seen, "
            "technical, length, chain_seq, prev_hash, record_hash, source, recorded_at, provenance) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.id,
                row.target_id,
                row.seq,
                row.text_hash,
                row.snapshot_id,
                d.time(row.first_seen),
                d.time(row.last_seen),
                row.technical,
                row.length,
                chain_seq,
                row.prev_hash,
                row.record_hash,
                row.source,
                d.when(row.recorded_at),
                d.json(dict(row.provenance)) if row.provenance is not None else None,
            ),
        )

    def index_version(self, row: Version, text: str) -> None:
        """Add a version's sentences to the index (storage/search.py): a new sentence gets its row (the
        backend's `insert_sentences`, which indexes its text for full-text search); a known one moves its
        first or last version when this version comes before or after them in recording order (an import
        adds history before the live versions)."""
        d = self._dialect
        found = sentences_of(text)
        hashes = [digest for digest, _ in found]
        known = {
            r["hash"]: r
            for r in self._query(
                "SELECT id, hash, first_at, last_at FROM sentences WHERE target_id = ? AND hash {in_values}",
                (row.target_id, d.values(hashes)),
            )
        }
        added = self._insert_sentences(row, [(digest, s) for digest, s in found if digest not in known])
        ids = [added[digest] if digest in added else int(known[digest]["id"]) for digest in hashes]
        at_of = _moments()  # a policy's thousands of known sentences share a few times: each parsed once
        earlier = [int(r["id"]) for r in known.values() if row.first_seen < at_of(r["first_at"])]
        later = [int(r["id"]) for r in known.values() if row.first_seen >= at_of(r["last_at"])]
        at = d.time(row.first_seen)
        if earlier:
            self._run(
                "UPDATE sentences SET first_version = ?, first_at = ? WHERE id {in_values}",
                (row.id, at, d.values(earlier)),
            )
        if later:
            self._run(
                "UPDATE sentences SET last_version = ?, last_at = ? WHERE id {in_values}",
                (row.id, at, d.values(later)),
            )
        self._run(
            "INSERT INTO version_sentences (version_id, target_id, ids) VALUES (?, ?, ?)",
            (row.id, row.target_id, pack_ids(ids)),
        )

    def insert_change(self, row: ChangeRecord, evidence: Sequence[Mapping[str, Any]], chain_seq: int) -> None:
        d = self._dialect
        self._run(
            "INSERT INTO changes (id, target_id, seq, from_version, to_version, detected_at, kind, "
            "reverted_to, topics, severity, summary, evidence, chain_seq, prev_hash, record_hash, sections) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.id,
                row.target_id,
                row.seq,
                row.from_version,
                row.to_version,
                d.time(row.detected_at),
                row.kind,
                row.reverted_to,
                d.json(list(row.topics)),
                row.severity,
                row.summary,
                d.json([dict(item) for item in evidence]),
                chain_seq,
                row.prev_hash,
                row.record_hash,
                d.json(list(row.sections)),
            ),
        )

    def insert_event(self, row: Event) -> None:
        d = self._dialect
        self._run(
            "INSERT INTO events (id, target_id, kind, at, reason) VALUES (?, ?, ?, ?, ?)",
            (row.id, row.target_id, row.kind, d.time(row.at), d.words(row.reason)),
        )

    def touch(self, version_id: str, at: datetime) -> None:
        moment = self._dialect.time(at)
        self._run(
            "UPDATE versions SET last_seen = ? WHERE id = ? AND last_seen < ?", (moment, version_id, moment)
        )

    def enqueue(self, event_id: str, channel_key: str, alert_hash: str, at: datetime) -> bool:
        return enqueue(self._cursor, self._dialect, event_id, channel_key, alert_hash, at) > 0

    def alerted_text(self, target_id: str, text_hash: str) -> bool:
        found = self._one(
            "SELECT 1 AS hit FROM changes c JOIN versions v ON v.id = c.to_version "
            "WHERE c.target_id = ? AND v.text_hash = ? AND c.alerted LIMIT 1",
            (target_id, text_hash),
        )
        return found is not None

    def mark_alerted(self, change_id: str) -> None:
        self._run("UPDATE changes SET alerted = TRUE WHERE id = ?", (change_id,))

    def update_target(self, target_id: str, row: TargetRow) -> None:
        d = self._dialect
        self._run(
            "UPDATE targets SET current_version = ?, last_change_at = ?, failing = ?, chain_head = ?, "
            "chain_seq = ?, version_seq = ?, change_seq = ?, event_seq = ?, last_check_at = ?, "
            "last_status = ?, last_reason = ?, consecutive_failures = ?, etag = ?, last_modified = ?, "
            "last_node = ? WHERE id = ?",
            (
                row.current_version,
                d.when(row.last_change_at),
                row.failing,
                row.chain_head,
                row.chain_seq,
                row.version_seq,
                row.change_seq,
                row.event_seq,
                d.when(row.last_check_at),
                row.last_status,
                d.words(row.last_reason),
                row.consecutive_failures,
                row.etag,
                row.last_modified,
                row.last_node,
                target_id,
            ),
        )

    # ----------------------------------------------------------------- an import's own (ImportWriter)

    def live_tail(self, target_id: str) -> list[ChainEntry]:
        first = self._one(
            "SELECT min(chain_seq) AS position FROM versions WHERE target_id = ? AND source = 'live'",
            (target_id,),
        )
        if first is None or first["position"] is None:
            return []
        position = int(first["position"])
        versions = self._query(
            "SELECT * FROM versions WHERE target_id = ? AND chain_seq >= ?", (target_id, position)
        )
        ids = [row["snapshot_id"] for row in versions if row["snapshot_id"] is not None]
        raws = {
            int(row["id"]): row
            for row in self._query(
                "SELECT * FROM snapshots WHERE id {in_values}", (self._dialect.values(ids),)
            )
        }
        changes = self._query(
            "SELECT * FROM changes WHERE target_id = ? AND chain_seq >= ?", (target_id, position)
        )
        entries = [version_entry(row, raws) for row in versions] + [change_entry(row) for row in changes]
        return sorted(entries, key=lambda e: e.chain_seq)

    def relink(self, entry: ChainEntry, chain_seq: int, prev_hash: str, record_hash: str) -> None:
        self._run(
            "UPDATE versions SET chain_seq = ?, prev_hash = ?, record_hash = ? WHERE id = ?"
            if entry.kind == "version"
            else "UPDATE changes SET chain_seq = ?, prev_hash = ?, record_hash = ? WHERE id = ?",
            (chain_seq, prev_hash, record_hash, entry.id),
        )

    def log_relink(self, relink: Relink) -> None:
        found = self._one(
            "INSERT INTO chain_relinks (target_id, at, position, inserted, old_head, old_count) "
            "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (
                relink.target_id,
                self._dialect.time(relink.at),
                relink.position,
                relink.inserted,
                relink.old_head,
                relink.old_count,
            ),
        )
        self._cursor.many(
            self._dialect.sql(
                "INSERT INTO chain_superseded (relink_id, record_id, chain_seq, prev_hash, record_hash) "
                "VALUES (?, ?, ?, ?, ?)"
            ),
            [(found["id"], *link) for link in relink.superseded],
        )

    def insert_ledger(
        self, target_id: str, source: str, entries: Sequence[ImportLedgerEntry], at: datetime
    ) -> None:
        time = self._dialect.time
        self._cursor.many(
            self._dialect.sql(
                "INSERT INTO import_ledger (target_id, source, ref, recorded_at, outcome, version_id, "
                "reason, imported_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            [
                (target_id, source, e.ref, time(e.recorded_at), e.outcome, e.version_id, e.reason, time(at))
                for e in entries
            ],
        )


def _moments() -> Callable[[str | datetime], datetime]:
    """records.moment, remembering each stored time it has parsed."""
    parsed: dict[str | datetime, datetime] = {}

    def at(value: str | datetime) -> datetime:
        found = parsed.get(value)
        if found is None:
            found = parsed[value] = moment(value)
        return found

    return at


def enqueue(
    cursor: Cursor, dialect: Dialect, event_id: str, channel_key: str, alert_hash: str, at: datetime
) -> int:
    """Owe an alert to a channel, once (a second (event, channel) row is ignored); 1 when added, else 0."""
    moment = dialect.time(at)
    return cursor.execute(
        dialect.sql(
            "INSERT INTO outbox (event_id, channel_key, alert_hash, created_at, next_attempt_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (event_id, channel_key) DO NOTHING"
        ),
        (event_id, channel_key, alert_hash, moment, moment),
    )

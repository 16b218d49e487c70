"""Storage, the ArchiveReader, once for both backends (storage/sql.py: shared SQL spelled by the backend's
Dialect, run on its database or inside one open transaction).

A backend subclasses `SqlArchive` for what it alone knows: the full-text query of `search` (SQLite's FTS5,
PostgreSQL's tsvector) and where its applied migrations are listed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from watchdog.archived import (
    BlobReference,
    ChainEntry,
    ChainHead,
    ImportLedgerEntry,
    Relink,
    SentenceHit,
    VersionSentences,
)
from watchdog.errors import NotFoundError, QueryError
from watchdog.models import Snapshot, TargetState, Version
from watchdog.results import ChangeRecord, Event
from watchdog.storage.interfaces import DEFAULT_CHANGE_KINDS, Blobs
from watchdog.storage.records import (
    Row,
    change,
    change_entry,
    event,
    int_or,
    ledger_entry,
    loaded,
    relinks_of,
    snapshot,
    target_state,
    version,
    version_entry,
)
from watchdog.storage.search import MAX_RESULTS, hit, parse_query, unpack_ids
from watchdog.storage.sql import Cursor, Dialect, Reads

# an optional filter: CAST(? AS TEXT) types the parameter for PostgreSQL when it is NULL
_CHANGES = (
    "SELECT * FROM changes WHERE kind {in_values} "
    "AND (CAST(? AS TEXT) IS NULL OR target_id = ?) "
    "AND (CAST(? AS TEXT) IS NULL OR detected_at >= ?) "
    "AND (CAST(? AS TEXT) IS NULL OR EXISTS (SELECT 1 FROM {json_each}(topics) WHERE value = ?)) "
    "ORDER BY detected_at DESC, id DESC"
)

# the sentences of some versions (a search: of its targets' current versions)
_SENTENCES_OF = "SELECT version_id, ids FROM version_sentences WHERE version_id {in_values}"


def _raw_body(snapshot_id: int, target_id: str) -> str:
    return f"raw body of snapshot {snapshot_id} of {target_id}"


def _owed(event_id: str, channel_key: str) -> str:
    return f"alert {event_id} owed to channel {channel_key[:12]}"


class SqlArchive(ABC):
    """ArchiveReader on `reads` (a database: each read on its own; or one open transaction)."""

    def __init__(self, reads: Reads, dialect: Dialect, blobs: Blobs) -> None:
        self._reads = reads
        self._dialect = dialect
        self._blobs = blobs

    def _query(self, statement: str, params: Sequence[Any] = ()) -> Sequence[Row]:
        return self._reads.query(self._dialect.sql(statement), params)

    def _one(self, statement: str, params: Sequence[Any] = ()) -> Row | None:
        return self._reads.one(self._dialect.sql(statement), params)

    def target_states(self) -> list[TargetState]:
        return [target_state(row) for row in self._query("SELECT * FROM targets ORDER BY id")]

    def target_state(self, target_id: str) -> TargetState | None:
        row = self._one("SELECT * FROM targets WHERE id = ?", (target_id,))
        return None if row is None else target_state(row)

    def failing(self, threshold: int) -> list[str]:
        # "> 0 AND": the targets_failing partial index's own condition, so the planner reads only that index
        sql = (
            "SELECT id FROM targets WHERE consecutive_failures > 0 AND consecutive_failures >= ? ORDER BY id"
        )
        rows = self._query(sql, (max(threshold, 1),))
        return [row["id"] for row in rows]

    def versions(self, target_id: str) -> list[Version]:
        # chain order is recording order: imported history comes before the live versions
        rows = self._query("SELECT * FROM versions WHERE target_id = ? ORDER BY chain_seq DESC", (target_id,))
        return [version(r) for r in rows]

    def current_version(self, target_id: str) -> Version | None:
        row = self._one(
            "SELECT v.* FROM versions v JOIN targets t ON v.id = t.current_version WHERE t.id = ?",
            (target_id,),
        )
        return None if row is None else version(row)

    def version(self, version_id: str) -> Version:
        row = self._one("SELECT * FROM versions WHERE id = ?", (version_id,))
        if row is None:
            raise NotFoundError(f"no version {version_id!r} in the archive (see `history TARGET_ID`)")
        return version(row)

    def versions_with_text(self, target_id: str, text_hash: str) -> list[Version]:
        rows = self._query(
            "SELECT * FROM versions WHERE target_id = ? AND text_hash = ? ORDER BY seq DESC",
            (target_id, text_hash),
        )
        return [version(r) for r in rows]

    def version_text(self, version_id: str) -> str:
        return self.text(self.version(version_id).text_hash)

    def text(self, digest: str) -> str:
        return self._blobs.get_text(digest)

    def changes(
        self,
        *,
        target: str | None = None,
        topic: str | None = None,
        since: datetime | None = None,
        kinds: Sequence[str] = DEFAULT_CHANGE_KINDS,
    ) -> list[ChangeRecord]:
        at = self._dialect.when(since)
        rows = self._query(_CHANGES, (self._dialect.values(kinds), target, target, at, at, topic, topic))
        return [change(r) for r in rows]

    def change(self, change_id: str) -> ChangeRecord:
        row = self._one("SELECT * FROM changes WHERE id = ?", (change_id,))
        if row is None:
            raise NotFoundError(f"no change {change_id!r} in the archive (see `changes`)")
        return change(row)

    def change_evidence(self, change_id: str) -> list[dict[str, Any]]:
        row = self._one("SELECT evidence FROM changes WHERE id = ?", (change_id,))
        return [] if row is None else list(loaded(row["evidence"]))

    def events(self, *, target: str | None = None) -> list[Event]:
        rows = self._query(
            "SELECT * FROM events WHERE (CAST(? AS TEXT) IS NULL OR target_id = ?) ORDER BY at DESC, id DESC",
            (target, target),
        )
        return [event(r) for r in rows]

    def snapshot(self, snapshot_id: int) -> Snapshot:
        row = self._one("SELECT * FROM snapshots WHERE id = ?", (snapshot_id,))
        if row is None:
            raise NotFoundError(f"no snapshot {snapshot_id}")
        return snapshot(row)

    def snapshots(self, target_id: str, *, outcome: str | None = None) -> list[Snapshot]:
        rows = self._query(
            # by capture time: an import adds raw captures (Wayback) older than the live ones
            "SELECT * FROM snapshots WHERE target_id = ? AND (CAST(? AS TEXT) IS NULL OR outcome = ?) "
            "ORDER BY fetched_at, id",
            (target_id, outcome, outcome),
        )
        return [snapshot(row) for row in rows]

    def latest_snapshots(self, target_id: str, count: int) -> list[Snapshot]:
        rows = self._query(
            "SELECT * FROM snapshots WHERE target_id = ? ORDER BY fetched_at DESC, id DESC LIMIT ?",
            (target_id, count),
        )
        return [snapshot(row) for row in rows]

    def snapshot_body(self, snapshot: Snapshot) -> bytes:
        return self._blobs.get(snapshot.body_hash)

    def snapshot_gzip(self, snapshot: Snapshot) -> bytes:
        return self._blobs.get_gzip(snapshot.body_hash)

    @abstractmethod
    def migrations(self) -> list[str]:
        """The names of the migrations applied to the archive, in order."""

    def chain_positions(self) -> dict[str, int]:
        rows = self._query("SELECT id, chain_seq FROM versions UNION ALL SELECT id, chain_seq FROM changes")
        return {str(row["id"]): int(row["chain_seq"]) for row in rows}

    def chain(self) -> list[ChainEntry]:
        sql = self._dialect.sql
        with self._reads.consistent() as cursor:
            snapshots = {row["id"]: row for row in cursor.query(sql("SELECT * FROM snapshots"))}
            versions = cursor.query(sql("SELECT * FROM versions ORDER BY target_id, chain_seq, id"))
            changes = cursor.query(sql("SELECT * FROM changes ORDER BY target_id, chain_seq, id"))
        entries = [version_entry(row, snapshots) for row in versions]
        entries += [change_entry(row) for row in changes]
        return sorted(entries, key=lambda e: (e.target_id, e.chain_seq, e.id))

    def chain_heads(self) -> list[ChainHead]:
        rows = self._query("SELECT id, chain_head, chain_seq FROM targets ORDER BY id")
        return [ChainHead(r["id"], str(r["chain_head"]), int_or(r["chain_seq"], -1)) for r in rows]

    def blob_references(self) -> list[BlobReference]:
        sql = self._dialect.sql
        with self._reads.consistent() as cursor:
            texts = cursor.query(sql("SELECT id, text_hash FROM versions ORDER BY target_id, chain_seq"))
            raw = cursor.query(sql("SELECT id, target_id, body_hash FROM snapshots ORDER BY id"))
            alerts = cursor.query(sql("SELECT event_id, channel_key, alert_hash FROM outbox ORDER BY id"))
        return [
            *(BlobReference(r["text_hash"], f"text of version {r['id']}", r["id"]) for r in texts),
            *(BlobReference(r["body_hash"], _raw_body(r["id"], r["target_id"])) for r in raw),
            *(BlobReference(r["alert_hash"], _owed(r["event_id"], r["channel_key"])) for r in alerts),
        ]

    # ----------------------------------------------------------------- the sentence index, imports, re-links

    def search(
        self, query: str, *, target: str | None = None, limit: int = 50, any_term: bool = False
    ) -> list[SentenceHit]:
        try:
            terms = parse_query(query)
        except ValueError as exc:
            raise QueryError(str(exc)) from exc
        with self._reads.consistent() as cursor:
            rows = self._matching(
                cursor, terms, any_term=any_term, target=target, limit=max(0, min(limit, MAX_RESULTS))
            )
            wanted = sorted({r["current_version"] for r in rows if r["current_version"]})
            sentences = cursor.query(self._dialect.sql(_SENTENCES_OF), (self._dialect.values(wanted),))
        current = {r["version_id"]: frozenset(unpack_ids(r["ids"])) for r in sentences}
        return [hit(r, current.get(r["current_version"], frozenset())) for r in rows]

    @abstractmethod
    def _matching(
        self, cursor: Cursor, terms: tuple[str, ...], *, any_term: bool, target: str | None, limit: int
    ) -> Sequence[Row]:
        """The backend's full-text query: the best `limit` sentences matching the terms (all, or any), each
        row with id, target_id, text, first_version, last_version, first_seen, last_seen, current_version."""

    def sentence_presence(self, target_id: str) -> list[VersionSentences]:
        rows = self._query(
            "SELECT v.*, vs.ids AS sentence_ids FROM versions v "
            "JOIN version_sentences vs ON vs.version_id = v.id WHERE v.target_id = ? ORDER BY v.chain_seq",
            (target_id,),
        )
        return [VersionSentences(version(r), frozenset(unpack_ids(r["sentence_ids"]))) for r in rows]

    def sentence_texts(self, target_id: str, ids: Iterable[int]) -> dict[int, str]:
        rows = self._query(
            "SELECT id, text FROM sentences WHERE target_id = ? AND id {in_values}",
            (target_id, self._dialect.values(sorted(set(ids)))),
        )
        return {int(r["id"]): str(r["text"]) for r in rows}

    def sentence_ids(self, target_id: str, hashes: Iterable[str]) -> dict[str, int]:
        rows = self._query(
            "SELECT hash, id FROM sentences WHERE target_id = ? AND hash {in_values}",
            (target_id, self._dialect.values(sorted(set(hashes)))),
        )
        return {str(r["hash"]): int(r["id"]) for r in rows}

    def import_ledger(self, target_id: str) -> list[ImportLedgerEntry]:
        rows = self._query(
            "SELECT * FROM import_ledger WHERE target_id = ? ORDER BY recorded_at, ref", (target_id,)
        )
        return [ledger_entry(r) for r in rows]

    def relinks(self) -> list[Relink]:
        sql = self._dialect.sql
        with self._reads.consistent() as cursor:
            relinks = cursor.query(sql("SELECT * FROM chain_relinks ORDER BY target_id, id"))
            superseded = cursor.query(sql("SELECT * FROM chain_superseded ORDER BY relink_id, chain_seq"))
        return relinks_of(relinks, superseded)

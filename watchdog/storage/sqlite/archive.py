"""Storage, SQLite backend: ArchiveReader."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from watchdog.errors import NotFoundError, QueryError
from watchdog.models import (
    BlobReference,
    ChainEntry,
    ChainHead,
    ChangeRecord,
    Event,
    ImportLedgerEntry,
    Relink,
    SentenceHit,
    Snapshot,
    TargetState,
    Version,
    VersionSentences,
)
from watchdog.storage.blobs import BlobStore
from watchdog.storage.chain import ts
from watchdog.storage.interfaces import DEFAULT_CHANGE_KINDS
from watchdog.storage.records import (
    change,
    change_entry,
    event,
    int_or,
    ledger_entry,
    relinks_of,
    snapshot,
    target_state,
    version,
    version_entry,
)
from watchdog.storage.search import MAX_RESULTS, fts5_query, hit, parse_query, unpack_ids
from watchdog.storage.sqlite.connection import (
    Database,
    applied_migrations,
)

# --------------------------------------------------------------------------- the archive, read-only


class SqliteArchive:
    """ArchiveReader on a Database (the writer's connection, or a reader's own)."""

    def __init__(self, db: Database, blobs: BlobStore) -> None:
        self._db = db
        self._blobs = blobs

    def target_states(self) -> list[TargetState]:
        return [target_state(row) for row in self._db.query("SELECT * FROM targets ORDER BY id")]

    def target_state(self, target_id: str) -> TargetState | None:
        row = self._db.one("SELECT * FROM targets WHERE id = ?", (target_id,))
        return None if row is None else target_state(row)

    def versions(self, target_id: str) -> list[Version]:
        # chain order is recording order: imported history comes before the live versions
        sql = "SELECT * FROM versions WHERE target_id = ? ORDER BY chain_seq DESC"
        return [version(r) for r in self._db.query(sql, (target_id,))]

    def current_version(self, target_id: str) -> Version | None:
        row = self._db.one(
            "SELECT v.* FROM versions v JOIN targets t ON v.id = t.current_version WHERE t.id = ?",
            (target_id,),
        )
        return None if row is None else version(row)

    def version(self, version_id: str) -> Version:
        row = self._db.one("SELECT * FROM versions WHERE id = ?", (version_id,))
        if row is None:
            raise NotFoundError(f"no version {version_id!r} in the archive (see `history TARGET_ID`)")
        return version(row)

    def versions_with_text(self, target_id: str, text_hash: str) -> list[Version]:
        sql = "SELECT * FROM versions WHERE target_id = ? AND text_hash = ? ORDER BY seq DESC"
        return [version(r) for r in self._db.query(sql, (target_id, text_hash))]

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
        sql = "SELECT * FROM changes WHERE kind IN (%s)" % ",".join("?" * len(kinds))  # noqa: S608, UP031
        params: list[Any] = list(kinds)
        if target:
            sql, params = sql + " AND target_id = ?", [*params, target]
        if since:
            sql, params = sql + " AND detected_at >= ?", [*params, ts(since)]
        records = [change(r) for r in self._db.query(sql + " ORDER BY detected_at DESC, id DESC", params)]
        return [c for c in records if topic is None or topic in c.topics]

    def change(self, change_id: str) -> ChangeRecord:
        row = self._db.one("SELECT * FROM changes WHERE id = ?", (change_id,))
        if row is None:
            raise NotFoundError(f"no change {change_id!r} in the archive (see `changes`)")
        return change(row)

    def change_evidence(self, change_id: str) -> list[dict[str, Any]]:
        row = self._db.one("SELECT evidence FROM changes WHERE id = ?", (change_id,))
        return [] if row is None else list(json.loads(row[0]))

    def events(self, *, target: str | None = None) -> list[Event]:
        rows = self._db.query(
            "SELECT * FROM events WHERE (? IS NULL OR target_id = ?) ORDER BY at DESC, id DESC",
            (target, target),
        )
        return [event(r) for r in rows]

    def snapshot(self, snapshot_id: int) -> Snapshot:
        row = self._db.one("SELECT * FROM snapshots WHERE id = ?", (snapshot_id,))
        if row is None:
            raise NotFoundError(f"no snapshot {snapshot_id}")
        return snapshot(row)

    def snapshots(self, target_id: str, *, outcome: str | None = None) -> list[Snapshot]:
        rows = self._db.query(
            # by capture time: an import adds raw captures (Wayback) older than the live ones
            "SELECT * FROM snapshots WHERE target_id = ? AND (? IS NULL OR outcome = ?) "
            "ORDER BY fetched_at, id",
            (target_id, outcome, outcome),
        )
        return [snapshot(row) for row in rows]

    def latest_snapshots(self, target_id: str, count: int) -> list[Snapshot]:
        sql = "SELECT * FROM snapshots WHERE target_id = ? ORDER BY fetched_at DESC, id DESC LIMIT ?"
        return [snapshot(row) for row in self._db.query(sql, (target_id, count))]

    def snapshot_body(self, snapshot: Snapshot) -> bytes:
        return self._blobs.get(snapshot.body_hash)

    def migrations(self) -> list[str]:
        return applied_migrations(self._db)

    def chain_positions(self) -> dict[str, int]:
        rows = self._db.query(
            "SELECT id, chain_seq FROM versions UNION ALL SELECT id, chain_seq FROM changes"
        )
        return {str(row[0]): int(row[1]) for row in rows}

    def chain(self) -> list[ChainEntry]:
        with self._db.transaction(write=False):
            snapshots = {row["id"]: row for row in self._db.query("SELECT * FROM snapshots")}
            versions = self._db.query("SELECT * FROM versions ORDER BY target_id, chain_seq, id")
            changes = self._db.query("SELECT * FROM changes ORDER BY target_id, chain_seq, id")
        entries = [version_entry(row, snapshots) for row in versions]
        entries += [change_entry(row) for row in changes]
        return sorted(entries, key=lambda e: (e.target_id, e.chain_seq, e.id))

    def chain_heads(self) -> list[ChainHead]:
        rows = self._db.query("SELECT id, chain_head, chain_seq FROM targets ORDER BY id")
        return [ChainHead(row[0], str(row[1]), int_or(row[2], -1)) for row in rows]

    def blob_references(self) -> list[BlobReference]:
        with self._db.transaction(write=False):
            texts = self._db.query("SELECT id, text_hash FROM versions ORDER BY target_id, chain_seq")
            bodies = self._db.query("SELECT id, target_id, body_hash FROM snapshots ORDER BY id")
            alerts = self._db.query("SELECT event_id, channel_key, alert_hash FROM outbox ORDER BY id")
        return [
            *(BlobReference(str(r[1]), f"text of version {r[0]}", str(r[0])) for r in texts),
            *(BlobReference(str(r[2]), f"raw body of snapshot {r[0]} of {r[1]}") for r in bodies),
            *(BlobReference(str(r[2]), f"alert {r[0]} owed to channel {str(r[1])[:12]}") for r in alerts),
        ]

    # ----------------------------------------------------------------- the sentence index, imports, re-links

    def search(
        self, query: str, *, target: str | None = None, limit: int = 50, any_term: bool = False
    ) -> list[SentenceHit]:
        try:
            match = fts5_query(parse_query(query), any_term=any_term)
        except ValueError as exc:
            raise QueryError(str(exc)) from exc
        with self._db.transaction(write=False):
            rows = self._db.query(
                "SELECT s.id, s.target_id, s.text, s.first_version, s.last_version, fv.first_seen, "
                "lv.last_seen, t.current_version FROM sentences_fts f "
                "JOIN sentences s ON s.id = f.rowid JOIN targets t ON t.id = s.target_id "
                "JOIN versions fv ON fv.id = s.first_version JOIN versions lv ON lv.id = s.last_version "
                "WHERE sentences_fts MATCH ? AND (? IS NULL OR s.target_id = ?) "
                "ORDER BY f.rank, s.id LIMIT ?",
                (match, target, target, max(0, min(limit, MAX_RESULTS))),
            )
            current = self._sentences_of_versions({row["current_version"] for row in rows})
        return [hit(row, current.get(row["current_version"], frozenset())) for row in rows]

    def _sentences_of_versions(self, version_ids: set[str | None]) -> dict[str, frozenset[int]]:
        wanted = json.dumps(sorted(v for v in version_ids if v))
        rows = self._db.query(
            "SELECT version_id, ids FROM version_sentences "
            "WHERE version_id IN (SELECT value FROM json_each(?))",
            (wanted,),
        )
        return {row[0]: frozenset(unpack_ids(row[1])) for row in rows}

    def sentence_presence(self, target_id: str) -> list[VersionSentences]:
        rows = self._db.query(
            "SELECT v.*, vs.ids AS sentence_ids FROM versions v "
            "JOIN version_sentences vs ON vs.version_id = v.id WHERE v.target_id = ? ORDER BY v.chain_seq",
            (target_id,),
        )
        return [VersionSentences(version(row), frozenset(unpack_ids(row["sentence_ids"]))) for row in rows]

    def sentence_texts(self, target_id: str, ids: Iterable[int]) -> dict[int, str]:
        rows = self._db.query(
            "SELECT id, text FROM sentences WHERE target_id = ? AND id IN (SELECT value FROM json_each(?))",
            (target_id, json.dumps(sorted(set(ids)))),
        )
        return {int(row[0]): str(row[1]) for row in rows}

    def sentence_ids(self, target_id: str, hashes: Iterable[str]) -> dict[str, int]:
        rows = self._db.query(
            "SELECT hash, id FROM sentences WHERE target_id = ? AND hash IN (SELECT value FROM json_each(?))",
            (target_id, json.dumps(sorted(set(hashes)))),
        )
        return {str(row[0]): int(row[1]) for row in rows}

    def import_ledger(self, target_id: str) -> list[ImportLedgerEntry]:
        rows = self._db.query(
            "SELECT * FROM import_ledger WHERE target_id = ? ORDER BY recorded_at, ref", (target_id,)
        )
        return [ledger_entry(r) for r in rows]

    def relinks(self) -> list[Relink]:
        with self._db.transaction(write=False):
            relinks = self._db.query("SELECT * FROM chain_relinks ORDER BY target_id, id")
            superseded = self._db.query("SELECT * FROM chain_superseded ORDER BY relink_id, chain_seq")
        return relinks_of(relinks, superseded)

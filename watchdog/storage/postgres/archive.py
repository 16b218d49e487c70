"""Storage, PostgreSQL backend: ArchiveReader, on the pool (each read on its own) or inside one read-only
snapshot transaction (`PostgresStorage.reading()`: publish, verify, export)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from psycopg import sql

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
from watchdog.storage.interfaces import Blobs
from watchdog.storage.postgres.connection import Params, Query, Row, Session, applied_migrations
from watchdog.storage.postgres.search import ts_query
from watchdog.storage.records import (
    change,
    change_entry,
    event,
    ledger_entry,
    relinks_of,
    snapshot,
    target_state,
    version,
    version_entry,
)
from watchdog.storage.search import MAX_RESULTS, hit, parse_query, unpack_ids

DEFAULT_KINDS: tuple[str, ...] = ("change", "revert", "editorial", "capture", "imported")


class Reads(Protocol):
    """Where reads go: the pool (Database) or one transaction (Session)."""

    def query(self, sql: Query, params: Params = None) -> list[Row]: ...

    def one(self, sql: Query, params: Params = None) -> Row | None: ...

    def consistent(self) -> AbstractContextManager[Session]: ...


class PostgresArchive:
    """ArchiveReader of a PostgreSQL archive."""

    def __init__(self, reads: Reads, blobs: Blobs) -> None:
        self._reads = reads
        self._blobs = blobs

    def target_states(self) -> list[TargetState]:
        return [target_state(row) for row in self._reads.query("SELECT * FROM targets ORDER BY id")]

    def target_state(self, target_id: str) -> TargetState | None:
        row = self._reads.one("SELECT * FROM targets WHERE id = %s", (target_id,))
        return None if row is None else target_state(row)

    def versions(self, target_id: str) -> list[Version]:
        rows = self._reads.query(
            "SELECT * FROM versions WHERE target_id = %s ORDER BY seq DESC", (target_id,)
        )
        return [version(r) for r in rows]

    def current_version(self, target_id: str) -> Version | None:
        row = self._reads.one(
            "SELECT v.* FROM versions v JOIN targets t ON v.id = t.current_version WHERE t.id = %s",
            (target_id,),
        )
        return None if row is None else version(row)

    def version(self, version_id: str) -> Version:
        row = self._reads.one("SELECT * FROM versions WHERE id = %s", (version_id,))
        if row is None:
            raise NotFoundError(f"no version {version_id!r} in the archive (see `history TARGET_ID`)")
        return version(row)

    def versions_with_text(self, target_id: str, text_hash: str) -> list[Version]:
        rows = self._reads.query(
            "SELECT * FROM versions WHERE target_id = %s AND text_hash = %s ORDER BY seq DESC",
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
        kinds: Sequence[str] = DEFAULT_KINDS,
    ) -> list[ChangeRecord]:
        rows = self._reads.query(
            "SELECT * FROM changes WHERE kind = ANY(%s) AND (%s::text IS NULL OR target_id = %s) "
            "AND (%s::timestamptz IS NULL OR detected_at >= %s) "
            "AND (%s::text IS NULL OR topics ? %s) ORDER BY detected_at DESC, id DESC",
            (list(kinds), target, target, since, since, topic, topic),
        )
        return [change(r) for r in rows]

    def change(self, change_id: str) -> ChangeRecord:
        row = self._reads.one("SELECT * FROM changes WHERE id = %s", (change_id,))
        if row is None:
            raise NotFoundError(f"no change {change_id!r} in the archive (see `changes`)")
        return change(row)

    def change_evidence(self, change_id: str) -> list[dict[str, Any]]:
        row = self._reads.one("SELECT evidence FROM changes WHERE id = %s", (change_id,))
        return [] if row is None else list(row["evidence"])

    def events(self, *, target: str | None = None) -> list[Event]:
        rows = self._reads.query(
            "SELECT * FROM events WHERE (%s::text IS NULL OR target_id = %s) ORDER BY at DESC, id DESC",
            (target, target),
        )
        return [event(r) for r in rows]

    def snapshot(self, snapshot_id: int) -> Snapshot:
        row = self._reads.one("SELECT * FROM snapshots WHERE id = %s", (snapshot_id,))
        if row is None:
            raise NotFoundError(f"no snapshot {snapshot_id}")
        return snapshot(row)

    def snapshots(self, target_id: str, *, outcome: str | None = None) -> list[Snapshot]:
        rows = self._reads.query(
            # by capture time, as in SQLite: an import adds raw captures (Wayback) older than the live ones
            "SELECT * FROM snapshots WHERE target_id = %s AND (%s::text IS NULL OR outcome = %s) "
            "ORDER BY fetched_at, id",
            (target_id, outcome, outcome),
        )
        return [snapshot(row) for row in rows]

    def latest_snapshots(self, target_id: str, count: int) -> list[Snapshot]:
        rows = self._reads.query(
            # by capture time, as in SQLite: an import adds raw captures older than the live ones
            "SELECT * FROM snapshots WHERE target_id = %s ORDER BY fetched_at DESC, id DESC LIMIT %s",
            (target_id, count),
        )
        return [snapshot(row) for row in rows]

    def snapshot_body(self, snapshot: Snapshot) -> bytes:
        return self._blobs.get(snapshot.body_hash)

    def migrations(self) -> list[str]:
        with self._reads.consistent() as session:
            return applied_migrations(session)

    def chain_positions(self) -> dict[str, int]:
        rows = self._reads.query(
            "SELECT id, chain_seq FROM versions UNION ALL SELECT id, chain_seq FROM changes"
        )
        return {str(row["id"]): int(row["chain_seq"]) for row in rows}

    def chain(self) -> list[ChainEntry]:
        with self._reads.consistent() as session:
            snapshots = {row["id"]: row for row in session.query("SELECT * FROM snapshots")}
            versions = session.query("SELECT * FROM versions ORDER BY target_id, chain_seq, id")
            changes = session.query("SELECT * FROM changes ORDER BY target_id, chain_seq, id")
        entries = [version_entry(row, snapshots) for row in versions]
        entries += [change_entry(row) for row in changes]
        return sorted(entries, key=lambda e: (e.target_id, e.chain_seq, e.id))

    def chain_heads(self) -> list[ChainHead]:
        rows = self._reads.query("SELECT id, chain_head, chain_seq FROM targets ORDER BY id")
        return [ChainHead(row["id"], str(row["chain_head"]), int(row["chain_seq"])) for row in rows]

    def blob_references(self) -> list[BlobReference]:
        with self._reads.consistent() as session:
            texts = session.query("SELECT id, text_hash FROM versions ORDER BY target_id, chain_seq")
            bodies = session.query("SELECT id, target_id, body_hash FROM snapshots ORDER BY id")
            alerts = session.query("SELECT event_id, channel_key, alert_hash FROM outbox ORDER BY id")
        return [
            *(BlobReference(r["text_hash"], f"text of version {r['id']}", r["id"]) for r in texts),
            *(
                BlobReference(r["body_hash"], f"raw body of snapshot {r['id']} of {r['target_id']}")
                for r in bodies
            ),
            *(
                BlobReference(
                    r["alert_hash"], f"alert {r['event_id']} owed to channel {r['channel_key'][:12]}"
                )
                for r in alerts
            ),
        ]

    # ----------------------------------------------------------------- the sentence index, imports, re-links

    def search(
        self, query: str, *, target: str | None = None, limit: int = 50, any_term: bool = False
    ) -> list[SentenceHit]:
        try:
            terms = parse_query(query)
        except ValueError as exc:
            raise QueryError(str(exc)) from exc
        statement = sql.SQL(
            "SELECT s.id, s.target_id, s.text, s.first_version, s.last_version, fv.first_seen, lv.last_seen, "
            "t.current_version FROM sentences s JOIN targets t ON t.id = s.target_id "
            "JOIN versions fv ON fv.id = s.first_version JOIN versions lv ON lv.id = s.last_version "
            "WHERE to_tsvector('watchdog_words', s.text) @@ {q} "
            "AND (%(target)s::text IS NULL OR s.target_id = %(target)s) "
            "ORDER BY ts_rank(to_tsvector('watchdog_words', s.text), {q}) DESC, s.id LIMIT %(limit)s"
        ).format(q=ts_query(terms, any_term=any_term))
        params = {"target": target, "limit": max(0, min(limit, MAX_RESULTS))}
        with self._reads.consistent() as session:
            rows = session.query(statement, params)
            wanted = sorted({r["current_version"] for r in rows if r["current_version"]})
            current = {
                r["version_id"]: frozenset(unpack_ids(r["ids"]))
                for r in session.query(
                    "SELECT version_id, ids FROM version_sentences WHERE version_id = ANY(%s)", (wanted,)
                )
            }
        return [hit(r, current.get(r["current_version"], frozenset())) for r in rows]

    def sentence_presence(self, target_id: str) -> list[VersionSentences]:
        rows = self._reads.query(
            "SELECT v.*, vs.ids AS sentence_ids FROM versions v "
            "JOIN version_sentences vs ON vs.version_id = v.id WHERE v.target_id = %s ORDER BY v.chain_seq",
            (target_id,),
        )
        return [VersionSentences(version(r), frozenset(unpack_ids(r["sentence_ids"]))) for r in rows]

    def sentence_texts(self, target_id: str, ids: Iterable[int]) -> dict[int, str]:
        rows = self._reads.query(
            "SELECT id, text FROM sentences WHERE target_id = %s AND id = ANY(%s)",
            (target_id, sorted(set(ids))),
        )
        return {int(r["id"]): str(r["text"]) for r in rows}

    def sentence_ids(self, target_id: str, hashes: Iterable[str]) -> dict[str, int]:
        rows = self._reads.query(
            "SELECT hash, id FROM sentences WHERE target_id = %s AND hash = ANY(%s)",
            (target_id, sorted(set(hashes))),
        )
        return {str(r["hash"]): int(r["id"]) for r in rows}

    def import_ledger(self, target_id: str) -> list[ImportLedgerEntry]:
        rows = self._reads.query(
            "SELECT * FROM import_ledger WHERE target_id = %s ORDER BY recorded_at, ref", (target_id,)
        )
        return [ledger_entry(r) for r in rows]

    def relinks(self) -> list[Relink]:
        with self._reads.consistent() as session:
            relinks = session.query("SELECT * FROM chain_relinks ORDER BY target_id, id")
            superseded = session.query("SELECT * FROM chain_superseded ORDER BY relink_id, chain_seq")
        return relinks_of(relinks, superseded)

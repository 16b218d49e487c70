"""Storage, PostgreSQL backend: CheckStore. A check's state is read in one REPEATABLE READ snapshot; its
results are written in one transaction that first locks the target's row (the upsert's row lock), so two
nodes recording the same target never interleave: the hash chain's read-modify-write is serialised by the
database, and the second writer sees the first one's counters and is refused (ConflictError) when its check
was read before them. A check's write is refused too when another node holds the target's lease (it was
claimed away from this node: this node's lease ran out, or it was taken for dead)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from watchdog.errors import ConflictError
from watchdog.models import (
    ChangeRecord,
    CheckRecord,
    CheckState,
    Event,
    Recorded,
    Sequences,
    Snapshot,
    Target,
    Version,
)
from watchdog.storage.postgres.blobs import insert_blob
from watchdog.storage.postgres.cluster import HELD_ELSEWHERE
from watchdog.storage.postgres.connection import Database, Row, Session
from watchdog.storage.postgres.search import index_version
from watchdog.storage.records import sequences, snapshot, target_row, target_state, version
from watchdog.storage.write import TargetRow, write_check

_UPSERT = (
    "INSERT INTO targets (id, name, url) VALUES (%s, %s, %s) "
    "ON CONFLICT (id) DO UPDATE SET name = excluded.name, url = excluded.url"
)


# SQL built from module constants only (no input): the lease rule is written once, in cluster.py
_SET_DUE = (
    "UPDATE targets SET next_due_at = %(at)s, lease_node = NULL, lease_until = NULL "  # noqa: S608
    f"WHERE id = %(id)s AND (lease_node IS NULL OR NOT {HELD_ELSEWHERE})"
)
# The target's row, locked (an UPDATE locks what it touches) and read in one statement; name and URL
# follow the config. No row: the target is registered first (_UPSERT), then locked the same way.
_LOCK_TARGET = (
    "UPDATE targets SET name = %(name)s, url = %(url)s WHERE id = %(id)s "  # noqa: S608
    f"RETURNING *, coalesce({HELD_ELSEWHERE}, false) AS held"
)


class PostgresChecks:
    """CheckStore of a PostgreSQL archive. `node`: this node's name, recorded as the target's last_node."""

    def __init__(self, db: Database, node: str) -> None:
        self._db = db
        self._node = node

    def sync_targets(self, targets: Sequence[Target]) -> None:
        if not targets:
            return
        with self._db.transaction() as session:
            # in id order: two nodes syncing the same targets lock their rows in the same order (no deadlock)
            rows = sorted((t.id, t.name, t.url) for t in targets)
            session.many(_UPSERT, rows)

    def set_next_due(self, due: Mapping[str, datetime]) -> None:
        """The next due times, each releasing this node's lease on its target (a check ended). A target
        claimed by another node meanwhile keeps the due time and lease that node gives it."""
        if not due:
            return
        rows = [{"at": at, "id": target_id, "node": self._node} for target_id, at in sorted(due.items())]
        with self._db.transaction() as session:
            session.many(_SET_DUE, rows)

    # ----------------------------------------------------------------- the read

    def read_check(self, target_id: str, *, recent_since: datetime, snapshots: int) -> CheckState:
        with self._db.transaction(read_only=True) as session:
            row = session.one("SELECT * FROM targets WHERE id = %s", (target_id,))
            current = current_snapshot = None
            if row is not None and row["current_version"] is not None:
                found = session.one("SELECT * FROM versions WHERE id = %s", (row["current_version"],))
                current = version(found) if found else None
            if current is not None and current.snapshot_id is not None:
                snap = session.one("SELECT * FROM snapshots WHERE id = %s", (current.snapshot_id,))
                current_snapshot = snapshot(snap) if snap else None
            recent = session.query(
                "SELECT * FROM versions WHERE target_id = %s AND last_seen >= %s ORDER BY seq DESC",
                (target_id, recent_since),
            )
            latest = session.query(
                "SELECT * FROM snapshots WHERE target_id = %s ORDER BY id DESC LIMIT %s",
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

    # ----------------------------------------------------------------- the write

    def record_check(self, record: CheckRecord) -> Recorded:
        if record.status is not None and record.node is None:
            record = _with_node(record, self._node)
        with self._db.transaction() as session:
            _put_blobs(session, record)
            params = {"id": record.target_id, "name": record.name, "url": record.url, "node": record.node}
            row = session.one(_LOCK_TARGET, params)
            if row is None:  # a target no sync registered (an import, a test): registered now, then locked
                session.execute(_UPSERT, (record.target_id, record.name, record.url))
                row = session.one(_LOCK_TARGET, params)
            assert row is not None
            if record.status is not None:
                _check_lease(row, record)
            return write_check(record, target_row(row), Writer(session))


def _with_node(record: CheckRecord, node: str) -> CheckRecord:
    return replace(record, node=node)


def _check_lease(row: Row, record: CheckRecord) -> None:
    """A check's results count only from the node holding the target (or when nobody does)."""
    if row["held"]:
        raise ConflictError(
            f"{record.target_id} is being checked by node {row['lease_node']} (claimed until "
            f"{row['lease_until']:%H:%M:%S}): this node's check of it is dropped; nothing was written"
        )


def _put_blobs(session: Session, record: CheckRecord) -> None:
    if record.snapshot is not None:
        insert_blob(session, record.snapshot.capture.body)
    if record.version is not None:
        insert_blob(session, record.version.text.encode("utf-8"))
    for alert in record.alerts:
        insert_blob(session, alert.payload.encode("utf-8"))


class Writer:
    """RowWriter: the statements of one check's write, inside its transaction."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def insert_snapshot(self, row: Snapshot) -> int:
        found = self._session.one(
            "INSERT INTO snapshots (target_id, url, final_url, status, headers, body_hash, fetched_at, "
            "fetcher, config_fingerprint, outcome, reason_code, reason, text_hash, alternative) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (
                row.target_id,
                row.url,
                row.final_url,
                row.status,
                Jsonb([list(pair) for pair in row.headers]),
                row.body_hash,
                row.fetched_at,
                row.fetcher,
                row.config_fingerprint,
                row.outcome,
                row.reason_code,
                no_nul(row.reason),
                row.text_hash,
                row.alternative,
            ),
        )
        assert found is not None
        return int(found["id"])

    def snapshot(self, snapshot_id: int) -> Snapshot | None:
        found = self._session.one("SELECT * FROM snapshots WHERE id = %s", (snapshot_id,))
        return None if found is None else snapshot(found)

    def insert_version(self, row: Version, chain_seq: int) -> None:
        self._session.execute(
            "INSERT INTO versions (id, target_id, seq, text_hash, snapshot_id, first_seen, last_seen, "
            "technical, length, chain_seq, prev_hash, record_hash, source, recorded_at, provenance) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                row.id,
                row.target_id,
                row.seq,
                row.text_hash,
                row.snapshot_id,
                row.first_seen,
                row.last_seen,
                row.technical,
                row.length,
                chain_seq,
                row.prev_hash,
                row.record_hash,
                row.source,
                row.recorded_at,
                Jsonb(dict(row.provenance)) if row.provenance is not None else None,
            ),
        )

    def index_version(self, row: Version, text: str) -> None:
        index_version(self._session, row, text)

    def insert_change(self, row: ChangeRecord, evidence: Sequence[Mapping[str, Any]], chain_seq: int) -> None:
        self._session.execute(
            "INSERT INTO changes (id, target_id, seq, from_version, to_version, detected_at, kind, "
            "reverted_to, topics, severity, summary, evidence, chain_seq, prev_hash, record_hash, sections) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                row.id,
                row.target_id,
                row.seq,
                row.from_version,
                row.to_version,
                row.detected_at,
                row.kind,
                row.reverted_to,
                Jsonb(list(row.topics)),
                row.severity,
                row.summary,
                Jsonb([dict(item) for item in evidence]),
                chain_seq,
                row.prev_hash,
                row.record_hash,
                Jsonb(list(row.sections)),
            ),
        )

    def insert_event(self, row: Event) -> None:
        self._session.execute(
            "INSERT INTO events (id, target_id, kind, at, reason) VALUES (%s, %s, %s, %s, %s)",
            (row.id, row.target_id, row.kind, row.at, no_nul(row.reason)),
        )

    def touch(self, version_id: str, at: datetime) -> None:
        self._session.execute(
            "UPDATE versions SET last_seen = greatest(last_seen, %s) WHERE id = %s", (at, version_id)
        )

    def enqueue(self, event_id: str, channel_key: str, alert_hash: str, at: datetime) -> bool:
        added = self._session.execute(
            "INSERT INTO outbox (event_id, channel_key, alert_hash, created_at, next_attempt_at) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (event_id, channel_key) DO NOTHING",
            (event_id, channel_key, alert_hash, at, at),
        )
        return added > 0

    def alerted_text(self, target_id: str, text_hash: str) -> bool:
        found = self._session.one(
            "SELECT 1 AS hit FROM changes c JOIN versions v ON v.id = c.to_version "
            "WHERE c.target_id = %s AND v.text_hash = %s AND c.alerted LIMIT 1",
            (target_id, text_hash),
        )
        return found is not None

    def mark_alerted(self, change_id: str) -> None:
        self._session.execute("UPDATE changes SET alerted = true WHERE id = %s", (change_id,))

    def update_target(self, target_id: str, row: TargetRow) -> None:
        self._session.execute(
            "UPDATE targets SET current_version = %s, last_change_at = %s, failing = %s, chain_head = %s, "
            "chain_seq = %s, version_seq = %s, change_seq = %s, event_seq = %s, last_check_at = %s, "
            "last_status = %s, last_reason = %s, consecutive_failures = %s, etag = %s, last_modified = %s, "
            "last_node = %s WHERE id = %s",
            (
                row.current_version,
                row.last_change_at,
                row.failing,
                row.chain_head,
                row.chain_seq,
                row.version_seq,
                row.change_seq,
                row.event_seq,
                row.last_check_at,
                row.last_status,
                no_nul(row.last_reason),
                row.consecutive_failures,
                row.etag,
                row.last_modified,
                row.last_node,
                target_id,
            ),
        )


def no_nul(text: str | None) -> str | None:
    """PostgreSQL's text cannot hold NUL: a reason quoting a hostile server keeps U+FFFD in its place (the
    reasons are words for people, never hashed)."""
    return None if text is None else text.replace("\x00", "\ufffd")

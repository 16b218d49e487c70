"""Storage, one check's write, backend-neutral: what `CheckStore.record_check` does inside its transaction.

A backend locks the target's row, reads it (`TargetRow`) and hands it, with the check's record, to
`write_check`, which decides every row to add and the hash-chain links, in this order:

    snapshot -> version (chain) -> version seen again / made current -> change (chain) -> event
    -> outbox rows -> the change marked alerted -> the target's row, in one statement, last

The backend only runs the statements (`RowWriter`: insert this row, update that one). The ids and the
chain links are computed here once, so every backend assigns the same ids and hashes to the same check:
`copy-archive` moves an archive between backends and `verify` passes on both sides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from watchdog.deferred import deferred
from watchdog.errors import ConflictError, NotFoundError, StorageError
from watchdog.models import Sequences, Snapshot, Version
from watchdog.storage.chain import chain_hash, change_payload, sha256, version_payload

if TYPE_CHECKING:
    from watchdog import results
    from watchdog.results import (
        ChangeRecord,
        CheckRecord,
        Event,
        NewChange,
        NewSnapshot,
        NewVersion,
        OwedAlert,
        Recorded,
    )
else:
    results = deferred("watchdog.results")  # a check's results: after its requests


@dataclass
class TargetRow:
    """A target's row as one check's write reads it and writes it back (in one statement, at the end)."""

    current_version: str | None
    last_change_at: datetime | None
    consecutive_failures: int
    failing: bool
    chain_head: str
    chain_seq: int
    version_seq: int
    change_seq: int
    event_seq: int
    last_check_at: datetime | None = None
    last_status: str | None = None
    last_reason: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    last_node: str | None = None

    @property
    def sequences(self) -> Sequences:
        return Sequences(self.version_seq, self.change_seq, self.event_seq, self.chain_seq)

    def link(self, payload: dict[str, Any]) -> tuple[int, str, str]:
        """Append to the target's hash chain: (chain_seq, prev_hash, record_hash)."""
        self.chain_seq += 1
        prev = self.chain_head
        self.chain_head = chain_hash(prev, payload)
        return self.chain_seq, prev, self.chain_head


def insert_version(
    writer: RowWriter, target: TargetRow, row: Version, raw: Snapshot | None, text: str
) -> Version:
    """A new version chained onto `target`, inserted and indexed (checks and imports alike)."""
    chain_seq, prev, record_hash = target.link(version_payload(row, raw))
    row = replace(row, prev_hash=prev, record_hash=record_hash)
    writer.insert_version(row, chain_seq)
    writer.index_version(row, text)
    return row


def insert_change(writer: RowWriter, target: TargetRow, row: ChangeRecord, new: NewChange) -> ChangeRecord:
    """A new change chained onto `target` and inserted with its evidence (checks and imports alike)."""
    chain_seq, prev, record_hash = target.link(change_payload(row))
    row = replace(row, prev_hash=prev, record_hash=record_hash)
    writer.insert_change(row, [dict(item) for item in new.evidence], chain_seq)
    return row


class RowWriter(Protocol):
    """The statements of a check's write, run by a backend inside the write's transaction."""

    def insert_snapshot(self, row: Snapshot) -> int:
        """Insert the raw snapshot (its `id` ignored); the id assigned."""

    def snapshot(self, snapshot_id: int) -> Snapshot | None: ...

    def insert_version(self, row: Version, chain_seq: int) -> None: ...

    def index_version(self, row: Version, text: str) -> None:
        """The version's sentences into the sentence index (storage/search.py), in the same transaction."""

    def insert_change(
        self, row: ChangeRecord, evidence: Sequence[Mapping[str, Any]], chain_seq: int
    ) -> None: ...

    def insert_event(self, row: Event) -> None: ...

    def touch(self, version_id: str, at: datetime) -> None:
        """The version was seen again at `at` (its last_seen never moves back)."""

    def enqueue(self, event_id: str, channel_key: str, alert_hash: str, at: datetime) -> bool:
        """Owe the alert to the channel, once; False when that (event, channel) row exists already."""

    def alerted_text(self, target_id: str, text_hash: str) -> bool:
        """Has a change of the target *to* this text been alerted?"""

    def mark_alerted(self, change_id: str) -> None: ...

    def update_target(self, target_id: str, row: TargetRow) -> None: ...


def check_expected(record: CheckRecord, found: Sequences) -> None:
    """The counters a check was read with must still be the target's: else another writer recorded the
    target meanwhile, and this check's ids and chain links are stale (ConflictError, nothing written)."""
    if record.expected is not None and record.expected != found:
        raise ConflictError(
            f"the archive changed under the check of {record.target_id} (expected {record.expected}, "
            f"found {found}): another writer recorded it first; nothing was written"
        )


def write_check(record: CheckRecord, row: TargetRow, writer: RowWriter) -> Recorded:
    """Apply `record` to the target whose locked row is `row`, through `writer`; the ids assigned."""
    check_expected(record, row.sequences)
    return _CheckWrite(record, row, writer).apply()


class _CheckWrite:
    def __init__(self, record: CheckRecord, row: TargetRow, writer: RowWriter) -> None:
        self.record = record
        self.target = row
        self.writer = writer

    def apply(self) -> Recorded:
        record, writer = self.record, self.writer
        snapshot_row = self._snapshot(record.snapshot) if record.snapshot else None
        new_version = self._version(record.version, snapshot_row) if record.version else None
        if record.seen is not None:
            writer.touch(record.seen, record.at)
        if record.current is not None:
            self.target.current_version = record.current
        new_change = self._change(record.change, new_version) if record.change else None
        new_event = self._event() if record.event else None
        queued = {alert.event_id: self._enqueue(alert) for alert in record.alerts}
        if new_change is not None and queued.get(new_change.id):
            writer.mark_alerted(new_change.id)
            new_change = replace(new_change, alerted=True)
        self._finish_target()
        writer.update_target(record.target_id, self.target)
        return results.Recorded(
            snapshot_id=snapshot_row.id if snapshot_row else None,
            version=new_version,
            change=new_change,
            event=new_event,
            queued=queued,
        )

    def _snapshot(self, new: NewSnapshot) -> Snapshot:
        row = raw_snapshot(self.record.target_id, new)
        return replace(row, id=self.writer.insert_snapshot(row))

    def _version(self, new: NewVersion, new_snapshot: Snapshot | None) -> Version:
        target_id = self.record.target_id
        self.target.version_seq += 1
        seq = self.target.version_seq
        source_snapshot = new_snapshot
        if source_snapshot is None and new.snapshot_id is not None:
            source_snapshot = self.writer.snapshot(new.snapshot_id)
            if source_snapshot is None:
                raise NotFoundError(f"no snapshot {new.snapshot_id}")
        row = Version(
            id=f"{target_id}@v{seq}",
            target_id=target_id,
            seq=seq,
            text_hash=sha256(new.text.encode("utf-8")),
            snapshot_id=source_snapshot.id if source_snapshot else None,
            first_seen=new.seen_at,
            last_seen=new.seen_at,
            technical=new.technical,
            length=len(new.text),
            source=new.source,
            recorded_at=new.recorded_at,
            provenance=new.provenance,
        )
        row = insert_version(self.writer, self.target, row, source_snapshot, new.text)
        self.target.current_version = row.id
        return row

    def _change(self, new: NewChange, new_version: Version | None) -> ChangeRecord:
        target_id = self.record.target_id
        to_version = new.to_version or (new_version.id if new_version else None)
        if to_version is None:
            raise StorageError(f"a change of {target_id} needs a version to point to")
        self.target.change_seq += 1
        row = change_row(target_id, self.target.change_seq, new, to_version, self.record.at)
        row = insert_change(self.writer, self.target, row, new)
        self.target.last_change_at = row.detected_at
        return row

    def _event(self) -> Event:
        new = self.record.event
        assert new is not None
        self.target.event_seq += 1
        target_id = self.record.target_id
        row = results.Event(
            f"{target_id}@{new.kind}{self.target.event_seq}", target_id, new.kind, self.record.at, new.reason
        )
        self.writer.insert_event(row)
        self.target.failing = new.kind == "failing"
        return row

    def _enqueue(self, alert: OwedAlert) -> int:
        """Owe the alert to each channel, once: a second queueing of the same event/channel is ignored.
        Each distinct text alerts at most once (`once_per_text`)."""
        if alert.once_per_text is not None and self.writer.alerted_text(
            self.record.target_id, alert.once_per_text
        ):
            return 0
        digest = sha256(alert.payload.encode("utf-8"))
        added = [
            self.writer.enqueue(alert.event_id, key, digest, self.record.at) for key in alert.channel_keys
        ]
        return sum(added)

    def _finish_target(self) -> None:
        """The check's own columns: status, failure count, validators, node (a non-check keeps them)."""
        record, target = self.record, self.target
        if record.status is not None:
            target.last_check_at = record.at
            target.last_status = record.status
            target.last_reason = record.reason
            target.consecutive_failures = target.consecutive_failures + 1 if record.failed else 0
        if record.validators is not None:
            target.etag = record.validators.etag
            target.last_modified = record.validators.last_modified
        if record.node is not None:
            target.last_node = record.node


def raw_snapshot(target_id: str, new: NewSnapshot) -> Snapshot:
    """The raw snapshot's row (its id assigned by the backend on insert)."""
    capture = new.capture
    return Snapshot(
        id=0,
        target_id=target_id,
        url=capture.url,
        final_url=capture.final_url,
        status=capture.status,
        headers=capture.headers,
        body_hash=sha256(capture.body),
        fetched_at=capture.fetched_at,
        fetcher=capture.fetcher,
        config_fingerprint=new.fingerprint,
        outcome=new.outcome,
        reason_code=new.reason_code,
        reason=new.reason,
        text_hash=new.text_hash,
        alternative=new.alternative,
    )


def change_row(target_id: str, seq: int, new: NewChange, to_version: str, at: datetime) -> ChangeRecord:
    """A change's row before its chain links (a check's or an import's)."""
    return results.ChangeRecord(
        id=f"{target_id}@c{seq}",
        target_id=target_id,
        seq=seq,
        from_version=new.from_version,
        to_version=to_version,
        detected_at=at,
        kind=new.kind,
        topics=tuple(new.topics),
        severity=new.severity,
        summary=new.summary,
        alerted=False,
        reverted_to=new.reverted_to,
        sections=tuple(new.sections),
    )

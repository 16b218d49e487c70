"""Storage, PostgreSQL backend: rows -> models. psycopg already gives native values (timestamptz ->
aware datetime, jsonb -> lists and dicts, boolean -> bool); times are brought to UTC."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from watchdog.models import ChangeRecord, Event, Sequences, Snapshot, TargetState, Version
from watchdog.storage.write import TargetRow

Row = Mapping[str, Any]


def utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(UTC)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def target_state(row: Row) -> TargetState:
    return TargetState(
        id=row["id"],
        name=row["name"],
        url=row["url"],
        current_version=row["current_version"],
        last_check_at=utc(row["last_check_at"]),
        last_status=row["last_status"],
        last_reason=row["last_reason"],
        last_change_at=utc(row["last_change_at"]),
        consecutive_failures=int(row["consecutive_failures"]),
        failing=bool(row["failing"]),
        next_due_at=utc(row["next_due_at"]),
        etag=row["etag"],
        last_modified=row["last_modified"],
        last_node=row["last_node"],
    )


def target_row(row: Row) -> TargetRow:
    return TargetRow(
        current_version=row["current_version"],
        last_change_at=utc(row["last_change_at"]),
        consecutive_failures=int(row["consecutive_failures"]),
        failing=bool(row["failing"]),
        chain_head=row["chain_head"],
        chain_seq=int(row["chain_seq"]),
        version_seq=int(row["version_seq"]),
        change_seq=int(row["change_seq"]),
        event_seq=int(row["event_seq"]),
        last_check_at=utc(row["last_check_at"]),
        last_status=row["last_status"],
        last_reason=row["last_reason"],
        etag=row["etag"],
        last_modified=row["last_modified"],
        last_node=row["last_node"],
    )


def sequences(row: Row) -> Sequences:
    return target_row(row).sequences


def snapshot(row: Row) -> Snapshot:
    return Snapshot(
        id=int(row["id"]),
        target_id=row["target_id"],
        url=row["url"],
        final_url=row["final_url"],
        status=int(row["status"]),
        headers=tuple((str(k), str(v)) for k, v in row["headers"]),
        body_hash=row["body_hash"],
        fetched_at=_utc(row["fetched_at"]),
        fetcher=row["fetcher"],
        config_fingerprint=row["config_fingerprint"],
        outcome=row["outcome"],
        reason_code=row["reason_code"],
        reason=row["reason"],
        text_hash=row["text_hash"],
        alternative=row["alternative"],
    )


def version(row: Row) -> Version:
    return Version(
        id=row["id"],
        target_id=row["target_id"],
        seq=int(row["seq"]),
        text_hash=row["text_hash"],
        snapshot_id=row["snapshot_id"],
        first_seen=_utc(row["first_seen"]),
        last_seen=_utc(row["last_seen"]),
        technical=bool(row["technical"]),
        length=int(row["length"]),
        record_hash=row["record_hash"],
        prev_hash=row["prev_hash"],
        source=row["source"],
        recorded_at=utc(row["recorded_at"]),
        provenance=row["provenance"],
    )


def change(row: Row) -> ChangeRecord:
    return ChangeRecord(
        id=row["id"],
        target_id=row["target_id"],
        seq=int(row["seq"]),
        from_version=row["from_version"],
        to_version=row["to_version"],
        detected_at=_utc(row["detected_at"]),
        kind=row["kind"],
        topics=tuple(row["topics"]),
        severity=row["severity"],
        summary=row["summary"],
        alerted=bool(row["alerted"]),
        reverted_to=row["reverted_to"],
        record_hash=row["record_hash"],
        prev_hash=row["prev_hash"],
        sections=tuple(row["sections"]),
    )


def event(row: Row) -> Event:
    return Event(row["id"], row["target_id"], row["kind"], _utc(row["at"]), row["reason"])

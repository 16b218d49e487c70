"""Storage, SQLite backend: rows as the models of watchdog/models.py (and, for `verify`, rows that no longer
read back, as a problem to report rather than an exception)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from watchdog.models import (
    ChainEntry,
    ChangeRecord,
    Event,
    Sequences,
    Snapshot,
    TargetState,
    Version,
)

# --------------------------------------------------------------------------- rows -> models


def parse_ts(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


def json_or_none(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def target_state(row: sqlite3.Row) -> TargetState:
    return TargetState(
        id=row["id"],
        name=row["name"],
        url=row["url"],
        current_version=row["current_version"],
        last_check_at=parse_ts(row["last_check_at"]),
        last_status=row["last_status"],
        last_reason=row["last_reason"],
        last_change_at=parse_ts(row["last_change_at"]),
        consecutive_failures=int(row["consecutive_failures"]),
        failing=bool(row["failing"]),
        next_due_at=parse_ts(row["next_due_at"]),
        etag=row["etag"],
        last_modified=row["last_modified"],
        last_node=row["last_node"],
    )


def sequences(row: sqlite3.Row) -> Sequences:
    return Sequences(
        version=int(row["version_seq"]),
        change=int(row["change_seq"]),
        event=int(row["event_seq"]),
        chain=int(row["chain_seq"]),
    )


def snapshot(row: sqlite3.Row) -> Snapshot:
    headers = tuple((str(k), str(v)) for k, v in json.loads(row["headers"]))
    return Snapshot(
        id=int(row["id"]),
        target_id=row["target_id"],
        url=row["url"],
        final_url=row["final_url"],
        status=int(row["status"]),
        headers=headers,
        body_hash=row["body_hash"],
        fetched_at=dt(row["fetched_at"]),
        fetcher=row["fetcher"],
        config_fingerprint=row["config_fingerprint"],
        outcome=row["outcome"],
        reason_code=row["reason_code"],
        reason=row["reason"],
        text_hash=row["text_hash"],
        alternative=row["alternative"],
    )


def version(row: sqlite3.Row) -> Version:
    return Version(
        id=row["id"],
        target_id=row["target_id"],
        seq=int(row["seq"]),
        text_hash=row["text_hash"],
        snapshot_id=row["snapshot_id"],
        first_seen=dt(row["first_seen"]),
        last_seen=dt(row["last_seen"]),
        technical=bool(row["technical"]),
        length=int(row["length"]),
        record_hash=row["record_hash"],
        prev_hash=row["prev_hash"],
        source=row["source"],
        recorded_at=parse_ts(row["recorded_at"]),
        provenance=json_or_none(row["provenance"]),
    )


def change(row: sqlite3.Row) -> ChangeRecord:
    return ChangeRecord(
        id=row["id"],
        target_id=row["target_id"],
        seq=int(row["seq"]),
        from_version=row["from_version"],
        to_version=row["to_version"],
        detected_at=dt(row["detected_at"]),
        kind=row["kind"],
        topics=tuple(json.loads(row["topics"])),
        severity=row["severity"],
        summary=row["summary"],
        alerted=bool(row["alerted"]),
        reverted_to=row["reverted_to"],
        record_hash=row["record_hash"],
        prev_hash=row["prev_hash"],
        sections=tuple(json.loads(row["sections"])),
    )


def event(row: sqlite3.Row) -> Event:
    return Event(row["id"], row["target_id"], row["kind"], dt(row["at"]), row["reason"])


# A tampered row may no longer read back (a date that is no date, JSON that is not JSON): `verify` must
# name it, never crash on it.
UNREADABLE = (ValueError, TypeError, KeyError, IndexError, OverflowError)


def int_or(value: object, default: int) -> int:
    try:
        return int(str(value))
    except UNREADABLE:
        return default


def entry(kind: str, row: sqlite3.Row, **fields: Any) -> ChainEntry:
    return ChainEntry(
        kind=kind,
        id=str(row["id"]),
        target_id=str(row["target_id"]),
        chain_seq=int_or(row["chain_seq"], -1),
        prev_hash=str(row["prev_hash"]),
        record_hash=str(row["record_hash"]),
        **fields,
    )


def version_entry(row: sqlite3.Row, snapshots: Mapping[int, sqlite3.Row]) -> ChainEntry:
    try:
        read = version(row)
    except UNREADABLE as exc:
        return entry("version", row, problem=f"its row cannot be read ({exc}): altered")
    raw = snapshots.get(read.snapshot_id) if read.snapshot_id is not None else None
    try:
        return entry("version", row, version=read, snapshot=snapshot(raw) if raw is not None else None)
    except UNREADABLE as exc:
        problem = f"its raw snapshot {read.snapshot_id} cannot be read ({exc}): altered"
        return entry("version", row, version=read, problem=problem)


def change_entry(row: sqlite3.Row) -> ChainEntry:
    try:
        evidence = json.loads(row["evidence"])
        return entry("change", row, change=change(row), evidence=tuple(evidence))
    except UNREADABLE as exc:
        return entry("change", row, problem=f"its row cannot be read ({exc}): altered")

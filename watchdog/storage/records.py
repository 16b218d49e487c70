"""Storage, records: a stored row as the models of watchdog/models.py, whichever backend read it (and, for
`verify`, a row that no longer reads back, as a problem to report rather than an exception).

Each backend hands over its rows as they come (a mapping of column name to value): SQLite gives times as
ISO-8601 text, JSON as text and flags as 0/1; PostgreSQL gives aware datetimes, parsed JSON and booleans.
The readers below take either, so the mapping from columns to models is written once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from watchdog.deferred import deferred
from watchdog.models import Sequences, Snapshot, TargetState, Version
from watchdog.storage.write import TargetRow

if TYPE_CHECKING:
    from watchdog import archived, results
    from watchdog.archived import ChainEntry, ImportLedgerEntry, Relink
    from watchdog.results import ChangeRecord, Event
else:
    archived = deferred("watchdog.archived")  # verify's and imports' rows: never before a check's requests
    results = deferred("watchdog.results")  # stored changes and notices: never read before a check's requests


class Row(Protocol):
    """A stored row: its columns by name (a dict, a psycopg dict row, an sqlite3.Row)."""

    def __getitem__(self, key: str, /) -> Any: ...


# A tampered row may no longer read back (a date that is no date, JSON that is not JSON or of the wrong
# shape): `verify` must name it, never crash on it.
UNREADABLE = (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError)


def moment(value: str | datetime) -> datetime:
    """A stored time (ISO-8601 text, or a datetime) as an aware UTC datetime."""
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    if parsed.tzinfo is None:
        raise ValueError(f"a time without a time zone: {value!r}")
    return parsed.astimezone(UTC)


def moment_or_none(value: str | datetime | None) -> datetime | None:
    return None if value is None else moment(value)


def loaded(value: Any) -> Any:
    """A stored JSON value (text, or already parsed)."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def target_state(row: Row) -> TargetState:
    return TargetState(
        id=row["id"],
        name=row["name"],
        url=row["url"],
        current_version=row["current_version"],
        last_check_at=moment_or_none(row["last_check_at"]),
        last_status=row["last_status"],
        last_reason=row["last_reason"],
        last_change_at=moment_or_none(row["last_change_at"]),
        consecutive_failures=int(row["consecutive_failures"]),
        failing=bool(row["failing"]),
        next_due_at=moment_or_none(row["next_due_at"]),
        etag=row["etag"],
        last_modified=row["last_modified"],
        last_node=row["last_node"],
    )


def target_row(row: Row) -> TargetRow:
    """A target's row as one check's write reads it (storage/write.py)."""
    return TargetRow(
        current_version=row["current_version"],
        last_change_at=moment_or_none(row["last_change_at"]),
        consecutive_failures=int(row["consecutive_failures"]),
        failing=bool(row["failing"]),
        chain_head=row["chain_head"],
        chain_seq=int(row["chain_seq"]),
        version_seq=int(row["version_seq"]),
        change_seq=int(row["change_seq"]),
        event_seq=int(row["event_seq"]),
        last_check_at=moment_or_none(row["last_check_at"]),
        last_status=row["last_status"],
        last_reason=row["last_reason"],
        etag=row["etag"],
        last_modified=row["last_modified"],
        last_node=row["last_node"],
    )


def sequences(row: Row) -> Sequences:
    return Sequences(
        version=int(row["version_seq"]),
        change=int(row["change_seq"]),
        event=int(row["event_seq"]),
        chain=int(row["chain_seq"]),
    )


def snapshot(row: Row) -> Snapshot:
    return Snapshot(
        id=int(row["id"]),
        target_id=row["target_id"],
        url=row["url"],
        final_url=row["final_url"],
        status=int(row["status"]),
        headers=tuple((str(k), str(v)) for k, v in loaded(row["headers"])),
        body_hash=row["body_hash"],
        fetched_at=moment(row["fetched_at"]),
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
        first_seen=moment(row["first_seen"]),
        last_seen=moment(row["last_seen"]),
        technical=bool(row["technical"]),
        length=int(row["length"]),
        record_hash=row["record_hash"],
        prev_hash=row["prev_hash"],
        source=row["source"],
        recorded_at=moment_or_none(row["recorded_at"]),
        provenance=loaded(row["provenance"]),
    )


def change(row: Row) -> ChangeRecord:
    return results.ChangeRecord(
        id=row["id"],
        target_id=row["target_id"],
        seq=int(row["seq"]),
        from_version=row["from_version"],
        to_version=row["to_version"],
        detected_at=moment(row["detected_at"]),
        kind=row["kind"],
        topics=tuple(loaded(row["topics"])),
        severity=row["severity"],
        summary=row["summary"],
        alerted=bool(row["alerted"]),
        reverted_to=row["reverted_to"],
        record_hash=row["record_hash"],
        prev_hash=row["prev_hash"],
        sections=tuple(loaded(row["sections"])),
    )


def event(row: Row) -> Event:
    return results.Event(row["id"], row["target_id"], row["kind"], moment(row["at"]), row["reason"])


# --------------------------------------------------------------------------- the chain, for verify


def int_or(value: object, default: int) -> int:
    try:
        return int(str(value))
    except UNREADABLE:
        return default


def entry(kind: str, row: Row, **fields: Any) -> ChainEntry:
    return archived.ChainEntry(
        kind=kind,
        id=str(row["id"]),
        target_id=str(row["target_id"]),
        chain_seq=int_or(row["chain_seq"], -1),
        prev_hash=str(row["prev_hash"]),
        record_hash=str(row["record_hash"]),
        **fields,
    )


def version_entry(row: Row, snapshots: Mapping[int, Row]) -> ChainEntry:
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


def change_entry(row: Row) -> ChainEntry:
    try:
        evidence = loaded(row["evidence"])
        if not isinstance(evidence, list):
            raise TypeError("its evidence is not a list")
        return entry("change", row, change=change(row), evidence=tuple(evidence))
    except UNREADABLE as exc:
        return entry("change", row, problem=f"its row cannot be read ({exc}): altered")


def ledger_entry(row: Row) -> ImportLedgerEntry:
    return archived.ImportLedgerEntry(
        row["ref"], moment(row["recorded_at"]), row["outcome"], row["version_id"], row["reason"]
    )


def relinks_of(relinks: Sequence[Row], superseded: Sequence[Row]) -> list[Relink]:
    """The re-linkings of the chains (chain_relinks rows), each with the links it superseded."""
    links: dict[int, list[tuple[str, int, str, str]]] = {}
    for row in superseded:
        links.setdefault(int(row["relink_id"]), []).append(
            (str(row["record_id"]), int(row["chain_seq"]), str(row["prev_hash"]), str(row["record_hash"]))
        )
    return [
        archived.Relink(
            id=int(r["id"]),
            target_id=r["target_id"],
            at=moment(r["at"]),
            position=int(r["position"]),
            inserted=int(r["inserted"]),
            old_head=r["old_head"],
            old_count=int(r["old_count"]),
            superseded=tuple(links.get(int(r["id"]), ())),
        )
        for r in relinks
    ]

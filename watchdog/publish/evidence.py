"""Stage 7, publish: evidence. `verify` re-checks the whole archive; `export_jsonl` hands it to others.

What is checked (independently of the code that wrote it, from the raw rows):
- every blob a row references (the text of each version, the body of each raw snapshot, each owed alert):
  present, readable, and its SHA-256 (of the uncompressed bytes) equal to its name;
- every version and change record: its record hash, recomputed from its hashed fields and its prev_hash;
- every target's chain: positions 1..n with no gap, each prev_hash equal to the record hash of the record
  before it (versions and changes interleave by chain_seq), and the target's chain head equal to the last.

The hash rule, for anyone re-checking an export: record_hash = SHA-256 of the UTF-8 JSON of
{"prev": prev_hash, **payload}, keys sorted, separators "," and ":", non-ASCII unescaped. Each exported
line carries that `payload`, so a verifier needs nothing else (and the texts, with `--with-text`, to check
text hashes). Not covered by the chain (mutable by design): a version's last_seen, a change's `alerted` flag
and its classifier evidence.
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from watchdog.publish.archive import read_snapshot
from watchdog.store import BlobStore, Store, chain_hash, sha256


@dataclass(frozen=True, slots=True)
class VerifyReport:
    problems: tuple[str, ...]
    versions: int
    changes: int
    blobs: int

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        return f"ok: {self.versions} versions, {self.changes} changes, {self.blobs} blobs verified"


def verify(store: Store) -> list[str]:
    """Every problem found, each naming the record or blob; empty when the archive is intact."""
    return list(check_archive(store).problems)


def check_archive(store: Store) -> VerifyReport:
    with read_snapshot(store) as reader:
        rows = _Rows.read(reader.db)
        blobs = _BlobChecker(reader.blobs)
        problems = [*_check_blobs(rows, blobs), *_check_chains(rows)]
    return VerifyReport(tuple(problems), len(rows.versions), len(rows.changes), len(blobs.seen))


# --------------------------------------------------------------------------- raw rows


@dataclass(frozen=True)
class _Rows:
    targets: list[sqlite3.Row]
    versions: list[sqlite3.Row]
    changes: list[sqlite3.Row]
    snapshots: dict[int, sqlite3.Row]
    alerts: list[sqlite3.Row]

    @classmethod
    def read(cls, db: sqlite3.Connection) -> _Rows:
        def query(sql: str) -> list[sqlite3.Row]:
            return list(db.execute(sql).fetchall())

        return cls(
            targets=query("SELECT * FROM targets ORDER BY id"),
            versions=query("SELECT * FROM versions ORDER BY target_id, chain_seq"),
            changes=query("SELECT * FROM changes ORDER BY target_id, chain_seq"),
            snapshots={int(r["id"]): r for r in query("SELECT * FROM snapshots ORDER BY id")},
            alerts=query("SELECT id, event_id, channel_key, alert_hash FROM outbox ORDER BY id"),
        )


def version_payload(row: sqlite3.Row, snapshot: sqlite3.Row | None) -> dict[str, Any]:
    """The hashed fields of a version (as the store hashes them), from its row and its snapshot's."""
    provenance = None
    if snapshot is not None:
        provenance = {
            "body_hash": snapshot["body_hash"],
            "url": snapshot["final_url"],
            "status": int(snapshot["status"]),
            "fetched_at": snapshot["fetched_at"],
        }
    return {
        "type": "version",
        "id": row["id"],
        "target": row["target_id"],
        "seq": int(row["seq"]),
        "text_hash": row["text_hash"],
        "first_seen": row["first_seen"],
        "technical": bool(row["technical"]),
        "snapshot": provenance,
    }


def change_payload(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "type": "change",
        "id": row["id"],
        "target": row["target_id"],
        "seq": int(row["seq"]),
        "from": row["from_version"],
        "to": row["to_version"],
        "detected_at": row["detected_at"],
        "kind": row["kind"],
        "reverted_to": row["reverted_to"],
        "topics": _json_list(row["topics"]),
        "severity": row["severity"],
        "summary": row["summary"],
    }


def _json_list(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text  # not JSON any more: altered; the record hash will not match


# --------------------------------------------------------------------------- blobs


@dataclass
class _BlobChecker:
    blobs: BlobStore
    seen: dict[str, str | None] = field(default_factory=dict)  # digest -> problem (None: intact)

    def check(self, digest: str, what: str) -> str | None:
        if digest not in self.seen:
            self.seen[digest] = self._problem(digest)
        problem = self.seen[digest]
        return None if problem is None else f"blob {digest[:16]}… ({what}) {problem}"

    def _problem(self, digest: str) -> str | None:
        try:
            data = zlib.decompress(self.blobs.path(digest).read_bytes())
        except FileNotFoundError:
            return "is missing"
        except (OSError, zlib.error) as exc:
            return f"is unreadable ({exc})"
        actual = sha256(data)
        return None if actual == digest else f"was altered: its content now hashes to {actual[:16]}…"

    def text(self, digest: str) -> str | None:
        try:
            return zlib.decompress(self.blobs.path(digest).read_bytes()).decode("utf-8")
        except (OSError, zlib.error, UnicodeDecodeError):
            return None


def _check_blobs(rows: _Rows, blobs: _BlobChecker) -> Iterator[str]:
    for row in rows.versions:
        problem = blobs.check(row["text_hash"], f"text of version {row['id']}")
        if problem:
            yield problem
        elif (text := blobs.text(row["text_hash"])) is not None and len(text) != int(row["length"]):
            yield f"version {row['id']}: its length ({row['length']}) differs from its text's ({len(text)})"
    for snap in rows.snapshots.values():
        if problem := blobs.check(
            snap["body_hash"], f"raw body of snapshot {snap['id']} of {snap['target_id']}"
        ):
            yield problem
    for alert in rows.alerts:
        what = f"alert {alert['event_id']} owed to channel {alert['channel_key'][:12]}"
        if problem := blobs.check(alert["alert_hash"], what):
            yield problem


# --------------------------------------------------------------------------- the chains


@dataclass(frozen=True, slots=True)
class _Record:
    kind: str  # "version" | "change"
    id: str
    chain_seq: int
    prev_hash: str
    record_hash: str
    payload: dict[str, Any]
    row: sqlite3.Row


def _record(kind: str, row: sqlite3.Row, payload: dict[str, Any]) -> _Record:
    return _Record(kind, row["id"], int(row["chain_seq"]), row["prev_hash"], row["record_hash"], payload, row)


def _chains(rows: _Rows) -> dict[str, list[_Record]]:
    """target id -> its records (versions and changes) in chain order."""
    chains: dict[str, list[_Record]] = {t["id"]: [] for t in rows.targets}
    for row in rows.versions:
        snapshot = rows.snapshots.get(row["snapshot_id"]) if row["snapshot_id"] is not None else None
        chains.setdefault(row["target_id"], []).append(
            _record("version", row, version_payload(row, snapshot))
        )
    for row in rows.changes:
        chains.setdefault(row["target_id"], []).append(_record("change", row, change_payload(row)))
    for records in chains.values():
        records.sort(key=lambda r: (r.chain_seq, r.id))
    return chains


def _check_chains(rows: _Rows) -> Iterator[str]:
    yield from _check_references(rows)
    chains = _chains(rows)
    for target in rows.targets:
        records = chains[target["id"]]
        yield from _check_positions(target["id"], records, int(target["chain_seq"]))
        yield from _check_links(records)
        head = records[-1].record_hash if records else ""
        if target["chain_head"] != head:
            yield (
                f"target {target['id']}: its chain head {str(target['chain_head'])[:16]}… is not the hash of "
                f"its last record ({records[-1].id if records else 'none'}): records removed or rewritten"
            )


def _check_references(rows: _Rows) -> Iterator[str]:
    versions = {r["id"] for r in rows.versions}
    for row in rows.versions:
        if row["snapshot_id"] is not None and row["snapshot_id"] not in rows.snapshots:
            yield f"version {row['id']}: its raw snapshot {row['snapshot_id']} is missing"
    for row in rows.changes:
        for column in ("from_version", "to_version"):
            if row[column] not in versions:
                yield f"change {row['id']}: its {column.replace('_', ' ')} {row[column]} is missing"


def _check_positions(target_id: str, records: list[_Record], counter: int) -> Iterator[str]:
    """Positions 1..n, each once; n is also the target's own counter (so a deleted last record shows)."""
    positions = [r.chain_seq for r in records]
    missing = sorted(set(range(1, max([counter, *positions]) + 1)) - set(positions))
    if missing:
        yield f"target {target_id}: chain position(s) {', '.join(map(str, missing))} missing (deleted)"
    doubled = sorted({p for p in positions if positions.count(p) > 1})
    if doubled:
        yield f"target {target_id}: chain position(s) {', '.join(map(str, doubled))} used twice"


def _check_links(records: list[_Record]) -> Iterator[str]:
    previous: _Record | None = None
    for record in records:
        expected = previous.record_hash if previous else ""
        if record.prev_hash != expected:
            before = f"the record before it ({previous.id})" if previous else "the start of the chain"
            yield f"{record.kind} {record.id}: its prev_hash does not link to {before}"
        recomputed = chain_hash(record.prev_hash, record.payload)
        if recomputed != record.record_hash:
            yield (
                f"{record.kind} {record.id}: record hash mismatch (stored {record.record_hash[:16]}…, "
                f"recomputed {recomputed[:16]}…): a hashed field was altered"
            )
        previous = record


# --------------------------------------------------------------------------- export


def export_jsonl(store: Store, out: TextIO, *, include_text: bool = False) -> tuple[int, int]:
    """Every version and change, one JSON object per line, per target in chain order, with hashes and
    provenance (URL, fetch time, HTTP status, fetcher, raw body hash). Returns (versions, changes)."""
    with read_snapshot(store) as reader:
        rows = _Rows.read(reader.db)
        counts = [0, 0]
        for _target, records in sorted(_chains(rows).items()):
            for record in records:
                line = _export_line(rows, record, reader if include_text else None)
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
                counts[record.kind == "change"] += 1
    return counts[0], counts[1]


def _export_line(rows: _Rows, record: _Record, texts: Store | None) -> dict[str, Any]:
    common = {
        "type": record.kind,
        "id": record.id,
        "chain_seq": record.chain_seq,
        "prev_hash": record.prev_hash,
        "record_hash": record.record_hash,
        "payload": record.payload,
    }
    row = record.row
    if record.kind == "change":
        return {**common, **_change_fields(row)}
    line = {**common, **_version_fields(row, rows.snapshots.get(row["snapshot_id"]))}
    if texts is not None:
        line["text"] = texts.get_text(row["text_hash"])
    return line


def _version_fields(row: sqlite3.Row, snapshot: sqlite3.Row | None) -> dict[str, Any]:
    provenance = None
    if snapshot is not None:
        provenance = {
            "id": int(snapshot["id"]),
            "url": snapshot["url"],
            "final_url": snapshot["final_url"],
            "status": int(snapshot["status"]),
            "fetched_at": snapshot["fetched_at"],
            "fetcher": snapshot["fetcher"],
            "body_hash": snapshot["body_hash"],
            "config_fingerprint": snapshot["config_fingerprint"],
        }
    return {
        "target": row["target_id"],
        "seq": int(row["seq"]),
        "text_hash": row["text_hash"],
        "length": int(row["length"]),
        "first_seen": row["first_seen"],
        "last_seen": row["last_seen"],
        "technical": bool(row["technical"]),
        "snapshot": provenance,
    }


def _change_fields(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "target": row["target_id"],
        "seq": int(row["seq"]),
        "kind": row["kind"],
        "from_version": row["from_version"],
        "to_version": row["to_version"],
        "reverted_to": row["reverted_to"],
        "detected_at": row["detected_at"],
        "topics": _json_list(row["topics"]),
        "severity": row["severity"],
        "summary": row["summary"],
        "alerted": bool(row["alerted"]),
        "evidence": _json_list(row["evidence"]),
    }

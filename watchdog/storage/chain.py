"""Storage, the hash chain: what a version or change record hashes, shared by the writer and `verify`.

Every version and change record of a target carries `prev_hash`, the record hash of the target's previous
record, so the archive is one hash chain per target:

    record_hash = SHA-256 of the UTF-8 JSON of {"prev": prev_hash, **payload},
                  keys sorted, separators "," and ":", non-ASCII unescaped

The payload of a version: type, id, target, seq, text_hash, first_seen, technical and its raw snapshot's
provenance (body_hash, final url, HTTP status, fetched_at; null without a snapshot). The second round added
three fields, each hashed ONLY when it differs from what every earlier record implicitly had, so records
written before it verify unchanged, and a live version hashes exactly as it always did:
- "source" when not "live" (an imported version: "ota", "wayback");
- "recorded_at" when set (an import: when its source recorded it);
- "provenance" when set (an import: its commit or capture id, as JSON).

The payload of a change: type, id, target, seq, from, to, detected_at, kind (any of the five kinds),
reverted_to, topics, severity, summary. Not hashed, by design (derived or mutable): a change's `sections`
and classifier evidence (recomputed from the two hashed texts by the diff and classify code), its `alerted`
flag, a version's last_seen, a snapshot's `alternative`, a target's state and `last_node`.

Timestamps are hashed as stored: ISO-8601 UTC with microseconds (`ts`).

Imported history (watchdog/importers) and the chain. A chain is in recording order: the versions an import
brings in (with the `imported` changes between them) come before the live ones, so reading a chain from
its start reads the document's history from its start. An import into a target that has no live record
yet simply appends. An import into a target whose live watch has begun puts its records where they belong,
before the first live version, and that moves every live record: a hash chain cannot grow at its start
without every later link changing. So the import, in its one transaction, re-links the live records (new
position, prev_hash and record_hash; their contents, ids and texts untouched), adds the change from the
last imported version to the first live one right after that version, and keeps the links it replaced
(`chain_superseded`, under one `chain_relinks` row naming the position, how many records it inserted, and
the head and length the chain had). Since the records' contents never change, the old links recompute from
the records as they are now: `verify` checks both the chain as it is and, for every re-link, the chain as
it was, so a head or record hash published before an import (an export, a citation) still proves exactly
the records it covered. Only records from the first live version on are ever re-linked: imports extend the
imported history forward (watchdog/importers says which source records they skip), never before it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from watchdog.errors import StorageError
from watchdog.models import Snapshot, Version

if TYPE_CHECKING:  # an annotation only: a stored change is built after a check's requests (results.py)
    from watchdog.results import ChangeRecord


def ts(moment: datetime) -> str:
    """Stored (and hashed) timestamp: ISO-8601 UTC with microseconds, so text order is time order."""
    if moment.tzinfo is None:
        raise StorageError("naive datetime given to the store (every time must be timezone-aware UTC)")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def chain_hash(prev_hash: str, payload: Mapping[str, Any]) -> str:
    """The record hash: SHA-256 of the canonical JSON of the record's hashed fields and its predecessor."""
    canonical = json.dumps(
        {"prev": prev_hash, **payload}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return sha256(canonical.encode("utf-8"))


def snapshot_provenance(snapshot: Snapshot | None) -> dict[str, Any] | None:
    if snapshot is None:
        return None
    return {
        "body_hash": snapshot.body_hash,
        "url": snapshot.final_url,
        "status": snapshot.status,
        "fetched_at": ts(snapshot.fetched_at),
    }


def version_payload(version: Version, snapshot: Snapshot | None) -> dict[str, Any]:
    """The hashed fields of a version (see the module docstring), with its raw snapshot's provenance."""
    payload: dict[str, Any] = {
        "type": "version",
        "id": version.id,
        "target": version.target_id,
        "seq": version.seq,
        "text_hash": version.text_hash,
        "first_seen": ts(version.first_seen),
        "technical": version.technical,
        "snapshot": snapshot_provenance(snapshot),
    }
    if version.source != "live":
        payload["source"] = version.source
    if version.recorded_at is not None:
        payload["recorded_at"] = ts(version.recorded_at)
    if version.provenance is not None:
        payload["provenance"] = dict(version.provenance)
    return payload


def change_payload(change: ChangeRecord) -> dict[str, Any]:
    return {
        "type": "change",
        "id": change.id,
        "target": change.target_id,
        "seq": change.seq,
        "from": change.from_version,
        "to": change.to_version,
        "detected_at": ts(change.detected_at),
        "kind": change.kind,
        "reverted_to": change.reverted_to,
        "topics": list(change.topics),
        "severity": change.severity,
        "summary": change.summary,
    }

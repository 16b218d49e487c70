"""Stage 7, publish: evidence. `verify` re-checks the whole archive; `export_jsonl` hands it to others.

What is checked, from the records as stored (ArchiveReader.chain / chain_heads / blob_references, read in
one consistent snapshot), never from what the writer believes:
- every blob a row references (the text of each version, the body of each raw snapshot, each owed alert):
  present, readable, and its SHA-256 (of the uncompressed bytes) equal to its name;
- every version and change record: its record hash, recomputed from its hashed fields and its prev_hash;
- every target's chain: positions 1..n with no gap, each prev_hash equal to the record hash of the record
  before it (versions and changes interleave by chain_seq), and the target's chain head equal to the last;
- every re-link by an import (storage/chain.py): the links it superseded, recomputed from the records as
  they are now, chain from the record before the re-linked position to the head the import replaced, so a
  head or record hash published before an import still proves the same records.

The hash rule (storage/chain.py), for anyone re-checking an export: record_hash = SHA-256 of the UTF-8 JSON
of {"prev": prev_hash, **payload}, keys sorted, separators "," and ":", non-ASCII unescaped. Each exported
line carries that `payload`, so a verifier needs nothing else (and the texts, with `--with-text`, to check
text hashes). Not covered by the chain (mutable or derived by design): a version's last_seen, a change's
`alerted` flag, its classifier evidence and its sections.

Anchoring: a chain verifies on its own, so whoever can write the archive could rewrite history and recompute
every hash, trim the newest records, or delete a target, and `verify` would still pass. The chain heads
(each target's last record hash and record count, `chain_heads_json`) are published after every cycle
(feeds/chain-heads.json, site/chain-heads.json) and exported on demand (`export --chain-heads FILE`); anyone
who kept a copy checks the archive against it (`verify --against FILE`, `check_anchor`): every target of the
copy must still exist, hold at least as many records, and its record at the copy's position must hash to
the copy's head. An archive that only grew since passes, and so does one into which history was imported
before its live records (its re-link keeps the links the copy saw; see above).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from watchdog.archived import ChainEntry, ChainHead, Relink
from watchdog.errors import AnchorError
from watchdog.models import Snapshot, Version
from watchdog.results import ChangeRecord
from watchdog.storage.chain import chain_hash, change_payload, ts, version_payload
from watchdog.storage.interfaces import ArchiveReader, Blobs, Storage


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


def verify(store: Storage) -> list[str]:
    """Every problem found, each naming the record or blob; empty when the archive is intact."""
    return list(check_archive(store).problems)


def check_archive(store: Storage, *, against: Sequence[ChainHead] = ()) -> VerifyReport:
    """Every hash and link of the archive, and (`against`) the chain heads of an earlier copy."""
    with store.reading() as reader:
        entries, heads, relinks = reader.chain(), reader.chain_heads(), reader.relinks()
        blobs = _BlobChecker(store.blobs)
        problems = [
            *_check_blobs(reader, entries, blobs),
            *_check_chains(entries, heads),
            *_check_relinks(entries, relinks),
        ]
        problems += check_anchor(entries, against, relinks)
    versions = sum(1 for e in entries if e.kind == "version")
    return VerifyReport(tuple(problems), versions, len(entries) - versions, len(blobs.seen))


def payload(entry: ChainEntry) -> dict[str, Any] | None:
    """The hashed fields of a record (None when its row could not be read back)."""
    if entry.version is not None and entry.problem is None:
        return version_payload(entry.version, entry.snapshot)
    if entry.change is not None:
        return change_payload(entry.change)
    return None


# --------------------------------------------------------------------------- blobs


@dataclass
class _BlobChecker:
    blobs: Blobs
    seen: dict[str, str | None] = field(default_factory=dict)  # digest -> problem (None: intact)

    def check(self, digest: str, what: str) -> str | None:
        if digest not in self.seen:
            self.seen[digest] = self.blobs.problem(digest)
        problem = self.seen[digest]
        return None if problem is None else f"blob {digest[:16]}… ({what}) {problem}"


def _check_blobs(reader: ArchiveReader, entries: Sequence[ChainEntry], blobs: _BlobChecker) -> Iterator[str]:
    lengths = {e.id: e.version.length for e in entries if e.version is not None}
    for reference in reader.blob_references():
        problem = blobs.check(reference.digest, reference.what)
        if problem:
            yield problem
            continue
        version_id = reference.version_id
        if version_id is not None and version_id in lengths:
            text = blobs.blobs.get_text(reference.digest)
            if len(text) != lengths[version_id]:
                yield (
                    f"version {version_id}: its length ({lengths[version_id]}) differs from its text's "
                    f"({len(text)})"
                )


# --------------------------------------------------------------------------- the chains


def _chains(entries: Sequence[ChainEntry], heads: Sequence[ChainHead]) -> dict[str, list[ChainEntry]]:
    """target id -> its records (versions and changes) in chain order."""
    chains: dict[str, list[ChainEntry]] = {h.target_id: [] for h in heads}
    for entry in entries:
        chains.setdefault(entry.target_id, []).append(entry)
    return chains


def _check_chains(entries: Sequence[ChainEntry], heads: Sequence[ChainHead]) -> Iterator[str]:
    yield from _check_references(entries)
    chains = _chains(entries, heads)
    for head in heads:
        records = chains[head.target_id]
        yield from _check_positions(head.target_id, records, head.count)
        yield from _check_links(records)
        last = records[-1].record_hash if records else ""
        if head.head != last:
            yield (
                f"target {head.target_id}: its chain head {head.head[:16]}… is not the hash of "
                f"its last record ({records[-1].id if records else 'none'}): records removed or rewritten"
            )


def _check_references(entries: Sequence[ChainEntry]) -> Iterator[str]:
    versions = {e.id for e in entries if e.kind == "version"}
    for entry in entries:
        if entry.problem is not None:
            yield f"{entry.kind} {entry.id}: {entry.problem}"
        version = entry.version
        if version and version.snapshot_id is not None and entry.snapshot is None and not entry.problem:
            yield f"version {entry.id}: its raw snapshot {version.snapshot_id} is missing"
        if entry.change is not None:
            for name, value in (
                ("from version", entry.change.from_version),
                ("to version", entry.change.to_version),
            ):
                if value not in versions:
                    yield f"change {entry.id}: its {name} {value} is missing"


def _check_positions(target_id: str, records: list[ChainEntry], counter: int) -> Iterator[str]:
    """Positions 1..n, each once; n is also the target's own counter (so a deleted last record shows)."""
    positions = [r.chain_seq for r in records]
    missing = sorted(set(range(1, max([counter, *positions]) + 1)) - set(positions))
    if missing:
        yield f"target {target_id}: chain position(s) {', '.join(map(str, missing))} missing (deleted)"
    doubled = sorted({p for p in positions if positions.count(p) > 1})
    if doubled:
        yield f"target {target_id}: chain position(s) {', '.join(map(str, doubled))} used twice"


def _check_links(records: list[ChainEntry]) -> Iterator[str]:
    previous: ChainEntry | None = None
    for record in records:
        expected = previous.record_hash if previous else ""
        if record.prev_hash != expected:
            before = f"the record before it ({previous.id})" if previous else "the start of the chain"
            yield f"{record.kind} {record.id}: its prev_hash does not link to {before}"
        hashed = payload(record)
        recomputed = chain_hash(record.prev_hash, hashed) if hashed is not None else None
        if recomputed is not None and recomputed != record.record_hash:
            yield (
                f"{record.kind} {record.id}: record hash mismatch (stored {record.record_hash[:16]}…, "
                f"recomputed {recomputed[:16]}…): a hashed field was altered"
            )
        previous = record


def _check_relinks(entries: Sequence[ChainEntry], relinks: Sequence[Relink]) -> Iterator[str]:
    records = {e.id: e for e in entries}
    at_position = {(e.target_id, e.chain_seq): e for e in entries}
    for relink in relinks:
        before = at_position.get((relink.target_id, relink.position - 1))
        expected = before.record_hash if before is not None else ""
        yield from _check_superseded(relink, records, expected)


def _check_superseded(relink: Relink, records: dict[str, ChainEntry], expected: str) -> Iterator[str]:
    """The chain as it stood before the re-link: records at positions `position`..`old_count`, linked from
    the record before them (never moved since) to `old_head`."""
    name = f"target {relink.target_id}: the chain before the import of {relink.at:%Y-%m-%d %H:%M}"
    positions = [seq for _, seq, _, _ in relink.superseded]
    if positions != list(range(relink.position, relink.old_count + 1)):
        yield f"{name}: its superseded links do not cover positions {relink.position}..{relink.old_count}"
    for record_id, seq, prev, record_hash in relink.superseded:
        record = records.get(record_id)
        hashed = payload(record) if record is not None else None
        if hashed is None:
            yield f"{name}: record {record_id} (position {seq}) is missing or unreadable"
        elif prev != expected or chain_hash(prev, hashed) != record_hash:
            yield f"{name}: record {record_id} (position {seq}) no longer gives the hash it had"
        expected = record_hash
    if expected != relink.old_head:
        yield f"{name}: its links do not end in the head it had ({relink.old_head[:16]}…)"


# --------------------------------------------------------------------------- anchoring

HEADS_FORMAT = "policy-watchdog chain heads 1"


def chain_heads_json(heads: Sequence[ChainHead]) -> bytes:
    """The chain heads as published: deterministic (an unchanged archive gives the same bytes)."""
    body = {
        "format": HEADS_FORMAT,
        "targets": {h.target_id: {"head": h.head, "records": h.count} for h in heads},
    }
    return (json.dumps(body, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def read_anchor(data: bytes, source: str) -> list[ChainHead]:
    """The chain heads of a file written by `chain_heads_json`; AnchorError naming `source` otherwise."""
    try:
        body = json.loads(data.decode("utf-8"))
        if body.get("format") != HEADS_FORMAT:
            raise ValueError(f"its format is {body.get('format')!r}, not {HEADS_FORMAT!r}")
        return [_anchor_head(target_id, item) for target_id, item in sorted(body["targets"].items())]
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise AnchorError(f"{source}: not a chain-heads file ({exc})") from exc


def _anchor_head(target_id: str, item: dict[str, Any]) -> ChainHead:
    head, records = item["head"], item["records"]
    if not isinstance(head, str) or not isinstance(records, int) or isinstance(records, bool) or records < 0:
        raise ValueError(f"target {target_id!r}: head must be a string and records a count")
    return ChainHead(str(target_id), head, records)


def check_anchor(
    entries: Sequence[ChainEntry], anchor: Sequence[ChainHead], relinks: Sequence[Relink] = ()
) -> list[str]:
    """What an earlier copy of the chain heads says the archive has lost or rewritten (see the module
    docstring); empty when every anchored chain is still there, whole, with the same records. A head
    taken before an import re-linked the chain (storage/chain.py) still stands when the links that import
    superseded hold it: `_check_relinks` proves those links recompute from the records as they are now."""
    by_target: dict[str, dict[int, ChainEntry]] = {}
    for entry in entries:
        by_target.setdefault(entry.target_id, {})[entry.chain_seq] = entry
    superseded = {(r.target_id, seq, old) for r in relinks for _, seq, _, old in r.superseded}
    return [
        p
        for head in anchor
        if (head.target_id, head.count, head.head) not in superseded
        and (p := _anchor_problem(head, by_target.get(head.target_id)))
    ]


def _anchor_problem(head: ChainHead, records: dict[int, ChainEntry] | None) -> str | None:
    if not records:
        if head.count == 0:
            return None
        return f"target {head.target_id}: the anchor has {head.count} records, the archive none: deleted"
    if max(records) < head.count:
        return (
            f"target {head.target_id}: the anchor has {head.count} records, the archive {max(records)}: "
            "its newest records were removed"
        )
    at = records.get(head.count)
    if head.count and (at is None or at.record_hash != head.head):
        found = at.record_hash[:16] if at else "nothing"
        return (
            f"target {head.target_id}: record {head.count} is {found}…, the anchor says {head.head[:16]}…: "
            "the chain was rewritten"
        )
    return None


# --------------------------------------------------------------------------- export


def export_jsonl(store: Storage, out: TextIO, *, include_text: bool = False) -> tuple[int, int]:
    """Every version and change, one JSON object per line, per target in chain order, with hashes and
    provenance (URL, fetch time, HTTP status, fetcher, raw body hash). Returns (versions, changes)."""
    counts = [0, 0]
    with store.reading() as reader:
        for entry in reader.chain():
            line = _export_line(entry, reader if include_text else None)
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
            counts[entry.kind == "change"] += 1
    return counts[0], counts[1]


def _export_line(entry: ChainEntry, texts: ArchiveReader | None) -> dict[str, Any]:
    common: dict[str, Any] = {
        "type": entry.kind,
        "id": entry.id,
        "chain_seq": entry.chain_seq,
        "prev_hash": entry.prev_hash,
        "record_hash": entry.record_hash,
        "payload": payload(entry),
    }
    if entry.problem is not None:
        return {**common, "target": entry.target_id, "problem": entry.problem}
    if entry.change is not None:
        return {**common, **_change_fields(entry.change, entry.evidence)}
    assert entry.version is not None
    line = {**common, **_version_fields(entry.version, entry.snapshot)}
    if texts is not None:
        line["text"] = texts.text(entry.version.text_hash)
    return line


def _version_fields(version: Version, snapshot: Snapshot | None) -> dict[str, Any]:
    provenance = None
    if snapshot is not None:
        provenance = {
            "id": snapshot.id,
            "url": snapshot.url,
            "final_url": snapshot.final_url,
            "status": snapshot.status,
            "fetched_at": ts(snapshot.fetched_at),
            "fetcher": snapshot.fetcher,
            "body_hash": snapshot.body_hash,
            "config_fingerprint": snapshot.config_fingerprint,
        }
    return {
        "target": version.target_id,
        "seq": version.seq,
        "text_hash": version.text_hash,
        "length": version.length,
        "first_seen": ts(version.first_seen),
        "last_seen": ts(version.last_seen),
        "technical": version.technical,
        "source": version.source,
        "recorded_at": ts(version.recorded_at) if version.recorded_at else None,
        "provenance": dict(version.provenance) if version.provenance is not None else None,
        "snapshot": provenance,
    }


def _change_fields(change: ChangeRecord, evidence: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "target": change.target_id,
        "seq": change.seq,
        "kind": change.kind,
        "from_version": change.from_version,
        "to_version": change.to_version,
        "reverted_to": change.reverted_to,
        "detected_at": ts(change.detected_at),
        "topics": list(change.topics),
        "severity": change.severity,
        "summary": change.summary,
        "alerted": change.alerted,
        "sections": list(change.sections),
        "evidence": list(evidence),
    }

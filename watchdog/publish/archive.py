"""Stage 7, publish: the archive as the publishers read it (one consistent snapshot), and cached diffs.

`load_archive` reads every target, version, change and failure event from one consistent reader
(`Storage.reading()`: one read transaction on a connection of its own), so a page never mixes two states of
the archive while the daemon writes. Diffs are a
pure function of two texts (content-addressed blobs) and the diff code, so `DiffCache` keys them by the two
text hashes plus a fingerprint of that code: a new change costs one diff, not one per feed and page.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watchdog import __version__
from watchdog.models import (
    ChangeRecord,
    Classification,
    Event,
    Hunk,
    Segment,
    Snapshot,
    TargetState,
    TextDiff,
    TopicMatch,
    Version,
)
from watchdog.storage.files import write_atomically
from watchdog.storage.interfaces import ArchiveReader

log = logging.getLogger(__name__)

# C0 controls (but tab, LF, CR), DEL, C1 controls, surrogates and U+FFFE/U+FFFF are invalid in XML 1.0
# or a parse error in HTML: page text is hostile, so each becomes a visible stand-in instead of vanishing.
_CONTROL_PICTURES = {c: 0x2400 + c for c in range(0x20) if c not in (0x09, 0x0A, 0x0D)}
_REPLACEMENTS: dict[int, int] = {
    **_CONTROL_PICTURES,
    0x7F: 0x2421,
    **{c: 0xFFFD for c in range(0x80, 0xA0)},
    **{c: 0xFFFD for c in range(0xD800, 0xE000)},  # lone surrogates (never from UTF-8 blobs, but cheap)
    0xFFFE: 0xFFFD,
    0xFFFF: 0xFFFD,
}


_NEEDS_REPLACING = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def printable(text: str) -> str:
    """Text safe for XML and HTML text nodes: control characters shown as symbols (␀, ␛...), never raw."""
    # translate() with a large table is slow per character; almost no text needs it, and search() is fast
    return text.translate(_REPLACEMENTS) if _NEEDS_REPLACING.search(text) else text


def code_fingerprint(*modules: str) -> str:
    """SHA-256 of the named modules' source and the version: generated output is a function of both."""
    digest = hashlib.sha256(__version__.encode())
    for name in modules:
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec else None
        digest.update(name.encode())
        if origin and Path(origin).is_file():
            digest.update(Path(origin).read_bytes())
    return digest.hexdigest()


# --------------------------------------------------------------------------- the read model


@dataclass(frozen=True)
class Archive:
    """Everything the feeds and the site show, read at one instant. Sequences are newest first."""

    targets: tuple[TargetState, ...]
    versions: Mapping[str, Version]
    snapshots: Mapping[int, Snapshot]
    changes: tuple[ChangeRecord, ...]
    events: tuple[Event, ...]
    chain_seq: Mapping[str, int]  # record id (version or change) -> position in its target's chain
    versions_of: Mapping[str, tuple[Version, ...]]  # target id -> its versions, newest first
    changes_of: Mapping[str, tuple[ChangeRecord, ...]]  # target id -> its changes, newest first

    @classmethod
    def build(
        cls,
        *,
        targets: Sequence[TargetState],
        versions: Sequence[Version],
        snapshots: Mapping[int, Snapshot],
        changes: Sequence[ChangeRecord],
        events: Sequence[Event],
        chain_seq: Mapping[str, int],
    ) -> Archive:
        versions_of: dict[str, list[Version]] = {t.id: [] for t in targets}
        for version in sorted(versions, key=lambda v: v.seq, reverse=True):
            versions_of.setdefault(version.target_id, []).append(version)
        changes_of: dict[str, list[ChangeRecord]] = {t.id: [] for t in targets}
        for change in changes:
            changes_of.setdefault(change.target_id, []).append(change)
        return cls(
            targets=tuple(targets),
            versions={v.id: v for v in versions},
            snapshots=snapshots,
            changes=tuple(changes),
            events=tuple(events),
            chain_seq=chain_seq,
            versions_of={k: tuple(v) for k, v in versions_of.items()},
            changes_of={k: tuple(v) for k, v in changes_of.items()},
        )

    def target(self, target_id: str) -> TargetState | None:
        return next((t for t in self.targets if t.id == target_id), None)

    def introduced_by(self) -> dict[str, ChangeRecord]:
        """version id -> the (non-revert) change that brought that text in."""
        return {c.to_version: c for c in self.changes if c.kind == "change"}


def load_archive(store: ArchiveReader) -> Archive:
    """Read the whole archive (from `Storage.reading()` for a consistent view)."""
    targets = store.target_states()
    versions = [v for t in targets for v in store.versions(t.id)]
    snapshot_ids = sorted({v.snapshot_id for v in versions if v.snapshot_id is not None})
    return Archive.build(
        targets=targets,
        versions=versions,
        snapshots={i: store.snapshot(i) for i in snapshot_ids},
        changes=store.changes(),
        events=store.events(),
        chain_seq=store.chain_positions(),
    )


def change_evidence(store: ArchiveReader, change_id: str) -> tuple[dict[str, Any], ...]:
    return tuple(item for item in store.change_evidence(change_id) if isinstance(item, dict))


def matches_of(evidence: Sequence[Mapping[str, Any]]) -> tuple[TopicMatch, ...]:
    """A change's stored classifier evidence, back as TopicMatch values (malformed items skipped)."""
    found = []
    for item in evidence:
        side, hunk = item.get("side"), item.get("hunk")
        if (
            side in ("inserted", "deleted", "context")
            and isinstance(hunk, int)
            and not isinstance(hunk, bool)
        ):
            found.append(
                TopicMatch(
                    str(item.get("topic", "")),
                    str(item.get("pattern", "")),
                    side,
                    str(item.get("sentence", "")),
                    hunk,
                )
            )
    return tuple(found)


def classification_of(change: ChangeRecord, evidence: Sequence[Mapping[str, Any]]) -> Classification:
    return Classification(topics=change.topics, matches=matches_of(evidence), severity=change.severity)


# --------------------------------------------------------------------------- diffs, cached by content


def diff_cache_dir(storage_dir: Path) -> Path:
    """Where the diff cache of an archive lives: shared by the pipeline (which fills it when it records a
    change) and publishing (which reads it back)."""
    return storage_dir / "cache" / "diffs"


class DiffCache:
    """Diffs of (before text hash, after text hash), in memory and optionally on disk (best effort)."""

    def __init__(
        self,
        *,
        texts: Callable[[str], str],
        directory: Path | None = None,
        compute: Callable[[str, str], TextDiff] | None = None,
    ) -> None:
        self._texts = texts
        self._directory = directory
        self._compute = compute
        self._memory: dict[tuple[str, str], TextDiff] = {}
        self._salt = code_fingerprint("watchdog.diff", "watchdog.sections") if directory else ""
        self.computed = 0  # diffs actually computed (the rest came from the cache): the bench reports it

    def diff(self, before_hash: str, after_hash: str) -> TextDiff:
        key = (before_hash, after_hash)
        if key not in self._memory:
            self._memory[key] = self._load(key) or self._fresh(key)
        return self._memory[key]

    def _fresh(self, key: tuple[str, str]) -> TextDiff:
        compute = self._compute or _default_diff
        result = compute(self._texts(key[0]), self._texts(key[1]))
        self.computed += 1
        self._save(key, result)
        return result

    def _path(self, key: tuple[str, str]) -> Path | None:
        if self._directory is None:
            return None
        name = hashlib.sha256(f"{self._salt}\0{key[0]}\0{key[1]}".encode()).hexdigest()
        return self._directory / name[:2] / f"{name}.json"

    def _load(self, key: tuple[str, str]) -> TextDiff | None:
        path = self._path(key)
        if path is None or not path.is_file():
            return None
        try:
            return diff_from_json(json.loads(path.read_text("utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            log.debug("ignoring unreadable diff cache entry %s", path)
            return None  # a damaged cache entry is recomputed, never trusted

    def _save(self, key: tuple[str, str], value: TextDiff) -> None:
        path = self._path(key)
        if path is None:
            return
        data = json.dumps(diff_to_json(value), ensure_ascii=False).encode("utf-8")
        try:  # concurrent writers of one entry (pipeline, publishers) each use a temporary file of their own
            write_atomically(path, data)
        except OSError as exc:  # the cache only saves time: a read-only or full disk must not stop publishing
            log.debug("cannot cache a diff under %s: %s", self._directory, exc)


def _default_diff(before: str, after: str) -> TextDiff:
    from watchdog.diff import diff_texts

    return diff_texts(before, after)


def diff_to_json(value: TextDiff) -> dict[str, Any]:
    return {
        "hunks": [
            {
                "before": h.before,
                "after": h.after,
                "segments": [[s.op, s.text] for s in h.segments],
                "sentences_before": list(h.sentences_before),
                "sentences_after": list(h.sentences_after),
                "line_before": h.line_before,
                "line_after": h.line_after,
                "section": list(h.section),
                "anchor": h.anchor,
            }
            for h in value.hunks
        ],
        "inserted_chars": value.inserted_chars,
        "deleted_chars": value.deleted_chars,
        "truncated": value.truncated,
    }


def diff_from_json(data: dict[str, Any]) -> TextDiff:
    """Inverse of diff_to_json; raises TypeError/KeyError/ValueError on anything malformed."""
    hunks = tuple(_hunk(item) for item in data["hunks"])
    return TextDiff(hunks, _int(data["inserted_chars"]), _int(data["deleted_chars"]), bool(data["truncated"]))


def _hunk(item: dict[str, Any]) -> Hunk:
    return Hunk(
        before=_str(item["before"]),
        after=_str(item["after"]),
        segments=tuple(Segment(_int(op), _str(text)) for op, text in item["segments"]),
        sentences_before=tuple(_str(s) for s in item["sentences_before"]),
        sentences_after=tuple(_str(s) for s in item["sentences_after"]),
        line_before=_int(item["line_before"]),
        line_after=_int(item["line_after"]),
        section=tuple(_str(s) for s in item["section"]),
        anchor=_str(item["anchor"]),
    )


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value

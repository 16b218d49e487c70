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
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watchdog import __version__
from watchdog.diff import diff_texts
from watchdog.messages import (
    ChangeMessage,
    Classification,
    TextDiff,
    TopicMatch,
    diff_from_json,
    diff_to_json,
)
from watchdog.models import Snapshot, TargetState, Topic, Version
from watchdog.results import ChangeRecord, Event
from watchdog.storage.files import CACHE_FOLDER, write_atomically
from watchdog.storage.interfaces import ArchiveReader

log = logging.getLogger(__name__)


def code_fingerprint(*modules: str) -> str:
    """SHA-256 of the named modules' source and the version: generated output is a function of both. A
    package counts with every file under it (its modules and its templates)."""
    digest = hashlib.sha256(__version__.encode())
    for name in modules:
        spec = importlib.util.find_spec(name)
        digest.update(name.encode())
        for path in _source_files(spec):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _source_files(spec: importlib.machinery.ModuleSpec | None) -> list[Path]:
    if spec is None:
        return []
    if spec.submodule_search_locations:
        return sorted(
            p
            for folder in spec.submodule_search_locations
            for p in Path(folder).rglob("*")
            if p.is_file() and p.suffix in (".py", ".html")
        )
    return [Path(spec.origin)] if spec.origin and Path(spec.origin).is_file() else []


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


def full_texts_dir(storage_dir: Path) -> Path:
    """Where the version pages' full texts, rendered once per text, are kept (publish/site.py, FullTexts)."""
    return storage_dir / CACHE_FOLDER / "full-texts"


def templates_cache_dir(storage_dir: Path) -> Path:
    """Where the templates' compiled code is kept (render/html.py, keep_compiled)."""
    return storage_dir / CACHE_FOLDER / "templates"


def diff_cache_dir(storage_dir: Path) -> Path:
    """Where the diff cache of an archive lives: shared by the pipeline (which fills it when it records a
    change) and publishing (which reads it back)."""
    return storage_dir / CACHE_FOLDER / "diffs"


# The diffs a DiffCache on disk read or computed (with diff_texts, the default), shared by the DiffCaches
# of the process on the same folder: `check` diffs a change in its pipeline, writes it there, then
# publishes it, and the publisher's cache would read the very same diff back from that folder (JSON,
# lossless, ~1 ms a policy). Keyed by the folder and the two text hashes (content-addressed: the same
# hashes are the same texts), used only while the entry is still in the folder (otherwise the diff is
# computed again, as before); the oldest go first past PROCESS_DIFFS (the daemon runs for months).
PROCESS_DIFFS = 64
_process_diffs: dict[tuple[str, str, str], TextDiff] = {}
_remembering = threading.Lock()  # `serve` renders compare pages in several threads: one evicts at a time


def _remember(key: tuple[str, str, str], diff: TextDiff) -> None:
    with _remembering:
        _process_diffs[key] = diff
        while len(_process_diffs) > PROCESS_DIFFS:
            del _process_diffs[next(iter(_process_diffs))]


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
            # only a cache on disk computing with diff_texts shares: a caller's own function is its own
            shared = (str(self._directory), *key) if self._directory and not self._compute else None
            found = self._held(shared, key) or self._load(key) or self._fresh(key)
            if shared:
                _remember(shared, found)
            self._memory[key] = found
        return self._memory[key]

    def _held(self, shared: tuple[str, str, str] | None, key: tuple[str, str]) -> TextDiff | None:
        """The process's diff of an entry still in the folder (what reading it back would give)."""
        found = _process_diffs.get(shared) if shared else None
        path = self._path(key) if found is not None else None
        return found if path is not None and path.is_file() else None

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
    return diff_texts(before, after)


# --------------------------------------------------------------------------- a change as a message


def change_message(
    change: ChangeRecord,
    *,
    target_name: str,
    url: str,
    diff: TextDiff,
    evidence: Sequence[Mapping[str, Any]],
    topics: Sequence[Topic],
) -> ChangeMessage:
    """A stored change as the format-neutral message the alerts carried: the feeds and the site render
    it with the same code, so the headline is the same in the e-mail subject, the feed and the page."""
    classification = classification_of(change, evidence)
    return ChangeMessage(
        event_id=change.id,
        kind=change.kind,
        target_id=change.target_id,
        target_name=target_name,
        url=url,
        from_version=change.from_version,
        to_version=change.to_version,
        detected_at=change.detected_at,
        diff=diff,
        classification=classification,
        topics=tuple(t for t in topics if t.id in change.topics),
    )

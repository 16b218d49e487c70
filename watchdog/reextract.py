"""`reextract`: rebuild a target's text from its stored raw snapshots (a technical step that never alerts).

After a selector or normaliser change, the text we would extract from the same raw page differs from the
stored version although Meta changed nothing. Re-extracting every accepted snapshot shows which texts the new
settings produce; when the latest snapshot's text differs from the current version, it is recorded as a
*technical* version (no change record, no alert), so the next real check is compared with text extracted
the new way and a selector fix never reaches anyone's inbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from watchdog.config import Config
from watchdog.extract import text_hash
from watchdog.models import CheckState, Snapshot, Target
from watchdog.pipeline import extract_and_validate
from watchdog.results import Capture, CheckRecord
from watchdog.storage.interfaces import ArchiveReader, Storage


@dataclass(frozen=True)
class ReextractReport:
    target_id: str
    snapshots: int
    differing: int
    rejected: int
    technical_version: str | None

    def __str__(self) -> str:
        added = (
            f"added technical version {self.technical_version}"
            if self.technical_version
            else "no new version"
        )
        return (
            f"{self.target_id}: re-extracted {self.snapshots} raw snapshot(s); {self.differing} now give a "
            f"different text, {self.rejected} would now be rejected; {added} (no alert sent)"
        )


def reextract(target: Target, config: Config, store: Storage) -> ReextractReport:
    archive = store.archive
    snapshots = archive.snapshots(target.id, outcome="accepted")
    state = store.checks.read_check(target.id, recent_since=datetime.max.replace(tzinfo=UTC), snapshots=0)
    texts_by_snapshot = {v.snapshot_id: v.text_hash for v in archive.versions(target.id)}
    differing = rejected = 0
    latest_text: str | None = None
    for snapshot in snapshots:
        capture = capture_of(archive, snapshot)
        rejection, document = extract_and_validate(target, config, capture, previous_length=None)
        if rejection is None and document is not None:
            differing += int(texts_by_snapshot.get(snapshot.id, document.text_hash) != document.text_hash)
            latest_text = document.text
        else:
            rejected += 1
    technical = None
    if (
        latest_text is not None
        and state.current is not None
        and archive.versions_with_text(target.id, text_hash(latest_text)) == []
    ):
        technical = _add_technical(target, store, state, latest_text, snapshots[-1])
    return ReextractReport(target.id, len(snapshots), differing, rejected, technical)


def _add_technical(target: Target, store: Storage, state: CheckState, text: str, snapshot: Snapshot) -> str:
    """The text the current settings give, as a technical version: no change record, no alert, and the
    target's check status is left alone (this is no check)."""
    record = CheckRecord.technical_reading(target, snapshot, text, state.sequences)
    done = store.checks.record_check(record)
    assert done.version is not None
    return done.version.id


def capture_of(archive: ArchiveReader, snapshot: Snapshot) -> Capture:
    """The raw page as it was fetched, rebuilt from the snapshot row and its blob."""
    return Capture.of_snapshot(snapshot, archive.snapshot_body(snapshot))

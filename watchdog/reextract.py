"""`reextract`: rebuild a target's text from its stored raw snapshots (a technical step that never alerts).

After a selector or normaliser change, the text we would extract from the same raw page differs from the
stored version although Meta changed nothing. Re-extracting every accepted snapshot shows which texts the new
settings produce; when the latest snapshot's text differs from the current version, it is recorded as a
*technical* version (no change record, no alert), so the next real check is compared with text extracted
the new way and a selector fix never reaches anyone's inbox.
"""

from __future__ import annotations

from dataclasses import dataclass

from watchdog.config import Config
from watchdog.models import Capture, Target
from watchdog.pipeline import extract_and_validate
from watchdog.store import Snapshot, Store


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


def reextract(target: Target, config: Config, store: Store) -> ReextractReport:
    snapshots = store.snapshots(target.id, outcome="accepted")
    current = store.current_version(target.id)
    texts_by_snapshot = {v.snapshot_id: v.text_hash for v in store.versions(target.id)}
    differing = rejected = 0
    latest_text: str | None = None
    for snapshot in snapshots:
        capture = capture_of(store, snapshot)
        rejection, document = extract_and_validate(target, config, capture, previous_length=None)
        if rejection is not None or document is None:
            rejected += 1
            continue
        differing += int(texts_by_snapshot.get(snapshot.id, document.text_hash) != document.text_hash)
        latest_text = document.text
    technical = None
    if (
        latest_text is not None
        and current is not None
        and store.versions_with_text(target.id, _hash(latest_text)) == []
    ):
        with store.transaction():
            technical = store.add_version(
                target.id,
                text=latest_text,
                snapshot_id=snapshots[-1].id,
                seen_at=snapshots[-1].fetched_at,
                technical=True,
            ).id
    return ReextractReport(target.id, len(snapshots), differing, rejected, technical)


def _hash(text: str) -> str:
    from watchdog.extract import text_hash

    return text_hash(text)


def capture_of(store: Store, snapshot: Snapshot) -> Capture:
    """The raw page as it was fetched, rebuilt from the snapshot row and its blob."""
    return Capture(
        target_id=snapshot.target_id,
        url=snapshot.url,
        final_url=snapshot.final_url,
        status=snapshot.status,
        headers=snapshot.headers,
        body=store.snapshot_body(snapshot),
        fetched_at=snapshot.fetched_at,
        fetcher=snapshot.fetcher,
    )

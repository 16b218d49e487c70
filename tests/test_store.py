"""The archive (watchdog/storage): one check read once and written once, the hash chain, the outbox and its
attempt log, on both backends (real SQLite files and blobs; a real PostgreSQL server); the SQLite writer
lock and crashes of a SQLite writer."""

from __future__ import annotations

import gzip
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import zlib
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.postgres import Backend
from watchdog.errors import LockedError, NotFoundError, StorageError
from watchdog.models import (
    Alert,
    Capture,
    CheckRecord,
    NewChange,
    NewEvent,
    NewSnapshot,
    NewVersion,
    OwedAlert,
    Recorded,
    Sequences,
    Target,
    Validators,
)
from watchdog.storage.chain import chain_hash, sha256
from watchdog.storage.interfaces import Storage
from watchdog.storage.sqlite import DB_NAME, MIGRATIONS, SqliteStorage
from watchdog.storage.sqlite.connection import open_writer

T0 = datetime(2025, 5, 28, 0, 30, tzinfo=UTC)
TARGET = Target(id="meta-privacy-policy", url="https://example.org/policy", name="Meta Privacy Policy")
EVER = T0 - timedelta(days=3650)


def capture(body: bytes = b"<html>policy</html>", at: datetime = T0) -> Capture:
    return Capture(TARGET.id, TARGET.url, TARGET.url, 200, (("content-type", "text/html"),), body, at, "http")


def alert(event_id: str, title: str = "t") -> Alert:
    return Alert(
        event_id=event_id,
        kind="change",
        target_id=TARGET.id,
        title=title,
        text="x",
        markdown="x",
        html="<p>x</p>",
        tags=("opt-out",),
        attachment_name="d.txt",
        attachment=b"\x00diff",
    )


def record(at: datetime = T0, status: str | None = "changed", **fields: object) -> CheckRecord:
    return CheckRecord(TARGET.id, TARGET.name, TARGET.url, at, status, **fields)  # type: ignore[arg-type]


def write(store: Storage, at: datetime = T0, status: str | None = "changed", **fields: object) -> Recorded:
    return store.checks.record_check(record(at, status, **fields))


def owed(event_id: str, keys: tuple[str, ...], *, once_per_text: str | None = None) -> OwedAlert:
    return OwedAlert(event_id, alert(event_id).to_json(), keys, once_per_text=once_per_text)


@pytest.fixture
def store(tmp_path: Path, backend: Backend) -> Iterator[Storage]:
    """The archive, on each backend (tests/support/postgres.py: a real PostgreSQL server)."""
    opened = backend.open(tmp_path / "archive")
    opened.checks.sync_targets([TARGET])
    yield opened
    opened.close()


def test_migrations_are_named_and_applied_once(tmp_path: Path) -> None:
    with SqliteStorage.open(tmp_path) as first:
        assert first.archive.migrations() == [m.name for m in MIGRATIONS]
    with SqliteStorage.open(tmp_path) as again:
        assert again.archive.migrations() == [m.name for m in MIGRATIONS]
    with closing(sqlite3.connect(tmp_path / DB_NAME)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == len(MIGRATIONS)


def test_one_writer_at_a_time_readers_welcome(tmp_path: Path) -> None:
    with SqliteStorage.open(tmp_path):
        with pytest.raises(LockedError, match="only one process may write"):
            SqliteStorage.open(tmp_path)
        with SqliteStorage.open(tmp_path, writer=False) as reader:
            assert reader.archive.target_states() == []
    SqliteStorage.open(tmp_path).close()  # released on close


def test_lock_is_released_when_the_holder_is_killed(tmp_path: Path) -> None:
    code = (
        "import pathlib, sys, time\nfrom watchdog.storage.sqlite import SqliteStorage\n"
        "s = SqliteStorage.open(pathlib.Path(sys.argv[1]))\nprint('locked', flush=True)\ntime.sleep(60)"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    ) as holder:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockedError, match=f"pid {holder.pid}"):
            SqliteStorage.open(tmp_path)
        holder.kill()
    SqliteStorage.open(tmp_path).close()


def test_a_check_is_read_once_and_written_once_with_the_hash_chain(store: Storage) -> None:
    first = store.checks.read_check(TARGET.id, recent_since=EVER, snapshots=2)
    assert (first.target and first.target.id, first.current, first.sequences) == (
        TARGET.id,
        None,
        Sequences(),
    )
    snap = NewSnapshot(capture(), "f", "accepted")
    v1 = write(store, status="new", snapshot=snap, version=NewVersion("old text\n", T0), expected=Sequences())
    assert v1.version is not None and v1.snapshot_id is not None
    state = store.checks.read_check(TARGET.id, recent_since=EVER, snapshots=2)
    assert state.current == v1.version and state.current_snapshot is not None
    assert (
        state.current_snapshot.body_hash == sha256(capture().body)
        and state.current_snapshot.id == v1.snapshot_id
    )
    assert state.sequences == Sequences(version=1, chain=1)
    later = T0 + timedelta(hours=1)
    predicted = (state.sequences.next_version_id(TARGET.id), state.sequences.next_change_id(TARGET.id))
    done = write(
        store,
        later,
        version=NewVersion("new text\n", later),
        change=NewChange(v1.version.id, "change", ("opt-out",), "high", "s", sections=("Heading › Sub",)),
        expected=state.sequences,
    )
    v2, change = done.version, done.change
    assert v2 is not None and change is not None
    assert (v1.version.id, v2.id, change.id) == (
        "meta-privacy-policy@v1",
        "meta-privacy-policy@v2",
        "meta-privacy-policy@c1",
    )
    assert (v2.id, change.id) == predicted, "the ids a check predicts from its state are the ids written"
    assert v1.version.prev_hash == "" and v2.prev_hash == v1.version.record_hash
    assert change.prev_hash == v2.record_hash and change.sections == ("Heading › Sub",)
    archive = store.archive
    assert archive.version(v2.id) == v2 and archive.change(change.id) == change
    assert archive.target_state(TARGET.id).current_version == v2.id  # type: ignore[union-attr]
    assert archive.version_text(v1.version.id) == "old text\n"
    assert [v.id for v in archive.versions(TARGET.id)] == [v2.id, v1.version.id]
    assert archive.changes(topic="opt-out") == [change] and archive.changes(topic="eu-pause") == []
    assert archive.changes(since=T0 + timedelta(hours=2)) == []
    expected = chain_hash(
        v2.record_hash,
        {
            "type": "change",
            "id": change.id,
            "target": TARGET.id,
            "seq": 1,
            "from": v1.version.id,
            "to": v2.id,
            "detected_at": "2025-05-28T01:30:00.000000+00:00",
            "kind": "change",
            "reverted_to": None,
            "topics": ["opt-out"],
            "severity": "high",
            "summary": "s",
        },
    )
    assert change.record_hash == expected, "sections are not hashed: a change hashes as it always did"


def test_a_write_whose_counters_moved_is_refused_and_leaves_nothing(store: Storage) -> None:
    stale = store.checks.read_check(TARGET.id, recent_since=EVER, snapshots=2).sequences
    write(store, status="new", version=NewVersion("first\n", T0), expected=stale)
    with pytest.raises(StorageError, match="changed under the check"):
        write(store, status="new", version=NewVersion("second\n", T0), expected=stale)
    assert [v.seq for v in store.archive.versions(TARGET.id)] == [1]


def test_unknown_ids_are_not_found(store: Storage) -> None:
    with pytest.raises(NotFoundError):
        store.archive.version("nope@v1")
    with pytest.raises(NotFoundError):
        store.archive.change("nope@c1")


def test_a_failed_write_leaves_nothing(store: Storage) -> None:
    dangling = NewChange("meta-privacy-policy@v9", "change")  # a version that does not exist: refused
    with pytest.raises(StorageError):
        write(
            store,
            snapshot=NewSnapshot(capture(), "f", "accepted"),
            version=NewVersion("x\n", T0),
            change=dangling,
        )
    assert store.archive.versions(TARGET.id) == [] and store.archive.snapshots(TARGET.id) == []
    state = store.archive.target_state(TARGET.id)
    assert state is not None and state.current_version is None and state.last_check_at is None


def test_a_revert_makes_an_earlier_version_current_again(store: Storage) -> None:
    v1 = write(store, status="new", version=NewVersion("a\n", T0)).version
    v2 = write(store, T0 + timedelta(hours=1), version=NewVersion("b\n", T0 + timedelta(hours=1))).version
    assert v1 is not None and v2 is not None
    back = T0 + timedelta(hours=2)
    revert = NewChange(v2.id, "revert", summary=f"reverted to {v1.id}", to_version=v1.id, reverted_to=v1.id)
    done = write(store, back, seen=v1.id, current=v1.id, change=revert)
    assert done.version is None and done.change is not None and done.change.to_version == v1.id
    assert store.archive.target_state(TARGET.id).current_version == v1.id  # type: ignore[union-attr]
    assert store.archive.version(v1.id).last_seen == back
    recent = store.checks.read_check(TARGET.id, recent_since=back, snapshots=2).recent
    assert [v.id for v in recent] == [v1.id], "only versions seen since recent_since"


def test_the_check_status_failures_events_and_validators(store: Storage) -> None:
    write(store, status="error", reason="down", failed=True)
    write(store, status="error", reason="down", failed=True, event=NewEvent("failing", "down"))
    state = store.checks.read_check(TARGET.id, recent_since=EVER, snapshots=2)
    assert (state.failures, state.failing, state.target.last_reason) == (2, True, "down")  # type: ignore[union-attr]
    assert (store.archive.failing(2), store.archive.failing(3)) == ([TARGET.id], []), (
        "the status line's count"
    )
    assert state.sequences.next_event_id(TARGET.id, "recovered") == f"{TARGET.id}@recovered2"
    done = write(
        store,
        status="unchanged",
        event=NewEvent("recovered", "capture accepted again"),
        validators=Validators('"e1"', "Wed, 28 May 2025 00:30:00 GMT"),
    )
    assert done.event is not None and done.event.id == f"{TARGET.id}@recovered2"
    state = store.checks.read_check(TARGET.id, recent_since=EVER, snapshots=2)
    assert (state.failures, state.failing) == (0, False)
    assert store.archive.failing(1) == []
    assert state.target and (state.target.etag, state.target.last_status) == ('"e1"', "unchanged")
    assert [e.kind for e in store.archive.events(target=TARGET.id)] == ["recovered", "failing"]
    write(store, status=None, version=NewVersion("technical\n", T0, technical=True))
    assert store.archive.target_state(TARGET.id).last_status == "unchanged", "no check: status kept"  # type: ignore[union-attr]


def test_outbox_owes_each_alert_once_per_channel_in_order_and_logs_attempts(store: Storage) -> None:
    done = write(store, alerts=(owed("c1", ("mail", "slack")),))
    assert done.queued == {"c1": 2}
    assert write(store, alerts=(owed("c1", ("mail",)), owed("c2", ("mail",)))).queued == {"c1": 0, "c2": 1}
    outbox = store.outbox
    pending = outbox.pending_deliveries(T0)
    assert [(d.alert.event_id, d.channel_key) for d in pending] == [
        ("c1", "mail"),
        ("c1", "slack"),
        ("c2", "mail"),
    ]
    assert pending[0].alert == alert("c1"), "the alert round-trips, attachment bytes included"
    outbox.mark_failed(pending[0].id, "down", T0 + timedelta(minutes=5), at=T0)
    outbox.mark_failed(pending[0].id, "timed out", T0 + timedelta(minutes=5), at=T0, outcome="unknown")
    outbox.mark_delivered(pending[1].id, T0)
    assert [d.id for d in outbox.pending_deliveries(T0)] == [pending[2].id]
    assert [d.id for d in outbox.pending_deliveries(T0 + timedelta(minutes=5))] == [
        pending[0].id,
        pending[2].id,
    ]
    assert outbox.pending_deliveries(T0 + timedelta(minutes=5))[0].attempts == 2
    assert [(a.outcome, a.error) for a in outbox.attempts(pending[0].id)] == [
        ("failed", "down"),
        ("unknown", "timed out"),
    ]
    assert [(a.outcome, a.at) for a in outbox.attempts(pending[1].id)] == [("delivered", T0)]
    assert sorted(outbox.deliveries_for("c1")) == [("mail", None, 2), ("slack", T0, 1)]


def test_each_distinct_text_alerts_at_most_once(store: Storage) -> None:
    v1 = write(store, status="new", version=NewVersion("a\n", T0)).version
    assert v1 is not None
    b = sha256(b"b\n")
    first = write(
        store,
        version=NewVersion("b\n", T0),
        change=NewChange(v1.id, "change"),
        alerts=(owed(f"{TARGET.id}@c1", ("mail",), once_per_text=b),),
    )
    assert first.change is not None and first.change.alerted and first.alerted(first.change.id)
    assert first.version is not None
    again = write(
        store,
        version=NewVersion("a\n", T0),
        change=NewChange(first.version.id, "change"),
        alerts=(owed(f"{TARGET.id}@c2", ("mail",), once_per_text=sha256(b"a\n")),),
    )
    assert again.change is not None and again.change.alerted, "a never alerted: alerted now"
    assert again.version is not None
    third = write(
        store,
        version=NewVersion("b\n", T0),
        change=NewChange(again.version.id, "change"),
        alerts=(owed(f"{TARGET.id}@c3", ("mail",), once_per_text=b),),
    )
    assert third.change is not None and not third.change.alerted and third.queued == {f"{TARGET.id}@c3": 0}
    assert not store.archive.change(third.change.id).alerted


def test_the_new_kinds_and_import_provenance(store: Storage) -> None:
    recorded = datetime(2024, 6, 14, tzinfo=UTC)
    imported = NewVersion("a\n", T0, source="ota", recorded_at=recorded, provenance={"commit": "abc123"})
    v1 = write(store, status=None, version=imported).version
    assert v1 is not None and (v1.source, v1.recorded_at, v1.provenance) == (
        "ota",
        recorded,
        {"commit": "abc123"},
    )
    assert store.archive.version(v1.id) == v1
    for kind in ("editorial", "capture", "imported"):
        done = write(store, status=None, version=NewVersion(f"{kind}\n", T0), change=NewChange(v1.id, kind))
        assert done.change is not None and store.archive.change(done.change.id).kind == kind
    assert {c.kind for c in store.archive.changes()} == {"editorial", "capture", "imported"}
    with pytest.raises(StorageError, match=r"(?i)check constraint"):
        write(store, status=None, version=NewVersion("x\n", T0), change=NewChange(v1.id, "rumour"))  # type: ignore[arg-type]


def test_a_snapshot_keeps_its_alternative_and_text_hash(store: Storage) -> None:
    snap = NewSnapshot(capture(), "f", "rejected", "too-short", "short", text_hash="t" * 64, alternative="2")
    done = write(store, status="rejected", failed=True, snapshot=snap)
    (kept,) = store.archive.snapshots(TARGET.id)
    assert (kept.id, kept.alternative, kept.text_hash, kept.reason_code) == (
        done.snapshot_id,
        "2",
        "t" * 64,
        "too-short",
    )
    assert store.checks.read_check(TARGET.id, recent_since=EVER, snapshots=2).latest_snapshots == (kept,)


def test_the_latest_snapshots_are_the_latest_captured_on_both_backends(store: Storage) -> None:
    """An import adds raw captures older than the live ones after them: "latest" (doctor's last rejected
    capture) is by capture time, on every backend alike."""
    live = write(
        store, status="rejected", failed=True, snapshot=NewSnapshot(capture(b"live"), "f", "rejected")
    )
    older = capture(b"from the wayback machine", at=T0 - timedelta(days=400))
    write(store, T0 - timedelta(days=400), status=None, snapshot=NewSnapshot(older, "f", "accepted"))
    (latest,) = store.archive.latest_snapshots(TARGET.id, 1)
    assert latest.id == live.snapshot_id


def test_a_blob_that_cannot_be_written_is_a_storage_error(tmp_path: Path) -> None:
    with SqliteStorage.open(tmp_path) as opened:
        # a regular file where the blob's directory should be: the write fails like a full or read-only disk
        text = "text that cannot be stored"
        digest = sha256(text.encode())
        (tmp_path / "blobs").mkdir(exist_ok=True)
        (tmp_path / "blobs" / digest[:2]).write_bytes(b"not a directory")
        with pytest.raises(StorageError, match="cannot write blob"):
            opened.blobs.put_text(text)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(text=st.text())
def test_the_store_round_trips_any_text(store: Storage, text: str) -> None:
    digest = store.blobs.put_text(text)
    assert store.blobs.get_text(digest) == text and store.blobs.problem(digest) is None


@pytest.mark.parametrize("level", range(10))
def test_blobs_stored_at_any_zlib_level_read_the_same(tmp_path: Path, level: int) -> None:
    """Blobs are now written at zlib level 1 (storage/blobs.py says why); those an archive holds from before,
    at level 6, or at any other level, read as they were and pass the integrity check."""
    body = (b"<html><p>We use public posts to train AI at Meta.</p>" * 500) + bytes(range(256))
    digest = sha256(body)
    with SqliteStorage.open(tmp_path) as opened:
        path = tmp_path / "blobs" / digest[:2] / digest
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(zlib.compress(body, level))
        assert opened.blobs.get(digest) == body and opened.blobs.problem(digest) is None
        assert opened.blobs.put(body) == digest  # already there: kept as it was
        assert path.read_bytes() == zlib.compress(body, level)


# real raw captures of Meta's pages (tests/fixtures/extract/SOURCES.md), as fetched
RAW_PAGES = [
    gzip.decompress(p.read_bytes()) for p in sorted(Path(__file__).parent.glob("fixtures/extract/*/*.gz"))
]


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(body=st.binary() | st.sampled_from(RAW_PAGES))
def test_a_raw_body_as_gzip_is_what_gzip_compress_writes_at_level_1(store: Storage, body: bytes) -> None:
    """The site's raw copies: the stored deflate stream reframed as a gzip file, byte for byte what
    gzip.compress(body, compresslevel=1, mtime=0) gives (real Meta pages, and any bytes), on each backend."""
    digest = store.blobs.put(body)
    as_gzip = store.blobs.get_gzip(digest)
    assert as_gzip == gzip.compress(body, compresslevel=1, mtime=0)
    assert gzip.decompress(as_gzip) == body


@pytest.mark.parametrize("level", range(10))
def test_a_blob_stored_at_any_zlib_level_gives_the_same_gzip_file(tmp_path: Path, level: int) -> None:
    """A blob from before level 1 (level 6), or at any level: compressed anew at level 1 when its stream is
    not level 1's; level 0's stored blocks carry level 1's header (RFC 1950 FLEVEL 0) and are reframed as
    they are, a gzip file of the same body."""
    body = RAW_PAGES[0]
    digest = sha256(body)
    with SqliteStorage.open(tmp_path) as opened:
        path = tmp_path / "blobs" / digest[:2] / digest
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(zlib.compress(body, level))
        as_gzip = opened.blobs.get_gzip(digest)
        assert gzip.decompress(as_gzip) == body
        assert (as_gzip == gzip.compress(body, compresslevel=1, mtime=0)) is (level > 0)


def test_a_damaged_blob_gives_no_gzip_file(tmp_path: Path) -> None:
    with SqliteStorage.open(tmp_path) as opened:
        digest = opened.blobs.put(b"<html>policy</html>")
        path = tmp_path / "blobs" / digest[:2] / digest
        path.write_bytes(path.read_bytes()[:-6])  # cut inside the stream: no valid deflate data
        with pytest.raises(StorageError, match="unreadable"):
            opened.blobs.get_gzip(digest)
        path.unlink()
        with pytest.raises(StorageError, match="missing"):
            opened.blobs.get_gzip(digest)


WRITER = textwrap.dedent("""
    import sys
    from datetime import UTC, datetime, timedelta
    from pathlib import Path
    from watchdog.models import CheckRecord, NewChange, NewVersion, Target
    from watchdog.storage.sqlite import SqliteStorage
    t = Target(id="t", url="https://example.org/", name="t")
    store = SqliteStorage.open(Path(sys.argv[1]))
    store.checks.sync_targets([t])
    previous = None
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for i in range(100000):
        at = start + timedelta(seconds=i)
        change = NewChange(previous, "change", summary=str(i)) if previous else None
        done = store.checks.record_check(CheckRecord(
            "t", "t", "https://example.org/", at, "changed",
            version=NewVersion(f"text number {i}\\n" * 200, at), change=change))
        previous = done.version.id
        if i == 5:
            print("writing", flush=True)
""")


@pytest.mark.parametrize("delay", [0.05, 0.2, 0.6], ids=["early", "middle", "late"])
def test_kill_9_while_writing_never_corrupts_the_archive(tmp_path: Path, delay: float) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    ) as writer:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
        time.sleep(delay)
        os.kill(writer.pid, signal.SIGKILL)
    assert integrity(tmp_path / DB_NAME) == "ok"
    with SqliteStorage.open(tmp_path) as reopened:
        archive = reopened.archive
        versions = archive.versions("t")
        changes = archive.changes(target="t")
        assert len(changes) == len(versions) - 1, "a version and its change are committed together"
        assert archive.target_state("t").current_version == versions[0].id  # type: ignore[union-attr]
        for version in versions:  # every referenced blob exists and matches its hash
            assert archive.version_text(version.id).startswith(f"text number {version.seq - 1}\n")
        assert versions[-1].prev_hash == ""
        for change in changes:  # each change follows its new version in the chain
            assert change.prev_hash == archive.version(change.to_version).record_hash


def integrity(path: Path) -> str:
    with closing(sqlite3.connect(path)) as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


def test_an_attempt_is_logged_before_the_send_and_completed_after(store: Storage) -> None:
    """Write-ahead: a send that never reports back (the process died mid-send) stays an unknown attempt,
    and the row is due again at the time given when it began."""
    write(store, alerts=(owed("c1", ("mail", "slack")), owed("c2", ("mail",))))
    outbox = store.outbox
    first, second, _third = outbox.pending_deliveries(T0)
    begun = outbox.begin_attempt(first.id, T0, retry_at=T0 + timedelta(minutes=5))
    assert [a.outcome for a in outbox.attempts(first.id)] == ["unknown"], "logged before the send"
    outbox.mark_delivered(first.id, T0, attempt=begun)
    assert [a.outcome for a in outbox.attempts(first.id)] == ["delivered"]
    crashed = outbox.begin_attempt(second.id, T0, retry_at=T0 + timedelta(minutes=5))
    assert crashed != begun
    (row,) = [d for d in outbox.all_pending() if d.id == second.id]
    assert (row.attempts, row.uncertain_sends, row.next_attempt_at) == (1, 1, T0 + timedelta(minutes=5))
    assert "sender stopped" in (outbox.attempts(second.id)[0].error or "")
    outbox.mark_failed(
        second.id, "timed out", T0 + timedelta(minutes=9), at=T0, outcome="unknown", attempt=crashed
    )
    (row,) = [d for d in outbox.all_pending() if d.id == second.id]
    assert (row.attempts, row.uncertain_sends, row.last_error) == (1, 1, "timed out")


def test_several_rows_delivered_by_one_message_count_together(store: Storage) -> None:
    """A digest is one send for several rows: each has its attempt begun and completed, all of them are
    marked delivered in one transaction, and marking them again changes nothing."""
    write(store, alerts=(owed("c1", ("mail",)), owed("c2", ("mail",)), owed("c3", ("mail",))))
    outbox = store.outbox
    first, second, third = outbox.pending_deliveries(T0)
    begun = {
        row.id: outbox.begin_attempt(row.id, T0, retry_at=T0 + timedelta(minutes=5))
        for row in (first, second)
    }
    outbox.mark_delivered_many([first.id, second.id], T0, attempts=begun)
    assert [d.id for d in outbox.all_pending()] == [third.id]
    for row in (first, second):
        assert [a.outcome for a in outbox.attempts(row.id)] == ["delivered"], "the begun attempt, completed"
    outbox.mark_delivered_many([first.id, second.id, third.id], T0 + timedelta(minutes=1))
    assert outbox.all_pending() == []
    assert [a.outcome for a in outbox.attempts(first.id)] == ["delivered"], "a delivered row is left alone"
    assert [a.outcome for a in outbox.attempts(third.id)] == ["delivered"], "without a begun attempt: logged"


def test_a_notice_no_check_produced_is_owed_once_per_channel(store: Storage) -> None:
    notice = OwedAlert("channel-failing@abc", alert("channel-failing@abc").to_json(), ("mail", "slack"))
    assert store.outbox.enqueue_notice(notice, at=T0) == 2
    assert store.outbox.enqueue_notice(notice, at=T0) == 0, "queued once"
    pending = store.outbox.pending_deliveries(T0)
    assert [(d.alert.event_id, d.channel_key) for d in pending] == [
        ("channel-failing@abc", "mail"),
        ("channel-failing@abc", "slack"),
    ]


def test_an_error_sqlite_already_undid_is_the_error_reported(tmp_path: Path) -> None:
    """After some errors (a full database or disk, an I/O error) SQLite undoes the whole transaction itself:
    the error reported is that one, not the failed ROLLBACK after it ("no transaction is active")."""
    db = open_writer(tmp_path / DB_NAME)
    try:
        db.execute("CREATE TABLE filler (data BLOB)")
        row = db.one("PRAGMA page_count")
        assert row is not None
        db.execute(f"PRAGMA max_page_count = {row[0] + 4}")  # a real limit of SQLite's: the database is full
        with pytest.raises(StorageError, match="database or disk is full"), db.transaction():
            for _ in range(16):
                db.execute("INSERT INTO filler VALUES (?)", (os.urandom(4096),))
        assert not db.connection.in_transaction
        db.execute("INSERT INTO filler VALUES (x'00')")  # the connection works on
    finally:
        db.close()

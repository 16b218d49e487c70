"""The archive: real SQLite files and blobs; migrations, writer lock, hash chain, outbox, crashes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watchdog.errors import LockedError, NotFoundError, StorageError
from watchdog.models import Alert, Capture, Target
from watchdog.store import DB_NAME, MIGRATIONS, Store, chain_hash

T0 = datetime(2025, 5, 28, 0, 30, tzinfo=UTC)
TARGET = Target(id="meta-privacy-policy", url="https://example.org/policy", name="Meta Privacy Policy")


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


@pytest.fixture
def store(tmp_path: Path) -> Store:
    opened = Store.open(tmp_path / "archive")
    opened.sync_targets([TARGET])
    yield opened  # type: ignore[misc]
    opened.close()


def test_migrations_are_named_and_applied_once(tmp_path: Path) -> None:
    with Store.open(tmp_path) as first:
        assert first.migrations() == [name for name, _ in MIGRATIONS]
    with Store.open(tmp_path) as again:
        assert again.migrate() == []
    with closing(sqlite3.connect(tmp_path / DB_NAME)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_one_writer_at_a_time_readers_welcome(tmp_path: Path) -> None:
    with Store.open(tmp_path):
        with pytest.raises(LockedError, match="only one process may write"):
            Store.open(tmp_path)
        with Store.open(tmp_path, writer=False) as reader:
            assert reader.target_states() == []
    Store.open(tmp_path).close()  # released on close


def test_lock_is_released_when_the_holder_is_killed(tmp_path: Path) -> None:
    code = (
        "import pathlib, sys, time\nfrom watchdog.store import Store\n"
        "s = Store.open(pathlib.Path(sys.argv[1]))\nprint('locked', flush=True)\ntime.sleep(60)"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    ) as holder:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockedError, match=f"pid {holder.pid}"):
            Store.open(tmp_path)
        holder.kill()
    Store.open(tmp_path).close()


def test_versions_changes_and_the_hash_chain(store: Store) -> None:
    with store.transaction():
        snap = store.add_snapshot(capture(), fingerprint="f", outcome="accepted")
        v1 = store.add_version(TARGET.id, text="old text\n", snapshot_id=snap, seen_at=T0, technical=False)
    with store.transaction():
        v2 = store.add_version(
            TARGET.id, text="new text\n", snapshot_id=None, seen_at=T0 + timedelta(hours=1), technical=False
        )
        change = store.add_change(
            TARGET.id,
            from_version=v1.id,
            to_version=v2.id,
            at=T0 + timedelta(hours=1),
            kind="change",
            topics=("opt-out",),
            severity="high",
            summary="s",
        )
    assert (v1.id, v2.id, change.id) == (
        "meta-privacy-policy@v1",
        "meta-privacy-policy@v2",
        "meta-privacy-policy@c1",
    )
    assert v1.prev_hash == "" and v2.prev_hash == v1.record_hash and change.prev_hash == v2.record_hash
    assert store.current_version(TARGET.id) == store.version(v2.id)
    assert store.version_text(v1.id) == "old text\n"
    assert [v.id for v in store.versions(TARGET.id)] == [v2.id, v1.id]
    assert store.changes(topic="opt-out") == [change] and store.changes(topic="eu-pause") == []
    assert store.changes(since=T0 + timedelta(hours=2)) == []
    expected = chain_hash(
        v2.record_hash,
        {
            "type": "change",
            "id": change.id,
            "target": TARGET.id,
            "seq": 1,
            "from": v1.id,
            "to": v2.id,
            "detected_at": "2025-05-28T01:30:00.000000+00:00",
            "kind": "change",
            "reverted_to": None,
            "topics": ["opt-out"],
            "severity": "high",
            "summary": "s",
        },
    )
    assert change.record_hash == expected


def test_unknown_ids_are_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        store.version("nope@v1")
    with pytest.raises(NotFoundError):
        store.change("nope@c1")


def test_a_failed_transaction_leaves_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.add_version(TARGET.id, text="x\n", snapshot_id=None, seen_at=T0, technical=False)
        raise RuntimeError("crash in the middle")
    assert store.versions(TARGET.id) == []
    assert store.target_state(TARGET.id).current_version is None  # type: ignore[union-attr]


def test_outbox_owes_each_alert_once_per_channel_in_order(store: Store) -> None:
    with store.transaction():
        assert store.enqueue(alert("c1"), ["mail", "slack"], now=T0) == 2
        assert store.enqueue(alert("c1"), ["mail"], now=T0) == 0  # same event, same channel: ignored
        store.enqueue(alert("c2"), ["mail"], now=T0)
    pending = store.pending_deliveries(T0)
    assert [(d.alert.event_id, d.channel_key) for d in pending] == [
        ("c1", "mail"),
        ("c1", "slack"),
        ("c2", "mail"),
    ]
    assert pending[0].alert == alert("c1"), "the alert round-trips, attachment bytes included"
    store.mark_failed(pending[0].id, "down", T0 + timedelta(minutes=5))
    store.mark_delivered(pending[1].id, T0)
    assert [d.id for d in store.pending_deliveries(T0)] == [pending[2].id]
    assert [d.id for d in store.pending_deliveries(T0 + timedelta(minutes=5))] == [
        pending[0].id,
        pending[2].id,
    ]
    assert store.pending_deliveries(T0 + timedelta(minutes=5))[0].attempts == 1


def test_failure_counting(store: Store) -> None:
    with store.transaction():
        assert store.record_check(TARGET.id, at=T0, status="error", reason="x", failed=True) == 1
        assert store.record_check(TARGET.id, at=T0, status="error", reason="x", failed=True) == 2
        assert store.record_check(TARGET.id, at=T0, status="new", reason=None, failed=False) == 0


def test_a_blob_that_cannot_be_written_is_a_storage_error(tmp_path: Path) -> None:
    with Store.open(tmp_path) as opened:
        # a regular file where the blob's directory should be: the write fails like a full or read-only disk
        text = "text that cannot be stored"
        from watchdog.store import sha256

        digest = sha256(text.encode())
        (tmp_path / "blobs").mkdir(exist_ok=True)
        (tmp_path / "blobs" / digest[:2]).write_bytes(b"not a directory")
        with pytest.raises(StorageError, match="cannot write blob"):
            opened.put_text(text)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(text=st.text())
def test_the_store_round_trips_any_text(store: Store, text: str) -> None:
    digest = store.put_text(text)
    assert store.get_text(digest) == text


WRITER = textwrap.dedent("""
    import sys
    from datetime import UTC, datetime, timedelta
    from pathlib import Path
    from watchdog.models import Target
    from watchdog.store import Store
    t = Target(id="t", url="https://example.org/", name="t")
    store = Store.open(Path(sys.argv[1]))
    store.sync_targets([t])
    previous = None
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for i in range(100000):
        with store.transaction():
            version = store.add_version("t", text=f"text number {i}\\n" * 200, snapshot_id=None,
                                        seen_at=start + timedelta(seconds=i), technical=False)
            if previous:
                store.add_change("t", from_version=previous, to_version=version.id, at=version.first_seen,
                                 kind="change", topics=(), severity="none", summary=str(i))
        previous = version.id
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
    with Store.open(tmp_path) as reopened:
        versions = reopened.versions("t")
        changes = reopened.changes(target="t")
        assert len(changes) == len(versions) - 1, "a version and its change are committed together"
        assert reopened.current_version("t") == versions[0]
        for version in versions:  # every referenced blob exists and matches its hash
            assert reopened.version_text(version.id).startswith(f"text number {version.seq - 1}\n")
        assert versions[-1].prev_hash == ""
        for change in changes:  # each change follows its new version in the chain
            assert change.prev_hash == reopened.version(change.to_version).record_hash


def integrity(path: Path) -> str:
    with closing(sqlite3.connect(path)) as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


def test_a_reader_upgrades_an_archive_from_an_older_release(tmp_path: Path) -> None:
    with closing(sqlite3.connect(tmp_path / DB_NAME)) as db:  # an archive made by the first release
        db.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
        for statement in MIGRATIONS[0][1].split(";"):
            if statement.strip():
                db.execute(statement)
        db.execute("INSERT INTO schema_migrations VALUES ('0001_initial', '2026-01-01')")
        db.execute("INSERT INTO targets (id, name, url) VALUES ('t', 't', 'https://x.org/')")
        db.execute(
            "INSERT INTO snapshots (target_id, url, final_url, status, headers, body_hash, fetched_at,"
            " fetcher, config_fingerprint, outcome) VALUES ('t', 'u', 'u', 200, '[]', 'h',"
            " '2026-01-01T00:00:00+00:00', 'http', 'f', 'accepted')"
        )
        db.commit()
    with Store.open(tmp_path, writer=False) as reader:
        assert reader.pending_migrations() == []
        assert reader.snapshots("t")[0].text_hash is None

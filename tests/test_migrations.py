"""Schema migrations (watchdog/storage/migrations): from an empty database, and in place from an archive the
first round's code wrote (tests/fixtures/archives/round1, see its SOURCES.md): nothing lost, every hash
still verifies, and new records chain onto the old ones. On SQLite the fixture's file itself; on a real
PostgreSQL (tests/support/postgres.py), a database at the first round's schema (its migrations 0001 and
0002) holding the same rows and blobs. PostgreSQL from an empty database: tests/test_cluster.py."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import zlib
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb

from watchdog.errors import StorageError
from watchdog.models import CheckRecord, NewChange, NewVersion
from watchdog.publish.evidence import check_archive
from watchdog.storage.lock import LOCK_NAME, WriterLock
from watchdog.storage.migrations import migrations, statements
from watchdog.storage.postgres import MIGRATIONS as PG_MIGRATIONS
from watchdog.storage.postgres import PostgresStorage
from watchdog.storage.sqlite import DB_NAME, MIGRATIONS, SqliteStorage
from watchdog.storage.sqlite import storage as sqlite_backend
from watchdog.storage.transfer import BLOB_COLUMNS
from watchdog.storage.transfer import COLUMNS as TRANSFER_COLUMNS
from watchdog.storage.transfer import TABLES as TRANSFER_TABLES

ROUND1 = Path(__file__).parent / "fixtures" / "archives" / "round1"
FIRST_ROUND = ["0001_initial", "0002_snapshot_text_hash"]
SECOND_ROUND_COLUMNS = {
    "versions": {"source", "recorded_at", "provenance"},
    "snapshots": {"alternative"},
    "targets": {"last_node"},
    "changes": {"sections"},
}


def columns(path: Path, table: str) -> set[str]:
    with closing(sqlite3.connect(path)) as db:
        return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(path)) as db:
        return list(db.execute(sql).fetchall())


def contents(db: Path) -> dict[str, list[tuple[object, ...]]]:
    """What the first round wrote, table by table (the columns it had)."""
    return {
        "versions": rows(
            db, "SELECT id, text_hash, record_hash, prev_hash, chain_seq FROM versions ORDER BY id"
        ),
        "changes": rows(db, "SELECT id, kind, alerted, record_hash, prev_hash FROM changes ORDER BY id"),
        "snapshots": rows(db, "SELECT id, outcome, reason_code, text_hash FROM snapshots ORDER BY id"),
        "outbox": rows(db, "SELECT id, event_id, attempts, delivered_at FROM outbox ORDER BY id"),
        "events": rows(db, "SELECT id, kind FROM events ORDER BY id"),
        "targets": rows(db, "SELECT id, current_version, chain_head, chain_seq FROM targets ORDER BY id"),
    }


@pytest.fixture
def round1(tmp_path: Path) -> Path:
    """A copy of the first round's archive (the fixture itself stays untouched)."""
    copy = tmp_path / "round1"
    shutil.copytree(ROUND1, copy)
    return copy


def test_migrations_are_sql_files_named_in_order() -> None:
    names = [m.name for m in migrations("sqlite")]
    assert names == sorted(names) and names[:2] == FIRST_ROUND and "0003_second_round" in names
    assert statements("-- a comment; with a semicolon\nCREATE TABLE t (a TEXT);\n\nDROP TABLE t;\n") == (
        "CREATE TABLE t (a TEXT)",
        "DROP TABLE t",
    )


def test_an_empty_database_gets_every_migration(tmp_path: Path) -> None:
    with SqliteStorage.open(tmp_path) as store:
        assert store.archive.migrations() == [m.name for m in MIGRATIONS]
    for table, wanted in SECOND_ROUND_COLUMNS.items():
        assert wanted <= columns(tmp_path / DB_NAME, table), table
    assert {"id", "outbox_id", "at", "outcome", "error"} <= columns(tmp_path / DB_NAME, "outbox_attempts")


def test_the_first_rounds_archive_is_upgraded_in_place(round1: Path) -> None:
    db = round1 / DB_NAME
    assert [r[0] for r in rows(db, "SELECT name FROM schema_migrations ORDER BY name")] == FIRST_ROUND
    before = contents(db)
    with SqliteStorage.open(round1) as store:
        assert store.archive.migrations() == [m.name for m in MIGRATIONS]
        assert check_archive(store).problems == (), "every old record still verifies"
        versions = store.archive.versions("fb")
        assert [v.id for v in versions] == ["fb@v3", "fb@v2", "fb@v1"]
        assert {(v.source, v.recorded_at, v.provenance) for v in versions} == {("live", None, None)}
        assert [(c.id, c.kind, c.sections) for c in store.archive.changes(target="fb")] == [
            ("fb@c3", "change", ()),
            ("fb@c2", "revert", ()),
            ("fb@c1", "change", ()),
        ]
        assert len(store.outbox.all_pending()) == 4, "the alerts owed to the channel that was down still are"
    assert contents(db) == before, "the upgrade changed no row"
    for table, wanted in SECOND_ROUND_COLUMNS.items():
        assert wanted <= columns(db, table), table


def test_new_records_chain_onto_the_upgraded_archive(round1: Path) -> None:
    with SqliteStorage.open(round1) as store:
        state = store.checks.read_check("fb", recent_since=datetime(2000, 1, 1, tzinfo=UTC), snapshots=2)
        assert state.current is not None and state.current.id == "fb@v3"
        at = state.current.last_seen + timedelta(hours=1)
        done = store.checks.record_check(
            CheckRecord(
                "fb",
                "fb",
                "http://127.0.0.1/policy",
                at,
                "changed",
                version=NewVersion(
                    "an imported text\n", at, source="wayback", provenance={"capture": "2026"}
                ),
                change=NewChange("fb@v3", "editorial", sections=("Privacy Policy",)),
                expected=state.sequences,
            )
        )
        assert done.version is not None and done.change is not None
        assert (done.version.id, done.change.id) == ("fb@v4", "fb@c4")
        old_head = rows(round1 / DB_NAME, "SELECT record_hash FROM changes WHERE id = 'fb@c3'")[0][0]
        assert done.version.prev_hash == old_head, "the new record links to the last old one"
        assert check_archive(store).problems == ()


def test_a_reader_upgrades_an_archive_from_an_older_release(round1: Path) -> None:
    with SqliteStorage.open(round1, writer=False) as reader:
        assert reader.archive.migrations() == [m.name for m in MIGRATIONS]
        (rejected,) = reader.archive.snapshots("fb", outcome="rejected")
        assert rejected.reason_code == "block-page:login-wall" and rejected.text_hash is not None


def test_a_reader_waits_while_another_process_holds_an_old_archive(
    round1: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An old archive whose writer lock is held (another reader upgrading it, a writer starting): a reader
    waits, upgrades it once the lock is free and reads; past its patience it says why, in one line."""
    lock = WriterLock(round1 / LOCK_NAME)
    lock.acquire()
    threading.Timer(0.5, lock.release).start()
    with SqliteStorage.open(round1, writer=False) as reader:
        assert reader.archive.migrations() == [m.name for m in MIGRATIONS]
    old = round1.parent / "old"
    shutil.copytree(ROUND1, old)
    held = WriterLock(old / LOCK_NAME)
    held.acquire()
    monkeypatch.setattr(sqlite_backend, "UPGRADE_WAIT", 0.3)
    try:
        with pytest.raises(StorageError, match="needs a schema upgrade"):
            SqliteStorage.open(old, writer=False)
    finally:
        held.release()


# --------------------------------------------------------------------------- PostgreSQL


def first_round_database(url: str, round1: Path) -> dict[str, list[tuple[object, ...]]]:
    """A PostgreSQL database at the first round's schema (migrations 0001 and 0002 only, recorded as the
    migrator records them) holding the first round's archive: the rows of tests/fixtures/archives/round1,
    first-round columns only, and its blobs as the PostgreSQL backend stores them. Returns its contents."""
    with SqliteStorage.open(round1, writer=False) as source, source.export() as exported:
        tables = {table: exported.rows(table, None, 10_000) for table in TRANSFER_TABLES}
        blobs = {
            digest: source.blobs.get(digest)
            for table, column in BLOB_COLUMNS.items()
            for digest in {row[column] for row in tables.get(table, [])}
        }
    first = [m for m in migrations("postgres") if m.name in FIRST_ROUND]
    with psycopg.connect(url) as db:
        db.execute(b"CREATE TABLE schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL)")
        for migration in first:
            for statement in migration.statements:
                db.execute(statement.encode())
            db.execute("INSERT INTO schema_migrations VALUES (%s, now())", (migration.name,))
        kinds = dict(
            db.execute(
                "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'public'"
            ).fetchall()
        )
        for table, rows_ in tables.items():
            names = [c for c in TRANSFER_COLUMNS[table] if f"{table}.{c}" in kinds]  # the first round's
            if not rows_ or not names:
                continue
            values = [tuple(pg_value(row[c], kinds[f"{table}.{c}"]) for c in names) for row in rows_]
            marks = ", ".join(["%s"] * len(names))
            db.cursor().executemany(
                f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})".encode(), values
            )
        for digest, data in blobs.items():
            db.execute(
                "INSERT INTO blobs (digest, size, data) VALUES (%s, %s, %s)",
                (digest, len(data), zlib.compress(data, 6)),
            )
    return pg_contents(url)


def pg_value(value: object, kind: str) -> object:
    return Jsonb(value) if kind == "jsonb" and value is not None else value


def pg_rows(url: str, statement: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as db:
        return list(db.execute(statement.encode()).fetchall())


def pg_contents(url: str) -> dict[str, list[tuple[object, ...]]]:
    """What the first round wrote (the same columns as `contents`), read from PostgreSQL."""
    return {
        "versions": pg_rows(
            url, "SELECT id, text_hash, record_hash, prev_hash, chain_seq FROM versions ORDER BY id"
        ),
        "changes": pg_rows(url, "SELECT id, kind, alerted, record_hash, prev_hash FROM changes ORDER BY id"),
        "snapshots": pg_rows(url, "SELECT id, outcome, reason_code, text_hash FROM snapshots ORDER BY id"),
        "outbox": pg_rows(url, "SELECT id, event_id, attempts, delivered_at FROM outbox ORDER BY id"),
        "events": pg_rows(url, "SELECT id, kind FROM events ORDER BY id"),
        "targets": pg_rows(url, "SELECT id, current_version, chain_head, chain_seq FROM targets ORDER BY id"),
    }


@pytest.mark.postgres
def test_a_postgresql_database_at_the_first_rounds_schema_is_upgraded_in_place(
    round1: Path, postgres_url: str, tmp_path: Path
) -> None:
    before = first_round_database(postgres_url, round1)
    counts = {table: len(found) for table, found in contents(round1 / DB_NAME).items()}
    assert {table: len(found) for table, found in before.items()} == counts, "the first round's rows, all"
    names = [m.name for m in PG_MIGRATIONS]
    with PostgresStorage.open(postgres_url, directory=tmp_path / "files", node="a") as store:
        assert store.archive.migrations() == names, "0003 and the PostgreSQL-only 0004 applied"
        assert pg_contents(postgres_url) == before, "the upgrade changed no row"
        assert check_archive(store).problems == (), "every old record still verifies"
        versions = store.archive.versions("fb")
        assert [v.id for v in versions] == ["fb@v3", "fb@v2", "fb@v1"]
        assert {(v.source, v.recorded_at, v.provenance) for v in versions} == {("live", None, None)}
        assert [(c.id, c.kind, c.sections) for c in store.archive.changes(target="fb")] == [
            ("fb@c3", "change", ()),
            ("fb@c2", "revert", ()),
            ("fb@c1", "change", ()),
        ]
        assert len(store.outbox.all_pending()) == 4, "the alerts owed to the channel that was down still are"
        (rejected,) = store.archive.snapshots("fb", outcome="rejected")
        assert rejected.reason_code == "block-page:login-wall" and rejected.text_hash is not None

        state = store.checks.read_check("fb", recent_since=datetime(2000, 1, 1, tzinfo=UTC), snapshots=2)
        assert state.current is not None and state.current.id == "fb@v3"
        at = state.current.last_seen + timedelta(hours=1)
        record = CheckRecord(
            "fb",
            "fb",
            "http://127.0.0.1/policy",
            at,
            "changed",
            version=NewVersion("an imported text\n", at, source="wayback", provenance={"capture": "2026"}),
            change=NewChange("fb@v3", "editorial", sections=("Privacy Policy",)),
            expected=state.sequences,
        )
        done = store.checks.record_check(record)
        assert done.version is not None and done.change is not None
        assert (done.version.id, done.change.id) == ("fb@v4", "fb@c4")
        old_head = pg_rows(postgres_url, "SELECT record_hash FROM changes WHERE id = 'fb@c3'")[0][0]
        assert done.version.prev_hash == old_head, "the new record links to the last old one"
        assert check_archive(store).problems == ()
    kinds = dict(
        pg_rows(
            postgres_url,
            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public'",
        )
    )
    for table, wanted in SECOND_ROUND_COLUMNS.items():
        assert {f"{table}.{c}" for c in wanted} <= set(kinds), table
    assert {"targets.lease_node", "targets.lease_until", "outbox_attempts.outcome"} <= set(kinds)

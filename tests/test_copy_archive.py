"""`copy-archive --to URL` (watchdog/archive_copy.py, storage/transfer.py) on a real replayed archive: the
real pipeline replays real recorded versions of Meta's French privacy policy (tests/fixtures/replay) into
SQLite, with one channel that was down (alerts still owed, failed attempts logged); the archive is copied to
a real PostgreSQL and back. Both copies `verify`, export the very same evidence (every version and change
with its hashes and provenance), keep the outbox, accept new checks chained onto the copied records; a copy
run twice changes nothing, an interrupted copy completes when run again, a destination that holds
another archive is refused, and a progress bar is drawn on a terminal (a real pseudo-terminal), not in a
pipe."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from support.corpus import render_page
from support.harness import Site, cli, cycle, write_config
from support.pageserver import PageServer, start_page_server
from support.replay import corpus_text, series
from watchdog.config import Config, load_config
from watchdog.errors import StorageError
from watchdog.models import CheckRecord, NewVersion
from watchdog.storage import open_store
from watchdog.storage.transfer import TABLES, copy_archive

pytestmark = pytest.mark.postgres

SERIES = "facebook-privacy-policy-fr"
DOWN = "json://127.0.0.1:9/down"  # a channel that refuses every connection: its alerts stay owed


@pytest.fixture(scope="module")
def site() -> Iterator[PageServer]:
    """The page server the replayed archive's config points at, for the whole module."""
    server = start_page_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory, site: PageServer) -> Path:
    """A SQLite archive the real pipeline made of a real series: versions, changes, reverts, snapshots,
    outbox rows with failed attempts. Built once; tests copy it, never change it."""
    root = tmp_path_factory.mktemp("replayed")
    names = series(SERIES)
    sites = [Site("fr", "/fr", 'notify = "all"\nmax_shrink = 0.9')]
    for n, name in enumerate(names):
        # the channel that is down only for the last versions: each failed pass costs its retries' waits
        channels = [DOWN] if n >= len(names) - 3 else []
        config = write_config(root, site.base_url, sites, channels=channels)
        site.set("/fr", render_page(corpus_text(name), seed=n), etag=False)
        cycle(config)
    return config


def source_config(replayed: Path, tmp_path: Path) -> Path:
    """A private copy of the replayed archive (the copy itself is what the tests exercise)."""
    shutil.copytree(replayed.parent / "archive", tmp_path / "archive")
    text = replayed.read_text(encoding="utf-8")
    path = tmp_path / "watchdog.toml"
    path.write_text(text, encoding="utf-8")
    return path


def with_url(config_path: Path, url: str, name: str) -> Path:
    """The same config, on the PostgreSQL archive at `url`."""
    text = config_path.read_text(encoding="utf-8").replace(
        'dir = "archive"', f'dir = "{name}"\nurl = "{url}"', 1
    )
    path = config_path.parent / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def exported(config_path: Path) -> list[dict[str, object]]:
    result = cli("--config", str(config_path), "export", "--format", "jsonl", "--with-text")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def outbox(config: Config) -> list[tuple[object, ...]]:
    with open_store(config, writer=False) as store:
        pending = store.outbox.all_pending()
        return [
            (d.id, d.channel_key, d.payload, d.attempts, tuple(store.outbox.attempts(d.id))) for d in pending
        ]


def test_sqlite_to_postgresql_and_back_verifies_and_keeps_everything(
    replayed: Path, tmp_path: Path, postgres_url: str
) -> None:
    sqlite = source_config(replayed, tmp_path)
    before = exported(sqlite)
    versions = [r for r in before if r.get("type") == "version"]
    changes = [r for r in before if r.get("type") == "change"]
    assert len(versions) >= 6 and len(changes) >= 5, "a real history: several versions and changes"
    owed = outbox(load_config(sqlite, environ={}))
    assert owed and owed[0][-1], "an alert owed, its failed attempts logged"

    to_pg = cli("--config", str(sqlite), "copy-archive", "--to", postgres_url, timeout=300)
    assert to_pg.returncode == 0, to_pg.stdout + to_pg.stderr
    assert "verify: the copy's hashes and chains are intact" in to_pg.stdout
    postgres = with_url(sqlite, postgres_url, "pg-files")
    assert cli("--config", str(postgres), "verify").returncode == 0
    assert exported(postgres) == before, "the same records, hashes, chain links and provenance"
    assert outbox(load_config(postgres, environ={})) == owed, "the outbox and its attempt log, ids included"

    again = cli("--config", str(sqlite), "copy-archive", "--to", postgres_url, timeout=300)
    assert again.returncode == 0 and exported(postgres) == before, "a second copy changes nothing"

    back_dir = tmp_path / "back"
    to_sqlite = cli("--config", str(postgres), "copy-archive", "--to", str(back_dir), timeout=300)
    assert to_sqlite.returncode == 0, to_sqlite.stdout + to_sqlite.stderr
    back = tmp_path / "back.toml"
    back.write_text(sqlite.read_text().replace('dir = "archive"', f'dir = "{back_dir}"', 1))
    assert cli("--config", str(back), "verify").returncode == 0
    assert exported(back) == before
    assert outbox(load_config(back, environ={})) == owed


def test_the_copy_goes_on_where_the_source_stopped(
    replayed: Path, tmp_path: Path, postgres_url: str, site: PageServer
) -> None:
    """New checks on the PostgreSQL copy chain onto the copied records; new snapshot and outbox ids follow
    the copied ones (the database's identity columns were moved past them)."""
    sqlite = source_config(replayed, tmp_path)
    assert cli("--config", str(sqlite), "copy-archive", "--to", postgres_url, timeout=300).returncode == 0
    postgres = with_url(sqlite, postgres_url, "pg-files")
    config = load_config(postgres, environ={})
    with open_store(config) as store:
        last = store.archive.versions("fr")[0]
        top_snapshot = max(s.id for s in store.archive.snapshots("fr"))
    site.set("/fr", render_page(corpus_text(series("facebook-privacy-policy-en")[2])), etag=False)
    (outcome,) = cycle(postgres)
    assert outcome.status == "changed", outcome
    with open_store(config) as store:
        new = store.archive.versions("fr")[0]
        assert new.seq == last.seq + 1 and new.snapshot_id is not None and new.snapshot_id > top_snapshot
    assert cli("--config", str(postgres), "verify").returncode == 0


def test_an_interrupted_copy_completes_when_run_again(
    replayed: Path, tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from watchdog.storage import transfer

    monkeypatch.setattr(transfer, "BATCH", 3)  # many batches, to stop between two of them
    sqlite = load_config(source_config(replayed, tmp_path), environ={})
    postgres = load_config(with_url(sqlite.path or Path(), postgres_url, "pg-files"), environ={})
    seen: list[str] = []

    def stop_in_versions(table: str, done: int, total: int) -> None:
        seen.append(table)
        if table == "versions" and done >= 3:
            raise KeyboardInterrupt  # Ctrl-C, or a lost connection, half-way

    with open_store(sqlite, writer=False) as source, open_store(postgres) as dest:
        with pytest.raises(KeyboardInterrupt):
            copy_archive(source, dest, progress=stop_in_versions)
        report = copy_archive(source, dest)
    assert "changes" not in seen, "it stopped before the later tables"
    assert set(report.rows) == set(TABLES)
    assert exported(postgres.path or Path()) == exported(sqlite.path or Path())


def test_a_destination_holding_another_archive_is_refused(
    replayed: Path, tmp_path: Path, postgres_url: str
) -> None:
    sqlite = load_config(source_config(replayed, tmp_path), environ={})
    postgres = load_config(with_url(sqlite.path or Path(), postgres_url, "pg-files"), environ={})
    with open_store(postgres) as dest:
        dest.checks.record_check(
            CheckRecord(
                "fr",
                "fr",
                "http://x/",
                sqlite_first_seen(sqlite),
                None,
                version=NewVersion("other\n", sqlite_first_seen(sqlite)),
            )
        )
        with (
            open_store(sqlite, writer=False) as source,
            pytest.raises(StorageError, match="different version fr@v1"),
        ):
            copy_archive(source, dest)
        assert [v.text_hash for v in dest.archive.versions("fr")] == [
            dest.archive.versions("fr")[0].text_hash
        ]


def sqlite_first_seen(config: Config) -> datetime:
    with open_store(config, writer=False) as store:
        return store.archive.versions("fr")[-1].first_seen


def test_copy_archive_names_a_bad_destination_and_hides_the_password(replayed: Path, tmp_path: Path) -> None:
    sqlite = source_config(replayed, tmp_path)
    bad = cli("--config", str(sqlite), "copy-archive", "--to", "postgresql://w:hunter2@h:99999/db")
    assert (
        bad.returncode == 2 and "--to: malformed database URL" in bad.stderr and "hunter2" not in bad.stderr
    )
    own = cli("--config", str(sqlite), "copy-archive", "--to", str(tmp_path / "archive"))
    assert own.returncode == 2 and "own storage dir" in own.stderr
    assert "Traceback" not in bad.stderr + own.stderr


def test_a_progress_bar_on_a_terminal_and_none_in_a_pipe(
    replayed: Path, tmp_path: Path, postgres_url: str
) -> None:
    """stderr a real pseudo-terminal: one bar per table, each filled to its row count; stderr a pipe: none."""
    sqlite = source_config(replayed, tmp_path)
    leader, follower = os.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "watchdog", "--config", str(sqlite), "copy-archive", "--to", postgres_url],
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
            check=False,
            timeout=300,
        )
        os.close(follower)
        drawn = read_all(leader)
    finally:
        os.close(leader)
    assert done.returncode == 0, done.stdout + drawn
    copied = re.findall(r"(\d+) ([a-z ]+?)(?:,|;)", done.stdout.split(": ", 1)[1])
    summary = {table: count for count, table in copied}
    finals = dict(re.findall(r"\r([a-z ]+?) +\[#{30}\] +\d+/(\d+)", drawn))
    assert set(finals) == {table.replace("_", " ") for table in TABLES}, drawn
    assert finals["versions"] == summary["versions"] and finals["changes"] == summary["changes"]
    piped = cli(
        "--config",
        str(with_url(sqlite, postgres_url, "pg-files")),
        "copy-archive",
        "--to",
        str(tmp_path / "b"),
    )
    assert piped.returncode == 0 and "[" not in piped.stderr, "no bar where nobody watches"


def read_all(fd: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the other side is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")

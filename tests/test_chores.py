"""The daemon's chores out of process: `deliver` under the daemon's lock (checked, not assumed), `publish`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from support.corpus import render_page
from support.harness import Site, cli, cycle, write_config
from support.pageserver import PageServer
from support.replay import corpus_text
from watchdog.errors import StorageError
from watchdog.storage.sqlite import SqliteStorage

HOLD = (
    "import pathlib, sys, time\nfrom watchdog.storage.sqlite import SqliteStorage\n"
    "s = SqliteStorage.open(pathlib.Path(sys.argv[1]))\n"
)


def test_a_child_writes_only_under_a_lock_its_named_parent_really_holds(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="not held by process"):
        SqliteStorage.open(tmp_path, lock_held_by=12345)  # nobody holds it
    code = HOLD + "print('locked', flush=True)\ntime.sleep(60)"
    with subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    ) as holder:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with SqliteStorage.open(tmp_path, lock_held_by=holder.pid) as child:
            child.checks.sync_targets([])  # may write
        with pytest.raises(StorageError, match=f"pid {holder.pid}"):
            SqliteStorage.open(tmp_path, lock_held_by=holder.pid + 1)
        holder.kill()


def test_deliver_under_a_daemon_that_is_not_there_sends_nothing(
    page_server: PageServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path, page_server.base_url, [Site("fb", "/p")])
    result = cli(
        "--config", str(config), "deliver", "--under-daemon", env={"POLICY_WATCHDOG_PARENT_PID": "1"}
    )
    assert result.returncode == 1 and "the daemon that started this delivery is gone" in result.stderr
    assert "Traceback" not in result.stderr


def test_publish_regenerates_the_site_and_feeds(page_server: PageServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, page_server.base_url, [Site("fb", "/p")])
    page_server.set(
        "/p", render_page(corpus_text("series/facebook-privacy-policy-en/2025-04-23T12-31-08Z.md"))
    )
    cycle(config)  # the library cycle does not publish
    assert not (tmp_path / "archive" / "site" / "index.html").exists()
    result = cli("--config", str(config), "publish")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "archive" / "site" / "index.html").exists()
    assert (tmp_path / "archive" / "feeds" / "all.atom").exists()

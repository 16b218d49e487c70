"""Issue 11, points 6 and 7: a disk that fills up, a disk that fails with I/O errors and an archive that
cannot be written, on real file systems (a small tmpfs, ext4 on a loop device cut short, a read-only bind
mount, each in a private mount namespace: tests/support/mounts.py).

Before: `check`, `run` and `deliver` died with a sqlite3 traceback, and partial `*.tmp` files stayed behind; a
read-only copy of an archive could not even be verified ("unable to open database file"). Now every storage
error is one line naming the path and the problem, exit code 1, the daemon stops cleanly (systemd restarts
it), nothing half-written stays, and every read command reads a read-only copy.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from support.daemon import policy_markdown
from support.harness import Site, cycle, write_config
from support.mounts import (
    Step,
    StepResult,
    cut_from_file,
    detach_loops,
    ext4_on_loop,
    fill,
    needs_loop_devices,
    needs_namespaces,
    read_only_bind,
    regrow,
    run_in_namespace,
    tmpfs,
)
from support.pageserver import PageServer
from watchdog.storage.files import CACHE_FOLDER, TEMP_SUFFIX
from watchdog.storage.sqlite import DB_NAME, SqliteStorage
from watchdog.storage.sqlite.storage import CLOSED_NAME, SWEEP_EVERY

pytestmark = needs_namespaces
ROUND1 = Path(__file__).parent / "fixtures" / "archives" / "round1"
READ_COMMANDS = [
    ("verify", ["verify"]),
    ("status", ["status"]),
    ("targets", ["targets", "--json"]),
    ("history", ["history", "fb", "--json"]),
    ("show", ["show", "fb@v1"]),
    ("changes", ["changes", "--json"]),
    ("diff", ["diff", "fb@v1", "fb@v2"]),
    ("export", ["export", "--format", "jsonl"]),
]


def page(version: int, *, bulk: int = 0) -> bytes:
    """A policy page; `bulk` bytes of incompressible noise outside the policy text make its raw body big."""
    from support.corpus import render_page

    noise = random.Random(version).randbytes(bulk).hex() if bulk else ""
    html = render_page(policy_markdown(version), seed=version)
    return html.replace(b"</body>", f"<script>/*{noise}*/</script></body>".encode())


def one_error_line(result: StepResult) -> str:
    """The command failed (exit 1) with exactly one line on stderr, `error: ...`, and no traceback."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def staged_archive(tmp_path: Path, server: PageServer, versions: int) -> tuple[Path, Path]:
    """A real archive of `versions` versions of target fb; returns (config file, the archive's folder)."""
    config = write_config(tmp_path, server.base_url, [Site("fb", "/policy", 'notify = "all"')])
    for version in range(1, versions + 1):
        server.set("/policy", page(version), etag=False)
        cycle(config)
    return config, tmp_path / "archive"


def temporaries(listing: str) -> list[str]:
    return [line for line in listing.splitlines() if line.endswith(TEMP_SUFFIX)]


# --------------------------------------------------------------------------- a disk that fills up


def test_a_full_disk_is_one_clear_line_and_leaves_nothing_half_written(
    page_server: PageServer, tmp_path: Path
) -> None:
    config, archive = staged_archive(tmp_path, page_server, 1)
    staged = tmp_path / "staged"
    archive.rename(staged)
    page_server.set("/policy", page(2, bulk=600_000), etag=False)  # a new version whose raw body is ~1 MB
    q = ["-q", "--config", str(config)]
    setup = "\n".join([tmpfs(archive, "6m"), f"cp -a {staged}/. {archive}/", fill(archive, leave_kib=150)])
    found = f"find {archive} -name '*{TEMP_SUFFIX}'"
    results = run_in_namespace(
        setup,
        [
            Step("check", [*q, "check"]),
            Step("temporaries", shell=found),
            Step("run", shell=f"timeout 60 {_python()} -m watchdog {' '.join(q)} run"),
            Step("verify_full", [*q, "verify"]),
            Step("history_full", [*q, "history", "fb", "--json"]),
            Step("free", shell=f"rm {archive}/filler"),
            Step("verify", [*q, "verify"]),
            Step("check_again", [*q, "check", "--json"]),
            Step("temporaries_after", shell=found),
        ],
        tmp_path / "results",
    )
    line = one_error_line(results["check"])
    assert str(archive) in line and ("No space left on device" in line or "disk is full" in line), line
    assert temporaries(results["temporaries"].stdout) == [], "the partial blob was removed"
    run = results["run"]
    assert run.returncode == 1, run
    assert "Traceback" not in run.stderr and run.stderr.count("storage error") == 1, run.stderr
    assert results["verify_full"].returncode == 0, "a full disk still reads: " + results["verify_full"].stderr
    assert results["history_full"].stdout.count('"id"') == 1, "nothing of the failed check was kept"
    assert results["verify"].returncode == 0 and results["verify"].stdout.startswith("ok: ")
    again = results["check_again"]
    assert again.returncode == 0 and '"status": "changed"' in again.stdout, again
    assert temporaries(results["temporaries_after"].stdout) == []


def test_a_disk_full_before_the_start_is_one_clear_line(page_server: PageServer, tmp_path: Path) -> None:
    config, archive = staged_archive(tmp_path, page_server, 1)
    staged = tmp_path / "staged"
    archive.rename(staged)
    page_server.set("/policy", page(2), etag=False)
    q = ["-q", "--config", str(config)]
    setup = "\n".join([tmpfs(archive, "2m"), f"cp -a {staged}/. {archive}/", fill(archive)])
    results = run_in_namespace(
        setup,
        [
            Step("check", [*q, "check"]),
            Step("publish", [*q, "publish"]),
            Step("deliver", [*q, "deliver"]),
            Step("run", shell=f"timeout 60 {_python()} -m watchdog {' '.join(q)} run"),
        ],
        tmp_path / "results",
    )
    assert str(archive) in one_error_line(results["check"])
    assert str(archive) in one_error_line(results["publish"])
    deliver = results["deliver"]
    assert deliver.returncode in (0, 1) and "Traceback" not in deliver.stderr, deliver
    assert results["run"].returncode == 1 and "Traceback" not in results["run"].stderr, results["run"]


# --------------------------------------------------------------------------- a disk with I/O errors


@needs_loop_devices
def test_an_io_error_is_one_clear_line_and_the_earlier_records_stay(
    page_server: PageServer, tmp_path: Path
) -> None:
    """A disk that fails with real I/O errors (EIO) under the archive: ext4 on a loop device whose free space
    was cut off (tests/support/mounts.py), so whatever the file system allocates from then on cannot be
    written (SQLite's commit: fdatasync of the write-ahead log fails with EIO, "disk I/O error"; a new blob:
    its fsync fails with EIO), and a stretch cut from under the database cannot be read."""
    config = write_config(
        tmp_path, page_server.base_url, [Site("fb", "/policy", 'notify = "all"'), Site("news", "/news")]
    )
    page_server.set("/news", page(4), etag=False)
    for version in (1, 2):
        page_server.set("/policy", page(version), etag=False)
        cycle(config)
    archive, staged, backing = tmp_path / "archive", tmp_path / "staged", tmp_path / "backing"
    archive.rename(staged)
    for prefix in range(256):  # every blob folder there already: what fails is a file's data, not a folder
        (staged / "blobs" / f"{prefix:02x}").mkdir(exist_ok=True)
    page_server.set("/policy", page(3), etag=False)  # fb changed: its new raw body is a new blob
    q = ["-q", "--config", str(config)]
    found = f"find {archive} -name '*{TEMP_SUFFIX}'"
    try:
        results = run_in_namespace(
            ext4_on_loop(backing, archive, staged),
            [
                Step("changed", [*q, "check", "fb"]),  # the new blob is the first write
                Step("unchanged", [*q, "check", "news"]),  # nothing new: the commit is the first write
                Step("run", shell=f"timeout 60 {_python()} -m watchdog {' '.join(q)} run"),
                Step("regrow", shell=regrow(backing, archive)),  # read back from the device itself
                Step("verify", [*q, "verify"]),
                Step("history", [*q, "history", "fb", "--json"]),
                Step("news", [*q, "history", "news", "--json"]),
                Step("temporaries", shell=found),
                Step("cut", shell=cut_from_file(backing, archive, DB_NAME)),
                Step("read", [*q, "history", "fb", "--json"]),
            ],
            tmp_path / "results",
        )
    finally:
        detach_loops(backing)
    changed = one_error_line(results["changed"])
    assert str(archive / "blobs") in changed and os.strerror(errno.EIO) in changed, changed
    unchanged = one_error_line(results["unchanged"])
    assert str(archive / DB_NAME) in unchanged and "disk I/O error" in unchanged, unchanged
    run = results["run"]
    assert run.returncode == 1 and "Traceback" not in run.stderr, run
    assert run.stderr.count("storage error") == 1 and str(archive) in run.stderr, run.stderr
    assert results["regrow"].returncode == 0, results["regrow"]
    assert results["verify"].returncode == 0 and results["verify"].stdout.startswith("ok: 3 versions")
    assert results["history"].stdout.count('"id"') == 2, "the earlier records are intact, nothing was added"
    assert results["news"].stdout.count('"id"') == 1, results["news"]
    assert temporaries(results["temporaries"].stdout) == [], "the blob that failed left no temporary file"
    assert results["cut"].returncode == 0, results["cut"]
    read = one_error_line(results["read"])
    assert str(archive / DB_NAME) in read and "disk I/O error" in read, read


# --------------------------------------------------------------------------- read-only copies


def read_only_results(
    tmp_path: Path, config: Path, source: Path, extra: list[Step] | None = None
) -> dict[str, StepResult]:
    """Every read command (and a `check`) run against `source` seen read-only as the config's archive."""
    q = ["-q", "--config", str(config)]
    steps = [Step(name, [*q, *argv]) for name, argv in READ_COMMANDS]
    steps += [
        Step("check", [*q, "check"]),
        Step("heads", [*q, "export", "--chain-heads", str(tmp_path / "h.json")]),
    ]
    steps += extra or []
    return run_in_namespace(read_only_bind(source, tmp_path / "archive"), steps, tmp_path / "results")


def assert_reads(results: dict[str, StepResult], versions: int, *, of_fb: int | None = None) -> None:
    for name, _argv in READ_COMMANDS:
        result = results[name]
        assert result.returncode == 0 and "Traceback" not in result.stderr, (name, result)
    assert results["verify"].stdout.startswith(f"ok: {versions} versions"), results["verify"]
    assert results["history"].stdout.count('"id"') == (of_fb or versions)
    assert "Privacy Policy" in results["show"].stdout
    assert results["heads"].returncode == 0, results["heads"]
    assert "Read-only file system" in one_error_line(results["check"])


def test_every_read_command_reads_a_read_only_copy(page_server: PageServer, tmp_path: Path) -> None:
    config, archive = staged_archive(tmp_path, page_server, 2)
    copy = tmp_path / "copy"
    shutil.copytree(archive, copy)
    assert not (copy / f"{DB_NAME}-wal").exists(), "a clean copy: opened in immutable mode"
    shutil.rmtree(archive)
    assert_reads(read_only_results(tmp_path, config, copy), 2)


def test_a_read_only_copy_of_a_live_archive_keeps_its_newest_records(
    page_server: PageServer, tmp_path: Path
) -> None:
    """Copied while the daemon had it open: the newest records are still in the write-ahead log."""
    config, archive = staged_archive(tmp_path, page_server, 2)
    copy = tmp_path / "copy"
    with SqliteStorage.open(archive, writer=False):  # a connection stays open: the log is not merged
        page_server.set("/policy", page(3), etag=False)
        cycle(config)
        assert (archive / f"{DB_NAME}-wal").stat().st_size > 0
        shutil.copytree(archive, copy, ignore=shutil.ignore_patterns("*-shm", ".lock"))
    shutil.rmtree(archive)
    without_log = tmp_path / "without-log"
    without_log.mkdir()
    shutil.copy(copy / DB_NAME, without_log / DB_NAME)
    with closing(sqlite3.connect(without_log / DB_NAME)) as db:
        assert db.execute("SELECT count(*) FROM versions").fetchone()[0] < 3, "v3 is in the log only"
    assert_reads(read_only_results(tmp_path, config, copy), 3)


def test_a_read_only_copy_from_an_older_release_is_read_upgraded_in_memory(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9", [Site("fb", "/policy"), Site("cnil", "/cnil")])
    copy = tmp_path / "round1"
    shutil.copytree(ROUND1, copy)
    results = read_only_results(tmp_path, config, copy)
    assert_reads(results, 4, of_fb=3)  # fb@v1..v3 and cnil@v1
    with closing(sqlite3.connect(copy / DB_NAME)) as db:
        assert db.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == 2, (
            "the file is untouched"
        )


# --------------------------------------------------------------------------- leftovers of a killed writer


KILLED_WRITER = """
import os, signal, sys, time
from pathlib import Path
from watchdog.storage.sqlite import SqliteStorage
directory = Path(sys.argv[1])
storage = SqliteStorage.open(directory)  # the writer: it holds the lock
for name in sys.argv[2:]:  # what it was writing when it was killed ("old:": an hour ago)
    path = directory / name.removeprefix("old:")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"half a file")
    if name.startswith("old:"):
        os.utime(path, (time.time() - 3700, time.time() - 3700))
os.kill(os.getpid(), signal.SIGKILL)
"""


def kill_a_writer_mid_write(directory: Path, *leftovers: Path, old: Path | None = None) -> None:
    """A real writer process, killed with SIGKILL while its temporary files are on disk (`old` written
    an hour ago)."""
    names = [str(p) for p in leftovers] + ([f"old:{old}"] if old else [])
    done = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(directory), *names], check=False)
    assert done.returncode == -9


def test_a_writer_sweeps_the_temporary_files_a_killed_writer_left(tmp_path: Path) -> None:
    SqliteStorage.open(tmp_path).close()  # a writer that closed cleanly before: no sweep would be due
    digest = "ab" * 32
    blob_leftover = Path("blobs", "ab", f".{digest}.k9x2m_q1{TEMP_SUFFIX}")
    legacy_leftover = Path("blobs", "ab", f"{digest}.4242{TEMP_SUFFIX}")
    old_cache = Path(CACHE_FOLDER, "diffs", "cd", f".{'cd' * 32}.json.a1b2c3d4{TEMP_SUFFIX}")
    live_cache = old_cache.with_name(f".{'cd' * 32}.json.e5f6g7h8{TEMP_SUFFIX}")  # being written right now
    kill_a_writer_mid_write(tmp_path, blob_leftover, legacy_leftover, live_cache, old=old_cache)
    SqliteStorage.open(tmp_path, writer=False).close()
    assert (tmp_path / blob_leftover).exists(), "a reader never removes anything"
    SqliteStorage.open(tmp_path).close()
    assert not any((tmp_path / p).exists() for p in (blob_leftover, legacy_leftover, old_cache))
    assert (tmp_path / live_cache).exists(), "a cache file another process may be writing is left alone"


def plant_leftover(directory: Path) -> Path:
    leftover = directory / "blobs" / "ef" / f".{'ef' * 32}.z9y8x7w6{TEMP_SUFFIX}"
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_bytes(b"half a file")
    return leftover


def record_sweep(directory: Path, when: str) -> None:
    (directory / CLOSED_NAME).write_text(when, encoding="ascii")


def test_after_a_clean_close_a_writer_walks_the_blobs_at_most_daily(tmp_path: Path) -> None:
    """Sweeping walks every blob folder (~1 ms per 1,000 blobs, at each start of a `check`): after a clean
    close it is due once SWEEP_EVERY has passed, or at once when the recorded time cannot be trusted."""
    SqliteStorage.open(tmp_path).close()
    leftover = plant_leftover(tmp_path)  # one the last clean close does not know of (a killed child's)
    SqliteStorage.open(tmp_path).close()
    assert leftover.exists(), "swept at the first open, not again within SWEEP_EVERY"
    recorded = float((tmp_path / CLOSED_NAME).read_text(encoding="ascii"))
    assert time.time() - 60 < recorded <= time.time()
    for when in (repr(time.time() - SWEEP_EVERY - 60), repr(time.time() + 3600), "garbage", ""):
        record_sweep(tmp_path, when)  # a day ago; in the future (the clock was set back); unreadable
        SqliteStorage.open(tmp_path).close()
        assert not leftover.exists(), when
        assert time.time() - 60 < float((tmp_path / CLOSED_NAME).read_text(encoding="ascii")) <= time.time()
        leftover = plant_leftover(tmp_path)


def test_a_writer_that_dies_leaves_no_clean_close_on_record(tmp_path: Path) -> None:
    SqliteStorage.open(tmp_path).close()
    assert (tmp_path / CLOSED_NAME).is_file()
    storage = SqliteStorage.open(tmp_path)
    assert not (tmp_path / CLOSED_NAME).exists(), "while a writer is open, none is recorded"
    storage.close()
    kill_a_writer_mid_write(tmp_path, Path("blobs", "12", f".{'12' * 32}.a1b2c3d4{TEMP_SUFFIX}"))
    assert not (tmp_path / CLOSED_NAME).exists()
    leftover = plant_leftover(tmp_path)
    SqliteStorage.open(tmp_path, writer=False).close()
    assert not (tmp_path / CLOSED_NAME).exists(), "a reader records nothing"
    SqliteStorage.open(tmp_path).close()
    assert not leftover.exists(), "the next writer sweeps at once"


def _python() -> str:
    return sys.executable


@pytest.fixture(autouse=True)
def _no_leaked_mounts(tmp_path: Path) -> Iterator[None]:
    """Every mount of these tests lives in a private namespace: none may show on the machine."""
    yield
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        assert str(tmp_path) not in mounts.read()

"""Issue 16: writers that store the same content at the same moment, on real files, threads and processes.

Before the fix, a blob's temporary file was named after the process id only: two threads storing the same
blob wrote one temporary file, the first rename moved it away and the second failed ("No such file or
directory"), a StorageError the daemon treats as fatal. These tests drive many writers at once for many
rounds; each round starts its writers together at a barrier, so they meet inside the write.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import zlib
from pathlib import Path

import pytest

from support.concurrency import (
    own_content,
    process_main,
    run_threads,
    shared_content,
    store_round,
)
from watchdog.publish import output
from watchdog.publish.archive import DiffCache
from watchdog.storage.blobs import BlobStore
from watchdog.storage.chain import sha256
from watchdog.storage.files import (
    TEMP_SUFFIX,
    atomic_file,
    sweep_temporaries,
    write_atomically,
)

THREAD_ROUNDS = 150
THREADS = 8
PROCESS_ROUNDS = 60
PROCESS_THREADS = 4


def temporaries(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.name.endswith(TEMP_SUFFIX))


def assert_intact(blobs: BlobStore, expected: dict[str, bytes]) -> None:
    for digest, data in expected.items():
        assert blobs.get(digest) == data, f"blob {digest[:12]} is not what was stored"
        raw = blobs.path(digest).read_bytes()
        assert sha256(zlib.decompress(raw)) == digest


def test_many_threads_store_the_same_and_different_blobs_at_once(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    failed_rounds, errors = 0, []
    for round_no in range(THREAD_ROUNDS):
        found = run_threads(THREADS, lambda i, r=round_no: _put(blobs, r, i))
        failed_rounds += bool(found)
        errors += found
    assert not errors, f"{failed_rounds} of {THREAD_ROUNDS} rounds failed; first error:\n{errors[0]}"
    expected = {sha256(shared_content(r)): shared_content(r) for r in range(THREAD_ROUNDS)}
    expected |= {
        sha256(own_content(r, f"t{i}")): own_content(r, f"t{i}")
        for r in range(THREAD_ROUNDS)
        for i in range(THREADS)
    }
    assert_intact(blobs, expected)
    assert temporaries(tmp_path) == [], "no temporary file is left behind"


def _put(blobs: BlobStore, round_no: int, index: int) -> None:
    store_round(blobs, round_no, f"t{index}")


def test_two_processes_store_the_same_and_different_blobs_at_once(tmp_path: Path) -> None:
    spawn = multiprocessing.get_context("spawn")  # fresh interpreters: nothing shared but the folder
    barrier, results = spawn.Barrier(2), spawn.Queue()
    root = tmp_path / "blobs"
    writers = [
        spawn.Process(
            target=process_main, args=(str(root), name, PROCESS_ROUNDS, PROCESS_THREADS, barrier, results)
        )
        for name in ("p1", "p2")
    ]
    for writer in writers:
        writer.start()
    reports = dict(results.get(timeout=300) for _ in writers)
    for writer in writers:
        writer.join(60)
        assert writer.exitcode == 0
    errors = reports["p1"] + reports["p2"]
    assert not errors, f"{len(errors)} writes failed across the two processes; first:\n{errors[0]}"
    blobs = BlobStore(root)
    expected = {sha256(shared_content(r)): shared_content(r) for r in range(PROCESS_ROUNDS)}
    expected |= {
        sha256(own_content(r, f"{p}-{i}")): own_content(r, f"{p}-{i}")
        for r in range(PROCESS_ROUNDS)
        for p in ("p1", "p2")
        for i in range(PROCESS_THREADS)
    }
    assert_intact(blobs, expected)
    assert temporaries(tmp_path) == []


def test_many_writers_of_one_published_file_each_replace_it_whole(tmp_path: Path) -> None:
    """Published pages and manifests: different content for one path from many threads at once; every
    write succeeds and the file always holds one writer's whole content."""
    target = tmp_path / "site" / "index.html"
    contents = [bytes([65 + i]) * (200_000 + i) for i in range(THREADS)]
    seen: set[bytes] = set()
    for _round in range(40):
        errors = run_threads(THREADS, lambda i: output.write_atomically(target, contents[i]))
        assert not errors, errors[0]
        seen.add(target.read_bytes())
    assert seen <= set(contents)
    assert temporaries(tmp_path) == []


def test_the_diff_cache_is_shared_by_concurrent_writers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="watchdog.publish.archive")
    texts = {"a": "one line\nsecond line\n", "b": "one line\nanother second line\n"}
    results: list[object] = [None] * THREADS
    for _round in range(20):
        for path in (tmp_path / "diffs").rglob("*.json"):
            path.unlink()  # this round writes the entry again, all writers at once
        caches = [DiffCache(texts=texts.__getitem__, directory=tmp_path / "diffs") for _ in range(THREADS)]
        assert run_threads(THREADS, lambda i, c=caches: _diff_into(results, i, c[i])) == []
        assert all(r == results[0] for r in results)
    assert [r.getMessage() for r in caplog.records if "cannot cache" in r.getMessage()] == []
    fresh = DiffCache(texts=lambda _h: pytest.fail("the cached entry is used"), directory=tmp_path / "diffs")
    assert fresh.diff("a", "b") == results[0]
    assert temporaries(tmp_path) == []


def _diff_into(results: list[object], index: int, cache: DiffCache) -> None:
    results[index] = cache.diff("a", "b")


def test_a_failed_write_leaves_the_target_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "feeds" / "all.atom"
    write_atomically(target, b"the old feed")
    with pytest.raises(RuntimeError), atomic_file(target) as handle:
        handle.write(b"half a new fe")
        raise RuntimeError("the writer fails mid-way")
    assert target.read_bytes() == b"the old feed"
    (tmp_path / "feeds" / "dir.atom").mkdir()
    with pytest.raises(IsADirectoryError):  # the rename itself fails
        write_atomically(tmp_path / "feeds" / "dir.atom", b"x")
    assert temporaries(tmp_path) == []


def test_files_keep_the_permissions_open_gave_them(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    write_atomically(tmp_path / "page.html", b"x")
    assert (tmp_path / "page.html").stat().st_mode & 0o777 == 0o666 & ~umask


def test_sweep_removes_leftover_temporaries_only(tmp_path: Path) -> None:
    (tmp_path / "ab").mkdir()
    digest = "ab" * 32
    old = tmp_path / "ab" / f".{digest}.x1y2_k9z{TEMP_SUFFIX}"
    legacy = tmp_path / "ab" / f"{digest}.4242{TEMP_SUFFIX}"  # the name releases before this one used
    fresh = tmp_path / f".page.html.z9abcdef{TEMP_SUFFIX}"
    keep = tmp_path / "ab" / digest
    users = tmp_path / "notes.tmp"  # not a name we give: an export folder's own files are left alone
    for path in (old, legacy, fresh, keep, users):
        path.write_bytes(b"x")
    os.utime(old, (1, 1))
    os.utime(legacy, (1, 1))
    assert sweep_temporaries(tmp_path, older_than=3600) == 2
    assert fresh.exists() and keep.exists() and users.exists() and not old.exists() and not legacy.exists()
    assert sweep_temporaries(tmp_path) == 1 and not fresh.exists() and keep.exists() and users.exists()

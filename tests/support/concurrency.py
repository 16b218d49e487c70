"""Test support for issue 16: writers that store the same (and different) content at the same moment.

`store_round` runs in threads and, through `process_main`, in separate processes (multiprocessing's
"spawn": a fresh interpreter that imports this module, so the children share nothing with the test).
"""

from __future__ import annotations

import random
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watchdog.storage.blobs import BlobStore

BLOB_SIZE = 64 * 1024  # incompressible: the write (and its fsync) takes long enough for writers to meet


def shared_content(round_no: int) -> bytes:
    """What every writer of a round stores: the same bytes for everyone."""
    return random.Random(f"shared-{round_no}").randbytes(BLOB_SIZE)


def own_content(round_no: int, writer: str) -> bytes:
    return random.Random(f"own-{round_no}-{writer}").randbytes(BLOB_SIZE // 4)


def store_round(blobs: BlobStore, round_no: int, writer: str) -> tuple[str, str]:
    """Store this round's shared blob and the writer's own; returns both digests."""
    return blobs.put(shared_content(round_no)), blobs.put(own_content(round_no, writer))


def run_threads(threads: int, job: Callable[[int], None]) -> list[str]:
    """Start `threads` threads on `job(index)` at the same instant (a barrier); the failures, as text."""
    barrier = threading.Barrier(threads)
    errors: list[str] = []
    lock = threading.Lock()

    def body(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            job(index)
        except Exception:
            with lock:
                errors.append(traceback.format_exc(limit=3))

    started = [threading.Thread(target=body, args=(i,)) for i in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join()
    return errors


def process_main(root: str, name: str, rounds: int, threads: int, barrier: Any, results: Any) -> None:
    """One writer process: each round, wait for the other process, then `threads` threads store at once."""
    blobs = BlobStore(Path(root))
    errors: list[str] = []
    for round_no in range(rounds):
        barrier.wait(timeout=60)
        errors += run_threads(threads, lambda i, r=round_no: _store(blobs, r, f"{name}-{i}"))
    results.put((name, errors))


def _store(blobs: BlobStore, round_no: int, writer: str) -> None:
    store_round(blobs, round_no, writer)

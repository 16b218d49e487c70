"""Storage, the writer lock: one process writes to a storage dir at a time (<storage dir>/.lock, flock).

Readers never take it (SQLite's WAL lets them read beside the writer). The daemon's delivery child writes
under its parent's lock: it checks that the lock is held by that process (`check_held_by`) instead.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from watchdog.errors import LockedError, StorageError

LOCK_NAME = ".lock"


class WriterLock:
    """One writer per storage dir: an exclusive flock, released by the kernel even on kill -9."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise LockedError(
                f"{self.path.parent} is in use by policy-watchdog ({holder}); "
                "only one process may write to a storage dir at a time (is the service running?)"
            ) from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
        self._fd = fd

    def check_held_by(self, pid: int) -> None:
        """Raise StorageError unless the lock is held right now, by process `pid`."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if holder == f"pid {pid}":
                    return
            else:
                fcntl.flock(fd, fcntl.LOCK_UN)
            raise StorageError(f"{self.path.parent} is not held by process {pid} ({holder or 'free'})")
        finally:
            os.close(fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

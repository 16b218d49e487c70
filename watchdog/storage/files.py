"""Storage, files: the ONE way this project replaces a file that a reader, another writer or a crash may see.

    write_atomically(path, data, durable=False)   a whole file at once
    atomic_file(path, durable=False)              a handle to stream into; committed on a clean exit only
    atomic_text_file(path, durable=False)         the same in text mode (UTF-8)
    sweep_temporaries(folder, older_than=...)     removes what writers that died mid-write left behind

Every site that writes a file other processes read goes through here: the blobs of the archive
(storage), the published feeds, site pages and their manifests (publish/output.py), the diff cache
(publish/archive.py) and `export --output FILE` (publish/commands.py).

How one write goes:
1. a temporary file is created *exclusively* (O_CREAT | O_EXCL, through tempfile.mkstemp) in the target's own
   folder, under a random name: two writers, threads or processes, never share one (issue 16: a name made of
   the pid alone was shared by the daemon's worker threads; the first rename moved the file away under the
   second writer, which then failed, or renamed a file the first was still writing);
2. the data is written; with `durable`, the file is fsynced;
3. it is renamed over the target (os.replace: atomic within a file system, so a reader sees the old file or
   the new one, never a mix). A target that already exists is replaced: for content-addressed files (blobs,
   cache entries) it holds the same bytes, so a concurrent writer of the same content is a success too;
4. with `durable`, the folder is fsynced, so the rename (and a folder just created) survives a power cut;
5. on ANY failure (a full disk, a read-only file system, an I/O error, an exception in the caller's block)
   the temporary file is removed before the error propagates: nothing half-written is left behind.

Temporary names are `.<target name>.<random>.tmp`, so `sweep_temporaries` recognises leftovers (a kill -9
mid-write) and nothing else.
"""

# Plain os functions and string paths, not pathlib: CPython 3.11's pathlib interns every path part, and the
# blobs of a long-running daemon would keep every file name they ever touched in memory for good.
# ruff: noqa: PTH100, PTH103, PTH105, PTH108, PTH112, PTH116, PTH118, PTH120

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO, Any, TextIO, cast

TEMP_SUFFIX = ".tmp"
CACHE_FOLDER = "cache"  # under a storage dir: this machine's caches (the diff cache), swept at writer start

# mkstemp creates files readable by their owner only; the files it makes here are the same files `open()`
# made before (published pages are read by web servers, blobs by auditors): the process umask decides.
# Read once, at import (os.umask can only be read by setting it, which is not safe while threads run).
_UMASK = os.umask(0o022)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK


def write_atomically(target: str | os.PathLike[str], data: bytes, *, durable: bool = False) -> None:
    """Replace `target` with `data` in one step (see the module docstring); raises OSError."""
    with atomic_file(target, durable=durable) as handle:
        handle.write(data)


def atomic_file(
    target: str | os.PathLike[str], *, durable: bool = False
) -> AbstractContextManager[IO[bytes]]:
    """A binary handle on a fresh temporary file that becomes `target` when the block ends without an
    exception. Raises OSError; the temporary file never outlives a failure."""
    return _atomic(os.fspath(target), durable=durable, mode="wb")


def atomic_text_file(
    target: str | os.PathLike[str], *, durable: bool = False
) -> AbstractContextManager[TextIO]:
    """`atomic_file` in text mode (UTF-8)."""
    return cast(AbstractContextManager[TextIO], _atomic(os.fspath(target), durable=durable, mode="w"))


@contextmanager
def _atomic(target: str, *, durable: bool, mode: str) -> Iterator[IO[Any]]:
    folder, name = os.path.split(target)
    folder = folder or "."
    _make_folder(folder, durable=durable)
    fd, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=TEMP_SUFFIX, dir=folder)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    if durable:
        fsync_folder(folder)


def _make_folder(folder: str, *, durable: bool) -> None:
    if os.path.isdir(folder):
        return
    os.makedirs(folder, exist_ok=True)  # another writer may create it at the same moment: fine
    if durable:  # a new folder's entry in its parent must survive a power cut like the file in it
        fsync_folder(os.path.dirname(os.path.abspath(folder)))


def fsync_folder(folder: str) -> None:
    """Make the folder's entries (a rename, a new file) durable."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# ".<target name>.<8 random characters of mkstemp>.tmp", and the releases before this one's blob
# temporaries, "<sha-256>.<pid>.tmp": nothing else is ever taken for a leftover (a user's own files in an
# export folder stay).
_TEMPORARY = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp|[0-9a-f]{64}\.[0-9]+\.tmp")


def is_temporary(name: str) -> bool:
    """A name this module (or the releases before it) gives its temporary files."""
    return _TEMPORARY.fullmatch(name) is not None


def sweep_temporaries(root: Path, *, older_than: float = 0.0, now: float | None = None) -> int:
    """Remove temporary files under `root` (recursively) last modified more than `older_than` seconds ago.

    Call it where no other writer can be mid-write (older_than=0: the archive's blobs, under the writer
    lock), or with an age no live write reaches (a shared cache). Returns how many were removed."""
    cutoff = (time.time() if now is None else now) - older_than
    removed = 0
    for folder, _subfolders, names in os.walk(root):
        for name in names:
            if not is_temporary(name):
                continue
            path = os.path.join(folder, name)
            with contextlib.suppress(FileNotFoundError):  # another sweeper got it first
                if os.stat(path).st_mtime <= cutoff:
                    os.unlink(path)
                    removed += 1
    return removed

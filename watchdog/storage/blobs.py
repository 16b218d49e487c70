"""Storage, blobs: content-addressed, zlib-compressed files under <storage dir>/blobs/ (SQLite backend).

    blobs/ab/abcdef...   the zlib-compressed bytes whose SHA-256 (of the uncompressed bytes) is the name

Raw page bodies, version texts and outbox payloads live here. A blob is written atomically and durably
(storage.files: a temporary file of its own per writer, fsync, rename, fsync of the folder) *before* the
transaction that references it, so a crash can at worst leave an unreferenced blob, never a dangling
reference; several threads or processes may store the same blob at once (issue 16).
"""

from __future__ import annotations

import os
import struct
import zlib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Final

from watchdog.errors import StorageError
from watchdog.storage.chain import sha256
from watchdog.storage.files import write_atomically

FOLDER = "blobs"
# zlib's level, the same in both backends (files here, rows in PostgreSQL). A check that finds a change
# compresses its raw page and its new text on the way to its one write. Measured on the corpus's real pages
# and texts (11 raw pages, 4.7 MB; 57 texts, 7.3 MB): level 1 stores 24% / 23% of the bytes at 2.5 / 0.7 ms
# per blob, level 6 19.7% / 17.7% at 7.6 / 2.9 ms: a third of the CPU for a fifth more disk, for blobs
# written once and read seldom. Reading does not depend on the level: blobs stored at any level (level 6
# before) read the same.
LEVEL = 1
# What zlib writes before a deflate stream made at levels 0-1 with a 32 KiB window (RFC 1950: CMF 0x78,
# FLEVEL 0), and zlib's gzip header at LEVEL (RFC 1952: no name, mtime 0), as gzip.compress(mtime=0) has it.
_ZLIB_FASTEST: Final = b"\x78\x01"
_GZIP_HEADER: Final = zlib.compress(b"", LEVEL, wbits=31)[:10]


class TextBlobs(ABC):
    """Blobs of bytes, and texts as their UTF-8 bytes (both backends' `Blobs`)."""

    @abstractmethod
    def put(self, data: bytes) -> str: ...

    def get(self, digest: str) -> bytes:
        return decompressed(digest, self.stored(digest))

    @abstractmethod
    def stored(self, digest: str) -> bytes:
        """The blob's stored (zlib-compressed) bytes; StorageError when missing or unreadable."""

    def get_gzip(self, digest: str) -> bytes:
        """The content as a gzip file, byte for byte what gzip.compress(content, compresslevel=1, mtime=0)
        gives (the site's raw copies); StorageError when missing or unreadable."""
        stored = self.stored(digest)
        return as_gzip(stored, decompressed(digest, stored))

    def put_text(self, text: str) -> str:
        return self.put(text.encode("utf-8"))

    def get_text(self, digest: str) -> str:
        return self.get(digest).decode("utf-8")


class BlobStore(TextBlobs):
    """The `Blobs` of a storage dir. File names are built as plain strings, not pathlib paths: CPython
    3.11's pathlib interns every path part, so a long-running daemon would keep every blob name it ever
    touched in memory for good."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._root = os.fspath(root)

    def path(self, digest: str) -> Path:
        return Path(self._file(digest))

    def _file(self, digest: str) -> str:
        return os.path.join(self._root, digest[:2], digest)  # noqa: PTH118 (see the class docstring)

    def put(self, data: bytes) -> str:
        digest = sha256(data)
        target = self._file(digest)
        if os.path.exists(target):  # noqa: PTH110
            return digest
        try:
            # a temporary file of its own per writer; a writer of the same blob finishing first is no error
            write_atomically(target, zlib.compress(data, LEVEL), durable=True)
        except OSError as exc:  # a full disk or a read-only dir: fatal, nothing referenced it yet
            raise StorageError(
                f"cannot write blob {digest[:12]} under {self.root}: {exc.strerror or exc}"
            ) from exc
        return digest

    def stored(self, digest: str) -> bytes:
        try:
            with open(self._file(digest), "rb") as handle:  # noqa: PTH123
                return handle.read()
        except FileNotFoundError as exc:
            raise StorageError(f"blob {digest} is missing from {self.root}") from exc
        except OSError as exc:
            raise StorageError(f"blob {digest} is unreadable: {exc}") from exc

    def problem(self, digest: str) -> str | None:
        """None when the blob is present, readable and its content hashes to its name; else what is wrong."""
        try:
            with open(self._file(digest), "rb") as handle:  # noqa: PTH123
                stored = handle.read()
        except FileNotFoundError:
            return "is missing"
        except OSError as exc:
            return f"is unreadable ({exc})"
        return stored_problem(digest, stored)


def decompressed(digest: str, stored: bytes) -> bytes:
    """A blob's content from its stored (zlib-compressed) bytes; StorageError naming it when they are not."""
    try:
        return zlib.decompress(stored)
    except zlib.error as exc:
        raise StorageError(f"blob {digest} is unreadable: {exc}") from exc


def as_gzip(stored: bytes, data: bytes) -> bytes:
    """`data` as a gzip file, as zlib (and gzip.compress(data, compresslevel=1, mtime=0)) writes it, given
    its stored zlib bytes.

    A blob stored at level 1 (LEVEL, both backends) holds the very deflate stream that zlib makes for a gzip
    file at level 1 (the same level, window and memory level; only the frame differs): the stream is
    reframed (gzip's header, the stream, CRC-32 and size) instead of compressed again, ~2 ms of CPU saved
    per 300 KB page. A blob stored otherwise (level 6 in releases before LEVEL was 1) is compressed anew."""
    if stored[:2] != _ZLIB_FASTEST:
        return zlib.compress(data, LEVEL, wbits=31)
    trailer = struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    return b"".join((_GZIP_HEADER, memoryview(stored)[2:-4], trailer))


def stored_problem(digest: str, stored: bytes) -> str | None:
    """What is wrong with a blob's stored (zlib-compressed) bytes, read from a file or a row; None: they
    decompress to content whose SHA-256 is its name. Shared by both backends' `Blobs.problem`."""
    try:
        data = zlib.decompress(stored)
    except zlib.error as exc:
        return f"is unreadable ({exc})"
    actual = sha256(data)
    return None if actual == digest else f"was altered: its content now hashes to {actual[:16]}…"

"""Stage 7, publish: writing generated files incrementally and atomically.

Each generated file is a `Page`: a relative path, a `key` (a hash of every input its content depends on) and
a function that renders it. A manifest in the output folder remembers the key and size of each file written;
a page whose key and size are unchanged is not even rendered, and a rendered page whose bytes equal the file
on disk is not rewritten (its mtime, and so HTTP Last-Modified, stays put). Files are replaced atomically
(storage.files: a temporary file of its own in the same folder, then os.replace; no fsync, these files are
derived and regenerated after a crash): a reader or a crash never sees half a page. Files that
this generator wrote earlier and no longer produces are removed; nothing else in the folder is touched.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from watchdog.errors import StorageError
from watchdog.storage.files import write_atomically

MANIFEST = ".manifest.json"


@dataclass(frozen=True, slots=True)
class Page:
    path: str  # relative, "/"-separated, e.g. "changes/meta-privacy-policy@c3.html"
    key: str  # changes whenever anything the content depends on changes
    render: Callable[[], bytes | None]  # None: nothing to write (e.g. its blob is missing: verify says so)


@dataclass(frozen=True, slots=True)
class WriteReport:
    written: int  # files created or replaced
    unchanged: int  # rendered, identical to the file on disk, left alone
    skipped: int  # not rendered: key and size unchanged since the last run
    removed: int  # written by an earlier run, no longer generated

    def __str__(self) -> str:
        return (
            f"{self.written} written, {self.unchanged} unchanged, {self.skipped} skipped, "
            f"{self.removed} removed"
        )


def page_key(*parts: object) -> str:
    """A key from the repr of the inputs (frozen dataclasses, tuples, strings: all have stable reprs)."""
    return hashlib.sha256(repr(parts).encode("utf-8")).hexdigest()


def write_pages(root: Path, pages: Iterable[Page], *, generator: str) -> WriteReport:
    """Bring `root` up to date with `pages`; raises StorageError when the folder cannot be written."""
    try:
        return _write_pages(root, pages, generator)
    except OSError as exc:
        raise StorageError(f"cannot write the published files under {root}: {exc.strerror or exc}") from exc


def _write_pages(root: Path, pages: Iterable[Page], generator: str) -> WriteReport:
    root.mkdir(parents=True, exist_ok=True)
    old = _read_manifest(root, generator)
    new: dict[str, tuple[str, int]] = {}
    written = unchanged = skipped = 0
    for page in pages:
        target = root / _safe_relative(page.path)
        if _is_current(target, old.get(page.path), page.key):
            new[page.path] = old[page.path]
            skipped += 1
            continue
        data = page.render()
        if data is None:
            continue
        if _same_bytes(target, data):
            unchanged += 1
        else:
            write_atomically(target, data)
            written += 1
        new[page.path] = (page.key, len(data))
    removed = _remove_stale(root, set(old) - set(new))
    if new != old or removed:
        _write_manifest(root, generator, new)
    return WriteReport(written, unchanged, skipped, removed)


def _safe_relative(path: str) -> PurePosixPath:
    relative = PurePosixPath(path)
    if relative.is_absolute() or any(part in ("", ".", "..") for part in relative.parts) or "\\" in path:
        raise ValueError(f"refusing to write outside the output folder: {path!r}")
    return relative


def _is_current(target: Path, recorded: tuple[str, int] | None, key: str) -> bool:
    if recorded is None or recorded[0] != key:
        return False
    try:
        return target.stat().st_size == recorded[1]  # a truncated or deleted file is rewritten
    except FileNotFoundError:
        return False


def _same_bytes(target: Path, data: bytes) -> bool:
    try:
        if target.stat().st_size != len(data):
            return False
        return target.read_bytes() == data
    except FileNotFoundError:
        return False


def _remove_stale(root: Path, paths: set[str]) -> int:
    removed = 0
    for path in sorted(paths):
        try:
            (root / _safe_relative(path)).unlink()
            removed += 1
        except (FileNotFoundError, ValueError):
            continue  # already gone, or a manifest entry we would never have written
    return removed


def _read_manifest(root: Path, generator: str) -> dict[str, tuple[str, int]]:
    """The keys of the last run; empty when missing, unreadable or written by other code (re-render all)."""
    try:
        data = json.loads((root / MANIFEST).read_text("utf-8"))
        if data.get("generator") != generator:
            return {path: ("", -1) for path in data.get("pages", {})}  # keep the list: stale files go
        return {str(p): (str(k), int(s)) for p, (k, s) in data["pages"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _write_manifest(root: Path, generator: str, pages: dict[str, tuple[str, int]]) -> None:
    body = {"generator": generator, "pages": {p: list(v) for p, v in sorted(pages.items())}}
    write_atomically(root / MANIFEST, json.dumps(body, separators=(",", ":")).encode("utf-8"))

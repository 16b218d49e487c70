"""Stage 2, extract: the reading cache. Which fingerprints (watchdog.fastread) the captures of a target had
lately, and which text each was read as, so that a capture with new page noise and the same text is known
to be unchanged without rendering its text.

fetch -> **extract** (fingerprint -> "same text as the current version"?) -> validate -> store -> ...

One small JSON file per target under the storage dir (`cache/readings/`), like the diff cache: a cache on
this machine, never the archive (a missing, stale or damaged file only costs a full reading). An entry is
trusted only under the key it was written with: the target's extraction settings (config_fingerprint) and
the code and library versions that make fingerprints and texts (the reader's and the parser of record's
modules, lxml, libxml2, libxslt, beautifulsoup4, soupsieve). The pipeline uses an entry only when its text
is the target's current version (so validation has nothing new to say, as for the same text read fully)
and the response is a 2xx. An entry also names the body it was read from, so a new text need not read the
current version's raw page again to compare like with like: that body's reading under today's key is known.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from watchdog.config import config_fingerprint
from watchdog.models import Target
from watchdog.publish.archive import code_fingerprint
from watchdog.storage.files import write_atomically

__all__ = ["ReadingCache", "readings_dir"]

log = logging.getLogger(__name__)

KEEP = 8  # entries per target: a page that alternates between a few markup variants still hits
_CODE = ("watchdog.extract", "watchdog.fastread", "watchdog.cssxpath")
_LIBRARIES = (("bs4", "__init__.py"), ("soupsieve", "__meta__.py"))  # the files holding their versions


def readings_dir(storage_dir: Path) -> Path:
    return storage_dir / "cache" / "readings"


@dataclass(frozen=True, slots=True)
class Entry:
    fingerprints: tuple[str, ...]  # one per selector set tried (the plain select, then alternatives)
    text_hash: str
    body_hash: str | None = None  # the sha256 of the body read in full (None: an entry of an older release)


class ReadingCache:
    """The cache of one storage dir (see the module docstring)."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        # A check asks for a target's entries up to three times (new noise? the current raw page's reading?
        # then adding its own): each file is parsed once while it stays as it was (same inode, size, mtime).
        self._parsed: dict[Path, tuple[tuple[int, int, int], str, list[Entry]]] = {}

    def entries(self, target: Target) -> list[Entry]:
        """The target's entries, newest first ([] when none can be trusted)."""
        path = self._path(target)
        try:
            stat = path.stat()
        except FileNotFoundError:
            return []
        except OSError as exc:
            log.debug("ignoring the unreadable reading cache %s: %s", path, exc)
            return []
        version = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        parsed = self._parsed.get(path)
        key = _key(target)
        if parsed is None or parsed[0] != version or parsed[1] != key:
            parsed = self._parsed[path] = (version, key, self._read(path, key))
        return list(parsed[2])

    def _read(self, path: Path, key: str) -> list[Entry]:
        try:
            data = json.loads(path.read_text("utf-8"))
            if data["key"] != key:
                return []
            entries = data["entries"]
            return [Entry(tuple(e["fingerprints"]), e["text_hash"], e.get("body_hash")) for e in entries]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.debug("ignoring the unreadable reading cache %s: %s", path, exc)
            return []

    def read_as(self, target: Target, body_hash: str) -> str | None:
        """The hash of the text the body with this hash was read as, with today's code and the target's
        settings (None: not known)."""
        return next((e.text_hash for e in self.entries(target) if e.body_hash == body_hash), None)

    def add(self, target: Target, entry: Entry) -> None:
        """Remember `entry` as the newest (best effort: a read-only or full disk only costs time)."""
        entries = self.entries(target)
        if entries and entries[0] == entry:
            return
        kept = [entry, *(e for e in entries if e != entry)][:KEEP]
        data = {
            "key": _key(target),
            "target": target.id,
            "entries": [
                {"fingerprints": list(e.fingerprints), "text_hash": e.text_hash, "body_hash": e.body_hash}
                for e in kept
            ],
        }
        try:
            write_atomically(self._path(target), json.dumps(data).encode("utf-8"))
        except OSError as exc:
            log.debug("cannot write the reading cache under %s: %s", self._directory, exc)

    def _path(self, target: Target) -> Path:
        return self._directory / f"{hashlib.sha256(target.id.encode()).hexdigest()[:32]}.json"


def _key(target: Target) -> str:
    return f"{_code_key()}:{config_fingerprint(target)}"


@cache
def _code_key() -> str:
    """The code and library versions a fingerprint and its text depend on (computed once per process)."""
    from lxml import etree  # lazy: the reader loads it anyway

    digest = hashlib.sha256(code_fingerprint(*_CODE).encode())
    digest.update(repr((etree.LXML_VERSION, etree.LIBXML_VERSION, etree.LIBXSLT_VERSION)).encode())
    for package, module in _LIBRARIES:  # read, not imported (importing them costs tens of milliseconds)
        spec = importlib.util.find_spec(package)
        version = Path(spec.origin).with_name(module) if spec and spec.origin else None
        digest.update(version.read_bytes() if version and version.is_file() else package.encode())
    return digest.hexdigest()[:32]

"""watchdog.readings: the reading cache of a storage dir. A cache instance parses a target's file once while
it stays as written, and sees at once what another writer (another process, another instance) wrote."""

from __future__ import annotations

import json
from pathlib import Path

from watchdog.models import Target
from watchdog.readings import Entry, ReadingCache


def _target(select: str = "#root") -> Target:
    return Target(id="fb", name="Facebook", url="http://127.0.0.1/p", select=(select,))


def test_entries_follow_the_file_as_other_writers_change_it(tmp_path: Path) -> None:
    ours, theirs = ReadingCache(tmp_path), ReadingCache(tmp_path)
    target = _target()
    assert ours.entries(target) == []
    first, second = Entry(("f1",), "t1", "b1"), Entry(("f2",), "t2", "b2")
    ours.add(target, first)
    assert ours.entries(target) == [first] == theirs.entries(target)
    theirs.add(target, second)  # another writer: a new file (an atomic replace), read again
    assert ours.entries(target) == [second, first]
    assert ours.read_as(target, "b1") == "t1"
    (path,) = tmp_path.iterdir()
    path.write_text("{damaged", encoding="utf-8")
    assert ours.entries(target) == [], "a damaged file is no entry, even after a good one was parsed"
    path.unlink()
    assert ours.entries(target) == []


def test_entries_are_trusted_only_under_the_target_settings_they_were_written_with(tmp_path: Path) -> None:
    cache = ReadingCache(tmp_path)
    cache.add(_target(), Entry(("f1",), "t1", "b1"))
    assert cache.entries(_target()) != []
    assert cache.entries(_target("main")) == [], "an edited selector: the parsed file is not trusted"
    (path,) = tmp_path.iterdir()
    assert json.loads(path.read_text(encoding="utf-8"))["entries"][0]["text_hash"] == "t1"


def test_a_caller_cannot_change_the_parsed_entries(tmp_path: Path) -> None:
    cache = ReadingCache(tmp_path)
    cache.add(_target(), Entry(("f1",), "t1", "b1"))
    cache.entries(_target()).clear()
    assert cache.entries(_target()) == [Entry(("f1",), "t1", "b1")]

"""Storage, the sentence index: its rules, shared by every backend (no SQL here).

Every version's text is cut into sentences by the diff's own splitter (diff.split_sentences: lines, table
cells, sentence ends), so search, `trace` and the site's "in the policy since" see the same sentences an
alert quotes. The backend keeps, per target, each distinct sentence once (its SHA-256, its text, the first
and the last version, in recording order, that held it) in a full-text index (SQLite FTS5; PostgreSQL full
text search), and per version the ids of its sentences, packed (`pack_ids`).

A query is words and "quoted phrases" (`parse_query`); every term must occur (or, for the nearest-sentence
look-up of `trace`, any term). Terms are passed to the engine as quoted literals (`fts5_query`), so no query
text is ever read as the engine's own syntax (NEAR, column filters, `*`, parentheses).
"""

from __future__ import annotations

import hashlib
import re
import struct
import zlib
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING

from watchdog.deferred import deferred
from watchdog.storage.records import Row, moment

# The splitter is loaded when a new version's sentences are first indexed (watchdog/deferred.py): opening
# the archive, or a cycle without a new version, never needs the diff.
if TYPE_CHECKING:
    from watchdog import archived, diff
    from watchdog.archived import SentenceHit
else:
    archived = deferred("watchdog.archived")  # search's results: never before a check's requests
    diff = deferred("watchdog.diff")

MAX_RESULTS = 500  # the most sentences one search answers with, whatever the caller asks
_TERMS = re.compile(r'"([^"]*)"|(\S+)')
_WORD = re.compile(r"\w", re.UNICODE)


def sentence_hash(sentence: str) -> str:
    return hashlib.sha256(sentence.encode("utf-8")).hexdigest()


def sentences_of(text: str) -> list[tuple[str, str]]:
    """The distinct sentences of a version's text, in order of first occurrence, as (hash, sentence). A
    "sentence" without a letter (a footnote number, a table rule) is not one.

    Line by line (no sentence spans two lines), each line's sentences kept (`_line_sentences`): a check that
    records a new version indexes its text, then publishing reads the sentences of each of its paragraphs
    again (the version page's "in the policy since"), and a policy's lines recur from version to version."""
    seen: dict[str, str] = {}
    previous = ""
    for line in text.split("\n"):
        found = _line_sentences(line) if line[:1] not in _TERMINATORS else _after(previous, line)
        for digest, sentence in found:
            seen.setdefault(digest, sentence)
        previous = line
    return list(seen.items())


# A line that starts with a sentence end: whether it ends a sentence there depends on the word that ends the
# line before (diff.split_sentences looks back across the line break for an abbreviation such as "e.g").
_TERMINATORS = frozenset(".!?…")


@lru_cache(maxsize=8192)
def _line_sentences(line: str) -> tuple[tuple[str, str], ...]:
    return _lettered(line, diff.split_sentences(line))


def _after(previous: str, line: str) -> tuple[tuple[str, str], ...]:
    """The sentences of `line` read after `previous` (its line break included), as in the whole text."""
    text = f"{previous}\n{line}"
    offset = len(previous) + 1
    return _lettered(text, [span for span in diff.split_sentences(text) if span[0] >= offset])


def _lettered(text: str, spans: Iterable[tuple[int, int]]) -> tuple[tuple[str, str], ...]:
    sentences = (text[start:end] for start, end in spans)
    return tuple((sentence_hash(s), s) for s in sentences if any(c.isalpha() for c in s))


# zlib's level for a version's packed ids, written with each new version: on 2,500 ids (20,000 bytes,
# ascending runs as a policy's sentences are added) level 1 stores 4,063 bytes in 0.13 ms, level 6 4,046
# in 0.94 ms. Reading does not depend on the level (versions packed at 6 before read the same).
IDS_LEVEL = 1


def pack_ids(ids: Iterable[int]) -> bytes:
    """Sentence ids as stored per version: unsigned 64-bit little-endian, zlib-compressed."""
    values = list(ids)
    return zlib.compress(struct.pack(f"<{len(values)}Q", *values), IDS_LEVEL)


def unpack_ids(blob: bytes) -> tuple[int, ...]:
    raw = zlib.decompress(blob)
    return struct.unpack(f"<{len(raw) // 8}Q", raw)


def parse_query(query: str) -> tuple[str, ...]:
    """The terms of a query: each "quoted phrase" and each other word, in order; terms without a letter or
    digit are dropped. ValueError when nothing searchable is left."""
    terms = []
    for match in _TERMS.finditer(query):
        term = " ".join((match.group(1) if match.group(1) is not None else match.group(2)).split())
        if _WORD.search(term):
            terms.append(term)
    if not terms:
        raise ValueError(f'nothing to search for in {query!r}: give words or a "quoted phrase"')
    return tuple(terms)


def fts5_query(terms: Iterable[str], *, any_term: bool = False) -> str:
    """An FTS5 MATCH expression: each term a quoted string (a phrase for several words), all required (or
    any, for `any_term`)."""
    quoted = ['"' + term.replace('"', '""') + '"' for term in terms]
    return (" OR " if any_term else " ").join(quoted)


def hit(row: Row, current: frozenset[int]) -> SentenceHit:
    """A search answer from its row (id, target_id, text, first_version, first_seen, last_version,
    last_seen); `current`: the sentence ids of its target's current version (still there: no last seen)."""
    still_there = int(row["id"]) in current
    return archived.SentenceHit(
        target_id=row["target_id"],
        sentence=row["text"],
        first_seen=moment(row["first_seen"]),
        first_version=row["first_version"],
        last_seen=None if still_there else moment(row["last_seen"]),
        last_version=None if still_there else row["last_version"],
    )

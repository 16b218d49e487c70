"""The life of a sentence (`trace`), and since when each sentence has been in a policy (the site).

Both read the sentence index (storage/search.py): the versions of a target in recording order, each with
the ids of its sentences. A sentence's life is followed across them:

- it *appears* in the first version that holds it (or again, after an absence);
- it is *edited* when a version drops it and adds a sentence close enough to be its new wording (the
  closest one whose similarity, difflib's ratio on case-folded text, is at least EDITED); the edited
  sentence is followed from then on, and the same rule, run backwards, finds the wording it had before;
- it *disappears* when a version drops it without such a successor.

`trace` takes the sentence as the user types it; when no sentence is exactly that text (after whitespace
is tidied), it follows the nearest one: the most similar of the sentences sharing any word with it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from difflib import SequenceMatcher
from typing import Literal

from watchdog.archived import TraceEvent, VersionSentences
from watchdog.errors import NotFoundError, QueryError
from watchdog.models import Version
from watchdog.storage.interfaces import ArchiveReader
from watchdog.storage.search import sentence_hash

EventKind = Literal["appeared", "edited", "disappeared"]
EDITED = 0.6  # the least similarity between a dropped sentence and a new one for an edit
NEAREST_CANDIDATES = 200  # sentences sharing a word with the text asked for, among which the nearest


@dataclass(frozen=True)
class Trace:
    target_id: str
    asked: str
    sentence: str  # the sentence followed: the text asked for, or the nearest one
    exact: bool
    events: tuple[TraceEvent, ...]


def similarity(a: str, b: str) -> float:
    matcher = SequenceMatcher(None, a.casefold(), b.casefold(), autojunk=False)
    return matcher.ratio() if matcher.real_quick_ratio() >= EDITED else 0.0


def trace(reader: ArchiveReader, target_id: str, text: str) -> Trace:
    asked = " ".join(text.split())
    start, sentence, exact = _find(reader, target_id, asked)
    presence = reader.sentence_presence(target_id)
    life = _Life(reader, target_id, presence)
    origin, index = life.origin(start, sentence)
    return Trace(target_id, asked, sentence, exact, tuple(life.forward(origin, index)))


def _find(reader: ArchiveReader, target_id: str, asked: str) -> tuple[int, str, bool]:
    """The sentence to follow: (id, text, exact?)."""
    found = reader.sentence_ids(target_id, [sentence_hash(asked)])
    if found:
        return next(iter(found.values())), asked, True
    try:
        hits = reader.search(asked, target=target_id, limit=NEAREST_CANDIDATES, any_term=True)
    except QueryError as exc:
        raise NotFoundError(f"nothing to trace in {asked!r}: {exc}") from exc
    if not hits:
        raise NotFoundError(f"{target_id}: no sentence of its archive shares a word with {asked!r}")
    nearest = max(
        hits, key=lambda hit: SequenceMatcher(None, asked.casefold(), hit.sentence.casefold()).ratio()
    )
    ids = reader.sentence_ids(target_id, [sentence_hash(nearest.sentence)])
    return ids[sentence_hash(nearest.sentence)], nearest.sentence, False


class _Life:
    """Following one sentence through a target's versions (see the module docstring)."""

    def __init__(self, reader: ArchiveReader, target_id: str, presence: Sequence[VersionSentences]) -> None:
        self._reader = reader
        self._target = target_id
        self._presence = presence
        self._texts: dict[int, str] = {}

    def text(self, sentence_id: int) -> str:
        if sentence_id not in self._texts:
            self._texts.update(self._reader.sentence_texts(self._target, [sentence_id]))
        return self._texts[sentence_id]

    def closest(self, wording: str, candidates: frozenset[int]) -> int | None:
        if not candidates:
            return None
        self._texts.update(self._reader.sentence_texts(self._target, candidates - self._texts.keys()))
        scored = [(similarity(wording, self._texts[c]), c) for c in sorted(candidates)]
        score, best = max(scored, default=(0.0, None))
        return best if score >= EDITED else None

    def origin(self, sentence_id: int, wording: str) -> tuple[int, int]:
        """The earliest wording of the sentence and the index of the version where it appeared."""
        index = next((i for i, v in enumerate(self._presence) if sentence_id in v.sentence_ids), None)
        if index is None:
            raise NotFoundError(f"{self._target}: the sentence is in no version")
        current, current_wording = sentence_id, wording
        while index > 0:
            before, now = self._presence[index - 1].sentence_ids, self._presence[index].sentence_ids
            previous = self.closest(current_wording, before - now)
            if previous is None:
                break
            index -= 1
            while index > 0 and previous in self._presence[index - 1].sentence_ids:
                index -= 1
            current, current_wording = previous, self.text(previous)
        return current, index

    def forward(self, sentence_id: int, index: int) -> Iterator[TraceEvent]:
        current, present = sentence_id, True
        yield self._event(self._presence[index].version, "appeared", current)
        for step in range(index + 1, len(self._presence)):
            version, ids = self._presence[step].version, self._presence[step].sentence_ids
            if present and current not in ids:
                added = ids - self._presence[step - 1].sentence_ids
                successor = self.closest(self.text(current), added)
                if successor is not None:
                    current = successor
                    yield self._event(version, "edited", current)
                else:
                    present = False
                    yield self._event(version, "disappeared", current)
            elif not present and current in ids:
                present = True
                yield self._event(version, "appeared", current)

    def _event(self, version: Version, kind: EventKind, sentence_id: int) -> TraceEvent:
        return TraceEvent(self._target, version.id, version.first_seen, kind, self.text(sentence_id))


# --------------------------------------------------------------------------- since when (the site)


def since_when(presence: Sequence[VersionSentences]) -> Iterator[tuple[Version, Mapping[int, datetime]]]:
    """For each version, in recording order: since when each of its sentences has been in the policy
    without a break (the first_seen of the first version of its current run)."""
    since: dict[int, datetime] = {}
    previous: frozenset[int] = frozenset()
    for entry in presence:
        for gone in previous - entry.sentence_ids:
            del since[gone]
        for new in entry.sentence_ids - previous:
            since[new] = entry.version.first_seen
        previous = entry.sentence_ids
        yield entry.version, since

"""Stage 6, classify: which watched topics a TextDiff touches, with the evidence for each.

fetch -> extract -> validate -> store -> diff -> **classify** -> notify/publish

The rule. A change touches a topic when one of the topic's patterns (case-insensitive regexes) matches
- an inserted or deleted segment (side "inserted" / "deleted"), or
- the sentence holding that segment (side "context"): "we rely on *consent* to train AI" -> "... on
  *legitimate interests* ..." touches ai-training too, though "train AI" did not change.

A topic counts only when the edit itself touches it. Guards, all through `watchdog.normalise` (the one
meaning-preserving normaliser):
- A hunk whose every edit is editorial (`editorial_reason`: locale spelling, date format, typography, case,
  punctuation, footnotes, headings re-rendered, link labels, update notices) touches nothing.
- An edit inside a sentence whose meaning did not change (the sentence's `meaning_key` is on the other side
  of the hunk too) touches nothing: "organize" -> "organise" in a sentence about AI is no AI change.
- Only substantive changes count: a segment without a letter or digit (whitespace, punctuation) does not,
  nor a deleted/inserted pair with the same meaning key ("entités" -> "Entités", "licence" -> "license").
- A context match must lie within `context_window` characters of the change: a whole sentence of normal
  prose is inside it, but a run-on table cell of thousands of characters cannot lend its far-away words.
- A hunk with no unchanged text in it (a new paragraph, a block too large to word-diff) is compared
  sentence by sentence: the sentences found on one side only are the changes, so a sentence that merely
  moved within a rewritten block touches nothing; and a long sentence found in both versions with an edit
  (a table cell) counts only the region between what its two versions share at the start and the end.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

from watchdog.diff import DELETE, EQUAL, INSERT, changed_region, pair_sentences, split_sentences
from watchdog.errors import ConfigError, ConfigProblem
from watchdog.messages import Classification, Hunk, TextDiff, TopicMatch
from watchdog.models import SEVERITY_RANK, Side, Topic
from watchdog.normalise import editorial_reason, meaning_key
from watchdog.patterns import fold, required_literals

CONTEXT_WINDOW = 250  # characters around a change where its sentence's words still count


@dataclass(frozen=True, slots=True)
class CompiledTopic:
    topic: Topic
    regexes: tuple[re.Pattern[str], ...]


@dataclass(frozen=True, slots=True)
class CompiledTopics:
    """Topics with their regexes compiled once, ordered by severity (high first), then id."""

    topics: tuple[CompiledTopic, ...]


def compile_topics(topics: Sequence[Topic], *, source: str = "topics") -> CompiledTopics:
    """Compile every pattern (IGNORECASE); raise ConfigError listing every problem found.

    `source` names the file the topics came from, for the error messages.
    """
    problems: list[ConfigProblem] = []
    compiled: list[CompiledTopic] = []
    seen: set[str] = set()
    for topic in topics:
        if topic.id in seen:
            problems.append(ConfigProblem(source, f"topics.{topic.id}", "duplicate topic id"))
        seen.add(topic.id)
        compiled.append(_compile_topic(topic, source, problems))
    if problems:
        raise ConfigError(problems)
    return CompiledTopics(tuple(sorted(compiled, key=lambda c: _order(c.topic))))


def classify(
    diff: TextDiff,
    topics: CompiledTopics,
    *,
    only: Sequence[str] | None = None,
    context_window: int = CONTEXT_WINDOW,
) -> Classification:
    """The topics the diff touches (severity high first, then id) and every match as evidence.

    `only` restricts to these topic ids (a target's `topics`); None means every topic.
    """
    active = topics.topics if only is None else tuple(c for c in topics.topics if c.topic.id in only)
    found: dict[tuple[str, str, str, str, int], TopicMatch] = {}
    editorial = tuple(editorial_reason(hunk.before, hunk.after) for hunk in diff.hunks)
    moved = _Moved.of(diff, editorial)
    hits = _SentenceHits(active)  # one for the diff: a sentence's hits depend on its text and offset only
    for index, hunk in enumerate(diff.hunks):
        if editorial[index] is not None:
            continue  # only meaning-preserving edits: no topic can fire
        for change in _changes(hunk, context_window, moved):
            for match in _matches(change, hits, index, context_window):
                found.setdefault(_key(match), match)
    ordered = _ordered(_without_redundant_context(list(found.values())), active)
    topic_ids = tuple(dict.fromkeys(m.topic_id for m in ordered))
    severities = {c.topic.id: c.topic.severity for c in active}
    severity = max((severities[t] for t in topic_ids), key=_rank, default="none")
    return Classification(topics=topic_ids, matches=ordered, severity=severity, editorial=editorial)


# --------------------------------------------------------------------------- internals

_SIDES: dict[str, int] = {"inserted": 0, "deleted": 1, "context": 2}


@dataclass(frozen=True, slots=True)
class _Change:
    """One substantive change: `text[start:end]` on one side of a hunk, with that side's sentences."""

    side: Side
    text: str
    start: int
    end: int
    sentences: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class _Hit:
    topic_id: str
    pattern: str
    start: int  # in the hunk side's text
    end: int


class _SentenceHits:
    """Pattern hits per sentence (its text and its offset in its hunk's side), computed once however many
    changes share the sentence.

    A pattern is searched in a sentence only when the sentence holds one of the literals every match of the
    pattern contains (patterns.required_literals): most sentences of a passage hold none, and a few
    substring tests replace ~70 regular-expression scans. The hits are exactly the patterns' own."""

    def __init__(self, active: tuple[CompiledTopic, ...]) -> None:
        self._plan = _plan(active)
        self._literals = _literals(self._plan)
        self._by_literal = _by_literal(self._plan)
        self._unfiltered = frozenset(
            i for i, (_id, _regex, literals) in enumerate(self._plan) if literals is None
        )
        self._cache: dict[tuple[str, int, str], list[_Hit]] = {}

    def get(self, change: _Change, start: int, end: int) -> list[_Hit]:
        sentence = change.text[start:end]
        key = (change.side, start, sentence)
        if key not in self._cache:
            # might_match(folded, literals) for each pattern, as one pass over the distinct literals of all
            # the patterns (many share one), then only the patterns of the literals found (most sentences
            # hold none or one), in the plan's order
            folded = fold(sentence)
            present = [self._by_literal[literal] for literal in self._literals if literal in folded]
            self._cache[key] = [
                _Hit(topic_id, regex.pattern, start + m.start(), start + m.end())
                for index in sorted(self._unfiltered.union(*present))
                for topic_id, regex, _literals in (self._plan[index],)
                for m in regex.finditer(sentence)
            ]
        return self._cache[key]


_Plan = tuple[tuple[str, re.Pattern[str], tuple[str, ...] | None], ...]


@lru_cache(maxsize=32)
def _plan(active: tuple[CompiledTopic, ...]) -> _Plan:
    """Each pattern of the active topics, in order, with its required literals (read once per topic set)."""
    return tuple((c.topic.id, regex, required_literals(regex)) for c in active for regex in c.regexes)


@lru_cache(maxsize=32)
def _literals(plan: _Plan) -> frozenset[str]:
    """The distinct required literals of a plan's patterns."""
    return frozenset(literal for _id, _regex, literals in plan for literal in literals or ())


@lru_cache(maxsize=32)
def _by_literal(plan: _Plan) -> dict[str, frozenset[int]]:
    """The indexes (in the plan) of the patterns that a literal lets through."""
    found: dict[str, set[int]] = {}
    for index, (_id, _regex, literals) in enumerate(plan):
        for literal in literals or ():
            found.setdefault(literal, set()).add(index)
    return {literal: frozenset(indexes) for literal, indexes in found.items()}


def _compile_topic(topic: Topic, source: str, problems: list[ConfigProblem]) -> CompiledTopic:
    key = f"topics.{topic.id}"
    if topic.severity not in SEVERITY_RANK:
        problems.append(ConfigProblem(source, f"{key}.severity", "must be high, medium or low"))
    if not topic.patterns:
        problems.append(ConfigProblem(source, f"{key}.patterns", "needs at least one pattern"))
    regexes = [_compile(p, source, f"{key}.patterns[{i}]", problems) for i, p in enumerate(topic.patterns)]
    return CompiledTopic(topic, tuple(r for r in regexes if r is not None))


def _compile(pattern: str, source: str, key: str, problems: list[ConfigProblem]) -> re.Pattern[str] | None:
    try:
        regex = re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        problems.append(ConfigProblem(source, key, f"invalid regular expression {pattern!r}: {exc}"))
        return None
    if regex.search("") is not None:
        problems.append(ConfigProblem(source, key, f"{pattern!r} matches empty text, so any change"))
        return None
    return regex


def _ordered(matches: list[TopicMatch], active: Sequence[CompiledTopic]) -> tuple[TopicMatch, ...]:
    """By topic (severity, then id), then hunk, then side (inserted, deleted, context)."""
    ranks = {c.topic.id: i for i, c in enumerate(active)}
    return tuple(sorted(matches, key=lambda m: (ranks[m.topic_id], m.hunk_index, _SIDES[m.side])))


def _order(topic: Topic) -> tuple[int, str]:
    return (-SEVERITY_RANK.get(topic.severity, 0), topic.id)


def _rank(severity: str) -> int:
    return SEVERITY_RANK.get(severity, 0)


def _key(match: TopicMatch) -> tuple[str, str, str, str, int]:
    return (match.topic_id, match.pattern, match.side, match.sentence, match.hunk_index)


def _without_redundant_context(matches: list[TopicMatch]) -> list[TopicMatch]:
    """Drop a context match when the same pattern already matched changed text of that sentence."""
    direct = {(m.topic_id, m.pattern, m.sentence, m.hunk_index) for m in matches if m.side != "context"}
    return [
        m
        for m in matches
        if m.side != "context" or (m.topic_id, m.pattern, m.sentence, m.hunk_index) not in direct
    ]


@dataclass(frozen=True, slots=True)
class _Moved:
    """Meaning keys of the sentences on each side of all the diff's meaningful hunks: a sentence deleted in
    one hunk and inserted (same meaning) in another moved, or was re-aligned by the line diff; it did not
    change."""

    before: frozenset[str]
    after: frozenset[str]

    @classmethod
    def of(cls, diff: TextDiff, editorial: Sequence[str | None]) -> _Moved:
        hunks = [h for h, reason in zip(diff.hunks, editorial, strict=True) if reason is None]
        return cls(_keys(h.before for h in hunks), _keys(h.after for h in hunks))


def _keys(texts: Iterable[str]) -> frozenset[str]:
    return frozenset(meaning_key(text[a:b]) for text in texts for a, b in split_sentences(text))


def _changes(hunk: Hunk, window: int, moved: _Moved) -> Iterator[_Change]:
    if any(segment.op == EQUAL for segment in hunk.segments):
        yield from _segment_changes(hunk, moved)
    else:
        yield from _sentence_changes(hunk, window, moved)


def _segment_changes(hunk: Hunk, moved: _Moved) -> Iterator[_Change]:
    old = _meaningful_spans(hunk.before, moved.after)
    new = _meaningful_spans(hunk.after, moved.before)
    cosmetic = _cosmetic_indexes(hunk)
    pos_a = pos_b = 0
    for index, segment in enumerate(hunk.segments):
        size = len(segment.text)
        start = pos_b if segment.op == INSERT else pos_a
        pos_a += 0 if segment.op == INSERT else size
        pos_b += 0 if segment.op == DELETE else size
        if segment.op == EQUAL or index in cosmetic or not _substantive(segment.text):
            continue
        spans = old if segment.op == DELETE else new
        if not any(a < start + size and start < b for a, b in spans):
            continue  # inside sentences whose meaning is unchanged (a spelling or punctuation edit)
        if segment.op == DELETE:
            yield _Change("deleted", hunk.before, start, start + size, spans)
        else:
            yield _Change("inserted", hunk.after, start, start + size, spans)


def _meaningful_spans(text: str, other_keys: frozenset[str]) -> tuple[tuple[int, int], ...]:
    """Sentence spans of `text` whose meaning is not among the other side's sentences."""
    return tuple((a, b) for a, b in split_sentences(text) if meaning_key(text[a:b]) not in other_keys)


def _sentence_changes(hunk: Hunk, window: int, moved: _Moved) -> Iterator[_Change]:
    """No common text: the sentences present on one side only are the changes.

    A long sentence (a run-on table cell) edited in one place is paired with its new version, and only
    the region between their common start and end counts as changed, so the cell's other words stay
    context (bounded by the window) instead of all becoming "changed".
    """
    old = [s for s in hunk.sentences_before if meaning_key(s) not in moved.after]
    new = [s for s in hunk.sentences_after if meaning_key(s) not in moved.before]
    old_regions, new_regions = _edited_regions(old, new, longer_than=2 * window)
    for i, sentence in enumerate(old):
        yield from _region_change("deleted", sentence, old_regions.get(i, (0, len(sentence))))
    for j, sentence in enumerate(new):
        yield from _region_change("inserted", sentence, new_regions.get(j, (0, len(sentence))))


def _edited_regions(
    old: list[str], new: list[str], *, longer_than: int
) -> tuple[dict[int, tuple[int, int]], dict[int, tuple[int, int]]]:
    old_regions: dict[int, tuple[int, int]] = {}
    new_regions: dict[int, tuple[int, int]] = {}
    for i, j in pair_sentences(old, new, longer_than=longer_than).items():
        prefix, suffix = changed_region(old[i], new[j])
        old_regions[i] = (prefix, len(old[i]) - suffix)
        new_regions[j] = (prefix, len(new[j]) - suffix)
    return old_regions, new_regions


def _region_change(side: Side, sentence: str, region: tuple[int, int]) -> Iterator[_Change]:
    start, end = region
    if _substantive(sentence[start:end]):
        yield _Change(side, sentence, start, end, ((0, len(sentence)),))


def _cosmetic_indexes(hunk: Hunk) -> set[int]:
    """Indexes of deleted/inserted neighbours that differ only in case, punctuation or spacing."""
    cosmetic: set[int] = set()
    segments = hunk.segments
    for i in range(len(segments) - 1):
        first, second = segments[i], segments[i + 1]
        if {first.op, second.op} == {DELETE, INSERT} and _fold(first.text) == _fold(second.text):
            cosmetic.update((i, i + 1))
    return cosmetic


def _fold(text: str) -> str:
    return meaning_key(text)


def _substantive(text: str) -> bool:
    return any(char.isalnum() for char in text)


def _matches(change: _Change, hits: _SentenceHits, hunk_index: int, window: int) -> Iterator[TopicMatch]:
    """Hits in the sentences the change lies in: on the change itself, or near it (context)."""
    for start, end in change.sentences:
        if not (start < change.end and change.start < end):
            continue
        sentence = change.text[start:end]
        for hit in hits.get(change, start, end):
            if hit.start < change.end and change.start < hit.end:
                side: Side = change.side
            elif hit.end >= change.start - window and hit.start <= change.end + window:
                side = "context"
            else:
                continue
            yield TopicMatch(hit.topic_id, hit.pattern, side, sentence, hunk_index)

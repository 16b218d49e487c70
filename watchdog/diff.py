"""Stage 5, diff: two canonical texts -> a TextDiff of readable hunks.

fetch -> extract -> validate -> store -> **diff** -> classify -> notify/publish

How, and why this way:
- diff-match-patch with `Diff_Timeout = 0`: a deadline makes the result depend on machine load, and an
  archive of changes must be repeatable (same two texts, same hunks, on any machine, any day). The diffs
  themselves run in diff-match-patch's C++ port (fast-diff-match-patch): the same algorithm, the same
  edits (tests/test_diff.py compares it with the pure-Python port on real corpus changes), 20-50x faster:
  the pure-Python bisect over a page's ~2,000 lines and ~150 changed blocks took most of a changed
  check's CPU. The Python port still does the cleanups (our semantic cleanup works in token space).
- Line mode first: the canonical text has one block (heading, list item, table row, paragraph) per line,
  so a changed block is a run of changed lines. Inside each block, a word-level diff (our own
  words-to-characters encoding: words, whitespace runs and single punctuation marks are the tokens), then
  cleanupSemantic, so highlights never cut a word in half.
- A block bigger than `max_block_chars` is not word-diffed (an exact diff of a large rewrite can take
  minutes in pure Python): it stays one hunk of whole lines and `TextDiff.truncated` is set.
- Every hunk carries the whole sentences that hold its changes, old side and new side: alerts quote them.
- Every hunk names its place (watchdog.sections): the heading path at its first change, in the new text
  (in the old one for a pure deletion), with the row label and column inside a table.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from watchdog.messages import Hunk, Segment, TextDiff
from watchdog.patterns import lazy
from watchdog.sections import Place, column_at, places

DELETE, EQUAL, INSERT = -1, 0, 1

# Tokens of the word-level diff: a word, a run of whitespace, or one other character (punctuation).
_TOKEN = lazy(r"\w+|\s+|[^\w\s]")

# Private-use (and, past those, unassigned) code points stand for tokens: diff-match-patch's cleanup
# scores boundaries by character class, and characters of one class keep that scoring neutral.
_SYMBOL_RANGES = ((0xE000, 0xF8FF), (0xF0000, 0xFFFFD), (0x100000, 0x10FFFD), (0x40000, 0xDFFFF))

# Sentence boundaries. A terminator run, with any closing quotes or brackets after it, and whitespace after
# those (none of the run's characters is whitespace: the lookahead only leaves out the runs that end no
# sentence, as a line's last full stop, without a match to look at for each).
_TERMINATOR = lazy(r"[.!?…]+[\"'»”’)\]]*(?=\s)")
_OPENERS = frozenset("\"'«“‘([¿¡")
# Table cells are separate units of text, like lines: " | " inside a row, "|" at its edges; so are the
# list items inside a cell (" • ", see extract.CELL_ITEM).
_CELL_SEPARATOR = lazy(r"\s\|(?=\s|$)|^\|(?=\s|$)|\s•(?=\s)")
# Block markers (heading hashes, list bullets, "1." numbering) are structure, not part of a sentence.
_BLOCK_MARKER = lazy(r"(?:#{1,6}|[-*+•]|\d{1,3}[.)])[ \t]+")
_PRECEDING_WORD = lazy(r"[\w.°-]*$")
_WORD_LOOKBACK = 24  # characters searched for the word before a ".": the longest abbreviation fits
# Words whose final "." never ends a sentence ...
_ABBREVIATIONS = frozenset(
    {"e.g", "i.e", "etc", "inc", "ltd", "corp", "co", "vs", "cf", "approx", "mr", "mrs", "ms", "dr"}
    | {"prof", "st", "jr", "sr", "ca", "resp", "viz", "p.ex", "c.-à-d", "mme", "mlle"}
)
# ... and words whose "." does not end one when a number follows ("No. 5", "Art. 6", "p. 12").
_NUMBER_ABBREVIATIONS = frozenset(("no", "nos", "art", "arts", "p", "pp", "vol", "sec", "ch", "fig", "n°"))
_INITIALISM = lazy(r"^(?:[A-Za-z]\.)+[A-Za-z]$|^[A-Z]$")  # U.S., e.g., a person's initial


def diff_texts(before: str, after: str, *, max_block_chars: int = 20_000, native: bool = True) -> TextDiff:
    """Diff two canonical texts: changed blocks of lines, word-level segments inside each block.

    `native=False` runs diff-match-patch's pure-Python port instead of its C++ one: the reference the
    tests hold the fast one to (same hunks)."""
    dmp = _engine(native)
    hunks: list[Hunk] = []
    truncated = False
    for block in _changed_blocks(_line_diff(dmp, _with_final_newline(before), _with_final_newline(after))):
        if len(block.before) + len(block.after) > max_block_chars:
            hunks.append(_line_hunk(block))
            truncated = True
            continue
        hunk = _word_hunk(dmp, block)
        if hunk is not None:
            hunks.append(hunk)
    hunks = _placed(before, after, hunks)
    return TextDiff(
        hunks=tuple(hunks),
        inserted_chars=_count(hunks, INSERT),
        deleted_chars=_count(hunks, DELETE),
        truncated=truncated,
    )


@lru_cache(maxsize=2048)  # pure: classify, the kind and the story split the same hunk texts again
def split_sentences(text: str) -> tuple[tuple[int, int], ...]:
    """Spans (start, end) of the sentences of `text`, in order, without surrounding whitespace.

    Boundaries: every line break, every table-cell separator, and . ! ? … (with closing quotes) followed
    by whitespace and then an upper-case letter, a digit or an opening quote/bracket. Not after common
    abbreviations (e.g., i.e., etc., Inc., vs., U.S.; No./Art./p. before a number); decimals never split
    because no whitespace follows their point. Block markers ("# ", "- ", "1. ") are left out of spans.
    """
    spans: list[tuple[int, int]] = []
    if "\n" in text or "|" in text or "•" in text:
        for start, end in _units(text):
            _add_sentences(text, start, end, spans)
    elif text:  # one unit: a line without cells (the search index splits a text line by line)
        _add_sentences(text, 0, len(text), spans)
    return tuple(spans)


def changed_region(old: str, new: str) -> tuple[int, int]:
    """Lengths of the common prefix and (non-overlapping) common suffix of two near-identical texts.

    `old[p:len(old)-q]` became `new[p:len(new)-q]`: a cheap way (no diff) to find what changed between
    two versions of one long sentence, e.g. a table cell in a block too large to word-diff.
    """
    dmp = _engine()
    prefix = dmp.diff_commonPrefix(old, new)
    suffix = dmp.diff_commonSuffix(old[prefix:], new[prefix:])
    return int(prefix), int(suffix)


def pair_sentences(
    old: Sequence[str], new: Sequence[str], *, longer_than: int = 0, min_shared: float = 0.5
) -> dict[int, int]:
    """Pair old sentences with the new ones that are edited versions of them (index -> index).

    A pair shares at least `min_shared` of the shorter sentence at its start and end; each new sentence
    is used once, in the order of the old ones. Only sentences longer than `longer_than` are considered:
    the work is quadratic, and only long sentences need a region narrower than themselves.
    """
    candidates = [j for j, s in enumerate(new) if len(s) > longer_than]
    pairs: dict[int, int] = {}
    for i, sentence in enumerate(old):
        if len(sentence) <= longer_than:
            continue
        best, best_shared = None, 0
        for j in candidates:
            shared = sum(changed_region(sentence, new[j]))
            if shared > best_shared and shared >= min_shared * min(len(sentence), len(new[j])):
                best, best_shared = j, shared
        if best is not None:
            pairs[i] = best
            candidates.remove(best)
    return pairs


# --------------------------------------------------------------------------- where a hunk sits


def _placed(before: str, after: str, hunks: list[Hunk]) -> list[Hunk]:
    """Each hunk with its section: one pass over each text, however many hunks."""
    focus = [_focus(hunk) for hunk in hunks]
    found = {
        side: places(text, [(line, column) for s, line, column in focus if s == side])
        for side, text in (("after", after), ("before", before))
    }
    placed = []
    for hunk, (side, line, _column) in zip(hunks, focus, strict=True):
        place = found[side].get(line, Place((), ""))
        placed.append(replace(hunk, section=place.path, anchor=place.anchor))
    return placed


def _focus(hunk: Hunk) -> tuple[str, int, int | None]:
    """(side, 0-based line in that side's text, table column) of the hunk's first change."""
    if hunk.after:
        side, block, first_line = "after", hunk.after, hunk.line_after
    else:
        side, block, first_line = "before", hunk.before, hunk.line_before
    offset = _first_change(hunk)
    line_index = block.count("\n", 0, offset)
    line_start = block.rfind("\n", 0, offset) + 1
    line_end = block.find("\n", offset)
    line = block[line_start : line_end if line_end >= 0 else len(block)]
    return side, first_line - 1 + line_index, column_at(line, offset - line_start)


def _first_change(hunk: Hunk) -> int:
    """Offset of the first change in the block: the equalities before it are on both sides alike."""
    position = 0
    for segment in hunk.segments:
        if segment.op != EQUAL:
            return position
        position += len(segment.text)
    return 0


# --------------------------------------------------------------------------- line level


@dataclass(frozen=True, slots=True)
class _Block:
    before: str
    after: str
    line_before: int
    line_after: int


def _engine(native: bool = True) -> Any:
    from diff_match_patch import diff_match_patch  # lazy: only a diff needs it

    dmp = diff_match_patch()
    dmp.Diff_Timeout = 0  # exact and repeatable: a deadline would make hunks depend on machine load
    if native:
        dmp.diff_main = _native_diff_main
    return dmp


def _native_diff_main(text1: str, text2: str, checklines: bool = True) -> list[tuple[int, str]]:
    """diff-match-patch's diff_main (no deadline) computed by its C++ port, in the Python port's shape:
    [(op, text)], edits merged (diff_cleanupMerge, as diff_main ends)."""
    import fast_diff_match_patch  # lazy: only a diff needs it

    ops: list[tuple[int, str]] = []
    at1 = at2 = 0
    for op, size in fast_diff_match_patch.diff(
        text1, text2, timelimit=0, checklines=checklines, cleanup="No", counts_only=True
    ):
        if op == "=":
            ops.append((EQUAL, text1[at1 : at1 + size]))
            at1, at2 = at1 + size, at2 + size
        elif op == "-":
            ops.append((DELETE, text1[at1 : at1 + size]))
            at1 += size
        else:
            ops.append((INSERT, text2[at2 : at2 + size]))
            at2 += size
    return _merged(ops)


def _merged(ops: list[tuple[int, str]]) -> list[tuple[int, str]]:
    from diff_match_patch import diff_match_patch

    diff_match_patch().diff_cleanupMerge(ops)
    return ops


def _with_final_newline(text: str) -> str:
    # Without it, appending a line would also show the old last line as changed (it gains a "\n").
    return text if not text or text.endswith("\n") else text + "\n"


def _line_diff(dmp: Any, before: str, after: str) -> list[tuple[int, list[str]]]:
    # Lines without their "\n" (both texts end with one, or are empty: each line had one, so they stand for
    # the lines with it one for one), cut by str.split: only "\n" ends a line (not \x85, \x0c... as in
    # str.splitlines), and no new string is made per line.
    lines_a, lines_b = before.split("\n")[:-1], after.split("\n")[:-1]
    # No semantic cleanup here: it would merge changed blocks across the unchanged lines between them,
    # making fewer, bigger blocks (slower to word-diff, more often over the cap) for no gain in reading.
    return _token_diff(dmp, lines_a, lines_b, cleanup=False)


def _token_diff(
    dmp: Any, tokens_a: Sequence[str], tokens_b: Sequence[str], *, cleanup: bool
) -> list[tuple[int, list[str]]]:
    """Diff two token sequences (lines or words); each result carries its tokens."""
    encoded_a, encoded_b, table = _encode(tokens_a, tokens_b)
    ops: list[tuple[int, str]] = dmp.diff_main(encoded_a, encoded_b, False)
    if cleanup and _semantic_cleanup(ops, _sizer(table)):
        dmp.diff_cleanupMerge(ops)  # in token space: merges whole tokens, never half a word
    return [(op, list(map(table.__getitem__, chars))) for op, chars in ops]  # map: a C loop per token


def _sizer(table: dict[str, str]) -> Callable[[str], int]:
    """The length in characters of a run of encoded tokens."""
    lengths = {code: len(token) for code, token in table.items()}
    return lambda chars: sum(map(lengths.__getitem__, chars))


def _semantic_cleanup(ops: list[tuple[int, str]], size: Callable[[str], int]) -> bool:
    """diff-match-patch's cleanupSemantic elimination, with lengths in characters, not tokens.

    An equality no longer than the edits on each side of it ("la" between two rewritten phrases) is
    made part of them, so a rewritten sentence reads as one change, not as confetti. dmp's own version
    would count an encoded token as one character: " la " (3 tokens) would outweigh "Politique" (1).
    Returns whether anything changed (the caller then merges the edits).
    """
    sizes = [size(text) for _op, text in ops]  # each op's length once, kept in step with ops
    equalities: list[int] = []
    # characters inserted and deleted before the last equality (1) and after it (2)
    inserted1 = deleted1 = inserted2 = deleted2 = 0
    last = 0  # the length of the last equality; 0: none to look at
    changed, pointer = False, 0
    while pointer < len(ops):
        op = ops[pointer][0]
        if op == EQUAL:
            equalities.append(pointer)
            inserted1, deleted1, inserted2, deleted2 = inserted2, deleted2, 0, 0
            last = sizes[pointer]
            pointer += 1
            continue
        if op == INSERT:
            inserted2 += sizes[pointer]
        else:
            deleted2 += sizes[pointer]
        if last and last <= max(inserted1, deleted1) and last <= max(inserted2, deleted2):
            at = equalities.pop()
            ops[at : at + 1] = [(DELETE, ops[at][1]), (INSERT, ops[at][1])]
            sizes[at : at + 1] = [last, last]
            if equalities:
                equalities.pop()  # the previous equality must be looked at again
            pointer = equalities[-1] if equalities else -1
            inserted1 = deleted1 = inserted2 = deleted2 = last = 0
            changed = True
        pointer += 1
    return changed


def _encode(tokens_a: Sequence[str], tokens_b: Sequence[str]) -> tuple[str, str, dict[str, str]]:
    codes: dict[str, str] = {}
    symbols = _symbols()

    def encode(tokens: Sequence[str]) -> str:
        out = []
        for token in tokens:
            code = codes.get(token)
            if code is None:
                code = codes[token] = next(symbols)
            out.append(code)
        return "".join(out)

    encoded_a, encoded_b = encode(tokens_a), encode(tokens_b)
    return encoded_a, encoded_b, {code: token for token, code in codes.items()}


def _symbols() -> Iterator[str]:
    for first, last in _SYMBOL_RANGES:
        for point in range(first, last + 1):
            yield chr(point)
    raise ValueError("too many distinct lines or words to diff")  # > 800,000: beyond any page cap


def _changed_blocks(ops: list[tuple[int, list[str]]]) -> Iterator[_Block]:
    """Group consecutive non-equal line runs into blocks, with 1-based line numbers on each side."""
    line_a = line_b = 1
    deleted: list[str] = []
    inserted: list[str] = []
    start_a = start_b = 1
    for op, lines in ops:
        if op == EQUAL:
            if deleted or inserted:
                yield _trimmed_block(deleted, inserted, start_a, start_b)
                deleted, inserted = [], []
            line_a += len(lines)
            line_b += len(lines)
            start_a, start_b = line_a, line_b
        elif op == DELETE:
            deleted.extend(lines)
            line_a += len(lines)
        else:
            inserted.extend(lines)
            line_b += len(lines)
    if deleted or inserted:
        yield _trimmed_block(deleted, inserted, start_a, start_b)


def _trimmed_block(deleted: list[str], inserted: list[str], line_a: int, line_b: int) -> _Block:
    """Drop blank lines at the block's edges (blank lines separate blocks: matching them is arbitrary)."""
    lead_a, core_a = _strip_blank(deleted)
    lead_b, core_b = _strip_blank(inserted)
    if not core_a and not core_b:  # only blank lines changed: keep them, or the change would vanish
        lead_a, core_a, lead_b, core_b = 0, deleted, 0, inserted
    return _Block(
        before="\n".join(core_a),
        after="\n".join(core_b),
        line_before=line_a + lead_a,
        line_after=line_b + lead_b,
    )


def _strip_blank(lines: list[str]) -> tuple[int, list[str]]:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return start, lines[start:end]


# --------------------------------------------------------------------------- word level


def _word_hunk(dmp: Any, block: _Block) -> Hunk | None:
    ops = _token_diff(dmp, _TOKEN.findall(block.before), _TOKEN.findall(block.after), cleanup=True)
    segments = tuple(Segment(op, "".join(tokens)) for op, tokens in ops if tokens)
    if all(segment.op == EQUAL for segment in segments):
        return None  # only blank lines moved around: nothing a reader could see
    old, new = _touched_sentences(block.before, block.after, segments)
    return Hunk(
        before=block.before,
        after=block.after,
        segments=segments,
        sentences_before=old,
        sentences_after=new,
        line_before=block.line_before,
        line_after=block.line_after,
    )


def _line_hunk(block: _Block) -> Hunk:
    """A block too big to word-diff: whole lines, and the sentences found on one side only."""
    segments = tuple(
        Segment(op, text) for op, text in ((DELETE, block.before), (INSERT, block.after)) if text
    )
    old, new = _sentence_texts(block.before), _sentence_texts(block.after)
    old_set, new_set = set(old), set(new)
    return Hunk(
        before=block.before,
        after=block.after,
        segments=segments,
        sentences_before=_unique(s for s in old if s not in new_set),
        sentences_after=_unique(s for s in new if s not in old_set),
        line_before=block.line_before,
        line_after=block.line_after,
    )


def _touched_sentences(
    before: str, after: str, segments: Sequence[Segment]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The whole sentences holding a change, on each side, minus those the other side has unchanged.

    A deletion touches the old sentences it overlaps and the new sentence at its position; an insertion
    the other way round. Pure new (or removed) sentences thus appear on one side only.
    """
    old_hits: list[tuple[int, int]] = []  # ranges in `before`; empty range = insertion point
    new_hits: list[tuple[int, int]] = []
    pos_a = pos_b = 0
    for segment in segments:
        size = len(segment.text)
        if segment.op == DELETE:
            old_hits.append((pos_a, pos_a + size))
            new_hits.append((pos_b, pos_b))
            pos_a += size
        elif segment.op == INSERT:
            new_hits.append((pos_b, pos_b + size))
            old_hits.append((pos_a, pos_a))
            pos_b += size
        else:
            pos_a += size
            pos_b += size
    old_spans, new_spans = split_sentences(before), split_sentences(after)
    old, new = _hit_sentences(before, old_spans, old_hits), _hit_sentences(after, new_spans, new_hits)
    all_old = {before[a:b] for a, b in old_spans}
    all_new = {after[a:b] for a, b in new_spans}
    return _unique(s for s in old if s not in all_new), _unique(s for s in new if s not in all_old)


def _hit_sentences(text: str, spans: Sequence[tuple[int, int]], hits: Sequence[tuple[int, int]]) -> list[str]:
    """The sentences (spans in order) that a hit touches. Both ends of the spans rise (sentences do not
    overlap), so the spans one hit touches are a run found by bisection, not a test of every pair."""
    starts, ends = [start for start, _ in spans], [end for _, end in spans]
    touched: set[int] = set()
    for hit_start, hit_end in hits:
        if hit_start == hit_end:  # an insertion point: inside the sentence or at one of its ends
            first, stop = bisect_left(ends, hit_start), bisect_right(starts, hit_start)
        else:  # hit_start < end and start < hit_end
            first, stop = bisect_right(ends, hit_start), bisect_left(starts, hit_end)
        touched.update(range(first, stop))
    return [text[slice(*spans[index])] for index in sorted(touched)]


def _sentence_texts(text: str) -> list[str]:
    return [text[start:end] for start, end in split_sentences(text)]


def _unique(items: Iterator[str] | Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _count(hunks: Sequence[Hunk], op: int) -> int:
    return sum(len(s.text) for hunk in hunks for s in hunk.segments if s.op == op)


# --------------------------------------------------------------------------- sentences


def _units(text: str) -> Iterator[tuple[int, int]]:
    """Lines, and the cells of table rows: the spans no sentence may cross (empty lines hold none)."""
    offset = 0
    for content in text.split("\n"):  # only "\n" ends a line, as in the line diff
        if content:
            cut = offset
            for separator in _CELL_SEPARATOR.finditer(content) if "|" in content or "•" in content else ():
                yield cut, offset + separator.start()
                cut = offset + separator.end()
            yield cut, offset + len(content)
        offset += len(content) + 1


def _add_sentences(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    """Append the sentences of the unit text[start:end] to `spans` (appended, not yielded: a policy has
    thousands of sentences, and a generator costs a frame switch for each)."""
    start = _skip_space(text, start, end)
    marker = _BLOCK_MARKER.match(text, start, end)
    if marker:
        start = marker.end()
    for terminator in _TERMINATOR.finditer(text, start, end):
        if _ends_sentence(text, terminator, end):
            _add_stripped(text, start, terminator.end(), spans)
            start = _skip_space(text, terminator.end(), end)
    _add_stripped(text, start, end, spans)


def _ends_sentence(text: str, terminator: re.Match[str], end: int) -> bool:
    after = terminator.end()
    nxt = _skip_space(text, after, end)
    if nxt == after or nxt >= end:
        return False  # no whitespace after it (a decimal, a URL) or end of unit (the unit ends anyway)
    char = text[nxt]
    if not (char.isupper() or char.isdigit() or char in _OPENERS):
        return False
    return not (terminator.group().startswith(".") and _is_abbreviation(text, terminator, char))


def _is_abbreviation(text: str, terminator: re.Match[str], following: str) -> bool:
    if len(terminator.group()) > 1 and terminator.group()[1] == ".":
        return False  # an ellipsis "..." is a real end
    word = _PRECEDING_WORD.search(text, max(0, terminator.start() - _WORD_LOOKBACK), terminator.start())
    token = word.group() if word else ""
    lowered = token.lower()
    if lowered in _ABBREVIATIONS or _INITIALISM.match(token):
        return True
    return lowered in _NUMBER_ABBREVIATIONS and following.isdigit()


def _skip_space(text: str, start: int, end: int) -> int:
    while start < end and text[start].isspace():
        start += 1
    return start


def _add_stripped(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((start, end))

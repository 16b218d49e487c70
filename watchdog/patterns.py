"""Regular expressions compiled on first use.

A module's patterns used to be compiled when it was imported: ~300 patterns, a noticeable share of the CPU
a `check` spent before its first request, most of them for stages that run only when a page changed (diff,
classify, the normaliser, rendering) or never in that command (those modules are now also loaded on first
use: deferred.py).
`lazy(...)` stands for a compiled pattern and compiles it the first time a method is called, so a cycle
of unchanged pages compiles none of the diff's, and a 304 cycle none of the extractor's.

    _WORD: Final = lazy(r"\\w+")        # module level, as re.compile was
    _WORD.findall(text)                # compiled here, once per process
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Iterator
from importlib import import_module
from typing import Any, AnyStr, Final, Generic

__all__ = [
    "LazyPattern",
    "fold",
    "lazy",
    "leading_literal",
    "might_match",
    "required_literals",
    "search_from",
]


class LazyPattern(Generic[AnyStr]):
    """A re.Pattern compiled when first used (the methods of re.Pattern that this project calls).

    With `prefilter`, a text is first checked for the pattern's required literals (below): a text holding
    none of them cannot match, and the result of "no match" is returned without running the pattern, which
    for a pattern that starts with an optional part or a character class (no literal the engine can skip
    to) means scanning nothing instead of trying every position."""

    __slots__ = ("_compiled", "_flags", "_literals", "_prefilter", "_source")

    def __init__(self, source: AnyStr, flags: int = 0, *, prefilter: bool = False) -> None:
        self._source: AnyStr = source
        self._flags = flags
        self._compiled: re.Pattern[AnyStr] | None = None
        self._prefilter = prefilter
        self._literals: tuple[str, ...] | None = None

    @property
    def compiled(self) -> re.Pattern[AnyStr]:
        compiled = self._compiled
        if compiled is None:  # two threads may both compile it: the same pattern either way
            compiled = re.compile(self._source, self._flags)
            if self._prefilter and isinstance(compiled.pattern, str):
                self._literals = required_literals(compiled)
            self._compiled = compiled
        return compiled

    def _cannot_match(self, string: AnyStr) -> bool:
        literals = self._literals
        return literals is not None and not might_match(fold(string), literals)  # type: ignore[arg-type]

    def lines_to_try(self, text: str) -> Iterable[int]:
        """The indexes of the lines of `text` (cut at "\\n") that the prefilter lets through (all of them
        without a prefilter): a pattern whose matches never span a line break matches only on those.

        One case fold of the whole text, one search per literal: fold() maps each character on its own and
        never makes a line break, so the folded text's lines are the folded lines."""
        _ = self._compiled or self.compiled  # compiling reads the required literals
        if self._literals is None:
            return range(text.count("\n") + 1)
        folded = fold(text)
        found: set[int] = set()
        for literal in self._literals:
            line = counted = 0
            at = folded.find(literal)
            while at >= 0:
                line, counted = line + folded.count("\n", counted, at), at
                found.add(line)
                at = folded.find(literal, folded.find("\n", at) + 1 or len(folded))  # from the next line
        return sorted(found)

    # Each method below reads the compiled pattern from its slot (the property and the prefilter only when
    # needed): the normaliser and the renderers call these ~300,000 times in a cycle that finds changes.

    @property
    def pattern(self) -> AnyStr:
        return self._source

    @property
    def flags(self) -> int:
        return self.compiled.flags

    def search(self, string: AnyStr, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[AnyStr] | None:
        compiled = self._compiled or self.compiled
        return (
            None
            if self._literals is not None and self._cannot_match(string)
            else compiled.search(string, pos, endpos)
        )

    def match(self, string: AnyStr, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[AnyStr] | None:
        compiled = self._compiled or self.compiled
        return (
            None
            if self._literals is not None and self._cannot_match(string)
            else compiled.match(string, pos, endpos)
        )

    def fullmatch(self, string: AnyStr, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[AnyStr] | None:
        compiled = self._compiled or self.compiled
        return (
            None
            if self._literals is not None and self._cannot_match(string)
            else compiled.fullmatch(string, pos, endpos)
        )

    def finditer(self, string: AnyStr, pos: int = 0, endpos: int = sys.maxsize) -> Iterator[re.Match[AnyStr]]:
        compiled = self._compiled or self.compiled
        return (
            iter(())
            if self._literals is not None and self._cannot_match(string)
            else compiled.finditer(string, pos, endpos)
        )

    def findall(self, string: AnyStr, pos: int = 0, endpos: int = sys.maxsize) -> list[AnyStr]:
        compiled = self._compiled or self.compiled
        found: list[AnyStr] = (
            []
            if self._literals is not None and self._cannot_match(string)
            else compiled.findall(string, pos, endpos)
        )
        return found

    def split(self, string: AnyStr, maxsplit: int = 0) -> list[AnyStr]:
        compiled = self._compiled or self.compiled
        pieces: list[AnyStr] = (
            [string]
            if self._literals is not None and self._cannot_match(string)
            else compiled.split(string, maxsplit)
        )
        return pieces

    def sub(
        self, repl: AnyStr | Callable[[re.Match[AnyStr]], AnyStr], string: AnyStr, count: int = 0
    ) -> AnyStr:
        compiled = self._compiled or self.compiled
        return (
            string
            if self._literals is not None and self._cannot_match(string)
            else compiled.sub(repl, string, count)
        )

    def subn(
        self, repl: AnyStr | Callable[[re.Match[AnyStr]], AnyStr], string: AnyStr, count: int = 0
    ) -> tuple[AnyStr, int]:
        compiled = self._compiled or self.compiled
        return (
            (string, 0)
            if self._literals is not None and self._cannot_match(string)
            else compiled.subn(repl, string, count)
        )

    def __repr__(self) -> str:
        return f"lazy({self._source!r}, {self._flags})"


def lazy(source: AnyStr, flags: int = 0, *, prefilter: bool = False) -> LazyPattern[AnyStr]:
    """`re.compile(source, flags)`, done the first time the pattern is used (see LazyPattern for
    `prefilter`)."""
    return LazyPattern(source, flags, prefilter=prefilter)


# --------------------------------------------------------------------------- literals a match must hold
#
# Most sentences of a changed passage match none of the ~70 topic patterns, and Python's regex engine tries
# each pattern at every position of the sentence. A pattern's *required literals* (a set of strings one of
# which every match contains, read from the parsed pattern) rule it out with a few substring tests of the
# case-folded sentence: `might_match(folded, literals)` False means the pattern cannot match, True means
# it may (then the pattern itself is searched, so results are exactly the pattern's).

# Characters a literal may be made of: those for which "matches case-insensitively" implies "the text's
# fold() holds the literal's fold()" (tests/test_classify.py checks it against every code point). Python's
# IGNORECASE also equates "i" with the dotless "ı", which casefold() does not: fold() maps it to "i", and
# the dotted "İ" (whose fold is two characters) is left out.
_LITERAL_CHARS: Final = frozenset(
    [chr(c) for c in range(0x20, 0x7F)]
    + [chr(c) for c in range(0xA0, 0x250) if c not in (0x130, 0x131)]
    + list("\u2018\u2019\u201c\u201d\u00ab\u00bb\u2013\u2014")
)


def fold(text: str) -> str:
    """The form required literals are looked for in: case-folded, with the dotless "ı" as "i"."""
    return text.casefold().replace("\u0131", "i")


def might_match(folded: str, literals: tuple[str, ...] | None) -> bool:
    """False only when a pattern with these required literals cannot match the text `folded` came from."""
    return literals is None or any(literal in folded for literal in literals)


def required_literals(pattern: re.Pattern[str]) -> tuple[str, ...] | None:
    """Folded strings one of which every match of `pattern` contains; None when there is no such set (or the
    pattern cannot be read: this uses the re module's own parser, and anything unexpected means None)."""
    try:  # the stdlib's own parser of patterns (an internal module: a surprise only means "no shortcut")
        parser, constants = import_module("re._parser"), import_module("re._constants")
        found = _Literals(constants).of(list(parser.parse(pattern.pattern, pattern.flags)))
    except (ImportError, AttributeError, TypeError, ValueError, IndexError, RecursionError, re.error):
        return None
    return tuple(sorted(found)) if found else None


def leading_literal(pattern: re.Pattern[str]) -> str:
    """The string every match of `pattern` starts with, exactly (no case folding): "" when there is none (a
    case-insensitive pattern, a pattern that starts with a class, a group, an anchor or an optional part, or
    one this reader cannot parse)."""
    if pattern.flags & re.IGNORECASE:
        return ""
    try:  # the stdlib's own parser, as for required_literals (a surprise only means "no shortcut")
        parser, constants = import_module("re._parser"), import_module("re._constants")
        items = list(parser.parse(pattern.pattern, pattern.flags))
    except (ImportError, AttributeError, TypeError, ValueError, IndexError, RecursionError, re.error):
        return ""
    start = []
    for op, av in items:
        if op is not constants.LITERAL:
            break
        start.append(chr(av))
    return "".join(start)


def search_from(pattern: re.Pattern[str], start: str, text: str) -> bool:
    """`pattern.search(text) is not None`, where `start` is `leading_literal(pattern)`.

    Python's regex engine finds a pattern's literal start by a loop of its own, ~4x slower on a 200,000-
    character text than str.find: when the text does not hold the start, no match can, and when it does,
    the search begins at its first occurrence (where the first match can begin at the earliest; a pattern
    that starts with a literal has no anchor or lookbehind that the skipped text could change)."""
    if not start:
        return pattern.search(text) is not None
    at = text.find(start)
    return at >= 0 and pattern.search(text, at) is not None


class _Literals:
    def __init__(self, constants: Any) -> None:
        self.k = constants

    def of(self, items: list[tuple[Any, Any]]) -> set[str] | None:
        """For a sequence: the best of its literal runs and of its parts' sets (longest shortest literal)."""
        k = self.k
        best: set[str] | None = None
        run: list[str] = []

        def consider(candidate: set[str] | None) -> None:
            nonlocal best
            if candidate and (best is None or _rank(candidate) > _rank(best)):
                best = candidate

        for op, av in items:
            if op is k.LITERAL and chr(av) in _LITERAL_CHARS:
                run.append(fold(chr(av)))
                continue
            if op is k.AT or op is k.ASSERT_NOT:  # zero width: the run goes on
                continue
            if op is k.ASSERT:  # a lookaround's literals are in the text too; zero width
                consider(self.of(list(av[1])))
                continue
            consider({"".join(run)} if run else None)
            run = []
            consider(self._part(op, av))
        consider({"".join(run)} if run else None)
        return best

    def _part(self, op: Any, av: Any) -> set[str] | None:
        k = self.k
        if op is k.BRANCH:
            branches = [self.of(list(branch)) for branch in av[1]]
            return None if any(b is None for b in branches) else set().union(*branches)  # type: ignore[arg-type]
        if op is k.SUBPATTERN:
            return self.of(list(av[3]))
        if op is k.ATOMIC_GROUP:
            return self.of(list(av))
        if op in (k.MAX_REPEAT, k.MIN_REPEAT, k.POSSESSIVE_REPEAT) and av[0] >= 1:
            return self.of(list(av[2]))
        return None  # a character class, any character, a back-reference, an optional part...


def _rank(literals: set[str]) -> tuple[int, int]:
    return (min(map(len, literals)), -len(literals))

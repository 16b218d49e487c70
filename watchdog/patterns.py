"""Regular expressions compiled on first use.

Every command loads every module, and a module's patterns used to be compiled when it was imported: ~300
patterns, a noticeable share of the CPU a `check` spends before its first request, most of them for stages
that run only when a page changed (diff, classify, the normaliser, rendering) or never in that command.
`lazy(...)` stands for a compiled pattern and compiles it the first time a method is called, so a cycle
of unchanged pages compiles none of the diff's, and a 304 cycle none of the extractor's.

    _WORD: Final = lazy(r"\\w+")        # module level, as re.compile was
    _WORD.findall(text)                # compiled here, once per process
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from typing import AnyStr, Generic

__all__ = ["LazyPattern", "lazy"]


class LazyPattern(Generic[AnyStr]):
    """A re.Pattern compiled when first used (the methods of re.Pattern that this project calls)."""

    __slots__ = ("_compiled", "_flags", "_source")

    def __init__(self, source: AnyStr, flags: int = 0) -> None:
        self._source: AnyStr = source
        self._flags = flags
        self._compiled: re.Pattern[AnyStr] | None = None

    @property
    def compiled(self) -> re.Pattern[AnyStr]:
        compiled = self._compiled
        if compiled is None:  # two threads may both compile it: the same pattern either way
            compiled = self._compiled = re.compile(self._source, self._flags)
        return compiled

    @property
    def pattern(self) -> AnyStr:
        return self._source

    @property
    def flags(self) -> int:
        return self.compiled.flags

    def search(self, string: AnyStr, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[AnyStr] | None:
        return self.compiled.search(string, pos, endpos)

    def match(self, string: AnyStr, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[AnyStr] | None:
        return self.compiled.match(string, pos, endpos)

    def fullmatch(self, string: AnyStr, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[AnyStr] | None:
        return self.compiled.fullmatch(string, pos, endpos)

    def finditer(self, string: AnyStr, pos: int = 0, endpos: int = sys.maxsize) -> Iterator[re.Match[AnyStr]]:
        return self.compiled.finditer(string, pos, endpos)

    def findall(self, string: AnyStr, pos: int = 0, endpos: int = sys.maxsize) -> list[AnyStr]:
        found: list[AnyStr] = self.compiled.findall(string, pos, endpos)
        return found

    def split(self, string: AnyStr, maxsplit: int = 0) -> list[AnyStr]:
        pieces: list[AnyStr] = self.compiled.split(string, maxsplit)
        return pieces

    def sub(
        self, repl: AnyStr | Callable[[re.Match[AnyStr]], AnyStr], string: AnyStr, count: int = 0
    ) -> AnyStr:
        return self.compiled.sub(repl, string, count)

    def subn(
        self, repl: AnyStr | Callable[[re.Match[AnyStr]], AnyStr], string: AnyStr, count: int = 0
    ) -> tuple[AnyStr, int]:
        return self.compiled.subn(repl, string, count)

    def __repr__(self) -> str:
        return f"lazy({self._source!r}, {self._flags})"


def lazy(source: AnyStr, flags: int = 0) -> LazyPattern[AnyStr]:
    """`re.compile(source, flags)`, done the first time the pattern is used."""
    return LazyPattern(source, flags)

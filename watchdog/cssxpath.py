"""Stage 2, extract: CSS selectors -> XPath 1.0, for the fast reader (watchdog.fastread).

fetch -> **extract** (select / remove) -> validate -> store -> diff -> classify -> notify/publish

The parser of record selects with soupsieve on beautifulsoup4's tree; the fast reader selects with libxml2's
XPath on lxml's tree of the same parse. `to_xpath` translates the selector grammar the configs use (the one
watchdog.csscheck.check_selector vouches for without soupsieve: type, #id, .class, [attr], [attr=value] and
*= ^= $=, the four combinators, :has() / :not() / :is() / :where() around plain compounds, comma lists)
with soupsieve's semantics for HTML documents:

- element and attribute names match case-insensitively (lxml's HTML parser lowercases them);
- attribute values match exactly, except the attributes HTML defines as case-insensitive (`type`, `lang`,
  `target`...: ASCII case folded), and ^= $= *= with an empty value match nothing;
- `.c` is one of the element's classes, split at white space. beautifulsoup4 splits at any Unicode white
  space, XPath's normalize-space at ASCII space, tab, CR and LF only: `selects_classes` tells the reader to
  check the page for class attributes holding other white space (it then reads with the parser of record).

Anything else (another pseudo-class, an attribute selector on a multi-valued attribute such as rel or
headers, whose value soupsieve compares as a joined list) is not translated: `to_xpath` returns None and
the page is read by the parser of record. tests/test_fastread.py checks the selections against soupsieve.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from watchdog.patterns import lazy

__all__ = ["UNICODE_ONLY_SPACES", "Translation", "to_xpath"]

_IDENT: Final = lazy(r"-?[A-Za-z_][A-Za-z0-9_-]*")
_NCNAME: Final = lazy(r"[A-Za-z_][A-Za-z0-9_-]*\Z")
_SPACE: Final = lazy(r"[ \t\n]*")
_ATTRIBUTE: Final = lazy(
    r"""\[(-?[A-Za-z_][A-Za-z0-9_-]*)(?:([*^$]?=)(-?[A-Za-z_][A-Za-z0-9_-]*|"[^"\\\r\n\f]*"|'[^'\\\r\n\f]*'))?\]"""
)
_PSEUDO: Final = lazy(r":(has|not|is|where)\(")

# Attributes beautifulsoup4 reads as lists of values on some or all elements (soupsieve then compares a
# value selector with the values joined by single spaces): value selectors on them are not translated.
_LIST_ATTRIBUTES: Final = frozenset(
    {"class", "accesskey", "dropzone", "rel", "rev", "headers", "accept-charset", "archive", "sizes",
     "sandbox", "for"}
)  # fmt: skip
# Attribute values HTML matches case-insensitively (soupsieve's list, from the HTML standard).
_FOLDED_ATTRIBUTES: Final = frozenset(
    {"accept", "accept-charset", "align", "alink", "axis", "bgcolor", "charset", "checked", "clear",
     "codetype", "color", "compact", "declare", "defer", "dir", "direction", "disabled", "enctype", "face",
     "frame", "hreflang", "http-equiv", "lang", "language", "link", "media", "method", "multiple", "nohref",
     "noresize", "noshade", "nowrap", "readonly", "rel", "rev", "rules", "scope", "scrolling", "selected",
     "shape", "target", "text", "type", "valign", "valuetype", "vlink"}
)  # fmt: skip
_UPPER: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# White space that str.split (beautifulsoup4's class splitting) knows and XPath's normalize-space does not.
UNICODE_ONLY_SPACES: Final = (
    "\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000"
)
_RELATION: Final = {
    ">": "child::*",
    "+": "following-sibling::*[1]",
    "~": "following-sibling::*",
    " ": "descendant::*",
}


@dataclass(frozen=True, slots=True)
class Translation:
    """An XPath expression selecting from the document node what the selector list selects."""

    xpath: str
    selects_classes: bool  # the selection depends on class splitting (see the module docstring)


class _Untranslatable(Exception):
    pass


@lru_cache(maxsize=256)
def to_xpath(selectors: tuple[str, ...]) -> Translation | None:
    """The selector list (any of them) as one XPath expression, or None when it is not translated."""
    parser = _Parser()
    try:
        paths = [parser.selector_list(selector) for selector in selectors]
    except _Untranslatable:
        return None
    return Translation(" | ".join(path for group in paths for path in group), parser.classes)


class _Parser:
    """A recursive descent over the grammar of the module docstring; anything else raises _Untranslatable."""

    def __init__(self) -> None:
        self.classes = False
        self.text = ""
        self.at = 0

    def selector_list(self, selector: str) -> list[str]:
        self.text, self.at = selector, 0
        paths = [self._complex()]
        while self._take(r"[ \t\n]*,[ \t\n]*"):
            paths.append(self._complex())
        if self.at != len(self.text):
            raise _Untranslatable
        return paths

    # ----------------------------------------------------------------- pieces

    def _take(self, pattern: str) -> str | None:
        found = re.compile(pattern).match(self.text, self.at)
        if found is None:
            return None
        self.at = found.end()
        return found.group()

    def _complex(self) -> str:
        path = f"//*[{self._compound(pseudo=True)}]"
        while True:
            start = self.at
            combinator = self._take(r"[ \t\n]*[>+~][ \t\n]*|[ \t\n]+(?=[-A-Za-z_#.\[:])")
            if combinator is None:
                return path
            if self.at == len(self.text) or self.text[self.at] in ",)":
                self.at = start
                return path
            relation = _RELATION[combinator.strip() or " "]
            path += f"/{relation}[{self._compound(pseudo=True)}]"

    def _compound(self, *, pseudo: bool) -> str:
        tests: list[str] = []
        name = _IDENT.match(self.text, self.at)
        if name is not None:
            self.at = name.end()
            tests.append(_name_test(name.group().lower()))
        while self.at < len(self.text):
            char = self.text[self.at]
            if char == "#":
                tests.append(f"@id={_literal(self._ident(1))}")
            elif char == ".":
                self.classes = True
                cls = self._ident(1)
                tests.append(f"contains(concat(' ', normalize-space(@class), ' '), {_literal(f' {cls} ')})")
            elif char == "[":
                tests.append(self._attribute())
            elif char == ":" and pseudo:
                tests.append(self._pseudo())
            else:
                break
        if not tests:
            raise _Untranslatable
        return " and ".join(f"({test})" for test in tests)

    def _ident(self, skip: int) -> str:
        found = _IDENT.match(self.text, self.at + skip)
        if found is None:
            raise _Untranslatable
        self.at = found.end()
        return found.group()

    def _attribute(self) -> str:
        found = _ATTRIBUTE.match(self.text, self.at)
        if found is None:
            raise _Untranslatable
        self.at = found.end()
        name, op, raw = found.group(1).lower(), found.group(2), found.group(3)
        attribute = f"@{name}" if _NCNAME.match(name) else f"@*[name()={_literal(name)}]"
        if op is None:
            return attribute
        if name in _LIST_ATTRIBUTES:
            raise _Untranslatable
        value = raw[1:-1] if raw[0] in "\"'" else raw
        if name in _FOLDED_ATTRIBUTES:
            value = value.translate(str.maketrans(_UPPER, _UPPER.lower()))
            attribute = f"translate({attribute}, '{_UPPER}', '{_UPPER.lower()}')"
        if op == "=":
            return f"{attribute}={_literal(value)}"
        if not value:  # ^= $= *= with nothing to look for match nothing
            return "false()"
        if op == "^=":
            return f"starts-with({attribute}, {_literal(value)})"
        if op == "*=":
            return f"contains({attribute}, {_literal(value)})"
        return f"substring({attribute}, string-length({attribute}) - {len(value)} + 1) = {_literal(value)}"

    def _pseudo(self) -> str:
        found = _PSEUDO.match(self.text, self.at)
        if found is None:
            raise _Untranslatable
        self.at = found.end()
        kind = found.group(1)
        arguments = [self._argument(kind)]
        while self._take(r"[ \t\n]*,[ \t\n]*"):
            arguments.append(self._argument(kind))
        if self._take(r"[ \t\n]*\)") is None:
            raise _Untranslatable
        either = " or ".join(arguments)
        return f"not({either})" if kind == "not" else f"({either})"

    def _argument(self, kind: str) -> str:
        self._take(r"[ \t\n]*")
        if kind != "has":
            return f"({self._compound(pseudo=False)})"
        combinator = self._take(r"[>+~][ \t\n]*")
        relation = _RELATION[combinator.strip()] if combinator else _RELATION[" "]
        return f"{relation}[{self._compound(pseudo=False)}]"


def _name_test(name: str) -> str:
    return f"self::{name}" if _NCNAME.match(name) else f"name()={_literal(name)}"


def _literal(value: str) -> str:
    return f"'{value}'" if "'" not in value else f'"{value}"'

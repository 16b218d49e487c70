"""Config loading: is a CSS selector valid for the extractor? Checked at every start, so cheap.

Its own module because the config is validated at every start, before a check's first request: the
extractor (watchdog/extract.py, the parser of record and its helpers) is loaded only with the first
response read, and soupsieve only for a selector the grammar below cannot vouch for.
"""

from __future__ import annotations

import re
from typing import Final

# `vouched_for` accepts the selectors built of type, #id, .class and [attr] / [attr=value] (also *= ^= $=)
# parts and combinators, with :has(> compound) / :not(compound) / :is(...) / :where(...) around plain
# compounds, in a comma list: what configs use (#root, main, [role=main], div:has(> [role=separator]),
# ...). Every string it accepts is valid for soupsieve too (ASCII identifiers, strings without escapes, no
# nesting beyond one level), so check_selector can say so without loading soupsieve. That matters: the
# config is validated on every start-up, and loading soupsieve and building its tokenizer's
# case-insensitive regexes costs ~0.2 s of CPU, even in a `check` where every page answers 304.
#
# The grammar, as a regular expression (tests/test_csscheck.py holds it and checks `vouched_for` against it
# on every listed and ~100,000 generated selectors):
#
#   IDENT    -?[A-Za-z_][A-Za-z0-9_-]*           VALUE  IDENT | "[^"\\\r\n\f]*" | '[^'\\\r\n\f]*'
#   PART     #IDENT | .IDENT | [IDENT] | [IDENT(=|*=|^=|$=)VALUE]
#   PLAIN    IDENT? PART*, not empty              WS     [ \t\n]*
#   PSEUDO   :has( WS ([>+~] WS)? PLAIN (WS , WS ([>+~] WS)? PLAIN)* WS )
#            | :(not|is|where)( WS PLAIN (WS , WS PLAIN)* WS )
#   COMPOUND IDENT? (PART | PSEUDO)*, not empty
#   COMPLEX  COMPOUND ((WS [>+~] WS | [ \t\n]+) COMPOUND)*
#   selector COMPLEX (WS , WS COMPLEX)*, nothing after it (not even white space)
#
# It is read here by hand, left to right, instead of by that regular expression: every choice is decided by
# the next character, and compiling the expression (~1,700 characters once expanded) cost ~3 ms of every
# start.
_IDENT: Final = re.compile(r"-?[A-Za-z_][A-Za-z0-9_-]*")
_QUOTED: Final = {'"': re.compile(r'"[^"\\\r\n\f]*"'), "'": re.compile(r"'[^'\\\r\n\f]*'")}
_PSEUDOS: Final = (":has(", ":not(", ":is(", ":where(")
_COMBINATORS: Final = (">", "+", "~")
_NO_MATCH: Final = -1  # a reader's answer when the selector does not follow the grammar there


def vouched_for(selector: str) -> bool:
    """Does `selector` follow the grammar above (so it is certainly valid CSS for the extractor)?"""
    end = _complex(selector, 0)
    while end != _NO_MATCH and end < len(selector):
        comma = _spaces(selector, end)
        if not selector.startswith(",", comma):
            return False
        end = _complex(selector, _spaces(selector, comma + 1))
    return end == len(selector)


def _complex(text: str, at: int) -> int:
    """Where COMPLEX starting at `at` ends (it reads as far as it can), or _NO_MATCH."""
    end = _compound(text, at, pseudo=True)
    while end != _NO_MATCH:
        after = _spaces(text, end)
        if text.startswith(_COMBINATORS, after):
            following = _spaces(text, after + 1)
        elif after > end and after < len(text) and text[after] not in ",)":
            following = after  # white space alone: the descendant combinator
        else:
            return end  # a comma or the end comes next (or a character no selector has: the caller refuses)
        end = _compound(text, following, pseudo=True)
    return end


def _spaces(text: str, at: int) -> int:
    """Where the white space (WS) starting at `at` ends."""
    while at < len(text) and text[at] in " \t\n":
        at += 1
    return at


def _compound(text: str, at: int, *, pseudo: bool) -> int:
    """Where COMPOUND (PLAIN when not `pseudo`) starting at `at` ends, or _NO_MATCH (empty too)."""
    ident = _IDENT.match(text, at)
    end = ident.end() if ident else at
    while end < len(text):
        char = text[end]
        if char in "#.":
            name = _IDENT.match(text, end + 1)
            found = name.end() if name else _NO_MATCH
        elif char == "[":
            found = _attribute(text, end + 1)
        elif char == ":" and pseudo:
            found = _pseudo(text, end)
        else:
            break
        if found == _NO_MATCH:
            return _NO_MATCH
        end = found
    return end if end > at else _NO_MATCH


def _attribute(text: str, at: int) -> int:
    """Where `[IDENT]` or `[IDENT op VALUE]` ends, `at` just after its `[`, or _NO_MATCH."""
    name = _IDENT.match(text, at)
    if name is None:
        return _NO_MATCH
    end = name.end()
    if end < len(text) and text[end] in "*^$":
        end += 1
        if not text.startswith("=", end):
            return _NO_MATCH
    if text.startswith("=", end):
        quoted = _QUOTED.get(text[end + 1 : end + 2])
        value = (quoted or _IDENT).match(text, end + 1)
        if value is None:
            return _NO_MATCH
        end = value.end()
    return end + 1 if text.startswith("]", end) else _NO_MATCH


def _pseudo(text: str, at: int) -> int:
    """Where PSEUDO starting at `at` (its `:`) ends, or _NO_MATCH."""
    opening = next((name for name in _PSEUDOS if text.startswith(name, at)), None)
    if opening is None:
        return _NO_MATCH
    relative = opening == ":has("
    end = at + len(opening)
    while True:
        end = _spaces(text, end)
        if relative and text.startswith(_COMBINATORS, end):
            end = _spaces(text, end + 1)
        end = _compound(text, end, pseudo=False)
        if end == _NO_MATCH:
            return _NO_MATCH
        end = _spaces(text, end)
        if text.startswith(")", end):
            return end + 1
        if not text.startswith(",", end):
            return _NO_MATCH
        end += 1


def check_selector(selector: str) -> str | None:
    """None when `selector` is valid CSS for the extractor (soupsieve), else the error message."""
    if not selector.strip():
        return "empty selector"
    if vouched_for(selector):
        return None  # certainly valid (see the grammar above): no need to load soupsieve
    import soupsieve

    try:
        soupsieve.compile(selector)
    except soupsieve.SelectorSyntaxError as exc:
        return str(exc).splitlines()[0]
    except NotImplementedError as exc:  # valid CSS that soupsieve cannot match (pseudo-elements: ::before)
        return f"not supported by the extractor: {exc}"
    return None

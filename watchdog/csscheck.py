"""Config loading: is a CSS selector valid for the extractor? Checked at every start, so cheap.

Its own module because the config is validated at every start, before a check's first request: the
extractor (watchdog/extract.py, the parser of record and its helpers) is loaded only with the first
response read, and soupsieve only for a selector the grammar below cannot vouch for.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Final

# Selectors built of type, #id, .class and [attr] / [attr=value] (also *= ^= $=) parts and combinators, with
# :has(> compound) / :not(compound) / :is(...) / :where(...) around plain compounds, in a comma list: what
# configs use (#root, main, [role=main], div:has(> [role=separator]), ...). Every string this grammar
# accepts is valid for soupsieve too (ASCII identifiers, strings without escapes, no nesting beyond one
# level), so check_selector can say so without loading soupsieve. That matters: the config is validated
# on every start-up, and loading soupsieve and building its tokenizer's case-insensitive regexes costs
# ~0.2 s of CPU, even in a `check` where every page answers 304 and nothing is parsed.
_IDENT: Final = r"-?[A-Za-z_][A-Za-z0-9_-]*"
_ATTR_VALUE: Final = rf"""(?:{_IDENT}|"[^"\\\r\n\f]*"|'[^'\\\r\n\f]*')"""
_SIMPLE_PART: Final = rf"(?:#{_IDENT}|\.{_IDENT}|\[{_IDENT}(?:[*^$]?={_ATTR_VALUE})?\])"
_WS: Final = r"[ \t\n]*"
_COMBINATOR: Final = rf"(?:{_WS}[>+~]{_WS}|[ \t\n]+)"


def _compound(part: str) -> str:
    # The lookahead makes the compound non-empty without writing `part` twice.
    return rf"(?=[-A-Za-z_#.\[:])(?:{_IDENT})?{part}*"


def _comma_list(item: str, *, end: str) -> str:
    # `item` written once (the regex stays small and quick to compile): each one is followed by a comma
    # and more, or by what ends the list (`end`, a lookahead).
    return rf"(?:{item}(?:{_WS},{_WS}(?!{end})|(?={end})))+"


_PLAIN: Final = _compound(_SIMPLE_PART)
_ARGUMENTS_END: Final = rf"{_WS}\)"
_PSEUDO: Final = (
    rf"(?::has\({_WS}{_comma_list(rf'(?:[>+~]{_WS})?{_PLAIN}', end=_ARGUMENTS_END)}{_WS}\)"
    rf"|:(?:not|is|where)\({_WS}{_comma_list(_PLAIN, end=_ARGUMENTS_END)}{_WS}\))"
)
_COMPOUND: Final = _compound(f"(?:{_SIMPLE_PART}|{_PSEUDO})")
_KNOWN_VALID: Final = _comma_list(rf"{_COMPOUND}(?:{_COMBINATOR}{_COMPOUND})*", end=r"\Z")


@cache
def _known_valid_selectors() -> re.Pattern[str]:
    return re.compile(_KNOWN_VALID)  # compiled on first use: only config loading needs it


def check_selector(selector: str) -> str | None:
    """None when `selector` is valid CSS for the extractor (soupsieve), else the error message."""
    if not selector.strip():
        return "empty selector"
    if _known_valid_selectors().fullmatch(selector):
        return None  # certainly valid (see _KNOWN_VALID): no need to load soupsieve
    import soupsieve

    try:
        soupsieve.compile(selector)
    except soupsieve.SelectorSyntaxError as exc:
        return str(exc).splitlines()[0]
    except NotImplementedError as exc:  # valid CSS that soupsieve cannot match (pseudo-elements: ::before)
        return f"not supported by the extractor: {exc}"
    return None

"""watchdog.csscheck: the selectors config loading vouches for without soupsieve, read by hand, are exactly
those of the grammar written as one regular expression (the form it had until the hand-written reader
replaced it at start-up, issue 14), and soupsieve accepts every one of them."""

from __future__ import annotations

import random
import re

import pytest
import soupsieve

from watchdog.csscheck import check_selector, vouched_for

# The grammar as a regular expression: the definition `vouched_for` must follow (watchdog/csscheck.py).
_IDENT = r"-?[A-Za-z_][A-Za-z0-9_-]*"
_ATTR_VALUE = rf"""(?:{_IDENT}|"[^"\\\r\n\f]*"|'[^'\\\r\n\f]*')"""
_SIMPLE_PART = rf"(?:#{_IDENT}|\.{_IDENT}|\[{_IDENT}(?:[*^$]?={_ATTR_VALUE})?\])"
_WS = r"[ \t\n]*"
_COMBINATOR = rf"(?:{_WS}[>+~]{_WS}|[ \t\n]+)"


def _compound(part: str) -> str:
    return rf"(?=[-A-Za-z_#.\[:])(?:{_IDENT})?{part}*"


def _comma_list(item: str, *, end: str) -> str:
    return rf"(?:{item}(?:{_WS},{_WS}(?!{end})|(?={end})))+"


_PLAIN = _compound(_SIMPLE_PART)
_ARGUMENTS_END = rf"{_WS}\)"
_PSEUDO = (
    rf"(?::has\({_WS}{_comma_list(rf'(?:[>+~]{_WS})?{_PLAIN}', end=_ARGUMENTS_END)}{_WS}\)"
    rf"|:(?:not|is|where)\({_WS}{_comma_list(_PLAIN, end=_ARGUMENTS_END)}{_WS}\))"
)
_COMPOUND = _compound(f"(?:{_SIMPLE_PART}|{_PSEUDO})")
GRAMMAR = re.compile(_comma_list(rf"{_COMPOUND}(?:{_COMBINATOR}{_COMPOUND})*", end=r"\Z"))

LISTED = [
    "#root",
    "main",
    "[role=main]",
    "article",
    "div:has(> [role=separator])",
    "[role=dialog]",
    "nav, footer",
    "div.x > p + ul ~ ol",
    "[class*=share]",
    ":not(.a)",
    "a[href^='https']",
    "#a .b [c$=d]",
    'a[href="#"]',
    "hr + div",
    "#content .ctn-gen",
    "div:has( >a , + b.c,~[d] ):not(x,y):is(.z):where(#w)",
    ":has(a)",
    "a\n>\tb",
    "-x-y._z#-a",
    # refused (soupsieve decides)
    "",
    " #root",
    "#root ",
    "a,",
    ",a",
    "a, ,b",
    "a >",
    "> a",
    "a > > b",
    "a:has()",
    "a:not(b c)",
    "a:not(> b)",
    "a:is(b:not(c))",
    "a:hover",
    "p::before",
    "[a=]",
    "[a b]",
    '[a="b\\"c"]',
    "[a='b\nc']",
    "[a|=b]",
    "[a~=b]",
    "#1a",
    "--a",
    "-",
    "*",
    "a\r\nb",
    "a\fb",
    "a:has(b,)",
    "a:is( )",
    "a:has(b)c",
    "a:has(b) c",
    "a:NOT(b)",
    "é",
    "a)",
    "a]",
]

# Pieces the generator strings together: the grammar's tokens, their near misses, and stray characters.
PIECES = (
    "a", "div", "-x", "_y", "Z9", "-", "--", "1", "#", "#a", "#-b", ".", ".c", ".d-e", "[", "]", "[a]",
    "[b=c]", "[c*=d]", "[e^='f g']", '[h$="i]j"]', "[k=", "='", '"', "'", "\\", "=", "*=", "|=", "~=",
    ":", "::", ":has(", ":not(", ":is(", ":where(", ":hover", "(", ")", ",", ", ", " ,", " ", "  ", "\t",
    "\n", "\r", "\f", ">", "+", "~", " > ", "*", "é", "x)",
)  # fmt: skip


def _generated(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(PIECES) for _ in range(rng.randint(1, 9))) for _ in range(count)]


@pytest.mark.parametrize("selector", LISTED)
def test_the_reader_follows_the_grammar(selector: str) -> None:
    assert vouched_for(selector) == bool(GRAMMAR.fullmatch(selector))


def test_the_reader_follows_the_grammar_on_generated_selectors() -> None:
    generated = _generated(14, 100_000)
    differ = [s for s in generated if vouched_for(s) != bool(GRAMMAR.fullmatch(s))]
    assert differ == []
    accepted = sum(map(vouched_for, generated))
    assert 1_000 < accepted < 99_000  # both answers were exercised


def test_soupsieve_accepts_what_the_reader_vouches_for() -> None:
    vouched = {s for s in [*LISTED, *_generated(15, 100_000)] if vouched_for(s)}
    assert len(vouched) > 500
    for selector in vouched:
        soupsieve.compile(selector)  # raises if the reader vouched for an invalid selector


@pytest.mark.parametrize(
    ("selector", "problem"),
    [
        ("#root", None),
        ("div:has(> [role=separator])", None),
        ("a:hover", None),  # valid, beyond the grammar: soupsieve says so
        ("   ", "empty selector"),
        ("p::before", "not supported by the extractor"),
        ("a >", "position"),
    ],
)
def test_check_selector(selector: str, problem: str | None) -> None:
    found = check_selector(selector)
    assert found == problem if problem is None else found is not None and problem in found

"""watchdog.patterns: patterns compiled on first use, and the required literals that rule a pattern out.

The literals are a shortcut in front of the topic patterns (classify) and some normaliser patterns: they
must never rule out a pattern that matches. Proven here on every code point (the characters a literal may
hold), on random patterns and texts (hypothesis), and on the bundled topics against the corpus sentences.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from watchdog.config import bundled_config_dir, load_config
from watchdog.diff import split_sentences
from watchdog.patterns import (
    _LITERAL_CHARS,
    fold,
    lazy,
    leading_literal,
    might_match,
    required_literals,
    search_from,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_a_lazy_pattern_is_the_pattern() -> None:
    pattern = lazy(r"(\w+)@(\w+)", re.IGNORECASE)
    assert pattern._compiled is None, "nothing compiled before the first use"
    text = "Write to Team@Example or admin@host."
    assert pattern.findall(text) == re.findall(r"(\w+)@(\w+)", text, re.IGNORECASE)
    assert pattern.sub(r"\2", text) == "Write to Example or host."
    assert [m.span() for m in pattern.finditer(text)] == [(9, 21), (25, 35)]
    assert pattern.split(text, 1)[0] == "Write to "
    assert pattern.pattern == r"(\w+)@(\w+)" and pattern.flags & re.IGNORECASE


def test_literal_characters_match_case_insensitively_only_what_folds_to_them() -> None:
    """For every character a literal may hold and every code point that Python's IGNORECASE matches it
    with, the code point's fold holds the character's fold."""
    allowed = sorted(_LITERAL_CHARS)
    union = re.compile("[" + "".join(re.escape(c) for c in allowed) + "]", re.IGNORECASE)
    texts = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF and union.fullmatch(chr(c))]
    wrong = [
        (p, t)
        for p in allowed
        for t in texts
        if re.fullmatch(re.escape(p), t, re.IGNORECASE) and fold(p) not in fold(t)
    ]
    assert wrong == []


PIECES = st.sampled_from(
    ["ai", "AI", "train", "Model", "pause", "é", "ß", "ss", "ſ", "K", "k", "i", "I", "ı", "İ", " ", "-", "'",
     r"\b", r"\w*", r"\s+", "[eé]", "[^x]", ".", r"\d"]
)  # fmt: skip


@st.composite
def patterns(draw: st.DrawFn, depth: int = 0) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.integers(0, 9 if depth < 2 else 4))
        if kind <= 4:
            parts.append(draw(PIECES))
        elif kind == 5:
            parts.append("(?:" + "|".join(draw(st.lists(patterns(depth + 1), min_size=1, max_size=3))) + ")")
        elif kind == 6:
            parts.append(
                "(?:" + draw(patterns(depth + 1)) + ")" + draw(st.sampled_from(["?", "*", "+", "{2}"]))
            )
        elif kind == 7:
            parts.append("(?-i:" + draw(patterns(depth + 1)) + ")")
        elif kind == 8:
            parts.append(draw(st.sampled_from(["(?=", "(?!", "(?<=", "(?<!"])) + draw(PIECES) + ")")
        else:
            parts.append("(" + draw(patterns(depth + 1)) + ")")
    return "".join(parts)


TEXTS = st.text(alphabet="aAiIıİtrTRnNéÉßsSſkKKmodelMODELpause '-\u2019x1", max_size=30)


@settings(max_examples=600, deadline=None)
@given(patterns(), st.lists(TEXTS, min_size=1, max_size=5), st.booleans())
def test_required_literals_never_rule_out_a_match(pattern: str, texts: list[str], ignore_case: bool) -> None:
    try:
        compiled = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    except re.error:
        return  # (a lookbehind of variable width...)
    literals = required_literals(compiled)
    for text in texts:
        if compiled.search(text):
            assert might_match(fold(text), literals), (pattern, text, literals)


def test_the_bundled_topics_have_literals_and_they_hold_on_the_corpus() -> None:
    config = load_config(bundled_config_dir() / "watchdog.toml", environ={"HOME": "/nonexistent"})
    regexes = [re.compile(p, re.IGNORECASE) for topic in config.topics for p in topic.patterns]
    plans = [(regex, required_literals(regex)) for regex in regexes]
    assert all(literals for _, literals in plans), "every bundled topic pattern can be ruled out cheaply"
    sentences = []
    for path in sorted((FIXTURES / "replay").rglob("*.md.gz"))[::12]:
        text = gzip.decompress(path.read_bytes()).decode("utf-8")
        sentences += [text[a:b] for a, b in split_sentences(text)]
    matched = 0
    for sentence in sentences:
        folded = fold(sentence)
        for regex, literals in plans:
            if regex.search(sentence):
                matched += 1
                assert might_match(folded, literals), (regex.pattern, sentence)
    assert matched > 100, "the corpus exercises the patterns"


def test_the_leading_literal_is_what_every_match_starts_with() -> None:
    assert leading_literal(re.compile("enable javascript")) == "enable javascript"
    assert leading_literal(re.compile("the (?:page|content) isn't")) == "the "
    assert leading_literal(re.compile("\\nlog in", re.MULTILINE)) == "\nlog in"
    assert leading_literal(re.compile("ab*c")) == "a", "a repeated character is no part of the start"
    assert leading_literal(re.compile("ab?")) == "a"
    for no_start in ("(?:a|b)c", "[ab]c", "^a", "\\ba", "a|b", ".a", "(a)b", "a?b"):
        assert leading_literal(re.compile(no_start)) == "", no_start
    assert leading_literal(re.compile("abc", re.IGNORECASE)) == "", "a case-insensitive start is no literal"
    assert leading_literal(re.compile("(?i)abc")) == ""


STARTS = st.sampled_from(["a", "ai", "log in", "\n", "\\n", "é", "x", "ab", ""])


@settings(max_examples=600, deadline=None)
@given(STARTS, patterns(), st.lists(TEXTS, min_size=1, max_size=5), st.booleans())
def test_a_search_from_the_leading_literal_is_the_search(
    start: str, rest: str, texts: list[str], ignore_case: bool
) -> None:
    """search_from (validate's signature scan) finds a match exactly when the pattern's own search does,
    and every match starts with the leading literal (lookbehinds and anchors included in the patterns)."""
    try:
        compiled = re.compile(start + rest, re.IGNORECASE if ignore_case else 0)
    except re.error:
        return
    literal = leading_literal(compiled)
    for text in [*texts, "\n".join(texts), "xa" + "".join(texts) + "ai"]:
        found = compiled.search(text)
        assert search_from(compiled, literal, text) == (found is not None), (compiled.pattern, text, literal)
        assert all(m.group().startswith(literal) for m in compiled.finditer(text)), (compiled.pattern, text)


LINES = st.lists(st.text(alphabet="aAiIıİtrTRnNéÉßsSſkKKmodelMODELpause '-\u2019x1", max_size=12), max_size=6)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["model", "(?:pause|Ss)[ -]?t", "a|ia", r"\bK", "[at]r"]), LINES)
def test_the_lines_to_try_are_those_the_prefilter_lets_through(pattern: str, lines: list[str]) -> None:
    """lines_to_try tests every line of a text with one fold of it: the same lines as one test a line."""
    text = "\n".join(lines)
    prefiltered, plain = lazy(pattern, re.IGNORECASE, prefilter=True), lazy(pattern, re.IGNORECASE)
    literals = required_literals(prefiltered.compiled)
    expected = [i for i, line in enumerate(text.split("\n")) if might_match(fold(line), literals)]
    assert list(prefiltered.lines_to_try(text)) == expected
    assert list(plain.lines_to_try(text)) == list(range(len(text.split("\n"))))

"""Stage 3, validate: is this capture the policy, or a failed capture that must not become a version?

fetch -> extract/normalise -> **validate** -> store -> diff -> classify -> notify/publish

A false version is worse than a missed fetch: it triggers two alerts (the policy "vanished", then
"came back") and pollutes the archive. The real Meta captures in the corpus show the failure shapes:
an error status, a selector that matched nothing, a 29-byte capture (page not finished rendering), a
headings-only capture, a partial capture, the policy captured twice in one page, a whole site section
captured instead of the policy, and interstitials (error page + cookie dialog, login walls...).

Checks, in order; the first that fails names the rejection (`code` is stable, `reason` is for people):

==================  ========================================================================
http-status         the response status is not 2xx
no-match            `select` was configured and matched nothing
block-page:<kind>   an interstitial: login-wall, unavailable, cookie-consent, enable-javascript,
                    unsupported-browser, captcha, rate-limited (see the rule below)
too-short           fewer than `target.min_length` characters
headings-only       the text is (nearly) all headings, little prose
duplicated          one long run of lines appears twice (the page captured twice in a row)
over-capture        much longer than the last version, and that version is (nearly) all inside it: the
                    last text plus page chrome, menus or other documents (the rule below)
shrunk              much shorter than the last version, and what it holds is (nearly) all in that
                    version: the same text with whole sections missing and nothing new (the rule below)
truncated           a prefix of the last version that lost at least `TRUNCATED_LOSS` of it
==================  ========================================================================

**Truncation is judged by content, not size.** A size alone cannot tell a failed capture from a rewrite:
Meta's August 2024 Instagram policy and September 2025 French policy are half as long as the texts they
replaced, and are real. So size only decides *when to look*:

- a text that lost more than `target.max_shrink` of the last version's length is a failed capture when
  its prose lines are (nearly) all found in that version (after `normalise.meaning_key`): less than
  `REWRITE_NOVELTY` (10%) of its prose is new. A rewrite brings new prose (the two real rewrites above:
  21% and 69% of their prose is new; the partial captures of the corpus: under 6%, a banner at most);
- a text that is a prefix of the last version (the capture stopped early) is a failed capture as soon as
  it lost `TRUNCATED_LOSS` (20%) of it: a policy does not lose its last fifth without a word added (a
  feed does: its oldest items fall off its end, so feed targets are exempt);
- mirror rule for over-capture: a text more than `1 / (1 - max_shrink)` times the last version's length
  (2x by default) that holds (nearly) all of that version (`CONTAINED`, 90% of its prose) is an
  over-capture when what it adds is mostly furniture (menu-like short lines, headings, chrome, lines
  repeated within the page: the whole Privacy Center with its accordions), or when it is more than
  `max_growth` times as long (other documents captured with it). A longer text that does *not* hold the
  last one is a rewrite (the French policy's long variant of 2026).

Without the last version's text (a caller that only knows its length), the size rules apply as before.

**The block-page rule.** A real privacy policy legitimately says "log in", "cookies", "JavaScript" or
"isn't available"; an interstitial is *short* and *dominated* by such wording. So a signature (a regex
searched in each line, list/heading markers removed, `^`/`$` anchored to that line) only counts when
the capture is dominated by it, meaning at least one of:

1. the text is short: under `BLOCK_PAGE_SHORT_TEXT` characters (3,000: interstitials are a few hundred
   characters of message plus a footer; the documents we watch are 7,000 to 300,000 characters);
2. the text is short *relative to the last version*: it lost more than `target.max_shrink` of it, so
   it is rejected anyway, and the signature says why;
3. the lines carrying a signature are at least `BLOCK_PAGE_SHARE` (30%) of the text's characters.

When several signatures match, the first in the signature list names the page (interstitial kinds come
before cookie-consent, which rides along with other failures). Signatures are data: the configuration
can replace them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Final

from watchdog.models import Target
from watchdog.normalise import is_chrome_line, is_heading_line, meaning_key
from watchdog.patterns import lazy, leading_literal, search_from
from watchdog.results import Capture, Extracted, Rejection

__all__ = [
    "BLOCK_PAGE_SHARE",
    "BLOCK_PAGE_SHORT_TEXT",
    "CONTAINED",
    "DEFAULT_SIGNATURES",
    "DUPLICATE_SHARE",
    "REWRITE_NOVELTY",
    "TRUNCATED_LOSS",
    "BlockSignature",
    "validate",
]

BLOCK_PAGE_SHORT_TEXT: Final = 3000
BLOCK_PAGE_SHARE: Final = 0.3
HEADINGS_ONLY_PROSE: Final = 0.2  # prose (non-heading characters) below this share: headings-only
DUPLICATE_SHARE: Final = 0.3  # one run of lines repeated verbatim that is this share of the text
DUPLICATE_WINDOW: Final = 4  # lines that must repeat in a row before a run counts
REWRITE_NOVELTY: Final = 0.10  # share of a much shorter text's prose that must be new for a rewrite
TRUNCATED_LOSS: Final = 0.20  # a prefix of the last version that lost this share is a truncated capture
CONTAINED: Final = 0.90  # share of the last version's prose a much longer text must hold to be "old + extra"
FURNITURE: Final = 0.50  # share of what a longer text adds that must be furniture for an over-capture
MENU_LINE: Final = 50  # a line shorter than this, without a sentence end, reads as a menu item

PreviousText = Callable[[], str]


@dataclass(frozen=True, slots=True)
class BlockSignature:
    """Wording of an interstitial. `code` goes into "block-page:<code>"; `pattern` is a case-insensitive
    regex searched in each line of the text (markers removed; ^ and $ anchor to the line)."""

    code: str
    pattern: str


_APOS: Final = "['’]"  # the text is normalised to ', the patterns tolerate both for reuse elsewhere

DEFAULT_SIGNATURES: Final[tuple[BlockSignature, ...]] = (
    BlockSignature(
        "captcha",
        r"captcha|are you a robot|verify (?:that )?you(?:'re| are) (?:a )?human|checking your browser"
        r"|unusual traffic from your|^security check$|vérifi(?:ez|er) que vous (?:êtes|n'êtes pas)"
        r"|contrôle de sécurité|êtes-vous un robot",
    ),
    BlockSignature(
        "rate-limited",
        rf"too many requests|you{_APOS}re temporarily blocked|you{_APOS}ve been temporarily blocked"
        rf"|you can{_APOS}t use this feature right now|rate limit exceeded|^429\b"
        rf"|trop de requêtes|vous êtes temporairement bloqué|vous avez été temporairement bloqué",
    ),
    BlockSignature(
        "login-wall",
        r"(?:you must|please) log ?in|log ?in to (?:continue|see|view)"
        r"|log ?in(?:to)? (?:to )?(?:facebook|instagram)"
        r"|^(?:log ?in|sign ?in|sign up|create new account)$"
        r"|^(?:forgotten|forgot) (?:your )?(?:password|account)\??$"
        r"|vous devez vous connecter|connectez-vous (?:pour|à)"
        r"|^se connecter(?: à (?:facebook|instagram))?$"
        rf"|^(?:s{_APOS}inscrire|créer (?:un )?nouveau compte|(?:mot de passe|compte) oublié ?\??)$",
    ),
    BlockSignature(
        "unavailable",
        rf"(?:this|the) (?:page|content) isn{_APOS}t available|(?:page|content) not available"
        rf"|the link you followed may be broken|^page not found$|^404\b|sorry, something went wrong"
        rf"|cette page n{_APOS}est pas disponible|ce contenu n{_APOS}est pas disponible"
        rf"|le lien que vous avez suivi|^page introuvable$|une erreur s{_APOS}est produite",
    ),
    BlockSignature(
        "enable-javascript",
        r"(?:enable|turn on|activate) javascript|javascript (?:is|has been) (?:disabled|required|off)"
        r"|requires javascript|activ(?:ez|er) (?:le )?javascript|javascript est désactivé",
    ),
    BlockSignature(
        "unsupported-browser",
        rf"(?:browser|navigateur) (?:is not|isn{_APOS}t|n{_APOS}est pas) (?:supported|pris en charge)"
        r"|update your browser|mettez à jour votre navigateur",
    ),
    BlockSignature(
        "cookie-consent",
        r"allow (?:the use of )?(?:all )?cookies|(?:accept|decline) (?:all |optional )?cookies"
        rf"|only allow essential cookies|autoriser (?:l{_APOS}utilisation des|tous les) cookies"
        r"|(?:accepter|refuser) (?:tous )?les cookies|refuser les cookies optionnels",
    ),
)

_MARKER: Final = lazy(r"^\s*(?:- )?(?:#{1,6} )?")


def validate(
    capture: Capture,
    extracted: Extracted,
    *,
    target: Target,
    previous_length: int | None,
    previous_text: PreviousText | None = None,
    signatures: Sequence[BlockSignature] = DEFAULT_SIGNATURES,
    max_growth: float = 3.0,
) -> Rejection | None:
    """None when the capture may become a version, else why not (see the module docstring).

    `previous_text` returns the last version's text; it is called only when the size calls for a look
    at the content (so an unchanged-size check never loads it).
    """
    text = extracted.text
    length = len(text)
    shrunk = previous_length is not None and length < (1 - target.max_shrink) * previous_length
    size = _SizeCheck(
        text, previous_length, previous_text, target.max_shrink, max_growth, feed=target.kind == "feed"
    )
    return (
        _status(capture)
        or _not_rendered(capture)
        or _no_match(extracted, target)
        or _block_page(text, signatures, shrunk=shrunk, size=size)
        or _too_short(length, target)
        or _headings_only(text)
        or _duplicated(text)
        or size.over_capture()
        or size.shrunk()
        or size.truncated()
    )


def _status(capture: Capture) -> Rejection | None:
    if 200 <= capture.status < 300:
        return None
    return Rejection("http-status", f"the server answered HTTP {capture.status}")


# Set by the browser fetcher when the page never reached its `ready` marker / selector text in time: what
# was rendered so far is kept as evidence, never taken for the policy (a truncated version would alert).
RENDER_HEADER: Final = "x-watchdog-render"


def _not_rendered(capture: Capture) -> Rejection | None:
    problem = capture.header(RENDER_HEADER)
    return None if problem is None else Rejection("not-rendered", f"not rendered: {problem}")


def _no_match(extracted: Extracted, target: Target) -> Rejection | None:
    if extracted.matched:
        return None
    wanted = ", ".join(target.select) or "the configured selectors"
    return Rejection("no-match", f"the selectors ({wanted}) matched nothing on the page")


def _too_short(length: int, target: Target) -> Rejection | None:
    if length >= target.min_length:
        return None
    return Rejection(
        "too-short", f"text is {length:,} characters, under the minimum of {target.min_length:,}"
    )


@dataclass(frozen=True, slots=True)
class _Lines:
    """A text's prose lines (headings and chrome left out) and their meaning keys."""

    lines: tuple[str, ...]
    keys: tuple[str, ...]

    @classmethod
    def of(cls, text: str) -> _Lines:
        return _lines_of(text)

    @classmethod
    def build(cls, text: str) -> _Lines:
        lines = [
            line.strip()
            for line in text.split("\n")
            if line.strip() and not is_heading_line(line) and not is_chrome_line(line)
        ]
        keyed = [(line, key) for line in lines if (key := meaning_key(line))]  # a bare link has no words
        return cls(tuple(line for line, _ in keyed), tuple(key for _, key in keyed))

    @property
    def chars(self) -> int:
        return sum(map(len, self.lines))

    def share_in(self, other: _Lines) -> float:
        """Share of this text's prose characters whose line (by meaning) is also in `other`."""
        known = set(other.keys)
        found = sum(len(line) for line, key in zip(self.lines, self.keys, strict=True) if key in known)
        return found / max(1, self.chars)


@lru_cache(maxsize=4)
def _lines_of(text: str) -> _Lines:
    """Cached: the last version's text is read and keyed once, whatever the number of captures judged
    against it (a page that keeps failing, the three checks before a persistent text is accepted)."""
    return _Lines.build(text)


class _SizeCheck:
    """The size-triggered rules of one capture against the last version (module docstring)."""

    def __init__(
        self,
        text: str,
        previous_length: int | None,
        previous_text: PreviousText | None,
        max_shrink: float,
        max_growth: float,
        *,
        feed: bool = False,
    ) -> None:
        self.feed = feed  # a feed's oldest items fall off its end: a prefix is its normal life
        self.text = text
        self.length = len(text)
        self.previous_length = previous_length or 0
        self._previous_text = previous_text
        self.max_shrink = max_shrink
        self.max_growth = max_growth
        self._old: str | None = None

    def _previous(self) -> str | None:
        if self._old is None and self._previous_text is not None:
            self._old = self._previous_text()
        return self._old

    def all_known(self, lines: Iterable[str]) -> bool:
        """Every one of these lines is (by meaning) in the last version."""
        old = self._previous()
        if old is None:
            return False
        known = set(_Lines.of(old).keys)
        return all(meaning_key(line) in known for line in lines)

    def shrunk(self) -> Rejection | None:
        if not self.previous_length or self.length >= (1 - self.max_shrink) * self.previous_length:
            return None
        old = self._previous()
        lost = 1 - self.length / self.previous_length
        sizes = (
            f"text is {self.length:,} characters, {lost:.0%} shorter than the last version "
            f"({self.previous_length:,})"
        )
        if old is None:
            return Rejection("shrunk", sizes)
        novelty = 1 - _Lines.of(self.text).share_in(_Lines.of(old))
        if novelty >= REWRITE_NOVELTY:
            return None  # a rewrite: it brings new prose
        return Rejection(
            "shrunk",
            f"{sizes}, and {1 - novelty:.0%} of its prose is in that version: whole sections are missing "
            "and nothing new came (a failed capture)",
        )

    def truncated(self) -> Rejection | None:
        if self.feed or not self.previous_length or self.length > (1 - TRUNCATED_LOSS) * self.previous_length:
            return None
        old = self._previous()
        new = self.text.rstrip()
        if old is None or not new or not old.startswith(new):
            return None
        return Rejection(
            "truncated",
            f"text is the first {self.length:,} of the last version's {self.previous_length:,} characters, "
            "word for word: the capture stopped early",
        )

    def over_capture(self) -> Rejection | None:
        growth = 1 / (1 - self.max_shrink) if self.max_shrink < 1 else self.max_growth
        if not self.previous_length or self.length <= min(growth, self.max_growth) * self.previous_length:
            return None
        ratio = self.length / self.previous_length
        sizes = (
            f"text is {self.length:,} characters, {ratio:.1f} times the last version "
            f"({self.previous_length:,})"
        )
        old = self._previous()
        if old is None:
            return self._over(sizes) if ratio > self.max_growth else None
        new_lines, old_lines = _Lines.of(self.text), _Lines.of(old)
        if old_lines.share_in(new_lines) < CONTAINED:
            return None  # not the old text plus something: a rewrite
        if ratio > self.max_growth or _furniture_share(new_lines, old_lines) >= FURNITURE:
            return self._over(f"{sizes}, and it holds the last version")
        return None

    @staticmethod
    def _over(sizes: str) -> Rejection:
        return Rejection(
            "over-capture", f"{sizes}: the capture probably holds more than the policy (menus, other pages)"
        )


def _furniture_share(new: _Lines, old: _Lines) -> float:
    """Of the characters a longer text adds (its lines beyond those the last version had, counted with
    their repeats), the share that reads as page furniture: menu-like short lines and lines repeated within
    the page (accordions rendered again and again)."""
    had = Counter(old.keys)
    counts = Counter(new.keys)
    matched: Counter[str] = Counter()
    added = furniture = 0
    for line, key in zip(new.lines, new.keys, strict=True):
        if matched[key] < had[key]:
            matched[key] += 1  # this occurrence is one the last version had
            continue
        added += len(line)
        if counts[key] > 1 or (len(line) < MENU_LINE and not line.rstrip().endswith((".", "!", "?", ":"))):
            furniture += len(line)
    return furniture / max(1, added)


# --------------------------------------------------------------------------- text shape


def _plain_lines(text: str) -> list[str]:
    """Non-empty lines without their list/heading markers."""
    return [_MARKER.sub("", line) for line in text.split("\n") if line.strip()]


def _block_page(
    text: str, signatures: Sequence[BlockSignature], *, shrunk: bool, size: _SizeCheck | None = None
) -> Rejection | None:
    lines = _plain_lines(text)
    folded = [line.lower() for line in lines]
    haystack = _Haystack("\n".join(folded))
    found = [(s, m.regex) for s in signatures if (m := _matcher(s.pattern)).found_in(haystack)]
    if not found:
        return None
    hits = [i for i, line in enumerate(folded) if any(regex.search(line) for _, regex in found)]
    share = sum(len(lines[i]) for i in hits) / max(1, sum(map(len, lines)))
    # Rule 2 (much shorter) counts only wording the last version did not have: a policy that itself
    # quotes "Allow all cookies" stays a policy when Meta rewrites it shorter.
    if shrunk and size is not None and size.all_known(lines[i] for i in hits):
        shrunk = False
    if not (len(text) < BLOCK_PAGE_SHORT_TEXT or shrunk or share >= BLOCK_PAGE_SHARE):
        return None
    signature, regex = found[0]
    quoted = next(lines[i] for i in hits if regex.search(folded[i]))
    return Rejection(
        f"block-page:{signature.code}",
        f'a block page ({signature.code}) rather than the policy: it says "{_clip(quoted)}" and has '
        f"{len(text):,} characters",
    )


def _compile(pattern: str) -> re.Pattern[str]:
    """Signatures are case-insensitive. They are searched in lowercased text, and an all-lowercase pattern
    then needs no IGNORECASE flag, which makes the scan of a 200,000-character policy ~5x faster."""
    flags = re.MULTILINE | (0 if pattern == pattern.lower() else re.IGNORECASE)
    return re.compile(pattern, flags)


# --------------------------------------------------------------------------- fast whole-text search
#
# Every accepted capture is searched for every signature, and nearly always nothing is found: that scan
# was the most expensive step of a check after parsing (a quarter of a second per cycle over a dozen
# policies). Python's regex engine scans fast only for a pattern that starts with a literal (it skips
# to candidate positions); an alternation with one branch that starts with `^` or a group is tried at
# every position of the text. So, for the whole-text "is it there at all?" test, a signature is split
# into its top-level alternatives, each searched on its own (a literal start is found by a quick scan),
# and a line-anchored `^x` becomes `\nx`, searched in the text behind a newline: MULTILINE's `^` matches
# at the start or after a newline, exactly where `\n` matches in that string. The signature is found iff
# one alternative is. The per-line work (which lines hit, the line quoted) keeps the signature's own
# regex, so results are the same; a pattern that cannot be split safely is searched whole. An alternative
# that starts with a choice of plain words, `(?:accept|decline) cookies`, is split too (`accept cookies`,
# `decline cookies`): the engine can only skip to one of the words' first letters, common ones, and tried
# most positions of the text (~7 ms per alternative on a dozen policies, against ~1 ms).

# Backreferences, conditionals and global inline flags tie alternatives together: such a pattern stays whole.
_UNSPLITTABLE: Final = lazy(r"\\[1-9]|\(\?P=|\(\?\(|\(\?[aiLmsux]+\)|\\A|\(\?<[=!]")


@dataclass(frozen=True, slots=True)
class _Haystack:
    """The folded text, and the same behind a newline (where `\\nx` finds every line-anchored `^x`)."""

    text: str

    @property
    def behind_newline(self) -> str:
        return "\n" + self.text


@dataclass(frozen=True, slots=True)
class _Matcher:
    regex: re.Pattern[str]  # the signature as configured: per-line searches
    anywhere: tuple[re.Pattern[str], ...]  # alternatives searched in the text
    at_line_start: tuple[re.Pattern[str], ...]  # `^x` alternatives as `\nx`, searched behind a newline

    def found_in(self, haystack: _Haystack) -> bool:
        # each alternative from its literal start (patterns.search_from: str.find skips to it, ~4x faster)
        if any(search_from(part, _start(part), haystack.text) for part in self.anywhere):
            return True
        return bool(self.at_line_start) and any(
            search_from(part, _start(part), haystack.behind_newline) for part in self.at_line_start
        )


@cache
def _start(part: re.Pattern[str]) -> str:
    return leading_literal(part)


@cache
def _matcher(pattern: str) -> _Matcher:
    regex = _compile(pattern)
    alternatives = None if _UNSPLITTABLE.search(pattern) else _top_level_alternatives(pattern)
    if alternatives is not None:
        alternatives = [choice for alternative in alternatives for choice in _leading_choices(alternative)]
    if alternatives is None or len(alternatives) < 2:
        return _Matcher(regex, (regex,), ())
    flags = regex.flags & (re.MULTILINE | re.IGNORECASE)
    try:
        anywhere = tuple(re.compile(a, flags) for a in alternatives if not a.startswith("^"))
        at_line_start = tuple(re.compile("\\n" + a[1:], flags) for a in alternatives if a.startswith("^"))
    except re.error:  # an alternative that only compiles in its context (`^*`...): search it whole
        return _Matcher(regex, (regex,), ())
    return _Matcher(regex, anywhere, at_line_start)


# A leading group of plain words (letters, digits, spaces, apostrophes, hyphens) not repeated by what follows.
_LEADING_CHOICE: Final = lazy(r"\(\?:([\w '’-]+(?:\|[\w '’-]+)+)\)(?![?*+{])(.*)", re.DOTALL)


def _leading_choices(alternative: str) -> list[str]:
    """`(?:a|b)rest` as [`arest`, `brest`] (found in a text exactly when one of them is); else the
    alternative itself."""
    found = _LEADING_CHOICE.fullmatch(alternative)
    if found is None:
        return [alternative]
    return [choice + found.group(2) for choice in found.group(1).split("|")]


def _top_level_alternatives(pattern: str) -> list[str]:
    """`pattern` cut at each `|` outside groups and character classes (escapes skipped)."""
    parts: list[str] = []
    depth = start = i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if char == "[":
            i = _class_end(pattern, i)
            continue
        depth += (char == "(") - (char == ")")
        if char == "|" and depth == 0:
            parts.append(pattern[start:i])
            start = i + 1
        i += 1
    parts.append(pattern[start:])
    return parts


def _class_end(pattern: str, i: int) -> int:
    """Index after the character class opening at `i` (a `]` right after `[` or `[^` is a literal)."""
    i += 1
    if pattern[i : i + 1] == "^":
        i += 1
    if pattern[i : i + 1] == "]":
        i += 1
    while i < len(pattern) and pattern[i] != "]":
        i += 2 if pattern[i] == "\\" else 1
    return i + 1


def _clip(line: str, limit: int = 80) -> str:
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def _headings_only(text: str) -> Rejection | None:
    lines = [line.lstrip() for line in text.split("\n") if line.strip()]
    headings = [line for line in lines if line.removeprefix("- ").startswith("#")]
    total = sum(map(len, lines))
    prose = total - sum(map(len, headings))
    if len(headings) < 2 or prose >= HEADINGS_ONLY_PROSE * total:
        return None
    return Rejection(
        "headings-only",
        f"{len(headings):,} of {len(lines):,} lines are headings and only {prose:,} of {total:,} "
        "characters are prose: the body text is missing",
    )


def _duplicated(text: str) -> Rejection | None:
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    total = sum(map(len, lines))
    repeated = _longest_repeat(lines)
    if not total or repeated < DUPLICATE_SHARE * total:
        return None
    return Rejection(
        "duplicated",
        f"{repeated:,} of the {total:,} characters repeat an earlier run of the same text word for "
        "word: the page was captured twice",
    )


def _longest_repeat(lines: Sequence[str]) -> int:
    """Characters in the longest run of lines that repeats an earlier, non-overlapping run.

    One greedy pass (linear time): each window of DUPLICATE_WINDOW lines is looked up among the windows
    seen before; a hit is extended line by line. Legitimate repetition (the same list of information
    categories under each legal basis) is a run of a dozen lines; a doubled capture is half the text.
    """
    first: dict[tuple[str, ...], int] = {}
    best = 0
    j = 0
    size = DUPLICATE_WINDOW
    while j + size <= len(lines):
        window = tuple(lines[j : j + size])
        i = first.get(window)
        if i is not None and i + size <= j:
            run = size
            while j + run < len(lines) and i + run < j and lines[i + run] == lines[j + run]:
                run += 1
            best = max(best, sum(map(len, lines[j : j + run])))
            j += run
            continue
        first.setdefault(window, j)
        j += 1
    return best

"""Meaning-preserving normalisation: when do two wordings say the same thing?

fetch -> extract -> validate -> store -> diff -> **classify** (kinds, topics) -> render -> notify/publish

The one normaliser of the project, shared by diff, classify and render (never a second one). A watchdog
that alerts on "organise" -> "organize" is muted within a week, so an edit that only changes how a text
is *written*, not what it *says*, must be recognised as such. Two functions:

- `meaning_key(text)`: a form of the text that is equal for two texts differing only by locale spelling
  (en-GB / en-US), date format (English or French), typography, case, punctuation or footnote markers.
- `editorial_reason(before, after)`: None when the edit changes meaning; otherwise a short category
  ("spelling", "date format", "heading", "link label"...). Besides `meaning_key`, it knows two structural
  rules for blocks of lines: headings rendered, dropped or replaced by bare annotation numbers while the
  prose is the same ("heading"), and lines of page chrome or link labels ("Play Video", "Learn more")
  appearing or vanishing ("link label").

The key is built in layers, each a principle rather than a list of fixtures:

==================  =====================================================================================
typography          Unicode compatibility forms, quotes, dashes, spaces, ellipses, ligatures (œ -> oe),
                    French spacing before ; : ! ? and inside guillemets, "&" -> "and"
footnote marker     "[7]", superscript digits, * † ‡ stuck to a word
date format         a date in any common English or French format ("16 December 2025", "December 16th,
                    2025", "Dec. 16, 2025", "16/12/2025", "2025-12-16", "16 décembre 2025", "1er janv.
                    2026") becomes one token; a line that is only a label and a date ("Effective ...",
                    "Last updated ...", "Date effective : ...") keeps the date alone
case                case folding; accents dropped on capitals ("Etats" = "États", a French typographic
                    habit)
spelling            en-GB / en-US word pairs (both directions: each maps to one form) and the suffix
                    families -ise/-ize, -yse/-yze, -our/-or, -re/-er, -ogue/-og, -ence/-ense, doubled -l-,
                    each guarded (a closed list of stems where a blind rule would merge two real words,
                    e.g. "four"/"for", French "votre"/"voter"); locale vocabulary ("holiday"/"vacation",
                    "such as"/"like"); numbers written as words or digits ("five"/"5")
style               the optional complementiser "that" before a clause ("ensure [that] we"), and causal
                    "as"/"since" opening a clause: copy-editing choices that differ between locales
heading             heading levels and list bullets at the start of a line ("### X" -> "## X")
punctuation         every punctuation mark (apostrophes vanish, others become spaces), except inside numbers
==================  =====================================================================================

What never becomes equal: a different word that is not a spelling variant ("license" -> "licenses", "may"
-> "will"), a different date, a different number, a negation. Every rule maps both sides of a pair to the
same form, so whichever direction Meta switches (en-US -> en-GB or back), the two keys meet.

Cost: one pass of a handful of compiled regexes per layer; a changed hunk of a few hundred characters costs
microseconds, a whole 200 KB policy tens of milliseconds (bench/bench_normalise.py).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from typing import Final

from watchdog.patterns import lazy

__all__ = [
    "LAYERS",
    "editorial_reason",
    "is_chrome_line",
    "is_heading_line",
    "meaning_key",
]

# --------------------------------------------------------------------------- typography


def _words(text: str, sep: str | None = None) -> tuple[str, ...]:
    """A word list written as one string (easier to read and to extend than a column of quoted words)."""
    return tuple(word.strip() for word in text.split(sep) if word.strip())


_TYPO_MAP: Final = {
    **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u02bc\u00b4\u0060", "'"),
    **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb\u2039\u203a", '"'),
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d", "-"),
    **dict.fromkeys(
        "\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000\t", " "
    ),
    **dict.fromkeys("\u200b\u200c\u200d\u2060\ufeff\u00ad", ""),
    "\u2026": "...",
    "\u0153": "oe",
    "\u0152": "OE",
    "\u00e6": "ae",
    "\u00c6": "AE",
    "&": " and ",
}
# French sets a (thin) space before ; : ! ? and inside guillemets; English does not. Spaces around a
# straight double quote go too (guillemets and curly quotes became one by then).
_FRENCH_SPACING: Final = lazy(r"\s+(?=[;:!?])|\s*\"\s*")
_SPACES: Final = lazy(r"[ \t]+")
# The table's characters, found by a regex (a scan in C) and replaced one by one: str.translate looks every
# character of a non-ASCII text up in the table (~10x slower on a French policy); an ASCII text holding
# none of the table's ASCII keys (most lines of an English policy) is left as it is.
_TYPO_CHARS: Final = lazy("[" + "".join(re.escape(char) for char in _TYPO_MAP) + "]")
_TYPO_ASCII: Final = tuple(char for char in _TYPO_MAP if char.isascii())


def _translated(text: str) -> str:
    """`text.translate(str.maketrans(_TYPO_MAP))`."""
    if text.isascii() and not any(char in text for char in _TYPO_ASCII):
        return text
    return _TYPO_CHARS.sub(_typo_char, text)


def _typo_char(match: re.Match[str]) -> str:
    return _TYPO_MAP[match.group()]


def _typography(text: str) -> str:
    text = _translated(text)
    if not text.isascii():
        # NFKC folds ligatures (ﬁ), full-width forms and compatibility characters (superscript footnote
        # digits are gone by then: the footnote layer runs first, or they would become plain digits).
        text = _translated(unicodedata.normalize("NFKC", text))
    if '"' in text or " ;" in text or " :" in text or " !" in text or " ?" in text:
        text = _FRENCH_SPACING.sub(lambda m: '"' if '"' in m.group() else "", text)
    return _SPACES.sub(" ", text) if "  " in text else text


# --------------------------------------------------------------------------- link targets

# Link targets are not wording (extract keeps them out of the text; a Markdown residue "](https://...)" or
# a kept "<https://...>" may still carry one).
_LINK_TARGET: Final = lazy(r"\]\(\s*(?:https?://|/)[^)\s]*\)|<https?://[^>\s]*>|\bhttps?://[^\s)>\]]+")


def _link_targets(text: str) -> str:
    return _LINK_TARGET.sub(" ", text) if "http" in text or "](/" in text else text


# --------------------------------------------------------------------------- footnote markers

_SUPERSCRIPT: Final = lazy(r"[\u00b9\u00b2\u00b3\u2070-\u209f]+")
# "Metadata[7]", "information[12]:" -- a bracketed small number stuck to a word or closing punctuation;
# "policy*", "data†" -- a reference sign stuck to a word. As a regex:
#     (?<=[\w.,;:)"'’”])\[\d{1,3}\]|(?<=\w)[*†‡]+(?=[\s.,;:)]|$)
# written to start with the bracket or sign each match starts with (the engine skips to those characters;
# a pattern starting with a lookbehind is tried at every position), the lookbehinds moved after it.
_FOOTNOTE: Final = lazy(
    r"[\[*\u2020\u2021](?:(?<=[\w.,;:)\"'\u2019\u201d]\[)\d{1,3}\]|(?<=\w[*\u2020\u2021])[*\u2020\u2021]*(?=[\s.,;:)]|$))"
)


def _footnotes(text: str) -> str:
    # cheap tests first: most lines hold no bracket, star, dagger nor non-ASCII character
    if not text.isascii():
        text = _SUPERSCRIPT.sub("", text)
    elif "[" not in text and "*" not in text:
        return text
    return _FOOTNOTE.sub("", text)


# --------------------------------------------------------------------------- dates

_MONTHS: Final = {
    # English
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7, "august": 8,
    "september": 9, "october": 10, "november": 11, "december": 12,
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9,
    "oct": 10, "nov": 11, "dec": 12,
    # French
    "janvier": 1, "février": 2, "fevrier": 2, "mars": 3, "avril": 4, "mai": 5, "juin": 6,
    "juillet": 7, "août": 8, "aout": 8, "septembre": 9, "octobre": 10, "novembre": 11,
    "décembre": 12, "decembre": 12,
    "janv": 1, "févr": 2, "fevr": 2, "fév": 2, "avr": 4, "juil": 7, "déc": 12,
}  # fmt: skip
_WEEKDAYS: Final = (
    "monday|tuesday|wednesday|thursday|friday|saturday|sunday|mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun"
    "|lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche"
)
_MONTH: Final = "(?P<{name}>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DAY: Final = r"(?P<{name}>[0-3]?\d)(?:st|nd|rd|th|er|e|ème)?"
_YEAR: Final = r"(?P<{name}>(?:19|20)\d\d)"


def _p(template: str, name: str) -> str:
    return template.format(name=name)


# Both date patterns have the prefilter of their required literals (a month name, "19" or "20"; "date"): the
# first starts with a lookbehind, so the engine tries it at every position of a line that holds a digit.
_DATE: Final = lazy(
    rf"(?<![\w/.-])(?:(?:{_WEEKDAYS}),?\s+)?(?:"
    # 16 December 2025 | 16th of December, 2025 | 1er janvier 2026 | 16 décembre | le 16 déc. 2025
    rf"{_p(_DAY, 'd1')}\s+(?:of\s+)?{_p(_MONTH, 'm1')}(?:,?\s+{_p(_YEAR, 'y1')})?"
    # December 16, 2025 | Dec. 16th 2025 | December 16
    rf"|{_p(_MONTH, 'm2')}\s+{_p(_DAY, 'd2')}(?:,?\s+{_p(_YEAR, 'y2')})?"
    # December 2025 | décembre 2025
    rf"|{_p(_MONTH, 'm3')},?\s+{_p(_YEAR, 'y3')}"
    # 2025-12-16 | 2025/12/16
    rf"|{_p(_YEAR, 'y4')}[-/.](?P<n4>[01]?\d)[-/.](?P<n5>[0-3]?\d)"
    # 16/12/2025 | 12/16/2025 | 16.12.2025 | 16-12-2025
    rf"|(?P<n1>[0-3]?\d)(?P<sep>[/.-])(?P<n2>[0-3]?\d)(?P=sep){_p(_YEAR, 'y5')}"
    r")(?![\w/-])",
    re.IGNORECASE,
    prefilter=True,
)


def _date_token(year: int | None, month: int, day: int | None) -> str:
    """One alphanumeric token per date: survives the punctuation layer, never equal to a real word."""
    return f" date{year or 0:04d}m{month:02d}d{day or 0:02d} "


def _valid(month: int, day: int | None) -> bool:
    return 1 <= month <= 12 and (day is None or 1 <= day <= 31)


def _date(match: re.Match[str]) -> str:
    g = match.groupdict()
    for d, m, y in (("d1", "m1", "y1"), ("d2", "m2", "y2"), (None, "m3", "y3")):
        if g[m] is not None:
            month = _MONTHS[g[m].lower().rstrip(".")]
            day = int(g[d]) if d and g[d] else None
            year = int(g[y]) if g[y] else None
            return _date_token(year, month, day) if _valid(month, day) else match.group()
    if g["y4"] is not None:
        month, day = int(g["n4"]), int(g["n5"])
        return _date_token(int(g["y4"]), month, day) if _valid(month, day) else match.group()
    return _numeric_date(int(g["n1"]), int(g["n2"]), int(g["y5"])) or match.group()


def _numeric_date(first: int, second: int, year: int) -> str | None:
    """16/12/2025 is day-first, 12/16/2025 month-first; 05/06/2025 could be either (en-GB or en-US), so
    it stays a token of its own, in its written order: equal to itself only, never to a worded date nor to
    06/05/2025 (a change of a date must never pass for a change of format)."""
    readings = {(m, d) for d, m in ((first, second), (second, first)) if _valid(m, d)}
    if len(readings) == 1:
        return _date_token(year, *readings.pop())
    return f" date{year:04d}a{first:02d}b{second:02d} " if readings else None


# "Effective May 27, 2025", "Last updated: 16 December 2025", "Date effective : 16 juin 2025", "Mise à
# jour : 16 décembre 2025": the label around a date on a line of its own is page furniture.
_DATE_LABEL_LINE: Final = lazy(
    r"^(?P<indent>\s*(?:[-*] |#{1,6} )?)"
    r"(?:(?:effective(?: date)?(?: as of| on| from)?|last (?:updated|revised|modified)(?: on)?"
    r"|(?:updated|revised|published)(?: on)?|date of last revision|date effective|en vigueur(?: le| depuis)?"
    r"|date d'entrée en vigueur|(?:dernière )?mise à jour(?: le)?|mis à jour le|publié le)\s*:?\s*)?"
    r"(?P<date>(?:\s*date\d{4}[mab]\d\d[db]\d\d\s*)+)\.?\s*$",
    re.IGNORECASE | re.MULTILINE,
    prefilter=True,
)


def _dates(text: str) -> str:
    if not _DATE_HINT.search(text):
        return text
    text = _DATE.sub(_date, text)
    return _DATE_LABEL_LINE.sub(lambda m: m.group("indent") + m.group("date"), text)


_DATE_HINT: Final = lazy(r"\d")


# --------------------------------------------------------------------------- case


def _case(text: str) -> str:
    # French typography often drops the accent on capitals ("Etats-Unis" for "États-Unis"): the accents of
    # capitals are dropped before folding, lower-case accents are kept ("à" and "a" are different words).
    if not text.isascii():
        text = _CAPITAL_ACCENT.sub(_bare_capital, text)
    return text.casefold()


_CAPITAL_ACCENT: Final = lazy(r"[À-ÖØ-Þ]")


def _bare_capital(match: re.Match[str]) -> str:
    return unicodedata.normalize("NFD", match.group())[0]


# --------------------------------------------------------------------------- spelling (locale)

# en-GB -> en-US pairs that no suffix rule covers. Each side maps to one form (the en-US one), so both
# directions meet. Phrases are matched as whole words.
_WORD_PAIRS: Final = {
    "aeroplane": "airplane", "aeroplanes": "airplanes", "ageing": "aging", "aluminium": "aluminum",
    "amongst": "among", "whilst": "while", "anaesthesia": "anesthesia", "anaemia": "anemia",
    "archaeology": "archeology", "cheque": "check", "cheques": "checks", "cosy": "cozy", "grey": "gray",
    "greys": "grays", "jewellery": "jewelry", "kerb": "curb", "mould": "mold", "moulds": "molds",
    "moustache": "mustache", "plough": "plow", "programme": "program", "programmes": "programs",
    "programmed": "programed", "pyjamas": "pajamas", "sceptic": "skeptic", "sceptical": "skeptical",
    "scepticism": "skepticism", "storey": "story", "storeys": "stories", "tyre": "tire", "tyres": "tires",
    "yoghurt": "yogurt", "draught": "draft", "draughts": "drafts", "enquiry": "inquiry",
    "enquiries": "inquiries", "enquire": "inquire", "enquires": "inquires", "enquired": "inquired",
    "judgement": "judgment", "judgements": "judgments", "acknowledgement": "acknowledgment",
    "acknowledgements": "acknowledgments", "fulfil": "fulfill", "fulfils": "fulfills",
    "fulfilment": "fulfillment", "enrol": "enroll", "enrols": "enrolls", "enrolment": "enrollment",
    "enrolments": "enrollments", "instalment": "installment", "instalments": "installments",
    "skilful": "skillful", "wilful": "willful", "distil": "distill", "instil": "instill",
    "learnt": "learned", "spelt": "spelled", "burnt": "burned", "dreamt": "dreamed", "leapt": "leaped",
    "spilt": "spilled", "towards": "toward", "afterwards": "afterward", "backwards": "backward",
    "upwards": "upward", "downwards": "downward", "focussed": "focused", "focussing": "focusing",
    "practise": "practice", "practised": "practiced", "practising": "practicing", "practises": "practices",
    "licence": "license", "licences": "licenses", "defence": "defense", "defences": "defenses",
    "offence": "offense", "offences": "offenses", "pretence": "pretense", "paediatric": "pediatric",
    "encyclopaedia": "encyclopedia", "oestrogen": "estrogen", "orthopaedic": "orthopedic",
    "haemorrhage": "hemorrhage", "leukaemia": "leukemia", "foetus": "fetus", "oesophagus": "esophagus",
    "manoeuvre": "maneuver", "manoeuvres": "maneuvers", "gaol": "jail", "mum": "mom", "maths": "math",
    "gotten": "got", "artefact": "artifact", "artefacts": "artifacts", "axe": "ax", "doughnut": "donut",
    "behove": "behoove", "speciality": "specialty", "specialities": "specialties", "per cent": "percent",
    "on-line": "online", "web site": "website",
    "web sites": "websites", "cancelation": "cancellation",
    # locale vocabulary
    "holiday": "vacation", "holidays": "vacations", "mobile phone": "cell phone",
    "mobile phones": "cell phones", "postcode": "zip code", "postcodes": "zip codes",
    "post code": "zip code", "autumn": "fall", "lorry": "truck", "lorries": "trucks", "nappy": "diaper",
    "nappies": "diapers", "such as": "like", "at the weekend": "on the weekend", "in future": "in the future",
    "postal address": "mailing address", "postal addresses": "mailing addresses", "charitable": "nonprofit",
    "shop": "store", "shops": "stores", "expiry": "expiration", "delivery": "shipping",
    "recycle bin": "trash",
    "straight away": "right away", "work out": "figure out", "worked out": "figured out",
    "by post": "by mail", "fao": "attn", "friend list": "friends list", "friend lists": "friends lists",
    "home town": "hometown", "live-stream": "livestream", "live stream": "livestream",
    "log in to": "log into", "logged in to": "logged into", "logging in to": "logging into",
    "sign in to": "sign into", "signed in to": "signed into",
    # Latin abbreviations and their plain-English equivalents
    "e.g.": "like", "e.g": "like", "for example": "like", "i.e.": "that is", "i.e": "that is",
}  # fmt: skip

# Numbers written out or as digits ("5 pillars" / "five pillars"): a house-style choice.
_NUMBER_WORDS: Final = {
    w: str(i)
    for i, w in enumerate(
        _words(
            "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
            "fifteen sixteen seventeen eighteen nineteen twenty"
        )
    )
} | {"thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80",
     "ninety": "90", "hundred": "100"}  # fmt: skip

# -our / -or: a closed family of Latin-derived stems. A blind rule would merge "four"/"for", "tour"/"tor",
# French "retours"/"retors".
_OUR_STEMS: Final = _words(
    "arbo ardo armo behavio cando clamo colo demeano endeavo favo fervo flavo glamo harbo hono humo "
    "labo neighbo odo parlo ranco rigo rumo savio savo splendo succo tumo valo vapo vigo clango "
    "enamo misbehavio discolo dishono disfavo"
)
_OUR_SUFFIXES: Final = (
    "",
    *_words("s ed ing able ably ite ites ful fully less al ally er ers ist ists hood ism y ly ize ise"),
)
# -re / -er: closed family too (French "votre"/"voter", "notre"/"noter", "contre"/"conter" must stay apart).
_RE_STEMS: Final = _words(
    "cent theat met kilomet centimet millimet lit millilit fib calib somb meag spect lust sab "
    "och scept mit nit goit reconnoit sepulch tit"
)
_RE_SUFFIXES: Final = (("re", "er"), ("res", "ers"), ("red", "ered"), ("ring", "ering"))
# Doubled -l- before a suffix (travelled / traveled): the usual verbs, en-US keeps one l.
_L_STEMS: Final = _words(
    "cancel label model travel signal total level channel fuel dial counsel marshal pedal jewel tunnel "
    "funnel rival equal quarrel shovel snorkel libel enamel panel initial pencil barrel bevel duel "
    "gravel grovel kennel marvel medal revel spiral swivel towel yodel refuel remodel relabel "
    "unravel ravel cudgel dishevel tassel"
)
_L_SUFFIXES: Final = ("ed", "ing", "er", "ers", "or", "ors", "ist", "ists", "ous", "ously")

# Suffix families with structural rules (guarded by a minimum stem length and a few exceptions).
_IZE: Final = lazy(r"^(?P<stem>[a-z]{3,})is(?P<end>e|es|ed|ing|er|ers|ation|ations|ational|able)$")
_IZE_EXCEPTIONS: Final = frozenset({"prise", "prised", "prises", "prising"})  # "prise" != "prize"
_YZE: Final = lazy(r"^(?P<stem>[a-z]{2,}l)ys(?P<end>e|es|ed|ing|er|ers)$")  # analyse, paralyse
_OGUE: Final = lazy(r"^(?P<stem>[a-z]{3,})ogue(?P<end>s|d)?$")  # catalogue, dialogue (not rogue)


def _build_word_map() -> dict[str, str]:
    table = dict(_NUMBER_WORDS)
    for stem in _OUR_STEMS:
        for suffix in _OUR_SUFFIXES:
            table[f"{stem}ur{suffix}"] = f"{stem}r{suffix}"
    for stem in _RE_STEMS:
        for gb, us in _RE_SUFFIXES:
            table[f"{stem}{gb}"] = f"{stem}{us}"
    for stem in _L_STEMS:
        for suffix in _L_SUFFIXES:
            table[f"{stem}l{suffix}"] = f"{stem}{suffix}"
    table.update({k: v for k, v in _WORD_PAIRS.items() if k.isalpha()})
    return table


_WORD_MAP: Final = _build_word_map()
_PHRASES: Final = {k: v for k, v in _WORD_PAIRS.items() if not k.isalpha()}
_PHRASE: Final = lazy(
    r"(?<![\w-])(?:"
    + "|".join(re.escape(p) for p in sorted(_PHRASES, key=len, reverse=True))
    + r")(?![\w-])(?!(?<=\.)\w)",
    re.IGNORECASE,
)
_WORD: Final = lazy(r"[^\W\d_]+")
_WORD_PIECES: Final = lazy(r"([^\W\d_]+)")
_WORD_KEYS: Final = frozenset(_WORD_MAP)
# endings of the suffix families (-ise/-yse/-ogue and their inflections)
_FAMILY_HINT: Final = lazy(r"[iy]s(?:e|es|ed|ing|er|ers|ation|ations|ational|able)\b|ogue[sd]?\b")


@lru_cache(maxsize=65536)
def _spell_word(word: str) -> str:
    """The word's en-US form when it has one, else the word as it was. An initial capital is kept (the
    spelling layer must not do the case layer's work, or editorial_reason would name the wrong category)."""
    lower = word.lower()
    mapped = _WORD_MAP.get(lower, lower)
    if len(mapped) >= 6 and mapped.isascii():
        mapped = _suffix_family(mapped)
    if mapped == lower:
        return word
    return mapped.capitalize() if word[:1].isupper() else mapped


def _suffix_family(word: str) -> str:
    if word not in _IZE_EXCEPTIONS and (m := _IZE.match(word)):
        return f"{m['stem']}iz{m['end']}"
    if m := _YZE.match(word):
        return f"{m['stem']}yz{m['end']}"
    if m := _OGUE.match(word):
        return f"{m['stem']}og{'ed' if m['end'] == 'd' else m['end'] or ''}"
    return word


# "non-public" / "nonpublic", "co-operate" / "cooperate": the hyphen after a prefix is a house style.
_PREFIXES: Final = _words("non co pre re multi cross anti semi sub inter over under post e")
# The hyphen removed is that of r"\b(non|co|...|e)-(?=[^\W\d_])" (a prefix starting a word, a letter after
# the hyphen), written to start with the hyphen, which the regex engine skips to (it tries every position of
# a pattern that starts with \b), and to look behind it for the prefix.
_PREFIX_HYPHEN: Final = lazy(
    "-(?:" + "|".join(rf"(?<=\b{prefix}-)" for prefix in _PREFIXES) + r")(?=[^\W\d_])", re.IGNORECASE
)


def _spelling(text: str) -> str:
    lower = text.lower()
    if any(phrase in lower for phrase in _PHRASES):  # substring scans: far cheaper than the alternation
        text = _PHRASE.sub(lambda m: _PHRASES[m.group().lower()], text)
    if "-" in text:
        text = _PREFIX_HYPHEN.sub("", text)
    # words are looked up one by one only when one of them may have another form (set lookups in C)
    if _WORD_KEYS.isdisjoint(_WORD.findall(lower)) and not _FAMILY_HINT.search(lower):
        return text
    return _spelled_words(text)


def _spelled_words(text: str) -> str:
    """`_WORD.sub(lambda m: _spell_word(m.group()), text)` without a Python call per word: split() with the
    pattern in a group alternates the text between matches (even indexes) and the matches (odd ones)."""
    pieces = _WORD_PIECES.split(text)
    pieces[1::2] = map(_spell_word, pieces[1::2])
    return "".join(pieces)


# --------------------------------------------------------------------------- style

# "ensure [that] we", "the messages [that] you have shared", "believe [that] it provides": "that" is
# optional before a clause subject (a pronoun, a determiner, a generic subject). A demonstrative "that"
# is never followed by a subject pronoun or an article, so only the complementiser goes.
_OPTIONAL_THAT: Final = lazy(
    r"\b(?:that|which|who|whom)\s+(?=(?:i|you|we|they|he|she|it|there|one|people|users|someone|anyone"
    r"|everyone|nobody|a|an|the|this|these|those|our|your|their|its|his|her|my|some|any|each|every|no"
    r"|meta|if|when|where|because|although|unless|once)\b)",
    re.IGNORECASE,
)
# Contractions are a register, not a meaning: "we've" = "we have", "don't" = "do not".
_CONTRACTIONS: Final = {
    "n't": " not", "'ve": " have", "'re": " are", "'ll": " will", "'m": " am", "'d": " would",
}  # fmt: skip
# (Both patterns below start with \b, so the engine tries every position of a line; most lines with an
# apostrophe hold no contraction, and most with "help" or "provide" no optional word: the prefilter's
# literals, "n't" "'ve"... and "help " "provide "..., rule them out first.)
_CONTRACTION: Final = lazy(
    r"\b(can't|won't|shan't|ain't)|(?<=[a-z])(n't|'ve|'re|'ll|'m|'d)\b", re.IGNORECASE, prefilter=True
)
_IRREGULAR: Final = {"can't": "cannot", "won't": "will not", "shan't": "shall not", "ain't": "is not"}
# Restrictive "which" and "that" are the en-GB / en-US habit for the same relative clause.
_WHICH: Final = lazy(
    r"\bwhich\b(?=\s+(?:is|are|was|were|has|have|had|can|may|might|will|would|we|you|they|help|helps|allows?|includes?)\b)",
    re.IGNORECASE,
)
# Optional words in fixed collocations: "all (of) the", "outside (of)", "helps us (to) understand",
# "provide you (with)", "the reason (why)", "(for) as long as".
_OPTIONAL_WORDS: Final = lazy(
    r"\ball of (?=the|these|those|our|your|their|this|its)\b"
    r"|\boutside of\b"
    r"|\b(?<=help |elps |lped )(?:us|you|them|people|others|him|her) to (?=\w)"
    r"|\bprovide (?:you|people|users|them) with\b"
    r"|\breason why\b"
    r"|\bfor (?=as long as\b)",
    re.IGNORECASE,
    prefilter=True,
)
# Causal "as" / "since" opening a sentence ("Since it takes..." / "As it takes..."): the same "because".
_CAUSAL: Final = lazy(
    r"(?:^|(?<=[.!?:;\n]\s)|(?<=[.!?:;]))\s*\b(?:since|as)\s+(?=(?:it|we|you|they|this|these|there|people)\b)",
    re.MULTILINE | re.IGNORECASE,
)


def _style(text: str) -> str:
    lower = text.lower()  # cheap tests first: each rule needs a word most lines do not have
    if "'" in text:
        text = _CONTRACTION.sub(_expand, text)
    if "which" in lower:
        text = _WHICH.sub("that", text)
    if any(word in lower for word in _OPTIONAL_HINTS):
        text = _OPTIONAL_WORDS.sub(_drop_optional, text)
    if "that" in lower or "which" in lower or "who" in lower:
        text = _OPTIONAL_THAT.sub("", text)
    if "since" in lower or "as " in lower:
        text = _CAUSAL.sub(" because ", text)
    return text


_OPTIONAL_HINTS: Final = ("all of", "outside of", "help", "provide", "reason why", "for as long")


def _expand(match: re.Match[str]) -> str:
    if match.group(1):
        return _IRREGULAR[match.group(1).lower().replace("\u2019", "'")]
    return _CONTRACTIONS[match.group(2).lower()]


def _drop_optional(match: re.Match[str]) -> str:
    found = match.group().lower()
    if found.startswith("all of"):
        return "all "
    if found.startswith("outside"):
        return "outside"
    if found.startswith("provide"):
        return found.removesuffix(" with")
    if found.startswith("reason"):
        return "reason"
    if found.startswith("for"):
        return ""
    return found.removesuffix("to ")  # help us to understand -> help us understand


# --------------------------------------------------------------------------- punctuation

# Every punctuation mark (Unicode P*), except a decimal/time/thousands mark between digits and the signs
# whose meaning is not punctuation (% and the section sign). As a regex:
#     (?!(?<=\d)[.,:](?=\d))[^\w\s%§$€£¥+=<>~^°]
# written to start with the character class (the engine skips to its characters), the exception after it.
_PUNCTUATION: Final = lazy(r"[^\w\s%§$€£¥+=<>~^°](?:(?<![.,:])|(?<!\d[.,:])|(?!\d))")
_LINE_MARKER: Final = lazy(r"^\s*(?:#{1,6}\s+|[-*•]\s+|\d{1,3}[.)]\s+)", re.MULTILINE)


def _markers(text: str) -> str:
    """Heading levels and list bullets at the start of a line: the shape of the page, not its words."""
    return _LINE_MARKER.sub("", text)


def _punctuation(text: str) -> str:
    return _PUNCTUATION.sub(" ", text.replace("'", "")).replace("_", " ")


# --------------------------------------------------------------------------- the layers

Layer = tuple[str, Callable[[str], str]]

# In the order they are applied; the name is the category editorial_reason reports.
LAYERS: Final[tuple[Layer, ...]] = (
    ("link target", _link_targets),
    ("footnote marker", _footnotes),
    ("typography", _typography),
    ("date format", _dates),
    ("case", _case),
    ("spelling", _spelling),
    ("style", _style),
    ("heading", _markers),
    ("punctuation", _punctuation),
)


def _key(text: str, layers: Iterable[Layer]) -> str:
    for _name, transform in layers:
        text = transform(text)
    return _spaced(text)


def _spaced(text: str) -> str:
    """`re.sub(r"\\s+", " ", text).strip()`: runs of whitespace made one space, none at the ends.

    Written with str.split, which cuts at the very characters `\\s` matches in a str pattern (both use
    Py_UNICODE_ISSPACE; tests/test_normalise.py checks every code point), at a fraction of the regex's cost:
    every key ends with it."""
    return " ".join(text.split())


def meaning_key(text: str) -> str:
    """A form of `text` equal for any two texts that differ only by locale spelling, date format,
    typography, case, punctuation or footnote markers (see the module docstring). Idempotent.

    Line by line (a line is a block of the canonical text: no rule spans two), each line's key cached: a
    policy's lines recur from version to version and across the hunks, sentences and rules of one change.
    """
    if "\n" not in text:
        return _line_key(text)
    return " ".join(key for key in map(_line_key, text.split("\n")) if key)


@lru_cache(maxsize=16384)
def _line_key(line: str) -> str:
    return _key(line, LAYERS)


def _same_meaning(first: str, second: str) -> bool:
    """`meaning_key(first) == meaning_key(second)`, keying lines only as far as the two keys agree: a
    changed passage mostly differs in its first lines, and the keys of the lines after are never needed
    (nothing else keys a hunk's lines), so they are not computed."""
    if "\n" not in first and "\n" not in second:
        return _line_key(first) == _line_key(second)
    return _joined_equal(_line_keys(first), _line_keys(second))


def _line_keys(text: str) -> Iterator[str]:
    """The keys meaning_key joins (with spaces): those of the lines, empty ones left out."""
    return (key for key in map(_line_key, text.split("\n")) if key)


def _joined_equal(first: Iterator[str], second: Iterator[str]) -> bool:
    """`" ".join(first) == " ".join(second)` for non-empty pieces, read only as far as they agree (pieces
    may cut the two strings at different places: compared character by character, not piece by piece)."""
    left, right = _Joined(first), _Joined(second)
    while True:
        a, b = left.more(), right.more()
        if not a or not b:
            return a == b
        size = min(len(a), len(b))
        if a[:size] != b[:size]:
            return False
        left.rest, right.rest = a[size:], b[size:]


class _Joined:
    """The string `" ".join(pieces)`, read a piece at a time."""

    __slots__ = ("pieces", "rest", "started")

    def __init__(self, pieces: Iterator[str]) -> None:
        self.pieces, self.rest, self.started = pieces, "", False

    def more(self) -> str:
        """What is left unread of the current piece, or the next piece ("" at the end)."""
        if not self.rest:
            piece = next(self.pieces, "")
            if piece:
                self.rest = f" {piece}" if self.started else piece
                self.started = True
        return self.rest


# --------------------------------------------------------------------------- structure

# Annotation numbers that stand in for accordion headings ("1", "2" ... on a line of their own).
_BARE_NUMBER: Final = lazy(r"^\s*\(?\d{1,3}[.)]?\s*$")
_HEADING: Final = lazy(r"^\s*(?:- )?#{1,6}\s")

# Labels of controls and site furniture that pages put among the text: video players, accordions, "learn
# more" links, help-centre and footer link lists. A line made only of such labels says nothing about the
# policy. English and French.
_CHROME_LABELS: Final = frozenset(
    _words(
        """
    play video|pause video|play|pause|mute|unmute|replay|watch video|play audio
    |learn more|see more|read more|show more|show less|see less|view more|view less|expand|collapse
    |expand all|collapse all|close|go back|back to top|return to top|print|print this page
    |printable version|view printable version|download pdf|copy link|menu|skip to main content
    |help center|help centre|facebook help center|instagram help center|privacy center|privacy centre
    |ad choices|adchoices|ranking transparency|en savoir plus|voir plus|afficher plus|afficher moins
    |lire la vidéo|imprimer|fermer|haut de page|retour en haut|pages d'aide|pages d'aide facebook
    |espace confidentialité|voir la version imprimable
    """,
        sep="|",
    )
)
# Marks that no label holds (nor a copyright line, nor a separator), and that the folding below keeps: a line
# holding one is no chrome line, and most lines of prose hold one (a comma).
_NEVER_IN_CHROME: Final = tuple(mark for mark in ",;!?" if not any(mark in label for label in _CHROME_LABELS))
_CHROME_LINE_SEPARATORS: Final = lazy(r"\s*(?:·|\||•|/)\s*")
# The source label of a link card, glued after its title ("How to manage your Feed Facebook Help Center",
# "...on FacebookHow to..."): a label that ends a line or is followed by the next card's capital.
_CARD_SOURCES: Final = (
    "facebook help center|instagram help center|messenger help center|whatsapp help center|help center"
    "|help centre|privacy center|privacy centre|facebook developers|meta for developers|facebook newsroom"
    "|meta newsroom|about meta|centre d'aide|pages d'aide facebook|espace confidentialité"
)
_CARD_LABEL: Final = lazy(
    rf"[ \t]*(?:{_CARD_SOURCES})(?=[A-ZÀ-Ý]|[ \t]*$|[ \t]*[.;:,])",
    re.IGNORECASE | re.MULTILINE,
    prefilter=True,
)
# Update notices: "We updated our Privacy Policy on 16 December 2025. View our previous policy.", "Nous
# avons mis à jour notre politique de confidentialité le 16 décembre 2025. Consulter notre politique
# précédente." Announcing that an edit happened is not an edit (the edit itself is elsewhere in the text).
_UPDATE_NOTICE: Final = lazy(
    r"(?:(?:policy|privacy policy|recent|latest) update:?\s*)?"
    r"(?:we(?:'ve| have)? (?:last )?updated our (?:privacy )?policy(?: on [^.\n]{4,30})?"
    r"|nous avons mis à jour notre politique(?: de confidentialité)?(?: le [^.\n]{4,30})?)\.?"
    r"(?:\s*(?:view|see|read|consult(?:er|ez)?|afficher|voir) (?:our |notre |la |les |the )?"
    r"(?:(?:previous|prior|earlier|old) (?:policy|policies|versions?)"
    r"|(?:politique|version|versions) (?:précédente|antérieure|ancienne)s?"
    r"|(?:ancienne|précédente) politique)\.?)?",
    re.IGNORECASE,
    prefilter=True,
)
_COPYRIGHT: Final = lazy(r"^(?:meta|facebook|instagram)?\s*(?:©|\(c\))\s*(?:\d{4})?\s*(?:meta)?$")


def is_heading_line(line: str) -> bool:
    """A heading ("## ..."), or a bare annotation number standing in for one."""
    return bool(_HEADING.match(line) or _BARE_NUMBER.match(line))


@lru_cache(maxsize=16384)
def is_chrome_line(line: str) -> bool:
    """A line made only of control / furniture labels ("Play Video", "Learn more · Help Center")."""
    if any(char in line for char in _NEVER_IN_CHROME):
        return False  # prose: a mark no label or copyright line holds, which no step below removes
    plain = _LINE_MARKER.sub("", line).strip().strip(".").strip()
    if not plain:
        return False
    folded = _case(_typography(plain)).strip()
    if _COPYRIGHT.match(folded):
        return True
    parts = [p.strip(" .:") for p in _CHROME_LINE_SEPARATORS.split(folded)]
    return any(parts) and all(p in _CHROME_LABELS or _COPYRIGHT.match(p) for p in parts if p)


def _without(text: str, drop: Callable[[str], bool]) -> str:
    return "\n".join(line for line in text.split("\n") if not drop(line))


def _without_labels(text: str) -> str:
    """Without lines of control labels, and without link-card source labels glued to a line."""
    return _without_card_labels(_without(text, is_chrome_line))


def _without_card_labels(text: str) -> str:
    """`_CARD_LABEL.sub("", text)`, line by line. No match spans a line break (labels, spaces and tabs only;
    the lookahead's `$` is a line's end, as the end of a line on its own is), so the result is the same;
    the pattern, which has no literal to skip to and so tries every position, then runs only on the lines
    its prefilter lets through (those holding a label), not on a whole block because one line holds one."""
    if "\n" not in text:
        return _CARD_LABEL.sub("", text)
    lines = text.split("\n")
    for index in _CARD_LABEL.lines_to_try(text):  # the prefilter for every line at once (one fold)
        lines[index] = _CARD_LABEL.sub("", lines[index])
    return "\n".join(lines)


def _without_chrome(text: str) -> str:
    """Without labels (above) and without update notices."""
    return _without_notices(_without_labels(text))


def _without_notices(text: str) -> str:
    return _UPDATE_NOTICE.sub(" ", text)


@lru_cache(maxsize=8192)  # pure: a change's passages are judged again by each format and page that shows it
def editorial_reason(before: str, after: str) -> str | None:
    """None when `before` -> `after` changes meaning; else the category of the meaning-preserving edit.

    Categories, from `meaning_key`'s layers: "typography", "footnote marker", "date format", "case",
    "spelling", "style", "punctuation" (the layers that the equality needs, joined by ", " when several
    are); and from the structural rules for blocks of lines: "link label" (only control labels or
    link-card source labels differ), "page chrome" (also update notices: "We updated our Privacy Policy on
    ..."), "heading" (only headings or annotation numbers differ), "heading, page chrome" (both).
    """
    if before == after:
        return "typography"
    if _same_meaning(before, after):
        return _layers_needed(before, after)
    if not (_has_furniture(before) or _has_furniture(after)):
        return None  # no heading, label or notice that a structural rule could set aside
    # Each rule below compares the keys of the two sides with something set aside; when a rule set nothing
    # aside, its keys are those of the comparison before it, already found different: not computed again.
    labels = (_without_labels(before), _without_labels(after))
    if _one_meaning_once_aside(labels, (before, after)):
        return "link label"
    chrome = (_without_notices(labels[0]), _without_notices(labels[1]))  # _without_chrome of each side
    if _one_meaning_once_aside(chrome, labels):
        return "page chrome"
    if not _headings_nested(before, after):
        return None  # a heading renamed ("Legitimate interests" -> "Consent") is a change of wording
    no_headings = (_without(before, is_heading_line), _without(after, is_heading_line))
    if _same_meaning(*no_headings):
        return "heading"
    bare = (_without_chrome(no_headings[0]), _without_chrome(no_headings[1]))
    if _one_meaning_once_aside(bare, no_headings):
        return "heading, page chrome"
    return None


def _one_meaning_once_aside(pair: tuple[str, str], unequal: tuple[str, str]) -> bool:
    """Do the two texts of `pair` have one meaning key, given that those of `unequal` (what they were before
    something was set aside) differ?"""
    return pair != unequal and _same_meaning(*pair)


def _has_furniture(text: str) -> bool:
    """Anything the structural rules could set aside: a heading or annotation number, a label line, a
    link-card label, an update notice."""
    return (
        any(is_heading_line(line) or is_chrome_line(line) for line in text.split("\n"))
        or _CARD_LABEL.search(text) is not None
        or _UPDATE_NOTICE.search(text) is not None
    )


def _headings_nested(before: str, after: str) -> bool:
    """Headings only appeared, vanished or became annotation numbers: the headings of one side are all
    among those of the other."""
    old, new = _heading_keys(before), _heading_keys(after)
    return old <= new or new <= old


def _heading_keys(text: str) -> set[str]:
    return {
        meaning_key(line)
        for line in text.split("\n")
        if _HEADING.match(line) and not _BARE_NUMBER.match(line)
    }


def _layers_needed(before: str, after: str) -> str:
    """The layers without which the two keys would differ (the first equalising layer if none alone is).

    Worked out line by line when both sides have the same lines (the usual case: a category costs the
    differing lines, not the whole block), else on the whole block."""
    old, new = before.split("\n"), after.split("\n")
    pairs = [(a, b) for a, b in zip(old, new, strict=True) if a != b] if len(old) == len(new) else []
    if not pairs:
        pairs = [(before, after)]
    found: set[str] = set()
    for a, b in pairs:
        found.update(_line_layers(a, b).split(", "))
    return ", ".join(name for name, _ in LAYERS if name in found)


@lru_cache(maxsize=4096)
def _line_layers(before: str, after: str) -> str:
    old, new = _Leaving(before), _Leaving(after)
    # A layer whose input is one text on both sides is never needed: leaving it out gives both sides one key
    # (and once the layer that makes the difference has run, every later layer has such an input).
    needed = [
        name
        for i, (name, _) in enumerate(LAYERS)
        if old.states[i] != new.states[i] and old.key_without(i) != new.key_without(i)
    ]
    if needed:
        return ", ".join(needed)
    for i in range(1, len(LAYERS) + 1):
        if old.key_after(i) == new.key_after(i):
            return LAYERS[i - 1][0]
    return LAYERS[-1][0]  # pragma: no cover - the full key was equal


class _Leaving:
    """The keys of one text with one layer left out, each the same as _key(text, LAYERS without it), at a
    fraction of the cost: the text after the first i layers is computed once for every i, and leaving out
    a layer that changed nothing at its turn gives the full key (most layers change nothing on a line)."""

    def __init__(self, text: str) -> None:
        self.states = [text]  # states[i]: the text after the first i layers
        for _name, transform in LAYERS:
            self.states.append(transform(self.states[-1]))

    def key_after(self, count: int) -> str:
        """_key(text, LAYERS[:count])."""
        return _spaced(self.states[count])

    def key_without(self, index: int) -> str:
        """_key(text, LAYERS without LAYERS[index])."""
        if self.states[index + 1] == self.states[index]:
            return self.key_after(len(LAYERS))
        return _key(self.states[index], LAYERS[index + 1 :])

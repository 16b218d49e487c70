"""The meaning-preserving normaliser: which edits are editorial (and why), and which change meaning.

Table-driven: each row's id says what it proves. Positive rows (an editorial category expected) come with
negative rows that look alike but change meaning (None expected): a rule that equalised too much would
hide a real wording change, which is as bad as a false alert. The last tests run the normaliser on real
corpus pairs (locale drift, heading re-rendering) and on real edits that must stay meaningful.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support.corpus import CORPUS_DIRS, corpus_markdown, corpus_versions, render_page
from watchdog import normalise
from watchdog.diff import diff_texts, split_sentences
from watchdog.extract import extract
from watchdog.normalise import LAYERS, Layer, editorial_reason, is_chrome_line, meaning_key

EDITORIAL = [
    # spelling: word pairs, both directions
    ("licence-license", "a licence to use it", "a license to use it", "spelling"),
    ("license-licence-reverse-direction", "a license to use it", "a licence to use it", "spelling"),
    ("programme-program", "our privacy programmes", "our privacy programs", "spelling"),
    ("whilst-while", "whilst you use it", "while you use it", "spelling"),
    ("judgement", "in our judgement", "in our judgment", "spelling"),
    ("enquiry", "an enquiry from a regulator", "an inquiry from a regulator", "spelling"),
    ("e-mail", "we send you an e-mail", "we send you an email", "spelling"),
    ("per-cent", "ten per cent of them", "ten percent of them", "spelling"),
    ("capitalised-pair", "Whilst you use it", "While you use it", "spelling"),
    # suffix families
    ("ise-ize", "to organise your trip", "to organize your trip", "spelling"),
    ("isation-ization", "your organisation", "your organization", "spelling"),
    ("ised-ized", "personalised ads", "personalized ads", "spelling"),
    ("ising-izing", "recognising faces", "recognizing faces", "spelling"),
    ("yse-yze", "we analyse it", "we analyze it", "spelling"),
    ("our-or", "the colour of the button", "the color of the button", "spelling"),
    ("our-or-derived", "your favourite behavioural signals", "your favorite behavioral signals", "spelling"),
    ("our-or-neighbourhood", "in your neighbourhood", "in your neighborhood", "spelling"),
    ("re-er", "our data centres", "our data centers", "spelling"),
    ("re-er-centred", "people-centred design", "people-centered design", "spelling"),
    ("ogue-og", "a catalogue of products", "a catalog of products", "spelling"),
    ("ogue-og-dialogue", "an open dialogue", "an open dialog", "spelling"),
    ("ence-ense", "in our defence", "in our defense", "spelling"),
    ("doubled-l", "cancelled or travelled", "canceled or traveled", "spelling"),
    ("doubled-l-modelling", "modelling and labelling", "modeling and labeling", "spelling"),
    ("our-and-ise-combined", "colourise", "colorize", "spelling"),
    # locale vocabulary and numbers
    ("holiday-vacation", "plan your next holiday", "plan your next vacation", "spelling"),
    ("such-as-like", "content such as images", "content like images", "spelling"),
    ("number-word-digit", "we have five values", "we have 5 values", "spelling"),
    # style
    ("optional-that", "ensure that we are using it", "ensure we are using it", "style"),
    ("optional-that-relative", "the messages that you have shared", "the messages you have shared", "style"),
    ("causal-as-since", "Since it takes data, we use it.", "As it takes data, we use it.", "style"),
    # dates
    ("date-gb-us", "on 16 December 2025", "on December 16, 2025", "date format"),
    ("date-numeric-day-first", "on 16 December 2025", "on 16/12/2025", "date format"),
    ("date-numeric-month-first", "on 16 December 2025", "on 12/16/2025", "date format"),
    ("date-iso", "on 16 December 2025", "on 2025-12-16", "date format"),
    ("date-french", "16 December 2025", "16 décembre 2025", "date format"),
    ("date-french-abbreviated", "1 January 2026", "1er janv. 2026", "date format"),
    ("date-ordinal", "December 16th, 2025", "16th of December 2025", "date format"),
    ("date-abbreviated", "Dec. 16, 2025", "December 16, 2025", "date format"),
    ("date-no-year", "on 16 December", "on December 16", "date format"),
    ("date-weekday", "Tuesday, December 16, 2025", "Tuesday 16 December 2025", "date format"),
    ("date-label-line", "Effective January 5, 2026", "January 5, 2026", "date format"),
    ("date-label-french", "Mise à jour : 16 décembre 2025", "Updated on Dec 16, 2025", "date format"),
    # typography, case, punctuation, footnotes
    ("curly-quotes", "Meta\u2019s \u201cAI\u201d", "Meta's \"AI\"", "typography"),
    ("guillemets", "« l\u2019IA chez Meta »", '"l\'IA chez Meta"', "typography"),
    ("french-spacing", "Pourquoi\u202f? Parce que\u00a0: voilà", "Pourquoi? Parce que: voilà", "typography"),
    ("dashes", "opt-out \u2013 any time", "opt-out - any time", "typography"),
    ("ligature-oe", "le c\u0153ur", "le coeur", "typography"),
    ("case", "Cookies Policy", "Cookies policy", "case"),
    ("case-internet", "from the internet", "from the Internet", "case"),
    ("accentless-capital", "Etats-Unis", "États-Unis", "case"),
    ("full-stop-on-list-item", "- Hashtags you use", "- Hashtags you use.", "punctuation"),
    ("oxford-comma", "services, and opportunities", "services and opportunities", "punctuation"),
    ("apostrophe-placement", "our or other's interests", "our or others' interests", "punctuation"),
    ("footnote-bracket", "Metadata[7] about content", "Metadata about content", "footnote marker"),
    ("footnote-superscript", "Metadata\u00b9 about content", "Metadata about content", "footnote marker"),
    ("footnote-dagger", "your data\u2020 and", "your data and", "footnote marker"),
    # structure
    ("heading-to-number", "## What Products does this policy cover?", "1", "heading"),
    ("heading-dropped", "## Take control\n", "", "heading"),
    ("heading-block-appears", "", "## One\n\n## Two\n\n### Three", "heading"),
    ("link-label-play-video", "\nPlay Video\n", "", "link label"),
    ("link-label-help-center", "Facebook Help Center", "", "link label"),
    ("footer-link-list", "Help Center", "Help Center · Ranking Transparency", "link label"),
    ("heading-level", "### How we process your information", "## How we process your information", "heading"),
    ("mixed-heading-and-chrome", "## Partner\nLearn more", "3", "heading, page chrome"),
    ("link-card-source-labels", "Manage your Feed Facebook Help CenterHow to add Instagram Help Center",
     "Manage your FeedHow to add", "link label"),
    ("link-target-residue", "Withdraw consent](https://a.example/p?s=7)", "Withdraw consent", "link target"),
    ("update-notice", "We updated our Privacy Policy on December 16, 2025. View our previous policy.\nText.",
     "Text.", "page chrome"),
    ("update-notice-french", "Nous avons mis à jour notre politique de confidentialité le 16 décembre 2025. "
     "Consulter notre politique précédente.", "", "page chrome"),
    ("prefix-hyphen", "non-public information", "nonpublic information", "spelling"),
    ("contraction", "we've used it", "we have used it", "style"),
    ("all-of-the", "all of the Meta Products", "all the Meta Products", "style"),
]  # fmt: skip

MEANINGFUL = [
    ("plural", "a license to use it", "licenses to use it"),
    ("modal", "we may share it", "we will share it"),
    ("negation", "we share it", "we do not share it"),
    ("date-changed", "on 16 December 2025", "on 17 December 2025"),
    ("date-changed-format-too", "16 December 2025", "December 17, 2025"),
    ("date-year-changed", "16/12/2025", "16/12/2026"),
    ("effective-date-changed", "Effective January 5, 2026", "Effective May 13, 2026"),
    ("ambiguous-numeric-dates-swapped", "05/06/2025", "06/05/2025"),
    ("ambiguous-numeric-vs-worded", "05/06/2025", "5 June 2025"),
    ("number-changed", "we keep it for 5 years", "we keep it for 7 years"),
    ("number-word-changed", "five values", "six values"),
    ("four-is-not-for", "for people", "four people"),
    ("french-votre-voter", "votre compte", "voter compte"),
    ("french-notre-noter", "notre politique", "noter politique"),
    ("rogue-is-no-ogue-word", "a rogue app", "a rog app"),
    ("prise-is-not-prize", "to prise it open", "to prize it open"),
    ("percent-sign-matters", "5% of users", "5 of users"),
    ("decimal-matters", "1.5 million", "15 million"),
    ("legal-basis-swap", "we rely on consent", "we rely on legitimate interests"),
    ("ai-added", "to improve our products", "to improve our products and AI at Meta"),
    ("public-removed", "public posts and comments", "posts and comments"),
    ("heading-with-new-prose", "## Partner", "## Partner\n\nWe share your data with partners."),
    ("heading-renamed", "## Legitimate interests", "## Consent"),
    ("list-item-is-not-chrome", "- Posts", "- Posts\n- Interactions with AI"),
    ("product-list-gains-meta-ai", "- Facebook\n- Instagram", "- Facebook\n- Instagram\n- Meta AI"),
    ("learn-more-sentence-is-prose", "Learn more about how we use AI.", "Learn more about how we train AI."),
    ("help-center-inside-a-sentence", "Visit the Help Center to object.", "Visit the Help Center."),
    (
        "update-notice-with-real-news",
        "We updated our Privacy Policy on 16 June 2025. We now train AI on posts.",
        "We updated our Privacy Policy on 16 June 2025.",
    ),
    ("that-demonstrative-kept", "we use that data", "we use data"),
]

IDS_E = [row[0] for row in EDITORIAL]
IDS_M = [row[0] for row in MEANINGFUL]


@pytest.mark.parametrize(("before", "after", "reason"), [r[1:] for r in EDITORIAL], ids=IDS_E)
def test_editorial_edits_are_recognised(before: str, after: str, reason: str) -> None:
    assert editorial_reason(before, after) == reason
    assert editorial_reason(after, before) == reason, "both directions"


@pytest.mark.parametrize(("before", "after"), [r[1:] for r in MEANINGFUL], ids=IDS_M)
def test_meaningful_edits_are_not_editorial(before: str, after: str) -> None:
    assert editorial_reason(before, after) is None
    assert editorial_reason(after, before) is None
    assert meaning_key(before) != meaning_key(after)


TEXT_LEVEL = [
    r for r in EDITORIAL if r[3] not in {"heading", "link label", "page chrome", "heading, page chrome"}
]


@pytest.mark.parametrize(("before", "after"), [r[1:3] for r in TEXT_LEVEL], ids=[r[0] for r in TEXT_LEVEL])
def test_text_level_rows_have_equal_meaning_keys(before: str, after: str) -> None:
    assert meaning_key(before) == meaning_key(after)


def test_identical_text_is_editorial_typography() -> None:
    assert editorial_reason("same", "same") == "typography"


@pytest.mark.parametrize(
    ("line", "chrome"),
    [
        ("Play Video", True),
        ("- Learn more", True),
        ("Meta © 2026", True),
        ("Privacy Center · Help Center · Ranking Transparency", True),
        ("En savoir plus", True),
        ("Learn more about how we use AI.", False),
        ("- Meta AI", False),
        ("", False),
    ],
)
def test_chrome_lines(line: str, chrome: bool) -> None:
    assert is_chrome_line(line) is chrome


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_meaning_key_is_idempotent_and_total(text: str) -> None:
    key = meaning_key(text)
    assert meaning_key(key) == key


def layers_by_definition(before: str, after: str) -> str:
    """The category of a one-line edit whose meaning keys are equal, read off its definition: the layers
    without which the two keys differ, else the first layer whose prefix of the layers equalises them."""

    def key(text: str, layers: list[Layer]) -> str:
        for _name, transform in layers:
            text = transform(text)
        return re.sub(r"\s+", " ", text).strip()

    needed = [
        name
        for name, _ in LAYERS
        if key(before, [x for x in LAYERS if x[0] != name]) != key(after, [x for x in LAYERS if x[0] != name])
    ]
    if needed:
        return ", ".join(needed)
    return next(
        LAYERS[i - 1][0]
        for i in range(1, len(LAYERS) + 1)
        if key(before, [*LAYERS[:i]]) == key(after, [*LAYERS[:i]])
    )


EDITS = st.sampled_from(
    [
        ("organise", "organize"),
        ("We've", "we have"),
        ("1 January 2025", "January 1, 2025"),
        (",", ""),
        ("\u201cAI\u201d", '"AI"'),
        ("Meta", "META"),
        ("[1]", ""),
        ("licence", "license"),
        ("-", "\u2013"),
        ("help us to", "help us"),
        ("# ", ""),
        ("co-operate", "cooperate"),
        (" ", "  "),
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["we", "use", "your", "data", "AI", "on", "5", "."]), EDITS), max_size=8
    )
)
def test_the_category_of_an_editorial_line_edit_is_its_definition(
    words: list[tuple[str, tuple[str, str]]],
) -> None:
    """The category is worked out from each layer's intermediate texts (computed once per line): the same
    as leaving each layer out in turn and keying both sides from scratch."""
    before = " ".join(f"{word} {edit[0]}" for word, edit in words)
    after = " ".join(f"{word} {edit[1]}" for word, edit in words)
    if before == after or "\n" in before or meaning_key(before) != meaning_key(after):
        return
    assert editorial_reason(before, after) == layers_by_definition(before, after)


# --------------------------------------------------------------------------- rewritten for speed
#
# Steps rewritten for speed (issue 14) are held to the straightforward form they replace.


def test_spaced_is_the_whitespace_regex_on_every_code_point() -> None:
    """str.split() cuts at exactly the characters `\\s` matches (every code point), so " ".join(text.split())
    is `re.sub(r"\\s+", " ", text).strip()`."""
    space = re.compile(r"\s")
    every = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
    assert [c for c in every if c.isspace()] == [c for c in every if space.fullmatch(c)]
    spaces = "".join(c for c in every if c.isspace())
    text = f"{spaces}a{spaces}b c\u00a0\u2028d{spaces}"
    assert normalise._spaced(text) == re.sub(r"\s+", " ", text).strip() == "a b c d"


SPACES = "ab .\t\n\r\x0b\x0c\x1c\x85\xa0\u2028\u3000\u200b"  # some \\s, some not (\u200b)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list(SPACES)), max_size=40))
def test_spaced_matches_its_definition(text: str) -> None:
    assert normalise._spaced(text) == re.sub(r"\s+", " ", text).strip()


CARD_PIECES = st.sampled_from(
    [
        "Facebook Help Center", "help centre", "HELP CENTER", "Privacy Center", "privacy centre",
        "Meta for Developers", "About Meta", "centre d'aide", "Espace confidentialité",
        "Pages d'aide Facebook", "Instagram Help Center", "Meta Newsroom", "help cen", "How", "how",
        "Élan", "the", "data", "x", " ", "  ", "\t", "\n", "\n\n", ".", ";", ":", ",", "!",
        "- ", "# ", "\u017f", "\u0131", "K", "\u212a",
    ]
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(CARD_PIECES, max_size=14))
def test_card_labels_removed_line_by_line_as_in_the_whole_text(pieces: list[str]) -> None:
    """Link-card source labels are removed line by line (only lines that hold one are scanned): the same
    text as the pattern applied to the whole block."""
    text = "".join(pieces)
    assert normalise._without_card_labels(text) == normalise._CARD_LABEL.compiled.sub("", text)


def test_card_labels_removed_line_by_line_in_real_corpus_texts() -> None:
    for relative in (f"{GENAI}/2025-12-28.md", f"{POLICY}/2025-05-28.md"):
        text = corpus_text(relative)
        assert normalise._without_card_labels(text) == normalise._CARD_LABEL.compiled.sub("", text)


def test_meaning_key_is_its_layers_then_whitespace_on_real_lines() -> None:
    """meaning_key of each line of two real policies: its layers applied in turn, then whitespace runs made
    one space (the definition, with the regex)."""
    for relative in (f"{GENAI}/2025-12-28.md", f"{POLICY}/2025-05-28.md"):
        for line in set(corpus_text(relative).split("\n")):
            expected = line
            for _name, transform in LAYERS:
                expected = transform(expected)
            assert meaning_key(line) == re.sub(r"\s+", " ", expected).strip()


# The forms the normaliser's regexes had before they were rewritten to start with the character every match
# starts with (the engine skips to it; a pattern starting with \b or a lookbehind is tried at every position).
FOOTNOTE_DEFINITION = r"(?<=[\w.,;:)\"'\u2019\u201d])\[\d{1,3}\]|(?<=\w)[*\u2020\u2021]+(?=[\s.,;:)]|$)"
PUNCTUATION_DEFINITION = r"(?!(?<=\d)[.,:](?=\d))[^\w\s%§$€£¥+=<>~^°]"
PREFIX_HYPHEN_DEFINITION = r"\b(non|co|pre|re|multi|cross|anti|semi|sub|inter|over|under|post|e)-(?=[^\W\d_])"
REGEX_PIECES = st.sampled_from(
    [
        "[", "]", "1", "12", "123", "1234", "*", "**", "\u2020", "\u2021", "a", "x", "É", "_", " ", "\t",
        "\n", ".", ",", ";", ":", ")", '"', "'", "\u2019", "\u201d", "(", "%", "§", "$", "°", "-", "--",
        "non", "Co", "PRE", "re", "multi", "cross", "anti", "semi", "sub", "inter", "over", "under", "post",
        "e", "\u017f", "\u0131", "\u212a", "\u00b9", "\u2070",
    ]
)  # fmt: skip


@settings(max_examples=1000, deadline=None)
@given(st.lists(REGEX_PIECES, max_size=12))
def test_rewritten_regexes_match_their_definitions(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert normalise._FOOTNOTE.sub("", text) == re.sub(FOOTNOTE_DEFINITION, "", text)
    assert normalise._PUNCTUATION.sub(" ", text) == re.sub(PUNCTUATION_DEFINITION, " ", text)
    assert normalise._PREFIX_HYPHEN.sub("", text) == re.sub(
        PREFIX_HYPHEN_DEFINITION, r"\1", text, flags=re.IGNORECASE
    )


TYPO_TABLE = str.maketrans(normalise._TYPO_MAP)


def test_typography_table_applied_by_regex_is_str_translate_on_every_code_point() -> None:
    every = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)
    assert normalise._translated(every) == every.translate(TYPO_TABLE)
    for ascii_text in ("plain words", "a & b", "tab\there", "`quoted`", ""):
        assert normalise._translated(ascii_text) == ascii_text.translate(TYPO_TABLE)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from([*normalise._TYPO_MAP, "a", " ", "é", "\u00e9", "x"]), max_size=20))
def test_typography_table_applied_by_regex_is_str_translate(text: str) -> None:
    assert normalise._translated(text) == text.translate(TYPO_TABLE)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(["colour", "Organise", "five", "one", "the", " ", "-", "1", "_", "é", "ĳ"])))
def test_words_spelled_through_split_as_through_sub(pieces: list[str]) -> None:
    text = "".join(pieces)
    expected = normalise._WORD.compiled.sub(lambda m: normalise._spell_word(m.group()), text)
    assert normalise._spelled_words(text) == expected


MEANING_PIECES = st.sampled_from(
    ["we", "use", "data", "AI", "organise", "organize", " ", "  ", "\n", "\n\n", ".", ",", "- ", "# ", "«"]
)


@settings(max_examples=1000, deadline=None)
@given(st.lists(MEANING_PIECES, max_size=10), st.lists(MEANING_PIECES, max_size=10))
def test_same_meaning_reads_keys_only_as_far_as_needed_and_agrees_with_them(
    first: list[str], second: list[str]
) -> None:
    """Keys compared line by line, stopping at the first difference: equal exactly when the whole keys are,
    however the lines cut them ("we use" on one line, "we" and "use" on two)."""
    a, b = "".join(first), "".join(second)
    assert normalise._same_meaning(a, b) == (meaning_key(a) == meaning_key(b))
    assert normalise._same_meaning(a, a.replace(" ", "\n"))  # the same words on lines of their own


def test_joined_equal_is_the_joined_strings_equal() -> None:
    cases = [(["a b"], ["a", "b"]), (["ab"], ["a", "b"]), ([], []), ([], ["a"]), (["a", "bc"], ["a b", "c"])]
    for first, second in cases:
        expected = " ".join(first) == " ".join(second)
        assert normalise._joined_equal(iter(first), iter(second)) == expected, (first, second)


def chrome_by_definition(line: str) -> bool:
    """is_chrome_line without its early exit for lines holding a comma, a semicolon, "!" or "?"."""
    plain = normalise._LINE_MARKER.sub("", line).strip().strip(".").strip()
    if not plain:
        return False
    folded = normalise._case(normalise._typography(plain)).strip()
    if normalise._COPYRIGHT.match(folded):
        return True
    parts = [p.strip(" .:") for p in normalise._CHROME_LINE_SEPARATORS.split(folded)]
    labels, copyright_line = normalise._CHROME_LABELS, normalise._COPYRIGHT
    return any(parts) and all(p in labels or copyright_line.match(p) for p in parts if p)


CHROME_PIECES = st.sampled_from(
    [
        "Play Video", "Learn more", "Help Center", "© 2025 Meta", "(c)", "Meta", "·", " | ", "•", "/", ",",
        ";", "!", "?", " ", "\u00a0", "\u202f", ".", ":", "- ", "# ", "1. ", "en savoir plus", "«", "»",
        '"', "x",
    ]
)  # fmt: skip


@settings(max_examples=1000, deadline=None)
@given(st.lists(CHROME_PIECES, max_size=8))
def test_chrome_lines_exit_early_on_prose_marks_as_their_definition_says(pieces: list[str]) -> None:
    line = "".join(pieces)
    assert is_chrome_line(line) == chrome_by_definition(line)


# Made by the code before the speed-ups (main 8a51295): every distinct line of the corpus fixtures (5,358
# lines of 12 documents, 2.3 MB), each with its meaning key, whether it is page chrome, and the keys of its
# sentences (as classify keys them), hashed. Any drift of the normaliser's output changes the digest.
GOLDEN = Path(__file__).parent / "fixtures" / "normalise-golden.json"


def corpus_line_digest() -> dict[str, object]:
    documents = sorted({str(p.parent.relative_to(d)) for d in CORPUS_DIRS for p in d.glob("*/*/*.md.gz")})
    lines = sorted(
        {line for doc in documents for v in corpus_versions(doc) for line in corpus_markdown(v).split("\n")}
    )
    digest = hashlib.sha256()
    for line in lines:
        sentences = [meaning_key(line[a:b]) for a, b in split_sentences(line)]
        digest.update(f"{line}\0{meaning_key(line)}\0{is_chrome_line(line)}\0{sentences}\n".encode())
    return {"documents": len(documents), "lines": len(lines), "sha256": digest.hexdigest()}


def test_meaning_keys_of_every_corpus_line_are_those_of_the_code_before_the_speed_ups() -> None:
    assert corpus_line_digest() == json.loads(GOLDEN.read_text("utf-8"))


# --------------------------------------------------------------------------- real corpus edits


def corpus_text(relative: str) -> str:
    body = render_page(corpus_markdown(relative), seed=7)
    return extract(body, content_type="text/html", url="https://www.facebook.com/", select=("#root",)).text


GENAI = "milestones/meta-genai-privacy-center-en-us"
POLICY = "milestones/meta-privacy-policy-en-eu"


def reasons(before: str, after: str) -> list[str | None]:
    return [editorial_reason(h.before, h.after) for h in diff_texts(before, after).hunks]


def test_real_locale_drift_is_editorial_in_every_hunk() -> None:
    """en-US -> en-GB copy of the generative-AI page (SOURCES.md: locale drift, not a policy change):
    "like" -> "such as", "organize" -> "organise", "vacation" -> "holiday", Oxford commas, "5" -> "five"."""
    found = reasons(corpus_text(f"{GENAI}/2025-10-03.md"), corpus_text(f"{GENAI}/2025-12-28.md"))
    assert found and None not in found
    assert any("spelling" in r for r in found if r)


def test_real_change_mixed_with_locale_drift_keeps_its_meaningful_hunks() -> None:
    """Back to en-US *and* new wording about training data: the new wording must stay meaningful."""
    before, after = corpus_text(f"{GENAI}/2025-12-28.md"), corpus_text(f"{GENAI}/2026-07-11.md")
    hunks = diff_texts(before, after).hunks
    meaningful = [h for h in hunks if editorial_reason(h.before, h.after) is None]
    assert any("Information that is available on the internet" in h.after for h in meaningful)
    assert len(meaningful) < len(hunks), "the spelling-only hunks are recognised"


def test_real_heading_rendering_variant_is_editorial() -> None:
    """Accordion headings replaced by annotation numbers, every paragraph identical (SOURCES.md: NOISE)."""
    found = reasons(corpus_text(f"{POLICY}/2024-05-21.md"), corpus_text(f"{POLICY}/2024-06-18T0030Z.md"))
    assert found and set(found) == {"heading"}


def test_real_ai_at_meta_change_is_meaningful() -> None:
    """May 2025: the legitimate-interest rows for AI at Meta appear."""
    found = reasons(corpus_text(f"{POLICY}/2025-04-23.md"), corpus_text(f"{POLICY}/2025-05-28.md"))
    assert None in found

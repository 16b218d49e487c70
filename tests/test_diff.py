"""Stage diff: sentence splitting, exact hunks of small texts, determinism, the size cap, real versions."""

from __future__ import annotations

import random
import re
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_classify import canonical_markdown, corpus_text

from support.corpus import CORPUS_DIRS, corpus_markdown, corpus_versions
from watchdog.diff import diff_texts, split_sentences
from watchdog.models import Hunk, Segment, TextDiff

EN_APRIL = "series/facebook-privacy-policy-en/2025-04-23T12-31-08Z"
EN_MAY = "series/facebook-privacy-policy-en/2025-05-28T00-30-56Z"


def sentences(text: str) -> list[str]:
    return [text[start:end] for start, end in split_sentences(text)]


# --------------------------------------------------------------------------- sentences

SENTENCE_CASES = [
    pytest.param(
        "We use data, e.g. posts, i.e. yours. Next one.",
        ["We use data, e.g. posts, i.e. yours.", "Next one."],
        id="no-split-after-e.g.-and-i.e.",
    ),
    pytest.param(
        "Provided by Meta Platforms, Inc. and its affiliates. The U.S. office is here.",
        ["Provided by Meta Platforms, Inc. and its affiliates.", "The U.S. office is here."],
        id="no-split-after-Inc.-and-U.S.",
    ),
    pytest.param(
        "Posts, photos, etc. We keep them. Apples vs. Oranges are compared.",
        ["Posts, photos, etc. We keep them.", "Apples vs. Oranges are compared."],
        id="no-split-after-etc.-and-vs.",
    ),
    pytest.param(
        "See No. 5 and Art. 6 GDPR. Then stop.",
        ["See No. 5 and Art. 6 GDPR.", "Then stop."],
        id="number-abbreviations-before-digits",
    ),
    pytest.param(
        "Version 2.5 is out. It costs 3.50 euros.",
        ["Version 2.5 is out.", "It costs 3.50 euros."],
        id="decimals-never-split",
    ),
    pytest.param("The end. and more follows", ["The end. and more follows"], id="lower-case-next-no-split"),
    pytest.param(
        "Why? Because! Wait… Done", ["Why?", "Because!", "Wait…", "Done"], id="question-bang-ellipsis"
    ),
    pytest.param(
        'He said "stop." Then he left.', ['He said "stop."', "Then he left."], id="closing-quote-kept"
    ),
    pytest.param(
        "We changed it in May. 2025 brings more. 'Quoted' start.",
        ["We changed it in May.", "2025 brings more.", "'Quoted' start."],
        id="digit-and-quote-start-a-sentence",
    ),
    pytest.param(
        "First line without stop\nSecond line.", ["First line without stop", "Second line."], id="line-break"
    ),
    pytest.param(
        "# Heading\n\n- Item one. Item two\n\n1. Numbered item",
        ["Heading", "Item one.", "Item two", "Numbered item"],
        id="block-markers-left-out",
    ),
    pytest.param(
        "| Purpose. More | Legal basis |\nCell a | cell b",
        ["Purpose.", "More", "Legal basis", "Cell a", "cell b"],
        id="table-cells-are-units",
    ),
    pytest.param(
        "Qu'est-ce que c'est ? Nous l'expliquons. À l'heure actuelle, rien.",
        ["Qu'est-ce que c'est ?", "Nous l'expliquons.", "À l'heure actuelle, rien."],
        id="french-spaced-question-mark-and-accented-capital",
    ),
    pytest.param("One\x85two. Three\x0cfour", ["One\x85two.", "Three\x0cfour"], id="only-LF-ends-a-line"),
    pytest.param("", [], id="empty"),
    pytest.param("  \n\n  ", [], id="blank"),
]


@pytest.mark.parametrize(("text", "expected"), SENTENCE_CASES)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


@given(st.text(alphabet="ab .?!\n|#-É1", max_size=80))
@settings(max_examples=200, deadline=None)
def test_sentence_spans_are_ordered_and_trimmed(text: str) -> None:
    spans = split_sentences(text)
    assert all(a < b for a, b in spans)
    assert all(spans[i][1] <= spans[i + 1][0] for i in range(len(spans) - 1))
    assert all(text[a:b] == text[a:b].strip() for a, b in spans)
    assert all("\n" not in text[a:b] for a, b in spans)


# --------------------------------------------------------------------------- exact hunks

DIFF_CASES = [
    pytest.param(
        "Intro.\n\nWe rely on consent to train AI. Other sentence.\n",
        "Intro.\n\nWe rely on legitimate interests to train AI. Other sentence.\n",
        [
            Hunk(
                before="We rely on consent to train AI. Other sentence.",
                after="We rely on legitimate interests to train AI. Other sentence.",
                segments=(
                    Segment(0, "We rely on "),
                    Segment(-1, "consent"),
                    Segment(1, "legitimate interests"),
                    Segment(0, " to train AI. Other sentence."),
                ),
                sentences_before=("We rely on consent to train AI.",),
                sentences_after=("We rely on legitimate interests to train AI.",),
                line_before=3,
                line_after=3,
            )
        ],
        id="word-replaced-whole-sentences-quoted",
    ),
    pytest.param(
        "A.\n\nC.\n",
        "A.\n\nB is new.\n\nC.\n",
        [Hunk("", "B is new.", (Segment(1, "B is new."),), (), ("B is new.",), 3, 3)],
        id="new-paragraph-only-new-side",
    ),
    pytest.param(
        "A.\n\nB is gone.\n\nC.\n",
        "A.\n\nC.\n",
        [Hunk("B is gone.", "", (Segment(-1, "B is gone."),), ("B is gone.",), (), 3, 3)],
        id="removed-paragraph-only-old-side",
    ),
    pytest.param(
        "We use posts.\n",
        "We use public posts.\n",
        [
            Hunk(
                "We use posts.",
                "We use public posts.",
                (Segment(0, "We use "), Segment(1, "public "), Segment(0, "posts.")),
                ("We use posts.",),
                ("We use public posts.",),
                1,
                1,
            )
        ],
        id="insertion-inside-sentence-quotes-both-sides",
    ),
    pytest.param(
        "We use posts.\n",
        "We use posts. You can object.\n",
        [
            Hunk(
                "We use posts.",
                "We use posts. You can object.",
                (Segment(0, "We use posts."), Segment(1, " You can object.")),
                (),
                ("You can object.",),
                1,
                1,
            )
        ],
        id="sentence-appended-unchanged-one-not-quoted",
    ),
    pytest.param(
        "A.\nB.",
        "A.\nB.\nC.",
        [Hunk("", "C.", (Segment(1, "C."),), (), ("C.",), 3, 3)],
        id="append-without-final-newline-keeps-last-line-equal",
    ),
    pytest.param("Same.\n", "Same.\n", [], id="identical-no-hunk"),
]


@pytest.mark.parametrize(("before", "after", "expected"), DIFF_CASES)
def test_diff_exact_hunks(before: str, after: str, expected: list[Hunk]) -> None:
    diff = diff_texts(before, after)
    assert list(diff.hunks) == expected
    assert diff.inserted_chars == sum(len(s.text) for h in expected for s in h.segments if s.op == 1)
    assert diff.deleted_chars == sum(len(s.text) for h in expected for s in h.segments if s.op == -1)
    assert diff.truncated is False


def test_separate_changes_give_separate_hunks_with_line_numbers() -> None:
    before = "# Title\n\nFirst paragraph stays.\n\nWe keep data for 90 days.\n\nMiddle.\n\nEnd one.\n"
    after = "# Title\n\nFirst paragraph stays.\n\nWe keep data for 180 days.\n\nMiddle.\n\nEnd two.\n"
    diff = diff_texts(before, after)
    assert [(h.line_before, h.line_after) for h in diff.hunks] == [(5, 5), (9, 9)]
    assert [h.sentences_after for h in diff.hunks] == [("We keep data for 180 days.",), ("End two.",)]
    assert (diff.inserted_chars, diff.deleted_chars) == (len("180") + len("two"), len("90") + len("one"))


def test_rewritten_sentence_reads_as_one_change_not_confetti() -> None:
    # Real French banner (corpus, meta-privacy-policy-fr-fr 2024-05-21 -> 2024-06-26): short words both
    # versions happen to share ("la", "de") must not cut the rewrite into pieces.
    before = "Nous mettons à jour la Politique de confidentialité en incluant la manière dont nous utilisons"
    after = "À l'heure actuelle, nous reportons la modification de notre utilisation de vos informations"
    diff = diff_texts(before, after)
    assert [s.op for s in diff.hunks[0].segments] == [-1, 1]


# --------------------------------------------------------------------------- determinism and the cap


def test_same_inputs_same_diff_and_no_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    import fast_diff_match_patch
    from diff_match_patch import diff_match_patch

    timeouts: list[float] = []
    original = diff_match_patch.diff_main
    native = fast_diff_match_patch.diff

    def spy(self: diff_match_patch, *args: object, **kwargs: object) -> object:
        timeouts.append(self.Diff_Timeout)
        return original(self, *args, **kwargs)

    def native_spy(*args: object, **kwargs: object) -> object:
        timeouts.append(kwargs["timelimit"])  # type: ignore[arg-type]
        return native(*args, **kwargs)

    monkeypatch.setattr(diff_match_patch, "diff_main", spy)
    monkeypatch.setattr(fast_diff_match_patch, "diff", native_spy)
    before, after = corpus_text(EN_APRIL), corpus_text(EN_MAY)
    for native_engine in (True, False):
        timeouts.clear()
        first = diff_texts(before, after, native=native_engine)
        second = diff_texts(before, after, native=native_engine)
        assert first == second
        assert timeouts and set(timeouts) == {0}


# --------------------------------------------------------------------------- the C++ engine: same hunks


def _corpus_documents() -> list[str]:
    found = {
        f"{kind.name}/{folder.name}"
        for root in CORPUS_DIRS
        for kind in (root / "milestones", root / "series")
        for folder in kind.glob("*")
        if any(folder.glob("*.md.gz"))
    }
    return sorted(found)


def _assert_engines_agree(document: str) -> int:
    texts = [canonical_markdown(corpus_markdown(version)) for version in corpus_versions(document)]
    changes = [(a, b) for a, b in pairwise(texts) if a != b]
    for before, after in changes:
        assert diff_texts(before, after) == diff_texts(before, after, native=False), document
    return len(changes)


@pytest.mark.parametrize(
    "document", ["milestones/meta-privacy-policy-fr-fr", "milestones/meta-genai-privacy-center-en-us"]
)
def test_native_engine_gives_the_pure_python_hunks_on_real_changes(document: str) -> None:
    """The speed-up changes nothing: the C++ port's hunks (segments, sentences, sections, line numbers)
    equal the pure-Python port's on every change of these documents (11 real changes)."""
    assert _assert_engines_agree(document) >= 3


@pytest.mark.slow
def test_native_engine_gives_the_pure_python_hunks_on_every_corpus_change() -> None:
    """... and on every change of every corpus document (77 real changes, ~15 s of pure-Python diffs)."""
    assert sum(_assert_engines_agree(document) for document in _corpus_documents()) >= 70


def test_native_engine_beyond_the_basic_plane() -> None:
    """Over 6,400 distinct words: the tokens' stand-ins leave the private-use area of the BMP for the
    supplementary planes, which the C++ port must count as one character each, like Python."""
    rng = random.Random(7)
    words = [f"w{n}" for n in range(9_000)]
    before = " ".join(words) + "\n"
    changed = list(words)
    for index in rng.sample(range(len(words)), 40):
        changed[index] = f"x{index}"
    after = " ".join(changed) + "\n"
    native, pure = diff_texts(before, after), diff_texts(before, after, native=False)
    assert native == pure
    _assert_consistent(native)


def _prose(seed: int, size: int) -> str:
    rng = random.Random(seed)
    words = corpus_text(EN_MAY).split()
    out: list[str] = []
    length = 0
    while length < size:
        out.append(rng.choice(words))
        length += len(out[-1]) + 1
    return " ".join(out)[:size]


def test_block_over_the_cap_is_one_line_hunk_and_truncated() -> None:
    before = "Intro stays.\n\n" + _prose(1, 30_000) + "\n\nOutro stays.\n"
    after = "Intro stays.\n\n" + _prose(2, 30_000) + "\n\nOutro stays.\n"
    diff = diff_texts(before, after)
    assert diff.truncated is True
    (hunk,) = diff.hunks
    assert hunk.segments == (Segment(-1, hunk.before), Segment(1, hunk.after))
    assert (hunk.line_before, hunk.line_after) == (3, 3)
    assert (diff.deleted_chars, diff.inserted_chars) == (30_000, 30_000)
    # The quoted sentences are those found on one side only.
    assert set(hunk.sentences_before).isdisjoint(hunk.sentences_after)
    assert set(hunk.sentences_before) <= set(sentences(hunk.before))


@pytest.mark.parametrize(
    ("cap", "truncated"),
    [
        pytest.param(
            len("We rely on consent.") + len("We rely on contract."), False, id="at-the-cap-word-diffed"
        ),
        pytest.param(
            len("We rely on consent.") + len("We rely on contract.") - 1, True, id="one-over-line-only"
        ),
    ],
)
def test_max_block_chars_boundary(cap: int, truncated: bool) -> None:
    diff = diff_texts("We rely on consent.\n", "We rely on contract.\n", max_block_chars=cap)
    assert diff.truncated is truncated
    assert (Segment(0, "We rely on ") in diff.hunks[0].segments) is not truncated


# --------------------------------------------------------------------------- real versions and invariants


def test_real_may_2025_update_hunks() -> None:
    diff = diff_texts(corpus_text(EN_APRIL), corpus_text(EN_MAY))
    assert diff.truncated is False
    effective = next(h for h in diff.hunks if h.before == "Effective April 7, 2025")
    assert effective.segments == (
        Segment(0, "Effective "),
        Segment(-1, "April 7"),
        Segment(1, "May 27"),
        Segment(0, ", 2025"),
    )
    new_item = "Interactions with Meta's artificial intelligence technology and related metadata."
    holder = next(h for h in diff.hunks if new_item in h.sentences_after)
    assert new_item not in holder.sentences_before
    assert all("Interactions" not in s for s in holder.sentences_before)
    rows = [h for h in diff.hunks if h.before == "" and "also called AI at Meta" in h.after]
    assert len(rows) == 1 and rows[0].line_after == 1639


def _assert_consistent(diff: TextDiff) -> None:
    for hunk in diff.hunks:
        assert "".join(s.text for s in hunk.segments if s.op <= 0) == hunk.before
        assert "".join(s.text for s in hunk.segments if s.op >= 0) == hunk.after
        if any(s.op == 0 for s in hunk.segments):
            _assert_token_aligned(hunk)


def _assert_token_aligned(hunk: Hunk) -> None:
    """No segment boundary cuts a word in two, on either side."""
    for side, ops in ((hunk.before, (-1, 0)), (hunk.after, (0, 1))):
        pos = 0
        for segment in hunk.segments:
            if segment.op in ops:
                pos += len(segment.text)
                inner = 0 < pos < len(side)
                assert not (inner and re.match(r"\w\w", side[pos - 1 : pos + 1])), (side, pos)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(EN_APRIL, EN_MAY, id="en-2025-04-to-05"),
        pytest.param(
            "milestones/meta-privacy-policy-fr-fr/2024-05-21",
            "milestones/meta-privacy-policy-fr-fr/2024-06-26",
            id="fr-2024-05-to-06",
        ),
    ],
)
def test_real_diffs_rebuild_both_texts_and_cut_between_words(before: str, after: str) -> None:
    _assert_consistent(diff_texts(corpus_text(before), corpus_text(after)))


WORDS = st.sampled_from(["we", "use", "public", "posts", "AI", "object", "l'IA", "é", ".", ",", "\n", "\n\n"])


@given(st.lists(WORDS, max_size=40), st.lists(WORDS, max_size=40))
@settings(max_examples=150, deadline=None)
def test_any_diff_rebuilds_both_texts(a: list[str], b: list[str]) -> None:
    _assert_consistent(diff_texts(" ".join(a), " ".join(b)))

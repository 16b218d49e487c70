"""Where a change is: heading paths, table columns, row labels, stable anchors, and hunks carrying them."""

from __future__ import annotations

from functools import lru_cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support.corpus import render_page
from support.replay import corpus_text
from watchdog.diff import diff_texts
from watchdog.extract import extract
from watchdog.sections import anchor_for, headings, is_row, label, places

DOC = """# Privacy Policy

Intro.

## What is our legal basis?

### Legitimate interests

We rely on legitimate interests.

#### Why and how | Legitimate interests relied on | Information categories (see below) we use
### For all people
Develop and improve AI: we train models. | In our interest to build AI. | Public posts • Comments
Measurement: we count. | In our interest to count. | Activity

After the table.

## 1

Numbered placeholder heading.

## Take control

A.

## Take control

B.
"""


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.split("\n")) if needle in line)


@pytest.mark.parametrize(
    ("needle", "column", "path"),
    [
        pytest.param("Intro.", None, ("Privacy Policy",), id="under-the-title"),
        pytest.param(
            "We rely on",
            None,
            ("Privacy Policy", "What is our legal basis?", "Legitimate interests"),
            id="nested-headings",
        ),
        pytest.param(
            "Develop and improve AI",
            1,
            (
                "Privacy Policy",
                "What is our legal basis?",
                "Legitimate interests",
                "For all people",
                "Develop and improve AI",
                "Legitimate interests relied on",
            ),
            id="row-group-row-label-and-column",
        ),
        pytest.param(
            "Measurement",
            2,
            (
                "Privacy Policy",
                "What is our legal basis?",
                "Legitimate interests",
                "For all people",
                "Measurement",
                "Information categories",
            ),
            id="column-label-without-its-parenthesis",
        ),
        pytest.param(
            "After the table.",
            None,
            ("Privacy Policy", "What is our legal basis?", "Legitimate interests"),
            id="row-group-heading-ends-with-its-table",
        ),
        pytest.param(
            "Numbered placeholder",
            None,
            ("Privacy Policy", "What is our legal basis?", "Legitimate interests"),
            id="a-bare-number-names-nothing",
        ),
        pytest.param(
            "## Take control", None, ("Privacy Policy", "Take control"), id="a-heading-is-its-own-place"
        ),
    ],
)
def test_places(needle: str, column: int | None, path: tuple[str, ...]) -> None:
    line = line_of(DOC, needle)
    assert places(DOC, [(line, column)])[line].path == path


def test_anchors_are_stable_unique_and_follow_the_path() -> None:
    found = headings(DOC)
    anchors = [h.anchor for h in found]
    assert len(anchors) == len(set(anchors))
    assert anchors[-2:] == ["s-privacy-policy--take-control", "s-privacy-policy--take-control-2"]
    # the same path in another version of the text: the same anchor
    edited = DOC.replace("Intro.", "A new introduction.\n\n## Added section\n\nText.")
    assert headings(edited)[-1].anchor == anchors[-1]
    b = line_of(DOC, "B.")
    assert places(DOC, [(b, None)])[b].anchor == "s-privacy-policy--take-control-2"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "Personalizing ads on the Meta Products: If we show you ads",
            "Personalizing ads on the Meta Products",
            id="colon",
        ),
        pytest.param("Share information. See how we respond.", "Share information.", id="sentence"),
        pytest.param(
            "Develop and improve artificial intelligence technology (also called AI at Meta) on Products",
            "Develop and improve artificial intelligence technology",
            id="parenthesis",
        ),
        pytest.param("word " * 40, ("word " * 18).strip() + "…", id="long-cut-at-a-word"),
    ],
)
def test_label(text: str, expected: str) -> None:
    assert label(text) == expected


def test_anchor_of_non_latin_headings_is_a_valid_id() -> None:
    anchor = anchor_for(("سياسة الخصوصية", "Données"))
    assert anchor.startswith("s-h") and anchor.endswith("--donnees")
    assert anchor_for(()) == ""


@lru_cache(maxsize=8)
def canonical(name: str) -> str:
    """A corpus version as the pipeline reads it: rendered as a page, then extracted."""
    page = render_page(corpus_text(name), chrome=False)
    return extract(page, content_type="text/html", url="https://example.org/", select=["#root"]).text


APRIL = "series/facebook-privacy-policy-en/2025-04-23T12-31-08Z.md"
MAY = "series/facebook-privacy-policy-en/2025-05-28T00-30-56Z.md"


def test_every_hunk_of_the_may_2025_change_names_its_section() -> None:
    diff = diff_texts(canonical(APRIL), canonical(MAY))
    sections = [" › ".join(h.section) for h in diff.hunks]
    assert all(sections), sections
    assert (
        "Legal basis information › For all people, including those under the age of majority › "
        "Develop and improve artificial intelligence technology"
    ) in sections
    assert "What information do we collect? › Your activity and information you provide" in sections
    new_text = canonical(MAY)
    assert all(h.anchor in {x.anchor for x in headings(new_text)} for h in diff.hunks)


def test_a_deleted_passage_is_placed_in_the_old_text() -> None:
    before = "# A\n\nKeep.\n\n## B\n\nGone sentence.\n\n## C\n\nKeep too.\n"
    after = "# A\n\nKeep.\n\n## C\n\nKeep too.\n"
    (hunk,) = diff_texts(before, after).hunks
    assert hunk.section == ("A", "B") and hunk.anchor == "s-a--b"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["a", " ", "|", " | ", "•", "-", "*", "\t", "\u00a0", "Why"]), max_size=12))
def test_a_line_without_a_hash_is_a_row_exactly_when_it_holds_a_separator(pieces: list[str]) -> None:
    """The walker's shortcut for the common line (no "#", so no heading can match): is_row is then the
    separator test alone."""
    line = "".join(pieces)
    assert is_row(line) == (" | " in line)

"""Stage render: alert content, hostile page text made inert in every format, limits kept exactly."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from functools import lru_cache
from html.parser import HTMLParser
from typing import Any, Literal

import lxml.html
import pytest
from markdown_it import MarkdownIt
from test_classify import bundled_topics, compiled, corpus_text

from watchdog.classify import classify
from watchdog.diff import diff_texts
from watchdog.render import (
    SENTENCE_SHOWN,
    ChangeView,
    alert_title,
    render_diff_only,
    render_html,
    render_json,
    render_markdown,
    render_text,
    summary,
    truncate,
)

ARCHIVE = "https://archive.example.org/changes/meta-privacy-policy@c2.html"
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
HOSTILE = (
    "<script>alert(1)</script> <img src=x onerror=alert(1)> [click](javascript:alert(1)) "
    "[ref]: javascript:alert(2) <!channel> <https://evil.example|Log in> @here *bold* _it_ ~st~ `code` "
    "&amp; \x1b[31mred\x1b[0m nul\x00 \u202eevil\u202c next\x85line"
)


def make_view(
    before: str, after: str, *, archive_url: str | None = ARCHIVE, name: str = "Meta Privacy Policy"
) -> ChangeView:
    diff = diff_texts(before, after)
    return ChangeView(
        target_id="meta-privacy-policy",
        target_name=name,
        url="https://mbasic.facebook.com/privacy/policy/printable/",
        change_id="meta-privacy-policy@c2",
        from_version="meta-privacy-policy@v1",
        to_version="meta-privacy-policy@v2",
        detected_at=datetime(2025, 5, 28, 0, 30, 56, tzinfo=UTC),
        diff=diff,
        classification=classify(diff, compiled()),
        archive_url=archive_url,
        topics=bundled_topics(),
    )


SIMPLE_BEFORE = "Effective April 7, 2025\n\nIntro.\n\nWe rely on consent to train AI.\n"
SIMPLE_AFTER = "Effective May 27, 2025\n\nIntro.\n\nWe rely on legitimate interests to train AI.\n"


def hostile_view(**kwargs: Any) -> ChangeView:
    before = f"Intro.\n\nWe rely on consent. Old {HOSTILE} text.\n\nKept.\n"
    after = (
        f"Intro.\n\nWe rely on legitimate interests. {HOSTILE} You can object.\n\nKept.\n\nNew {HOSTILE}\n"
    )
    return make_view(before, after, **kwargs)


@lru_cache(maxsize=4)
def real_view(before: str, after: str) -> ChangeView:
    return make_view(corpus_text(before), corpus_text(after))


EN_MAY = (
    "series/facebook-privacy-policy-en/2025-04-23T12-31-08Z",
    "series/facebook-privacy-policy-en/2025-05-28T00-30-56Z",
)
FR_JUNE = (
    "milestones/meta-privacy-policy-fr-fr/2024-05-21",
    "milestones/meta-privacy-policy-fr-fr/2024-06-26",
)


# --------------------------------------------------------------------------- titles and summaries


@pytest.mark.parametrize(
    ("after", "name", "title"),
    [
        pytest.param(
            "We rely on consent to train AI.\n",
            "Meta Privacy Policy",
            "[Meta Privacy Policy] ai-training, legal-basis wording changed",
            id="topics-listed",
        ),
        pytest.param(
            "You can object.\n",
            "Meta Privacy Policy",
            "[Meta Privacy Policy] opt-out wording changed",
            id="one",
        ),
        pytest.param(
            "Cookies expire.\n", "Meta Privacy Policy", "[Meta Privacy Policy] wording changed", id="none"
        ),
        pytest.param(
            "Cookies expire.\n",
            "Meta\nPrivacy\x1b[2J Policy",
            "[Meta Privacy[2J Policy] wording changed",
            id="name-cleaned",
        ),
    ],
)
def test_alert_title(after: str, name: str, title: str) -> None:
    assert alert_title(make_view("Intro.\n", f"Intro.\n\n{after}", name=name)) == title


def test_summary_is_one_short_line_with_topics_counts_and_the_first_topical_sentence() -> None:
    long_tail = " and ".join(["your public posts"] * 40)
    view = make_view("Effective April 7, 2025\n", f"Effective May 27, 2025\n\nWe may use {long_tail}.\n")
    line = summary(view)
    assert len(line) <= 200 and "\n" not in line
    assert line.startswith("public-data · +")
    assert "“We may use your public posts" in line
    assert line.endswith("…")


def test_summary_without_topics() -> None:
    line = summary(make_view("Effective April 7, 2025\n", "Effective May 27, 2025\n"))
    assert line == "no watched topic · +6/-7 chars in 1 block · “Effective May 27, 2025”"


# --------------------------------------------------------------------------- alert bodies


def test_text_body_quotes_sentences_topic_hunks_first_and_references_the_archive() -> None:
    text = render_text(make_view(SIMPLE_BEFORE, SIMPLE_AFTER))
    assert text.splitlines()[0] == "[Meta Privacy Policy] ai-training, legal-basis wording changed"
    assert (
        "Topics: Use of information for AI (training and features) (ai-training, high); "
        "Legal basis (legitimate interests, consent, contract) (legal-basis, medium)"
    ) in text
    assert "Size: +26/-14 characters in 2 blocks" in text
    topical = text.index(
        "@@ line 5 -> 5 @@ ai-training, legal-basis\n- We rely on consent to train AI.\n"
        "+ We rely on legitimate interests to train AI.\n"
    )
    assert topical < text.index("@@ line 1 -> 1 @@\n- Effective April 7, 2025\n+ Effective May 27, 2025\n")
    assert text.endswith(
        "Change meta-privacy-policy@c2: meta-privacy-policy@v1 -> meta-privacy-policy@v2\n"
        f"Full diff: {ARCHIVE}\n"
    )


def test_markdown_body_strikes_deleted_and_bolds_inserted_words() -> None:
    md = render_markdown(make_view(SIMPLE_BEFORE, SIMPLE_AFTER))
    assert "*Line 5* · `ai-training`, `legal-basis`" in md
    assert "> − We rely on ~consent~ to train AI." in md
    assert "> + We rely on *legitimate interests* to train AI." in md
    assert f"<{ARCHIVE}|full diff>" in md


def test_html_body_marks_words_with_del_and_ins() -> None:
    page = lxml.html.fromstring(render_html(make_view(SIMPLE_BEFORE, SIMPLE_AFTER)))
    assert [_text(e) for e in page.iter("del")] == ["consent", "April 7"]
    assert [_text(e) for e in page.iter("ins")] == ["legitimate interests", "May 27"]
    assert page.findtext(".//title") == "[Meta Privacy Policy] ai-training, legal-basis wording changed"
    assert [a.get("href") for a in page.iter("a")] == [
        "https://mbasic.facebook.com/privacy/policy/printable/",
        ARCHIVE,
    ]


def test_html_fragment_mode() -> None:
    fragment = render_html(make_view(SIMPLE_BEFORE, SIMPLE_AFTER), document=False)
    assert fragment.startswith('<div class="pw-change">') and "<html" not in fragment


def test_json_carries_topics_evidence_and_hunks() -> None:
    data = json.loads(render_json(make_view(SIMPLE_BEFORE, SIMPLE_AFTER)))
    assert data["topics"] == ["ai-training", "legal-basis"]
    assert data["severity"] == "high"
    assert data["detected_at"] == "2025-05-28T00:30:56Z"
    assert [h["index"] for h in data["hunks"]] == [1, 0]
    assert data["hunks"][0]["sentences_after"] == ["We rely on legitimate interests to train AI."]
    assert {m["topic"] for m in data["matches"]} == {"ai-training", "legal-basis"}
    assert data["archive_url"] == ARCHIVE and data["title"].startswith("[Meta Privacy Policy]")


def test_real_change_alert_lists_the_new_ai_sentence() -> None:
    text = render_text(real_view(*EN_MAY))
    assert "+ Interactions with Meta's artificial intelligence technology and related metadata." in text
    assert text.index("ai-training") < text.index("@@ line 12 -> 12 @@\n")


def test_long_sentence_is_clipped_around_its_change() -> None:
    words = " ".join(f"word{i}" for i in range(600))
    view = make_view(f"Start {words} consent end.\n", f"Start {words} legitimate interests end.\n")
    (old, new) = [line for line in render_text(view).splitlines() if line[:2] in ("- ", "+ ")]
    assert old.startswith("- …") and "consent end." in old
    assert new.startswith("+ …") and "legitimate interests end." in new
    assert len(new) <= SENTENCE_SHOWN + 5


def test_topic_titles_fall_back_to_ids() -> None:
    view = make_view(SIMPLE_BEFORE, SIMPLE_AFTER)
    bare = ChangeView(**{**view.__dict__, "topics": ()})
    assert "Topics: ai-training (ai-training, ?); legal-basis (legal-basis, ?)" in render_text(bare)


# --------------------------------------------------------------------------- hostile text


def _text(element: Any) -> str:
    """An element's text (lxml's stubs type its text pieces as str | bytes)."""
    return "".join(str(piece) for piece in element.itertext())


def _no_controls(text: str) -> None:
    assert not CONTROL.search(text), CONTROL.search(text)


def _assert_safe_html(markup: str) -> None:
    _no_controls(markup)
    root = lxml.html.fromstring(markup)
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        assert element.tag not in {"script", "img", "iframe", "object", "embed", "form"}
        assert not any(str(name).lower().startswith("on") for name in element.attrib)
        href = element.get("href")
        assert href is None or str(href).startswith("https://")
    _assert_balanced(markup)


class _Balance(HTMLParser):
    VOID = frozenset({"meta", "br", "img", "hr", "input", "link"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack.pop() == tag, tag


def _assert_balanced(markup: str) -> None:
    parser = _Balance()
    parser.feed(markup)
    parser.close()
    assert parser.stack == []


_OUR_SLACK_LINK = re.compile(r"<https://[^\s|<>]+\|[^<>]*>")


def _assert_safe_markdown(md: str) -> None:
    _no_controls(md)
    rest = _OUR_SLACK_LINK.sub("", md)
    assert "<" not in rest
    for line in rest.splitlines():
        body = line[2:] if line.startswith("> ") else line  # "> " is our own quote marker
        assert ">" not in body, line
    assert not re.search(r"&(?!amp;|lt;|gt;)", rest)
    assert not re.search(r"\][(:\[]", md)  # no [text](url), [ref]: url or [text][ref]
    for raw in ("*bold*", "_it_", "~st~", "`code`", "@here", "<!channel>"):
        assert raw not in md
    rendered = lxml.html.fromstring(f"<div>{MarkdownIt('commonmark').render(md)}</div>")
    assert not rendered.xpath("//script|//img|//a[starts-with(@href, 'javascript')]")


def _assert_safe_json(payload: str) -> None:
    def walk(value: Any) -> None:
        if isinstance(value, str):
            _no_controls(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(json.loads(payload))


def test_hostile_text_is_inert_in_html() -> None:
    markup = render_html(hostile_view())
    _assert_safe_html(markup)
    assert "<script>alert(1)</script>" in _text(lxml.html.fromstring(markup))  # shown as text
    _assert_safe_html(render_diff_only(hostile_view().diff, fmt="html"))


def test_hostile_text_is_inert_in_markdown() -> None:
    md = render_markdown(hostile_view())
    _assert_safe_markdown(md)
    assert "&lt;!channel&gt;" in md and "∗bold∗" in md
    _assert_safe_markdown(render_diff_only(hostile_view().diff, fmt="md"))


def test_hostile_text_has_no_control_characters_in_text_and_json() -> None:
    view = hostile_view()
    for out in (render_text(view), render_diff_only(view.diff, fmt="text"), summary(view), alert_title(view)):
        _no_controls(out)
    _assert_safe_json(render_json(view))
    assert "<script>alert(1)</script>" in render_text(view)  # plain text shows it, as it is


@pytest.mark.parametrize(
    "archive_url",
    [
        pytest.param("javascript:alert(1)", id="javascript-scheme"),
        pytest.param("https://ok.example/x|<!channel>", id="slack-link-breakout"),
        pytest.param('https://ok.example/" onmouseover="alert(1)', id="attribute-breakout"),
    ],
)
def test_unsafe_archive_url_never_becomes_a_link(archive_url: str) -> None:
    view = hostile_view(archive_url=archive_url)
    _assert_safe_html(render_html(view))
    _assert_safe_markdown(render_markdown(view))
    text = render_text(view)
    assert "Full diff:" not in text
    assert "javascript:" not in render_text(view, limit=300)


# --------------------------------------------------------------------------- limits

LIMITS = [0, 1, 30, 120, 400, 1_500, 6_000, 1_000_000]


@pytest.mark.parametrize("limit", LIMITS)
@pytest.mark.parametrize("pair", [pytest.param(EN_MAY, id="en-may"), pytest.param(FR_JUNE, id="fr-june")])
def test_text_and_markdown_respect_the_limit(pair: tuple[str, str], limit: int) -> None:
    view = real_view(*pair)
    for render in (render_text, render_markdown):
        full, cut = render(view), render(view, limit=limit)
        assert len(cut) <= limit
        if len(full) <= limit:
            assert cut == full
        elif limit >= 120:
            assert cut.endswith(
                f"… full diff: {ARCHIVE}" if render is render_text else f"… <{ARCHIVE}|full diff>"
            )
            if "\n" in cut:
                body = cut[: cut.rindex("\n")]
                assert full.startswith(body + "\n")  # cut at a line boundary of the full body
    _assert_safe_markdown(render_markdown(view, limit=limit))


@pytest.mark.parametrize("limit", LIMITS)
@pytest.mark.parametrize("pair", [pytest.param(EN_MAY, id="en-may"), pytest.param(FR_JUNE, id="fr-june")])
def test_html_respects_the_limit_and_stays_well_formed(pair: tuple[str, str], limit: int) -> None:
    view = real_view(*pair)
    full, cut = render_html(view), render_html(view, limit=limit)
    assert len(cut) <= limit
    if len(full) <= limit:
        assert cut == full
    elif limit >= 1_500:
        _assert_safe_html(cut)
        assert f'<a href="{ARCHIVE}">full diff</a>' in cut
        assert cut.count('class="hunk"') < full.count('class="hunk"')


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        pytest.param("a\nb\n", 10, "a\nb\n", id="fits-unchanged"),
        pytest.param("line one\nline two\nline three\n", 22, "line one\n… more", id="cut-at-line-boundary"),
        pytest.param(
            "line one\nline two\nline three\n", 24, "line one\nline two\n… more", id="keeps-whole-lines"
        ),
        pytest.param("a very long single line\n", 12, "… more", id="no-line-fits-pointer-only"),
        pytest.param("a very long single line\n", 3, "… m", id="pointer-cut-to-limit"),
        pytest.param("abc\n", 0, "", id="zero"),
    ],
)
def test_truncate(text: str, limit: int, expected: str) -> None:
    out = truncate(text, limit, pointer="… more")
    assert out == expected
    assert len(out) <= limit


def test_truncate_rejects_a_negative_limit() -> None:
    with pytest.raises(ValueError, match="limit"):
        truncate("x", -1, pointer="p")


# --------------------------------------------------------------------------- `diff A B`


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        pytest.param("text", "We rely on [-consent-]{+legitimate interests+} to train AI.", id="text"),
        pytest.param("md", "> We rely on ~consent~ *legitimate interests* to train AI.", id="md"),
    ],
)
def test_diff_only_marks_words_inline(fmt: Literal["text", "md"], expected: str) -> None:
    out = render_diff_only(diff_texts(SIMPLE_BEFORE, SIMPLE_AFTER), fmt=fmt)
    assert expected in out
    assert out.count("@@ -") == 2


def test_diff_only_html_and_empty_and_coarse_blocks() -> None:
    markup = render_diff_only(diff_texts(SIMPLE_BEFORE, SIMPLE_AFTER), fmt="html")
    assert [_text(e) for e in lxml.html.fromstring(markup).iter("ins")] == [
        "May 27",
        "legitimate interests",
    ]
    for fmt in ("text", "md", "html"):
        assert "No differences." in render_diff_only(diff_texts("Same.\n", "Same.\n"), fmt=fmt)
    coarse = diff_texts("Old words here.\n", "New text there.\n", max_block_chars=5)
    assert render_diff_only(coarse, fmt="text") == "@@ -1 +1 @@\n- Old words here.\n+ New text there.\n"
    assert "> − ~Old words here.~\n> + *New text there.*" in render_diff_only(coarse, fmt="md")

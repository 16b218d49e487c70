"""Stage render: the story of a change (headline, passages under their sections, cuts) and each format
(text, Markdown, HTML, JSON) on real corpus changes; page text escaped, never substituted; limits kept."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from html.parser import HTMLParser

import lxml.html
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from test_sections import canonical

from support.messages import ARCHIVE, change_message
from watchdog.diff import diff_texts
from watchdog.models import ChangeMessage, message_from_json, message_to_json
from watchdog.render import html, markdown, text
from watchdog.render.compose import HEADLINE_MAX, HUGE, Cut, Links, Story, compose, fit
from watchdog.render.json import story_json
from watchdog.render.markdown import PLAIN_MARKDOWN, escape

EN_MAY = (
    "series/facebook-privacy-policy-en/2025-04-23T12-31-08Z.md",
    "series/facebook-privacy-policy-en/2025-05-28T00-30-56Z.md",
)
FR_PAUSE = (
    "milestones/meta-privacy-policy-fr-fr/2024-05-21.md",
    "milestones/meta-privacy-policy-fr-fr/2024-06-26.md",
)
FR_REWRITE = (
    "milestones/meta-privacy-policy-fr-fr/2025-06-16.md",
    "milestones/meta-privacy-policy-fr-fr/2025-09-04.md",
)
LINE_NUMBERS = re.compile(r"@@|\bline \d|\bligne \d", re.IGNORECASE)


@lru_cache(maxsize=4)
def real(pair: tuple[str, str], name: str = "Meta Privacy Policy") -> ChangeMessage:
    """A real corpus change, read as the pipeline reads pages (rendered, extracted), diffed, classified."""
    return change_message(canonical(pair[0]), canonical(pair[1]), event_id="fb@c2", name=name)


def story_of(message: ChangeMessage) -> tuple[Story, Links]:
    return compose(message), Links.published(message.archive_url, message)


# --------------------------------------------------------------------------- the headline


@pytest.mark.parametrize(
    ("before", "after", "headline"),
    [
        pytest.param(
            "# Policy\n\n## Legitimate interests\n\nWe rely on consent.\n",
            "# Policy\n\n## Legitimate interests\n\nWe rely on consent.\n\nWe train AI on public posts.\n",
            '[Meta Privacy Policy] Added under "Legitimate interests": "We train AI on public posts."'
            " · ai-training, public-data",
            id="added-under-its-section-quoting-the-topic-sentence",
        ),
        pytest.param(
            "# Policy\n\n## Rights\n\nYou can object to it.\n\nKept.\n",
            "# Policy\n\n## Rights\n\nKept.\n",
            '[Meta Privacy Policy] Removed under "Rights": "You can object to it." · opt-out',
            id="removed-quotes-the-old-sentence",
        ),
        pytest.param(
            "# Policy\n\nWe rely on consent to train AI.\n",
            "# Policy\n\nWe rely on legitimate interests to train AI.\n",
            '[Meta Privacy Policy] Changed under "Policy": "We rely on legitimate interests to train AI."'
            " · ai-training, legal-basis",
            id="changed-quotes-the-new-sentence",
        ),
        pytest.param(
            "Intro.\n\nCookies last a year.\n",
            "Intro.\n\nCookies last two years.\n",
            '[Meta Privacy Policy] Changed: "Cookies last two years."',
            id="no-heading-no-topic",
        ),
    ],
)
def test_headline(before: str, after: str, headline: str) -> None:
    assert compose(change_message(before, after)).headline == headline


def test_the_may_2025_headline_tells_the_story() -> None:
    story, _links = story_of(real(EN_MAY))
    assert story.headline.startswith(
        '[Meta Privacy Policy] Added under "For all people, including those under the age of majority": '
        '"Develop and improve artificial intelligence'
    )
    assert story.headline.endswith("(+3 more) · ai-training, legal-basis, public-data")
    assert story.folded_line == "and 5 edits that keep the meaning, not shown: 5 punctuation"
    assert len(story.headline) <= HEADLINE_MAX


def test_a_long_headline_shortens_its_quote_at_a_word() -> None:
    long = " ".join(["public posts"] * 40)
    story = compose(
        change_message("# P\n\nIntro.\n", f"# P\n\nIntro.\n\nWe may use {long}.\n", name="N" * 60)
    )
    assert len(story.headline) <= HEADLINE_MAX and '…"' in story.headline
    quote = story.headline.split(': "', 1)[1].split('…"')[0]
    assert quote.endswith("posts") or quote.endswith("public"), "cut at a word boundary"


# --------------------------------------------------------------------------- real changes, every format


@pytest.mark.parametrize(
    "pair", [pytest.param(EN_MAY, id="en-may-2025"), pytest.param(FR_PAUSE, id="fr-pause-2024")]
)
def test_every_passage_names_its_section_and_no_format_shows_line_numbers(pair: tuple[str, str]) -> None:
    story, links = story_of(real(pair))
    assert story.passages and all(p.where for p in story.passages)
    bodies = {
        "text": text.render_text(story, links),
        "markdown": markdown.render_markdown(story, links),
        "html": html.render_email(story, links),
        "full-text": text.full_diff(story.message.diff),
        "full-md": markdown.full_diff(story.message.diff),
        "full-html": html.full_diff(story.message.diff),
    }
    for name, body in bodies.items():
        assert not LINE_NUMBERS.search(body), (name, LINE_NUMBERS.search(body))
        assert "###" not in body and " | * " not in body, f"{name}: no Markdown remnants"
    sections = story.sections()
    assert len(sections) == len(story.message.diff.hunks) and all(sections)


def test_the_french_pause_names_the_postponement() -> None:
    story, _links = story_of(real(FR_PAUSE))
    assert "nous reportons la modification" in story.headline
    assert "eu-pause" in story.headline
    first = story.passages[0]
    assert first.where == ("Politique de confidentialité",) and "eu-pause" in first.topics
    assert "Nous vous expliquerons également comment vous pouvez exercer votre droit d'opposition." in [
        line.text for line in first.lines if line.sign == "+"
    ]


def test_a_rewritten_section_is_summarised_with_the_full_text_one_click_away() -> None:
    story, links = story_of(real(FR_REWRITE))
    huge = [p for p in story.passages if p.summary]
    assert huge, "the September 2025 French rewrite has a section rewritten wholesale"
    passage = huge[0]
    assert re.fullmatch(r"rewritten: [\d,]+ → [\d,]+ characters", passage.summary or "")
    assert len(passage.lines) <= 2 and sum(len(line.text) for line in passage.lines) < HUGE
    assert links.full_text(passage) == f"{ARCHIVE}/changes/fb@c2.html#full-{passage.index}"
    mail = html.render_email(story, links)
    assert f'href="{ARCHIVE}/changes/fb@c2.html#full-{passage.index}">full text</a>' in mail


def test_a_message_survives_its_json_round_trip() -> None:
    message = real(EN_MAY)
    again = message_from_json(message_to_json(message))
    assert message_to_json(again) == message_to_json(message) and again.diff == message.diff


def test_json_story() -> None:
    story, links = story_of(real(EN_MAY))
    data = json.loads(json.dumps(story_json(story, links)))
    assert data["headline"] == story.headline and data["topics"] == [
        "ai-training",
        "legal-basis",
        "public-data",
    ]
    first = data["passages"][0]
    assert first["section"][-1] == "Develop and improve artificial intelligence technology"
    assert first["link"].startswith(f"{ARCHIVE}/versions/fb@v3.html#s-legal-basis-information")
    assert data["sections"] == story.sections()


# --------------------------------------------------------------------------- escaping, not substituting


def rendered_text(markdown_source: str) -> str:
    root = lxml.html.fromstring(f"<div>{MarkdownIt('commonmark').render(markdown_source)}</div>")
    return " ".join(root.text_content().split())


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs")), max_size=80))
def test_markdown_escaping_keeps_every_character_a_reader_would_copy(page_text: str) -> None:
    """A CommonMark renderer shows the escaped text as exactly the text: nothing substituted, nothing
    turned into markup."""
    source = escape(page_text, PLAIN_MARKDOWN, line_start=True)
    root = lxml.html.fromstring(f"<div>{MarkdownIt('commonmark').render(source)}</div>")
    assert " ".join(root.text_content().split()) == " ".join(page_text.split())
    assert not root.xpath("//a | //img | //em | //strong | //code | //h1 | //h2 | //li | //blockquote | //hr")


def test_diff_format_md_escapes_stars_instead_of_replacing_them() -> None:
    out = markdown.full_diff(diff_texts("Rates * apply.\n", "Rates * and fees * apply.\n"))
    assert "\\*" in out and "∗" not in out
    assert "Rates * and fees * apply." in rendered_text(out).replace("~~", "")


# --------------------------------------------------------------------------- limits


@pytest.mark.parametrize("limit", [300, 1_000, 4_000, 35_000])
@pytest.mark.parametrize("pair", [pytest.param(EN_MAY, id="en-may"), pytest.param(FR_PAUSE, id="fr-pause")])
def test_every_format_fits_its_limit_and_keeps_the_archive_link(pair: tuple[str, str], limit: int) -> None:
    story, links = story_of(real(pair))
    change = f"{ARCHIVE}/changes/fb@c2.html"
    for render, last in (
        (lambda cut: text.render_text(story, links, cut=cut), text.last_resort(story, links)),
        (lambda cut: markdown.render_markdown(story, links, cut=cut), markdown.last_resort(story, links)),
        (lambda cut: html.render_email(story, links, cut=cut), html.last_resort(story, links)),
    ):
        body = fit(story, render, lambda b: len(b) <= limit, last_resort=last)
        assert len(body) <= limit
        assert change in body, "the archive link survives the cut"
        if body.lstrip().startswith("<!DOCTYPE"):
            assert body.rstrip().endswith("</html>") and unclosed(body) == []


@pytest.mark.parametrize("share", [0.2, 0.5, 0.9])
def test_fitting_renders_each_cut_once_and_returns_the_longest_that_fits(share: float) -> None:
    """The search probes cuts from the shortest up: none is rendered twice (the answer is a probe), and
    the body returned is the longest cut that fits, found by rendering every cut in turn."""
    story, links = story_of(real(EN_MAY))
    limit = int(len(html.render_fragment(story, links)) * share)
    rendered: list[Cut | None] = []

    def render(cut: Cut | None) -> str:
        rendered.append(cut)
        return html.render_fragment(story, links, cut=cut)

    body = fit(story, render, lambda b: len(b) <= limit, last_resort="-")
    assert len(rendered) == len(set(map(repr, rendered))), "a cut rendered twice"
    assert len(rendered) < 20
    every = [html.render_fragment(story, links, cut=c) for c in compose_cuts(story)]
    assert body == [b for b in every if len(b) <= limit][-1]


def compose_cuts(story: Story) -> list[Cut]:
    """Every cut, shortest first: n whole passages, then n whole passages and k lines of the next."""
    found = []
    for index, passage in enumerate(story.passages):
        found.append(Cut(index))
        found.extend(Cut(index, n) for n in range(1, len(passage.lines)))
    return found


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


def unclosed(markup: str) -> list[str]:
    parser = _Balance()
    parser.feed(markup)
    return parser.stack


# --------------------------------------------------------------------------- the whole diff (`diff A B`)


def test_full_diffs_mark_words_under_their_sections() -> None:
    before = "# Policy\n\n## Basis\n\nWe rely on consent to train AI.\n"
    after = "# Policy\n\n## Basis\n\nWe rely on legitimate interests to train AI.\n"
    diff = diff_texts(before, after)
    assert text.full_diff(diff) == (
        "=== Policy › Basis ===\nWe rely on [-consent-]{+legitimate interests+} to train AI.\n"
    )
    assert "> We rely on ~~consent~~ **legitimate interests** to train AI." in markdown.full_diff(diff)
    page = lxml.html.fromstring(html.full_diff(diff))
    assert page.findtext(".//h3") == "Policy › Basis"
    assert [e.text_content() for e in page.iter("ins")] == ["legitimate interests"]
    for render in (text.full_diff, markdown.full_diff, html.full_diff):
        assert "No differences." in render(diff_texts("Same.\n", "Same.\n"))

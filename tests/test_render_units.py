"""Render units written in Python instead of Jinja2 macros (speed, issue 14) print exactly what the macros
printed: each unit is compared, byte for byte, with the macro it replaced (its source kept under
tests/fixtures/reference/, rendered by an overlay of the same environment), on real corpus changes and on
hostile page text, in both environments (mail: inert; archive: visible), with and without e-mail CSS, for
every cut compose.fit can choose."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2 import ChoiceLoader, DictLoader, Environment
from markupsafe import Markup, escape
from test_render import EN_MAY, FR_PAUSE, FR_REWRITE, compose_cuts, real
from test_sections import canonical

from support.messages import change_message
from watchdog.diff import diff_texts
from watchdog.messages import Classification
from watchdog.publish.site import (
    Part,
    fact,
    facts_html,
    full_text_html,
    hunk_views,
    inline_diff,
    side_by_side,
    side_by_side_rows,
    text_blocks,
)
from watchdog.render import compose as composing
from watchdog.render import html
from watchdog.render.clean import display_line, inert
from watchdog.render.compose import Cut, Links, Story, compose, fit, shown

REFERENCE = Path(__file__).parent / "fixtures" / "reference"
# render_fragment's template before it became Python (watchdog/render/html.py at 8a51295)
OLD_FRAGMENT = (
    '{% from "_change.html" import passages %}<div class="pw-change">'
    "{{ passages(story, shown, links, {}, pointer) }}"
    '{% if href %}<p><a href="{{ href | url }}">The change in the archive</a></p>{% endif %}</div>'
)
HOSTILE = (
    "<script>alert(1)</script> & \"quoted\" 'single'",
    "bidi \u202eevil\u202c and zero\u200bwidth \ufeff",
    "controls \x1b[31m \x00 \x7f \x85 end",
    '" onmouseover="alert(1)',
)
LINKS = (
    Links(),
    Links(change="../changes/x@c2.html", after="../versions/x@v2.html", before="../versions/x@v1.html"),
    Links(change="javascript:alert(1)", after="data:text/html,x", before="https://e.org/v1 x"),
)


@cache
def reference(env: Environment) -> Environment:
    """The same environment (its finalize, filters, options) with the old `_change.html` macros."""
    source = (REFERENCE / "_change.html").read_text("utf-8")
    return env.overlay(loader=ChoiceLoader([DictLoader({"_change.html": source}), env.loader]))  # type: ignore[list-item]


def old(env: Environment, source: str, **values: Any) -> str:
    return (
        reference(env)
        .from_string('{% from "_change.html" import passage, passages %}' + source)
        .render(**values)
    )


def new(env: Environment, source: str, **values: Any) -> str:
    return env.from_string(source).render(**values)


def hostile_story() -> tuple[Story, Links]:
    before = "# Policy\n\n## Rights\n\nYou can object.\n\nKept as it is.\n"
    after = "# Policy\n\n## Rights " + HOSTILE[1] + "\n\n" + "\n\n".join(HOSTILE) + "\n\nKept as it is.\n"
    message = change_message(before, after, name=HOSTILE[0])
    return compose(message), Links.published(message.archive_url, message)


def stories() -> list[tuple[str, Story, Links]]:
    found = [("hostile", *hostile_story())]
    for name, pair in (("en-may", EN_MAY), ("fr-pause", FR_PAUSE), ("fr-rewrite", FR_REWRITE)):
        message = real(pair)
        found.append((name, compose(message), Links.published(message.archive_url, message)))
    return found


def some_cuts(story: Story) -> list[Cut | None]:
    every = compose_cuts(story)
    return [None, *every[:: max(1, len(every) // 12)], *every[-2:]]


@pytest.mark.parametrize(
    ("name", "story", "published"), stories(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_the_passages_are_what_the_macros_printed(name: str, story: Story, published: Links) -> None:
    assert story.passages, name
    for env in (html.mail(), html.archive()):
        for css in ({}, html.EMAIL_CSS):
            for links in (published, *LINKS):
                for cut in some_cuts(story):
                    values = {
                        "story": story,
                        "shown": shown(story, cut),
                        "links": links,
                        "css": css,
                        "pointer": html.pointer(story, links, cut),
                    }
                    source = "{{ passages(story, shown, links, css, pointer) }}"
                    assert new(env, source, **values) == old(env, source, **values)
                site = (
                    "{% for p in story.passages %}{{ passage(p, links, {}, '#full-' ~ p.index) }}{% endfor %}"
                )
                assert new(env, site, story=story, links=links) == old(env, site, story=story, links=links)


@pytest.mark.parametrize(
    ("name", "story", "published"), stories(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_a_feed_entry_fragment_and_its_fitting_are_what_the_template_gave(
    name: str, story: Story, published: Links
) -> None:
    for transform, env in ((html.inert, html.mail()), (html.visible, html.archive())):
        for links in (published, *LINKS):
            render = html.fragments(story, links, page_text=transform)

            def before(cut: Cut | None, links: Links = links, env: Environment = env) -> str:
                pointer = html.pointer(story, links, cut)
                values = {"story": story, "shown": shown(story, cut), "links": links, "pointer": pointer}
                return reference(env).from_string(OLD_FRAGMENT).render(href=links.change, **values)

            for cut in some_cuts(story):
                assert (
                    render(cut)
                    == before(cut)
                    == html.render_fragment(story, links, cut=cut, page_text=transform)
                )
            whole = len(before(None))
            for limit in (whole, whole // 3, 900):
                fits = lambda body, limit=limit: len(body) <= limit  # noqa: E731
                assert fit(story, render, fits, last_resort="x") == fit(
                    story, before, fits, last_resort="x"
                ), name


def test_the_e_mail_is_what_the_macros_printed() -> None:
    story, links = hostile_story()
    template = (Path(html.__file__).parent / "templates" / "email.html").read_text("utf-8")
    env = html.mail()
    values = {
        "story": story,
        "shown": story.passages,
        "links": links,
        "css": html.EMAIL_CSS,
        "pointer": None,
        "page_url": story.message.url,
        "change_url": links.change,
        "detected": story.message.detected_at.strftime("%Y-%m-%d %H:%M UTC"),
    }
    assert html.render_email(story, links) == new(env, template, **values)
    assert new(env, template, **values) == reference(env).from_string(
        '{%- from "_change.html" import passages -%}\n' + template
    ).render(**values)


# --------------------------------------------------------------------------- a version page's full text

TABLE = (  # a table: its header row, a row-group title, rows; items; hostile text everywhere
    "# Terms <b>bold</b>\n\n## Data \u202eflipped\u202c\n\n## Kind <b> | Use \u202ex\n"
    '| public \x00posts | train "AI" & more |\n### Group <row>\n| a | b |\n\n- an item \u200b\n'
    "  - a nested item\n\nA paragraph <script>x</script>.\n"
)
MOMENTS = (None, datetime(2024, 6, 26, 8, 0, tzinfo=UTC), datetime(2025, 5, 28, 0, 30, 56, tzinfo=UTC))


def old_full_text(blocks: list[dict[str, Any]]) -> str:
    """The template and the `since` macro the full text was rendered with before (8a51295)."""
    env = html.archive()
    names = ("_full_text.html", "_since.html", "_when.html")
    templates = {name: (REFERENCE / name).read_text("utf-8") for name in names}
    ref = env.overlay(loader=ChoiceLoader([DictLoader(templates), env.loader]))  # type: ignore[list-item]
    since = ref.get_template("_since.html").module.since  # type: ignore[attr-defined]
    for block in blocks:
        block["since_mark"] = Markup(since({"since": block.get("since")}))
    return ref.get_template("_full_text.html").render(blocks=blocks)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(TABLE, id="hostile-tables-items"),
        pytest.param(canonical(EN_MAY[1]), id="en-may-2025"),
        pytest.param(canonical(FR_PAUSE[1]), id="fr-pause-2024"),
    ],
)
def test_a_full_text_is_what_its_template_printed(text: str) -> None:
    blocks = text_blocks(text)
    assert {b["kind"] for b in blocks} >= {"heading", "text"}
    for number, block in enumerate(blocks):  # since-dates as the sentence index gives them, some None
        block["since"] = MOMENTS[number % len(MOMENTS)]
    assert full_text_html(copy.deepcopy(blocks)) == old_full_text(copy.deepcopy(blocks))


# --------------------------------------------------------------------------- the full diff of a change page


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(canonical(EN_MAY[0]), canonical(EN_MAY[1]), id="en-may-2025"),
        pytest.param(canonical(FR_PAUSE[0]), canonical(FR_PAUSE[1]), id="fr-pause-2024"),
        pytest.param("# P\n\nKept.\n", TABLE, id="hostile"),
        pytest.param("# P\n\nKept.\n", "# P\n\nKept.\n", id="no-difference"),
    ],
)
def test_the_full_diff_is_what_its_macros_printed(before: str, after: str) -> None:
    views = hunk_views(diff_texts(before, after))
    env = html.archive()
    ref = env.overlay(  # type: ignore[list-item]
        loader=ChoiceLoader(
            [DictLoader({"_diff.html": (REFERENCE / "_diff.html").read_text("utf-8")}), env.loader]
        )
    )
    labels = ("Before (x@v1)", "After <b>\u202e</b>")
    source = (
        '{% from "_diff.html" import inline_diff, side_by_side %}'
        "{{ inline_diff(h) }}|{{ side_by_side(h, b, a) }}"
    )
    expected = ref.from_string(source).render(h=views, b=labels[0], a=labels[1])
    assert f"{inline_diff(views)}|{side_by_side(side_by_side_rows(views), *labels)}" == expected


# --------------------------------------------------------------------------- visible(), with its fast path

SPECIAL = (
    "\x00\x07\x1b\x7f\x85\x9f\ud800\udfff\ufffe\uffff\u061c\u180e\u200b\u200f\u202a\u202e\u2060\u2069\ufeff"
)


def visible_as_defined(text: str) -> str:
    """html.visible before its one-scan fast path (8a51295): the definition."""
    if re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]", text):
        text = text.translate(
            {c: 0x2400 + c for c in range(0x20) if c not in (0x09, 0x0A, 0x0D)}
            | {0x7F: 0x2421}
            | {c: 0xFFFD for c in range(0x80, 0xA0)}
        )
        text = re.sub("[\ud800-\udfff\ufffe\uffff]", "\ufffd", text)
    return re.sub(
        "[\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]",
        lambda m: f"[U+{ord(m.group()):04X}]",
        text,
    )


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab \t\n\r<&é€" + SPECIAL) | st.characters(), max_size=40))
def test_visible_is_its_definition(text: str) -> None:
    assert html.visible(text) == visible_as_defined(text)


@pytest.mark.parametrize("text", [*HOSTILE, "plain", "", "two\nlines"])
def test_printed_is_what_the_archive_template_prints(text: str) -> None:
    """A feed entry's last-resort paragraph is printed in Python (publish/feeds.py), not compiled."""
    template = html.archive().from_string("<p>{{ text }}</p>")
    assert f"<p>{html.printed(text, html.visible)}</p>" == template.render(text=text)


def test_no_character_shown_specially_is_printable() -> None:
    """visible() returns a printable text (str.isprintable) as it is: that holds only while no character
    it shows specially is printable in this Python's Unicode database."""
    printable = "".join(c for c in map(chr, range(0x110000)) if c.isprintable())
    assert len(printable) > 100_000
    assert visible_as_defined(printable) == printable
    assert visible_as_defined(SPECIAL) != SPECIAL


MARKER = re.compile(r"^(?P<indent>[ \t]*)(?:(?P<heading>#{1,6})|(?P<item>[-*+•]|\d{1,3}[.)]))[ \t]+")


def display_line_as_defined(line: str) -> tuple[str, str, int, int]:
    """clean.display_line before its first-character fast path (70a71c9): the definition."""
    marker = MARKER.match(line)
    if marker is None:
        return ("row" if " | " in line else "text", line.strip(), 0, len(line) - len(line.lstrip()))
    if marker.group("heading"):
        return ("heading", line[marker.end() :], len(marker.group("heading")), marker.end())
    depth = len(marker.group("indent").expandtabs(2)) // 2 + 1
    return ("item", line[marker.end() :], depth, marker.end())


@settings(max_examples=600, deadline=None)
@given(st.text(alphabet=st.sampled_from(" \t#-*+•1.)a|\u0663\u00a0") | st.characters(), max_size=12))
def test_a_display_line_is_its_definition(line: str) -> None:
    line = line.replace("\n", " ")  # one line of a canonical text
    assert tuple(display_line(line)) == display_line_as_defined(line)


def slice_runs_as_defined(runs: list[composing.Run], start: int, end: int) -> tuple[composing.Run, ...]:
    """compose._slice_runs before it bisected to its first run (70a71c9): the definition."""
    out, pos = [], 0
    for run in runs:
        lo, hi = max(start, pos), min(end, pos + len(run.text))
        if lo < hi:
            out.append(composing.Run(run.text[lo - pos : hi - pos], run.changed))
        pos += len(run.text)
    return tuple(out)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.builds(composing.Run, st.text("ab ", max_size=4), st.booleans()), max_size=8),
    st.integers(-2, 30),
    st.integers(-2, 30),
)
def test_a_slice_of_runs_is_its_definition(runs: list[composing.Run], start: int, end: int) -> None:
    assert composing._slice_runs(runs, start, end) == slice_runs_as_defined(runs, start, end)


# --------------------------------------------------------------------------- stories told again


def test_a_story_told_again_from_the_kept_hunks_is_the_one_told_afresh() -> None:
    """compose keeps each hunk's shown form for the process (the change page, the feeds and the compare
    page tell the story of the same diff again, with other topics): a story told from kept hunks equals
    the one told with nothing kept."""
    message = real(EN_MAY)
    compared = replace(message, kind="compare", classification=Classification((), (), "none"), topics=())
    composing._shown_hunk.cache_clear()
    fresh = [compose(m) for m in (compared, message)]
    composing._shown_hunk.cache_clear()
    again = [compose(m) for m in (message, compared)][::-1]  # the second from the first's kept hunks
    assert again == fresh and compose(message) == fresh[1]
    assert [p.topics for p in fresh[0].passages] != [p.topics for p in fresh[1].passages]


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from("&<>'\"a;#1 é\u202e") | st.characters(), max_size=30))
def test_escaped_is_markupsafes_escape(text: str) -> None:
    assert html.escaped(text) == str(escape(text))


# --------------------------------------------------------------------------- a page's facts


def test_the_facts_are_what_their_macros_printed() -> None:
    hostile = '<b>x</b> & "y" \u202e\x1b'
    items = [
        fact("Page", Part("Meta <Privacy>", href="../targets/x.html")),
        fact("Watched URL", Part("https://e.org/?a=1&b=2", href="https://e.org/?a=1&b=2", external=True)),
        fact("Bad link", Part(hostile, href="javascript:alert(1)", external=True)),
        fact("Detected", Part(time=MOMENTS[1])),
        fact("Versions", Part("x@v1", href="../versions/x@v1.html"), " → ", Part("x@v2", href="x@v2.html")),
        fact("Record hash", Part("ab" * 32, code=True)),
        fact("Previous record hash", Part("", code=True)),
        fact("Commit", Part("0123abc", code=True), f" {hostile}"),
        fact("Linked code", Part("deadbeef", href="../raw/x.gz", code=True)),
        fact(hostile, hostile, ""),
        fact("Nothing"),
    ]
    env = html.archive()
    templates = {name: (REFERENCE / name).read_text("utf-8") for name in ("_facts.html", "_when.html")}
    ref = env.overlay(loader=ChoiceLoader([DictLoader(templates), env.loader]))  # type: ignore[list-item]
    expected = ref.from_string('{% from "_facts.html" import facts %}{{ facts(items) }}').render(items=items)
    assert str(facts_html(items)) == expected
    assert (
        str(facts_html([]))
        == ref.from_string('{% from "_facts.html" import facts %}{{ facts([]) }}').render()
    )


@pytest.mark.parametrize("transform", [html.visible, inert])
def test_a_moment_is_what_the_when_macro_printed(transform: Callable[[str], str]) -> None:
    """`when`, a global of the site's templates and the Python units' time element, against the macro it
    replaced (tests/fixtures/reference/_when.html), in both environments."""
    env = html.archive() if transform is html.visible else html.mail()
    ref = env.overlay(  # type: ignore[list-item]
        loader=ChoiceLoader(
            [DictLoader({"_when.html": (REFERENCE / "_when.html").read_text("utf-8")}), env.loader]
        )
    )
    for moment in MOMENTS:
        expected = ref.from_string('{% from "_when.html" import when %}{{ when(m) }}').render(m=moment)
        assert str(html.when_html(moment, transform)) == expected
        assert env.from_string("{{ when(m) }}").render(m=moment) == expected

"""Render units written in Python instead of Jinja2 macros (speed, issue 14) print exactly what the macros
printed: each unit is compared, byte for byte, with the macro it replaced (its source kept under
tests/fixtures/reference/, rendered by an overlay of the same environment), on real corpus changes and on
hostile page text, in both environments (mail: inert; archive: visible), with and without e-mail CSS, for
every cut compose.fit can choose."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jinja2 import ChoiceLoader, DictLoader, Environment
from test_render import EN_MAY, FR_PAUSE, FR_REWRITE, compose_cuts, real

from support.messages import change_message
from watchdog.render import html
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

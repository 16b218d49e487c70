"""Render, format 3: HTML, from Jinja2 templates (watchdog/render/templates/) with autoescaping: the e-mail
body, the feed entries' content, the archive's pages (publish/site.py) and `diff --format html`.

    Story / archive records -> **html** (ChangeHtml: a change's passages; templates: email.html, site/*.html)

Two environments share the templates and differ in what they do with invisible characters in page text
(their `finalize`, applied to every value a template prints, before it is escaped):
- `mail()`: made inert (clean.inert: controls, bidi overrides and zero-width characters removed), for
  e-mail and feeds, where a reader needs the words;
- `archive()`: made visible (control pictures ␀ ␛, "[U+202E]"), for the archive's pages, which are
  evidence: nothing in the recorded text may vanish or reorder what is shown.
Links are made only from http(s) URLs and our own relative paths (`url` filter): "javascript:", "data:"
or a page-supplied string never becomes an href.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape

from watchdog.diff import DELETE, EQUAL, INSERT
from watchdog.messages import DigestMessage, TextDiff
from watchdog.models import iso
from watchdog.patterns import lazy
from watchdog.render.clean import inert, readable
from watchdog.render.compose import (
    Cut,
    Line,
    Links,
    Passage,
    Story,
    digest_groups,
    digest_title,
    hidden,
    per_passage,
    shown,
)
from watchdog.render.text import archive_reference, safe_url, where

if TYPE_CHECKING:
    from jinja2 import BytecodeCache, Environment, Template

log = logging.getLogger(__name__)

# Inline styles for e-mail clients (most ignore <style> blocks); the site styles by class instead.
EMAIL_CSS = {
    "passage": "margin:14px 0;padding:8px 12px;border-left:3px solid #8a8a8a;background:#fafafa",
    "where": "margin:0 0 6px;font-size:14px",
    "tags": "color:#555;font-size:12px",
    "summary": "margin:0 0 6px;color:#555;font-style:italic",
    "old": "margin:4px 0;color:#5c1d1d",
    "new": "margin:4px 0;color:#123f18",
    "del": "background:#ffe0e0;color:#8a1c1c;text-decoration:line-through",
    "ins": "background:#dcf5dc;color:#14601d;text-decoration:none;font-weight:600",
    "del_whole": "background:#fff0f0;color:#8a1c1c;text-decoration:line-through",
    "ins_whole": "background:#eefaee;color:#14601d;text-decoration:none",
    "pointer": "margin:14px 0;font-weight:600",
    "folded": "margin:14px 0;color:#555",
}
_RELATIVE = lazy(r"(?:\.\./)*[A-Za-z0-9_][A-Za-z0-9._~/%@-]*(?:#[A-Za-z0-9_-]*)?|#[A-Za-z0-9_-]+")
_INVISIBLE_SHOWN = lazy("[\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
_CONTROL_PICTURES = {c: 0x2400 + c for c in range(0x20) if c not in (0x09, 0x0A, 0x0D)} | {0x7F: 0x2421}
_C1 = {c: 0xFFFD for c in range(0x80, 0xA0)}
_CONTROLS = lazy("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
# either of the two above: one scan finds the usual text with neither (publishing calls visible() for
# every value a page prints, ~50,000 times in a changed cycle)
_SHOWN_SPECIALLY = lazy(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff"
    "\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]"
)


def visible(text: str) -> str:
    """Text for the archive's pages: control characters as symbols (␀, ␛), bidi and zero-width
    characters as "[U+202E]": shown, never acted on, never dropped. Valid in XML and HTML."""
    # every character shown specially is a control, a format character, a surrogate, a noncharacter or
    # unassigned: none is printable (tests/test_render_units.py), so a printable text (most; a C-level
    # scan) needs no pattern at all
    if text.isprintable() or not _SHOWN_SPECIALLY.search(text):
        return text
    if _CONTROLS.search(text):
        text = text.translate(_CONTROL_PICTURES | _C1)
        text = re.sub("[\ud800-\udfff\ufffe\uffff]", "\ufffd", text)
    return _INVISIBLE_SHOWN.sub(lambda m: f"[U+{ord(m.group()):04X}]", text)


def link_target(url: object) -> str | None:
    """An href we may write: an http(s) URL, or a relative path / fragment of our own archive."""
    if not isinstance(url, str) or not url:
        return None
    return safe_url(url) or (url if _RELATIVE.fullmatch(url) else None)


Transform = Callable[[str], str]  # what page text goes through before it is escaped: inert or visible


def _finalizer(transform: Transform) -> Callable[[Any], Any]:
    def finalize(value: Any) -> Any:
        if isinstance(value, str) and not isinstance(value, Markup):
            return transform(value)
        return value

    return finalize


def _environment(transform: Transform) -> Environment:
    # lazy: importing Jinja2 costs ~40 ms, and only a change, a publication or an HTML diff renders HTML
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(
        loader=PackageLoader("watchdog.render", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        finalize=_finalizer(transform),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["url"] = link_target
    env.filters["where"] = where
    env.filters["iso"] = iso
    env.filters["when"] = when_text
    unit = ChangeHtml(transform)
    env.globals.update(
        passage=unit.passage, passages=unit.passages, when=partial(when_html, transform=transform)
    )
    return env


@cache
def mail() -> Environment:
    return _environment(inert)


@cache
def archive() -> Environment:
    return _environment(visible)


def keep_compiled(directory: Path) -> None:
    """Keep the templates' compiled code under `directory` (one folder per environment): Jinja2 compiles
    every template a process loads from its source (~5 ms each; a changed cycle loads a dozen), and
    `check` is a new process every cycle. Like the diff cache, a cache on this machine: an entry is keyed
    by the template's name, its source (a checksum Jinja2 verifies), Jinja2's and Python's versions and
    the environment's options; one that cannot be read or written only costs the compilation."""
    for name, env in (("mail", mail()), ("archive", archive())):
        env.bytecode_cache = _compiled_templates(directory / name, _options_key(env))


@cache
def _compiled_templates(directory: Path, salt: str) -> BytecodeCache:
    from jinja2 import FileSystemBytecodeCache
    from jinja2.bccache import Bucket

    class Kept(FileSystemBytecodeCache):
        def get_cache_key(self, name: str, filename: str | None = None) -> str:
            return hashlib.sha256(f"{salt}\0{name}\0{filename}".encode()).hexdigest()

        def load_bytecode(self, bucket: Bucket) -> None:
            try:
                super().load_bytecode(bucket)
            except (OSError, EOFError, ValueError, TypeError, pickle.UnpicklingError) as exc:
                bucket.reset()  # unreadable or damaged: compiled again
                log.debug("cannot read a compiled template under %s: %s", directory, exc)

        def dump_bytecode(self, bucket: Bucket) -> None:
            try:
                directory.mkdir(parents=True, exist_ok=True)
                super().dump_bytecode(bucket)
            except OSError as exc:  # a read-only or full disk must not stop rendering
                log.debug("cannot keep a compiled template under %s: %s", directory, exc)

    return Kept(str(directory))


def _options_key(env: Environment) -> str:
    import jinja2

    options = (
        jinja2.__version__,
        env.trim_blocks,
        env.lstrip_blocks,
        env.keep_trailing_newline,
        env.autoescape,
    )
    return repr((options, sorted(env.filters), env.finalize is not None))


@cache
def inline(env: Environment, source: str) -> Template:
    """`env.from_string(source)`, compiled once per process: Jinja2 compiles a string template on every
    from_string call (~1.5 ms), and fitting a feed entry or a message renders one many times."""
    return env.from_string(source)


def printed(value: object, transform: Transform) -> str:
    """What `{{ value }}` prints in our environments (finalize, then autoescape), for the render units
    written in Python: page text transformed then escaped, Markup as is, other values escaped."""
    if type(value) is str or (isinstance(value, str) and not isinstance(value, Markup)):  # plain first
        return escaped(transform(value))
    if type(value) is int:  # an index, a level: what escape() gives, without building a Markup
        return str(value)
    return escape(value)


_ENTITIES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("'", "&#39;"), ('"', "&#34;"))  # & first


def escaped(text: str) -> str:
    """markupsafe.escape(text) as a plain str: the same entities. A page prints ~50,000 values; most hold
    none of the five characters, and a C-level `in` test each is cheaper than building a Markup."""
    for char, entity in _ENTITIES:
        if char in text:
            text = text.replace(char, entity)
    return text


def when_text(moment: datetime | None) -> str:
    """How the archive writes a moment: "2026-12-06 19:20 UTC" ("—" for none)."""
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "—"


def when_html(moment: datetime | None, transform: Transform = visible) -> Markup:
    """A moment as a <time> element ("—" for none): the site's templates (the `when` global) and the
    pages' parts written in Python (publish/site.py) alike."""
    if not moment:
        return Markup("—")
    return Markup(  # noqa: S704 (both values escaped by printed)
        f'<time datetime="{printed(iso(moment), transform)}">{printed(when_text(moment), transform)}</time>'
    )


# --------------------------------------------------------------------------- the passages of a change


# A line's HTML without CSS (the site's pages, the feed entries) by the line's identity and the transform:
# compose keeps each hunk's worked-out lines for the process (compose._shown_hunk), so the change page,
# the compare page of the same two versions and the feed entries print the same Line objects; the bodies
# of one story's cuts (compose.fit) share theirs too. A Line is frozen: its HTML cannot change. An entry
# holds its line and HTML, ~0.7 KB on the corpus changes of tests/test_published_bytes.py: 4,000 (~3 MB,
# the daemon runs for months) hold the ~1,200 lines of bench_check's changed cycle (12 whole policies)
# three times over.
LINES_KEPT = 4_000
KEPT_LINES: dict[int, tuple[Line, Transform, str]] = {}


@dataclass(frozen=True, slots=True)
class ChangeHtml:
    """The passages of a change in HTML: one render unit for the e-mail, the feed entries and the site
    (their templates call `passage` and `passages`, environment globals). Written in Python, not as
    Jinja2 macros: a change page calls them for thousands of lines and runs, and a macro call costs
    ~10 µs of Jinja2 bookkeeping each (a changed cycle spent ~0.3 s there). The output is what the
    macros printed, byte for byte (tests/test_render_units.py renders both): every value as `{{ value }}`
    prints it in our environments (`out`), `css` an inline style per role (e-mail) or empty (the site,
    whose CSP forbids style attributes). A line printed without CSS is kept (`KEPT_LINES`) for the process."""

    transform: Transform  # the environment's: inert (mail) or visible (archive)

    def out(self, value: object) -> str:
        return printed(value, self.transform)

    def style(self, css: Mapping[str, str], role: str) -> str:
        return f' style="{self.out(css[role])}"' if css.get(role) else ""

    def line(self, line: Line, css: Mapping[str, str]) -> str:
        """`<p class="old">− old <del>words</del></p>` / `<p class="new">+ new <ins>words</ins></p>`."""
        kept = KEPT_LINES.get(id(line)) if not css else None
        if kept is not None and kept[0] is line and kept[1] is self.transform:
            return kept[2]
        old = line.sign == "-"
        tag, side = ("del", "old") if old else ("ins", "new")
        opening = f"<{tag}{self.style(css, tag + '_whole' if len(line.runs) == 1 else tag)}>"
        runs = "".join(
            f"{opening}{self.out(run.text)}</{tag}>" if run.changed else self.out(run.text)
            for run in line.runs
        )
        html = f'<p class="{side}"{self.style(css, side)}>{self.out("−" if old else "+")} {runs}</p>'
        if not css:
            if len(KEPT_LINES) >= LINES_KEPT:  # the daemon runs for months: start again rather than grow
                KEPT_LINES.clear()
            KEPT_LINES[id(line)] = (line, self.transform, html)  # kept with the line: its id stays its own
        return html

    def passage(
        self, p: Passage, links: Links, css: Mapping[str, str], full_text: str | None = None
    ) -> Markup:
        """A passage: its verb and section (linked to the version page), its topics, a huge hunk's
        summary (linked to its full text), its lines."""
        href = link_target(links.section(p))
        section = self.out(where(p))  # Markup: only f-strings join it (Markup + str would escape the str)
        place = f'<a href="{self.out(href)}">{section}</a>' if href else f"{section}"
        if p.topics:
            place += f' <span class="tags"{self.style(css, "tags")}>{self.out(", ".join(p.topics))}</span>'
        summary = ""
        if p.summary:
            more = link_target(full_text or links.full_text(p))
            link = f' · <a href="{self.out(more)}">full text</a>' if more else ""
            summary = f'<p class="summary"{self.style(css, "summary")}>{self.out(p.summary)}{link}</p>\n'
        lines = "".join(f"{self.line(line, css)}\n" for line in p.lines)
        verb = f"<strong>{self.out(p.verb)}</strong>"
        return Markup(  # noqa: S704 (every page-derived value went through self.out)
            f'<section class="passage" id="hunk-{self.out(p.index)}"{self.style(css, "passage")}>\n'
            f'<p class="where"{self.style(css, "where")}>{verb} under {place}</p>\n{summary}{lines}</section>'
        )

    def passages(
        self,
        story: Story,
        shown: Sequence[Passage],
        links: Links,
        css: Mapping[str, str],
        pointer: Pointer | None = None,
    ) -> Markup:
        """The passages shown, then the pointer to the rest (a shortened body) or the folded edits."""
        body = "".join(f"{self.passage(p, links, css)}\n" for p in shown) + self.ending(story, css, pointer)
        return Markup(body)  # noqa: S704 (every page-derived value went through self.out)

    def ending(self, story: Story, css: Mapping[str, str], pointer: Pointer | None) -> str:
        """What follows the passages: the pointer to the rest (a shortened body) or the folded edits."""
        if pointer:
            link = (
                f' <a href="{self.out(pointer.href)}">{self.out(pointer.label)}</a>' if pointer.href else ""
            )
            return f'<p class="pointer"{self.style(css, "pointer")}>{self.out(pointer.text)}{link}</p>\n'
        if story.folded_line:
            return f'<p class="folded"{self.style(css, "folded")}>{self.out(story.folded_line)}</p>\n'
        return ""


@dataclass(frozen=True, slots=True)
class Pointer:
    """The line ending a shortened body."""

    text: str
    href: str | None
    label: str


def pointer(story: Story, links: Links, cut: Cut | None) -> Pointer | None:
    if cut is None:
        return None
    left = hidden(story, cut)
    what = f"… {left} more passage{'s' if left != 1 else ''} in the archive:" if left else "… the rest:"
    href = safe_url(links.change)
    if href:
        return Pointer(what, href, "full diff")
    return Pointer(f"{what} {archive_reference(story, links)}", None, "")


def render_email(story: Story, links: Links, *, cut: Cut | None = None) -> str:
    """A whole HTML document for e-mail: the headline, the page and archive links in plain sight (the
    plain-text part apprise derives from it keeps them), the passages, the change's ids."""
    return (
        mail()
        .get_template("email.html")
        .render(
            story=story,
            shown=shown(story, cut),
            links=links,
            css=EMAIL_CSS,
            pointer=pointer(story, links, cut),
            page_url=safe_url(story.message.url),
            change_url=safe_url(links.change),
            detected=story.message.detected_at.strftime("%Y-%m-%d %H:%M UTC"),
        )
    )


def render_fragment(
    story: Story, links: Links, *, cut: Cut | None = None, page_text: Transform = inert
) -> str:
    """The passages alone (a feed entry's content), without CSS (feed readers drop it), then a link to
    the change page: the full diff is there. `page_text`: what page text goes through (inert; the
    archive's feeds show invisible characters instead: visible)."""
    return fragments(story, links, page_text=page_text)(cut)


def fragments(story: Story, links: Links, *, page_text: Transform = inert) -> Callable[[Cut | None], str]:
    """render_fragment of one story for any cut: compose.fit renders the whole story, then probes shorter
    cuts, whose passages are the whole story's first ones; each is rendered once for all of them."""
    unit = ChangeHtml(page_text)
    href = links.change
    end = f'<p><a href="{unit.out(link_target(href))}">The change in the archive</a></p>' if href else ""
    passage = per_passage(lambda p: f"{unit.passage(p, links, {})}\n")

    def render(cut: Cut | None) -> str:
        body = "".join(passage(p) for p in shown(story, cut))
        return f'<div class="pw-change">{body}{unit.ending(story, {}, pointer(story, links, cut))}{end}</div>'

    return render


def last_resort(story: Story, links: Links) -> list[str]:
    """The smallest well-formed documents that still say what happened and where to read it."""
    href = safe_url(links.change)
    return [
        inline(mail(), _LAST_RESORT).render(story=story, href=href, headline=True),
        inline(mail(), _LAST_RESORT).render(story=story, href=href, headline=False),
    ]


_LAST_RESORT = (
    '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>policy-watchdog</title></head><body>'
    "{% if headline %}<p>{{ story.headline }}</p>{% endif %}"
    '{% if href %}<p><a href="{{ href }}">full diff</a></p>{% endif %}</body></html>\n'
)


# --------------------------------------------------------------------------- the whole diff


def full_diff(diff: TextDiff) -> str:
    """`diff --format html`: every hunk under its section, <del>/<ins> inline (a fragment)."""
    return inline(mail(), _FULL_DIFF).render(hunks=[_hunk_view(h.section, h) for h in diff.hunks])


def _hunk_view(section: tuple[str, ...], hunk: Any) -> dict[str, Any]:
    pieces = readable([(s.op, inert(s.text)) for s in hunk.segments])
    tags = {EQUAL: "", DELETE: "del", INSERT: "ins"}
    return {"where": " › ".join(section) or "top of the page", "pieces": [(tags[op], t) for op, t in pieces]}


_FULL_DIFF = """<div class="pw-diff">
{% for hunk in hunks %}<section class="hunk"><h3>{{ hunk.where }}</h3>
<p class="block" style="white-space:pre-wrap">
{%- for tag, text in hunk.pieces -%}
{% if tag %}<{{ tag }}>{{ text }}</{{ tag }}>{% else %}{{ text }}{% endif %}
{%- endfor %}</p></section>
{% else %}<p>No differences.</p>
{% endfor %}</div>
"""


def render_digest_email(message: DigestMessage, *, shown: int | None = None) -> str:
    left = len(message.items) - (len(message.items) if shown is None else shown)
    return (
        mail()
        .get_template("digest.html")
        .render(
            title=digest_title(message),
            groups=digest_groups(message, shown=shown),
            left=max(left, 0),
            archive=message.archive_url,
            period=message.period,
        )
    )

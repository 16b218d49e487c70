"""Render, format 1: plain text. For e-mail's plain part, generic webhooks (json://, ntfy...), text-only
chat services, the full-diff attachment and `diff --format text`.

    Story -> **text**

A change in text reads top-down: the headline, the page and archive links, the topics, then each passage
under its section ("Added under Legal basis › Legitimate interests"), its sentences as "- old" / "+ new"
lines, then the folded edits and the change's ids. Page text is made inert (clean.inert) and, for
services that could act on it (`guard`), broadcast mentions and chat control sequences are broken with a
zero-width space: "@everyone", "<!channel>" and "<@U123>" reach nobody.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from watchdog.diff import DELETE, EQUAL, INSERT
from watchdog.messages import DigestMessage, Hunk, StatusMessage, TextDiff
from watchdog.models import iso
from watchdog.patterns import lazy
from watchdog.render.clean import inert, one_line, readable
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

ZWSP = "\u200b"
# what a chat service or a bridge behind a generic webhook could act on in plain text
_BROADCAST = lazy(r"(?<=@)(?=(?:everyone|here|channel|all|room|group)\b)|(?<=<)(?=[!@#])", re.I)
_SAFE_URL = lazy(r"https?://[^\s<>|\"'`\x00-\x1f\x7f]+", re.IGNORECASE)

Guard = Callable[[str], str]


def no_guard(text: str) -> str:
    return text


def guard_broadcasts(text: str) -> str:
    """Break "@everyone"-style broadcasts and "<!channel>" / "<@id>" sequences with a zero-width space."""
    return _BROADCAST.sub(ZWSP, text)


def safe_url(url: str | None) -> str | None:
    """The URL when it is a plain http(s) URL (fit to be a link target), else None."""
    if url and _SAFE_URL.fullmatch(url):
        return url
    return None


def where(passage: Passage) -> str:
    return " › ".join(one_line(part) for part in passage.where) or "the top of the page"


def render_text(
    story: Story,
    links: Links,
    *,
    cut: Cut | None = None,
    head: bool = True,
    meta: bool = True,
    guard: Guard = no_guard,
    clean: Guard = one_line,
) -> str:
    """The change in plain text; `cut` shortens it (see compose.fit), `head` puts the headline first,
    `meta` the page, archive, time and topics lines before the passages and the ids after them; `clean`
    is what page text goes through (one_line: made inert; the feeds show invisible characters instead)."""
    return texts(story, links, head=head, meta=meta, guard=guard, clean=clean)(cut)


def texts(
    story: Story,
    links: Links,
    *,
    head: bool = True,
    meta: bool = True,
    guard: Guard = no_guard,
    clean: Guard = one_line,
) -> Callable[[Cut | None], str]:
    """render_text of one story for any cut: compose.fit renders the whole story, then probes shorter
    cuts, whose passages are the whole story's first ones; each is rendered once for all of them."""

    def page(text: str) -> str:
        return guard(clean(text))

    passage_lines = per_passage(lambda passage: tuple(_passage(passage, links, page)))

    def render(cut: Cut | None) -> str:
        return _render(story, links, cut, head=head, meta=meta, page=page, passage_lines=passage_lines)

    return render


def _render(
    story: Story,
    links: Links,
    cut: Cut | None,
    *,
    head: bool,
    meta: bool,
    page: Guard,
    passage_lines: Callable[[Passage], tuple[str, ...]],
) -> str:
    message = story.message
    lines = [page(story.headline)] if head else []
    if meta:
        lines.append(f"Page: {page(message.url)}")
        change_url = safe_url(links.change)
        if change_url:
            lines.append(f"Archive: {change_url}")
        lines.append(f"Detected: {iso(message.detected_at)} · {story.size}")
        topics = "; ".join(f"{page(t.title)} ({t.severity})" for t in story.topics)
        lines.append(f"Topics: {topics or 'none of the watched topics'}")
    for passage in shown(story, cut):
        lines.extend(("", *passage_lines(passage)))
    if story.folded_line and cut is None:
        lines.extend(("", story.folded_line))
    if cut is not None:
        lines.extend(("", pointer(story, links, cut)))
    if meta:
        lines.extend(("", _reference(story, page)))
    return "\n".join(lines).strip("\n") + "\n"


def _passage(passage: Passage, links: Links, page: Guard) -> Iterator[str]:
    topics = f"  [{', '.join(passage.topics)}]" if passage.topics else ""
    yield f"{passage.verb} under {page(where(passage))}{topics}"
    section = safe_url(links.section(passage))
    if section:
        yield f"  {section}"
    if passage.summary:
        yield f"  ({passage.summary}; full text: {safe_url(links.full_text(passage)) or 'in the archive'})"
    yield from (f"  {line.sign} {page(line.text)}" for line in passage.lines)


def pointer(story: Story, links: Links, cut: Cut) -> str:
    """The line that ends a shortened body: how much is left out, and where to read it all."""
    left = hidden(story, cut)
    what = f"{left} more passage{'s' if left != 1 else ''}" if left else "the rest"
    return f"… {what} in the archive: {archive_reference(story, links)}"


def archive_reference(story: Story, links: Links) -> str:
    url = safe_url(links.change)
    message = story.message
    return url or f"policy-watchdog diff {one_line(message.from_version)} {one_line(message.to_version)}"


def _reference(story: Story, page: Guard) -> str:
    message = story.message
    return f"Change {page(message.event_id)}: {page(message.from_version)} -> {page(message.to_version)}"


def last_resort(story: Story, links: Links) -> list[str]:
    """What a body too small for anything else still says: the headline and where to read it; then
    only where to read it."""
    where = archive_reference(story, links)
    return [f"{one_line(story.headline)}\n… {where}\n", f"… {where}\n"]


# --------------------------------------------------------------------------- status messages


def render_status(message: StatusMessage, *, guard: Guard = no_guard) -> tuple[str, str]:
    """(title, body) of a failure, recovery or test message; `reason` is server-derived, hence hostile."""
    name, url, reason = (guard(one_line(x)) for x in (message.target_name, message.url, message.reason))
    if message.kind == "failing":
        title = f"[{name}] can no longer read the page: {reason}"
        body = (
            f"policy-watchdog can no longer read {name} ({url}) after {message.attempts} attempts in a row: "
            f"{reason}"
        )
        if message.advice.strip():
            body += "\n\n" + "\n".join(guard(one_line(line)) for line in message.advice.splitlines())
    elif message.body:
        title, body = guard(one_line(message.title)), guard(one_line(message.body))
    elif message.kind == "recovered":
        title = f"[{name}] recovered: readable again"
        body = f"policy-watchdog can read {name} ({url}) again: {reason}."
    else:
        title = "policy-watchdog: test message"
        body = (
            f"This is a test message from policy-watchdog (`notify test`, {iso(message.at)}). Delivery works."
        )
    return title, body


# --------------------------------------------------------------------------- the whole diff


def full_diff(diff: TextDiff) -> str:
    """Every hunk, word changes marked inline in git's --word-diff=plain style ([-deleted-]{+inserted+}),
    each under its section; a block too big to word-diff shows its old lines (-) then its new ones (+).
    The e-mail attachment and `diff --format text`."""
    if not diff.hunks:
        return "No differences.\n"
    parts = []
    for hunk in diff.hunks:
        parts.append(f"=== {' › '.join(one_line(p) for p in hunk.section) or 'top of the page'} ===")
        parts.extend(_plain_block(hunk))
        parts.append("")
    return "\n".join(parts)


def _plain_block(hunk: Hunk) -> Iterator[str]:
    pieces = readable([(s.op, inert(s.text)) for s in hunk.segments])
    if not any(op == EQUAL for op, _text in pieces):
        for op, text in pieces:
            sign = "-" if op == DELETE else "+"
            yield from (f"{sign} {line}" for line in text.split("\n") if line.strip())
        return
    marks = {EQUAL: ("", ""), DELETE: ("[-", "-]"), INSERT: ("{+", "+}")}
    yield "".join(f"{marks[op][0]}{text}{marks[op][1]}" for op, text in pieces)


def line_text(line: Line) -> str:
    return one_line(line.text)


# --------------------------------------------------------------------------- digests


def render_digest(
    message: DigestMessage, *, shown: int | None = None, head: bool = True, guard: Guard = no_guard
) -> str:
    """A digest in plain text: per target, per topic, each change's headline and link."""
    lines = [guard(digest_title(message)), ""] if head else []
    for group in digest_groups(message, shown=shown):
        lines.append(f"{guard(one_line(group.target))} · {guard(one_line(group.topic or 'other changes'))}")
        for item in group.items:
            link = safe_url(item.link)
            lines.append(f"  - {guard(one_line(item.headline))}" + (f"\n    {link}" if link else ""))
        lines.append("")
    left = len(message.items) - (len(message.items) if shown is None else shown)
    if left > 0:
        where = safe_url(message.archive_url) or "policy-watchdog changes"
        lines.append(f"… {left} more change{'s' if left != 1 else ''}: {where}")
    return "\n".join(lines).strip("\n") + "\n"

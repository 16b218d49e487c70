"""Render, format 2: Markdown (CommonMark, with the dialect of each chat service) for Slack, Discord,
Mattermost, Telegram, Matrix, Microsoft Teams, Rocket.Chat... and `diff --format md`.

    Story -> **markdown** (per Dialect)

Page text is escaped, never substituted: the characters a reader would copy stay the same characters.
- Markdown syntax (`\\ ` * _ [ ] < > ~ | &`, and `# - + =` or "1." at the start of a line) gets a
  backslash, so no page text becomes a link, an image, emphasis, a heading, a list, a quote or HTML;
- with `entities` (services that also render HTML, like Microsoft Teams), `& < >` become HTML entities;
- with `mentions`, an "@" before a name gets a zero-width space, so "@everyone", "@here", "@channel",
  "@room" or "@user" in a changed sentence notify nobody (Discord's apprise plugin even turns any "@name"
  in a message into a ping, Mattermost and Matrix notify on "@channel" / "@room" in plain text);
- with `code_urls`, a URL in page text becomes a code span: shown and copyable as it is, but no link, no
  preview fetched by the service (an image URL would otherwise be loaded, a beacon).
Slack: apprise translates this CommonMark into Slack's mrkdwn (entity-escaping & < >, so "<!channel>" in
page text stays text); only its strikethrough differs (`~x~`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from watchdog.diff import DELETE, EQUAL
from watchdog.messages import DigestMessage, Hunk, StatusMessage, TextDiff
from watchdog.models import iso
from watchdog.patterns import lazy
from watchdog.render.clean import flat, inert, one_line, readable
from watchdog.render.compose import (
    Cut,
    Line,
    Links,
    Passage,
    Story,
    digest_groups,
    digest_title,
    hidden,
    shown,
)
from watchdog.render.text import ZWSP, archive_reference, render_status, safe_url, where

_SPECIAL = lazy(r"([\\`*_\[\]<>~|&])")
_LINE_START = lazy(r"^([ \t]*)([#+=-])")
_NUMBERED = lazy(r"^([ \t]*\d{1,9})([.)])")
_MENTION = lazy(r"(?<=@)(?=[\w&!#\\])")  # after escaping: "@\&123" is a role mention too
_URL = lazy(r"\b(?:https?|ftp)://[^\s<>\"'`|]*[^\s<>\"'`|.,;:!?)\]]", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Dialect:
    """What one service does with Markdown (see render/services.py)."""

    strike: str = "~~"
    entities: bool = False  # & < > as HTML entities (the service renders HTML inside Markdown)
    escape_ampersand: bool = True  # False for Slack: apprise entity-escapes "&" itself
    mentions: bool = True  # break @mentions
    code_urls: bool = True  # page URLs as code spans


COMMONMARK = Dialect()
PLAIN_MARKDOWN = Dialect(mentions=False, code_urls=False)  # `diff --format md`: a document, no chat


def escape(text: str, dialect: Dialect = COMMONMARK, *, line_start: bool = False) -> str:
    """Page text (one line) made literal for a Markdown renderer of this dialect."""
    text = flat(text)
    if not dialect.code_urls:
        return _escape_words(text, dialect, line_start)
    out: list[str] = []
    position = 0
    for url in _URL.finditer(text):
        out.append(_escape_words(text[position : url.start()], dialect, line_start and not out))
        out.append(f"`{url.group()}`")
        position = url.end()
    out.append(_escape_words(text[position:], dialect, line_start and not out))
    return "".join(out)


def _escape_words(text: str, dialect: Dialect, line_start: bool) -> str:
    if not text:
        return text

    def one(match: re.Match[str]) -> str:
        char = match.group(1)
        if dialect.entities and char in "&<>":
            return {"&": "&amp;", "<": "&lt;", ">": "&gt;"}[char]
        if char == "&" and not dialect.escape_ampersand:
            return char
        return "\\" + char

    escaped = _SPECIAL.sub(one, text)
    if line_start:  # what would start a heading, a list or a setext underline
        escaped = _NUMBERED.sub(r"\1\\\2", _LINE_START.sub(r"\1\\\2", escaped, count=1), count=1)
    return _MENTION.sub(ZWSP, escaped) if dialect.mentions else escaped


def link(url: str | None, label: str, dialect: Dialect = COMMONMARK) -> str:
    """A link of ours (config- or archive-derived URL); the label is escaped. Not http(s): no link."""
    safe = safe_url(url)
    return f"[{escape(label, dialect)}](<{safe}>)" if safe else escape(label, dialect)


def render_markdown(
    story: Story, links: Links, *, cut: Cut | None = None, head: bool = True, dialect: Dialect = COMMONMARK
) -> str:
    message = story.message
    lines = [f"**{escape(story.headline, dialect)}**", ""] if head else []
    lines.append(
        f"{link(message.url, message.target_name, dialect)} · detected {iso(message.detected_at)} · "
        f"{escape(story.size, dialect)}"
    )
    topics = " · ".join(f"{escape(t.title, dialect)} ({t.severity})" for t in story.topics)
    lines.append(f"**Topics:** {topics or 'none of the watched topics'}  ")
    for passage in shown(story, cut):
        lines.extend(("", *_passage(passage, links, dialect)))
    if story.folded_line and cut is None:
        lines.extend(("", f"_{escape(story.folded_line, dialect)}_"))
    if cut is not None:
        left = hidden(story, cut)
        what = f"{left} more passage{'s' if left != 1 else ''}" if left else "the rest"
        lines.extend(("", f"… {what}: {_archive_link(story, links, dialect)}"))
    lines.extend(("", _reference(story, links, dialect)))
    return "\n".join(lines) + "\n"


def _passage(passage: Passage, links: Links, dialect: Dialect) -> Iterator[str]:
    topics = ", ".join(f"`{t}`" for t in passage.topics)
    place = link(links.section(passage), where(passage), dialect)
    yield f"**{passage.verb}** under {place}" + (f" · {topics}" if topics else "")
    if passage.summary:
        full = link(links.full_text(passage), "full text", dialect)
        yield f"_{escape(passage.summary, dialect)}_ · {full}  "
    for line in passage.lines:
        yield "> " + _line(line, dialect) + "  "


def _line(line: Line, dialect: Dialect) -> str:
    mark = dialect.strike if line.sign == "-" else "**"
    sign = "−" if line.sign == "-" else "+"
    return f"{sign} {_marked([(run.text, mark if run.changed else '') for run in line.runs], dialect)}"


def _marked(runs: list[tuple[str, str]], dialect: Dialect) -> str:
    """A line of page-text runs, each wrapped in its mark ("" for none). A mark must hug non-space
    characters, adjacent marks need a space between them, and CommonMark ignores a mark between a letter
    and a punctuation mark ("word**(x)**"): such a run stays unmarked rather than shown with stray stars."""
    out: list[str] = []
    for index, (raw, mark) in enumerate(runs):
        text = escape(raw, dialect, line_start=index == 0)
        core = text.strip()
        if not mark or not core:
            out.append(text)
            continue
        before = runs[index - 1][0][-1:] if index else ""
        after = runs[index + 1][0][:1] if index + 1 < len(runs) else ""
        if (_punctuation(core[0]) and before.isalnum()) or (_punctuation(core[-1]) and after.isalnum()):
            out.append(text)
            continue
        lead, trail = text[: len(text) - len(text.lstrip())], text[len(text.rstrip()) :]
        if not lead and out and out[-1].endswith(("~", "*")) and runs[index - 1][1]:
            lead = " "  # "~~old~~**new**" would not render
        out.append(f"{lead}{mark}{core}{mark}{trail}")
    return "".join(out)


def _punctuation(char: str) -> bool:
    return unicodedata.category(char)[0] in "PS"


def _archive_link(story: Story, links: Links, dialect: Dialect) -> str:
    url = safe_url(links.change)
    return link(url, "full diff in the archive", dialect) if url else f"`{archive_reference(story, links)}`"


def _reference(story: Story, links: Links, dialect: Dialect) -> str:
    message = story.message
    ids = f"Change {_code(message.event_id)}: {_code(message.from_version)} → {_code(message.to_version)}"
    url = safe_url(links.change)
    return f"{ids} · {link(url, 'full diff', dialect)}" if url else ids


def _code(identifier: str) -> str:
    """An id of ours in a code span (ids are [a-z0-9-@]: nothing to escape; backticks cannot occur)."""
    return "`" + one_line(identifier).replace("`", "'") + "`"


def last_resort(story: Story, links: Links, dialect: Dialect = COMMONMARK) -> list[str]:
    where = _archive_link(story, links, dialect)
    return [f"**{escape(story.headline, dialect)}**\n\n… {where}\n", f"… {where}\n"]


def render_status_markdown(message: StatusMessage, dialect: Dialect = COMMONMARK) -> tuple[str, str]:
    """(title, body) of a failure / recovery / test message, server-derived text escaped for `dialect`."""
    title, body = render_status(message)
    return title, escape(body, dialect)


# --------------------------------------------------------------------------- the whole diff


def full_diff(diff: TextDiff, dialect: Dialect = PLAIN_MARKDOWN) -> str:
    """`diff --format md`: every hunk under its section, ~~deleted~~ and **inserted** words inline."""
    if not diff.hunks:
        return "No differences.\n"
    parts: list[str] = []
    for hunk in diff.hunks:
        section = " › ".join(one_line(p) for p in hunk.section) or "top of the page"
        parts.extend((f"**{escape(section, dialect)}**", ""))
        parts.extend(f"> {line}  " for line in _block_lines(hunk, dialect))
        parts.append("")
    return "\n".join(parts)


def _block_lines(hunk: Hunk, dialect: Dialect) -> Iterator[str]:
    """The block line by line; a change spanning lines is marked on each line (marks cannot span)."""
    marks = {EQUAL: "", DELETE: dialect.strike}
    pieces = readable([(s.op, inert(s.text)) for s in hunk.segments])
    if not any(op == EQUAL for op, _text in pieces):
        for op, text in pieces:
            sign = "−" if op == DELETE else "+"
            for whole in text.split("\n"):
                if whole.strip():
                    yield f"{sign} {_marked([(whole.strip(), marks.get(op, '**'))], dialect)}"
        return
    runs: list[tuple[str, str]] = []
    for op, text in pieces:
        for n, piece in enumerate(text.split("\n")):
            if n:
                yield _marked(runs, dialect)
                runs = []
            if piece:
                runs.append((piece, marks.get(op, "**")))
    yield _marked(runs, dialect)


# --------------------------------------------------------------------------- digests


def render_digest_markdown(
    message: DigestMessage, *, shown: int | None = None, head: bool = True, dialect: Dialect = COMMONMARK
) -> str:
    lines = [f"**{escape(digest_title(message), dialect)}**", ""] if head else []
    for group in digest_groups(message, shown=shown):
        lines.append(
            f"**{escape(group.target, dialect)}** · _{escape(group.topic or 'other changes', dialect)}_"
        )
        lines.extend(f"- {link(item.link, item.headline, dialect)}" for item in group.items)
        lines.append("")
    left = len(message.items) - (len(message.items) if shown is None else shown)
    if left > 0:
        more = f"{left} more change{'s' if left != 1 else ''}"
        lines.append(f"… {link(message.archive_url, more, dialect)}")
    return "\n".join(lines).strip("\n") + "\n"

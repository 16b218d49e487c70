"""Stage 7a, render: a detected change as plain text, Slack mrkdwn, HTML or JSON.

fetch -> extract -> validate -> store -> diff -> classify -> **render** -> notify/publish

Page text is hostile input. Every string that comes from a page is cleaned here, in every format:
control characters (C0/C1, bidi overrides, line separators) are removed; then
- HTML: html.escape (quotes included); page text never lands in an attribute or a URL;
- Slack mrkdwn: & < > become entities (so "<!channel>" or "<javascript:...|x>" stay text), the markers
  * _ ~ ` become look-alike characters, "@" becomes a full-width "＠" (no @channel), and "](" / "]:" get a
  zero-width space so no Markdown renderer sees a link;
- JSON: json.dumps.
Config-derived URLs (the page, the archive) become links only when they are http(s).

`limit` (characters) is never exceeded: text formats are cut at a line boundary and end with a pointer
to the full diff; HTML keeps whole hunks and stays well-formed.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from watchdog.diff import DELETE, EQUAL, INSERT, changed_region, pair_sentences
from watchdog.models import (
    SEVERITY_RANK,
    Classification,
    Hunk,
    TextDiff,
    Topic,
    iso,
)

SUMMARY_MAX = 200
SENTENCE_MAX = 400  # longer sentences (run-on table cells) are shown around their change only
SENTENCE_CONTEXT = 120  # characters kept on each side of the change when a sentence is clipped
SENTENCE_SHOWN = 800  # at most this much of one sentence, however much of it changed

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_MRKDWN = str.maketrans({"*": "∗", "_": "ˍ", "~": "∼", "`": "ˋ", "@": "＠"})
_MD_LINK = re.compile(r"\](?=[(:\[])")
_SAFE_URL = re.compile(r"https?://[^\s<>|\"'`\x00-\x1f\x7f]+", re.IGNORECASE)


@dataclass(frozen=True)
class ChangeView:
    """Everything an alert or an archive page shows about one change."""

    target_id: str
    target_name: str
    url: str
    change_id: str
    from_version: str
    to_version: str
    detected_at: datetime
    diff: TextDiff
    classification: Classification
    archive_url: str | None = None  # link to the change page in the archive, if published
    topics: tuple[Topic, ...] = ()  # topic definitions (titles, severities); ids are shown without them


# --------------------------------------------------------------------------- cleaning and escaping


def clean(text: str) -> str:
    """Page text without control characters; tabs become spaces, CR/LF and U+2028/9 become LF."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n")
    return _CONTROL.sub("", text.replace("\t", " "))


def clean_line(text: str) -> str:
    """clean(), on one line, spaces collapsed."""
    return " ".join(clean(text).split())


def _one_line(text: str) -> str:
    """clean(), newlines made spaces, other spacing kept (for pieces glued to their neighbours)."""
    return clean(text).replace("\n", " ")


def md_escape(text: str) -> str:
    """Page text made inert for Slack mrkdwn (and for any Markdown renderer's link syntax)."""
    escaped = clean(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_LINK.sub("]\u200b", escaped.translate(_MRKDWN))


def _html(text: str) -> str:
    return html.escape(clean(text), quote=True)


def _safe_url(url: str | None) -> str | None:
    """The URL when it is a plain http(s) URL (usable as a link target), else None."""
    if url and _SAFE_URL.fullmatch(url):
        return url
    return None


# --------------------------------------------------------------------------- one-liners


def alert_title(view: ChangeView) -> str:
    """The alert's subject: "[<target name>] <topic ids> wording changed" (no ids: no topic touched)."""
    topics = ", ".join(view.classification.topics)
    what = f"{topics} wording changed" if topics else "wording changed"
    return clean_line(f"[{view.target_name}] {what}")


def summary(view: ChangeView) -> str:
    """One line for `changes` listings, at most 200 characters."""
    topics = ", ".join(view.classification.topics) or "no watched topic"
    diff = view.diff
    head = f"{topics} · +{diff.inserted_chars}/-{diff.deleted_chars} chars in {_blocks(len(diff.hunks))}"
    quote = _first_sentence(view)
    line = f"{head} · “{quote}”" if quote else head
    return line if len(line) <= SUMMARY_MAX else line[: SUMMARY_MAX - 1].rstrip() + "…"


def _first_sentence(view: ChangeView) -> str:
    """The evidence of the most severe topic, else the first changed sentence."""
    evidence = (match.sentence for match in view.classification.matches)
    changed = (s for h in view.diff.hunks for s in (*h.sentences_after, *h.sentences_before))
    return clean_line(next(evidence, None) or next(changed, ""))


def _blocks(count: int) -> str:
    return f"{count} block" if count == 1 else f"{count} blocks"


# --------------------------------------------------------------------------- hunks as sentence pairs


@dataclass(frozen=True, slots=True)
class _Run:
    text: str
    changed: bool


@dataclass(frozen=True, slots=True)
class _Line:
    sign: Literal["-", "+"]
    runs: tuple[_Run, ...]


def _hunk_lines(hunk: Hunk) -> list[_Line]:
    """The hunk's changed sentences, old then new, each as runs of unchanged/changed text."""
    if any(s.op == EQUAL for s in hunk.segments):
        old = _sentence_runs(hunk.before, _side_runs(hunk, DELETE), hunk.sentences_before)
        new = _sentence_runs(hunk.after, _side_runs(hunk, INSERT), hunk.sentences_after)
    else:
        old, new = _paired_runs(hunk.sentences_before, hunk.sentences_after)
    return [_Line("-", _clip(r)) for r in old] + [_Line("+", _clip(r)) for r in new]


def _side_runs(hunk: Hunk, op: int) -> list[_Run]:
    return [_Run(s.text, s.op == op) for s in hunk.segments if s.op in (EQUAL, op)]


def _sentence_runs(block: str, runs: list[_Run], sentences: Sequence[str]) -> list[tuple[_Run, ...]]:
    found, cursor = [], 0
    for sentence in sentences:
        start = block.find(sentence, cursor)
        start = block.find(sentence) if start < 0 else start
        if start >= 0:  # always, as sentences are cut from the block; a guard, not a case
            cursor = start + len(sentence)
            found.append(_slice_runs(runs, start, cursor))
    return found


def _slice_runs(runs: list[_Run], start: int, end: int) -> tuple[_Run, ...]:
    out, pos = [], 0
    for run in runs:
        lo, hi = max(start, pos), min(end, pos + len(run.text))
        if lo < hi:
            out.append(_Run(run.text[lo - pos : hi - pos], run.changed))
        pos += len(run.text)
    return tuple(out)


def _paired_runs(
    old: Sequence[str], new: Sequence[str]
) -> tuple[list[tuple[_Run, ...]], list[tuple[_Run, ...]]]:
    """No word diff (new paragraph, or a block over the size cap): the whole sentence is the change,
    except in a long sentence found in both versions, where only what they do not share is."""
    old_runs: list[tuple[_Run, ...]] = [(_Run(s, True),) for s in old]
    new_runs: list[tuple[_Run, ...]] = [(_Run(s, True),) for s in new]
    for i, j in pair_sentences(old, new, longer_than=SENTENCE_MAX).items():  # only those get clipped
        prefix, suffix = changed_region(old[i], new[j])
        old_runs[i] = _three_runs(old[i], prefix, suffix)
        new_runs[j] = _three_runs(new[j], prefix, suffix)
    return old_runs, new_runs


def _three_runs(text: str, prefix: int, suffix: int) -> tuple[_Run, ...]:
    parts = (_Run(text[:prefix], False), _Run(text[prefix : len(text) - suffix], True))
    return tuple(r for r in (*parts, _Run(text[len(text) - suffix :], False)) if r.text)


def _clip(runs: tuple[_Run, ...]) -> tuple[_Run, ...]:
    """A very long sentence is cut to its changed part and SENTENCE_CONTEXT characters around it."""
    text = "".join(r.text for r in runs)
    if len(text) <= SENTENCE_MAX:
        return runs
    first, last = _changed_span(runs)
    start = _word_start(text, max(0, first - SENTENCE_CONTEXT))
    end = min(len(text), max(last + SENTENCE_CONTEXT, start + SENTENCE_MAX), start + SENTENCE_SHOWN)
    end = _word_end(text, start, end)
    clipped = _slice_runs(list(runs), start, end)
    head = (_Run("…", False),) if start > 0 else ()
    tail = (_Run("…", False),) if end < len(text) else ()
    return head + clipped + tail


def _changed_span(runs: tuple[_Run, ...]) -> tuple[int, int]:
    pos, first, last = 0, -1, 0
    for run in runs:
        if run.changed:
            first = pos if first < 0 else first
            last = pos + len(run.text)
        pos += len(run.text)
    return (first, last) if first >= 0 else (0, 0)


def _word_start(text: str, index: int) -> int:
    """`index`, moved forward to the start of a word (unless that is more than a word away)."""
    if index == 0:
        return 0
    space = text.find(" ", index, index + 40)
    return index if space < 0 else space + 1


def _word_end(text: str, start: int, index: int) -> int:
    """`index`, moved back to the end of a word (not before `start`)."""
    if index >= len(text):
        return len(text)
    space = text.rfind(" ", start + 1, index)
    return index if space < 0 else space


def _hunk_order(view: ChangeView) -> list[int]:
    """Hunk indexes, those touching a topic first (by their most severe topic), then the rest."""
    best: dict[int, int] = {}
    ranks = _topic_ranks(view)
    for match in view.classification.matches:
        rank = ranks.get(match.topic_id, len(ranks))
        best[match.hunk_index] = min(best.get(match.hunk_index, rank), rank)
    touched = sorted(best, key=lambda i: (best[i], i))
    return touched + [i for i in range(len(view.diff.hunks)) if i not in best]


def _topic_ranks(view: ChangeView) -> dict[str, int]:
    return {topic_id: i for i, topic_id in enumerate(view.classification.topics)}


def _hunk_topics(view: ChangeView, index: int) -> list[str]:
    ids = {m.topic_id for m in view.classification.matches if m.hunk_index == index}
    return [t for t in view.classification.topics if t in ids]


def _topic_label(view: ChangeView, topic_id: str) -> tuple[str, str]:
    """(title, severity) of a topic; the id and "?" when its definition was not given."""
    for topic in view.topics:
        if topic.id == topic_id:
            return topic.title, topic.severity
    return topic_id, "?"


def _sorted_topic_ids(view: ChangeView) -> list[str]:
    def key(topic_id: str) -> tuple[int, str]:
        return (-SEVERITY_RANK.get(_topic_label(view, topic_id)[1], 0), topic_id)

    return sorted(view.classification.topics, key=key)


def _counts(diff: TextDiff) -> str:
    return f"+{diff.inserted_chars}/-{diff.deleted_chars} characters in {_blocks(len(diff.hunks))}"


def _archive_ref(view: ChangeView) -> str:
    url = _safe_url(view.archive_url)
    return url or f"policy-watchdog diff {view.from_version} {view.to_version}"


def _pointer(view: ChangeView) -> str:
    return f"… full diff: {clean_line(_archive_ref(view))}"


def _md_pointer(view: ChangeView) -> str:
    url = _safe_url(view.archive_url)
    if url:
        return f"… {_md_link(url, 'full diff')}"
    return f"… full diff: {_md_code(_archive_ref(view))}"


def _md_code(identifier: str) -> str:
    """An id or command of ours in a code span (no formatting inside; backticks could end it)."""
    return (
        "`"
        + clean_line(identifier)
        .replace("`", "ˋ")
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        + "`"
    )


# --------------------------------------------------------------------------- text


def render_text(view: ChangeView, *, limit: int | None = None) -> str:
    """Plain text, unified style: "- old sentence" / "+ new sentence" under each changed block."""
    lines = [alert_title(view), f"Page: {clean_line(view.url)}", f"Detected: {iso(view.detected_at)}"]
    lines.append("Topics: " + ("; ".join(_text_topic(view, t) for t in _sorted_topic_ids(view)) or "none"))
    lines.append(f"Size: {_counts(view.diff)}")
    if view.diff.truncated:
        lines.append("Note: some large blocks were compared line by line, not word by word.")
    for index in _hunk_order(view):
        lines.extend(("", _text_hunk_header(view, index)))
        lines.extend(_text_line(line) for line in _hunk_lines(view.diff.hunks[index]))
    lines.extend(("", _text_reference(view)))
    text = "\n".join(lines) + "\n"
    return text if limit is None else truncate(text, limit, pointer=_pointer(view))


def _text_topic(view: ChangeView, topic_id: str) -> str:
    title, severity = _topic_label(view, topic_id)
    return f"{clean_line(title)} ({topic_id}, {severity})"


def _text_hunk_header(view: ChangeView, index: int) -> str:
    hunk = view.diff.hunks[index]
    topics = ", ".join(_hunk_topics(view, index))
    where = f"@@ line {hunk.line_before} -> {hunk.line_after} @@"
    return f"{where} {topics}" if topics else where


def _text_line(line: _Line) -> str:
    return f"{line.sign} {clean_line(''.join(r.text for r in line.runs))}"


def _text_reference(view: ChangeView) -> str:
    ref = f"Change {clean_line(view.change_id)}: {clean_line(view.from_version)} -> "
    ref += clean_line(view.to_version)
    url = _safe_url(view.archive_url)
    return f"{ref}\nFull diff: {url}" if url else ref


def truncate(text: str, limit: int, *, pointer: str) -> str:
    """`text` cut at a line boundary so that, with "\\n" + pointer appended, it fits in `limit`.

    Text that fits is returned as it is. When not even one line fits, the pointer alone (cut to the
    limit if it must be) is returned: a half line could leave Markdown formatting open.
    """
    if limit < 0:
        raise ValueError("limit must be >= 0")
    if len(text) <= limit:
        return text
    budget = limit - len(pointer) - 1
    cut = text.rfind("\n", 0, budget + 1) if budget > 0 else -1
    if cut <= 0:
        return pointer[:limit]
    return text[:cut].rstrip("\n") + "\n" + pointer


# --------------------------------------------------------------------------- Slack mrkdwn


def render_markdown(view: ChangeView, *, limit: int | None = None) -> str:
    """Slack mrkdwn: *bold* headings, ~struck~ deleted words, *bold* inserted words, > quotes."""
    lines = [f"*{md_escape(alert_title(view))}*", _md_page(view)]
    topics = " · ".join(_md_topic(view, t) for t in _sorted_topic_ids(view))
    lines.append(f"*Topics:* {topics or 'none'}")
    lines.append(f"*Size:* {_counts(view.diff)}")
    if view.diff.truncated:
        lines.append("_Some large blocks were compared line by line, not word by word._")
    for index in _hunk_order(view):
        lines.extend(("", _md_hunk_header(view, index)))
        lines.extend(_md_line(line) for line in _hunk_lines(view.diff.hunks[index]))
    lines.extend(("", _md_reference(view)))
    text = "\n".join(lines) + "\n"
    if limit is None:
        return text
    pointer = _md_pointer(view)
    # A pointer cut short could leave "<url|..." open: when it cannot fit whole, an ellipsis alone.
    return truncate(text, limit, pointer=pointer if len(pointer) <= limit else "…")


def _md_link(url: str | None, label: str) -> str:
    safe = _safe_url(url)
    if safe is None:
        return md_escape(label)
    return f"<{safe.replace('&', '&amp;')}|{md_escape(label).replace('|', '¦')}>"


def _md_page(view: ChangeView) -> str:
    return f"{_md_link(view.url, view.target_name)} · detected {iso(view.detected_at)}"


def _md_topic(view: ChangeView, topic_id: str) -> str:
    title, severity = _topic_label(view, topic_id)
    return f"{md_escape(clean_line(title))} (`{topic_id}`, {severity})"


def _md_hunk_header(view: ChangeView, index: int) -> str:
    hunk = view.diff.hunks[index]
    topics = ", ".join(f"`{t}`" for t in _hunk_topics(view, index))
    where = f"*Line {hunk.line_before}*"
    return f"{where} · {topics}" if topics else where


def _md_line(line: _Line) -> str:
    mark = "~" if line.sign == "-" else "*"
    sign = "−" if line.sign == "-" else "+"
    body = "".join(_md_run(run, mark) for run in line.runs)
    return f"> {sign} {body}"  # ">" here is the quote marker: page text's own ">" is "&gt;"


def _md_run(run: _Run, mark: str) -> str:
    """A run of page text; a changed one wrapped in `mark`, which must hug non-space characters."""
    text = md_escape(_one_line(run.text))
    core = text.strip()
    if not run.changed or not core:
        return text
    lead, trail = text[: len(text) - len(text.lstrip())], text[len(text.rstrip()) :]
    return f"{lead}{mark}{core}{mark}{trail}"


def _md_reference(view: ChangeView) -> str:
    ref = f"Change {_md_code(view.change_id)}: {_md_code(view.from_version)} → {_md_code(view.to_version)}"
    url = _safe_url(view.archive_url)
    return f"{ref} · {_md_link(url, 'full diff')}" if url else ref


# --------------------------------------------------------------------------- HTML

_STYLE_DEL = "background:#ffe0e0;color:#8a1c1c;text-decoration:line-through"
_STYLE_INS = "background:#dcf5dc;color:#14601d;text-decoration:none;font-weight:600"
_STYLE_HUNK = "margin:1em 0;padding:.5em .8em;border-left:3px solid #999"
_STYLE_BLOCK = "white-space:pre-wrap;font-family:inherit"


def render_html(view: ChangeView, *, limit: int | None = None, document: bool = True) -> str:
    """Self-contained HTML (a whole document, or the fragment with document=False) for email and the
    archive: the old and new sentences with <del>/<ins> word highlights. Everything escaped."""
    head = _html_head(view)
    hunks = [_html_hunk(view, index) for index in _hunk_order(view)]
    wrap = _html_document(view) if document else (lambda body: body)
    footer = _html_reference(view)
    if limit is None:
        return wrap(_html_body(head, hunks, footer))
    fallback = _html(_pointer(view))  # plain escaped text: no tag can be left open by a cut
    return _fit_html(wrap, head, hunks, footer, _html_pointer(view), limit=limit, fallback=fallback)


def _html_body(head: str, hunks: Sequence[str], footer: str) -> str:
    return f'<div class="pw-change">\n{head}{"".join(hunks)}{footer}</div>\n'


def _fit_html(
    wrap: Callable[[str], str],
    head: str,
    hunks: Sequence[str],
    footer: str,
    pointer: str,
    *,
    limit: int,
    fallback: str,
) -> str:
    """As many whole hunks as fit, then the pointer; never more than `limit` characters."""
    full = wrap(_html_body(head, hunks, footer))
    if len(full) <= limit:
        return full
    # The wrappers only concatenate, so a body's length adds up: no need to rebuild it per hunk.
    used = len(wrap(_html_body(head, [], pointer)))
    kept: list[str] = []
    for hunk in hunks:
        if used + len(hunk) > limit:
            break
        kept.append(hunk)
        used += len(hunk)
    if used <= limit:
        return wrap(_html_body(head, kept, pointer))
    bare = wrap(_html_body("", [], pointer))
    return bare if len(bare) <= limit else fallback[:limit]


def _html_document(view: ChangeView) -> Callable[[str], str]:
    title = _html(alert_title(view))

    def wrap(body: str) -> str:
        return (
            '<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8">'
            f"<title>{title}</title></head>\n<body>\n{body}</body>\n</html>\n"
        )

    return wrap


def _html_link(url: str | None, label: str) -> str:
    safe = _safe_url(url)
    if safe is None:
        return _html(label)
    return f'<a href="{html.escape(safe, quote=True)}">{_html(label)}</a>'


def _html_head(view: ChangeView) -> str:
    parts = [f"<h1>{_html(alert_title(view))}</h1>\n"]
    detected = iso(view.detected_at)
    parts.append(
        f"<p>{_html_link(view.url, view.target_name)} · detected "
        f'<time datetime="{detected}">{detected}</time></p>\n'
    )
    items = "".join(f"<li>{_html_topic(view, t)}</li>" for t in _sorted_topic_ids(view))
    parts.append(f'<ul class="topics">{items}</ul>\n' if items else "<p>Topics: none</p>\n")
    parts.append(f'<p class="size">{_html(_counts(view.diff))}</p>\n')
    if view.diff.truncated:
        parts.append("<p><em>Some large blocks were compared line by line, not word by word.</em></p>\n")
    return "".join(parts)


def _html_topic(view: ChangeView, topic_id: str) -> str:
    title, severity = _topic_label(view, topic_id)
    return f"<strong>{_html(clean_line(title))}</strong> ({_html(topic_id)}, {_html(severity)})"


def _html_hunk(view: ChangeView, index: int) -> str:
    hunk = view.diff.hunks[index]
    topics = ", ".join(_hunk_topics(view, index))
    where = f"Line {hunk.line_before}" + (f" · {topics}" if topics else "")
    lines = "".join(_html_line(line) for line in _hunk_lines(hunk))
    return f'<div class="hunk" style="{_STYLE_HUNK}"><p class="where">{_html(where)}</p>\n{lines}</div>\n'


def _html_line(line: _Line) -> str:
    tag, css, sign = ("del", _STYLE_DEL, "−") if line.sign == "-" else ("ins", _STYLE_INS, "+")
    body = "".join(
        f'<{tag} style="{css}">{_html(r.text)}</{tag}>' if r.changed else _html(r.text) for r in line.runs
    )
    kind = "old" if line.sign == "-" else "new"
    return f'<p class="{kind}">{sign} {body}</p>\n'


def _html_reference(view: ChangeView) -> str:
    ref = f"Change {view.change_id}: {view.from_version} → {view.to_version}"
    url = _safe_url(view.archive_url)
    link = f" · {_html_link(url, 'full diff')}" if url else ""
    return f'<p class="ref">{_html(ref)}{link}</p>\n'


def _html_pointer(view: ChangeView) -> str:
    url = _safe_url(view.archive_url)
    if url:
        return f'<p class="ref">… {_html_link(url, "full diff")}</p>\n'
    return f'<p class="ref">{_html(_pointer(view))}</p>\n'


# --------------------------------------------------------------------------- JSON


def render_json(view: ChangeView) -> str:
    """The change as one JSON object (the alert's content, for webhooks and `--json` outputs)."""
    diff, classification = view.diff, view.classification
    payload = {
        "target": view.target_id,
        "target_name": clean_line(view.target_name),
        "url": view.url,
        "change": view.change_id,
        "from_version": view.from_version,
        "to_version": view.to_version,
        "detected_at": iso(view.detected_at),
        "title": alert_title(view),
        "summary": summary(view),
        "topics": list(classification.topics),
        "severity": classification.severity,
        "inserted_chars": diff.inserted_chars,
        "deleted_chars": diff.deleted_chars,
        "truncated": diff.truncated,
        "archive_url": view.archive_url,
        "matches": [_json_match(view, i) for i in range(len(classification.matches))],
        "hunks": [_json_hunk(view, i) for i in _hunk_order(view)],
    }
    return json.dumps(payload, ensure_ascii=False)


def _json_match(view: ChangeView, index: int) -> dict[str, object]:
    match = view.classification.matches[index]
    return {
        "topic": match.topic_id,
        "pattern": match.pattern,
        "side": match.side,
        "sentence": clean_line(match.sentence),
        "hunk": match.hunk_index,
    }


def _json_hunk(view: ChangeView, index: int) -> dict[str, object]:
    hunk = view.diff.hunks[index]
    return {
        "index": index,
        "line_before": hunk.line_before,
        "line_after": hunk.line_after,
        "topics": _hunk_topics(view, index),
        "sentences_before": [clean_line(s) for s in hunk.sentences_before],
        "sentences_after": [clean_line(s) for s in hunk.sentences_after],
    }


# --------------------------------------------------------------------------- `diff A B`


def render_diff_only(diff: TextDiff, *, fmt: Literal["text", "md", "html"]) -> str:
    """The whole diff, every block, word changes marked inline (for the `diff A B` command).

    text: git's --word-diff=plain style, [-deleted-]{+inserted+}; md: ~deleted~ *inserted*; html:
    <del>/<ins>. Blocks too large to word-diff show their old lines (-) then their new lines (+).
    """
    renderers = {"text": _diff_text, "md": _diff_md, "html": _diff_html}
    return renderers[fmt](diff)


def _block_header(hunk: Hunk) -> str:
    return f"@@ -{hunk.line_before} +{hunk.line_after} @@"


def _diff_text(diff: TextDiff) -> str:
    if not diff.hunks:
        return "No differences.\n"
    parts = []
    for hunk in diff.hunks:
        parts.append(_block_header(hunk))
        parts.extend(_plain_block(hunk))
    return "\n".join(parts) + "\n"


def _plain_block(hunk: Hunk) -> Iterator[str]:
    if not any(s.op == EQUAL for s in hunk.segments):
        yield from (f"- {clean(line)}" for line in hunk.before.split("\n") if line.strip())
        yield from (f"+ {clean(line)}" for line in hunk.after.split("\n") if line.strip())
        return
    marks = {EQUAL: ("", ""), DELETE: ("[-", "-]"), INSERT: ("{+", "+}")}
    body = "".join(f"{marks[s.op][0]}{clean(s.text)}{marks[s.op][1]}" for s in hunk.segments)
    yield body


def _diff_md(diff: TextDiff) -> str:
    if not diff.hunks:
        return "No differences.\n"
    parts = []
    for hunk in diff.hunks:
        parts.append(f"*{_block_header(hunk)}*")
        parts.extend(f"> {line}" for line in _md_block_lines(hunk))
    return "\n".join(parts) + "\n"


def _md_block_lines(hunk: Hunk) -> Iterator[str]:
    """The block line by line; a change spanning lines is marked on each line (marks cannot span)."""
    if not any(s.op == EQUAL for s in hunk.segments):
        yield from (f"− ~{md_escape(line).strip()}~" for line in hunk.before.split("\n") if line.strip())
        yield from (f"+ *{md_escape(line).strip()}*" for line in hunk.after.split("\n") if line.strip())
        return
    line: list[str] = []
    for segment in hunk.segments:
        mark = {EQUAL: "", DELETE: "~", INSERT: "*"}[segment.op]
        for n, piece in enumerate(clean(segment.text).split("\n")):
            if n:
                yield "".join(line)
                line = []
            if mark and line and line[-1].endswith(("~", "*")):
                line.append(" ")  # "~old~*new*" would not render: marks must touch a space
            line.append(_md_run(_Run(piece, True), mark) if mark else md_escape(piece))
    yield "".join(line)


def _diff_html(diff: TextDiff) -> str:
    if not diff.hunks:
        return '<div class="pw-diff"><p>No differences.</p></div>\n'
    parts = ['<div class="pw-diff">\n']
    for hunk in diff.hunks:
        parts.append(f'<div class="hunk" style="{_STYLE_HUNK}"><p class="where">{_block_header(hunk)}</p>')
        parts.append(f'<div class="block" style="{_STYLE_BLOCK}">{_html_block(hunk)}</div></div>\n')
    parts.append("</div>\n")
    return "".join(parts)


def _html_block(hunk: Hunk) -> str:
    tags = {DELETE: ("del", _STYLE_DEL), INSERT: ("ins", _STYLE_INS)}
    coarse = not any(s.op == EQUAL for s in hunk.segments)  # old lines, then new lines
    out = []
    for segment in hunk.segments:
        text = _html(segment.text)
        if segment.op == EQUAL:
            out.append(text)
            continue
        tag, css = tags[segment.op]
        out.append(f'<{tag} style="{css}">{text}</{tag}>' + ("\n" if coarse else ""))
    return "".join(out)

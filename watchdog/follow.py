"""Followed feed items: a new feed item that touches a topic becomes a watched page of its own.

fetch -> read the feed -> ... -> classify (new items) -> **follow** (feed targets with `follow = true`)

A newsroom post announcing the resumption of AI training in Europe is news when it appears, and again when
Meta quietly edits it later. A feed target with `follow = true` therefore adds each new item whose title or
summary touched a topic as a target of its own: id `<feed id>-<the post's slug>`, its link as URL, its
title as name, read as a blog post (`article`, then `main`, then `[role=main]`), with the feed's interval,
topics, notify mode and Accept-Language.

The followed items are remembered in `<storage dir>/followed-targets.json` (replaced atomically, so a crash
never leaves half a file; a damaged file is ignored with a warning, never fatal). `with_followed(config)`
adds them to the configured targets where the CLI and the daemon load their config, so `check`, `status`,
`history`, `doctor` and the archive treat them as any other target. A running daemon picks new ones up at its
next reload (SIGHUP) or restart; `check` runs pick them up at once. A target id configured by hand wins
over a followed item of the same id, and removing `follow` (or the feed) stops following its items.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from watchdog.config import Config
from watchdog.models import SelectorSet, Target, iso
from watchdog.patterns import lazy
from watchdog.storage.files import write_atomically

if TYPE_CHECKING:  # an annotation only (watchdog/messages.py says why)
    from watchdog.messages import TopicMatch

log = logging.getLogger(__name__)

FILE: Final = "followed-targets.json"
POST_SELECT: Final = ("article",)
POST_ALTERNATIVES: Final = (
    SelectorSet(("main",), ("nav", "aside", "footer", "form")),
    SelectorSet(("[role=main]",)),
)
_BLOCK: Final = lazy(r"^## (?P<title>.*)\n<(?P<link>https?://[^<>\s]+)>$", re.MULTILINE)
_SLUG: Final = lazy(r"[^a-z0-9]+")


@dataclass(frozen=True, slots=True)
class Followed:
    id: str
    url: str
    name: str
    feed: str  # the feed target's id
    added_at: str  # ISO-8601


def path_of(config: Config) -> Path:
    return config.storage_dir / FILE


def load(config: Config) -> list[Followed]:
    path = path_of(config)
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
        return [Followed(**row) for row in rows]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, TypeError) as exc:
        log.warning("ignoring %s, which cannot be read: %s", path, exc)
        return []


def with_followed(config: Config) -> Config:
    """`config` with the followed items of its `follow = true` feeds added as targets."""
    feeds = {t.id: t for t in config.targets if t.kind == "feed" and t.follow}
    configured = {t.id for t in config.targets}
    extra = [
        _target(item, feeds[item.feed])
        for item in load(config)
        if item.feed in feeds and item.id not in configured
    ]
    return replace(config, targets=(*config.targets, *extra)) if extra else config


def _target(item: Followed, feed: Target) -> Target:
    return Target(
        id=item.id,
        url=item.url,
        name=item.name,
        select=POST_SELECT,
        alternatives=POST_ALTERNATIVES,
        interval=feed.interval,
        topics=feed.topics,
        accept_language=feed.accept_language,
        notify=feed.notify,
        confirm_delay=feed.confirm_delay,
    )


def follow_new_items(
    config: Config, feed: Target, text: str, matches: Sequence[TopicMatch], at: datetime
) -> tuple[str, ...]:
    """Remember the items of `text` (a feed's canonical text) that hold a match; returns the new ids."""
    if not feed.follow:
        return ()
    sentences = [m.sentence for m in matches if m.side != "deleted"]
    known = load(config)
    taken = {f.id for f in known} | {t.id for t in config.targets}
    added: list[Followed] = []
    for title, link, block in _items(text):
        if not any(sentence and sentence in block for sentence in sentences):
            continue
        if any(f.url == link for f in (*known, *added)):
            continue
        item = Followed(_item_id(feed.id, link, taken), link, title, feed.id, iso(at))
        taken.add(item.id)
        added.append(item)
    if added:
        rows = [_row(f) for f in (*known, *added)]
        write_atomically(path_of(config), json.dumps(rows, indent=2, ensure_ascii=False).encode())
        log.info("%s: now following %s", feed.id, ", ".join(f.url for f in added))
    return tuple(f.id for f in added)


def _row(item: Followed) -> dict[str, str]:
    return {"id": item.id, "url": item.url, "name": item.name, "feed": item.feed, "added_at": item.added_at}


def _items(text: str) -> list[tuple[str, str, str]]:
    """(title, link, the item's whole block) for each item of a feed's canonical text."""
    found = list(_BLOCK.finditer(text))
    items = []
    for index, match in enumerate(found):
        end = found[index + 1].start() if index + 1 < len(found) else len(text)
        items.append((match.group("title"), match.group("link"), text[match.start() : end]))
    return items


def _item_id(feed_id: str, link: str, taken: set[str]) -> str:
    """`<feed id>-<slug of the link's last path segment>`, within the 64 characters of a target id."""
    segments = [s for s in urlsplit(link).path.split("/") if s]
    slug = _SLUG.sub("-", (segments[-1] if segments else "item").lower()).strip("-") or "item"
    base = f"{feed_id}-{slug}"[:64].rstrip("-")
    if base not in taken:
        return base
    digest = hashlib.sha256(link.encode()).hexdigest()[:8]
    return f"{base[:55].rstrip('-')}-{digest}"

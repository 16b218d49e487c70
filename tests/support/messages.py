"""Test support: format-neutral messages (models.ChangeMessage / StatusMessage) made the way the pipeline
makes them, from real diffs (watchdog.diff) classified with the bundled topics, and the outbox Alerts that
carry them."""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from watchdog.classify import classify, compile_topics
from watchdog.diff import diff_texts
from watchdog.models import Alert, ChangeMessage, StatusMessage, Topic, message_to_json
from watchdog.render.compose import compose

ARCHIVE = "https://archive.example.org/watch"
PAGE = "https://mbasic.facebook.com/privacy/policy/printable/"
AT = datetime(2025, 5, 28, 0, 30, 56, tzinfo=UTC)


@cache
def bundled_topics() -> tuple[Topic, ...]:
    """The topics of config/topics.toml (what a default install uses)."""
    path = Path(__file__).resolve().parents[2] / "config" / "topics.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return tuple(Topic(t["id"], t["title"], t["severity"], tuple(t["patterns"])) for t in data["topics"])


def change_message(
    before: str,
    after: str,
    *,
    event_id: str = "meta-privacy-policy@c2",
    name: str = "Meta Privacy Policy",
    url: str = PAGE,
    archive_url: str | None = ARCHIVE,
    topics: Sequence[Topic] | None = None,
) -> ChangeMessage:
    """A change between two canonical texts, diffed and classified as the pipeline does."""
    defined = tuple(topics if topics is not None else bundled_topics())
    diff = diff_texts(before, after)
    found = classify(diff, compile_topics(defined, source="config/topics.toml"))
    target = event_id.split("@")[0]
    seq = int(event_id.rsplit("c", 1)[-1])
    return ChangeMessage(
        event_id=event_id,
        kind="change",
        target_id=target,
        target_name=name,
        url=url,
        from_version=f"{target}@v{seq}",
        to_version=f"{target}@v{seq + 1}",
        detected_at=AT,
        diff=diff,
        classification=found,
        topics=tuple(t for t in defined if t.id in found.topics),
        archive_url=archive_url,
    )


def alert_of(
    message: ChangeMessage, *, tags: tuple[str, ...] | None = None, topic_change: bool = True
) -> Alert:
    """The outbox row's alert for a message, as pipeline._owe_change_alert makes it."""
    return Alert(
        event_id=message.event_id,
        kind="change",
        target_id=message.target_id,
        title=compose(message).headline,
        text="",
        markdown="",
        html="",
        tags=tags if tags is not None else (*message.classification.topics, message.target_id),
        topic_change=topic_change,
        message=message_to_json(message),
    )


def status_alert_of(message: StatusMessage) -> Alert:
    return Alert(
        event_id=message.event_id,
        kind=message.kind,
        target_id=message.target_id,
        title=f"[{message.target_name}] {message.kind}",
        text="",
        markdown="",
        html="",
        tags=("failing", message.target_id),
        message=message_to_json(message),
    )

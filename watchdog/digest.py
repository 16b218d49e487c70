"""Notify, digests: a channel with `digest = "daily" | "weekly"` gets one brief per period instead of one
message per change.

    ... -> store (+ outbox rows, as for any channel) -> notify: **digest** (group, brief, send once)

The rows stay in the outbox as for any channel (queued in the check's transaction: nothing lost). A change
row of a digest channel waits until its period is over (periods are calendar days, or weeks from Monday,
in UTC); the first delivery pass after that sends ONE brief holding every change of that period owed to
the channel, grouped by target and by topic, each with its headline and its link, then marks all of them
delivered in one transaction (nothing twice). A period without changes has no rows: nothing is sent. A
brief that fails is retried whole at the next pass, later periods waiting behind it. Failure and recovery
notices are not summed up: they still go out at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from watchdog.messages import Alert, ChangeMessage, DigestItem, DigestMessage, message_from_json
from watchdog.models import Topic
from watchdog.render.compose import Links, compose

DIGEST_KINDS = frozenset({"change", "editorial"})  # alerts a digest channel sums up; others go at once


def period_of(moment: datetime, period: str) -> tuple[datetime, datetime]:
    """[start, end) of the daily or weekly (Monday to Monday) period holding `moment`, in UTC."""
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "weekly":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=7)
    return day, day + timedelta(days=1)


def brief(
    period: str, start: datetime, end: datetime, alerts: Sequence[Alert], *, channel: str
) -> DigestMessage:
    """The digest of `alerts` (change alerts owed to one channel in one period), in the order they came."""
    items = []
    topics: dict[str, Topic] = {}
    archive_url = None
    for alert in alerts:
        message = message_from_json(alert.message) if alert.message else None
        if isinstance(message, ChangeMessage):
            story = compose(message)
            link = Links.published(message.archive_url, message).change
            archive_url = archive_url or message.archive_url
            topics.update((t.id, t) for t in story.topics)
            items.append(
                DigestItem(
                    message.target_id,
                    message.target_name,
                    message.event_id,
                    story.headline,
                    link,
                    tuple(t.id for t in story.topics),
                    message.kind,
                )
            )
        else:  # a row queued by an earlier release: its title is what it has
            items.append(
                DigestItem(
                    alert.target_id, alert.target_id, alert.event_id, alert.title, None, (), alert.kind
                )
            )
    event_id = f"digest:{period}:{start:%Y-%m-%d}:{channel[:12]}"
    return DigestMessage(event_id, period, start, end, tuple(items), tuple(topics.values()), archive_url)

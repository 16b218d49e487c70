"""The data a change carries and the messages and alerts made of it: a diff (TextDiff, its hunks), what
the classifier found (Classification), the format-neutral messages the outbox carries (ChangeMessage,
StatusMessage, DigestMessage; their JSON) and the outbox's rows (Alert, Delivery, Attempt).

Part of the data model (watchdog/models.py, which still exports every name here): kept apart because a
check needs none of it before its first request, and defining a frozen dataclass costs ~0.6 ms of CPU
(dataclasses generates and compiles its methods), which `check` paid at every start for each of these
12 classes. Modules that run before the requests bind this one with watchdog/deferred.py.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from watchdog.models import AttemptOutcome, Severity, Side, Topic, iso

# --------------------------------------------------------------------------- diff / classify


@dataclass(frozen=True, slots=True)
class Segment:
    """One word-level piece of a hunk: op -1 deleted, 0 equal, +1 inserted."""

    op: int
    text: str


@dataclass(frozen=True, slots=True)
class Hunk:
    """One changed block: the old and new lines, word-level segments, the whole sentences around them, and
    where it sits: its heading path (e.g. ("What is our legal basis…?", "Legitimate interests")) and the
    anchor of that section on the version page."""

    before: str
    after: str
    segments: tuple[Segment, ...]
    sentences_before: tuple[str, ...]
    sentences_after: tuple[str, ...]
    line_before: int  # 1-based first line of the block in the old text (internal: never shown to people)
    line_after: int
    section: tuple[str, ...] = ()
    anchor: str = ""  # the section's id on the version page ("" before the first heading)


@dataclass(frozen=True, slots=True)
class TextDiff:
    hunks: tuple[Hunk, ...]
    inserted_chars: int
    deleted_chars: int
    truncated: bool = False  # a block over the size cap was diffed line-wise only


@dataclass(frozen=True, slots=True)
class TopicMatch:
    """Evidence that a change touches a topic: which pattern matched what, on which side."""

    topic_id: str
    pattern: str
    side: Side
    sentence: str
    hunk_index: int


@dataclass(frozen=True, slots=True)
class Classification:
    topics: tuple[str, ...]  # sorted by severity (high first), then id
    matches: tuple[TopicMatch, ...]
    severity: str  # highest severity among topics, "none" when no topic matched
    # Per hunk of the diff, in order: None for an edit that changes meaning, else its editorial category
    # ("spelling", "heading"...; watchdog.normalise.editorial_reason). Alerts show only the None ones.
    editorial: tuple[str | None, ...] = ()

    @property
    def kind(self) -> str:
        """ "editorial" when every hunk only preserves meaning, else "change"."""
        return "editorial" if self.editorial and all(self.editorial) else "change"


# JSON of a TextDiff: the diff cache on disk and the outbox's change messages (lossless round trip)


def diff_to_json(value: TextDiff) -> dict[str, Any]:
    return {
        "hunks": [
            {
                "before": h.before,
                "after": h.after,
                "segments": [[s.op, s.text] for s in h.segments],
                "sentences_before": list(h.sentences_before),
                "sentences_after": list(h.sentences_after),
                "line_before": h.line_before,
                "line_after": h.line_after,
                "section": list(h.section),
                "anchor": h.anchor,
            }
            for h in value.hunks
        ],
        "inserted_chars": value.inserted_chars,
        "deleted_chars": value.deleted_chars,
        "truncated": value.truncated,
    }


def diff_from_json(data: dict[str, Any]) -> TextDiff:
    """Inverse of diff_to_json; raises TypeError/KeyError/ValueError on anything malformed."""
    hunks = tuple(_hunk(item) for item in data["hunks"])
    return TextDiff(hunks, _int(data["inserted_chars"]), _int(data["deleted_chars"]), bool(data["truncated"]))


def _hunk(item: dict[str, Any]) -> Hunk:
    return Hunk(
        before=_str(item["before"]),
        after=_str(item["after"]),
        segments=tuple(Segment(_int(op), _str(text)) for op, text in item["segments"]),
        sentences_before=tuple(_str(s) for s in item["sentences_before"]),
        sentences_after=tuple(_str(s) for s in item["sentences_after"]),
        line_before=_int(item["line_before"]),
        line_after=_int(item["line_after"]),
        section=tuple(_str(s) for s in item["section"]),
        anchor=_str(item["anchor"]),
    )


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


# --------------------------------------------------------------------------- notify (outbox)


@dataclass(frozen=True, slots=True)
class Alert:
    """A rendered alert, before routing: one per change (or failure / recovery / test event)."""

    event_id: str  # the change id, or "<target>@failing<n>" / "<target>@recovered<n>" / "test@<time>"
    kind: str  # "change" | "failing" | "recovered" | "test"
    target_id: str
    title: str
    text: str
    markdown: str
    html: str
    tags: tuple[str, ...]  # routing: topic ids, severities, target id, "failing"
    topic_change: bool = True  # False for a change that touches no topic (sent only to notify="all")
    attachment_name: str | None = None
    attachment: bytes | None = None
    # the format-neutral message (message_to_json): rendered per channel at delivery. Rows queued by an
    # earlier release have none and are sent with their pre-rendered title/text/markdown/html.
    message: str | None = None

    def to_json(self) -> str:
        """The outbox payload (opaque to the storage, which keeps it as it is)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(Alert)}
        fields["tags"] = list(self.tags)
        fields["attachment"] = (
            base64.b64encode(self.attachment).decode() if self.attachment is not None else None
        )
        return json.dumps(fields, sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Alert:
        fields = json.loads(text)
        fields["tags"] = tuple(fields["tags"])
        fields.setdefault("message", None)  # a row queued before messages existed
        if fields["attachment"] is not None:
            fields["attachment"] = base64.b64decode(fields["attachment"])
        return cls(**fields)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One outbox row: an alert owed to one channel. Delivered at most once, in order per channel."""

    id: int
    channel_key: str
    payload: str  # the alert as `Alert.to_json` wrote it: the storage keeps it opaque
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None = None
    uncertain_sends: int = 0  # logged attempts whose outcome is unknown (the channel may have the alert)
    last_error: str | None = None

    @property
    def alert(self) -> Alert:
        return Alert.from_json(self.payload)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One delivery attempt of an outbox row, as logged."""

    delivery_id: int
    at: datetime
    outcome: AttemptOutcome
    error: str | None = None


# --------------------------------------------------------------------------- messages (format-neutral)
# What the pipeline records for people to read: the outbox carries one per event, serialised as JSON, and
# watchdog.render turns it into text, Markdown, HTML or JSON per channel at delivery time; the feeds and
# the site render the same data. Nothing in a message is formatted or escaped: page text stays as it is.


@dataclass(frozen=True, slots=True)
class ChangeMessage:
    """A recorded change: what changed (the diff, with each hunk's section), which topics it touches and
    why (the classifier's evidence), and where it is archived."""

    event_id: str  # the change id
    kind: str  # the change's kind: "change" (wording), "editorial", "capture"...
    target_id: str
    target_name: str
    url: str
    from_version: str
    to_version: str
    detected_at: datetime
    diff: TextDiff
    classification: Classification
    topics: tuple[Topic, ...] = ()  # definitions of the topics (titles, severities) named in it
    archive_url: str | None = None  # public base URL of the published archive, for links

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "change",
            "event_id": self.event_id,
            "kind": self.kind,
            "target_id": self.target_id,
            "target_name": self.target_name,
            "url": self.url,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "detected_at": iso(self.detected_at),
            "diff": diff_to_json(self.diff),
            "classification": {
                "topics": list(self.classification.topics),
                "severity": self.classification.severity,
                "matches": [
                    [m.topic_id, m.pattern, m.side, m.sentence, m.hunk_index]
                    for m in self.classification.matches
                ],
            },
            "topics": [[t.id, t.title, t.severity] for t in self.topics],
            "archive_url": self.archive_url,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChangeMessage:
        found = data["classification"]
        return cls(
            event_id=_str(data["event_id"]),
            kind=_str(data["kind"]),
            target_id=_str(data["target_id"]),
            target_name=_str(data["target_name"]),
            url=_str(data["url"]),
            from_version=_str(data["from_version"]),
            to_version=_str(data["to_version"]),
            detected_at=parse_iso(_str(data["detected_at"])),
            diff=diff_from_json(data["diff"]),
            classification=Classification(
                topics=tuple(_str(t) for t in found["topics"]),
                matches=tuple(
                    TopicMatch(_str(t), _str(p), _side(side), _str(s), _int(h))
                    for t, p, side, s, h in found["matches"]
                ),
                severity=_str(found["severity"]),
            ),
            topics=tuple(Topic(_str(i), _str(t), _severity(s), ()) for i, t, s in data["topics"]),
            archive_url=data["archive_url"] if isinstance(data["archive_url"], str) else None,
        )


@dataclass(frozen=True, slots=True)
class StatusMessage:
    """A target that can no longer be read, or can again; a `notify test` message. `reason` may hold
    server-derived text (an HTTP reason phrase, a block page's words): hostile, like page text."""

    event_id: str
    kind: str  # "failing" | "recovered" | "test"
    target_id: str
    target_name: str
    url: str
    at: datetime
    reason: str
    attempts: int = 0  # consecutive failed checks (failing)
    archive_url: str | None = None
    advice: str = ""  # what `doctor` proposes (selectors that would read the page again), if anything
    title: str = ""  # for other kinds ("capture"): the caller's own title and body
    body: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "status",
            "event_id": self.event_id,
            "kind": self.kind,
            "target_id": self.target_id,
            "target_name": self.target_name,
            "url": self.url,
            "at": iso(self.at),
            "reason": self.reason,
            "attempts": self.attempts,
            "archive_url": self.archive_url,
            "advice": self.advice,
            "title": self.title,
            "body": self.body,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StatusMessage:
        return cls(
            event_id=_str(data["event_id"]),
            kind=_str(data["kind"]),
            target_id=_str(data["target_id"]),
            target_name=_str(data["target_name"]),
            url=_str(data["url"]),
            at=parse_iso(_str(data["at"])),
            reason=_str(data["reason"]),
            attempts=_int(data["attempts"]),
            archive_url=data["archive_url"] if isinstance(data["archive_url"], str) else None,
            advice=_str(data.get("advice", "")),
            title=_str(data.get("title", "")),
            body=_str(data.get("body", "")),
        )


@dataclass(frozen=True, slots=True)
class DigestItem:
    """One change in a digest: its headline and where the archive shows it."""

    target_id: str
    target_name: str
    event_id: str
    headline: str
    link: str | None
    topics: tuple[str, ...]  # most severe first
    kind: str = "change"


@dataclass(frozen=True, slots=True)
class DigestMessage:
    """The brief a digest channel gets for one period: every change owed to it then, by target and topic.
    Made at delivery from the outbox rows it sums up (watchdog/digest.py)."""

    event_id: str  # "digest:<period>:<start>": one per channel and period
    period: str  # "daily" | "weekly"
    start: datetime
    end: datetime
    items: tuple[DigestItem, ...]
    topics: tuple[Topic, ...] = ()  # titles of the topics named in it
    archive_url: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "digest",
            "event_id": self.event_id,
            "period": self.period,
            "start": iso(self.start),
            "end": iso(self.end),
            "items": [
                [i.target_id, i.target_name, i.event_id, i.headline, i.link, list(i.topics), i.kind]
                for i in self.items
            ],
            "topics": [[t.id, t.title, t.severity] for t in self.topics],
            "archive_url": self.archive_url,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DigestMessage:
        return cls(
            event_id=_str(data["event_id"]),
            period=_str(data["period"]),
            start=parse_iso(_str(data["start"])),
            end=parse_iso(_str(data["end"])),
            items=tuple(_digest_item(item) for item in data["items"]),
            topics=tuple(Topic(_str(i), _str(t), _severity(s), ()) for i, t, s in data["topics"]),
            archive_url=data["archive_url"] if isinstance(data["archive_url"], str) else None,
        )


def _digest_item(item: list[Any]) -> DigestItem:
    target, name, event, headline, link, topics, kind = item
    url = link if isinstance(link, str) else None
    return DigestItem(
        _str(target), _str(name), _str(event), _str(headline), url, tuple(_str(t) for t in topics), _str(kind)
    )


Message = ChangeMessage | StatusMessage | DigestMessage


def message_to_json(message: Message) -> str:
    return json.dumps(message.to_json(), ensure_ascii=False, sort_keys=True)


def message_from_json(text: str) -> Message:
    """Inverse of message_to_json; raises ValueError (or KeyError/TypeError) on anything malformed."""
    data = json.loads(text)
    kinds: dict[str, type[ChangeMessage] | type[StatusMessage] | type[DigestMessage]] = {
        "change": ChangeMessage,
        "status": StatusMessage,
        "digest": DigestMessage,
    }
    kind = kinds.get(str(data.get("type")))
    if kind is None:
        raise ValueError(f"unknown message type {data.get('type')!r}")
    return kind.from_json(data)


def parse_iso(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _side(value: object) -> Side:
    if value not in ("inserted", "deleted", "context"):
        raise ValueError(f"not a side: {value!r}")
    return value


def _severity(value: object) -> Severity:
    if value not in ("high", "medium", "low"):
        return "low"
    return value

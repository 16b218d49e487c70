"""Stage notify: routes rendered alerts to apprise channels and drains the persistent outbox.

    ... -> classify -> render -> store (+ outbox rows) -> **notify** (route, send, retry, mark delivered)

- `route` decides which channels an alert is owed to (tags, `notify = "all"`, failure alerts).
- `Notifier` sends one alert to one channel through apprise, in the format and within the length limit
  of each service behind the channel, retrying a few times inside the cycle (tenacity, injected sleep).
- `deliver_pending` walks the outbox: in id order per channel, one failing channel never blocks another,
  and a channel that is down keeps its rows, in order, for a later cycle.

This is the only module that knows apprise. It is imported lazily (see `_apprise`): loading apprise and
its ~150 service plugins costs a few hundred milliseconds that commands which send nothing never pay.
Every apprise failure (a False return, an exception, a URL it cannot load) becomes a `DeliveryError`
whose reason is apprise's own WARNING-level log output, scrubbed of the channel's secrets.

The one window where a crash can duplicate an alert: after a service accepted it and before
`Outbox.mark_delivered` committed. `deliver_pending` marks each row right after its send, so the window is
one short store transaction per alert.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote

from watchdog.errors import DeliveryError
from watchdog.models import Alert, Channel, Delivery, StatusMessage, iso, message_from_json, message_to_json
from watchdog.render.compose import largest
from watchdog.render.services import ServiceFacts, shape_for, write
from watchdog.storage.interfaces import Outbox

log = logging.getLogger(__name__)

POINTER = "… (truncated; full diff in the archive: {event_id})"
APP_ID = "policy-watchdog"
# apprise's NotifyType per alert kind: it picks the colour / icon of the message
_NOTIFY_TYPES = {"change": "warning", "failing": "failure", "recovered": "success", "test": "info"}
# Notices about a target rather than its wording: failing, recovering (and `capture`, see route()).
_STATUS_KINDS = frozenset({"failing", "recovered"})


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What one pass over the outbox did, in rows."""

    delivered: int = 0
    failed: int = 0  # sent and refused in this cycle (retried in-cycle first); due again later
    skipped: int = 0  # held back behind an earlier undelivered row of the same channel
    waiting: int = 0  # a channel's first undelivered row, not due yet (backing off)
    unconfigured: int = 0  # owed to a channel no longer in the config: kept, not sent
    elsewhere: int = 0  # owed to a channel another node was delivering at that moment (a shared archive)
    errors: tuple[tuple[str, str], ...] = ()  # (channel label, reason) per failure


def default_backoff(attempts: int) -> timedelta:
    """1 min after the first failed cycle, then doubling, capped at 1 h."""
    return min(timedelta(minutes=1) * (1 << min(max(attempts - 1, 0), 10)), timedelta(hours=1))


# --------------------------------------------------------------------------- routing


def route(alert: Alert, channel: Channel, *, target_notify: str = "topics") -> bool:
    """Is `alert` owed to `channel`?

    Failure / recovery alerts go to channels tagged "failing" and to untagged ones. A capture notice (the
    page's shape changed, not its wording: kinds.py, a selector alternative switch) goes only to channels
    tagged "failing": operators asked for it; an untagged channel is a reader's, and a reader is told of
    wording changes. A change that touches no topic goes only where the channel or the target asks for all
    changes. Otherwise an untagged channel takes everything and a tagged one only alerts sharing a tag
    (topic ids, severities, target ids).
    """
    if alert.kind in _STATUS_KINDS:
        return not channel.tags or "failing" in channel.tags
    if alert.kind == "capture":  # the capture changed shape: operators only (TEAM.md agreement 5)
        return "failing" in channel.tags
    if not alert.topic_change and "all" not in (channel.notify, target_notify):
        return False
    return not channel.tags or not set(channel.tags).isdisjoint(alert.tags)


# --------------------------------------------------------------------------- channel identity, secrets


def channel_key(url_template: str) -> str:
    """Stable identity of a channel: sha256 of its URL *template* (before ${VAR} expansion), so rotating
    a secret kept in the environment does not orphan the channel's pending alerts."""
    return hashlib.sha256(url_template.encode("utf-8")).hexdigest()


def redact(url: str) -> str:
    """The URL with credentials, tokens and query values replaced by ***: fit for logs and labels.

    Kept: the scheme, a host that is a DNS name or an IP address, a numeric port, and path segments or
    values that look like plain words. A "host" that is not a host name (slack://T0/B0/xyz, tgram://<bot
    token>/...) is a token and is hidden. A config-file path has no secrets and is returned unchanged.
    """
    return _split_secrets(url)[0]


def _split_secrets(url: str) -> tuple[str, tuple[str, ...]]:
    """(redacted url, the hidden pieces). Parsed by hand: apprise URLs are not all RFC 3986 URLs."""
    if "://" not in url:
        return url, ()
    scheme, _, rest = url.partition("://")
    rest, hash_mark, fragment = rest.partition("#")
    rest, question, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    hidden: list[str] = []
    parts = [
        scheme,
        "://",
        _redact_netloc(netloc, hidden),
        slash,
        "/".join(_hide_if(_looks_secret(seg), seg, hidden) for seg in path.split("/")) if path else "",
        question,
        _redact_query(query, hidden),
        hash_mark,
        _hide_if(_looks_secret(fragment), fragment, hidden) if fragment else "",
    ]
    return "".join(parts), tuple(hidden)


def _redact_netloc(netloc: str, hidden: list[str]) -> str:
    userinfo, at, hostport = netloc.rpartition("@")
    host, colon, port = hostport.rpartition(":")
    if not colon or not port.isdigit() or (host.startswith("[") and not host.endswith("]")):
        host, colon, port = hostport, "", ""  # no numeric port: the whole thing is the "host"
    credentials = ":".join(_hide_if(True, piece, hidden) for piece in userinfo.split(":")) if at else ""
    return f"{credentials}{at}{_hide_if(not _is_hostname(host), host, hidden)}{colon}{port}"


def _redact_query(query: str, hidden: list[str]) -> str:
    pairs = []
    for pair in query.split("&") if query else []:
        key, equals, value = pair.partition("=")
        secret = bool(_SECRET_KEY.search(key)) or not _PLAIN_VALUE.fullmatch(unquote(value))
        pairs.append(f"{key}{equals}{_hide_if(secret and bool(value), value, hidden)}")
    return "&".join(pairs)


_SECRET_KEY = re.compile(r"pass|pwd|secret|token|key|auth|sig|cred|user|login", re.IGNORECASE)
_PLAIN_VALUE = re.compile(r"[a-z]{1,12}")  # mode=insecure, format=html, blocks=yes...
_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def _hide_if(condition: bool, piece: str, hidden: list[str]) -> str:
    if not condition or not piece:
        return piece
    hidden.append(piece)
    return "***"


def _is_hostname(host: str) -> bool:
    """A DNS name with a dot, localhost, or an IP literal; anything else in the host slot is a token."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(bare)
    except ValueError:
        labels = host.split(".")
        return host == "localhost" or (
            len(labels) > 1 and all(_HOST_LABEL.fullmatch(x) for x in labels) and labels[-1].isalpha()
        )
    return True


def _looks_secret(piece: str) -> bool:
    """Tokens mix digits and letters or are long; path words like "hooks" or "services" are not."""
    text = unquote(piece)
    has_digit = any(c.isdigit() for c in text)
    mixed_case = any(c.isupper() for c in text) and any(c.islower() for c in text)
    return len(text) >= 16 or (len(text) >= 6 and has_digit) or (len(text) >= 8 and mixed_case)


# a URL inside a sentence, without the punctuation that ends the sentence
_URL_IN_TEXT = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s\"'<>]*[^\s\"'<>.,;:!?)\]]", re.IGNORECASE)


def scrub(text: str, url: str) -> str:
    """Remove `url`'s secrets (and any URL-looking text) from a message before it is logged or stored."""
    text = _URL_IN_TEXT.sub(lambda m: redact(m.group(0)), text)
    for piece in sorted(_split_secrets(url)[1], key=len, reverse=True):
        if len(piece) >= 3:  # shorter pieces would mangle ordinary words; they protect nothing
            text = text.replace(piece, "***").replace(unquote(piece), "***")
    return text


# --------------------------------------------------------------------------- apprise, lazily


def _apprise() -> ModuleType:
    """Import apprise and load its service plugins, once per process (both are cached by Python/apprise).

    On Python < 3.13 apprise's e-mail plugin imports the deprecated `imghdr` module (a shim for PGPy),
    which warns at import time; under `-W error` that warning would abort the plugin loading and leave
    mailto:// unknown. We silence exactly that warning, here, while the plugins load.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="'imghdr' is deprecated", category=DeprecationWarning)
        import apprise
        from apprise.manager_plugins import NotificationManager

        NotificationManager().load_modules()  # type: ignore[no-untyped-call]
    return apprise


@dataclass(frozen=True, slots=True)
class _Message:
    """What one apprise service receives: the body in the `source` format (apprise converts it)."""

    title: str
    body: str
    source: str
    notify_type: str
    attachment: bytes | None
    attachment_name: str | None


class Notifier:
    """Sends alerts through apprise. One instance per process: it keeps each channel's loaded services,
    so apprise's per-service rate limits (throttle) hold across alerts."""

    def __init__(
        self,
        channels: Sequence[Channel],
        *,
        sleep: Callable[[float], None] = time.sleep,
        retries: int = 2,
        backoff: float = 1.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        scratch_dir: Path | None = None,
    ) -> None:
        self._channels = tuple(channels)
        self._sleep = sleep
        self._retries = retries
        self._backoff = backoff  # seconds before the first in-cycle retry, doubling after
        self._clock = clock
        self._scratch_dir = scratch_dir  # where attachments are written for the send (None: system temp)
        self._services: dict[str, tuple[Any, ...]] = {}
        # services of a multi-service channel (an apprise config file) that already took an alert: a retry
        # re-sends only to the others
        self._accepted: dict[tuple[str, str], set[int]] = {}

    def send(self, channel: Channel, alert: Alert) -> None:
        """Deliver `alert` to every service of `channel`, retrying; raises DeliveryError when it cannot."""
        import tenacity  # lazy, like apprise: only the sending path needs it

        self._load(channel)  # a channel apprise cannot load fails now: retrying cannot fix a URL
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self._retries + 1),
            wait=tenacity.wait_exponential(multiplier=self._backoff, max=60),
            retry=tenacity.retry_if_exception_type(DeliveryError),
            sleep=self._sleep,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                self._attempt(channel, alert)

    def test(self) -> list[tuple[str, str | None]]:
        """`notify test`: one test message to every channel, one attempt each: (label, error or None)."""
        alert = connectivity_alert(self._clock())
        results: list[tuple[str, str | None]] = []
        for channel in self._channels:
            try:
                self._attempt(channel, alert)
            except DeliveryError as exc:
                results.append((channel.label, str(exc)))
            else:
                results.append((channel.label, None))
        return results

    def _attempt(self, channel: Channel, alert: Alert) -> None:
        services = self._load(channel)
        done = self._accepted.setdefault((channel.key, alert.event_id), set())
        errors = []
        for index, service in enumerate(services):
            if index not in done:
                error = self._send_one(service, alert)
                if error is None:
                    done.add(index)
                else:
                    errors.append(error)
        if errors:
            raise DeliveryError(scrub(f"{channel.label}: {'; '.join(errors)}", channel.url))
        del self._accepted[(channel.key, alert.event_id)]

    def _load(self, channel: Channel) -> tuple[Any, ...]:
        if channel.key not in self._services:
            self._services[channel.key] = load_services(channel)
        return self._services[channel.key]

    def _send_one(self, service: Any, alert: Alert) -> str | None:
        """Send to one apprise service; the reason it failed, or None."""
        apprise = _apprise()
        message = _shape(service, alert)
        with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:
            try:
                with self._attachment(message) as attach:
                    sender = apprise.Apprise(asset=service.asset)
                    sender.add(service)
                    ok = bool(
                        sender.notify(
                            body=message.body,
                            title=message.title,
                            body_format=apprise.NotifyFormat(message.source),
                            notify_type=message.notify_type,
                            attach=attach,
                        )
                    )
            except (apprise.exception.AppriseException, OSError) as exc:
                return f"{type(exc).__name__}: {exc}"
        return None if ok else (_reason(captured.getvalue()) or "refused (apprise gave no reason)")

    @contextmanager
    def _attachment(self, message: _Message) -> Iterator[Any]:
        """The full diff as a temporary UTF-8 text file named like the alert says, deleted after the send."""
        if message.attachment is None:
            yield None
            return
        apprise = _apprise()
        with tempfile.TemporaryDirectory(prefix="watchdog-alert-", dir=self._scratch_dir) as folder:
            path = Path(folder) / _safe_filename(message.attachment_name)
            path.write_bytes(message.attachment)
            yield apprise.AppriseAttachment(_utf8_text_file(str(path)))


def load_services(channel: Channel) -> tuple[Any, ...]:
    """The apprise services behind a channel: one for a URL, any number for a config file. Raises
    DeliveryError (secrets scrubbed) when apprise cannot load it: an unknown scheme, a missing host..."""
    services, reason = _try_load(channel)
    if not services:
        raise DeliveryError(scrub(f"{channel.label}: cannot load channel: {reason}", channel.url))
    return services


def _try_load(channel: Channel) -> tuple[tuple[Any, ...], str]:
    """(services, apprise's reason when there are none)."""
    apprise = _apprise()
    with _unpropagated("apprise"), apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:
        services = _instantiate(apprise, channel.url, _asset(apprise))
    return services, _reason(captured.getvalue()) or "no usable apprise service"


@contextmanager
def _unpropagated(name: str) -> Iterator[None]:
    """Keep a logger's records out of our log while we capture them (they become one reason, scrubbed)."""
    logger = logging.getLogger(name)
    before, logger.propagate = logger.propagate, False
    try:
        yield
    finally:
        logger.propagate = before


def unusable_channels(channels: Sequence[Channel]) -> list[tuple[int, str]]:
    """(index, reason) of every channel apprise cannot load, for `config check`."""
    problems = []
    for index, channel in enumerate(channels):
        services, reason = _try_load(channel)
        if not services:
            problems.append((index, scrub(f"apprise cannot use it: {reason}", channel.url)))
    return problems


def _asset(apprise: ModuleType) -> Any:
    # storage in memory only: apprise must not write state files of its own; sequential dispatch: one
    # service per call here, so no worker threads are needed
    return apprise.AppriseAsset(
        app_id=APP_ID,
        app_desc="policy-watchdog alerts",
        storage_mode="memory",
        async_mode=False,
        secure_logging=True,
    )


def _instantiate(apprise: ModuleType, url: str, asset: Any) -> tuple[Any, ...]:
    if "://" not in url or url.startswith("file://"):
        # an apprise YAML/text config file (config.py resolved its path): every service in it
        config = apprise.AppriseConfig(asset=asset)
        config.add(url)
        return tuple(apprise.Apprise(config, asset=asset).find())
    service = apprise.Apprise.instantiate(url, asset=asset)
    return () if service is None else (service,)


def _reason(log_text: str) -> str:
    """apprise's captured log lines as one short reason (deduplicated, in order)."""
    lines = dict.fromkeys(line.strip() for line in log_text.splitlines() if line.strip())
    return "; ".join(lines)[:500]


def _safe_filename(name: str | None) -> str:
    base = re.sub(r"[^A-Za-z0-9._@-]+", "_", Path(name or "").name).strip("._")
    return base or "diff.txt"


def connectivity_alert(now: datetime) -> Alert:
    """The message `notify test` sends."""
    message = StatusMessage(f"test@{iso(now)}", "test", "", "policy-watchdog", "", now, "")
    return Alert(
        event_id=message.event_id,
        kind="test",
        target_id="",
        title="policy-watchdog: test message",
        text="",
        markdown="",
        html="",
        tags=("test",),
        message=message_to_json(message),
    )


def _utf8_text_file(path: str) -> Any:
    """An apprise file attachment sent as text/plain; charset=utf-8 (apprise's own guess, from the file
    name, has no charset: mail clients would then read the UTF-8 diff as ASCII or Latin-1)."""
    from apprise.attachment.file import AttachFile

    class Utf8TextFile(AttachFile):
        @property
        def mimetype(self) -> str | None:
            return "text/plain; charset=utf-8" if self.exists() else None  # type: ignore[no-untyped-call]

    return Utf8TextFile(path)  # type: ignore[no-untyped-call]


# --------------------------------------------------------------------------- format and length per service


def _formats(service: Any) -> tuple[str, ...]:
    declared = service.notify_format
    return tuple(_format_name(f) for f in (declared if isinstance(declared, tuple | list) else (declared,)))


def _format_name(value: Any) -> str:
    """The lower-case name ("html", "markdown", "text") of an apprise NotifyFormat or a string.

    NotifyFormat is a str Enum whose str() is "NotifyFormat.HTML" on Python 3.11: use its value."""
    return str(getattr(value, "value", value)).lower()


def _schemes(service: Any) -> tuple[str, ...]:
    found: list[str] = []
    for attribute in ("protocol", "secure_protocol"):
        value = getattr(service, attribute, None)
        found.extend(value if isinstance(value, tuple | list) else [value] if value else [])
    return tuple(str(v).lower() for v in found)


def _facts(service: Any) -> ServiceFacts:
    """What render needs to know about a service: what it renders, its title field, attachments."""
    formats = _formats(service)
    resolved = {_format_name(service.resolve_format(f)) for f in formats}
    forced = resolved.pop() if len(formats) > 1 and len(resolved) == 1 else None  # a ?format= in the URL
    return ServiceFacts(
        schemes=_schemes(service),
        formats=formats,
        forced=forced,
        title_field=int(service.title_maxlen) > 0,
        attachments=bool(service.attachment_support),
    )


def _shape(service: Any, alert: Alert) -> _Message:
    """The message one service gets: rendered from the alert's format-neutral message for what the
    service renders (watchdog.render.services), cut to its limits with the archive link kept."""
    shape = shape_for(_facts(service))
    target = _format_name(service.resolve_format(shape.declare))
    fits = _fits(service, source=shape.declare, target=target)
    notify_type = _NOTIFY_TYPES.get(alert.kind, "info")
    if alert.message is None:  # queued by an earlier release: its own text, cut at a line
        body = _legacy_body(alert, fits)
        return _Message(alert.title, body, "text", notify_type, None, None)
    written = write(
        message_from_json(alert.message),
        shape,
        fits=fits,
        title_max=int(service.title_maxlen) or 250,
    )
    return _Message(
        written.title, written.body, shape.declare, notify_type, written.attachment, written.attachment_name
    )


def _fits(service: Any, *, source: str, target: str) -> Callable[[str], bool]:
    """Does a body, once apprise converted it to the service's format and dialect, fit its limits?"""
    from apprise import NotifyFormat
    from apprise.conversion import convert_between

    max_chars, max_lines = int(service.body_maxlen), int(service.body_max_line_count)
    source_format, target_format = NotifyFormat(source), NotifyFormat(target)

    def fits(body: str) -> bool:
        converted = convert_between(source_format, target_format, body)  # type: ignore[no-untyped-call]
        final = str(service.dialect_convert(converted, target_format)).rstrip()
        too_long = 0 < max_chars < len(final)
        return not too_long and (max_lines <= 0 or len(_LINE_BREAK.split(final)) <= max_lines)

    return fits


_LINE_BREAK = re.compile(r"\r*\n")  # how apprise counts lines (body_max_line_count)


def _legacy_body(alert: Alert, fits: Callable[[str], bool]) -> str:
    """An alert queued before messages were format-neutral: its plain text, whole lines, then a pointer."""
    body = alert.text
    if fits(body):
        return body
    pointer = "\n" + POINTER.format(event_id=alert.event_id)
    lines = body.splitlines(keepends=True)
    count = largest(len(lines), lambda n: fits("".join(lines[:n]).rstrip() + pointer))
    return ("".join(lines[:count]).rstrip() + pointer) if count else pointer.strip()


# --------------------------------------------------------------------------- the delivery loop


_END_OF_TIME = datetime(9999, 12, 31, tzinfo=UTC)


def deliver_pending(
    outbox: Outbox,
    notifier: Notifier,
    channels: Sequence[Channel],
    *,
    now: datetime,
    backoff: Callable[[int], timedelta] = default_backoff,
    ignore_backoff: bool = False,
) -> DeliveryReport:
    """Send what the outbox owes, per channel in id order.

    A channel's rows go out strictly in order: its first undelivered row must be due and accepted before
    the next is tried, so a failure (or a row still backing off) holds that channel's later rows back
    until a later cycle, while the other channels carry on. A failed row is due again at
    `now + backoff(failed attempts so far)`. Rows owed to a channel that is no longer configured stay in
    the outbox untouched (counted as `unconfigured`).

    A channel is delivered in its turn (Outbox.channel_turn): on an archive shared by several nodes, one
    node at a time; a channel another node is delivering is left to it (`elsewhere`), and its rows are read
    again once the turn is ours, so none goes out twice.
    """
    configured = {channel.key: channel for channel in channels}
    counts: Counter[str] = Counter()
    errors: list[tuple[str, str]] = []
    for key, owed in Counter(d.channel_key for d in outbox.all_pending()).items():
        channel = configured.get(key)
        if channel is None:
            counts["unconfigured"] += owed
            continue
        with outbox.channel_turn(key) as ours:
            if not ours:
                counts["elsewhere"] += owed
                continue
            # ignore_backoff: the caller's passes are spaced already (a `check` run, the daemon's delivery
            # pass), and the contract says each of them retries what is owed: a channel back up gets its
            # alerts at once
            pending = outbox.all_pending(channel=key)
            due = pending if ignore_backoff else outbox.pending_deliveries(now, channel=key)
            due_ids = {d.id for d in due}
            error = _deliver_channel(outbox, notifier, channel, pending, due_ids, counts, now, backoff)
            if error is not None:
                errors.append((channel.label, error))
    return DeliveryReport(
        delivered=counts["delivered"],
        failed=counts["failed"],
        skipped=counts["skipped"],
        waiting=counts["waiting"],
        unconfigured=counts["unconfigured"],
        elsewhere=counts["elsewhere"],
        errors=tuple(errors),
    )


def _deliver_channel(
    outbox: Outbox,
    notifier: Notifier,
    channel: Channel,
    pending: Sequence[Delivery],
    due: set[int],
    counts: Counter[str],
    now: datetime,
    backoff: Callable[[int], timedelta],
) -> str | None:
    """One channel's rows in order, until one is not due or fails (the rest wait behind it); its error."""
    for index, delivery in enumerate(pending):
        if delivery.id not in due:
            counts["waiting"] += 1
            counts["skipped"] += len(pending) - index - 1
            return None
        error = _deliver_one(outbox, notifier, channel, delivery, now=now, backoff=backoff)
        counts["delivered" if error is None else "failed"] += 1
        if error is not None:
            counts["skipped"] += len(pending) - index - 1
            return error
    return None


def _deliver_one(
    outbox: Outbox,
    notifier: Notifier,
    channel: Channel,
    delivery: Delivery,
    *,
    now: datetime,
    backoff: Callable[[int], timedelta],
) -> str | None:
    try:
        notifier.send(channel, delivery.alert)
    except DeliveryError as exc:
        retry_at = now + backoff(delivery.attempts + 1)
        outbox.mark_failed(delivery.id, str(exc), retry_at, at=now)
        log.warning(
            "alert %s not delivered to %s (retry at %s): %s",
            delivery.alert.event_id,
            channel.label,
            iso(retry_at),
            exc,
        )
        return str(exc)
    outbox.mark_delivered(delivery.id, now)  # right away: this is the duplicate window, keep it short
    log.info("alert %s delivered to %s", delivery.alert.event_id, channel.label)
    return None

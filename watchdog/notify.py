"""Stage notify: routes rendered alerts to apprise channels and drains the persistent outbox.

    ... -> classify -> render -> store (+ outbox rows) -> **notify** (route, send, retry, mark delivered)

- `route` decides which channels an alert is owed to (tags, `notify = "all"`, failure alerts).
- `Notifier` sends one alert to one channel through apprise, in the format and within the length limit
  of each service behind the channel, retrying a few times inside the cycle (tenacity, injected sleep).
- `deliver_pending` walks the outbox: in id order per channel, one failing channel never blocks another,
  and a channel that is down keeps its rows, in order, for a later pass. Every send is logged before it
  starts (write-ahead) and completed after: refused sends are retried (in the pass, then after a backoff,
  for as long as it takes); a send with no answer is sent once more after its backoff and never a third
  time (README, "Nothing lost, at most twice", says why).

This is the only module that knows apprise. It is imported lazily (see `_apprise`): loading apprise and
its ~150 service plugins costs a few hundred milliseconds that commands which send nothing never pay.
Every apprise failure (a False return, an exception, a URL it cannot load) becomes a `DeliveryError`
whose reason is apprise's own WARNING-level log output, scrubbed of the channel's secrets.

A send is "uncertain" (DeliveryUncertain) when apprise's log shows a transport error after the request
could have gone out (a read time-out, a connection closed before the answer); a refused connection, a
name that does not resolve or an answer from the service (an HTTP status, an SMTP reply code) is a plain
refusal (DeliveryError): nothing arrived, a retry cannot duplicate.
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
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from watchdog.deferred import deferred
from watchdog.errors import ChannelUnusable, DeliveryError, DeliveryUncertain
from watchdog.messages import Alert, Delivery, StatusMessage, message_from_json, message_to_json
from watchdog.models import AttemptOutcome, Channel, iso
from watchdog.patterns import lazy
from watchdog.results import OwedAlert
from watchdog.storage.interfaces import Outbox

# Rendering and digests are loaded when a message is first written or grouped (watchdog/deferred.py): the
# config reads channels' keys and redacted labels from here, and a cycle with nothing owed sends nothing.
if TYPE_CHECKING:
    from watchdog import digest
    from watchdog.render import compose
    from watchdog.render import services as render_services
else:
    compose = deferred("watchdog.render.compose")
    digest = deferred("watchdog.digest")
    render_services = deferred("watchdog.render.services")

log = logging.getLogger(__name__)

POINTER = "… (truncated; full diff in the archive: {event_id})"
APP_ID = "policy-watchdog"
# apprise's NotifyType per alert kind: it picks the colour / icon of the message
_NOTIFY_TYPES = {
    "change": "warning",
    "failing": "failure",
    "recovered": "success",
    "test": "info",
    "digest": "info",
}
# Notices about a target rather than its wording: failing, recovering (and `capture`, see route()).
_STATUS_KINDS = frozenset({"failing", "recovered"})
_OPERATOR_KINDS = frozenset({"capture", "flapping"})  # about how the page is served, for operators only


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What one pass over the outbox did, in rows."""

    delivered: int = 0
    failed: int = 0  # sent and refused in this pass (retried in the pass first); due again later
    uncertain: int = 0  # sent and no answer (it may have arrived): not retried in the pass
    unconfirmed: int = 0  # MAX_UNCERTAIN_SENDS sends without an answer before: never sent again by itself
    unusable: int = 0  # the first row of a channel apprise cannot load: nothing sent
    skipped: int = 0  # held back behind an earlier undelivered row of the same channel
    waiting: int = 0  # a channel's first undelivered row, not due yet (backing off)
    unconfigured: int = 0  # owed to a channel no longer in the config: kept, not sent
    elsewhere: int = 0  # owed to a channel another node was delivering at that moment (a shared archive)
    errors: tuple[tuple[str, str], ...] = ()  # (channel label, reason) per failure
    unusable_channels: tuple[str, ...] = ()  # keys of the channels apprise could not load


def default_backoff(attempts: int) -> timedelta:
    """1 min after the first failed attempt, then doubling, capped at 30 min: an hourly `check` timer
    always finds a row that is still owed due again."""
    return min(timedelta(minutes=1) * (1 << min(max(attempts - 1, 0), 10)), timedelta(minutes=30))


# --------------------------------------------------------------------------- routing


def route(alert: Alert, channel: Channel, *, target_notify: str = "topics") -> bool:
    """Is `alert` owed to `channel`?

    Failure / recovery alerts go to channels tagged "failing" and to untagged ones. A capture notice (the
    page's shape changed, not its wording: kinds.py, a selector alternative switch) goes only to channels
    tagged "failing": operators asked for it; an untagged channel is a reader's, and a reader is told of
    wording changes. So does a flap note (the page flips between variants: kinds.py). A change that
    touches no topic goes only where the channel or the target asks for all
    changes. Otherwise an untagged channel takes everything and a tagged one only alerts sharing a tag
    (topic ids, severities, target ids).
    """
    if alert.kind in _STATUS_KINDS:
        return not channel.tags or "failing" in channel.tags
    if alert.kind in _OPERATOR_KINDS:  # the capture changed shape: operators only (TEAM.md agreement 5)
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


_SECRET_KEY = lazy(r"pass|pwd|secret|token|key|auth|sig|cred|user|login", re.IGNORECASE)
_PLAIN_VALUE = lazy(r"[a-z]{1,12}")  # mode=insecure, format=html, blocks=yes...
_HOST_LABEL = lazy(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


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
_URL_IN_TEXT = lazy(r"\b[a-z][a-z0-9+.-]*://[^\s\"'<>]*[^\s\"'<>.,;:!?)\]]", re.IGNORECASE)


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

    def send(self, channel: Channel, alert: Alert) -> None:
        """Deliver `alert` to every service of `channel`, retrying refusals; raises DeliveryError when it
        cannot (DeliveryUncertain at once, never retried: the channel may have it already)."""
        accepted: frozenset[str] = frozenset()
        for attempt in self.retrying():
            with attempt:
                try:
                    self.send_once(channel, alert, accepted=accepted)
                except DeliveryError as exc:
                    accepted = exc.accepted
                    raise

    def retrying(self) -> Iterable[Any]:
        """The in-pass retry policy (tenacity): refusals only, with backoff; never an uncertain send (it may
        have arrived) nor a channel apprise cannot load (retrying cannot fix a URL)."""
        import tenacity  # lazy, like apprise: only the sending path needs it

        return tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self._retries + 1),
            wait=tenacity.wait_exponential(multiplier=self._backoff, max=60),
            retry=tenacity.retry_if_exception(_worth_retrying),
            sleep=self._sleep,
            reraise=True,
        )

    def send_once(self, channel: Channel, alert: Alert, *, accepted: frozenset[str] = frozenset()) -> None:
        """One try to every service of `channel` but those in `accepted`. Raises ChannelUnusable,
        DeliveryUncertain (some service may have it) or DeliveryError (none took it), each carrying the
        services that did take it."""
        self._attempt(channel, alert, accepted)

    def unusable(self, channel: Channel) -> str | None:
        """Why apprise cannot load `channel` (None: it can). Loaded once per process."""
        try:
            self._load(channel)
        except ChannelUnusable as exc:
            return str(exc)
        return None

    def test(self) -> list[tuple[str, str | None]]:
        """`notify test`: one test message to every channel, one attempt each: (label, error or None)."""
        alert = connectivity_alert(self._clock())
        results: list[tuple[str, str | None]] = []
        for channel in self._channels:
            try:
                self._attempt(channel, alert, frozenset())
            except DeliveryError as exc:
                results.append((channel.label, str(exc)))
            else:
                results.append((channel.label, None))
        return results

    def _attempt(self, channel: Channel, alert: Alert, accepted: frozenset[str]) -> None:
        services = self._load(channel)
        done = set(accepted)
        failures: list[_Failure] = []
        for service in services:
            if _service_id(service) not in done:
                failure = self._send_one(service, alert)
                if failure is None:
                    done.add(_service_id(service))
                else:
                    failures.append(failure)
        if failures:
            kind = DeliveryUncertain if any(f.uncertain for f in failures) else DeliveryError
            message = scrub(f"{channel.label}: {'; '.join(f.reason for f in failures)}", channel.url)
            raise kind(message, accepted=frozenset(done) if len(services) > 1 else frozenset())

    def _load(self, channel: Channel) -> tuple[Any, ...]:
        if channel.key not in self._services:
            self._services[channel.key] = load_services(channel)
        return self._services[channel.key]

    def _send_one(self, service: Any, alert: Alert) -> _Failure | None:
        """Send to one apprise service; how it failed, or None."""
        apprise = _apprise()
        message = _shape(service, alert)
        # DEBUG: the transport's exception ("Socket Exception: ...") is logged there, and it tells a send
        # that never left (a refused connection) from one whose answer was lost (a time-out)
        capture = apprise.LogCapture(level=logging.DEBUG, fmt="%(levelname)s %(message)s")
        with _unpropagated("apprise"), capture as captured:  # ours only: DEBUG has the payload in it
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
                return _Failure(f"{type(exc).__name__}: {exc}", uncertain=False)  # raised before sending
        return None if ok else _failure(captured.getvalue())

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
    ChannelUnusable (secrets scrubbed) when apprise cannot load it: an unknown scheme, a missing host..."""
    services, reason = _try_load(channel)
    if not services:
        raise ChannelUnusable(scrub(f"{channel.label}: cannot load channel: {reason}", channel.url))
    return services


@dataclass(frozen=True, slots=True)
class _Failure:
    reason: str
    uncertain: bool  # the message may have reached the service


# What apprise's plugins log when a send fails. Nothing left this machine, or the service answered no:
# a retry cannot duplicate anything. Otherwise a transport error after connecting (a read time-out, a
# connection closed before the answer, an SMTP server gone after DATA) leaves the outcome unknown.
_NEVER_SENT = lazy(
    r"Failed to establish a new connection|Connection refused|Name or service not known|No route to host|"
    r"Temporary failure in name resolution|Network is unreachable|connect timeout=|ConnectTimeout",
    re.IGNORECASE,
)
_ANSWERED_NO = lazy(r"error=\d{3}\b|Socket Exception: \(\d{3}, ")  # an HTTP status, an SMTP reply
_IN_TRANSIT = lazy(r"Socket Exception|timed out", re.IGNORECASE)


def _failure(log_text: str) -> _Failure:
    """apprise's log of a failed send as a reason (its WARNING lines) and whether the message may have
    arrived anyway."""
    warnings_only = "\n".join(
        line.split(" ", 1)[1] for line in log_text.splitlines() if line.startswith(("WARNING ", "ERROR "))
    )
    reason = _reason(warnings_only) or "refused (apprise gave no reason)"
    settled = _NEVER_SENT.search(log_text) or _ANSWERED_NO.search(log_text)
    uncertain = not settled and bool(_IN_TRANSIT.search(log_text))
    return _Failure(f"{reason} (outcome unknown: it may have arrived)" if uncertain else reason, uncertain)


def _worth_retrying(exc: BaseException) -> bool:
    return isinstance(exc, DeliveryError) and not isinstance(exc, DeliveryUncertain | ChannelUnusable)


def _service_id(service: Any) -> str:
    """A secret-free identity of one service of a channel: its URL, hashed."""
    return hashlib.sha256(str(service.url()).encode("utf-8")).hexdigest()[:12]


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


def _facts(service: Any) -> render_services.ServiceFacts:
    """What render needs to know about a service: what it renders, its title field, attachments."""
    formats = _formats(service)
    resolved = {_format_name(service.resolve_format(f)) for f in formats}
    forced = resolved.pop() if len(formats) > 1 and len(resolved) == 1 else None  # a ?format= in the URL
    return render_services.ServiceFacts(
        schemes=_schemes(service),
        formats=formats,
        forced=forced,
        title_field=int(service.title_maxlen) > 0,
        attachments=bool(service.attachment_support),
    )


def _shape(service: Any, alert: Alert) -> _Message:
    """The message one service gets: rendered from the alert's format-neutral message for what the
    service renders (watchdog.render.services), cut to its limits with the archive link kept."""
    shape = render_services.shape_for(_facts(service))
    target = _format_name(service.resolve_format(shape.declare))
    fits = _fits(service, source=shape.declare, target=target)
    notify_type = _NOTIFY_TYPES.get(alert.kind, "info")
    if alert.message is None:  # queued by an earlier release: its own text, cut at a line
        body = _legacy_body(alert, fits)
        return _Message(alert.title, body, "text", notify_type, None, None)
    written = render_services.write(
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


_LINE_BREAK = lazy(r"\r*\n")  # how apprise counts lines (body_max_line_count)


def _legacy_body(alert: Alert, fits: Callable[[str], bool]) -> str:
    """An alert queued before messages were format-neutral: its plain text, whole lines, then a pointer."""
    body = alert.text
    if fits(body):
        return body
    pointer = "\n" + POINTER.format(event_id=alert.event_id)
    lines = body.splitlines(keepends=True)
    count = compose.largest(len(lines), lambda n: fits("".join(lines[:n]).rstrip() + pointer))
    return ("".join(lines[:count]).rstrip() + pointer) if count else pointer.strip()


# --------------------------------------------------------------------------- the delivery loop


END_OF_TIME = datetime(9999, 12, 31, tzinfo=UTC)  # the due time of a row never to be sent again by itself
# Sends whose outcome is unknown after which a row is never sent again by itself (see README, "Nothing
# lost, at most twice"): the first may well have arrived (a slow server), the second is the one retry
# that covers a connection really lost on the way; a third would only duplicate.
MAX_UNCERTAIN_SENDS = 2
# A send the channel refused (nothing arrived: refused connection, an error status) is retried by EVERY pass,
# whatever its row's backoff: every `check` run and every daemon delivery pass retries what is still owed
# (CONTRACT.md), so a channel that was down gets its alerts as soon as it answers again. Retrying a refusal
# can never duplicate an alert. While such rows are owed, the daemon comes back to them at least this often.
# Only a row with a send of unknown outcome waits out its backoff: a second copy is the risk there.
REFUSED_RETRY = timedelta(seconds=30)
_ACCEPTED = lazy(r"^\[accepted by: ([0-9a-f ]+)\] ")  # services of a channel that took it already
UNUSABLE = "cannot load channel"  # in a row's last error: its channel could not be loaded


def deliver_pending(
    outbox: Outbox,
    notifier: Notifier,
    channels: Sequence[Channel],
    *,
    now: datetime,
    backoff: Callable[[int], timedelta] = default_backoff,
) -> DeliveryReport:
    """Send what the outbox owes and is due, per channel in id order.

    A channel's rows go out strictly in order: its first owed row must be due and accepted before the next
    is tried, so a failure (or a row still backing off) holds that channel's later rows back until a
    later pass, while the other channels carry on. Every send is logged before it starts and completed
    after (write-ahead: a crash mid-send leaves an "unknown" attempt). A refusal is retried inside the
    pass (Notifier.retrying), then again by every later pass (its due time, at most REFUSED_RETRY away, sets
    the daemon's rhythm); a send whose outcome is unknown is not retried inside the pass, waits out
    `backoff(attempts)`, and after MAX_UNCERTAIN_SENDS of them the row is left
    unconfirmed (never sent again by itself; `status` shows it). A channel apprise cannot load is sent
    nothing and reported once, to the other channels (`failing`). Rows owed to a channel that is no
    longer configured stay in the outbox untouched (`unconfigured`).

    A channel is delivered in its turn (Outbox.channel_turn): on an archive shared by several nodes, one
    node at a time; a channel another node is delivering is left to it (`elsewhere`), and its rows are read
    again once the turn is ours, so none goes out twice.

    A digest channel's change rows wait for their period's brief (_Pass._digests, watchdog/digest.py).
    """
    tally = _Tally()
    pass_ = _Pass(outbox, notifier, channels, tally, now, backoff)
    pass_.sweep(outbox.all_pending())
    if tally.noticed:  # a channel that cannot be used was just reported: the others hear of it now
        pass_.sweep([d for d in outbox.all_pending() if d.id not in tally.seen])
    return tally.report()


@dataclass
class _Pass:
    outbox: Outbox
    notifier: Notifier
    channels: Sequence[Channel]
    tally: _Tally
    now: datetime
    backoff: Callable[[int], timedelta]

    def sweep(self, rows: Sequence[Delivery]) -> None:
        """The channels owed `rows`, each in its turn, its rows read again inside it."""
        configured = {channel.key: channel for channel in self.channels}
        for key, owed in Counter(d.channel_key for d in rows).items():
            channel = configured.get(key)
            if channel is None:
                self.tally.count("unconfigured", owed)
                continue
            with self.outbox.channel_turn(key) as ours:
                if not ours:
                    self.tally.count("elsewhere", owed)
                    continue
                pending = [d for d in self.outbox.all_pending(channel=key) if d.id not in self.tally.seen]
                due = {d.id for d in self.outbox.pending_deliveries(self.now, channel=key)}
                summed = [d for d in pending if _summed_up(d, channel)]  # change rows waiting for a brief
                self._channel(channel, [d for d in pending if not _summed_up(d, channel)], due)
                if summed:
                    self._digests(channel, summed, due)

    def _channel(self, channel: Channel, pending: Sequence[Delivery], due: set[int]) -> None:
        for delivery in pending:
            self.tally.seen.add(delivery.id)
            if delivery.uncertain_sends >= MAX_UNCERTAIN_SENDS:
                self.tally.count("unconfirmed")  # settled for good: the rows after it go on
            elif channel.key in self.tally.held:
                self.tally.count("skipped")
            elif delivery.id not in due and delivery.uncertain_sends:
                self.tally.hold(channel, "waiting")
            else:
                self._due(channel, delivery)

    def _digests(self, channel: Channel, rows: Sequence[Delivery], due: set[int]) -> None:
        """Each period that is over: one brief of its rows, sent once, marked delivered at once. A later
        period waits behind an earlier one that is not over, backing off or failing."""
        assert channel.digest is not None
        periods: dict[tuple[datetime, datetime], list[Delivery]] = {}
        for row in rows:
            self.tally.seen.add(row.id)
            if row.uncertain_sends >= MAX_UNCERTAIN_SENDS:
                self.tally.count("unconfirmed")  # its brief went unanswered twice: settled for good
            else:
                periods.setdefault(digest.period_of(row.created_at, channel.digest), []).append(row)
        for (start, end), group in sorted(periods.items()):
            if channel.key in self.tally.held:
                self.tally.count("skipped", len(group))
            elif self.now < end or any(row.uncertain_sends and row.id not in due for row in group):
                # the period is not over, or its last brief went unanswered and waits out its backoff (a
                # refused brief is tried again by every pass, like any refused alert)
                self.tally.count("waiting", len(group))
                self.tally.held.add(channel.key)
            elif (problem := self.notifier.unusable(channel)) is not None:
                self.tally.hold(channel, "unusable", problem)
                for row in group:
                    retry_at = self.now + self.backoff(row.attempts + 1)
                    self.outbox.mark_failed(row.id, problem, retry_at, at=self.now)
            else:
                self._brief(channel, group, start, end)

    def _brief(self, channel: Channel, group: Sequence[Delivery], start: datetime, end: datetime) -> None:
        """One brief for `group`: every send logged against each row before it starts, then completed
        for all of them at once; a refusal is retried in the pass, then the whole brief backs off."""
        assert channel.digest is not None
        now = self.now
        message = digest.brief(channel.digest, start, end, [row.alert for row in group], channel=channel.key)
        alert = Alert(
            event_id=message.event_id,
            kind="digest",
            target_id="",
            title=f"policy-watchdog {channel.digest} brief",
            text="",
            markdown="",
            html="",
            tags=(),
            message=message_to_json(message),
        )
        retry_at = now + self.backoff(max(row.attempts for row in group) + 1)
        accepted = _accepted(group[0].last_error)  # the services that took it in an earlier pass
        begun: dict[int, int] = {}
        try:
            for attempt in self.notifier.retrying():
                with attempt:
                    begun = {
                        row.id: self.outbox.begin_attempt(row.id, now, retry_at=retry_at) for row in group
                    }
                    try:
                        self.notifier.send_once(channel, alert, accepted=accepted)
                    except DeliveryError as exc:
                        accepted = accepted | exc.accepted
                        self._brief_failed(group, begun, exc, retry_at)
                        raise
        except DeliveryError as exc:
            outcome = "uncertain" if isinstance(exc, DeliveryUncertain) else "failed"
            log.warning(
                "digest %s not delivered to %s (%s; retry at %s): %s",
                message.event_id,
                channel.label,
                outcome,
                iso(retry_at),
                exc,
            )
            self.tally.hold(channel, outcome, str(exc))
            self.tally.count(outcome, len(group) - 1)
            return
        self.outbox.mark_delivered_many([row.id for row in group], now, attempts=begun)  # one transaction
        log.info("digest %s (%d changes) delivered to %s", message.event_id, len(group), channel.label)
        self.tally.count("delivered", len(group))

    def _brief_failed(
        self, group: Sequence[Delivery], begun: dict[int, int], exc: DeliveryError, retry_at: datetime
    ) -> None:
        uncertain = isinstance(exc, DeliveryUncertain)
        outcome: AttemptOutcome = "unknown" if uncertain else "failed"
        error = _with_accepted(str(exc), exc.accepted)
        if not uncertain:  # refused: every pass tries it again, the daemon at least every REFUSED_RETRY
            retry_at = min(retry_at, self.now + REFUSED_RETRY)
        for row in group:
            last = uncertain and row.uncertain_sends + 1 >= MAX_UNCERTAIN_SENDS
            self.outbox.mark_failed(
                row.id,
                error,
                END_OF_TIME if last else retry_at,
                at=self.now,
                outcome=outcome,
                attempt=begun[row.id],
            )

    def _due(self, channel: Channel, delivery: Delivery) -> None:
        outbox, now, backoff = self.outbox, self.now, self.backoff
        problem = self.notifier.unusable(channel)
        if problem is not None:
            told = _report_unusable(
                outbox, self.channels, channel, delivery, problem, now=now, backoff=backoff
            )
            self.tally.noticed = self.tally.noticed or told
            self.tally.hold(channel, "unusable", problem)
            return
        outcome, error = _deliver_one(outbox, self.notifier, channel, delivery, now=now, backoff=backoff)
        if error is None:
            self.tally.count(outcome)
        else:
            self.tally.hold(channel, outcome, error)


def _summed_up(delivery: Delivery, channel: Channel) -> bool:
    """A change row owed to a digest channel: it waits for its period's brief."""
    return channel.digest is not None and delivery.alert.kind in digest.DIGEST_KINDS


def _deliver_one(
    outbox: Outbox,
    notifier: Notifier,
    channel: Channel,
    delivery: Delivery,
    *,
    now: datetime,
    backoff: Callable[[int], timedelta],
) -> tuple[str, str | None]:
    """(outcome, error): delivered, failed (refused: retried later) or uncertain (it may have arrived)."""
    send = _Send(outbox, notifier, channel, delivery, now, now + backoff(delivery.attempts + 1))
    try:
        for attempt in notifier.retrying():
            with attempt:
                send.once()
    except DeliveryUncertain as exc:
        return "uncertain", str(exc)
    except DeliveryError as exc:
        log.warning(
            "alert %s not delivered to %s (retry at %s): %s", send.event, channel.label, send.when, exc
        )
        return "failed", str(exc)
    log.info("alert %s delivered to %s", send.event, channel.label)
    return "delivered", None


@dataclass
class _Send:
    """One row's sends in this pass, each logged before it starts and completed after it ends."""

    outbox: Outbox
    notifier: Notifier
    channel: Channel
    delivery: Delivery
    now: datetime
    retry_at: datetime

    @property
    def event(self) -> str:
        return self.delivery.alert.event_id

    @property
    def when(self) -> str:
        return iso(self.retry_at)

    def once(self) -> None:
        accepted = _accepted(self.delivery.last_error)
        row, alert = self.delivery.id, self.delivery.alert
        begun = self.outbox.begin_attempt(row, self.now, retry_at=self.retry_at)
        try:
            self.notifier.send_once(self.channel, alert, accepted=accepted)
        except DeliveryUncertain as exc:
            self._uncertain(begun, exc)
            raise
        except DeliveryError as exc:
            self.delivery = replace(self.delivery, last_error=_with_accepted(str(exc), exc.accepted))
            refused_retry = min(self.retry_at, self.now + REFUSED_RETRY)
            self.outbox.mark_failed(
                row, self.delivery.last_error or "", refused_retry, at=self.now, attempt=begun
            )
            raise
        # right away: this commit closes the window in which a crash would send the alert again
        self.outbox.mark_delivered(row, self.now, attempt=begun)

    def _uncertain(self, begun: int, exc: DeliveryUncertain) -> None:
        last = self.delivery.uncertain_sends + 1 >= MAX_UNCERTAIN_SENDS
        error = _with_accepted(str(exc), exc.accepted)
        retry_at = END_OF_TIME if last else self.retry_at
        self.outbox.mark_failed(
            self.delivery.id, error, retry_at, at=self.now, outcome="unknown", attempt=begun
        )
        if last:
            log.error(
                "alert %s: %d sends to %s without an answer; it is not sent again (it may well have "
                "arrived; `policy-watchdog status` lists it as unconfirmed): %s",
                self.event,
                MAX_UNCERTAIN_SENDS,
                self.channel.label,
                exc,
            )
        else:
            log.warning(
                "alert %s: no answer from %s, it may have arrived; sent once more at %s, not before: %s",
                self.event,
                self.channel.label,
                self.when,
                exc,
            )


def _accepted(last_error: str | None) -> frozenset[str]:
    match = _ACCEPTED.match(last_error or "")
    return frozenset(match.group(1).split()) if match else frozenset()


def _with_accepted(error: str, accepted: frozenset[str]) -> str:
    """The error as stored: the services that took the alert first, so that a later pass (another
    process) sends it only to the others."""
    return f"[accepted by: {' '.join(sorted(accepted))}] {error}" if accepted else error


# --------------------------------------------------------------------------- a channel that cannot be used


def _report_unusable(
    outbox: Outbox,
    channels: Sequence[Channel],
    channel: Channel,
    delivery: Delivery,
    problem: str,
    *,
    now: datetime,
    backoff: Callable[[int], timedelta],
) -> bool:
    """Nothing is sent to it; its first row records why. The first time only (its row did not say so
    already), the other channels routing `failing` are told: True when they were."""
    first_time = UNUSABLE not in (delivery.last_error or "")
    outbox.mark_failed(delivery.id, problem, now + backoff(delivery.attempts + 1), at=now)
    if not first_time:
        log.debug("%s still cannot be used: %s", channel.label, problem)
        return False
    log.error("%s cannot be used; its alerts wait until it can: %s", channel.label, problem)
    notice = channel_failing_alert(channel, problem, now)
    others = tuple(c.key for c in channels if c.key != channel.key and route(notice, c))
    if not others:
        return False
    return outbox.enqueue_notice(OwedAlert(notice.event_id, notice.to_json(), others), at=now) > 0


def channel_failing_alert(channel: Channel, problem: str, now: datetime) -> Alert:
    """The notice to the other channels (kind "failing" for routing: channels tagged `failing`)."""
    event_id = f"channel-failing@{channel.key[:16]}@{iso(now)}"
    title = f"[policy-watchdog] alert channel {channel.label} cannot be used"
    body = (
        f"policy-watchdog cannot use the alert channel {channel.label}: {problem}. Its alerts are kept and "
        "sent once it can be loaded again (check the channel URL and its ${VARIABLES})."
    )
    message = StatusMessage(
        event_id, "channel", "", "policy-watchdog", "", now, problem, title=title, body=body
    )
    return Alert(
        event_id=event_id,
        kind="failing",
        target_id="",
        title=title,
        text=body,
        markdown=body,
        html="",
        tags=("failing",),
        message=message_to_json(message),
    )


@dataclass
class _Tally:
    """Counts of one pass, and the channels whose queue stops here for this pass."""

    counts: Counter[str] = field(default_factory=Counter)
    errors: list[tuple[str, str]] = field(default_factory=list)
    held: set[str] = field(default_factory=set)
    unusable: list[str] = field(default_factory=list)
    seen: set[int] = field(default_factory=set)  # rows this pass looked at
    noticed: bool = False  # a notice was queued for the other channels during the pass

    def count(self, outcome: str, rows: int = 1) -> None:
        self.counts[outcome] += rows

    def hold(self, channel: Channel, outcome: str, error: str | None = None) -> None:
        self.counts[outcome] += 1
        self.held.add(channel.key)
        if outcome == "unusable":
            self.unusable.append(channel.key)
        if error is not None:
            self.errors.append((channel.label, error))

    def report(self) -> DeliveryReport:
        names = ("delivered", "failed", "uncertain", "unconfirmed", "unusable", "skipped", "waiting")
        counts = {name: self.counts[name] for name in (*names, "unconfigured", "elsewhere")}
        return DeliveryReport(**counts, errors=tuple(self.errors), unusable_channels=tuple(self.unusable))


# --------------------------------------------------------------------------- what is owed, per channel


@dataclass(frozen=True, slots=True)
class ChannelHealth:
    """For `status` and `deliver`: what one channel is owed, and whether it is taking it."""

    label: str
    owed: int  # alerts still to send (due now or backing off)
    unconfirmed: int  # sent MAX_UNCERTAIN_SENDS times without an answer: never sent again by itself
    failing: str | None  # why its first owed alert did not go out last time (None: nothing failed)
    next_attempt_at: datetime | None  # when its first owed alert is due (a brief: its period's end at least)
    in_brief: int = 0  # changes waiting for the channel's daily or weekly brief, none failed: not a problem

    @property
    def state(self) -> str:
        return "failing" if self.failing else ("unconfirmed" if self.unconfirmed else "ok")


def channel_health(channels: Sequence[Channel], pending: Sequence[Delivery]) -> list[ChannelHealth]:
    """Per configured channel, from the outbox's undelivered rows (Outbox.all_pending)."""
    return [_health(c, [d for d in pending if d.channel_key == c.key]) for c in channels]


def _health(channel: Channel, rows: list[Delivery]) -> ChannelHealth:
    unconfirmed = [d for d in rows if d.uncertain_sends >= MAX_UNCERTAIN_SENDS]
    owed = [d for d in rows if d.uncertain_sends < MAX_UNCERTAIN_SENDS]
    head = owed[0] if owed else None
    dues = [due for d in owed if (due := _due_at(d, channel)) is not None]
    return ChannelHealth(
        label=channel.label,
        owed=len(owed),
        unconfirmed=len(unconfirmed),
        failing=head.last_error if head is not None else None,
        next_attempt_at=min(dues, default=None),
        in_brief=sum(1 for d in owed if _summed_up(d, channel) and d.last_error is None),
    )


def _due_at(delivery: Delivery, channel: Channel) -> datetime | None:
    """When the row can next go out: a digest channel's change waits for the end of its period too."""
    if not _summed_up(delivery, channel):
        return delivery.next_attempt_at
    assert channel.digest is not None
    end = digest.period_of(delivery.created_at, channel.digest)[1]
    return max(end, delivery.next_attempt_at) if delivery.next_attempt_at else end

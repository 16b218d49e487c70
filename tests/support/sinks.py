"""Real local endpoints for the notify stage: an SMTP server (aiosmtpd) and a webhook sink (http.server),
both on 127.0.0.1 with ephemeral ports, plus `ListOutbox`, an in-memory stand-in for the store's outbox.

Fixtures: `smtp_server`, `webhook_sink`, `second_webhook_sink`, `list_outbox`, and `cloud_posts`: what
apprise's plugins for cloud-only services (Slack, Discord, Teams, Telegram) would send, intercepted at the
HTTP layer (requests), the one mock allowed; requests to 127.0.0.1 still go out for real. Load them with
`pytest_plugins = ["support.sinks"]` (tests/ is on sys.path, as for support.pageserver).

apprise URL for the SMTP server (see `SmtpSink.url`):
    mailto://USER:PASS@127.0.0.1:PORT?to=alerts@example.org&from=watchdog@example.org&mode=insecure
- `mode=insecure`: plain SMTP, no STARTTLS and no implicit TLS (apprise's other modes: `starttls`, the
  default, and `ssl`). With an explicit port apprise keeps it; `mode` alone would default to port 25.
- `from=` is required when the host is an IP address: apprise derives the sender from user@host otherwise
  and refuses "user@127.0.0.1" as an invalid From address.
- USER:PASS make apprise log in (AUTH PLAIN); the server accepts any credentials without TLS
  (`auth_require_tls=False`) and records them. Leave them out and apprise sends without AUTH.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import json
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
import requests
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from watchdog.models import Alert, Delivery, OwedAlert

# --------------------------------------------------------------------------- SMTP


class _EphemeralController(Controller):
    """aiosmtpd's Controller connects to its own port once to start the SMTP protocol; with port 0 it
    must first learn which port the OS picked."""

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


@dataclass
class SmtpSink:
    """What the SMTP server received: parsed messages and the AUTH credentials clients used."""

    host: str = "127.0.0.1"
    port: int = 0
    messages: list[EmailMessage] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)
    envelopes: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)  # (MAIL FROM, RCPT TO)
    # True: take each message, then drop the connection before the "250" reaches the client (a server
    # that crashed, or a network cut, right after DATA): the client cannot know that it arrived
    drop_after_data: bool = False

    def url(
        self, *, to: str = "alerts@example.org", user: str = "watchdog", password: str = "s3cret-pw"
    ) -> str:
        return (
            f"mailto://{user}:{password}@{self.host}:{self.port}"
            f"?to={to}&from=watchdog@example.org&mode=insecure"
        )

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        # SMTP carries CRLF line ends; Python's email parser wants the local "\n"
        raw = (envelope.original_content or b"").replace(b"\r\n", b"\n")
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.envelopes.append((envelope.mail_from or "", tuple(envelope.rcpt_tos)))
        if self.drop_after_data:
            server.transport.close()  # the reply below is never sent
        return "250 Message accepted for delivery"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            self.logins.append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=True)


@contextmanager
def running_smtp_server() -> Iterator[SmtpSink]:
    """An SMTP server on an ephemeral port of 127.0.0.1 for the duration of the block (also for scripts)."""
    sink = SmtpSink()
    controller = _EphemeralController(
        sink, hostname=sink.host, port=0, authenticator=sink.authenticate, auth_require_tls=False
    )
    controller.start()
    sink.port = controller.port
    try:
        yield sink
    finally:
        controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpSink]:
    with running_smtp_server() as sink:
        yield sink


# --------------------------------------------------------------------------- webhook


@dataclass
class WebhookSink:
    """A real HTTP endpoint recording JSON POST bodies. `down()` makes it answer 503 (or, with
    `refuse=True`, closes the listening socket so connections are refused); `up()` restores it."""

    host: str = "127.0.0.1"
    port: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    refused_posts: int = 0  # POSTs answered 503 while down
    delay: float = 0.0  # seconds between recording a POST and answering it (slower than a client waits)
    arrivals: int = 0  # POSTs whose body arrived, whatever happened next
    _status: int = 200
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        """apprise json:// URL of this sink."""
        return f"json://{self.host}:{self.port}/hook"

    def start(self) -> None:
        server = ThreadingHTTPServer((self.host, self.port), _handler_for(self))
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        # a short poll interval: shutdown() (down(refuse=True), teardown) waits for one poll
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="webhook-sink", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join(timeout=5)
            self._server = self._thread = None

    def down(self, *, refuse: bool = False) -> None:
        if refuse:
            self.stop()
        else:
            self._status = 503

    def up(self) -> None:
        self._status = 200
        if self._server is None:
            self.start()  # same port: HTTPServer sets SO_REUSEADDR

    def record(self, path: str, body: bytes) -> int:
        with self._lock:
            self.arrivals += 1
            if self._status != 200:
                self.refused_posts += 1
                return self._status
            self.received.append(json.loads(body))
            self.paths.append(path)
            return 200


def _handler_for(sink: WebhookSink) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = sink.record(self.path, body)
            time.sleep(sink.delay)  # recorded on arrival: a client that stops waiting cannot tell
            reply = b"ok" if status == 200 else b"service unavailable"
            with contextlib.suppress(ConnectionError):  # a client that gave up waiting is gone: fine
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    return Handler


@pytest.fixture
def webhook_sink() -> Iterator[WebhookSink]:
    sink = WebhookSink()
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture
def second_webhook_sink() -> Iterator[WebhookSink]:
    """Another, independent sink: for "one channel down never blocks another"."""
    sink = WebhookSink()
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


class _CloudReply:
    """What the cloud services answer: Slack's webhooks say "ok", the others a JSON object."""

    status_code = 200
    headers: ClassVar[dict[str, str]] = {}

    def __init__(self, url: str) -> None:
        self.content = b"ok" if "hooks.slack.com" in url else b'{"ok": true, "result": {}}'
        self.text = self.content.decode()

    def json(self) -> dict[str, Any]:
        return {"ok": True, "result": {}}


@pytest.fixture
def cloud_posts(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What apprise's cloud plugins send (requests.post / requests.request), as {"url", "json"}."""
    seen: list[dict[str, Any]] = []
    real_post = requests.post

    def capture(url: str, **kwargs: Any) -> Any:
        if url.startswith("http://127.0.0.1:"):  # a receiver of ours (Mattermost, a webhook): for real
            return real_post(url, **kwargs)
        data = kwargs.get("data")
        body = json.loads(data) if isinstance(data, str | bytes) else (kwargs.get("json") or data)
        seen.append({"url": url, "json": body})
        return _CloudReply(url)

    monkeypatch.setattr("requests.request", lambda method, url, **kw: capture(url, **kw))
    monkeypatch.setattr("requests.post", lambda url, **kw: capture(url, **kw))
    return seen


# --------------------------------------------------------------------------- outbox


@dataclass
class _Row:
    delivery: Delivery
    next_attempt_at: datetime
    delivered_at: datetime | None = None
    last_error: str | None = None
    outcomes: list[str] = field(default_factory=list)  # the attempt log: one outcome per attempt

    def current(self) -> Delivery:
        return replace(
            self.delivery,
            attempts=len(self.outcomes),
            next_attempt_at=self.next_attempt_at,
            uncertain_sends=self.outcomes.count("unknown"),
            last_error=self.last_error,
        )


@dataclass
class ListOutbox:
    """The store's outbox semantics in memory (watchdog.notify.Outbox): a test double of OUR store, to be
    replaced by store-backed tests. Also keeps a log of every delivery for ordering assertions."""

    rows: list[_Row] = field(default_factory=list)
    delivered_log: list[tuple[str, str]] = field(default_factory=list)  # (channel key, event id)

    def enqueue(self, alert: Alert, channel_keys: list[str], *, now: datetime) -> None:
        for key in channel_keys:
            if not any(
                r.delivery.alert.event_id == alert.event_id and r.delivery.channel_key == key
                for r in self.rows
            ):
                delivery = Delivery(len(self.rows) + 1, key, alert.to_json(), 0, now)
                self.rows.append(_Row(delivery, next_attempt_at=now))

    def enqueue_notice(self, alert: OwedAlert, *, at: datetime) -> int:
        before = len(self.rows)
        self.enqueue(Alert.from_json(alert.payload), list(alert.channel_keys), now=at)
        return len(self.rows) - before

    def pending_deliveries(self, now: datetime, *, channel: str | None = None) -> list[Delivery]:
        return [d for d in self.all_pending(channel=channel) if self._row(d.id).next_attempt_at <= now]

    def all_pending(self, *, channel: str | None = None) -> list[Delivery]:
        rows = [r for r in self.rows if r.delivered_at is None]
        return [r.current() for r in rows if channel is None or r.delivery.channel_key == channel]

    def channel_turn(self, channel_key: str) -> AbstractContextManager[bool]:
        del channel_key
        return nullcontext(True)

    def begin_attempt(self, delivery_id: int, at: datetime, *, retry_at: datetime) -> int:
        row = self._row(delivery_id)
        row.outcomes.append("unknown")
        row.next_attempt_at = retry_at
        return len(row.outcomes) - 1

    def mark_delivered(self, delivery_id: int, at: datetime, *, attempt: int | None = None) -> None:
        row = self._row(delivery_id)
        assert row.delivered_at is None, f"delivery {delivery_id} marked delivered twice"
        row.delivered_at = at
        self._complete(row, "delivered", attempt)
        self.delivered_log.append((row.delivery.channel_key, row.delivery.alert.event_id))

    def mark_delivered_many(
        self, delivery_ids: list[int], at: datetime, *, attempts: Mapping[int, int] | None = None
    ) -> None:
        for delivery_id in delivery_ids:
            self.mark_delivered(delivery_id, at, attempt=(attempts or {}).get(delivery_id))

    def mark_failed(
        self,
        delivery_id: int,
        error: str,
        retry_at: datetime,
        *,
        at: datetime,
        outcome: str = "failed",
        attempt: int | None = None,
    ) -> None:
        row = self._row(delivery_id)
        self._complete(row, outcome, attempt)
        row.last_error, row.next_attempt_at = error, retry_at

    @staticmethod
    def _complete(row: _Row, outcome: str, attempt: int | None) -> None:
        if attempt is None:
            row.outcomes.append(outcome)
        else:
            row.outcomes[attempt] = outcome

    def _row(self, delivery_id: int) -> _Row:
        return next(r for r in self.rows if r.delivery.id == delivery_id)


@pytest.fixture
def list_outbox() -> ListOutbox:
    return ListOutbox()

"""A real HTTP server on 127.0.0.1 that plays scripted pages and network faults (test support).

Not a pipeline stage: it stands in for the watched websites. Fetch, pipeline, replay and daemon tests (and
bench/ scripts, via `start_page_server()`) point the real fetchers at it, so every byte crosses a real
socket. Each path answers a scripted sequence of replies (the last one repeats), optionally with a strong
ETag / Last-Modified and 304s for conditional GETs, and can misbehave on purpose: reset the connection,
truncate the body, stream forever, send a gzip bomb, or trickle the body or the headers one byte a second
(every read time-out restarts with each byte). Every request is recorded (thread-safe).
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import socket
import struct
import sys
import threading
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import cast
from urllib.parse import urlsplit

import pytest

FAULTS = frozenset({"reset", "truncate", "endless", "gzip-bomb", "trickle", "trickle-headers"})
TRICKLE_EVERY = 1.0  # seconds between two bytes of a trickled reply
BOMB_INFLATED_SIZE = 1 << 30  # what the gzip bomb inflates to
_BOMB_BLOCK = 1 << 20
_ENDLESS_CHUNK = b"<p>and on and on</p>\n" * 800  # ~17 KB of plausible HTML per chunk
_HANDLER_JOIN_TIMEOUT = 2.0


@dataclass(frozen=True)
class Reply:
    """One scripted answer. `body` as str is sent UTF-8 encoded."""

    status: int = 200
    body: bytes | str = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (a slow route)
    fault: str | None = None  # None | "reset" | "truncate" | "endless" | "gzip-bomb" | "trickle"...

    def __post_init__(self) -> None:
        # Fail in the test's setup, not as a mysterious client error later.
        if self.fault is not None and self.fault not in FAULTS:
            raise ValueError(f"unknown fault {self.fault!r}; expected one of {sorted(FAULTS)}")

    @property
    def payload(self) -> bytes:
        return self.body.encode("utf-8") if isinstance(self.body, str) else self.body

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)


@dataclass(frozen=True)
class RecordedRequest:
    path: str  # as requested, query string included
    headers: Mapping[str, str]  # lower-case names
    method: str = "GET"


@dataclass
class _Route:
    replies: tuple[Reply, ...]
    etag: bool
    stamps: tuple[str, ...]  # Last-Modified of each reply
    served: int = 0


@dataclass(frozen=True)
class _Planned:
    reply: Reply
    etag: str | None
    last_modified: str | None


def _as_reply(item: Reply | bytes | str) -> Reply:
    return item if isinstance(item, Reply) else Reply(body=item)


def _strong_etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:24] + '"'


def _stamps(replies: tuple[Reply, ...], now: float) -> tuple[str, ...]:
    """Last-Modified per reply: a body keeps the date it first appeared in the sequence, so an
    unchanged body stays 'not modified since' while a new body is always newer than the previous ones."""
    first_seen: dict[bytes, int] = {}
    base = int(now) - 3600  # in the past: a server never claims a future modification
    stamps = []
    for index, reply in enumerate(replies):
        seen = first_seen.setdefault(reply.payload, index)
        stamps.append(email.utils.formatdate(base + seen, usegmt=True))
    return tuple(stamps)


class _State:
    """Everything the handler threads share, behind one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.routes: dict[str, _Route] = {}
        self.hits: dict[str, int] = {}
        self.requests: list[RecordedRequest] = []
        self.in_flight: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.connections: set[socket.socket] = set()
        self.threads: set[threading.Thread] = set()

    def key_for(self, raw_path: str) -> str:
        """Exact path-with-query routes win; otherwise the path alone."""
        with self.lock:
            if raw_path in self.routes:
                return raw_path
        return urlsplit(raw_path).path

    def enter(self, key: str, record: RecordedRequest) -> None:
        with self.lock:
            self.requests.append(record)
            self.hits[key] = self.hits.get(key, 0) + 1
            self.in_flight[key] = self.in_flight.get(key, 0) + 1
            self.peak[key] = max(self.peak.get(key, 0), self.in_flight[key])

    def leave(self, key: str) -> None:
        with self.lock:
            self.in_flight[key] -= 1

    def plan(self, key: str) -> _Planned | None:
        with self.lock:
            route = self.routes.get(key)
            if route is None:
                return None
            index = min(route.served, len(route.replies) - 1)
            route.served += 1
        reply = route.replies[index]
        if not route.etag or reply.status != 200 or reply.fault is not None:
            return _Planned(reply, None, None)
        etag = reply.header("ETag") or _strong_etag(reply.payload)
        return _Planned(reply, etag, reply.header("Last-Modified") or route.stamps[index])


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients hanging up (time-outs, size caps, resets) are the point of these tests, not errors.
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked transfer, like real servers
    timeout = 10  # idle keep-alive connections end on their own

    @property
    def state(self) -> _State:
        return cast(_Server, self.server).state

    def setup(self) -> None:
        super().setup()
        with self.state.lock:
            self.state.connections.add(self.connection)
            self.state.threads.add(threading.current_thread())

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.state.lock:
                self.state.connections.discard(self.connection)
                self.state.threads.discard(threading.current_thread())

    def log_message(self, format: str, *args: object) -> None:
        """Silent: pytest treats stray output as noise and the records say what happened."""

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def _serve(self, *, head: bool) -> None:
        key = self.state.key_for(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.state.enter(key, RecordedRequest(self.path, headers, self.command))
        try:
            planned = self.state.plan(key)
            if planned is None:
                self._send(Reply(404, "<h1>Not found</h1>"), head=head)
            elif not (planned.reply.delay and self.state.stopping.wait(planned.reply.delay)):
                self._answer(planned, head=head)
        finally:
            self.state.leave(key)

    def _answer(self, planned: _Planned, *, head: bool) -> None:
        reply = planned.reply
        if reply.fault == "reset":
            self._reset()
        elif reply.fault == "truncate":
            self._truncate(reply)
        elif reply.fault == "endless":
            self._endless(reply)
        elif reply.fault == "trickle":
            self._trickle_body(reply)
        elif reply.fault == "trickle-headers":
            self._trickle_headers()
        elif reply.fault == "gzip-bomb":
            self._send(reply, head=head, body=gzip_bomb(), extra={"Content-Encoding": "gzip"})
        elif planned.etag is not None and self._not_modified(planned):
            self._send_not_modified(planned)
        else:
            self._send(reply, head=head, extra=self._validators(planned))

    @staticmethod
    def _validators(planned: _Planned) -> dict[str, str]:
        if planned.etag is None or planned.last_modified is None:
            return {}
        return {"ETag": planned.etag, "Last-Modified": planned.last_modified}

    def _not_modified(self, planned: _Planned) -> bool:
        """RFC 9110 13.2.2: If-None-Match (weak comparison) takes precedence over If-Modified-Since."""
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None:
            tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
            return "*" in tags or (planned.etag or "").removeprefix("W/") in tags
        since = self.headers.get("If-Modified-Since")
        if since is None or planned.last_modified is None:
            return False
        try:
            return email.utils.parsedate_to_datetime(
                planned.last_modified
            ) <= email.utils.parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False  # an unparseable date is ignored, as the RFC says

    def _send_not_modified(self, planned: _Planned) -> None:
        self.send_response(304)
        for name, value in self._validators(planned).items():
            self.send_header(name, value)
        self.end_headers()

    def _send(
        self,
        reply: Reply,
        *,
        head: bool,
        body: bytes | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        payload = reply.payload if body is None else body
        headers = {"Content-Type": "text/html; charset=utf-8", **(extra or {}), **reply.headers}
        if not any(k.lower() in {"content-length", "transfer-encoding"} for k in headers):
            headers["Content-Length"] = str(len(payload))
        self.send_response(reply.status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if head or reply.status in {204, 304}:
            return
        chunked = any(v.lower() == "chunked" for k, v in headers.items() if k.lower() == "transfer-encoding")
        self.wfile.write(_chunked(payload) if chunked else payload)

    def _reset(self) -> None:
        """Abort: SO_LINGER 0 makes close() send an RST instead of a FIN, with no response at all."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.rfile.close()  # drop the makefile reference, so close() below really closes now
        self.connection.close()

    def _truncate(self, reply: Reply) -> None:
        """Promise more bytes than we send, then hang up: the body arrives incomplete."""
        payload = reply.payload
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.header("Content-Type") or "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(payload) + 1000))
        self.end_headers()
        self.wfile.write(payload)
        self.close_connection = True

    def _endless(self, reply: Reply) -> None:
        """Chunked data until the client goes away (the write then fails) or the server stops."""
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.header("Content-Type") or "text/html; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        frame = b"%x\r\n%s\r\n" % (len(_ENDLESS_CHUNK), _ENDLESS_CHUNK)
        while not self.state.stopping.is_set():
            self.wfile.write(frame)
        self.close_connection = True

    def _trickle_body(self, reply: Reply) -> None:
        """Headers at once, then a chunked body one byte a second (the page, then spaces for ever)."""
        self.send_response(reply.status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        payload = reply.payload or b"<p>slow</p>"
        for index in range(1 << 30):
            byte = payload[index : index + 1] or b" "
            self.wfile.write(b"1\r\n%s\r\n" % byte)
            if self.state.stopping.wait(TRICKLE_EVERY):
                break
        self.close_connection = True

    def _trickle_headers(self) -> None:
        """A status line, then one header that never ends, one byte a second."""
        self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        while not self.state.stopping.wait(TRICKLE_EVERY):
            self.wfile.write(b"a")
        self.close_connection = True


def _chunked(payload: bytes, size: int = 16 * 1024) -> bytes:
    """HTTP/1.1 chunked framing: a body whose length is never announced."""
    pieces = [payload[i : i + size] for i in range(0, len(payload), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


@cache
def gzip_bomb() -> bytes:
    """A valid gzip stream (~1 MB) that inflates to BOMB_INFLATED_SIZE zero bytes.

    After a full flush deflate forgets its history, so every further 1 MiB of zeros compresses to the
    very same byte-aligned block: one block is computed and repeated instead of compressing 1 GiB.
    """
    zeros = bytes(_BOMB_BLOCK)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    final = compressor.flush()  # an empty final block
    crc = 0
    for _ in range(BOMB_INFLATED_SIZE // _BOMB_BLOCK):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"  # magic, deflate, no flags, mtime 0, max, OS ?
    trailer = struct.pack("<II", crc, BOMB_INFLATED_SIZE & 0xFFFFFFFF)
    return header + block * (BOMB_INFLATED_SIZE // _BOMB_BLOCK) + final + trailer


class PageServer:
    """The scripted site. Start with `start_page_server()` (or the `page_server` fixture)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._state = _State()
        self._server = _Server((host, 0), _Handler)
        self._server.state = self._state
        host, port = self._server.server_address[:2]
        self.base_url = f"http://{host!s}:{port}"
        # A short poll interval keeps stop() (and so each test's teardown) fast.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"page-server-{port}",
            daemon=True,
        )
        self._thread.start()

    def url(self, path: str) -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def set(self, path: str, *replies: Reply | bytes | str, etag: bool = True) -> None:
        """Request n gets replies[n]; the last one repeats. Replaces the path's earlier script."""
        if not replies:
            raise ValueError("set() needs at least one reply")
        script = tuple(_as_reply(item) for item in replies)
        route = _Route(script, etag, _stamps(script, time.time()))
        with self._state.lock:
            self._state.routes[path] = route

    def redirect(self, path: str, to: str, status: int = 302) -> None:
        self.set(path, Reply(status, headers={"Location": to}), etag=False)

    def hits(self, path: str) -> int:
        with self._state.lock:
            return self._state.hits.get(path, 0)

    def peak_concurrency(self, path: str) -> int:
        """The most requests for `path` that were being answered at the same time."""
        with self._state.lock:
            return self._state.peak.get(path, 0)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request so far, in arrival order."""
        with self._state.lock:
            return list(self._state.requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if urlsplit(r.path).path == urlsplit(path).path]

    def stop(self) -> None:
        """Stop serving, cut live connections (slow and endless replies) and wait for the handlers."""
        self._state.stopping.set()
        self._server.shutdown()
        with self._state.lock:
            connections = list(self._state.connections)
            threads = list(self._state.threads)
        for connection in connections:
            _shutdown_quietly(connection)
        for thread in threads:
            thread.join(_HANDLER_JOIN_TIMEOUT)
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> PageServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _shutdown_quietly(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by its handler: nothing left to cut
        connection.shutdown(socket.SHUT_RDWR)


def start_page_server(host: str = "127.0.0.1") -> PageServer:
    """A running server on an ephemeral port of `host` (another loopback address such as 127.0.0.2 plays a
    second machine); call stop() (or use it as a context manager)."""
    return PageServer(host)


@pytest.fixture
def page_server() -> Iterator[PageServer]:
    server = start_page_server()
    try:
        yield server
    finally:
        server.stop()

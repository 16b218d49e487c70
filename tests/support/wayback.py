"""A local Wayback Machine (test support): the CDX API and raw captures, on 127.0.0.1.

It speaks the protocol `import wayback` uses, as the Internet Archive documents it:

    GET /cdx/search/cdx?url=U&output=json[&collapse=digest][&filter=statuscode:200][&from=..][&to=..]
        -> a JSON array whose first row names the fields (urlkey, timestamp, original, mimetype,
           statuscode, digest, length), one row per capture, oldest first; `collapse=digest` drops a
           capture whose digest is the one of the row before it; `from`/`to` are timestamp prefixes
    GET /web/<timestamp>id_/<original>
        -> the capture's bytes as archived; a timestamp that is not a capture's is redirected (302) to the
           nearest capture, as the Wayback Machine does

Captures are real raw pages (the corpus's HTML snapshots in tests/fixtures). `throttle(n)` makes the next
n capture requests answer 429 with `Retry-After: 1`. Every request is recorded with its time, and the
server counts how many it served at once (`peak`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

FIELDS = ["urlkey", "timestamp", "original", "mimetype", "statuscode", "digest", "length"]


@dataclass(frozen=True)
class Archived:
    timestamp: str  # yyyyMMddhhmmss
    original: str
    body: bytes
    status: int = 200

    @property
    def digest(self) -> str:
        # the Wayback Machine's digest is the base32 SHA-1 of the payload
        return base64.b32encode(hashlib.sha1(self.body).digest()).decode()

    @property
    def moment(self) -> datetime:
        return datetime.strptime(self.timestamp, "%Y%m%d%H%M%S")


@dataclass
class WaybackServer:
    captures: list[Archived] = field(default_factory=list)
    requests: list[tuple[float, str]] = field(default_factory=list)
    peak: int = 0
    _active: int = 0
    _throttled: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add(self, timestamp: str, original: str, body: bytes, *, status: int = 200) -> Archived:
        archived = Archived(timestamp, original, body, status)
        self.captures.append(archived)
        self.captures.sort(key=lambda c: c.timestamp)
        return archived

    def throttle(self, count: int) -> None:
        self._throttled = count

    def capture_requests(self) -> list[tuple[float, str]]:
        return [r for r in self.requests if r[1].startswith("/web/")]

    # ----------------------------------------------------------------- the protocol

    def cdx(self, query: dict[str, list[str]]) -> list[list[str]]:
        url = query.get("url", [""])[0]
        rows = [c for c in self.captures if c.original == url]
        wanted = query.get("filter", [])
        if "statuscode:200" in wanted:
            rows = [c for c in rows if c.status == 200]
        since, until = query.get("from", [""])[0], query.get("to", [""])[0]
        if since:
            rows = [c for c in rows if c.timestamp >= since.ljust(14, "0")]
        if until:
            rows = [c for c in rows if c.timestamp <= until.ljust(14, "9")]
        if query.get("collapse", [""])[0] == "digest":
            rows = [c for i, c in enumerate(rows) if i == 0 or c.digest != rows[i - 1].digest]
        table = [FIELDS]
        for c in rows:
            key = urlsplit(c.original)
            urlkey = f"{key.hostname},){key.path}"
            table.append(
                [urlkey, c.timestamp, c.original, "text/html", str(c.status), c.digest, str(len(c.body))]
            )
        return table

    def capture(self, timestamp: str, original: str) -> Archived | None:
        same = [c for c in self.captures if c.original == original]
        if not same:
            return None
        wanted = datetime.strptime(timestamp.ljust(14, "0")[:14], "%Y%m%d%H%M%S")
        return min(same, key=lambda c: abs((c.moment - wanted).total_seconds()))

    # ----------------------------------------------------------------- the server

    def start(self) -> None:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def enter(self, path: str) -> bool:
        """Record a request; False when it is to be throttled."""
        with self._lock:
            self.requests.append((time.monotonic(), path))
            self._active += 1
            self.peak = max(self.peak, self._active)
            if path.startswith("/web/") and self._throttled > 0:
                self._throttled -= 1
                return False
            return True

    def leave(self) -> None:
        with self._lock:
            self._active -= 1


def _handler(archive: WaybackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            allowed = archive.enter(self.path)
            try:
                time.sleep(0.02)  # a moment of service time, so overlapping requests would show in `peak`
                if not allowed:
                    self._send(429, b"slow down", "text/plain", {"Retry-After": "1"})
                elif self.path.startswith("/cdx/search/cdx"):
                    table = archive.cdx(parse_qs(urlsplit(self.path).query))
                    self._send(200, json.dumps(table).encode(), "application/json")
                elif self.path.startswith("/web/"):
                    self._capture()
                else:
                    self._send(404, b"not found", "text/plain")
            finally:
                archive.leave()

        def _capture(self) -> None:
            stamp, _, original = self.path[len("/web/") :].partition("/")
            timestamp = stamp.removesuffix("id_")
            found = archive.capture(timestamp, original)
            if found is None:
                self._send(404, b"not archived", "text/plain")
            elif found.timestamp != timestamp:
                self._send(302, b"", "text/plain", {"Location": f"/web/{found.timestamp}id_/{original}"})
            else:
                self._send(found.status, found.body, "text/html; charset=utf-8")

        def _send(self, status: int, body: bytes, kind: str, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def wayback_server() -> Iterator[WaybackServer]:
    server = WaybackServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()

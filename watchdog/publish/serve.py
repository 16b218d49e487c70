"""Stage 7, publish: `serve`, a read-only HTTP view of the static archive and the feeds.

    /                 -> <storage dir>/site/index.html        /feeds/<name>  -> <storage dir>/feeds/<name>
    /<path>.html      -> <storage dir>/site/<path>.html
    /compare?from=<version id>&to=<version id>   any two versions of a target, diffed on demand (the
                      static site has the pages of each version against the previous and the first one)
    /search?q=<words>[&target=<id>]   the archive's sentences holding the words, with when each was
                      first and last seen (at most site.SEARCH_PAGE_LIMIT; the sentence index, read-only)

GET and HEAD only (anything else: 405); no write endpoint. Every file carries a strong ETag (SHA-256 of its
bytes) and Last-Modified, and conditional requests get 304, so feed readers poll cheaply. The request path
is checked segment by segment after percent-decoding (no "..", ".", hidden names, NUL, control characters,
backslashes or encoded slashes), then resolved and checked to lie inside its root (symlinks included): a
traversal attempt is a 400 or 404, never a file outside the archive. Errors are short text/plain answers;
nothing a client sends can produce a traceback. Bound to 127.0.0.1 unless told otherwise.

What a client can hold, bounded (`Limits`): a connection may stay silent `idle_timeout` seconds (before a
request or inside one); once a request has begun, its line and headers must be complete within
`header_timeout` seconds, however slowly they trickle (each read waits no longer than the time left); at most
`max_connections` connections are served at once, each on its own thread, and one more is answered 503 at
once by the accepting thread, without a thread of its own. Only HTTP/1.0 and HTTP/1.1 are spoken: an
HTTP/0.9 request (no version) or another version gets a 400 with its status line. A request with a body is
never left in the connection for the next request to be read from (request smuggling): GET and HEAD with
a body get a 400, other methods a 405, and either closes the connection.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import io
import logging
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

from watchdog.config import Config
from watchdog.errors import NotFoundError, StorageError, WatchdogError
from watchdog.publish import after_cycle
from watchdog.publish.archive import diff_cache_dir
from watchdog.publish.site import CSS_HASH, compare_page, search_page
from watchdog.storage import open_store

log = logging.getLogger(__name__)

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".gz": "application/gzip",
    ".json": "application/json",  # chain-heads.json
}
SECURITY_HEADERS = (
    (
        "Content-Security-Policy",
        f"default-src 'none'; style-src '{CSS_HASH}'; img-src 'self'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
)
MAX_PATH = 2048
_VERSION_ID = re.compile(r"[a-z0-9-]{1,100}@v[0-9]{1,9}")
HTTP_VERSIONS = frozenset({"HTTP/1.0", "HTTP/1.1"})


@dataclass(frozen=True, slots=True)
class Limits:
    """What one client may hold: time before and inside a request, and connections at once."""

    header_timeout: float = 10.0  # from a request's first byte to the end of its headers
    idle_timeout: float = 15.0  # silence allowed on a connection (between requests or inside one)
    max_connections: int = 64  # served at once, one thread each; the next one gets a 503 at once


class BadPath(WatchdogError):
    """A request path that can never name a published file (400)."""


class ServeError(WatchdogError):
    """The server cannot start (the address is in use, not allowed...): one clean line, exit 1."""


@dataclass(frozen=True, slots=True)
class Roots:
    site: Path
    feeds: Path


@dataclass(frozen=True, slots=True)
class Resource:
    body: bytes
    content_type: str
    etag: str
    last_modified: datetime


# --------------------------------------------------------------------------- mapping a path to a file


def resolve(roots: Roots, raw_target: str) -> Path | None:
    """The file a request target names, or None (404). Raises BadPath for a malformed or hostile path."""
    if len(raw_target) > MAX_PATH:
        raise BadPath("path too long")
    path = urlsplit(raw_target).path  # the query string, if any, selects nothing
    if not path.startswith("/") or raw_target.startswith("//"):
        raise BadPath("the request target must be an absolute path")
    segments = [_segment(s) for s in path.split("/")[1:]]
    root = roots.site
    if segments and segments[0] == "feeds":
        root, segments = roots.feeds, segments[1:]
    if not segments or segments[-1] == "":
        segments = [*[s for s in segments if s], "index.html"]
    if any(s == "" for s in segments):
        raise BadPath("empty path segment")
    return _contained(root, segments)


def _segment(raw: str) -> str:
    try:
        text = unquote(raw, errors="strict")
    except UnicodeDecodeError as exc:
        raise BadPath("path is not UTF-8") from exc
    if (
        text in (".", "..")
        or any(c in text for c in "/\\")
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)
    ):
        raise BadPath("forbidden path segment")
    return text


def _contained(root: Path, segments: list[str]) -> Path | None:
    if any(s.startswith(".") for s in segments):
        return None  # hidden files (manifest, lock, temporaries) are not published
    base = root.resolve()
    candidate = base.joinpath(*segments).resolve()
    if not candidate.is_relative_to(base) or not candidate.is_file():
        return None
    return candidate


def load(path: Path) -> Resource | None:
    try:
        body = path.read_bytes()
        modified = datetime.fromtimestamp(int(path.stat().st_mtime), tz=UTC)
    except OSError:  # removed or replaced between resolve and read: as if it was never there
        return None
    content_type = CONTENT_TYPES.get(path.suffix, "application/octet-stream")
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return Resource(body, content_type, etag, modified)


def not_modified(resource: Resource, if_none_match: str | None, if_modified_since: str | None) -> bool:
    """RFC 9110 13.1: If-None-Match (weak comparison) wins; else If-Modified-Since."""
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or resource.etag in tags
    if if_modified_since is None:
        return False
    try:
        since = email.utils.parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False  # an unparseable date is ignored (RFC 9110 13.1.3)
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return resource.last_modified <= since


# --------------------------------------------------------------------------- the handler


class ArchiveHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # http.server answers an unparseable request line in HTTP/0.9 style: a body with no status line at
    # all. Nobody speaks 0.9 any more; with this, every error carries its status line.
    default_request_version = "HTTP/1.1"
    server_version = "policy-watchdog"
    sys_version = ""
    raw_requestline: bytes  # set by http.server before parse_request (not in its type stubs)

    @property
    def roots(self) -> Roots:
        return cast(ArchiveServer, self.server).roots

    @property
    def limits(self) -> Limits:
        return cast(ArchiveServer, self.server).limits

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # http.server's reader, replaced by one that knows the head's deadline
        self._paced = _PacedReader(self.connection, self.limits.idle_timeout)
        self.rfile = io.BufferedReader(self._paced)

    def handle_one_request(self) -> None:
        """Wait (idle time-out) for a request's first byte, then give its line and headers
        `header_timeout`; a TimeoutError ends the connection (http.server catches it)."""
        self._paced.head_ends = None
        try:
            started = bool(cast(io.BufferedReader, self.rfile).peek(1))
        except (TimeoutError, ConnectionError):
            started = False
        if not started:
            self.close_connection = True
            return
        self._paced.head_ends = time.monotonic() + self.limits.header_timeout
        super().handle_one_request()

    def parse_request(self) -> bool:
        """http.server's parsing, plus: HTTP/1.0 and 1.1 only, no request body."""
        version = _version(self.raw_requestline)
        if version is None or version not in HTTP_VERSIONS:
            self.command = None  # type: ignore[assignment]  # as http.server leaves an unparsed request
            self.requestline = self.raw_requestline.decode("iso-8859-1").rstrip("\r\n")
            return self._refuse("only HTTP/1.0 and HTTP/1.1 are served")
        parsed = super().parse_request()
        self._paced.head_ends = None  # the head is in: the answer is written with the idle time-out
        self.connection.settimeout(self.limits.idle_timeout)
        if parsed and _has_body(self.headers):
            self.close_connection = True  # the body is never read: the connection cannot go on
            if self.command in ("GET", "HEAD"):
                return self._refuse("a GET or HEAD request has no body")
        return parsed

    def _refuse(self, message: str) -> bool:
        self.request_version = "HTTP/1.1"  # so that the answer has its status line and headers
        self.close_connection = True
        self.send_error(HTTPStatus.BAD_REQUEST, message)
        return False

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def __getattr__(self, name: str) -> Callable[[], None]:
        # http.server answers a method it has no do_X for with 501; every method but GET/HEAD is a
        # client error here (405 with Allow), whatever its name.
        if name.startswith("do_"):
            return self._not_allowed
        raise AttributeError(name)

    def _not_allowed(self) -> None:
        self._plain(HTTPStatus.METHOD_NOT_ALLOWED, "only GET and HEAD are allowed", allow="GET, HEAD")

    def _serve(self, *, head: bool) -> None:
        if urlsplit(self.path).path == "/compare":
            self._compare(head=head)
            return
        if urlsplit(self.path).path == "/search":
            self._search(head=head)
            return
        try:
            path = resolve(self.roots, self.path)
        except BadPath as exc:
            self._plain(HTTPStatus.BAD_REQUEST, f"bad request: {exc}", head=head)
            return
        resource = load(path) if path else None
        if resource is None:
            self._plain(HTTPStatus.NOT_FOUND, "not found", head=head)
        elif not_modified(resource, self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since")):
            self.send_response(HTTPStatus.NOT_MODIFIED)
            self._validators(resource)
            self.end_headers()
        else:
            self._send(resource, head=head)

    def _compare(self, *, head: bool) -> None:
        """/compare?from=<version>&to=<version>: rendered from the archive, read-only, on each request."""
        query = parse_qs(urlsplit(self.path).query, max_num_fields=4)
        wanted = [query.get(key, [""])[0] for key in ("from", "to")]
        if not all(_VERSION_ID.fullmatch(v) for v in wanted):
            self._plain(
                HTTPStatus.BAD_REQUEST, "bad request: give two version ids, ?from=<id>&to=<id>", head=head
            )
            return
        config = cast(ArchiveServer, self.server).config
        if config is None:
            self._plain(HTTPStatus.NOT_FOUND, "not found: this server has no archive to compare", head=head)
            return
        try:
            with open_store(config, writer=False) as store:
                page = compare_page(
                    config, store.archive, *wanted, cache_dir=diff_cache_dir(config.storage_dir)
                )
        except NotFoundError as exc:
            self._plain(HTTPStatus.NOT_FOUND, f"not found: {exc}", head=head)
            return
        except ValueError as exc:
            self._plain(HTTPStatus.BAD_REQUEST, f"bad request: {exc}", head=head)
            return
        self._page(page, head=head)

    def _search(self, *, head: bool) -> None:
        """/search?q=<words>[&target=<id>]: the archive's sentences holding the words (site.search_page),
        read from the archive on each request, read-only, at most SEARCH_PAGE_LIMIT sentences."""
        query = parse_qs(urlsplit(self.path).query, max_num_fields=4)
        words, target = (query.get(key, [""])[0] for key in ("q", "target"))
        config = cast(ArchiveServer, self.server).config
        if config is None:
            self._plain(HTTPStatus.NOT_FOUND, "not found: this server has no archive to search", head=head)
            return
        try:
            with open_store(config, writer=False) as store:
                page = search_page(store.archive, words, target or None)
        except ValueError as exc:
            self._plain(HTTPStatus.BAD_REQUEST, f"bad request: {exc}", head=head)
            return
        self._page(page, head=head)

    def _page(self, page: bytes, *, head: bool) -> None:
        """A page made for this request: validators from its bytes, no-cache as every answer."""
        stamp = datetime.now(UTC).replace(microsecond=0)
        etag = '"' + hashlib.sha256(page).hexdigest()[:32] + '"'
        self._send(Resource(page, CONTENT_TYPES[".html"], etag, stamp), head=head)

    def _send(self, resource: Resource, *, head: bool) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", resource.content_type)
        self.send_header("Content-Length", str(len(resource.body)))
        self._validators(resource)
        self.end_headers()
        if not head:
            self.wfile.write(resource.body)

    def _validators(self, resource: Resource) -> None:
        self.send_header("ETag", resource.etag)
        self.send_header("Last-Modified", email.utils.format_datetime(resource.last_modified, usegmt=True))
        self.send_header("Cache-Control", "no-cache")  # always revalidate: cheap with the validators

    def _plain(
        self, status: HTTPStatus, message: str, *, head: bool = False, allow: str | None = None
    ) -> None:
        body = (message + "\n").encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if allow:
            self.send_header("Allow", allow)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Malformed requests caught by http.server itself (bad request line, huge headers): plain text,
        and always a 4xx: even an unsupported HTTP version (505 in http.server) is the client's doing."""
        del explain
        self.close_connection = True
        code = HTTPStatus.BAD_REQUEST if code >= 500 else code
        self._plain(
            HTTPStatus(code), f"{code} {message or HTTPStatus(code).phrase}", head=self.command == "HEAD"
        )

    def end_headers(self) -> None:
        for name, value in SECURITY_HEADERS:
            self.send_header(name, value)
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        # the request line is client text: repr() keeps escape sequences out of the terminal and the journal
        log.info("%s %s", self.address_string(), ascii(format % args))


class _PacedReader(io.RawIOBase):
    """The connection's bytes, each read waiting no longer than the silence allowed and, while a request
    head is coming in, than the time it has left: a peer trickling one byte a second cannot stretch it."""

    def __init__(self, sock: socket.socket, idle: float) -> None:
        super().__init__()
        self._sock = sock
        self._idle = idle
        self.head_ends: float | None = None  # a time.monotonic() value

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        wait = self._idle
        if self.head_ends is not None:
            wait = min(wait, self.head_ends - time.monotonic())
            if wait <= 0:
                raise TimeoutError("the request line and headers took too long")
        self._sock.settimeout(wait)
        return self._sock.recv_into(buffer)


def _version(raw_requestline: bytes) -> str | None:
    """The HTTP version a request line names; None for an HTTP/0.9 line ("GET /") or junk."""
    words = raw_requestline.decode("iso-8859-1").split()
    return words[2] if len(words) == 3 else None


def _has_body(headers: object) -> bool:
    get = getattr(headers, "get", None)
    if get is None:
        return False
    return get("Transfer-Encoding") is not None or (get("Content-Length") or "0").strip() != "0"


_Request = socket.socket | tuple[bytes, socket.socket]  # socketserver's request type


class ArchiveServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the listen backlog: a burst of clients waits in the kernel, not here

    def __init__(
        self,
        address: tuple[str, int],
        roots: Roots,
        limits: Limits | None = None,
        *,
        config: Config | None = None,
    ) -> None:
        self.roots = roots
        self.config = config  # the archive's config: /compare reads it (None: static files only)
        self.limits = limits or Limits()
        self._slots = threading.BoundedSemaphore(self.limits.max_connections)
        if ":" in address[0]:  # an IPv6 literal such as ::1
            self.address_family = socket.AF_INET6
        super().__init__(address, ArchiveHandler)

    def process_request(self, request: _Request, client_address: Any) -> None:
        """A thread per connection while slots are free; past the cap a 503, on this (accepting) thread."""
        if not self._slots.acquire(blocking=False):
            _busy(request)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except Exception:  # the thread could not start: the slot is not used (re-raised: socketserver logs)
            self._slots.release()
            raise

    def process_request_thread(self, request: _Request, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        shown = f"[{host!s}]" if ":" in str(host) else str(host)
        return f"http://{shown}:{port}/"

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hangs up mid-answer is not an error worth a traceback; anything else is logged."""
        log.debug("connection from %s ended abnormally", client_address, exc_info=True)


# --------------------------------------------------------------------------- serve


def regenerate(config: Config) -> None:
    """Bring the site and feeds up to date once, from a read-only view of the archive."""
    try:
        with open_store(config, writer=False) as store:
            after_cycle(config, store)
    except StorageError as exc:  # e.g. a folder this user may not write: serve what is there
        log.warning("could not refresh the archive pages (%s); serving the files as they are", exc)


def make_server(config: Config, *, host: str = "127.0.0.1", port: int = 8080) -> ArchiveServer:
    """Regenerate, then bind (port 0: any free port). The caller runs serve_forever() and shutdown()."""
    regenerate(config)
    roots = Roots(config.storage_dir / "site", config.storage_dir / "feeds")
    try:
        return ArchiveServer((host, port), roots, config=config)
    except OSError as exc:
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


def _busy(request: _Request) -> None:
    """503, with the security headers, in one short write that never waits on the client."""
    body = b"busy: too many connections; try again in a few seconds\n"
    head = [
        "HTTP/1.1 503 Service Unavailable",
        "Content-Type: text/plain; charset=utf-8",
        f"Content-Length: {len(body)}",
        "Retry-After: 5",
        "Connection: close",
        *(f"{name}: {value}" for name, value in SECURITY_HEADERS),
    ]
    if not isinstance(request, socket.socket):
        return  # a datagram server's request: not ours (TCP only)
    with contextlib.suppress(OSError):
        request.setblocking(False)
        request.send(("\r\n".join(head) + "\r\n\r\n").encode("ascii") + body)


def _shutdown_when_set(stop: threading.Event, server: ArchiveServer) -> None:
    stop.wait()
    server.shutdown()


def serve(
    config: Config,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    ready: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Serve until interrupted (or until `stop` is set). `ready(url)` is called once listening."""
    server = make_server(config, host=host, port=port)
    watcher = None
    if stop is not None:
        watcher = threading.Thread(target=_shutdown_when_set, args=(stop, server), daemon=True)
        watcher.start()
    try:
        if ready is not None:
            ready(server.url)
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        if watcher is not None:
            stop.set()  # type: ignore[union-attr]
            watcher.join()

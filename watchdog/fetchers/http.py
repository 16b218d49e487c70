"""Stage 1, fetch: plain HTTP with httpx, polite and defensive.

A target's URL becomes a Capture (whatever the status: a 404 or a login page is evidence that validation
rejects later, keeping the snapshot) or a NotModified (the server answered our conditional GET with 304).
What this fetcher guarantees, whatever the server does:

- an honest User-Agent, the target's Accept-Language, gzip/deflate compression;
- bounded time: a silence limit per read (`timeout`), a deadline per attempt that no server can stretch
  (`attempt_deadline`, from the moment the host's turn comes: connect, headers and body; a body trickled
  one byte a second ends there too) and a deadline for the whole fetch (`deadline`: waiting for the
  host's turn, every attempt and backoff included; no retry starts with less than a second left), so no
  host's turn is held past them;
- bounded redirects (a loop is named as such), and none from a public URL to a private, loopback or
  link-local address (fetchers/redirects.py says why and how to allow it);
- bounded memory: the body is inflated here, in pieces of at most 64 KiB, and reading stops once the
  *decoded* size passes `max_bytes` (a gzip bomb or an endless stream raises OversizeError);
- retries only where a retry can help (time-outs, resets, truncated bodies, 5xx, 429), with exponential
  backoff and jitter, honouring Retry-After; a 4xx is an answer, not a failure (tenacity runs the retries,
  loaded with the first failed attempt: fetchers/retries.py);
- one request at a time per host (HostLimiter), even when the daemon checks targets in threads; each
  request asks for `Connection: close`, so every attempt has its own connection and its own deadline;
- no httpx exception escapes: everything becomes FetchError with a reason a person can read;
- the certificate store is loaded with the first https request (_Transports), not at start-up.
"""

from __future__ import annotations

import logging
import random
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from watchdog.deferred import deferred
from watchdog.errors import FetchError, OversizeError
from watchdog.fetchers.redirects import RedirectPolicy
from watchdog.models import FetchSettings, Target, Validators

if TYPE_CHECKING:
    from tenacity import RetryCallState

    from watchdog import results
    from watchdog.fetchers import retries
    from watchdog.results import Capture, NotModified
else:
    results = deferred("watchdog.results")  # what a fetch answers: built once a server answered
    retries = deferred("watchdog.fetchers.retries")  # tenacity: only after a first attempt that failed

log = logging.getLogger(__name__)

FETCHER_NAME = "http"
ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
# Only codings we can inflate in bounded pieces. Brotli is left out on purpose: the `brotli` package
# below 1.2 cannot cap its output per call, so a brotli bomb would defeat the size cap.
ACCEPT_ENCODING = "gzip, deflate"
DECODE_STEP = 64 * 1024  # the most a decoder hands back at once, whatever the compression ratio
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
RETRY_AFTER_STATUSES = frozenset({429, 503})
# Headers that describe the wire form of the body; the Capture keeps the decoded body, so they would lie.
WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})
MIN_ATTEMPT = 1.0  # seconds: a retry with less time than this left before the deadline is not started
# httpcore's trace events that hand over a new socket (plain, then TLS-wrapped): the deadline's handles
SOCKET_EVENTS = frozenset({"connection.connect_tcp.complete", "connection.start_tls.complete"})


def default_user_agent() -> str:
    """An honest User-Agent: who we are and where to read about us (one definition, in config.py)."""
    from watchdog.config import default_user_agent as configured

    return configured()


def utc_now() -> datetime:
    return datetime.now(UTC)


def host_of(url: str) -> str:
    """host[:port], lower-cased: the unit of politeness (and of readable error messages)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # malformed (httpx rejects it next, with a reason): the URL is its own key
        return url
    host = (parts.hostname or "").lower()
    return f"{host}:{port}" if port else host


# Across processes: the host's turn among every node sharing an archive (storage Leases.host_turn), held
# after this process's own lock, so each node queues its threads itself and sends one waiter at most.
HostTurns = Callable[[str, float | None], AbstractContextManager[bool]]


class HostLimiter:
    """One lock per host: at most one request at a time to any host, across threads and fetchers, and with
    `turns`, across every node of a shared archive."""

    def __init__(self, turns: HostTurns | None = None) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._turns = turns

    def _lock_for(self, host: str) -> threading.Lock:
        with self._guard:  # two threads meeting a new host must get the same lock
            return self._locks.setdefault(host, threading.Lock())

    @contextmanager
    def hold(self, url: str, timeout: float | None = None) -> Iterator[None]:
        """Hold the host's turn; FetchError when it does not come within `timeout` seconds."""
        host = host_of(url)
        ends = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        lock = self._lock_for(host)
        if not lock.acquire(timeout=-1 if timeout is None else max(timeout, 0.0)):
            raise FetchError(
                f"{host} stayed busy with another of our requests past the deadline", transient=True
            )
        try:
            if self._turns is None:
                yield
                return
            with self._turns(host, None if ends is None else ends - time.monotonic()) as ours:
                if not ours:
                    raise FetchError(
                        f"{host} stayed busy with another node's request past the deadline", transient=True
                    )
                yield
        finally:
            lock.release()


class Cutoff:
    """Ends one attempt at a fixed moment, whatever the server does. A read time-out restarts with every
    byte, so a server trickling one byte a second would hold the attempt (and its host's turn) for ever;
    instead the attempt's sockets are shut down when its time is up, which wakes the blocked read at once
    (the caller then checks `fired` to say why). Thread-safe."""

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._finished = False
        self.fired = False
        self._timer = threading.Timer(max(seconds, 0.0), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            fired = self.fired
        if fired:  # it came too late: the time is already up
            _shut(sock)

    def finish(self) -> None:
        with self._lock:
            self._finished = True
        self._timer.cancel()

    def _fire(self) -> None:
        with self._lock:
            if self._finished:
                return
            self.fired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    # socket.socket's own shutdown, not SSLSocket's (which also unwraps, under the reader's feet); a
    # socket already closed (or detached by its TLS wrapper) has nothing left to wake
    with suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _socket_tracer(cutoff: Cutoff) -> Callable[[str, Mapping[str, Any]], None]:
    """httpcore's `trace` request extension hands over each new socket (plain, then TLS): the cutoff's."""

    def trace(event: str, info: Mapping[str, Any]) -> None:
        stream = info.get("return_value") if event in SOCKET_EVENTS else None
        sock = stream.get_extra_info("socket") if stream is not None else None
        if isinstance(sock, socket.socket):
            cutoff.add(sock)

    return trace


@dataclass(frozen=True, slots=True)
class _Budget:
    """A deadline (of the fetch, or of one attempt), in monotonic seconds; `seconds` is its length."""

    ends: float
    seconds: float
    clock: Callable[[], float]

    @classmethod
    def start(cls, seconds: float, clock: Callable[[], float]) -> _Budget:
        return cls(clock() + seconds, seconds, clock)

    def left(self) -> float:
        return self.ends - self.clock()


# --------------------------------------------------------------------------- failures


class _Transient(Exception):
    """A failure worth retrying. Converted to FetchError(transient=True) when the retries run out."""

    def __init__(self, reason: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class _Redirect:
    location: str


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """httpcore re-raises socket errors as its own errors `from` them: look down the chain."""
    link: BaseException | None = exc
    for _ in range(8):  # chains are short; the bound only guards against a cyclic one
        if link is None:
            break
        if isinstance(link, kind):
            return True
        link = link.__cause__ or link.__context__
    return False


def _caused_by_reset(exc: BaseException) -> bool:
    return _caused_by(exc, ConnectionResetError) or "reset by peer" in str(exc).lower()


def _caused_by_dns(exc: BaseException) -> bool:
    # a name that does not resolve will not resolve two seconds later either; the next cycle tries again
    text = str(exc).lower()
    return (
        _caused_by(exc, socket.gaierror) or "name or service not known" in text or "name resolution" in text
    )


def _cutoff_reason(host: str, seconds: float) -> str:
    return (
        f"deadline: {host} took more than {round(seconds, 1):g} s for one attempt (connect, headers and body)"
    )


def _timeout_reason(exc: httpx.TimeoutException, host: str, seconds: float) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connect time-out: {host} did not accept a connection within {seconds:g} s"
    if isinstance(exc, httpx.WriteTimeout):
        return f"write time-out: could not send the request to {host} within {seconds:g} s"
    if isinstance(exc, httpx.PoolTimeout):
        return f"pool time-out: no free connection to {host} within {seconds:g} s"
    return f"read time-out: {host} sent nothing for {seconds:g} s"


def _wrap_httpx(exc: Exception, url: str, timeout: float) -> FetchError | _Transient:
    """The one place httpx's exceptions are translated into ours."""
    host = host_of(url)
    if isinstance(exc, httpx.TimeoutException):
        return _Transient(_timeout_reason(exc, host, timeout))
    if isinstance(exc, httpx.RemoteProtocolError):  # includes bodies cut short by the server
        return _Transient(f"incomplete response from {host} ({exc})")
    if isinstance(exc, httpx.NetworkError) and _caused_by_reset(exc):
        return _Transient(f"connection reset by {host}")
    if isinstance(exc, httpx.ConnectError) and _caused_by_dns(exc):
        return FetchError(f"cannot resolve {host} (DNS lookup failed: {exc}); is the machine online?")
    if isinstance(exc, httpx.ConnectError):
        return _Transient(f"could not connect to {host} ({exc})")
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError):
        return FetchError(f"cannot fetch {url}: {exc}")
    if isinstance(exc, httpx.TransportError):  # other network or proxy trouble
        return _Transient(f"network error talking to {host} ({exc})")
    return FetchError(f"cannot fetch {url}: {exc}")  # invalid URL, decoding, ...


def _retry_after(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    if value is None or not value.strip():
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass  # not a number: try the date form
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # unreadable: fall back to our own backoff
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _redirect_failure(start: str, chain: list[str], limit: int) -> FetchError:
    hops = " -> ".join(chain)
    if len(set(chain)) < len(chain):
        return FetchError(f"redirect loop starting at {start}: {hops}")
    return FetchError(f"too many redirects (more than {limit}) starting at {start}: {hops}")


# --------------------------------------------------------------------------- bounded decoding


class _Inflater:
    """gzip or deflate, inflated in pieces of at most DECODE_STEP bytes (zlib's max_length)."""

    def __init__(self, coding: str, host: str) -> None:
        self._coding = coding
        self._host = host
        self._fed = False
        self._gzip = coding in {"gzip", "x-gzip"}
        self._head = b""  # deflate: the first bytes, until we know whether a zlib header is present
        self._z: zlib._Decompress | None = zlib.decompressobj(31) if self._gzip else None

    def _start_deflate(self, data: bytes) -> zlib._Decompress:
        # "deflate" should be zlib-wrapped (RFC 9110 8.4.1.2) but many servers send raw deflate.
        wrapped = len(data) >= 2 and data[0] & 0x0F == 8 and int.from_bytes(data[:2]) % 31 == 0
        return zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)

    def feed(self, data: bytes) -> Iterator[bytes]:
        self._fed = self._fed or bool(data)
        if self._z is None:
            self._head += data
            if len(self._head) < 2:
                return
            data, self._head = self._head, b""
            self._z = self._start_deflate(data)
        yield from self._drain(self._z, data)

    def _drain(self, z: zlib._Decompress, data: bytes) -> Iterator[bytes]:
        while data:
            piece = z.decompress(data, DECODE_STEP)
            if piece:
                yield piece
            if not z.eof:
                data = z.unconsumed_tail
            elif self._gzip and z.unused_data.startswith(b"\x1f\x8b"):
                data = z.unused_data  # another gzip member (RFC 1952 2.2): keep going
                z = self._z = zlib.decompressobj(31)
            else:
                return  # end of stream; trailing bytes are ignored, as browsers do

    def finish(self) -> Iterator[bytes]:
        if self._z is None and self._head:  # a one-byte deflate body: cannot carry a zlib header
            self._z = self._start_deflate(self._head)
            yield from self._drain(self._z, self._head)
        rest = self._z.flush() if self._z is not None else b""
        if rest:  # what inflate still held back: less than one match, a few bytes
            yield rest
        if self._fed and self._z is not None and not self._z.eof:
            # The HTTP framing was complete but the compressed stream was not: a cut-short body.
            raise _Transient(f"incomplete {self._coding} body from {self._host} (stream ends early)")


def _codings(response: httpx.Response) -> list[str]:
    header = response.headers.get("content-encoding", "")
    codings = [c.strip().lower() for c in header.split(",") if c.strip()]
    return [c for c in codings if c != "identity"]


def _decoded(chunks: Iterable[bytes], codings: list[str], host: str) -> Iterator[bytes]:
    """Undo the codings last-applied-first, each stage streaming bounded pieces to the next."""
    for coding in reversed(codings):
        chunks = _through(_Inflater(coding, host), chunks)
    return iter(chunks)


def _through(inflater: _Inflater, chunks: Iterable[bytes]) -> Iterator[bytes]:
    for data in chunks:
        yield from inflater.feed(data)
    yield from inflater.finish()


def _capped(chunks: Iterable[bytes], limit: int, url: str) -> Iterator[bytes]:
    """Raw bytes, up to `limit`: a stream of empty deflate blocks inflates to nothing, forever."""
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise OversizeError(f"the compressed body of {url} exceeds {limit} bytes")
        yield chunk


# --------------------------------------------------------------------------- the fetcher


class _Transports(httpx.BaseTransport):
    """httpx's own transport (the one httpx.Client makes by default: verified TLS with certifi's store, or
    SSL_CERT_FILE / SSL_CERT_DIR), made when the first https request needs it: loading the certificate
    store costs ~50 ms of CPU, which a cycle of plain http:// targets (or of 304s) never needs. Plain http
    goes through a transport whose TLS context loads nothing (it never negotiates TLS: a redirect to https
    goes through the https one)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._made: dict[bool, httpx.HTTPTransport] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._for(request.url.scheme == "https").handle_request(request)

    def _for(self, secure: bool) -> httpx.HTTPTransport:
        with self._lock:
            if secure not in self._made:
                unused = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifying, trusting nothing
                self._made[secure] = httpx.HTTPTransport() if secure else httpx.HTTPTransport(verify=unused)
            return self._made[secure]

    def close(self) -> None:
        with self._lock:
            made, self._made = list(self._made.values()), {}
        for transport in made:
            transport.close()


class HttpFetcher:
    """The plain-HTTP Fetcher. Thread-safe: one instance serves every target of a cycle."""

    def __init__(
        self,
        *,
        settings: FetchSettings,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = utc_now,
        host_limiter: HostLimiter | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        redirects: RedirectPolicy | None = None,
    ) -> None:
        self._settings = settings
        self._redirects = redirects or RedirectPolicy(allow_private=settings.private_redirects)
        self._owns_client = client is None
        self._client = client if client is not None else httpx.Client(transport=_Transports())
        self._sleep = sleep
        self._clock = clock
        self._monotonic = monotonic
        self._limiter = host_limiter if host_limiter is not None else HostLimiter()

    def fetch(self, target: Target, *, validators: Validators | None = None) -> Capture | NotModified:
        headers = self._request_headers(target, validators)
        budget = _Budget.start(self._settings.deadline, self._monotonic)
        conditional = "If-None-Match" in headers or "If-Modified-Since" in headers
        attempt = partial(self._attempt, target, headers, budget, conditional=conditional)
        try:
            return attempt()
        except _Transient as exc:
            failed = exc  # retried outside this handler: a later failure is not chained to this one
        return self._retried(failed, attempt, budget)

    def _retried(
        self, failed: _Transient, attempt: Callable[[], Capture | NotModified], budget: _Budget
    ) -> Capture | NotModified:
        """tenacity takes over after a first attempt that failed in a way a retry can help
        (fetchers/retries.py says how, and why it is not loaded before)."""
        retrying = retries.policy(
            attempts=self._settings.retries + 1,
            left=budget.left,
            minimum=MIN_ATTEMPT,  # no retry that would have less than this left after its backoff
            wait=self._wait,
            sleep=self._sleep,
            before_sleep=_log_retry,
            transient=_Transient,
        )
        try:
            return retrying(retries.replaying(failed, attempt))
        except _Transient as exc:
            attempts = int(retrying.statistics.get("attempt_number", 1))
            raise FetchError(
                self._gave_up(exc.reason, attempts, budget), transient=True, status=exc.status
            ) from exc

    def _gave_up(self, reason: str, attempts: int, budget: _Budget) -> str:
        plural = "attempt" if attempts == 1 else "attempts"
        retries_left = attempts <= self._settings.retries
        ran_out = f"; stopped at the {self._settings.deadline:g} s deadline" if retries_left else ""
        return f"{reason} after {attempts} {plural}{ran_out}"

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> HttpFetcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _request_headers(self, target: Target, validators: Validators | None) -> dict[str, str]:
        headers = {
            "User-Agent": target.user_agent or self._settings.user_agent,
            "Accept": ACCEPT,
            "Accept-Encoding": ACCEPT_ENCODING,
            "Connection": "close",  # a fresh connection per attempt: the deadline knows its socket
        }
        if target.accept_language:
            headers["Accept-Language"] = target.accept_language
        if validators is not None and validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators is not None and validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
        return headers

    def _wait(self, state: RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome is not None else None
        if isinstance(failure, _Transient) and failure.retry_after is not None:
            return min(failure.retry_after, self._settings.max_retry_after)
        return self._backoff(state.attempt_number)

    def _backoff(self, attempt: int) -> float:
        """Exponential with up to one base of jitter, so targets failing together spread out."""
        base = self._settings.backoff
        delay = base * 2.0 ** (attempt - 1) + random.uniform(0, base)
        return min(delay, self._settings.max_retry_after)

    def _attempt(
        self, target: Target, headers: dict[str, str], budget: _Budget, *, conditional: bool
    ) -> Capture | NotModified:
        """One try: the request and its redirects, each hop holding its host's turn. Waiting for the first
        turn counts toward the fetch's deadline; once it comes, the attempt has `attempt_deadline` (within
        the fetch's) for everything else, later hops' waits included."""
        timing: tuple[_Budget, Cutoff] | None = None
        try:
            chain = [target.url]
            for _ in range(self._settings.max_redirects + 1):
                with self._limiter.hold(chain[-1], timeout=(timing[0] if timing else budget).left()):
                    timing = timing or self._start_attempt(budget)
                    result = self._request(target, chain[-1], headers, *timing, conditional=conditional)
                if not isinstance(result, _Redirect):
                    return result
                self._redirects.check(target.url, result.location)
                chain.append(result.location)
            raise _redirect_failure(target.url, chain, self._settings.max_redirects)
        finally:
            if timing is not None:
                timing[1].finish()

    def _start_attempt(self, budget: _Budget) -> tuple[_Budget, Cutoff]:
        ends = _Budget.start(min(self._settings.attempt_deadline, budget.left()), self._monotonic)
        return ends, Cutoff(ends.seconds)

    def _request(
        self,
        target: Target,
        url: str,
        headers: dict[str, str],
        ends: _Budget,
        cutoff: Cutoff,
        *,
        conditional: bool,
    ) -> Capture | NotModified | _Redirect:
        silence = max(min(self._settings.timeout, ends.left()), 0.001)
        shortened = silence < self._settings.timeout  # the attempt's end, not the silence limit, governs
        try:
            request = self._client.build_request(
                "GET",
                url,
                headers=headers,
                timeout=httpx.Timeout(silence),  # per request: an injected client gets ours too
                extensions={"trace": _socket_tracer(cutoff)},
            )
            response = self._client.send(request, stream=True, follow_redirects=False)
            try:
                result = self._interpret(target, url, response, conditional=conditional)
            finally:
                response.close()  # an unread body closes the connection rather than draining it
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            if cutoff.fired or (shortened and isinstance(exc, httpx.TimeoutException)):
                raise _Transient(_cutoff_reason(host_of(url), ends.seconds)) from exc
            raise _wrap_httpx(exc, url, silence) from exc
        if cutoff.fired:  # a close-delimited body simply ends when its socket is shut: not a whole page
            raise _Transient(_cutoff_reason(host_of(url), ends.seconds))
        return result

    def _interpret(
        self, target: Target, url: str, response: httpx.Response, *, conditional: bool
    ) -> Capture | NotModified | _Redirect:
        status = response.status_code
        if status == 304:
            return self._not_modified(target, url, conditional=conditional)
        if status in REDIRECT_STATUSES and "location" in response.headers:
            return _Redirect(_resolve(url, response.headers["location"]))
        if status == 429 or status >= 500:
            raise self._server_trouble(url, response)
        body = self._read_body(response, url)
        return results.Capture(
            target_id=target.id,
            url=target.url,
            final_url=url,
            status=status,
            headers=tuple((k, v) for k, v in response.headers.multi_items() if k not in WIRE_HEADERS),
            body=body,
            fetched_at=self._clock(),
            fetcher=FETCHER_NAME,
        )

    def _not_modified(self, target: Target, url: str, *, conditional: bool) -> NotModified:
        if not conditional:  # a 304 to a plain GET would freeze the page as "unchanged" forever
            raise FetchError(f"{url} answered 304 Not Modified to an unconditional request")
        return results.NotModified(target_id=target.id, url=target.url, fetched_at=self._clock())

    def _server_trouble(self, url: str, response: httpx.Response) -> _Transient:
        status = response.status_code
        retry_after = None
        if status in RETRY_AFTER_STATUSES:
            retry_after = _retry_after(response.headers.get("retry-after"), self._clock())
        phrase = f" {response.reason_phrase}" if response.reason_phrase else ""
        reason = f"HTTP {status}{phrase} from {host_of(url)}"
        return _Transient(reason, status=status, retry_after=retry_after)

    def _read_body(self, response: httpx.Response, url: str) -> bytes:
        codings = _codings(response)
        raw_limit = self._refuse_early(response, url, codings)
        pieces = _decoded(_capped(response.iter_raw(), raw_limit, url), codings, host_of(url))
        try:
            return _collect(pieces, self._settings.max_bytes, url)
        except zlib.error as exc:
            raise FetchError(f"cannot decode the {', '.join(codings)} body of {url}: {exc}") from exc

    def _refuse_early(self, response: httpx.Response, url: str, codings: list[str]) -> int:
        """Refuse what we cannot decode or what announces itself as too big; return the raw-byte cap."""
        unknown = [c for c in codings if c not in {"gzip", "x-gzip", "deflate"}]
        if unknown:
            raise FetchError(f"{url} sent an unsupported Content-Encoding: {', '.join(unknown)}")
        cap = self._settings.max_bytes
        # Deflate never grows data by more than ~0.03 %: anything past this allowance is not a page.
        raw_limit = cap + cap // 256 + 1024
        declared = _declared_length(response)
        if declared is not None and declared > (raw_limit if codings else cap):
            raise OversizeError(f"{url} announces {declared} bytes, over the {cap}-byte cap")
        return raw_limit


def _collect(pieces: Iterable[bytes], cap: int, url: str) -> bytes:
    """Join decoded pieces, stopping (and so closing the stream) as soon as they pass the cap."""
    kept: list[bytes] = []
    size = 0
    for piece in pieces:
        size += len(piece)
        if size > cap:
            raise OversizeError(f"the body of {url} exceeds {cap} bytes; stopped reading")
        kept.append(piece)
    return b"".join(kept)


def _declared_length(response: httpx.Response) -> int | None:
    try:
        return int(response.headers["content-length"])
    except (KeyError, ValueError):
        return None


def _resolve(base: str, location: str) -> str:
    resolved = httpx.URL(base).join(location)
    if resolved.scheme not in {"http", "https"}:
        raise FetchError(f"{base} redirects to an unsupported URL: {location}")
    return str(resolved)


def _log_retry(state: RetryCallState) -> None:
    failure = state.outcome.exception() if state.outcome is not None else None
    delay = state.next_action.sleep if state.next_action is not None else 0.0
    log.info("attempt %d failed (%s); retrying in %.1f s", state.attempt_number, failure, delay)

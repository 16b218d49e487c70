"""Stage 1, fetch: HttpFetcher against a real HTTP server on 127.0.0.1 (tests/support/pageserver.py).

Retries cost no wall time: the fetcher gets a recording sleep. Time-outs are short (0.2 s).
"""

from __future__ import annotations

import gzip
import socket
import threading
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from support.pageserver import PageServer, Reply, gzip_bomb
from watchdog import __version__
from watchdog.errors import FetchError, OversizeError
from watchdog.fetchers.base import Fetcher
from watchdog.fetchers.http import HostLimiter, HttpFetcher, default_user_agent
from watchdog.models import Capture, FetchSettings, NotModified, Target, Validators

NOW = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)
CAP = 64 * 1024
SETTINGS = FetchSettings(
    user_agent="policy-watchdog-tests/1 (+https://example.invalid/tests)",
    timeout=2.0,
    max_bytes=CAP,
    max_redirects=5,
    retries=3,
    backoff=0.01,
    max_retry_after=60.0,
)
PAGE = "<html><body><h1>Privacy Policy</h1><p>We may use public posts to train AI.</p></body></html>"


@dataclass
class RecordingSleep:
    calls: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


MakeFetcher = Callable[..., HttpFetcher]


@pytest.fixture
def sleeps() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    """One injected client for the module (building one costs ~40 ms of TLS set-up). Its own default
    time-out is long: the fetcher must impose settings.timeout on every request regardless."""
    with httpx.Client(timeout=60.0) as shared:
        yield shared


@pytest.fixture
def make_fetcher(sleeps: RecordingSleep, client: httpx.Client) -> Iterator[MakeFetcher]:
    made: list[HttpFetcher] = []

    def make(
        *, limiter: HostLimiter | None = None, own_client: bool = False, **overrides: Any
    ) -> HttpFetcher:
        fetcher = HttpFetcher(
            settings=replace(SETTINGS, **overrides),
            client=None if own_client else client,
            sleep=sleeps,
            clock=lambda: NOW,
            host_limiter=limiter,
        )
        made.append(fetcher)
        return fetcher

    yield make
    for fetcher in made:
        fetcher.close()


def target_for(url: str, **options: Any) -> Target:
    return Target(id="policy", url=url, name="Policy", **options)


def capture_of(result: Capture | NotModified) -> Capture:
    assert isinstance(result, Capture), result
    return result


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


# --------------------------------------------------------------------------- plain answers


def test_a_page_becomes_a_capture(page_server: PageServer, make_fetcher: MakeFetcher) -> None:
    page_server.set("/policy", Reply(body=PAGE, headers={"X-Served-By": "test"}))

    capture = capture_of(make_fetcher().fetch(target_for(page_server.url("/policy"))))

    assert capture.status == 200
    assert capture.body == PAGE.encode()
    assert capture.target_id == "policy"
    assert capture.url == capture.final_url == page_server.url("/policy")
    assert capture.fetcher == "http"
    assert capture.fetched_at == NOW
    assert capture.header("Content-Type") == "text/html; charset=utf-8"
    assert capture.header("x-served-by") == "test"
    assert capture.header("etag") is not None
    assert capture.header("content-length") is None  # describes the wire, not the stored body


@pytest.mark.parametrize(
    ("options", "user_agent", "accept_language"),
    [
        pytest.param({}, SETTINGS.user_agent, None, id="settings-user-agent-no-language"),
        pytest.param({"user_agent": "special-agent/2"}, "special-agent/2", None, id="target-user-agent-wins"),
        pytest.param(
            {"accept_language": "en-IE,en;q=0.8"},
            SETTINGS.user_agent,
            "en-IE,en;q=0.8",
            id="target-accept-language-sent",
        ),
    ],
)
def test_request_headers(
    page_server: PageServer,
    make_fetcher: MakeFetcher,
    options: dict[str, str],
    user_agent: str,
    accept_language: str | None,
) -> None:
    page_server.set("/policy", PAGE)

    make_fetcher().fetch(target_for(page_server.url("/policy"), **options))

    (request,) = page_server.requests
    assert request.headers["user-agent"] == user_agent
    assert request.headers.get("accept-language") == accept_language
    assert request.headers["accept-encoding"] == "gzip, deflate"
    assert "if-none-match" not in request.headers  # no validators, no conditional GET


def test_default_user_agent_names_the_project() -> None:
    agent = default_user_agent()
    assert agent.startswith(f"policy-watchdog/{__version__} (")
    assert "+https://" in agent


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(b"", "text/html; charset=utf-8", id="empty-200-is-kept"),
        pytest.param(
            "Données personnelles – « opt-out » ‘entraînement’".encode("cp1252"),
            "text/html; charset=utf-8",
            id="windows-1252-body-under-utf8-header-kept-raw",
        ),
        pytest.param(b"\x00\xff\xfe binary", "application/octet-stream", id="binary-kept-raw"),
    ],
)
def test_body_bytes_are_kept_untouched(
    page_server: PageServer, make_fetcher: MakeFetcher, body: bytes, content_type: str
) -> None:
    page_server.set("/policy", Reply(body=body, headers={"Content-Type": content_type}))

    capture = capture_of(make_fetcher().fetch(target_for(page_server.url("/policy"))))

    assert (capture.status, capture.body) == (200, body)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 451])
def test_client_errors_are_captures_not_retried(
    page_server: PageServer, make_fetcher: MakeFetcher, sleeps: RecordingSleep, status: int
) -> None:
    page_server.set("/policy", Reply(status, "<h1>Nope</h1>"))

    capture = capture_of(make_fetcher().fetch(target_for(page_server.url("/policy"))))

    assert (capture.status, capture.body) == (status, b"<h1>Nope</h1>")
    assert page_server.hits("/policy") == 1
    assert sleeps.calls == []


# --------------------------------------------------------------------------- transient failures


TRANSIENT_FAILURES = [
    pytest.param(Reply(500), {}, 500, "HTTP 500 Internal Server Error", id="500-every-time"),
    pytest.param(Reply(503), {}, 503, "HTTP 503 Service Unavailable", id="503-every-time"),
    pytest.param(Reply(429), {}, 429, "HTTP 429 Too Many Requests", id="429-every-time"),
    pytest.param(Reply(fault="reset"), {}, None, "reset by 127.0.0.1", id="connection-reset"),
    pytest.param(Reply(body=PAGE, fault="truncate"), {}, None, "incomplete response", id="truncated-body"),
    pytest.param(
        Reply(body=PAGE, delay=5.0),
        {"timeout": 0.2, "retries": 1},
        None,
        "read time-out: 127.0.0.1",
        id="slow-route-times-out",
    ),
]


@pytest.mark.parametrize(("reply", "overrides", "status", "words"), TRANSIENT_FAILURES)
def test_transient_failures_are_retried_then_raised(
    page_server: PageServer,
    make_fetcher: MakeFetcher,
    sleeps: RecordingSleep,
    reply: Reply,
    overrides: dict[str, Any],
    status: int | None,
    words: str,
) -> None:
    page_server.set("/policy", reply)
    fetcher = make_fetcher(**overrides)
    attempts = fetcher._settings.retries + 1

    with pytest.raises(FetchError) as caught:
        fetcher.fetch(target_for(page_server.url("/policy")))

    error = caught.value
    assert type(error) is FetchError
    assert error.transient
    assert error.status == status
    assert words in error.reason
    assert error.reason.endswith(f"after {attempts} attempts")
    assert page_server.hits("/policy") == attempts
    assert len(sleeps.calls) == attempts - 1


@pytest.mark.parametrize(
    "failures",
    [
        pytest.param([Reply(503)], id="503-then-200"),
        pytest.param([Reply(500), Reply(502)], id="500-502-then-200"),
        pytest.param([Reply(fault="reset")], id="reset-then-200"),
        pytest.param([Reply(body=PAGE, fault="truncate")], id="truncated-then-200"),
    ],
)
def test_recovers_when_a_retry_succeeds(
    page_server: PageServer, make_fetcher: MakeFetcher, sleeps: RecordingSleep, failures: list[Reply]
) -> None:
    page_server.set("/policy", *failures, PAGE)

    capture = capture_of(make_fetcher().fetch(target_for(page_server.url("/policy"))))

    assert (capture.status, capture.body) == (200, PAGE.encode())
    assert page_server.hits("/policy") == len(failures) + 1
    assert len(sleeps.calls) == len(failures)


def test_each_retry_is_logged_and_the_last_failure_is_the_cause(
    page_server: PageServer,
    make_fetcher: MakeFetcher,
    sleeps: RecordingSleep,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """tenacity takes over from a first attempt made without it (fetchers/retries.py): each failed attempt
    but the last is logged with its number and wait, as when tenacity ran all of them, and the error's
    cause is the last failure, chained to no earlier one."""
    page_server.set("/policy", Reply(503), Reply(502), Reply(500))
    caplog.set_level("INFO", logger="watchdog.fetchers.http")

    with pytest.raises(FetchError) as caught:
        make_fetcher(retries=2).fetch(target_for(page_server.url("/policy")))

    logged = [r.getMessage() for r in caplog.records if r.name == "watchdog.fetchers.http"]
    assert [m.split(" (")[0] for m in logged] == ["attempt 1 failed", "attempt 2 failed"]
    assert ["503" in logged[0], "502" in logged[1]] == [True, True]
    assert [m.endswith(f"retrying in {d:.1f} s") for m, d in zip(logged, sleeps.calls, strict=True)] == [
        True,
        True,
    ]
    cause = caught.value.__cause__
    assert cause is not None and "500" in str(cause)
    assert (cause.__context__, caught.value.reason.endswith("after 3 attempts")) == (None, True)


BACKOFF = (SETTINGS.backoff, 2 * SETTINGS.backoff)  # first backoff: base + jitter in [0, base]


@pytest.mark.parametrize(
    ("failure", "overrides", "slept"),
    [
        pytest.param(Reply(429, headers={"Retry-After": "7"}), {}, (7, 7), id="429-retry-after-7s"),
        pytest.param(
            Reply(503, headers={"Retry-After": format_datetime(NOW + timedelta(seconds=30), True)}),
            {},
            (30, 30),
            id="503-retry-after-http-date",
        ),
        pytest.param(
            Reply(429, headers={"Retry-After": "86400"}),
            {"max_retry_after": 45.0},
            (45, 45),
            id="retry-after-capped",
        ),
        pytest.param(
            Reply(503, headers={"Retry-After": format_datetime(NOW - timedelta(hours=1), True)}),
            {},
            (0, 0),
            id="retry-after-date-in-the-past-means-now",
        ),
        pytest.param(
            Reply(503, headers={"Retry-After": "soon"}),
            {},
            BACKOFF,
            id="unreadable-retry-after-uses-backoff",
        ),
        pytest.param(
            Reply(500, headers={"Retry-After": "7"}),
            {},
            BACKOFF,
            id="500-retry-after-not-honoured",
        ),
    ],
)
def test_retry_after(
    page_server: PageServer,
    make_fetcher: MakeFetcher,
    sleeps: RecordingSleep,
    failure: Reply,
    overrides: dict[str, Any],
    slept: tuple[float, float],
) -> None:
    page_server.set("/policy", failure, PAGE)

    capture_of(make_fetcher(**overrides).fetch(target_for(page_server.url("/policy"))))

    (pause,) = sleeps.calls
    assert slept[0] <= pause <= slept[1]


def test_backoff_grows_exponentially_with_jitter(
    page_server: PageServer, make_fetcher: MakeFetcher, sleeps: RecordingSleep
) -> None:
    page_server.set("/policy", Reply(500))

    with pytest.raises(FetchError):
        make_fetcher(backoff=1.0, retries=4).fetch(target_for(page_server.url("/policy")))

    assert len(sleeps.calls) == 4
    for attempt, pause in enumerate(sleeps.calls):
        assert 2**attempt <= pause <= 2**attempt + 1.0


def test_no_retries_configured_means_one_attempt(
    page_server: PageServer, make_fetcher: MakeFetcher, sleeps: RecordingSleep
) -> None:
    page_server.set("/policy", Reply(502))

    with pytest.raises(FetchError, match=r"^HTTP 502 Bad Gateway from 127\.0\.0\.1:\d+ after 1 attempt$"):
        make_fetcher(retries=0).fetch(target_for(page_server.url("/policy")))

    assert page_server.hits("/policy") == 1
    assert sleeps.calls == []


# --------------------------------------------------------------------------- size cap and decoding


BIG_TEXT = (PAGE * 2000).encode()  # ~180 KB, well over CAP, compresses to a few KB


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(Reply(body=b"a" * (CAP + 1)), id="identity-one-byte-over-cap"),
        pytest.param(
            Reply(body=BIG_TEXT, headers={"Transfer-Encoding": "chunked"}),
            id="chunked-no-length-announced",
        ),
        pytest.param(Reply(fault="endless"), id="endless-stream"),
        pytest.param(Reply(fault="gzip-bomb"), id="gzip-bomb-announcing-its-length"),
        pytest.param(
            Reply(fault="gzip-bomb", headers={"Transfer-Encoding": "chunked"}),
            id="gzip-bomb-streamed-without-length",
        ),
        pytest.param(
            Reply(body=gz(BIG_TEXT), headers={"Content-Encoding": "gzip"}),
            id="small-gzip-body-inflating-over-cap",
        ),
    ],
)
def test_oversize_bodies_are_cut_off(
    page_server: PageServer, make_fetcher: MakeFetcher, reply: Reply
) -> None:
    page_server.set("/policy", reply)

    with pytest.raises(OversizeError, match="bytes") as caught:
        make_fetcher().fetch(target_for(page_server.url("/policy")))

    assert not caught.value.transient
    assert page_server.hits("/policy") == 1  # a retry would only fetch the same oversize body


@pytest.mark.parametrize(
    ("encoded", "coding", "expected"),
    [
        pytest.param(b"a" * CAP, None, b"a" * CAP, id="identity-exactly-at-cap"),
        pytest.param(gz(b"a" * CAP), "gzip", b"a" * CAP, id="gzip-exactly-at-cap"),
        pytest.param(gz(PAGE.encode()), "gzip", PAGE.encode(), id="gzip"),
        pytest.param(gz(PAGE.encode()), "x-gzip", PAGE.encode(), id="x-gzip-alias"),
        pytest.param(zlib.compress(PAGE.encode()), "deflate", PAGE.encode(), id="deflate-zlib-wrapped"),
        pytest.param(
            raw_deflate(PAGE.encode()), "deflate", PAGE.encode(), id="deflate-raw-as-sent-in-practice"
        ),
        pytest.param(
            gz(PAGE[:40].encode()) + gz(PAGE[40:].encode()),
            "gzip",
            PAGE.encode(),
            id="gzip-two-members",
        ),
        pytest.param(gz(gz(PAGE.encode())), "gzip, gzip", PAGE.encode(), id="gzip-applied-twice"),
        pytest.param(gz(PAGE.encode()), "identity, gzip", PAGE.encode(), id="identity-coding-ignored"),
    ],
)
def test_compressed_bodies_are_decoded(
    page_server: PageServer,
    make_fetcher: MakeFetcher,
    encoded: bytes,
    coding: str | None,
    expected: bytes,
) -> None:
    headers = {"Content-Encoding": coding} if coding else {}
    page_server.set("/policy", Reply(body=encoded, headers=headers))

    capture = capture_of(make_fetcher().fetch(target_for(page_server.url("/policy"))))

    assert capture.body == expected
    assert capture.header("content-encoding") is None  # the stored body is the decoded one


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        pytest.param(
            Reply(body=gz(PAGE.encode())[:-8] + bytes(8), headers={"Content-Encoding": "gzip"}),
            "cannot decode the gzip body",
            id="gzip-checksum-mismatch",
        ),
        pytest.param(
            Reply(body=b"\x8b\x0b\x80", headers={"Content-Encoding": "br"}),
            "unsupported Content-Encoding: br",
            id="coding-we-never-asked-for",
        ),
    ],
)
def test_undecodable_bodies_are_permanent_errors(
    page_server: PageServer, make_fetcher: MakeFetcher, reply: Reply, words: str
) -> None:
    page_server.set("/policy", reply)

    with pytest.raises(FetchError, match=words) as caught:
        make_fetcher().fetch(target_for(page_server.url("/policy")))

    assert not caught.value.transient
    assert page_server.hits("/policy") == 1


# --------------------------------------------------------------------------- redirects


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_to_a_login_page_is_captured_with_its_final_url(
    page_server: PageServer, make_fetcher: MakeFetcher, status: int
) -> None:
    page_server.redirect("/policy", "/login?next=%2Fpolicy", status)  # relative Location
    page_server.set("/login", "<form>Log in to continue</form>")

    capture = capture_of(make_fetcher().fetch(target_for(page_server.url("/policy"))))

    assert capture.url == page_server.url("/policy")
    assert capture.final_url == page_server.url("/login?next=%2Fpolicy")
    assert (capture.status, capture.body) == (200, b"<form>Log in to continue</form>")


def test_redirect_loop_is_named(page_server: PageServer, make_fetcher: MakeFetcher) -> None:
    page_server.redirect("/a", page_server.url("/b"))
    page_server.redirect("/b", "/a")

    with pytest.raises(FetchError) as caught:
        make_fetcher().fetch(target_for(page_server.url("/a")))

    assert caught.value.reason.startswith(f"redirect loop starting at {page_server.url('/a')}: ")
    assert not caught.value.transient
    assert page_server.hits("/a") + page_server.hits("/b") == SETTINGS.max_redirects + 1


def test_too_many_redirects(page_server: PageServer, make_fetcher: MakeFetcher) -> None:
    for hop in range(10):
        page_server.redirect(f"/r{hop}", f"/r{hop + 1}")

    with pytest.raises(FetchError, match=r"too many redirects \(more than 3\) starting at http"):
        make_fetcher(max_redirects=3).fetch(target_for(page_server.url("/r0")))

    assert [page_server.hits(f"/r{hop}") for hop in range(5)] == [1, 1, 1, 1, 0]


def test_redirect_to_another_scheme_is_refused(page_server: PageServer, make_fetcher: MakeFetcher) -> None:
    page_server.redirect("/policy", "file:///etc/passwd")

    with pytest.raises(FetchError, match="redirects to an unsupported URL: file:///etc/passwd"):
        make_fetcher().fetch(target_for(page_server.url("/policy")))


# --------------------------------------------------------------------------- conditional GET


def test_conditional_get_with_the_etag(page_server: PageServer, make_fetcher: MakeFetcher) -> None:
    page_server.set("/policy", PAGE)
    fetcher = make_fetcher()
    target = target_for(page_server.url("/policy"))
    first = capture_of(fetcher.fetch(target))
    validators = Validators(etag=first.header("etag"), last_modified=first.header("last-modified"))

    second = fetcher.fetch(target, validators=validators)

    assert second == NotModified(target_id="policy", url=target.url, fetched_at=NOW)
    sent = page_server.requests[-1].headers
    assert sent["if-none-match"] == first.header("etag")
    assert sent["if-modified-since"] == first.header("last-modified")


def test_conditional_get_with_last_modified_only(page_server: PageServer, make_fetcher: MakeFetcher) -> None:
    page_server.set("/policy", PAGE)
    fetcher = make_fetcher()
    target = target_for(page_server.url("/policy"))
    first = capture_of(fetcher.fetch(target))

    second = fetcher.fetch(target, validators=Validators(last_modified=first.header("last-modified")))

    assert isinstance(second, NotModified)
    assert "if-none-match" not in page_server.requests[-1].headers


def test_changed_page_answers_the_conditional_get_in_full(
    page_server: PageServer, make_fetcher: MakeFetcher
) -> None:
    page_server.set("/policy", PAGE, PAGE.replace("may", "will"))
    fetcher = make_fetcher()
    target = target_for(page_server.url("/policy"))
    first = capture_of(fetcher.fetch(target))

    second = capture_of(fetcher.fetch(target, validators=Validators(etag=first.header("etag"))))

    assert second.body == PAGE.replace("may", "will").encode()
    assert second.header("etag") != first.header("etag")


def test_unconditional_304_is_an_error(page_server: PageServer, make_fetcher: MakeFetcher) -> None:
    page_server.set("/policy", Reply(304), etag=False)

    with pytest.raises(FetchError, match="304 Not Modified to an unconditional request"):
        make_fetcher().fetch(target_for(page_server.url("/policy")))


# --------------------------------------------------------------------------- errors at the boundary


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("url", "transient", "words"),
    [
        pytest.param(
            f"http://127.0.0.1:{free_port()}/policy",
            True,
            "could not connect to 127.0.0.1",
            id="connection-refused-is-transient",
        ),
        pytest.param("ftp://127.0.0.1/policy", False, "cannot fetch ftp://", id="ftp-scheme"),
        pytest.param("http://[::1/policy", False, "cannot fetch http://[::1", id="malformed-url"),
    ],
)
def test_network_errors_become_fetch_errors(
    make_fetcher: MakeFetcher, url: str, transient: bool, words: str
) -> None:
    with pytest.raises(FetchError, match=words.replace("[", r"\[")) as caught:
        make_fetcher(retries=1).fetch(target_for(url))

    assert caught.value.transient is transient
    assert caught.value.__cause__ is not None  # the httpx error is chained, not lost


def test_own_client_works_and_closes_twice(page_server: PageServer, make_fetcher: MakeFetcher) -> None:
    page_server.set("/policy", PAGE)
    fetcher: Fetcher = make_fetcher(own_client=True)

    assert capture_of(fetcher.fetch(target_for(page_server.url("/policy")))).body == PAGE.encode()
    fetcher.close()
    fetcher.close()


def test_close_leaves_an_injected_client_open(
    page_server: PageServer, make_fetcher: MakeFetcher, client: httpx.Client
) -> None:
    make_fetcher().close()

    assert not client.is_closed


# --------------------------------------------------------------------------- one request per host


@pytest.mark.parametrize(
    ("shared", "expected_peak"),
    [
        pytest.param(True, 1, id="shared-limiter-serialises-the-host"),
        pytest.param(False, 2, id="control-separate-limiters-overlap"),
    ],
)
def test_host_limiter_keeps_one_request_per_host(
    page_server: PageServer, make_fetcher: MakeFetcher, shared: bool, expected_peak: int
) -> None:
    page_server.set("/slow", Reply(body=PAGE, delay=0.3))
    limiter = HostLimiter()
    fetchers = [make_fetcher(limiter=limiter if shared else HostLimiter()) for _ in range(2)]
    start = threading.Barrier(2)
    results: list[Capture | NotModified] = []

    def run(fetcher: HttpFetcher) -> None:
        start.wait()
        results.append(fetcher.fetch(target_for(page_server.url("/slow"))))

    threads = [threading.Thread(target=run, args=(fetcher,)) for fetcher in fetchers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results) == 2
    assert page_server.peak_concurrency("/slow") == expected_peak


def test_host_limiter_does_not_block_other_hosts() -> None:
    limiter = HostLimiter()
    entered: dict[str, threading.Event] = {"other": threading.Event(), "same": threading.Event()}

    def visit(url: str, name: str) -> None:
        with limiter.hold(url):
            entered[name].set()

    with limiter.hold("https://www.facebook.com/privacy/policy/"):
        same = threading.Thread(target=visit, args=("https://WWW.facebook.com/other", "same"))
        other = threading.Thread(target=visit, args=("https://www.cnil.fr/fr", "other"))
        same.start()
        other.start()
        assert entered["other"].wait(5)
        assert not entered["same"].wait(0.1)
    same.join()
    other.join()
    assert entered["same"].is_set()


def test_gzip_bomb_is_inflated_in_bounded_memory(page_server: PageServer, make_fetcher: MakeFetcher) -> None:
    gzip_bomb()  # built (and cached) before measuring: the server's copy is not the fetcher's
    # Chunked, so no announced length lets the fetcher refuse before inflating anything.
    page_server.set("/policy", Reply(fault="gzip-bomb", headers={"Transfer-Encoding": "chunked"}))
    fetcher = make_fetcher()

    tracemalloc.start()
    try:
        with pytest.raises(OversizeError):
            fetcher.fetch(target_for(page_server.url("/policy")))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # The peak includes the server's framing of the ~1 MB bomb (~3 MB in all when decoding in bounded
    # pieces); inflating even one 16 KiB network read unbounded costs ~16 MB more (47 MB measured).
    assert peak < 10_000_000

"""Fetch deadlines against a real trickling server (issue 11, point 1).

The page server sends a chunked body (or the headers) one byte a second: every read time-out restarts
with each byte, so before the deadlines a fetch with `timeout = 5` lasted as long as the server kept
trickling (61 s in the report, until the server stopped), held the host's turn the whole time (a second
target on that host got no fetch), and a `check` never reached its later targets. Now an attempt ends at
`attempt_deadline` (connect, headers and body), a fetch at `deadline` (attempts and backoff included),
the host's turn is never held past them, and the browser fetch has the same deadline.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from support.harness import Site, cli, write_config
from support.pageserver import PageServer, Reply, start_page_server
from watchdog.errors import FetchError
from watchdog.fetchers.browser import REAP_TIMEOUT, BrowserFetcher
from watchdog.fetchers.http import HostLimiter, HttpFetcher
from watchdog.models import FetchSettings, Target

SETTINGS = FetchSettings(
    user_agent="policy-watchdog-tests/1",
    timeout=5.0,
    retries=3,
    backoff=0.2,
    attempt_deadline=1.5,
    deadline=4.0,
)
SLACK = 1.5  # seconds beyond a deadline that thread wake-ups and a loaded machine may add
PAGE = "<html><body><div id='root'><h1>Privacy Policy</h1><p>We may use public posts.</p></div></body></html>"


def target(url: str, target_id: str = "slow") -> Target:
    return Target(target_id, url, target_id)


@pytest.fixture
def fetcher() -> Iterator[HttpFetcher]:
    with HttpFetcher(settings=SETTINGS, sleep=time.sleep) as made:  # real backoff: it counts in the deadline
        yield made


def timed_failure(fetcher: HttpFetcher, url: str) -> tuple[float, FetchError]:
    started = time.monotonic()
    with pytest.raises(FetchError) as caught:
        fetcher.fetch(target(url))
    return time.monotonic() - started, caught.value


def test_a_body_trickled_one_byte_a_second_ends_at_the_fetch_deadline(
    page_server: PageServer, fetcher: HttpFetcher
) -> None:
    page_server.set("/trickle", Reply(body=PAGE, fault="trickle"))
    elapsed, error = timed_failure(fetcher, page_server.url("/trickle"))
    assert SETTINGS.attempt_deadline <= elapsed <= SETTINGS.deadline + SLACK, elapsed
    assert error.transient
    assert re.search(
        r"took more than (1\.5|1\.\d+) s for one attempt \(connect, headers and body\)", error.reason
    )
    assert "stopped at the 4 s deadline" in error.reason, "retries stop where the deadline is"
    assert page_server.hits("/trickle") == 2, "1.5 s each; a third attempt would have had under a second"


def test_headers_trickled_one_byte_a_second_end_at_the_attempt_deadline(
    page_server: PageServer, fetcher: HttpFetcher
) -> None:
    page_server.set("/slow-headers", Reply(fault="trickle-headers"))
    one_attempt = replace(SETTINGS, retries=0)
    with HttpFetcher(settings=one_attempt) as single:
        elapsed, error = timed_failure(single, page_server.url("/slow-headers"))
    assert elapsed <= SETTINGS.attempt_deadline + SLACK, elapsed
    assert "for one attempt" in error.reason and "after 1 attempt" in error.reason


def test_the_host_is_free_for_another_target_while_one_trickles(page_server: PageServer) -> None:
    """Two targets on one host, in two threads sharing the host's turn (as in the daemon)."""
    page_server.set("/trickle", Reply(body=PAGE, fault="trickle"))
    page_server.set("/fine", PAGE)
    limiter = HostLimiter()
    finished: dict[str, float] = {}
    started = time.monotonic()

    def run(path: str) -> None:
        with HttpFetcher(settings=SETTINGS, sleep=time.sleep, host_limiter=limiter) as own:
            with contextlib.suppress(FetchError):
                own.fetch(target(page_server.url(path), path.strip("/")))
            finished[path] = time.monotonic() - started

    slow = threading.Thread(target=run, args=("/trickle",))
    slow.start()
    time.sleep(0.3)  # the trickling fetch holds the host's turn first
    fine = threading.Thread(target=run, args=("/fine",))
    fine.start()
    fine.join(SETTINGS.deadline + SLACK)
    slow.join(SETTINGS.deadline + SLACK)
    assert page_server.hits("/fine") == 1
    assert finished["/fine"] <= SETTINGS.attempt_deadline + SLACK, "fetched as soon as one attempt ended"
    assert finished["/fine"] < finished["/trickle"]


def test_waiting_for_the_host_counts_toward_the_deadline() -> None:
    limiter = HostLimiter()
    with limiter.hold("http://127.0.0.1:9/"):  # held by "another check" for longer than our deadline
        started = time.monotonic()
        busy = pytest.raises(FetchError, match="busy with another of our requests")
        with busy, limiter.hold("http://127.0.0.1:9/x", timeout=0.3):
            pass
        assert time.monotonic() - started < 0.3 + SLACK


def test_check_with_a_trickling_target_checks_every_other_target_in_time(
    page_server: PageServer, tmp_path: Path
) -> None:
    page_server.set("/trickle", Reply(body=PAGE, fault="trickle"))
    page_server.set("/b", PAGE.replace("public posts", "public posts and photos"))
    page_server.set("/c", PAGE.replace("public posts", "public posts and captions"))
    head = "[fetch]\nattempt_deadline = 2\ndeadline = 3\n"
    config = write_config(
        tmp_path,
        page_server.base_url,
        [
            Site("slow", "/trickle", "min_length = 10"),
            Site("b", "/b", "min_length = 10"),
            Site("c", "/c", "min_length = 10"),
        ],
    )
    config.write_text(config.read_text().replace("[fetch]\n", head), encoding="utf-8")
    started = time.monotonic()
    result = cli("--config", str(config), "check", "--json", timeout=60)
    elapsed = time.monotonic() - started
    outcomes = {o["target"]: o for o in map(json.loads, result.stdout.splitlines())}
    assert result.returncode == 1, result.stderr
    assert outcomes["slow"]["status"] == "error" and "deadline" in outcomes["slow"]["reason"]
    assert outcomes["b"]["status"] == "new" and outcomes["c"]["status"] == "new", outcomes
    assert elapsed < 3 + 15, "the trickle costs its deadline, not the server's patience"


# --------------------------------------------------------------------------- the browser

CHROMIUM = "/usr/bin/chromium"


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"Debian's chromium is not at {CHROMIUM}")
def test_a_browser_fetch_of_a_trickling_page_ends_at_the_deadline() -> None:
    with start_page_server() as server:
        server.set("/trickle", Reply(body=PAGE, fault="trickle"))
        settings = replace(SETTINGS, timeout=60.0, deadline=4.0)  # the load time-out alone would wait 60 s
        browser = BrowserFetcher(
            settings=settings, executable_path=CHROMIUM, render_timeout=60, hang_grace=60
        )
        try:
            browser.fetch(target(server.url("/?warm-up")))  # Chromium's start is not what is measured
            started = time.monotonic()
            with pytest.raises(FetchError, match="took longer than the 4 s deadline") as caught:
                browser.fetch(target(server.url("/trickle")))
            elapsed = time.monotonic() - started
            # the fetch returns once the killed Chromium is reaped (at most REAP_TIMEOUT after the kill)
            assert settings.deadline <= elapsed <= settings.deadline + REAP_TIMEOUT + SLACK, elapsed
            assert caught.value.transient
        finally:
            browser.close()

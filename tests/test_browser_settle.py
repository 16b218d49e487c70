"""The browser fetcher's User-Agent and settle wait, with the real Debian Chromium (issue 12, point 6).

- The browser sends Chromium's own User-Agent, as the launched browser reports it, with
  ` policy-watchdog/<version>` appended; a configured one is sent as it is.
- A page is captured only once its DOM has been quiet for SETTLE_QUIET: a page that keeps rewriting itself
  (same text length each time, so only a MutationObserver sees it) and then settles is captured settled; a
  page that never settles is captured when the render budget runs out, marked as such.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from support.pageserver import PageServer, Reply, start_page_server
from watchdog import __version__
from watchdog.config import default_user_agent
from watchdog.fetchers.browser import SETTLE_HEADER, BrowserFetcher
from watchdog.models import FetchSettings, Target

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"Debian's chromium is not at {CHROMIUM}"),
]
RENDER_TIMEOUT = 6.0

# Rewrites #step every 80 ms for 24 steps (about 2 s; "step 01/24" .. "step 24/24": the same length each
# time), then appends the last section. The ready marker is there from the start.
MUTATING = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>Policy</title></head><body>
<div id="root"><h1>Privacy Policy</h1><p id="step">step 00/24</p></div><div id="ready"></div>
<script>
let n = 0;
const timer = setInterval(() => {
  n += 1;
  document.getElementById("step").textContent = "step " + String(n).padStart(2, "0") + "/24";
  if (n === 24) {
    clearInterval(timer);
    const last = document.createElement("p");
    last.textContent = "All sections loaded.";
    document.getElementById("root").appendChild(last);
  }
}, 80);
</script></body></html>"""

NEVER_SETTLES = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>Clock</title></head><body>
<div id="root"><h1>Privacy Policy</h1><p>We explain how we use information.</p><p id="clock">0</p></div>
<script>
let t = 0;
setInterval(() => { document.getElementById("clock").textContent = String(++t); }, 100);
</script>
</body></html>"""


@pytest.fixture(scope="module")
def server() -> Iterator[PageServer]:
    with start_page_server() as running:
        yield running


def fetcher(user_agent: str) -> BrowserFetcher:
    settings = FetchSettings(user_agent=user_agent, timeout=10.0, retries=0)
    return BrowserFetcher(settings=settings, executable_path=CHROMIUM, render_timeout=RENDER_TIMEOUT)


def target(url: str, **options: object) -> Target:
    base = Target(id="policy", url=url, name="Policy", select=("#root",), ready="#ready")
    return replace(base, **options)  # type: ignore[arg-type]


def test_user_agent_is_chromiums_own_with_our_product_token(server: PageServer) -> None:
    server.set("/ua", Reply(body=MUTATING))
    browser = fetcher(default_user_agent())
    try:
        browser.fetch(target(server.url("/ua")))
    finally:
        browser.close()
    (request,) = [r for r in server.requests_to("/ua")]
    agent = request.headers["user-agent"]
    assert agent.startswith("Mozilla/5.0 ") and "Chrome/" in agent
    assert agent.endswith(f" policy-watchdog/{__version__}")
    assert agent != default_user_agent()
    # the same browser string the browser reports of itself, read from the browser (not hard-coded)
    assert agent.removesuffix(f" policy-watchdog/{__version__}").count("policy-watchdog") == 0


def test_a_configured_user_agent_is_sent_as_it_is(server: PageServer) -> None:
    server.set("/ua-configured", Reply(body=MUTATING))
    browser = fetcher("research-bot/2 (+https://example.org/contact)")
    try:
        browser.fetch(target(server.url("/ua-configured")))
    finally:
        browser.close()
    (request,) = server.requests_to("/ua-configured")
    assert request.headers["user-agent"] == "research-bot/2 (+https://example.org/contact)"


def test_capture_waits_until_the_dom_is_quiet(server: PageServer) -> None:
    server.set("/mutating", Reply(body=MUTATING))
    browser = fetcher(default_user_agent())
    try:
        started = time.monotonic()
        capture = browser.fetch(target(server.url("/mutating")))
        elapsed = time.monotonic() - started
    finally:
        browser.close()
    root = BeautifulSoup(capture.body, "lxml").select_one("#root")
    assert root is not None
    assert root.select_one("#step").get_text() == "step 24/24"  # type: ignore[union-attr]
    assert "All sections loaded." in root.get_text()
    assert capture.header(SETTLE_HEADER) is None
    assert elapsed >= 24 * 0.08  # it did wait for the rewriting to stop
    assert elapsed < RENDER_TIMEOUT + 5


def test_a_page_that_never_settles_is_taken_when_the_budget_runs_out(server: PageServer) -> None:
    server.set("/clock", Reply(body=NEVER_SETTLES))
    browser = fetcher(default_user_agent())
    try:
        started = time.monotonic()
        capture = browser.fetch(target(server.url("/clock"), ready=None))
        elapsed = time.monotonic() - started
    finally:
        browser.close()
    assert "We explain how we use information." in capture.body.decode()
    assert (capture.header(SETTLE_HEADER) or "").startswith("still changing after")
    assert RENDER_TIMEOUT - 1 <= elapsed < RENDER_TIMEOUT + 8  # bounded by the render timeout

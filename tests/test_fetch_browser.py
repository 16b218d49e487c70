"""Stage 1, fetch: the headless-browser fetcher and the automatic fallback (issue 6).

Browser tests drive the real Debian Chromium through Playwright against the real HTTP server of
tests/support/pageserver.py, serving the pages of tests/support/jspages.py and a raw snapshot of Meta's
EU AI Terms. The needs_browser and find_chromium tables need no browser.
"""

from __future__ import annotations

import os
import stat
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from support import jspages
from support.pageserver import PageServer, Reply, start_page_server
from watchdog.errors import FetchError, MissingDependencyError, OversizeError
from watchdog.fetchers.auto import AutoFetcher, needs_browser
from watchdog.fetchers.browser import (
    CONSENT_HEADER,
    RENDER_HEADER,
    BrowserFetcher,
    find_chromium,
)
from watchdog.fetchers.http import HttpFetcher
from watchdog.models import Capture, FetchSettings, NotModified, Target, Validators

CHROMIUM = "/usr/bin/chromium"
SETTINGS = FetchSettings(user_agent="policy-watchdog-test/1", timeout=5.0, retries=0, max_bytes=2 << 20)
RENDER_TIMEOUT = 2.0
READY = f"#{jspages.READY_ID}"

browser = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"Debian's chromium is not installed at {CHROMIUM} (apt-get install -y chromium)",
)


def target(url: str, **options: object) -> Target:
    base = Target(id="meta-ai-terms", url=url, name="Meta AI Terms", select=("#root",), ready=READY)
    return replace(base, **options)  # type: ignore[arg-type]


def text_of(capture: Capture, selector: str) -> str:
    node = BeautifulSoup(capture.body, "lxml").select_one(selector)
    return " ".join(node.get_text(" ").split()) if node else ""


def leftover(before: set[int], *, only_chromium: bool, within: float = 5.0) -> list[jspages.Proc]:
    """Processes below us that were not there `before`, polled for a while: a killed child is reaped
    by its parent (the Playwright driver) asynchronously."""
    deadline = time.monotonic() + within
    while True:
        found = jspages.chromium_processes() if only_chromium else jspages.descendants()
        new = [p for p in found if p.pid not in before]
        if not new or time.monotonic() > deadline:
            return new
        time.sleep(0.05)


def browser_root_pid() -> int:
    """The Chromium browser process below us: the chromium whose parent is not a chromium."""
    procs = jspages.chromium_processes()
    pids = {p.pid for p in procs}
    roots = [p.pid for p in procs if p.ppid not in pids and p.state != "Z"]
    assert len(roots) == 1, procs
    return roots[0]


@pytest.fixture(scope="module")
def server() -> Iterator[PageServer]:
    with start_page_server() as running:
        yield running


@pytest.fixture(scope="module")
def fetcher() -> Iterator[BrowserFetcher]:
    """One browser for the module, as in one cycle of the daemon."""
    shared = BrowserFetcher(settings=SETTINGS, executable_path=CHROMIUM, render_timeout=RENDER_TIMEOUT)
    yield shared
    shared.close()


@pytest.fixture
def short_fetcher() -> Iterator[BrowserFetcher]:
    """Its own browser with short time-outs, for the tests that make a browser hang or wait."""
    settings = replace(SETTINGS, timeout=2.0)
    own = BrowserFetcher(settings=settings, executable_path=CHROMIUM, render_timeout=1.0, hang_grace=1.0)
    yield own
    own.close()


@pytest.fixture
def http() -> Iterator[HttpFetcher]:
    plain = HttpFetcher(settings=SETTINGS)
    yield plain
    plain.close()


# --------------------------------------------------------------------------- the browser


@pytest.mark.browser
@browser
def test_js_rendered_page_empty_to_plain_fetch_full_to_browser(
    server: PageServer, fetcher: BrowserFetcher, http: HttpFetcher
) -> None:
    server.set("/rendered", Reply(body=jspages.js_rendered_page(delay_ms=400)))
    page = target(server.url("/rendered"))
    plain = http.fetch(page)
    assert isinstance(plain, Capture)
    assert text_of(plain, "#root") == ""
    assert needs_browser(plain, page) is not None

    rendered = fetcher.fetch(page)
    text = text_of(rendered, "#root")
    assert all(" ".join(p.split()) in text for p in jspages.POLICY_PARAGRAPHS)
    assert "Loading" not in text  # the spinner text alone did not count as rendered
    assert rendered.fetcher == "browser"
    assert (rendered.status, rendered.final_url) == (200, page.url)
    assert rendered.header(RENDER_HEADER) is None
    assert rendered.header("content-type") == "text/html; charset=utf-8"
    # Images and fonts are refused before they reach the server; stylesheets are not.
    assert server.hits("/assets/pixel.png") == server.hits("/assets/policy.woff2") == 0
    assert server.hits("/assets/style.css") >= 1


@pytest.mark.browser
@browser
def test_locale_accept_language_and_user_agent_follow_the_target(
    server: PageServer, fetcher: BrowserFetcher
) -> None:
    server.set("/fr", Reply(body=jspages.js_rendered_page(delay_ms=50)))
    page = target(server.url("/fr"), accept_language="fr-FR,fr;q=0.9,en;q=0.5", user_agent="wd-fr/2")
    capture = fetcher.fetch(page)
    request = server.requests_to("/fr")[-1]
    assert request.headers["accept-language"] == "fr-FR,fr;q=0.9,en;q=0.5"
    assert request.headers["user-agent"] == "wd-fr/2"
    assert text_of(capture, "#lang") == "fr-FR"  # navigator.language, as the page's own script saw it


@pytest.mark.browser
@browser
def test_meta_ai_terms_snapshot_served_as_is(server: PageServer, fetcher: BrowserFetcher) -> None:
    server.set("/legal/eu-ai-terms", Reply(body=jspages.meta_ai_terms_html()))
    page = target(
        server.url("/legal/eu-ai-terms"),
        select=('[role="main"]',),
        ready="#ssr-finished-successfully",
    )
    capture = fetcher.fetch(page)
    assert jspages.META_AI_TERMS_SENTENCE in text_of(capture, '[role="main"]')
    assert capture.header(RENDER_HEADER) is None


@pytest.mark.browser
@browser
def test_one_browser_process_serves_consecutive_fetches(server: PageServer, fetcher: BrowserFetcher) -> None:
    server.set("/again", Reply(body=jspages.server_rendered_page()))
    fetcher.fetch(target(server.url("/again")))
    first = browser_root_pid()
    fetcher.fetch(target(server.url("/again")))
    assert browser_root_pid() == first


@pytest.mark.browser
@browser
def test_callers_on_several_threads_share_the_fetcher(server: PageServer, fetcher: BrowserFetcher) -> None:
    server.set("/threads", Reply(body=jspages.server_rendered_page()))
    with ThreadPoolExecutor(3) as pool:
        captures = list(pool.map(lambda _: fetcher.fetch(target(server.url("/threads"))), range(3)))
    assert [c.status for c in captures] == [200, 200, 200]
    assert all(jspages.POLICY_TITLE in text_of(c, "h1") for c in captures)


@pytest.mark.browser
@browser
def test_cookie_dialogs_are_removed_not_clicked(server: PageServer, fetcher: BrowserFetcher) -> None:
    server.set("/consent", Reply(body=jspages.cookie_dialog_page()))
    capture = fetcher.fetch(target(server.url("/consent"), select=("main",)))
    dom = BeautifulSoup(capture.body, "lxml")
    for script in dom.find_all("script"):  # the injecting script still holds the dialog's source
        script.decompose()
    dialogs = [" ".join(d.get_text(" ").split()) for d in dom.select('[role="dialog"]')]
    assert dialogs == [jspages.AI_PAUSE_BANNER]  # the cookie prompt, injected late, is gone
    assert dom.select_one("#onetrust-consent-sdk") is None  # a known consent manager, gone
    assert capture.header(CONSENT_HEADER) == "2"
    assert jspages.COOKIE_SECTION in text_of(capture, "main")  # the policy's own words on cookies
    assert len(server.requests_to("/consent")) == 1  # nothing was clicked into a reload


@pytest.mark.browser
@browser
def test_page_that_never_renders_is_marked_for_rejection(server: PageServer, fetcher: BrowserFetcher) -> None:
    server.set("/never", Reply(body=jspages.never_rendered_page()))
    capture = fetcher.fetch(target(server.url("/never")))
    assert capture.header(RENDER_HEADER) == f"timeout: waited {RENDER_TIMEOUT:g} s for {READY}"
    assert text_of(capture, "#root") == "Loading…"  # what was there, kept as evidence


@pytest.mark.browser
@browser
def test_missing_selector_text_is_named_in_the_render_note(
    server: PageServer, fetcher: BrowserFetcher
) -> None:
    server.set("/no-text", Reply(body=jspages.never_rendered_page()))
    capture = fetcher.fetch(target(server.url("/no-text"), select=("main",), ready=None))
    assert capture.header(RENDER_HEADER) == f"timeout: waited {RENDER_TIMEOUT:g} s for text in main"


@pytest.mark.browser
@browser
def test_body_is_utf8_whatever_the_page_declared(server: PageServer, fetcher: BrowserFetcher) -> None:
    latin = '<html><head><meta charset="windows-1252"></head><body><main>Données personnelles</main>'
    server.set("/latin", Reply(body=latin.encode("cp1252"), headers={"Content-Type": "text/html"}))
    capture = fetcher.fetch(target(server.url("/latin"), select=("main",), ready=None))
    assert capture.header("content-type") == "text/html; charset=utf-8"
    assert capture.header("x-watchdog-original-content-type") == "text/html"
    assert '<meta charset="utf-8">' in capture.body.decode("utf-8")  # no decoder can be misled
    assert text_of(capture, "main") == "Données personnelles"


@pytest.mark.browser
@browser
def test_oversized_rendered_page_is_refused(server: PageServer, fetcher: BrowserFetcher) -> None:
    server.set("/big", Reply(body=jspages.oversized_page(megabytes=3)))
    with pytest.raises(OversizeError, match="over the 2097152-byte cap"):
        fetcher.fetch(target(server.url("/big"), ready=None))


@pytest.mark.browser
@browser
def test_download_is_not_a_page(server: PageServer, fetcher: BrowserFetcher) -> None:
    attachment = {"Content-Type": "application/pdf", "Content-Disposition": "attachment; filename=p.pdf"}
    server.set("/policy.pdf", Reply(body=b"%PDF-1.4", headers=attachment))
    with pytest.raises(FetchError, match="cannot load"):
        fetcher.fetch(target(server.url("/policy.pdf"), ready=None))


@pytest.mark.browser
@browser
def test_hung_page_kills_the_browser_and_close_leaves_no_process(
    server: PageServer, short_fetcher: BrowserFetcher
) -> None:
    before = {p.pid for p in jspages.descendants()}
    server.set("/hang", Reply(body=jspages.hanging_page()))
    with pytest.raises(FetchError, match=r"hung while .*the browser was killed") as caught:
        short_fetcher.fetch(target(server.url("/hang")))
    assert caught.value.transient
    assert leftover(before, only_chromium=True) == []  # killed at once, not at close()

    server.set("/after-hang", Reply(body=jspages.server_rendered_page()))
    assert short_fetcher.fetch(target(server.url("/after-hang"))).status == 200  # a new browser
    short_fetcher.close()
    short_fetcher.close()  # idempotent
    assert leftover(before, only_chromium=False) == []  # no Chromium, no driver, no zombie


@pytest.mark.browser
@browser
def test_close_during_a_hung_fetch_kills_everything(server: PageServer) -> None:
    """SIGTERM in the middle of a cycle: close() from another thread must not wait for the page."""
    before = {p.pid for p in jspages.descendants()}
    patient = BrowserFetcher(
        settings=SETTINGS, executable_path=CHROMIUM, render_timeout=60, hang_grace=60, close_timeout=1
    )
    server.set("/hang-at-close", Reply(body=jspages.hanging_page()))
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(patient.fetch, target(server.url("/hang-at-close")))
        while not server.requests_to("/hang-at-close"):
            time.sleep(0.05)
        patient.close()
        with pytest.raises(FetchError, match="browser: "):
            pending.result(timeout=30)
    assert leftover(before, only_chromium=False) == []


@pytest.mark.browser
@browser
def test_server_that_never_answers_is_a_timeout(server: PageServer, short_fetcher: BrowserFetcher) -> None:
    server.set("/silent", Reply(body="late", delay=30))
    with pytest.raises(FetchError, match=r"no page from .* within 2 s") as caught:
        short_fetcher.fetch(target(server.url("/silent")))
    assert caught.value.transient


# --------------------------------------------------------------------------- auto


@pytest.mark.browser
@browser
def test_auto_falls_back_on_403(server: PageServer, fetcher: BrowserFetcher, http: HttpFetcher) -> None:
    server.set("/refused", Reply(403, "Forbidden"), Reply(body=jspages.js_rendered_page(delay_ms=100)))
    capture = AutoFetcher(http=http, browser=fetcher).fetch(target(server.url("/refused")))
    assert isinstance(capture, Capture)
    assert (capture.fetcher, capture.status) == ("browser", 200)
    assert jspages.POLICY_TITLE in text_of(capture, "#root")
    plain, rendered = server.requests_to("/refused")
    assert "sec-fetch-dest" not in plain.headers
    assert rendered.headers["sec-fetch-dest"] == "document"


@pytest.mark.browser
@browser
def test_auto_falls_back_on_a_bot_check_and_follows_it_to_the_page(
    server: PageServer, fetcher: BrowserFetcher, http: HttpFetcher
) -> None:
    challenge = Reply(body=jspages.bot_check_page())
    server.set("/checked", challenge, challenge, Reply(body=jspages.server_rendered_page()))
    capture = AutoFetcher(http=http, browser=fetcher).fetch(target(server.url("/checked")))
    assert isinstance(capture, Capture)
    assert (capture.fetcher, capture.status) == ("browser", 200)
    assert jspages.POLICY_TITLE in text_of(capture, "h1")
    assert len(server.requests_to("/checked")) == 3  # plain, browser, the challenge's own reload


@pytest.mark.browser
@browser
def test_auto_keeps_a_usable_plain_capture_and_a_304(
    server: PageServer, fetcher: BrowserFetcher, http: HttpFetcher
) -> None:
    server.set("/plain", Reply(body=jspages.server_rendered_page()))
    auto = AutoFetcher(http=http, browser=fetcher)
    page = target(server.url("/plain"))
    capture = auto.fetch(page)
    assert isinstance(capture, Capture)
    assert capture.fetcher == "http"
    validators = Validators(etag=capture.header("etag"))
    assert isinstance(auto.fetch(page, validators=validators), NotModified)
    assert all("sec-fetch-dest" not in r.headers for r in server.requests_to("/plain"))


def test_without_playwright_only_the_targets_needing_it_fail(
    server: PageServer, http: HttpFetcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "playwright.sync_api", None)  # import now fails: not installed
    missing = BrowserFetcher(settings=SETTINGS, executable_path=CHROMIUM)
    auto = AutoFetcher(http=http, browser=missing)
    server.set("/fine", Reply(body=jspages.server_rendered_page()))
    server.set("/shell", Reply(body=jspages.never_rendered_page()))
    fine = auto.fetch(target(server.url("/fine")))
    assert isinstance(fine, Capture) and fine.fetcher == "http"
    with pytest.raises(MissingDependencyError) as caught:
        auto.fetch(target(server.url("/shell")))
    assert "pip install 'policy-watchdog[browser]'" in caught.value.reason
    assert "needed because the ready marker" in caught.value.reason
    missing.close()  # nothing was started; still fine


def test_without_chromium_the_error_says_how_to_install_it(server: PageServer) -> None:
    absent = BrowserFetcher(settings=SETTINGS, executable_path="/nonexistent/chromium")
    with pytest.raises(MissingDependencyError, match="apt-get install chromium"):
        absent.fetch(target(server.url("/fine")))


def test_a_broken_chromium_setting_is_named(server: PageServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLICY_WATCHDOG_CHROMIUM", "/nonexistent/chrome")
    with pytest.raises(MissingDependencyError, match=r"/nonexistent/chrome \(\$POLICY_WATCHDOG_CHROMIUM\)"):
        BrowserFetcher(settings=SETTINGS).fetch(target(server.url("/fine")))


def test_no_chromium_on_path_is_a_missing_dependency(
    server: PageServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("POLICY_WATCHDOG_CHROMIUM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingDependencyError, match="none of chromium, chromium-browser"):
        BrowserFetcher(settings=SETTINGS).fetch(target(server.url("/fine")))


# --------------------------------------------------------------------------- find_chromium


def _program(folder: Path, name: str, *, executable: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n")
    path.chmod(stat.S_IRWXU if executable else stat.S_IRUSR | stat.S_IWUSR)
    return path


def test_find_chromium_prefers_the_environment_variable(tmp_path: Path) -> None:
    chosen = _program(tmp_path / "custom", "my-chrome")
    _program(tmp_path / "bin", "chromium")
    environ = {"POLICY_WATCHDOG_CHROMIUM": str(chosen), "PATH": str(tmp_path / "bin")}
    assert find_chromium(environ=environ) == str(chosen)


def test_find_chromium_never_second_guesses_a_broken_choice(tmp_path: Path) -> None:
    broken = _program(tmp_path / "custom", "my-chrome", executable=False)
    _program(tmp_path / "bin", "chromium")
    environ = {"POLICY_WATCHDOG_CHROMIUM": str(broken), "PATH": str(tmp_path / "bin")}
    assert find_chromium(environ=environ) is None


def test_find_chromium_searches_the_path_in_name_order(tmp_path: Path) -> None:
    _program(tmp_path / "a", "google-chrome")
    browser_b = _program(tmp_path / "b", "chromium-browser")
    environ = {"PATH": f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}"}
    assert find_chromium(environ=environ) == str(browser_b)  # chromium-browser before google-chrome


def test_find_chromium_finds_nothing_on_an_empty_path(tmp_path: Path) -> None:
    assert find_chromium(environ={"PATH": str(tmp_path)}) is None


# --------------------------------------------------------------------------- needs_browser


def _capture(body: str | bytes, status: int = 200, headers: dict[str, str] | None = None) -> Capture:
    return Capture(
        target_id="t",
        url="https://example.org/policy",
        final_url="https://example.org/policy",
        status=status,
        headers=tuple((headers or {}).items()),
        body=body.encode("utf-8") if isinstance(body, str) else body,
        fetched_at=datetime(2026, 1, 1, tzinfo=UTC),
        fetcher="http",
    )


LONG_POLICY = jspages.server_rendered_page(paragraphs=jspages.POLICY_PARAGRAPHS * 8)
LONG_POLICY_ON_CAPTCHAS = jspages.server_rendered_page(
    paragraphs=(
        "We may ask you to solve a captcha, or to enable JavaScript, to check that you are not a robot.",
        *jspages.POLICY_PARAGRAPHS * 8,
    )
)
RECAPTCHA = (
    "<html><body><form><div class='g-recaptcha' data-sitekey='x'></div>"
    "<button>Continue</button></form></body></html>"
)
BARE_SHELL = '<html><body><div id="app"></div><script src="/app.js"></script></body></html>'
FR_SHELL = "<html><body><noscript>Veuillez activer JavaScript.</noscript><div id=root></div></body></html>"

PLAIN = Target(id="t", url="https://example.org/policy", name="t")
ROOT = replace(PLAIN, select=("#root",))
ROOT_READY = replace(PLAIN, select=("#root",), ready=READY)
META = replace(PLAIN, select=('[role="main"]',), ready="#ssr-finished-successfully")

NEEDS_BROWSER_CASES = [
    # (id, capture, target, expected reason fragment or None)
    ("403-refused", _capture("Forbidden", 403), PLAIN, "refused with HTTP 403"),
    ("406-refused", _capture("Not Acceptable", 406), PLAIN, "refused with HTTP 406"),
    ("429-bot-header", _capture("", 429, {"cf-mitigated": "challenge"}), PLAIN, "cf-mitigated"),
    ("429-captcha-page", _capture(RECAPTCHA, 429), PLAIN, "bot wall (g-recaptcha"),
    ("429-plain-rate-limit-waits", _capture("Too Many Requests", 429), PLAIN, None),
    ("challenge-wording", _capture(jspages.bot_check_page()), ROOT, "bot check"),
    ("challenge-on-503", _capture(jspages.bot_check_page(), 503), PLAIN, "bot check"),
    ("captcha-markup", _capture(RECAPTCHA), PLAIN, "g-recaptcha in the markup"),
    ("enable-javascript-in-french", _capture(FR_SHELL), PLAIN, "activer JavaScript"),
    ("empty-root-shell", _capture(jspages.js_rendered_page()), ROOT, "#root holds no text"),
    ("ready-marker-absent", _capture(jspages.never_rendered_page()), ROOT_READY, "ready marker"),
    ("script-shell-no-selectors", _capture(BARE_SHELL), PLAIN, "script shell"),
    ("server-rendered-is-fine", _capture(LONG_POLICY), ROOT_READY, None),
    ("long-policy-about-captchas", _capture(LONG_POLICY_ON_CAPTCHAS), ROOT_READY, None),
    ("meta-snapshot-is-fine", _capture(jspages.meta_ai_terms_html()), META, None),
    ("404-browser-would-not-help", _capture("<h1>Not found</h1>", 404), PLAIN, None),
    ("304-is-final", _capture(b"", 304), ROOT_READY, None),
]


@pytest.mark.parametrize(
    ("capture", "page", "expected"),
    [pytest.param(c, t, e, id=i) for i, c, t, e in NEEDS_BROWSER_CASES],
)
def test_needs_browser(capture: Capture, page: Target, expected: str | None) -> None:
    reason = needs_browser(capture, page)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None and expected in reason, reason

"""Stage 1, fetch: the headless-browser fetcher (Chromium driven by Playwright's sync API).

Some pages are JavaScript applications (Meta's Privacy Center): a plain HTTP client gets an empty shell, a 403
or a bot check, and the wording that matters (the banners announcing, pausing and resuming AI training in
the EU) exists only once the page has run. This fetcher loads such a page in the system's Chromium
(`executable_path`; nothing is downloaded at run time), waits until the target's `ready` marker exists and
its `select` selectors hold text, waits until the DOM has been quiet for SETTLE_QUIET (a MutationObserver
installed before any page script runs: frameworks keep appending sections after the first paint, and a
capture taken mid-render is a truncated "version" that blinks back on the next check), removes
cookie-consent dialogs from the DOM (never clicks them) and returns the serialized DOM as the Capture body.
Both waits share one budget, the render timeout.

User-Agent. A wall that lets browsers through may refuse anything else, so the browser sends Chromium's own
User-Agent, read from the launched browser (never hard-coded: it follows the installed Chromium), with the
product token `policy-watchdog/<version>` appended: still a browser, and still honest about who is asking.
A target's `user_agent`, or a `[fetch] user_agent` other than the default, is sent as it is.

A page that never renders is still returned, marked with the header `x-watchdog-render: timeout: ...`, so
that validation rejects it with the reason "not rendered" instead of archiving a truncated text.

Process model. Playwright's sync API is bound to the thread that started it, and cannot run in a thread that
has a running asyncio loop. So the fetcher owns one worker thread that makes every Playwright call; `fetch`
hands it the work and waits, which lets callers on any thread use it. One Chromium process is launched on the
first fetch and reused for the rest of the cycle; each fetch gets a fresh, isolated browser context. Each
phase of a fetch (start, load, render, settle, serialize) has a budget, and the whole fetch has the
`[fetch] deadline` (waiting for the browser and for the host's turn included; Chromium's own start, with
its own budget, is not the page's doing and does not count): when a page hangs the
browser (a script stuck in a loop) or outlasts the deadline (a body trickled byte by byte), the whole
Chromium process tree is killed at once and the next fetch launches a new one. `close()` ends the browser
and the Playwright driver, killing them if they do not end, and makes sure that none of their processes
survives.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

from watchdog import __version__
from watchdog.config import default_user_agent
from watchdog.errors import FetchError, MissingDependencyError, OversizeError
from watchdog.fetchers.redirects import RedirectPolicy
from watchdog.models import FetchSettings, Target, Validators
from watchdog.results import Capture

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Request, Response, Route

log = logging.getLogger(__name__)

RENDER_HEADER = "x-watchdog-render"  # set only when the page never rendered: validation rejects it
CONSENT_HEADER = "x-watchdog-consent-removed"  # how many cookie-consent elements were removed
ORIGINAL_TYPE_HEADER = "x-watchdog-original-content-type"

CHROMIUM_ENV = "POLICY_WATCHDOG_CHROMIUM"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
PLAYWRIGHT_MISSING = "the browser fetcher needs Playwright: pip install 'policy-watchdog[browser]'"
CHROMIUM_HINT = (
    "install it (Debian/Ubuntu: apt-get install chromium; Fedora: dnf install chromium; "
    f"elsewhere any Chromium or Chrome build) or set {CHROMIUM_ENV} to its path"
)

# --no-sandbox: Chromium refuses to start its own sandbox as root, and under the systemd unit user
# namespaces are forbidden (RestrictNamespaces=yes); the unit's hardening is the sandbox instead.
# The rest turn off everything that would phone home or write a profile beyond the throw-away one.
LAUNCH_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--js-flags=--max-old-space-size=512",  # a runaway page dies alone instead of eating the host
)
# Policy text needs none of these; skipping them bounds the memory and time a page costs.
BLOCKED_RESOURCES = frozenset({"image", "media", "font"})
# They describe the bytes on the wire, not the serialized DOM this fetcher returns.
WIRE_HEADERS = frozenset({"content-length", "content-encoding", "transfer-encoding", "content-type"})

POLL_MS = 100.0  # how often the in-page wait conditions are checked
SETTLE_QUIET = 0.5  # seconds without any DOM mutation after which a rendered page counts as settled
SETTLE_HEADER = "x-watchdog-settle"  # set when the DOM was still changing when the render budget ran out
LAUNCH_TIMEOUT = 60.0  # seconds to start the driver and Chromium: slow on a loaded machine, and rare
LAUNCH_PHASE = "starting Chromium"
REAP_TIMEOUT = 5.0  # seconds to wait for killed processes to end

# Known consent-manager containers (Meta's own dialog, OneTrust, Cookiebot, Didomi, tarteaucitron,
# Usercentrics, Quantcast, TrustArc, Google, Sourcepoint, consentmanager, iubenda, CookieYes, Borlabs).
CONSENT_CONTAINERS = (
    '[data-testid^="cookie-policy"]',
    "#onetrust-consent-sdk",
    "#CybotCookiebotDialog",
    "#didomi-host",
    "#tarteaucitronRoot",
    "#usercentrics-root",
    ".qc-cmp2-container",
    "#truste-consent-track",
    ".fc-consent-root",
    '[id^="sp_message_container_"]',
    "#cmpbox",
    "#iubenda-cs-banner",
    ".cky-consent-container",
    "#BorlabsCookieBox",
)
# A dialog is a cookie prompt when it talks about cookies or trackers and is short: the cap keeps a
# policy shown in a modal (which may well discuss cookies at length) from being thrown away.
CONSENT_WORDS = r"cookie|traceurs?|t[ée]moins de connexion"
CONSENT_MAX_CHARS = 5000

_MISSING_JS = """(spec) => {
  const hasText = (sel) =>
    Array.from(document.querySelectorAll(sel)).some((el) => el.textContent.trim() !== "");
  const missing = [];
  if (spec.ready && document.querySelector(spec.ready) === null) missing.push(spec.ready);
  for (const sel of spec.select) if (!hasText(sel)) missing.push("text in " + sel);
  return missing;
}"""
_RENDERED_JS = f"(spec) => ({_MISSING_JS})(spec).length === 0"
# Installed before any page script: the time of the last DOM mutation, anywhere in the document.
_OBSERVE_JS = """(() => {
  const mark = () => { window.__policyWatchdogLastMutation = performance.now(); };
  mark();
  new MutationObserver(mark).observe(document, {
    subtree: true, childList: true, characterData: true, attributes: true,
  });
})();"""
_SETTLED_JS = """(spec) => {
  if (spec.ready && document.querySelector(spec.ready) === null) return false;
  const last = window.__policyWatchdogLastMutation;
  return last !== undefined && performance.now() - last >= spec.quietMs;
}"""
# Removes consent prompts, and re-declares the charset: the body handed on is UTF-8 whatever the page was.
_PREPARE_JS = """(spec) => {
  let removed = 0;
  const drop = (el) => { if (el.isConnected) { el.remove(); removed += 1; } };
  document.querySelectorAll(spec.containers).forEach(drop);
  const prompt = new RegExp(spec.words, "i");
  const dialogs = 'dialog, [role="dialog"], [role="alertdialog"], [aria-modal="true"]';
  document.querySelectorAll(dialogs).forEach((el) => {
    const text = el.textContent.trim();
    if (el.isConnected && text.length <= spec.maxChars && prompt.test(text)) drop(el);
  });
  document.querySelectorAll("meta[charset]").forEach((m) => m.setAttribute("charset", "utf-8"));
  document.querySelectorAll('meta[http-equiv="content-type" i]')
    .forEach((m) => m.setAttribute("content", "text/html; charset=utf-8"));
  return removed;
}"""


class HostLimiter(Protocol):
    """Politeness shared with the plain fetcher (fetchers.http.HostLimiter): `hold(url)` is held while
    a request to the URL's host runs, so one host never sees two of our requests at once."""

    def hold(self, url: str, timeout: float | None = None) -> AbstractContextManager[object]: ...


@dataclass(frozen=True, slots=True)
class _Pids:
    browser: int | None  # Chromium's browser process
    driver: int | None  # Playwright's driver (node), the browser's parent and our child


@dataclass(frozen=True, slots=True)
class _Phase:
    name: str
    budget: float  # seconds, grace included
    deadline: float  # a time.monotonic() value


class _Progress:
    """What one fetch's worker is doing, and from when it counts as hung. One per fetch, so a killed
    fetch still unwinding on the worker cannot move the deadline of the next one."""

    def __init__(self, grace: float) -> None:
        self._grace = grace
        self._lock = threading.Lock()
        self._phase = _Phase("starting", 0.0, 0.0)
        self.page_started: float | None = None  # when the first phase after Chromium's start began

    def enter(self, name: str, budget: float) -> None:
        """Start a phase: `budget` is the phase's own timeout, the grace is slack on top."""
        total = budget + self._grace
        now = time.monotonic()
        with self._lock:
            self._phase = _Phase(name, total, now + total)
            if name != LAUNCH_PHASE and self.page_started is None:
                self.page_started = now

    @property
    def phase(self) -> _Phase:
        with self._lock:
            return self._phase


@dataclass(frozen=True, slots=True)
class _Launched:
    """A running browser and the process ids needed to kill it if it stops answering."""

    browser: Browser
    pid: int | None  # Chromium's browser process
    driver_pid: int | None  # Playwright's driver (node), the browser's parent and our child
    user_agent: str = ""  # the browser's own User-Agent


def _utcnow() -> datetime:
    return datetime.now(UTC)


class BrowserFetcher:
    """Fetches targets in headless Chromium; implements fetchers.base.Fetcher."""

    def __init__(
        self,
        *,
        settings: FetchSettings,
        executable_path: str | None = None,
        clock: Callable[[], datetime] = _utcnow,
        render_timeout: float = 30.0,
        host_limiter: HostLimiter | None = None,
        hang_grace: float = 10.0,
        close_timeout: float = 10.0,
        redirects: RedirectPolicy | None = None,
    ) -> None:
        self._settings = settings
        self._redirects = redirects or RedirectPolicy(allow_private=settings.private_redirects)
        self._executable_path = executable_path
        self._clock = clock
        self._render_timeout = render_timeout
        self._host_limiter = host_limiter
        self._hang_grace = hang_grace
        self._close_timeout = close_timeout  # for a graceful shutdown before the processes are killed
        self._serial = threading.Lock()  # one fetch at a time: a deadline must not run while queued
        self._state = threading.Lock()  # guards the two fields below across threads
        self._executor: ThreadPoolExecutor | None = None
        self._pids = _Pids(None, None)  # of the running browser, for the kill path
        # Touched only on the worker thread (and by close() once that thread is given up on):
        self._playwright: Playwright | None = None
        self._launched: _Launched | None = None

    # ----------------------------------------------------------------- caller side (any thread)

    def fetch(self, target: Target, *, validators: Validators | None = None) -> Capture:
        """Render the target's page. `validators` are ignored: a browser sends no conditional GET."""
        del validators
        api = _playwright_api()
        executable = self._executable()
        ends = time.monotonic() + self._settings.deadline
        with self._turn(ends), self._host_slot(target.url, ends):
            progress = _Progress(self._hang_grace)
            progress.enter(LAUNCH_PHASE, LAUNCH_TIMEOUT)
            job = self._worker().submit(self._fetch_on_worker, api, target, executable, progress)
            return self._outcome(job, progress, target.url)

    @contextmanager
    def _turn(self, ends: float) -> Iterator[None]:
        """One fetch at a time (a phase's budget must not run while queued), waiting no past `ends`."""
        if not self._serial.acquire(timeout=max(ends - time.monotonic(), 0.0)):
            raise FetchError("browser: busy with another page past the deadline", transient=True)
        try:
            yield
        finally:
            self._serial.release()

    def close(self) -> None:
        """Close the browser and the Playwright driver; kill them if they hang. Idempotent."""
        with self._state:
            executor, self._executor = self._executor, None
            pids, self._pids = self._pids, _Pids(None, None)
        if executor is None:
            return
        # Remembered now: once the browser is gone its orphans can no longer be found from it.
        leftovers = _snapshot(pids.driver if pids.driver is not None else pids.browser)
        try:
            closing = executor.submit(self._shutdown_on_worker)
            if not wait([closing], timeout=self._close_timeout).done:
                log.warning("browser: did not close within %g s; killing it", self._close_timeout)
                _kill_all(_snapshot(pids.browser))  # whatever the worker waits for fails now
                self._give_up_on(closing)
        finally:
            executor.shutdown(wait=False)  # not cancel_futures: the queued shutdown must still run
            _kill_all(leftovers)

    def _give_up_on(self, closing: Future[None]) -> None:
        """Last resort when even a killed browser leaves the worker stuck (the driver hangs): drop its
        Playwright objects, which die with the driver killed after this, so that a later fetch
        starts afresh on a new worker thread."""
        if not wait([closing], timeout=self._close_timeout).done:
            log.error("browser: the Playwright driver does not stop; killing it")
            self._launched, self._playwright = None, None

    def _outcome(self, job: Future[Capture], progress: _Progress, url: str) -> Capture:
        """The worker's result; the browser is killed as soon as a phase overruns its budget or the page
        its deadline (counted from the end of Chromium's start, which has its own budget: our cost, not
        the server's doing)."""
        while True:
            phase, now = progress.phase, time.monotonic()
            started = progress.page_started
            ends = started + self._settings.deadline if started is not None else float("inf")
            if now >= ends:
                self._kill_browser()
                raise FetchError(
                    f"browser: {url} took longer than the {self._settings.deadline:g} s deadline (while "
                    f"{phase.name}); the browser was killed",
                    transient=True,
                )
            if now >= phase.deadline:
                self._kill_browser()
                raise FetchError(
                    f"browser: {url} hung while {phase.name} (no progress in {phase.budget:g} s); "
                    "the browser was killed",
                    transient=True,
                )
            if wait([job], timeout=min(phase.deadline - now, ends - now, 0.5)).done:
                return job.result()

    def _executable(self) -> str:
        chosen = self._executable_path or os.environ.get(CHROMIUM_ENV)
        if chosen:  # an explicit choice is never second-guessed with another browser
            if _is_executable(chosen):
                return chosen
            origin = "executable_path" if self._executable_path else f"${CHROMIUM_ENV}"
            raise MissingDependencyError(
                f"the browser fetcher needs Chromium: {chosen} ({origin}) is not an executable "
                f"file; {CHROMIUM_HINT}"
            )
        found = find_chromium()
        if found is None:
            raise MissingDependencyError(
                f"the browser fetcher needs Chromium, and none of {', '.join(CHROMIUM_NAMES)} is "
                f"on PATH; {CHROMIUM_HINT}"
            )
        return found

    def _host_slot(self, url: str, ends: float) -> AbstractContextManager[object]:
        if self._host_limiter is None:
            return nullcontext()
        return self._host_limiter.hold(url, timeout=ends - time.monotonic())

    def _worker(self) -> ThreadPoolExecutor:
        with self._state:
            if self._executor is None:
                # max_workers=1: every Playwright call of this fetcher runs on one and the same thread.
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="watchdog-browser")
            return self._executor

    def _kill_browser(self) -> None:
        with self._state:
            pid = self._pids.browser
            self._pids = _Pids(None, self._pids.driver)  # the driver lives on and launches the next
        if pid is not None:
            log.warning("browser: killing Chromium (pid %d) and its children", pid)
            _kill_all(_snapshot(pid))

    # ----------------------------------------------------------------- worker thread only

    def _ensure_browser(self, api: ModuleType, executable: str) -> _Launched:
        launched = self._launched
        if launched is not None and launched.browser.is_connected() and _alive(launched.pid):
            return launched
        if launched is not None:  # crashed or killed: forget it, start another
            _close_quietly(api, launched.browser)
        try:
            self._launched = launched = self._launch(api, executable)
        except api.Error as exc:
            raise FetchError(
                f"browser: Chromium ({executable}) did not start: {_launch_failure(exc)}"
            ) from exc
        with self._state:
            self._pids = _Pids(launched.pid, launched.driver_pid)
        return launched

    def _launch(self, api: ModuleType, executable: str) -> _Launched:
        if self._playwright is None:
            self._playwright = api.sync_playwright().start()
        browser = self._playwright.chromium.launch(
            executable_path=executable,
            args=list(LAUNCH_ARGS),
            headless=True,
            timeout=LAUNCH_TIMEOUT * 1000,
        )
        pid, user_agent = _browser_info(browser)
        driver = _parent(pid) if pid is not None else None
        log.info("browser: launched %s (pid %s, %s)", executable, pid, user_agent)
        own = driver if driver and _parent(driver) == os.getpid() else None
        return _Launched(browser, pid, own, user_agent)

    def _fetch_on_worker(
        self, api: ModuleType, target: Target, executable: str, progress: _Progress
    ) -> Capture:
        launched = self._ensure_browser(api, executable)
        try:
            options = _context_options(target, self._settings, launched.user_agent)
            context = launched.browser.new_context(**options)
        except api.Error as exc:
            raise FetchError(f"browser: no new page: {_first_line(exc)}", transient=True) from exc
        visit = _Visit(api, target, progress, self._settings, self._render_timeout, self._redirects)
        try:
            return visit.capture(context, self._clock)
        except api.Error as exc:  # the page or the browser died under us
            raise FetchError(f"browser: {target.url}: {_first_line(exc)}", transient=True) from exc
        finally:
            _close_quietly(api, context)

    def _shutdown_on_worker(self) -> None:
        api = _playwright_api()
        launched, self._launched = self._launched, None
        if launched is not None:
            _close_quietly(api, launched.browser)
        driver, self._playwright = self._playwright, None
        if driver is not None:
            try:
                driver.stop()
            except api.Error as exc:
                log.debug("browser: stopping the Playwright driver: %s", _first_line(exc))


class _Visit:
    """One fetch's steps on the worker thread: load, wait for the render, clean up, serialize."""

    def __init__(
        self,
        api: ModuleType,
        target: Target,
        progress: _Progress,
        settings: FetchSettings,
        render_timeout: float,
        redirects: RedirectPolicy,
    ) -> None:
        self._api = api
        self._target = target
        self._progress = progress
        self._settings = settings
        self._render_timeout = render_timeout
        self._redirects = redirects
        self._spec = {
            "ready": target.ready,
            "select": list(target.select),
            "quietMs": SETTLE_QUIET * 1000,
        }

    def capture(self, context: BrowserContext, clock: Callable[[], datetime]) -> Capture:
        target = self._target
        context.add_init_script(_OBSERVE_JS)
        context.route("**/*", _route_policy(target.accept_language))
        page = context.new_page()
        documents: list[Response] = []
        page.on("response", lambda r: _keep_document(page, r, documents))
        first = self._navigate(page)
        fetched_at = clock()
        deadline = time.monotonic() + self._render_timeout  # rendering and settling share this budget
        render = self._await_render(page)
        settle = self._settle(page, deadline) if render is None else None
        self._progress.enter("serializing the page", 0.0)
        removed = int(page.evaluate(_PREPARE_JS, _consent_spec()))
        body = page.content().encode("utf-8")
        if len(body) > self._settings.max_bytes:
            raise OversizeError(
                f"browser: the rendered page of {target.url} is {len(body)} bytes, over the "
                f"{self._settings.max_bytes}-byte cap"
            )
        response = documents[-1] if documents else first
        # Chromium follows redirects itself (a route handler never sees them): every document it went
        # through is checked here, before anything of it can be archived
        for url in [*_redirect_chain([first, *documents]), page.url]:
            self._redirects.check(target.url, url)
        return Capture(
            target_id=target.id,
            url=target.url,
            final_url=page.url,
            status=response.status,
            headers=_capture_headers(response, render=render, removed=removed, settle=settle),
            body=body,
            fetched_at=fetched_at,
            fetcher="browser",
        )

    def _navigate(self, page: Page) -> Response:
        url, timeout = self._target.url, self._settings.timeout
        self._progress.enter("loading the page", timeout)
        try:
            response = page.goto(url, wait_until="domcontentloaded", timeout=timeout * 1000)
        except self._api.TimeoutError as exc:
            raise FetchError(f"browser: no page from {url} within {timeout:g} s", transient=True) from exc
        except self._api.Error as exc:
            raise FetchError(f"browser: cannot load {url}: {_first_line(exc)}", transient=True) from exc
        if response is None:  # only for same-document navigations, which a fresh page never makes
            raise FetchError(f"browser: {url} gave no HTTP response")
        return response

    def _await_render(self, page: Page) -> str | None:
        """Wait for the target's conditions; None when met, else the note for RENDER_HEADER."""
        waited, conditions = self._render_timeout, bool(self._spec["ready"] or self._spec["select"])
        self._progress.enter("waiting for the page to render", waited)
        try:
            if conditions:
                page.wait_for_function(_RENDERED_JS, arg=self._spec, polling=POLL_MS, timeout=waited * 1000)
            else:  # nothing to look for: the load event is the best sign we have
                page.wait_for_load_state("load", timeout=waited * 1000)
        except self._api.TimeoutError:
            self._progress.enter("inspecting the unrendered page", 0.0)
            missing = page.evaluate(_MISSING_JS, self._spec) if conditions else ["the load event"]
            if missing:
                return f"timeout: waited {waited:g} s for {' and '.join(missing)}"
        return None

    def _settle(self, page: Page, deadline: float) -> str | None:
        """Wait until no DOM mutation for SETTLE_QUIET (and `ready` still there), within what is left of
        the render budget. None when settled, else a note (the capture is kept: a page with a ticking
        clock never settles, and its text is still the policy)."""
        budget = max(deadline - time.monotonic(), SETTLE_QUIET + POLL_MS / 1000)
        self._progress.enter("waiting for the page to settle", budget)
        try:
            page.wait_for_function(_SETTLED_JS, arg=self._spec, polling=POLL_MS, timeout=budget * 1000)
        except self._api.TimeoutError:
            log.info("browser: %s still changing after %.1f s; taking it as is", page.url, budget)
            return f"still changing after {budget:.1f} s"
        return None


def _route_policy(accept_language: str | None) -> Callable[[Route], None]:
    """Every request of a page passes here: heavy resources are refused, and Accept-Language is set
    to the target's full list (the context's `locale` alone would send only its first language).
    A plain function, not a callable object: Playwright tags the handler with an attribute."""

    def handle(route: Route) -> None:
        request = route.request
        if request.resource_type in BLOCKED_RESOURCES:
            route.abort("blockedbyclient")
        elif accept_language:
            route.fallback(headers={**request.headers, "accept-language": accept_language})
        else:
            route.fallback()

    return handle


# --------------------------------------------------------------------------- helpers


def find_chromium(*, environ: Mapping[str, str] | None = None) -> str | None:
    """The Chromium to drive: $POLICY_WATCHDOG_CHROMIUM when set (and executable), else the first of
    chromium, chromium-browser, google-chrome... found on $PATH (/bin:/usr/bin when PATH is unset)."""
    env = os.environ if environ is None else environ
    chosen = env.get(CHROMIUM_ENV)
    if chosen:  # an explicit choice is never second-guessed with another browser
        return chosen if _is_executable(chosen) else None
    path = env.get("PATH", os.defpath)
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name, path=path))), None)


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants, from /proc (Linux); just [root] where there is no /proc."""
    children: dict[int, list[int]] = {}
    for pid in _proc_entries():
        stat = _stat(pid)
        if stat is not None:
            children.setdefault(stat.ppid, []).append(pid)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def _playwright_api() -> ModuleType:
    try:
        import playwright.sync_api as api  # optional extra; heavy: loaded on first use
    except ImportError as exc:
        raise MissingDependencyError(PLAYWRIGHT_MISSING) from exc
    return api


def _is_executable(path: str) -> bool:
    return Path(path).is_file() and os.access(path, os.X_OK)


def browser_user_agent(own: str, target: Target, settings: FetchSettings) -> str:
    """The browser's own User-Agent plus our product token, unless the target or [fetch] sets one."""
    if target.user_agent:
        return target.user_agent
    if settings.user_agent != default_user_agent() or not own:
        return settings.user_agent
    return f"{own} policy-watchdog/{__version__}"


def _context_options(target: Target, settings: FetchSettings, own_user_agent: str) -> dict[str, Any]:
    options: dict[str, Any] = {
        "user_agent": browser_user_agent(own_user_agent, target, settings),
        "accept_downloads": False,
        "service_workers": "block",  # a worker could answer from a cache instead of the network
    }
    if target.accept_language:
        locale = target.accept_language.split(",")[0].split(";")[0].strip()
        if locale and locale != "*":
            options["locale"] = locale  # navigator.language and Intl follow the target too
    return options


def _keep_document(page: Page, response: Response, documents: list[Response]) -> None:
    """Remember the main frame's document responses: a bot check may hand over to the real page."""
    request = response.request
    redirect = 300 <= response.status < 400
    if request.is_navigation_request() and request.frame == page.main_frame and not redirect:
        documents.append(response)


def _redirect_chain(responses: list[Response]) -> list[str]:
    """Every URL the documents' requests went through, redirects included."""
    urls = []
    for response in responses:
        request: Request | None = response.request
        while request is not None:
            urls.append(request.url)
            request = request.redirected_from
    return urls


def _consent_spec() -> dict[str, Any]:
    return {
        "containers": ", ".join(CONSENT_CONTAINERS),
        "words": CONSENT_WORDS,
        "maxChars": CONSENT_MAX_CHARS,
    }


def _capture_headers(
    response: Response, *, render: str | None, removed: int, settle: str | None = None
) -> tuple[tuple[str, str], ...]:
    raw = [(h["name"], h["value"]) for h in response.headers_array()]
    kept = [(name, value) for name, value in raw if name.lower() not in WIRE_HEADERS]
    original = [value for name, value in raw if name.lower() == "content-type"]
    extra = [("content-type", "text/html; charset=utf-8")]
    extra += [(ORIGINAL_TYPE_HEADER, value) for value in original[:1]]
    extra += [(CONSENT_HEADER, str(removed))] if removed else []
    extra += [(RENDER_HEADER, render)] if render else []
    extra += [(SETTLE_HEADER, settle)] if settle else []
    return (*kept, *extra)


def _browser_info(browser: Browser) -> tuple[int | None, str]:
    """Chromium's own process id and User-Agent, asked over the DevTools protocol (Playwright exposes
    neither)."""
    session = browser.new_browser_cdp_session()
    try:
        info = session.send("SystemInfo.getProcessInfo")
        version = session.send("Browser.getVersion")
    finally:
        session.detach()
    pid = next((int(p["id"]) for p in info["processInfo"] if p.get("type") == "browser"), None)
    return pid, str(version.get("userAgent", ""))


def _close_quietly(api: ModuleType, closable: Browser | BrowserContext) -> None:
    """Close a context or browser that may already be dead; its death was reported elsewhere."""
    try:
        closable.close()
    except api.Error as exc:
        log.debug("browser: close: %s", _first_line(exc))


def _launch_failure(exc: BaseException) -> str:
    """Playwright's first line plus what the program itself printed as plain sentences: a wrapper
    script's complaint, not Chromium's own bracketed log lines (which are mostly harmless noise)."""
    said = [
        line.split("[err] ", 1)[1].strip()
        for line in str(exc).splitlines()
        if "[err] " in line and not line.split("[err] ", 1)[1].startswith("[")
    ]
    return "; ".join([_first_line(exc), *said[:3]])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _proc_entries() -> Iterable[int]:
    try:
        return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    except OSError:
        return []


@dataclass(frozen=True, slots=True)
class _ProcStat:
    state: str  # "Z" for a zombie
    ppid: int
    started: int  # clock ticks after boot: tells a process from a later one that reuses its pid


@dataclass(frozen=True, slots=True)
class _Proc:
    pid: int
    started: int | None


def _stat(pid: int) -> _ProcStat | None:
    """A live or zombie process's /proc/<pid>/stat; None when it is gone or there is no /proc."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # the command name may hold spaces and parentheses
    return _ProcStat(state=fields[0], ppid=int(fields[1]), started=int(fields[19]))


def _parent(pid: int) -> int | None:
    stat = _stat(pid)
    return stat.ppid if stat else None


def _alive(pid: int | None) -> bool:
    if pid is None or not Path("/proc/self").exists():
        return True  # cannot tell: trust Playwright's own connection state
    stat = _stat(pid)
    return stat is not None and stat.state != "Z"


def _snapshot(root: int | None) -> list[_Proc]:
    """The process tree under `root`, remembered by identity so that it can be killed later safely."""
    if root is None:
        return []
    return [_Proc(pid, stat.started if (stat := _stat(pid)) else None) for pid in process_tree(root)]


def _running(proc: _Proc) -> bool:
    """Whether this very process (not a later one reusing its pid) still runs; a zombie has ended."""
    if proc.started is None:  # no /proc: the kernel can only say whether the pid exists
        return _pid_exists(proc.pid)
    stat = _stat(proc.pid)
    return stat is not None and stat.started == proc.started and stat.state != "Z"


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_all(procs: list[_Proc]) -> None:
    """SIGKILL the processes still running and wait (bounded) until they have ended. Their zombies are
    their parents' to reap: the Playwright driver reaps Chromium, asyncio reaps the driver, and init
    (systemd) the zygotes that Chromium orphans even when it exits normally."""
    for proc in procs:
        if _running(proc):
            with suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + REAP_TIMEOUT
    while (left := [p.pid for p in procs if _running(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    if left:
        log.warning("browser: processes %s still running after SIGKILL", left)

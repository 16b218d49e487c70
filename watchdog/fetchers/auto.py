"""Stage 1, fetch: `fetcher = "auto"`, plain HTTP first and the headless browser only when needed.

The plain fetch is fast and light; the browser costs a Chromium process and seconds per page. So every
"auto" target is fetched plainly, and `needs_browser` decides, from that capture alone, whether it can be
the page at all:

- the server refused the plain client (403, 406), or rate-limited it with a bot-wall signature (429);
- the page is a bot check: a captcha, "checking your browser", "enable JavaScript" (a short page, see
  SHELL_TEXT_LIMIT, saying so or carrying a challenge script);
- the page is a JavaScript shell: the target's `ready` marker is absent, one of its `select` selectors
  holds no text (the browser waits for all of them), or, with neither configured, it has scripts but
  less text than the target's own `min_length`.

Each of these captures would be rejected by validation anyway; the browser is the one fetcher that can do
better. Anything else (a 404, a login wall, a server error) is the same for a browser and is left to
validation. A 304 from the plain fetch is final. The Capture says which fetcher produced it.
"""

from __future__ import annotations

import logging
import re

from watchdog.errors import FetchError, MissingDependencyError, OversizeError
from watchdog.fetchers.base import Fetcher
from watchdog.models import Target, Validators
from watchdog.patterns import lazy
from watchdog.results import Capture, NotModified

log = logging.getLogger(__name__)

REFUSED_STATUSES = frozenset({403, 406})
# Response headers set by bot-management services when they, not the site, answered.
BOT_HEADERS = ("cf-mitigated", "x-datadome", "x-amzn-waf-action", "x-sucuri-block")
# Challenge and "enable JavaScript" pages carry a few hundred characters of text; a policy has tens of
# thousands. Only pages under this limit are searched for bot-check wording, so a policy that explains
# captchas or mentions JavaScript is never mistaken for a bot check.
SHELL_TEXT_LIMIT = 2000
BOT_WORDING = lazy(
    r"checking (?:if the site connection is secure|your browser)|just a moment\.\.\."
    r"|verify(?:ing)? (?:that )?you are (?:a )?human|are you a robot|not a robot|captcha"
    r"|(?:enable|turn on|activate) javascript|javascript is (?:disabled|required|turned off)"
    r"|unusual traffic|pardon our interruption"
    r"|activ(?:er|ez) (?:le )?javascript|javascript est d[ée]sactiv[ée]"
    r"|v[ée]rifi(?:er|ons) que vous [êe]tes (?:un )?humain",
    re.IGNORECASE,
)
# Scripts and form widgets of the common challenge providers (Cloudflare, reCAPTCHA, hCaptcha,
# DataDome, Imperva, PerimeterX/HUMAN, AWS WAF).
BOT_MARKUP = lazy(
    rb"/cdn-cgi/challenge-platform/|challenges\.cloudflare\.com|g-recaptcha|h-captcha|hcaptcha\.com"
    rb"|captcha-delivery\.com|_Incapsula_Resource|px-captcha|awswaf",
    re.IGNORECASE,
)
UNSEEN = ("script", "style", "template")  # their text is never shown; noscript is, to a plain client


def needs_browser(capture: Capture, target: Target) -> str | None:
    """Why the plain capture cannot be the page and the browser should try, or None when it may be."""
    if capture.status == 304:
        return None
    if capture.status in REFUSED_STATUSES:
        return f"the plain fetch was refused with HTTP {capture.status}"
    page = _PlainPage(capture.body)
    bot = _bot_header(capture) or page.bot_check()
    if capture.status == 429:  # a plain rate limit is for later; a bot wall is for the browser
        return f"HTTP 429 from a bot wall ({bot})" if bot else None
    if bot:
        return f"the plain fetch got a bot check ({bot})"
    return page.shell_reason(target)


class AutoFetcher:
    """Plain HTTP first, the browser when `needs_browser` says so; implements fetchers.base.Fetcher."""

    def __init__(self, *, http: Fetcher, browser: Fetcher) -> None:
        self._http = http
        self._browser = browser

    def fetch(self, target: Target, *, validators: Validators | None = None) -> Capture | NotModified:
        try:
            plain = self._http.fetch(target, validators=validators)
        except FetchError as exc:
            if exc.status not in REFUSED_STATUSES:  # no response, or one a browser cannot change
                raise
            return self._fall_back(target, f"the plain fetch was refused: {exc.reason}")
        if isinstance(plain, NotModified):
            return plain
        reason = needs_browser(plain, target)
        return plain if reason is None else self._fall_back(target, reason)

    def close(self) -> None:
        """Close both fetchers (the browser even if the plain one fails to close)."""
        try:
            self._http.close()
        finally:
            self._browser.close()

    def _fall_back(self, target: Target, reason: str) -> Capture | NotModified:
        log.info("%s: %s; fetching it with the browser", target.id, reason)
        try:
            # No validators: a browser sends no conditional GET.
            return self._browser.fetch(target)
        except FetchError as exc:
            raise _with_cause(exc, reason) from exc


def _with_cause(exc: FetchError, reason: str) -> FetchError:
    """The browser's error, same type, saying why the browser was needed at all."""
    kind = exc.__class__ if isinstance(exc, MissingDependencyError | OversizeError) else FetchError
    return kind(f"{exc.reason} (needed because {reason})", transient=exc.transient, status=exc.status)


def _bot_header(capture: Capture) -> str | None:
    return next((f"{name} header" for name in BOT_HEADERS if capture.header(name) is not None), None)


class _PlainPage:
    """The plain body, parsed once (lxml through bs4) for the few questions needs_browser asks."""

    def __init__(self, body: bytes) -> None:
        from bs4 import BeautifulSoup  # lazy: loading it costs ~60 ms, and only "auto" targets need it

        self._body = body
        self._soup = BeautifulSoup(body, "lxml")
        self._has_scripts = self._soup.find("script") is not None
        for node in self._soup.find_all(UNSEEN):
            node.decompose()
        self._text = " ".join(self._soup.get_text(" ").split())

    def bot_check(self) -> str | None:
        if len(self._text) >= SHELL_TEXT_LIMIT:
            return None
        wording = BOT_WORDING.search(self._text)
        if wording:
            return f'"{wording.group(0)}"'
        markup = BOT_MARKUP.search(self._body)
        return f"{markup.group(0).decode('ascii', 'replace')} in the markup" if markup else None

    def shell_reason(self, target: Target) -> str | None:
        if target.ready and self._soup.select_one(target.ready) is None:
            return f"the ready marker {target.ready} is not in the plain page"
        empty = [selector for selector in target.select if not self._has_text(selector)]
        if empty:  # the browser waits for every selector to hold text: the same rule here
            return f"{', '.join(empty)} holds no text in the plain page"
        configured = bool(target.ready or target.select)
        if not configured and self._has_scripts and len(self._text) < target.min_length:
            return f"the plain page is a script shell ({len(self._text)} characters of text)"
        return None

    def _has_text(self, selector: str) -> bool:
        return any(node.get_text(strip=True) for node in self._soup.select(selector))

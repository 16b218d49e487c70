"""Hostile page text in a real browser: an archive built by the real pipeline from a watched page whose
policy text carries script tags, event-handler attributes, javascript: links, Markdown link tricks and
control characters is served by `serve` and loaded in headless Chromium (Debian's, via Playwright).

Every page is loaded twice: once as served (the strict CSP on), and once with the CSP bypassed, so the
escaping alone is what keeps the text inert. A canary page that really runs a script proves the detector
can see an injection. Screenshots go to test-artifacts/ (phone width too).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support.archives import html_page, pipeline_archive
from watchdog.config import Config
from watchdog.fetchers.browser import LAUNCH_ARGS
from watchdog.publish.serve import serve

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
ARGS = list(LAUNCH_ARGS)  # the flags the browser fetcher launches Chromium with

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"Debian's chromium is not installed at {CHROMIUM}"),
]

BEFORE = """# Privacy Policy

## How we use your information

We use the information we have to provide and improve our Products, including to personalise
features and content and to make suggestions for you on and off our Products.

We collect information about the content you create, the messages you send and receive, and the
people, Pages, accounts and groups you are connected to.

You can object to the use of your information at any time, and you can access, correct, download
and delete your information in your settings.

## How to contact us

If you have questions about this policy, you can contact our Data Protection Officer.
"""

# The watched page's *visible text* (entities and backslashes in the Markdown keep it text on the watched
# page too): each line tries to run code that sets window.__pwned, or to navigate to javascript:.
HOSTILE = r"""
We may use &lt;script&gt;window.__pwned = "script-tag"; alert("script-tag")&lt;/script&gt; public posts.

Object here: &lt;img src=x onerror="window.__pwned = 'onerror'; alert('onerror')"&gt; or write to us.

\[Opt out of AI training\](javascript:window.__pwned='markdown-link') is how you object.

Reference: \[objection form\]: javascript:window.__pwned='reference-link'

Attribute breakout: "&gt;&lt;svg onload="window.__pwned='svg'"&gt; and
'&gt;&lt;iframe srcdoc="&lt;script&gt;parent.__pwned=1&lt;/script&gt;"&gt;

Raw-text breakout: &lt;/title&gt;&lt;/style&gt;&lt;/textarea&gt;
&lt;script&gt;window.__pwned='breakout'&lt;/script&gt;

Control characters: &#x1b;[31mred&#x1b;[0m and a bell&#x07; and RTL &#x202e;txet desrever.
"""

# Real markup on the watched page around that text: an active link and a script, which the extractor must
# not carry over as anything but text.
LIVE_MARKUP = (
    "<p><a href=\"javascript:window.__pwned='live-link'\">Manage your AI settings</a></p>"
    "<script>window.__pwned = 'live-script'</script>"
)


@pytest.fixture(scope="module")
def hostile_archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Config]:
    from support.pageserver import start_page_server

    directory = tmp_path_factory.mktemp("hostile")
    before = html_page(BEFORE)
    after = html_page(BEFORE + HOSTILE).replace(b"</body>", LIVE_MARKUP.encode() + b"</body>", 1)
    with start_page_server() as server:
        config, outcomes = pipeline_archive(
            directory, server, [before, after], target_id="meta", extra="keep_links = true"
        )
    assert [o.status for o in outcomes] == ["new", "changed"], outcomes
    # a page that really runs a script: proves the detector below sees an injection when there is one
    (config.storage_dir / "site" / "canary.html").write_text(
        "<!DOCTYPE html><title>canary</title><script>window.__pwned = 'canary'</script>"
    )
    yield config


@pytest.fixture(scope="module")
def base_url(hostile_archive: Config) -> Iterator[str]:
    urls: list[str] = []
    stop = threading.Event()
    thread = threading.Thread(
        target=serve,
        args=(hostile_archive,),
        kwargs={"port": 0, "ready": urls.append, "stop": stop},
        daemon=True,
    )
    thread.start()
    for _ in range(400):
        if urls:
            break
        stop.wait(0.05)
    assert urls, "serve did not start"
    yield urls[0]
    stop.set()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


@dataclass(frozen=True)
class Visit:
    status: int | None
    pwned: str | None  # window.__pwned after the load: set only if injected code ran
    dialogs: list[str]
    errors: list[str]  # console errors and uncaught exceptions (a CSP violation is one)
    hrefs: list[str]
    text: str
    url: str
    ins_decoration: str | None  # computed text-decoration of the first <ins>: is the stylesheet applied?


def visit(browser: Any, url: str, *, bypass_csp: bool, shot: str | None = None, width: int = 1100) -> Visit:
    """Load `url` in a fresh context; what ran, what was shown, and a screenshot if asked."""
    context = browser.new_context(bypass_csp=bypass_csp, viewport={"width": width, "height": 900})
    page = context.new_page()
    dialogs: list[str] = []
    errors: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    def on_console(message: Any) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("dialog", on_dialog)
    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(str(error)))
    response = page.goto(url, wait_until="load")
    page.wait_for_timeout(200)  # let any onerror/onload handler that managed to get in fire
    decoration = "n => getComputedStyle(n).textDecorationLine"
    seen = Visit(
        status=response.status if response else None,
        pwned=page.evaluate("() => window.__pwned === undefined ? null : String(window.__pwned)"),
        dialogs=dialogs,
        errors=errors,
        hrefs=page.eval_on_selector_all("a[href]", "nodes => nodes.map(n => n.href)"),
        text=page.inner_text("body"),
        url=page.url,
        ins_decoration=page.eval_on_selector("ins", decoration) if page.query_selector("ins") else None,
    )
    if shot:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / shot), full_page=True)
    context.close()
    return seen


def test_the_detector_sees_a_script_that_runs(browser: Any, base_url: str) -> None:
    seen = visit(browser, base_url + "canary.html", bypass_csp=True)
    assert seen.pwned == "canary"


PAGES = [
    pytest.param("", "xss-index.png", id="index"),
    pytest.param("changes/meta@c1.html", "xss-change.png", id="change-page"),
    pytest.param("versions/meta@v2.html", None, id="version-page"),
    pytest.param("targets/meta.html", None, id="timeline"),
]


@pytest.mark.parametrize(("path", "shot"), PAGES)
@pytest.mark.parametrize("bypass_csp", [False, True], ids=["with-csp", "escaping-alone"])
def test_no_injected_script_runs(
    browser: Any, base_url: str, path: str, shot: str | None, bypass_csp: bool
) -> None:
    seen = visit(browser, base_url + path, bypass_csp=bypass_csp, shot=shot if not bypass_csp else None)
    assert seen.status == 200 and seen.url == base_url + path
    assert seen.pwned is None and seen.dialogs == []
    assert [h for h in seen.hrefs if not h.startswith(("http://", "https://"))] == [], "no javascript: link"
    assert seen.errors == [], "no CSP violation: the stylesheet's hash matches and nothing else loads"
    if shot and not bypass_csp:
        assert (ARTIFACTS / shot).stat().st_size > 1000


def test_the_hostile_text_is_shown_as_text(browser: Any, base_url: str) -> None:
    seen = visit(browser, base_url + "changes/meta@c1.html", bypass_csp=False)
    text = seen.text
    for words in (
        '<script>window.__pwned = "script-tag"',
        "onerror=",
        "(javascript:window.__pwned='markdown-link')",
    ):
        assert words in text, words
    assert "javascript:window.__pwned='live-link'" not in seen.hrefs
    assert seen.ins_decoration == "underline", "the stylesheet applied: inserted words are underlined"


def test_screenshots_of_a_phone_sized_change_page(browser: Any, base_url: str) -> None:
    seen = visit(
        browser, base_url + "changes/meta@c1.html", bypass_csp=False, shot="xss-change-phone.png", width=390
    )
    assert seen.pwned is None and seen.errors == []
    assert (ARTIFACTS / "xss-change-phone.png").stat().st_size > 1000


@pytest.mark.slow
def test_the_readme_screenshots_script_runs(tmp_path: Path) -> None:
    """docs/screenshots.py, which took the README's screenshots, still works (into another folder)."""
    script = Path(__file__).resolve().parent.parent / "docs" / "screenshots.py"
    env = {**os.environ, "POLICY_WATCHDOG_SHOTS": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr
    for name, width in (("change-desktop.png", 1280), ("change-phone.png", 390), ("email.png", 760)):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(data[16:20], "big") == width, name
        assert len(data) > 20_000, f"{name}: a real page, not a blank one"

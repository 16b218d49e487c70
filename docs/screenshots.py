"""Screenshots of what a reader sees, taken from a real run: re-run it after changing the templates.

    .venv/bin/pip install '.[test,browser]' && .venv/bin/python docs/screenshots.py

The May 2025 "AI at Meta" change of Meta's EU privacy policy (two real recorded versions, Open Terms
Archive, attribution in tests/fixtures/replay) is served by the local test page server and checked by the
real pipeline into a fresh archive, with an e-mail channel to a local SMTP server (aiosmtpd) and
`[alerts] archive_url` set; then the site is published. Headless Chromium (the system's, as the browser
fetcher uses it) takes:

    docs/screenshots/change-desktop.png   the change page at 1280 px
    docs/screenshots/change-phone.png     the same page at 390 px (an iPhone's width)
    docs/screenshots/email.png            the HTML e-mail the SMTP server received, at 760 px

($POLICY_WATCHDOG_SHOTS names another folder: tests/test_browser_xss.py runs this script that way.)
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from support.corpus import render_page  # noqa: E402
from support.harness import Site, cycle, open_archive, write_config  # noqa: E402
from support.pageserver import start_page_server  # noqa: E402
from support.replay import corpus_text  # noqa: E402
from support.sinks import running_smtp_server  # noqa: E402
from watchdog.fetchers.browser import LAUNCH_ARGS, find_chromium  # noqa: E402
from watchdog.publish import after_cycle  # noqa: E402

APRIL = "series/facebook-privacy-policy-en/2025-04-23T12-31-08Z.md"
MAY = "series/facebook-privacy-policy-en/2025-05-28T00-30-56Z.md"
OUT = Path(os.environ.get("POLICY_WATCHDOG_SHOTS", ROOT / "docs" / "screenshots"))  # a test writes elsewhere


def run(work: Path) -> tuple[Path, str]:
    """The archive's site folder, the e-mail's HTML."""
    server = start_page_server()
    try:
        with running_smtp_server() as smtp:
            config_path = write_config(
                work,
                server.base_url,
                [Site("meta-privacy-policy", "/policy", 'name = "Meta Privacy Policy"')],
                channels=[smtp.url()],
                head='[alerts]\narchive_url = "https://archive.example.org"\n',
            )
            for seed, version in enumerate((APRIL, MAY)):
                server.set("/policy", render_page(corpus_text(version), seed=seed), etag=False)
                cycle(config_path)
        config, store = open_archive(config_path)
        with store:
            after_cycle(config, store)
    finally:
        server.stop()
    (mail,) = smtp.messages
    part = mail.get_body(preferencelist=("html",))
    assert part is not None
    return config.storage_dir / "site", part.get_content()


def shoot(site: Path, email_html: str, work: Path) -> None:
    from playwright.sync_api import sync_playwright  # the browser extra: only this script needs it

    OUT.mkdir(parents=True, exist_ok=True)
    email_file = work / "email.html"
    email_file.write_text(email_html, encoding="utf-8")
    change = (site / "changes" / "meta-privacy-policy@c1.html").as_uri()
    shots = [
        (change, 1280, 1000, "change-desktop.png"),
        (change, 390, 1400, "change-phone.png"),
        (email_file.as_uri(), 760, 1300, "email.png"),
    ]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=find_chromium() or "/usr/bin/chromium", args=list(LAUNCH_ARGS)
        )
        try:
            for url, width, height, name in shots:
                page = browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=1)
                page.goto(url)
                page.screenshot(path=str(OUT / name))
                page.close()
                print(f"{OUT / name} ({width} px)")
        finally:
            browser.close()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="watchdog-shots-") as folder:
        work = Path(folder)
        site, email_html = run(work)
        shoot(site, email_html, work)


if __name__ == "__main__":
    main()

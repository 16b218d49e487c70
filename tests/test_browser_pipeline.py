"""The browser fetcher inside the real pipeline: the same clean text from a JavaScript-rendered page as the
plain fetcher gets from a server-rendered one; failures rejected with a reason; no browser left behind."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from support import jspages
from support.harness import Site, cycle, open_archive, write_config
from support.pageserver import PageServer, Reply

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed"),
]


def test_browser_and_plain_fetchers_archive_the_same_text(page_server: PageServer, tmp_path: Path) -> None:
    page_server.set("/js", jspages.js_rendered_page(delay_ms=300))
    page_server.set("/ssr", jspages.server_rendered_page())
    sites = [Site("js", "/js", 'fetcher = "browser"\nready = "#policy-ready"'), Site("ssr", "/ssr")]
    config = write_config(tmp_path, page_server.base_url, sites)
    outcomes = {o.target_id: o for o in cycle(config)}
    assert outcomes["js"].status == "new" and outcomes["ssr"].status == "new"
    _config, store = open_archive(config)
    with store:
        assert store.archive.version_text("js@v1") == store.archive.version_text("ssr@v1")
        (snapshot,) = store.archive.snapshots("js")
        assert snapshot.fetcher == "browser", "the snapshot records which fetcher produced it"
    assert jspages.chromium_processes() == [] or all(p.ppid == 1 for p in jspages.chromium_processes())


def test_auto_falls_back_on_a_refusal_and_never_rendered_pages_are_rejected(
    page_server: PageServer, tmp_path: Path
) -> None:
    # the plain client is refused (403 for any client without JavaScript... here: for every client, so the
    # browser gets a 403 too and the capture is rejected for its status, with the fallback recorded)
    page_server.set("/empty-shell", jspages.js_rendered_page(delay_ms=200))
    page_server.set("/never", jspages.never_rendered_page())
    page_server.set("/refused", Reply(status=403, body="<html><body>Forbidden</body></html>"))
    sites = [
        Site("shell", "/empty-shell", 'fetcher = "auto"\nready = "#policy-ready"'),
        Site("never", "/never", 'fetcher = "browser"\nready = "#policy-ready"'),
        Site("refused", "/refused", 'fetcher = "auto"'),
    ]
    config = write_config(tmp_path, page_server.base_url, sites)
    outcomes = {o.target_id: o for o in cycle(config)}
    assert outcomes["shell"].status == "new", outcomes["shell"]
    assert outcomes["never"].status == "rejected" and outcomes["never"].extra["code"] == "not-rendered"
    assert outcomes["refused"].status == "rejected" and "403" in (outcomes["refused"].reason or "")
    assert page_server.hits("/refused") >= 2, "the plain fetch, then the browser"
    _config, store = open_archive(config)
    with store:
        (shell,) = store.archive.snapshots("shell")
        assert shell.fetcher == "browser"

"""Redirects to private, loopback or link-local addresses (issue 11, point 9), against real servers.

Two page servers play two machines: "the site" on 127.0.0.1 and "an internal service" on 127.0.0.2. Every
test server lives on loopback, so a public-looking target is reached through a proxy: the HTTP client
sends `GET http://policy.example/go` to the site's server (which answers absolute-form requests like any
other), and the fetcher's resolver, injected, says policy.example is a public address. Nothing leaves
the machine. Before the rule, the fetcher followed the site's redirect to the internal service and
archived its answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from support.pageserver import PageServer, start_page_server
from watchdog.config import load_config
from watchdog.errors import FetchError
from watchdog.fetchers.browser import BrowserFetcher
from watchdog.fetchers.http import HttpFetcher
from watchdog.fetchers.redirects import RedirectPolicy
from watchdog.models import Capture, FetchSettings, Target

SETTINGS = FetchSettings(user_agent="policy-watchdog-tests/1", timeout=5.0, retries=0)
SECRET = "<html><body><p>internal admin page: the database password is hunter2</p></body></html>"
PUBLIC_DNS = {"policy.example": ["93.184.216.34"], "www.policy.example": ["2606:2800:220:1::1"]}
INTRANET_DNS = {"intranet.example": ["10.1.2.3"], "wiki.corp.example": ["192.168.7.7"]}


def resolver(host: str) -> list[str]:
    return {**PUBLIC_DNS, **INTRANET_DNS}.get(host, [])


@pytest.fixture
def internal() -> Iterator[PageServer]:
    """The internal service, on another loopback address (another machine as far as URLs go)."""
    with start_page_server("127.0.0.2") as server:
        server.set("/secret", SECRET)
        yield server


def via(proxy: str) -> httpx.Client:
    """A client that reaches the public-looking names through `proxy`, everything else directly."""
    transport = httpx.HTTPTransport(proxy=proxy)
    return httpx.Client(mounts={f"http://{name}": transport for name in PUBLIC_DNS})


def fetcher(*, proxy: str | None = None, allow_private: bool = False) -> HttpFetcher:
    client = via(proxy) if proxy else None
    policy = RedirectPolicy(allow_private=allow_private, resolve=resolver)
    return HttpFetcher(settings=SETTINGS, client=client, redirects=policy)


def fetch(made: HttpFetcher, url: str) -> Capture:
    try:
        result = made.fetch(Target("t", url, "t"))
    finally:
        made.close()
    assert isinstance(result, Capture)
    return result


def test_a_public_target_is_not_redirected_to_an_internal_address(
    page_server: PageServer, internal: PageServer
) -> None:
    page_server.redirect("/go", internal.url("/secret"))
    with pytest.raises(FetchError) as caught:
        fetch(fetcher(proxy=page_server.base_url), "http://policy.example/go")
    assert "refused to follow the redirect from http://policy.example/go" in caught.value.reason
    assert "127.0.0.2 is a loopback address" in caught.value.reason
    assert "private_redirects = true" in caught.value.reason
    assert not caught.value.transient, "a refusal is an answer: no retry"
    assert page_server.hits("/go") == 1 and internal.hits("/secret") == 0, "nothing sent to the service"


@pytest.mark.parametrize(
    ("location", "kind"),
    [
        pytest.param("http://169.254.169.254/latest/meta-data/", "link-local", id="cloud-metadata"),
        pytest.param("http://10.0.0.5/admin", "private", id="private-ipv4"),
        pytest.param("http://[::1]:8080/", "loopback", id="loopback-ipv6"),
        pytest.param("http://[::ffff:127.0.0.1]/", "loopback", id="ipv4-mapped-ipv6"),
        pytest.param("http://0.0.0.0:8080/", "unspecified", id="unspecified"),
        pytest.param("http://100.64.0.1/", "non-public", id="shared-address-space"),
        pytest.param("http://intranet.example/", "private", id="name-resolving-to-private"),
    ],
)
def test_every_kind_of_non_public_destination_is_refused(
    page_server: PageServer, location: str, kind: str
) -> None:
    page_server.redirect("/go", location)
    with pytest.raises(FetchError, match=f"is a {kind} address"):
        fetch(fetcher(proxy=page_server.base_url), "http://policy.example/go")


def test_a_public_target_may_be_redirected_to_another_public_name(page_server: PageServer) -> None:
    page_server.redirect("/go", "http://www.policy.example/page")
    page_server.set("/page", "<html><body><p>the policy</p></body></html>")
    capture = fetch(fetcher(proxy=page_server.base_url), "http://policy.example/go")
    assert capture.status == 200 and capture.final_url == "http://www.policy.example/page"


def test_a_target_on_a_local_address_may_be_redirected_to_another(
    page_server: PageServer, internal: PageServer
) -> None:
    """An intranet watcher: the target's own URL is loopback, so its redirects are its business."""
    page_server.redirect("/go", internal.url("/secret"))
    capture = fetch(fetcher(), page_server.url("/go"))
    assert capture.final_url == internal.url("/secret") and b"internal admin page" in capture.body


@pytest.mark.parametrize("switch", [False, True])
def test_the_config_switch_lets_a_public_target_reach_an_internal_address(
    page_server: PageServer, internal: PageServer, tmp_path: Path, switch: bool
) -> None:
    """`[fetch] private_redirects`, read from a real config file, with the system's own resolver (a
    .example name resolves to nothing here, which the rule takes for public)."""
    config = tmp_path / "watchdog.toml"
    config.write_text(f"[fetch]\nprivate_redirects = {str(switch).lower()}\n", encoding="utf-8")
    settings = replace(SETTINGS, private_redirects=load_config(config, environ={}).fetch.private_redirects)
    page_server.redirect("/go", internal.url("/secret"))
    made = HttpFetcher(settings=settings, client=via(page_server.base_url))
    if switch:
        assert fetch(made, "http://policy.example/go").status == 200 and internal.hits("/secret") == 1
    else:
        with pytest.raises(FetchError, match="is a loopback address"):
            fetch(made, "http://policy.example/go")
        assert internal.hits("/secret") == 0


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"Debian's chromium is not at {CHROMIUM}")
def test_the_browser_archives_nothing_from_an_internal_address(
    page_server: PageServer, internal: PageServer
) -> None:
    """Chromium follows redirects itself: the chain is checked before the capture is handed on. The site
    is reached as "localhost", which the injected resolver calls public (Chromium connects to it as
    usual)."""
    page_server.redirect("/go", internal.url("/secret"))
    policy = RedirectPolicy(resolve=lambda host: ["93.184.216.34"] if host == "localhost" else [])
    browser = BrowserFetcher(
        settings=SETTINGS, executable_path=CHROMIUM, render_timeout=2.0, redirects=policy
    )
    site = page_server.base_url.replace("127.0.0.1", "localhost")
    try:
        with pytest.raises(FetchError, match=r"127\.0\.0\.2 is a loopback address"):
            browser.fetch(Target("t", f"{site}/go", "t"))
    finally:
        browser.close()

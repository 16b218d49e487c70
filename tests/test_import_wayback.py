"""`import wayback`: a target's history from a local server speaking the Wayback Machine's protocol (the
CDX API and `id_` raw captures, tests/support/wayback.py) and serving real raw pages of Meta's printable
privacy policy (tests/fixtures/extract and tests/fixtures/pages, Open Terms Archive snapshots: see their
SOURCES.md), through the real command line and the real HTTP fetcher."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from support.harness import Site, cli, cycle, open_archive, write_config
from support.pageserver import PageServer
from support.postgres import Backend
from support.sinks import WebhookSink
from support.wayback import WaybackServer

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ORIGINAL = "https://mbasic.facebook.com/privacy/policy/printable/"
# (Wayback timestamp, raw capture): the policy before and after its December 2025 update (the third has the
# second's text in other markup), then before and after its July 2026 update
CAPTURES = [
    ("20251216113542", "extract/facebook-privacy-policy-printable-html/2025-12-16T11-35-42Z.html.gz"),
    ("20251216233544", "extract/facebook-privacy-policy-printable-html/2025-12-16T23-35-44Z.html.gz"),
    ("20251217113535", "extract/facebook-privacy-policy-printable-html/2025-12-17T11-35-35Z.html.gz"),
    ("20260721223356", "pages/printable-2026-07-21T22-33-56Z.html.gz"),
    ("20260723223438", "pages/printable-2026-07-23T22-34-38Z.html.gz"),
]
LOGIN_WALL = (
    b"<!DOCTYPE html><html><head><title>Facebook</title></head><body><div id='root'>"
    b"<h2>You must log in to continue.</h2><p>Log in to Facebook</p><form><input name='email'>"
    b"<button>Log in</button></form><p>Forgotten account? Create new account</p></div></body></html>"
)


def raw(fixture: str) -> bytes:
    return gzip.decompress((FIXTURES / fixture).read_bytes())


def config_for(
    tmp_path: Path, page_server: PageServer, wayback: WaybackServer, *, channels: str = ""
) -> Path:
    """Target `fb` reads the printable policy as config/watchdog.toml does; its URL is the page server's
    (for live checks), and the Wayback Machine holds captures of it under that URL."""
    head = f'[import]\nwayback_url = "{wayback.url}"\nwayback_pause = "0s"\n{channels}'
    return write_config(
        tmp_path, page_server.base_url, [Site("fb", "/printable/", "remove = ['a[href=\"#\"]']")], head=head
    )


def archive(
    wayback: WaybackServer, page_server: PageServer, captures: list[tuple[str, str]] = CAPTURES
) -> None:
    for timestamp, fixture in captures:
        wayback.add(timestamp, page_server.url("/printable/"), raw(fixture))


def run_import(config: Path, *extra: str) -> tuple[list[dict[str, object]], dict[str, object]]:
    done = cli("--config", str(config), "import", "wayback", "--target", "fb", *extra)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines[-1]["event"] == "done"
    return lines[:-1], lines[-1]


def test_captures_are_imported_like_live_captures_politely_with_raw_snapshots_kept(
    tmp_path: Path,
    page_server: PageServer,
    wayback_server: WaybackServer,
    webhook_sink: WebhookSink,
    each_backend: Backend,
) -> None:
    channel = f'[[channels]]\nurl = "{webhook_sink.url}"\nnotify = "all"\n'
    config = config_for(tmp_path, page_server, wayback_server, channels=channel)
    archive(wayback_server, page_server)
    wayback_server.add("20251216120000", page_server.url("/printable/"), LOGIN_WALL)  # a failed capture
    wayback_server.add("20251216114000", page_server.url("/printable/"), raw(CAPTURES[0][1]))  # same digest
    wayback_server.throttle(1)  # the first capture request answers 429, Retry-After: 1
    progress, result = run_import(config, "--json")

    # collapse=digest: the byte-identical capture is not even listed; the login wall is rejected
    assert [p["outcome"] for p in progress] == [
        "version",
        "rejected",
        "version",
        "collapsed",
        "version",
        "version",
    ]
    assert {k: result[k] for k in ("versions", "rejected", "collapsed", "changes")} == {
        "versions": 4, "rejected": 1, "collapsed": 1, "changes": 3,
    }  # fmt: skip
    # politely: one request at a time, and the throttled capture retried after its Retry-After
    assert wayback_server.peak == 1
    fetches = wayback_server.capture_requests()
    assert len(fetches) == 7 and fetches[0][1] == fetches[1][1] and fetches[1][0] - fetches[0][0] >= 1.0

    _, store = open_archive(config)
    with store:
        versions = list(reversed(store.archive.versions("fb")))
        snapshots = store.archive.snapshots("fb")
        changes = store.archive.changes(target="fb")
        bodies = [store.archive.snapshot_body(s) for s in snapshots]
    assert [v.source for v in versions] == ["wayback"] * 4
    assert [v.first_seen.strftime("%Y%m%d%H%M%S") for v in versions] == [
        "20251216113542", "20251216233544", "20260721223356", "20260723223438",
    ]  # fmt: skip
    assert versions[1].last_seen.strftime("%Y%m%d%H%M%S") == "20251217113535"  # its text, other markup
    assert all(v.provenance and v.provenance["archive"] == wayback_server.url for v in versions)
    # every capture fetched is kept as a raw snapshot, byte for byte, at its Wayback time
    assert [s.fetcher for s in snapshots] == ["wayback"] * 6
    assert [s.outcome for s in snapshots] == [
        "accepted",
        "rejected",
        "accepted",
        "accepted",
        "accepted",
        "accepted",
    ]
    assert snapshots[1].reason_code == "block-page:login-wall"
    assert bodies == [raw(CAPTURES[0][1]), LOGIN_WALL, *(raw(f) for _, f in CAPTURES[1:])]
    assert {c.kind for c in changes} == {"imported"} and not any(c.alerted for c in changes)
    assert webhook_sink.received == []
    assert cli("--config", str(config), "verify").returncode == 0

    # a second import fetches nothing and adds nothing
    wayback_server.requests.clear()
    progress, result = run_import(config, "--json")
    assert progress == [] and result["covered"] == 6
    assert wayback_server.capture_requests() == []


def test_an_imported_capture_gives_the_version_a_live_check_of_the_same_page_gives(
    tmp_path: Path, page_server: PageServer, wayback_server: WaybackServer
) -> None:
    """Extract and validate exactly like a live capture: the same raw pages, checked live one after the
    other, give versions with the same text hashes."""
    config = config_for(tmp_path, page_server, wayback_server)
    archive(wayback_server, page_server)
    run_import(config)
    _, store = open_archive(config)
    with store:
        imported = [v.text_hash for v in reversed(store.archive.versions("fb"))]

    live_dir = tmp_path / "live"
    live_dir.mkdir()
    live = write_config(
        live_dir, page_server.base_url, [Site("fb", "/printable/", "remove = ['a[href=\"#\"]']")]
    )
    for _, fixture in CAPTURES:
        page_server.set("/printable/", raw(fixture))
        cycle(live)
    _, live_store = open_archive(live)
    with live_store:
        checked = [v.text_hash for v in reversed(live_store.archive.versions("fb"))]
    assert imported == checked and len(checked) == 4


def test_from_and_to_bound_the_listing_and_captures_after_the_live_watch_are_left(
    tmp_path: Path, page_server: PageServer, wayback_server: WaybackServer
) -> None:
    config = config_for(tmp_path, page_server, wayback_server)
    archive(wayback_server, page_server)
    page_server.set("/printable/", raw(CAPTURES[3][1]))
    [live] = cycle(config)  # the live watch begins now (the capture times are all before it)
    assert live.status == "new"

    _, result = run_import(config, "--from", "2025-12-16", "--to", "2025-12-16")
    [listing] = [p for _, p in wayback_server.requests if p.startswith("/cdx/")]
    assert "from=20251216" in listing and "to=20251216" in listing
    assert len(wayback_server.capture_requests()) == 2 and result["versions"] == 2
    _, store = open_archive(config)
    with store:
        sources = [v.source for v in reversed(store.archive.versions("fb"))]
        [relink] = store.archive.relinks()
    assert sources == ["wayback", "wayback", "live"] and relink.position == 1
    assert cli("--config", str(config), "verify").returncode == 0


def test_captures_recorded_after_the_live_watch_began_are_not_fetched(
    tmp_path: Path, page_server: PageServer, wayback_server: WaybackServer
) -> None:
    config = config_for(tmp_path, page_server, wayback_server)
    page_server.set("/printable/", raw(CAPTURES[0][1]))
    cycle(config)
    wayback_server.add("20991231000000", page_server.url("/printable/"), raw(CAPTURES[4][1]))
    _, result = run_import(config)
    assert result["after_live"] == 1 and wayback_server.capture_requests() == []


def test_the_cdx_api_down_is_a_clear_error_that_writes_nothing(
    tmp_path: Path, page_server: PageServer
) -> None:
    config = tmp_path / "watchdog.toml"
    config.write_text(
        '[storage]\ndir = "archive"\n[fetch]\nretries = 0\ntimeout = 2\n'
        '[import]\nwayback_url = "http://127.0.0.1:9"\n'
        f'[[targets]]\nid = "fb"\nurl = "{page_server.url("/printable/")}"\n',
        encoding="utf-8",
    )
    done = cli("--config", str(config), "import", "wayback", "--target", "fb")
    assert (
        done.returncode == 1
        and "the CDX API cannot be read" in done.stderr
        and "Traceback" not in done.stderr
    )


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        pytest.param('wayback_url = "ftp://archive.example/"', "not an http(s) URL", id="scheme"),
        pytest.param('wayback_url = "https://archive.example/?x=1"', "without '?' or '#'", id="query"),
        pytest.param('wayback_url = "https://exa mple.org"', "spaces and control characters", id="space"),
        pytest.param('wayback_pause = "2m"', "must be between", id="pause-range"),
        pytest.param('wayback_urls = "https://x.example"', "unknown key", id="typo"),
    ],
)
def test_import_settings_are_validated_with_file_and_key(tmp_path: Path, value: str, problem: str) -> None:
    config = tmp_path / "watchdog.toml"
    config.write_text(f'[import]\n{value}\n[[targets]]\nid = "fb"\nurl = "https://example.org/"\n')
    done = cli("--config", str(config), "config", "check")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    key = value.split(" = ")[0]
    assert f"{config}: import.{key}:" in done.stderr and problem in done.stderr, done.stderr

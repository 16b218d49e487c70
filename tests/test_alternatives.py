"""Selector alternatives: tried in order when `select` yields no text; the first that does wins.

On the real pages (OTA raw snapshots, tests/fixtures/pages/SOURCES.md and tests/fixtures/extract): the
extractor says which alternative read the page, and a check whose plain selectors broke but whose
alternative reads the same text is `unchanged` (no alert, no no-match failure), and one whose alternative
reads another text is a `capture` change, told to the operators only, never a wording change.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from support.harness import cycle, open_archive
from support.pageserver import PageServer, Reply
from support.sinks import WebhookSink
from watchdog.extract import extract
from watchdog.models import SelectorSet

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PRINTABLE = gzip.decompress(
    (FIXTURES / "extract/facebook-privacy-policy-printable-html/2025-12-16T23-35-44Z.html.gz").read_bytes()
)
URL = "https://mbasic.facebook.com/privacy/policy/printable/"


def read(select: list[str], *alternatives: SelectorSet) -> tuple[str, int | None, bool]:
    found = extract(PRINTABLE, content_type="text/html", url=URL, select=select, alternatives=alternatives)
    return found.text, found.alternative, found.matched


def test_plain_select_wins_when_it_reads_text() -> None:
    text, alternative, matched = read(["#root"], SelectorSet(("#viewport",)))
    assert (alternative, matched) == (None, True) and text.startswith("# Privacy Policy")


def test_first_alternative_with_text_wins() -> None:
    plain, _, _ = read(["#root"])
    text, alternative, matched = read(
        ["#policy-v2"],  # matches nothing
        SelectorSet(("#empty-section",)),  # matches nothing either
        SelectorSet(("#root",), ('a[href="#"]',)),
        SelectorSet(("#viewport",)),
    )
    assert (alternative, matched) == (2, True)  # 1-based among the alternatives
    assert text.startswith("# Privacy Policy") and "Return to top" not in text
    assert len(text) > 0.9 * len(plain)


def test_no_alternative_with_text_returns_the_plain_result() -> None:
    text, alternative, matched = read(["#policy-v2"], SelectorSet(("#nothing",)))
    assert (text, alternative, matched) == ("", None, False)


def test_an_alternative_keeps_the_target_readable_through_a_markup_change(
    page_server: PageServer, tmp_path: Path
) -> None:
    config = tmp_path / "watchdog.toml"
    config.write_text(
        '[storage]\ndir = "archive"\n[fetch]\nretries = 0\n'
        f'[[targets]]\nid = "fb"\nurl = "{page_server.base_url}/printable/"\nselect = ["#root"]\n'
        'confirm_delay = "0s"\n[[targets.alternatives]]\nselect = ["#policy-root"]\n'
    )
    page_server.set("/printable/", Reply(body=PRINTABLE), etag=False)
    assert cycle(config)[0].status == "new"
    # Meta renames the container: the plain `select` matches nothing, the alternative reads the same text.
    renamed = PRINTABLE.replace(b'id="root"', b'id="policy-root"', 1)
    assert renamed != PRINTABLE
    page_server.set("/printable/", Reply(body=renamed), etag=False)
    (outcome,) = cycle(config)
    assert (outcome.status, outcome.version, outcome.reason) == ("unchanged", "fb@v1", None)


def test_a_switch_to_another_alternative_is_a_capture_change_told_to_operators_only(
    page_server: PageServer, webhook_sink: WebhookSink, second_webhook_sink: WebhookSink, tmp_path: Path
) -> None:
    readers = json.dumps(webhook_sink.url)  # a channel for opt-out news, with everything (notify = "all")
    operators = json.dumps(second_webhook_sink.url)  # the operators' channel
    config = tmp_path / "watchdog.toml"
    config.write_text(
        '[storage]\ndir = "archive"\n[fetch]\nretries = 0\n'
        f'[[targets]]\nid = "fb"\nurl = "{page_server.base_url}/printable/"\nselect = ["#root"]\n'
        """remove = ['a[href="#"]']\nconfirm_delay = "0s"\nnotify = "all"\n"""
        # the alternative reads the renamed container but keeps the "Return to top" links: another text
        '[[targets.alternatives]]\nselect = ["#policy-root"]\n'
        f'[[channels]]\nurl = {readers}\ntags = ["opt-out"]\nnotify = "all"\n'
        f'[[channels]]\nurl = {operators}\ntags = ["failing"]\n'
    )
    page_server.set("/printable/", Reply(body=PRINTABLE), etag=False)
    assert cycle(config)[0].status == "new"
    renamed = PRINTABLE.replace(b'id="root"', b'id="policy-root"', 1)
    page_server.set("/printable/", Reply(body=renamed), etag=False)
    (outcome,) = cycle(config)
    assert (outcome.status, outcome.change, outcome.topics) == ("changed", "fb@c1", ())
    assert outcome.extra["kind"] == "capture"
    _config, store = open_archive(config)
    with store:
        (change,) = store.archive.changes(target="fb")
        assert (change.kind, change.from_version, change.to_version) == ("capture", "fb@v1", "fb@v2")
        assert "Return to top" in store.archive.version_text("fb@v2")
        (latest, _) = store.archive.latest_snapshots("fb", 2)
        assert latest.alternative == "1"  # which alternative read it, recorded with the snapshot
    assert webhook_sink.received == []  # never announced as a wording change
    (notice,) = second_webhook_sink.received
    assert "capture changed" in notice["title"] and "alternative 1" in notice["title"]
    # the page read the new way is then unchanged
    assert cycle(config)[0].status == "unchanged"

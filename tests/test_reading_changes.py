"""Our reading of a page changes (an upgraded extractor, an edited selector or `remove` list, a new watched
link): the page's own wording did not, so nobody is told it did.

The pipeline compares like with like: when a new text appears, the current version's own raw page is read
again with today's code and settings. Reading it the same way as the new capture means only the reading
changed (a technical version, no change record, no alert); reading it differently from the stored text while
the page also changed means a technical version first, then a change holding the page's edits only.
Real corpus versions over loopback, the real archive, a real webhook receiver.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import watchdog.pipeline
from support.corpus import render_page
from support.harness import Site, cycle, open_archive, write_config
from support.pageserver import PageServer
from support.replay import corpus_text
from support.sinks import WebhookSink
from watchdog.config import load_config
from watchdog.fastread import PageReading
from watchdog.models import Capture, Target
from watchdog.readings import readings_dir

APRIL = "series/facebook-privacy-policy-en/2025-04-23T12-31-08Z.md"
MAY = "series/facebook-privacy-policy-en/2025-05-28T00-30-56Z.md"
# The edited reading: list items left out. The policy's lists hold no heading, so the new reading is a
# strict subset of the old one; the April -> May change still shows in the paragraphs it rewrote.
NO_LISTS = 'remove = ["ul", "ol"]'


def _configs(tmp_path: Path, base_url: str, channel: str) -> tuple[Path, Path]:
    """The same archive under two readings of one target: as first configured, and with `remove` edited."""
    before = write_config(tmp_path, base_url, [Site("fb", "/policy")], channels=[channel])
    edited = tmp_path / "edited.toml"
    edited.write_text(
        before.read_text(encoding="utf-8").replace('select = ["#root"]', f'select = ["#root"]\n{NO_LISTS}'),
        encoding="utf-8",
    )
    assert NO_LISTS in edited.read_text(encoding="utf-8")
    return before, edited


def test_an_edited_reading_of_an_unchanged_page_is_a_technical_version(
    page_server: PageServer, webhook_sink: WebhookSink, tmp_path: Path
) -> None:
    before, edited = _configs(tmp_path, page_server.base_url, webhook_sink.url)
    page_server.set("/policy", render_page(corpus_text(APRIL), seed=1), etag=False)
    assert cycle(before)[0].status == "new"

    page_server.set("/policy", render_page(corpus_text(APRIL), seed=2), etag=False)  # same words, new noise
    (outcome,) = cycle(edited)
    assert (outcome.status, outcome.version, outcome.change, outcome.alerted) == (
        "unchanged",
        "fb@v2",
        None,
        False,
    )
    assert outcome.extra.get("technical") is True
    _config, store = open_archive(edited)
    with store:
        v1, v2 = store.archive.version("fb@v1"), store.archive.version("fb@v2")
        assert (v1.technical, v2.technical) == (False, True)
        assert v2.length < v1.length, "the list items are no longer read"
        assert store.archive.changes(target="fb") == [], "no change record: the page did not change"
    assert webhook_sink.received == [], "nobody is told about our own reading"

    page_server.set("/policy", render_page(corpus_text(APRIL), seed=3), etag=False)
    (again,) = cycle(edited)
    assert (again.status, again.version) == ("unchanged", "fb@v2"), "later checks compare like with like"


def test_an_edited_reading_and_a_real_change_alert_the_page_edits_only(
    page_server: PageServer, webhook_sink: WebhookSink, tmp_path: Path
) -> None:
    before, edited = _configs(tmp_path, page_server.base_url, webhook_sink.url)
    page_server.set("/policy", render_page(corpus_text(APRIL), seed=1), etag=False)
    assert cycle(before)[0].status == "new"
    _config, store = open_archive(before)
    with store:
        old_reading = store.archive.version_text("fb@v1")

    page_server.set("/policy", render_page(corpus_text(MAY), seed=2), etag=False)  # the "AI at Meta" update
    (outcome,) = cycle(edited)
    assert (outcome.status, outcome.version, outcome.change) == ("changed", "fb@v3", "fb@c1")
    assert "ai-training" in outcome.topics
    _config, store = open_archive(edited)
    with store:
        technical = store.archive.version("fb@v2")
        assert technical.technical and technical.first_seen < store.archive.version("fb@v3").first_seen
        (change,) = store.archive.changes(target="fb")
        assert (change.from_version, change.to_version, change.kind) == ("fb@v2", "fb@v3", "change")
        reread = store.archive.version_text("fb@v2")
    assert reread != old_reading and len(reread) < len(old_reading)
    # Lines only the old reading had (the list items) are in neither text the change compares: the alert
    # cannot show them as deleted.
    list_only = [line for line in old_reading.splitlines() if line.startswith("- ") and line not in reread]
    assert list_only, "the edited reading leaves list items out"
    (alert,) = webhook_sink.received
    assert not any(line[2:] in alert["message"] for line in list_only if len(line) > 40)


def _reread_bodies(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Bodies the pipeline reads, in order (the fast reader's entry point)."""
    bodies: list[bytes] = []
    original = watchdog.pipeline.capture_reading

    def spy(target: Target, capture: Capture) -> PageReading:
        bodies.append(capture.body)
        return original(target, capture)

    monkeypatch.setattr(watchdog.pipeline, "capture_reading", spy)
    return bodies


@pytest.mark.parametrize("cache_kept", [True, False])
def test_a_new_text_reads_the_current_raw_page_again_only_when_its_reading_is_not_known(
    page_server: PageServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cache_kept: bool
) -> None:
    """The reading cache names the body each entry was read from: with today's code and settings, the
    current version's raw page is known to read as the current text, and is not read again (a changed
    page costs one reading, not two). Without that knowledge (no cache, another release, other settings)
    it is read again. The change recorded is the same either way."""
    config_path = write_config(tmp_path, page_server.base_url, [Site("fb", "/policy")])
    april, may = render_page(corpus_text(APRIL), seed=1), render_page(corpus_text(MAY), seed=2)
    page_server.set("/policy", april, etag=False)
    assert cycle(config_path)[0].status == "new"
    if not cache_kept:
        shutil.rmtree(readings_dir(load_config(config_path, environ={}).storage_dir))

    bodies = _reread_bodies(monkeypatch)
    page_server.set("/policy", may, etag=False)
    (outcome,) = cycle(config_path)
    assert (outcome.status, outcome.change) == ("changed", "fb@c1")
    assert "ai-training" in outcome.topics
    assert bodies.count(april) == (0 if cache_kept else 1)
    assert bodies.count(may) == 1
    _config, store = open_archive(config_path)
    with store:
        (change,) = store.archive.changes(target="fb")
        assert (change.from_version, change.to_version) == ("fb@v1", "fb@v2")

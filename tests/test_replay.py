"""Replay of real corpus series: each consecutive recorded version served in turn, one check cycle after each.

The expectations below were written from the texts themselves (see the notes on each row: what changed in
the wording between two recordings), not from what the code produced. Alerts go to a real local webhook
through apprise's json:// channel; the sink records every delivery.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from support.corpus import render_page
from support.harness import Site, cycle, open_archive, write_config
from support.pageserver import PageServer
from support.replay import corpus_text, series
from support.sinks import WebhookSink


@dataclass(frozen=True)
class Expect:
    status: str
    alerted: bool | None = False  # None: the text cannot tell whether this should alert; either is accepted
    topics: frozenset[str] = frozenset()  # at least these topics
    not_topics: frozenset[str] = frozenset()  # none of these
    quote: str | None = None  # a sentence the alert must quote
    kind: str | None = None  # "revert": recorded as a return to an earlier version
    why: str = ""


NEW, SAME = Expect("new", why="baseline"), Expect("unchanged")
NOISE = Expect("unchanged", why="only link targets / signed video URLs (oh/oe) / entry_point changed")

FACEBOOK = [
    NEW,
    Expect("changed", why="OTA re-extraction: 'Play Video' link texts vanish; no wording about any topic"),
    Expect(
        "changed",
        alerted=True,
        topics=frozenset({"ai-training", "legal-basis", "public-data"}),
        quote="Develop and improve artificial intelligence technology (also called AI at Meta)",
        why="May 27, 2025: legitimate-interest rows for AI at Meta, public content of people 18+",
    ),
    Expect(
        "changed",
        alerted=True,
        topics=frozenset({"legal-basis"}),
        why="June 16, 2025 policy: the legitimate-interest table is restructured",
    ),
    Expect(
        "changed",
        alerted=None,
        why="863 lines appear (whole sections, AI wording among them): from the text alone one cannot "
        "tell a Meta edit from a fuller capture, so an alert is acceptable either way",
    ),
    NOISE,
    NOISE,
    NOISE,
    Expect("unchanged", why="signed video URLs rotate; a WhatsApp link loses its target, same words"),
    Expect("changed", why="OTA re-extraction: 'Play Video' link texts vanish again"),
    NOISE,
    Expect(
        "changed",
        not_topics=frozenset({"ai-training", "eu-pause", "opt-out", "public-data", "legal-basis"}),
        why="face-analysis wording ('profile photo' -> 'account photos'): none of the watched topics",
    ),
    Expect("unchanged", why="OTA engine upgrade: list-marker spacing only"),
    NOISE,
    NOISE,
]

INSTAGRAM = [
    NEW,
    SAME,
    Expect(
        "changed",
        alerted=True,
        topics=frozenset({"ai-training", "public-data", "eu-pause"}),
        quote="we're still delaying our plans to use your information",
        why="April 2025 banner: 'still delaying' becomes 'we'll use public information ... to improve AI'",
    ),
    SAME,
    Expect(
        "changed",
        not_topics=frozenset({"ai-training", "eu-pause", "opt-out", "legal-basis"}),
        why="the banner drops 'Policy update We updated our Privacy Policy on April 7, 2025'",
    ),
    Expect("rejected", why="29-byte capture: only the heading rendered"),
    Expect("unchanged", why="the full page again: same text as the last accepted version"),
    Expect("rejected"),
    Expect("unchanged"),
    Expect("rejected"),
    Expect("unchanged"),
    Expect(
        "changed",
        alerted=True,
        topics=frozenset({"legal-basis"}),
        why="May 27, 2025 banner: legitimate interests becomes the basis for improving Meta Products",
    ),
    Expect("rejected"),
    Expect("unchanged"),
    Expect("rejected"),
]

REVERT = Expect("changed", kind="revert", why="the page blinks back to the other French text (A -> B -> A)")
FRENCH = [
    NEW,
    Expect(
        "changed",
        alerted=True,
        topics=frozenset({"ai-training"}),
        why="December 16, 2025 update: AI at Meta becomes a listed Product, sharing with AI partners",
    ),
    Expect(
        "changed",
        not_topics=frozenset({"ai-training", "eu-pause", "opt-out", "legal-basis", "public-data"}),
        why="the 'we updated our policy on 16 December 2025' banner goes away",
    ),
    Expect(
        "changed",
        not_topics=frozenset({"ai-training", "eu-pause", "opt-out", "legal-basis", "public-data"}),
        why="'Par exemple' -> 'Ceci inclut', 'montrons' -> 'affichons' the ads: no watched topic",
    ),
    Expect("changed", alerted=None, why="the page starts to blink: a second, twice as long French text"),
    *[REVERT] * 11,
    Expect(
        "changed",
        alerted=True,
        topics=frozenset({"ai-training"}),
        why="July 23, 2026 update (agentic AI): a real change, shorter than the long blink text",
    ),
]

CASES = [
    pytest.param("facebook-privacy-policy-en", FACEBOOK, id="facebook-privacy-policy-en-2025"),
    pytest.param("instagram-privacy-policy-en", INSTAGRAM, id="instagram-privacy-policy-en-2025"),
    pytest.param("facebook-privacy-policy-fr", FRENCH, id="facebook-privacy-policy-fr-2025-2026-blink"),
]


@pytest.mark.parametrize(("name", "expectations"), CASES)
def test_replay_series(
    page_server: PageServer, webhook_sink: WebhookSink, tmp_path: Path, name: str, expectations: list[Expect]
) -> None:
    files = series(name)
    assert len(files) == len(expectations)
    config = write_config(tmp_path, page_server.base_url, [Site("doc", "/doc")], channels=[webhook_sink.url])
    alerted_changes = []
    for step, (relative, expected) in enumerate(zip(files, expectations, strict=True)):
        page_server.set("/doc", render_page(corpus_text(relative), seed=step), etag=False)
        before = len(webhook_sink.received)
        (outcome,) = cycle(config)
        label = f"step {step} {relative}: {expected.why}"
        assert outcome.status == expected.status, (label, outcome)
        assert expected.alerted is None or outcome.alerted == expected.alerted, (label, outcome)
        assert expected.topics <= set(outcome.topics), (label, outcome.topics)
        assert not expected.not_topics & set(outcome.topics), (label, outcome.topics)
        assert outcome.extra.get("kind") == expected.kind, (label, outcome)
        received = webhook_sink.received[before:]
        assert len(received) == int(outcome.alerted), (label, received)
        if expected.quote:
            assert expected.quote in received[0]["message"], label
        if outcome.alerted:
            alerted_changes.append(outcome.change)
    _config, store = open_archive(config)
    with store:
        recorded = {c.id for c in store.archive.changes() if c.alerted}
    assert recorded == set(alerted_changes), "the archive knows exactly which changes alerted"

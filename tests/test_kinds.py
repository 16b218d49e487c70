"""Change kinds on real corpus pairs (watchdog/kinds.py): a wording change, an editorial copy, content a
capture had missed coming back (restored: `capture`), and the correction line. Expected kinds were decided
by reading the texts (see tests/fixtures/replay/expectations.toml for the justification of each)."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pytest

from support.corpus import corpus_markdown, render_page
from support.harness import cycle
from support.pageserver import PageServer
from support.sinks import WebhookSink
from watchdog.classify import CompiledTopics, classify, compile_topics
from watchdog.diff import diff_texts
from watchdog.extract import extract
from watchdog.kinds import change_kind, correction_text, restored_share, same_meaning
from watchdog.models import Topic

ROOT = Path(__file__).resolve().parent.parent


@cache
def topics() -> CompiledTopics:
    data = tomllib.loads((ROOT / "config" / "topics.toml").read_text(encoding="utf-8"))
    return compile_topics(
        [Topic(t["id"], t["title"], t["severity"], tuple(t["patterns"])) for t in data["topics"]]
    )


@cache
def text(relative: str) -> str:
    body = render_page(corpus_markdown(relative), seed=11)
    return extract(body, content_type="text/html", url="https://www.facebook.com/", select=("#root",)).text


EN = "series/facebook-privacy-policy-en"
US = "milestones/meta-privacy-policy-en-us"
GENAI = "milestones/meta-genai-privacy-center-en-us"
CASES = [
    # (id, earlier versions, old, new, kind)
    (
        "ai-at-meta-rows-are-a-change",
        [],
        f"{EN}/2025-04-23T12-31-08Z.md",
        f"{EN}/2025-05-28T00-30-56Z.md",
        "change",
    ),
    ("locale-copy-is-editorial", [], f"{GENAI}/2025-10-03.md", f"{GENAI}/2025-12-28.md", "editorial"),
    (
        "annotations-captured-again-are-a-capture",
        [f"{EN}/2025-05-28T00-30-56Z.md"],
        f"{EN}/2025-06-16T12-31-49Z.md",
        f"{EN}/2025-07-16T00-31-01Z.md",
        "capture",
    ),
    (
        "same-insertion-never-seen-before-is-a-change",
        [],
        f"{EN}/2025-06-16T12-31-49Z.md",
        f"{EN}/2025-07-16T00-31-01Z.md",
        "change",
    ),
    (
        "collapsed-list-back-is-a-capture",
        [f"{US}/2025-09-28.md"],
        f"{US}/2025-12-28.md",
        f"{US}/2026-05-01T0053Z.md",
        "capture",
    ),
    (
        "rewritten-opt-out-wording-is-a-change-though-seen-parts",
        [f"{US}/2025-12-28.md", f"{US}/2025-09-28.md"],
        f"{US}/2026-05-01T0053Z.md",
        f"{US}/2026-05-01T1253Z.md",
        "change",
    ),
]


@pytest.mark.parametrize(("earlier", "old", "new", "kind"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_kind_of_real_changes(earlier: list[str], old: str, new: str, kind: str) -> None:
    diff = diff_texts(text(old), text(new))
    classification = classify(diff, topics())
    found = change_kind(
        diff, classification, shape_problem=None, earlier_texts=lambda: [text(e) for e in earlier]
    )
    assert found == kind


def test_a_text_accepted_after_persistent_rejections_is_a_capture() -> None:
    diff = diff_texts(text(f"{EN}/2025-04-23T12-31-08Z.md"), text(f"{EN}/2025-05-28T00-30-56Z.md"))
    found = change_kind(
        diff, classify(diff, topics()), shape_problem="3 shrunk rejections", earlier_texts=list
    )
    assert found == "capture"


def test_same_meaning_of_whole_versions() -> None:
    """A locale copy says what its original says (the categories of its edits); the two regional variants
    of the US policy do not (one rewords the ad opt-out instructions); a text is the same as itself."""
    copy = diff_texts(text(f"{GENAI}/2025-10-03.md"), text(f"{GENAI}/2025-12-28.md"))
    assert same_meaning(copy) is not None and "spelling" in str(same_meaning(copy))
    variants = diff_texts(text(f"{US}/2026-05-01T0053Z.md"), text(f"{US}/2026-05-01T1253Z.md"))
    assert same_meaning(variants) is None
    same = text(f"{US}/2026-05-01T1253Z.md")
    assert same_meaning(diff_texts(same, same)) == "whitespace"


def test_restored_share_counts_only_added_prose() -> None:
    old, new = text(f"{EN}/2025-06-16T12-31-49Z.md"), text(f"{EN}/2025-07-16T00-31-01Z.md")
    diff = diff_texts(old, new)
    assert restored_share(diff, [text(f"{EN}/2025-05-28T00-30-56Z.md")]) > 0.8
    assert restored_share(diff, []) == 0.0


def test_correction_text() -> None:
    line = correction_text(
        target_name="Meta Privacy Policy",
        back_to="meta-privacy-policy@v3",
        announced_at=datetime(2026, 5, 1, 14, 5, tzinfo=UTC),
        now=datetime(2026, 5, 1, 20, 5, tzinfo=UTC),
    )
    assert line == (
        "Meta Privacy Policy: withdrawn: the page is back to meta-privacy-policy@v3; the change announced at "
        "2026-05-01 14:05 UTC lasted 6 hours"
    )


# --------------------------------------------------------------------------- through the pipeline

APRIL, MAY = f"{EN}/2025-04-23T12-31-08Z.md", f"{EN}/2025-05-28T00-30-56Z.md"  # May: AI at Meta rows


def kinds_config(tmp_path: Path, url: str, channels: list[tuple[str, list[str], str]]) -> Path:
    lines = ["[storage]", 'dir = "archive"', "[fetch]", "retries = 0", "backoff = 0", ""]
    lines += ["[[targets]]", 'id = "fb"', 'name = "Meta"', f'url = "{url}"', 'select = ["#root"]']
    lines += ['confirm_delay = "0s"', ""]
    for channel_url, tags, notify in channels:
        lines += ["[[channels]]", f"url = {json.dumps(channel_url)}", f"tags = {json.dumps(tags)}"]
        lines += [f'notify = "{notify}"', ""]
    path = tmp_path / "watchdog.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_a_withdrawn_change_is_corrected_once_to_the_channels_that_got_it(
    page_server: PageServer, webhook_sink: WebhookSink, second_webhook_sink: WebhookSink, tmp_path: Path
) -> None:
    """May's AI wording goes to the ai-training channel (not to the opt-out one); the page goes back to
    April within hours: one correction, to that channel only; it comes back and goes again: nothing more.
    The channel is down when the correction is due: it gets it on the next check (nothing lost)."""
    config = kinds_config(
        tmp_path,
        page_server.url("/p"),
        [(webhook_sink.url, ["ai-training"], "topics"), (second_webhook_sink.url, ["opt-out"], "topics")],
    )
    steps = [APRIL, MAY, APRIL, MAY, APRIL]
    outcomes = []
    for number, relative in enumerate(steps):
        page_server.set("/p", render_page(corpus_markdown(relative), seed=number), etag=False)
        if number == 2:
            webhook_sink.down()
        outcomes.append(cycle(config)[0])
        if number == 2:
            assert webhook_sink.received[1:] == []  # owed, not lost
            webhook_sink.up()
    kinds = [o.extra.get("kind") for o in outcomes]
    assert kinds == [None, "change", "revert", "revert", "revert"]
    assert outcomes[2].extra.get("correction") is True
    assert [o.extra.get("correction") for o in outcomes[3:]] == [None, None]
    titles = [m["title"] for m in webhook_sink.received]
    assert len(titles) == 2 and titles[0].endswith("· ai-training, legal-basis, public-data"), titles
    assert "correction" in titles[1] and "fb@c1" in titles[1]
    assert "withdrawn: the page is back to fb@v1" in webhook_sink.received[1]["message"]
    assert second_webhook_sink.received == []  # never got the change: no correction either


def test_editorial_and_capture_changes_reach_only_their_channels(
    page_server: PageServer, webhook_sink: WebhookSink, second_webhook_sink: WebhookSink, tmp_path: Path
) -> None:
    """A locale copy (editorial) goes to a notify = "all" channel only; content captured again (capture) to
    the operators' channel only; the readers' untagged channel gets neither."""
    readers, everything = webhook_sink, second_webhook_sink
    config = kinds_config(
        tmp_path, page_server.url("/p"), [(readers.url, [], "topics"), (everything.url, [], "all")]
    )
    for number, relative in enumerate([f"{GENAI}/2025-10-03.md", f"{GENAI}/2025-12-28.md"]):
        page_server.set("/p", render_page(corpus_markdown(relative), seed=number), etag=False)
        (outcome,) = cycle(config)
    assert outcome.extra.get("kind") == "editorial" and outcome.topics == ()
    assert readers.received == []
    assert len(everything.received) == 1

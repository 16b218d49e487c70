"""A page that flips between variants for weeks (watchdog/kinds.py: "Recently seen", "Flapping").

The real captures of the US privacy policy on 2026-05-01 at 00:53 and 12:53 UTC are the two variants of a
page that SOURCES.md says flipped twice daily for weeks (a regional / A-B variant): one with, one without
the 'Privacy notice for United States residents' section, the second also rewording the ad opt-out
instructions. They are served alternately by the real local page server, freshly rendered with page noise
on every request, twelve hours apart on the check's clock, and real webhook receivers record what a reader
(untagged, `notify = "topics"`) and the operators (tagged `failing`) get.

What a demanding journalist expects: the first appearance of a variant is announced once (from the text
alone it is new opt-out wording: the replay's one known false alert); its withdrawal is corrected once;
every further flip between texts seen within the revert window is archived as a revert and announced to
nobody (the operators get one note that the page flips); and a genuinely new text afterwards is announced
at once, with its topics.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from support.corpus import corpus_markdown, render_page
from support.pageserver import PageServer
from support.sinks import WebhookSink
from watchdog import cli
from watchdog.config import load_config
from watchdog.models import Outcome
from watchdog.pipeline import Context, Fetchers, run_cycle
from watchdog.storage import open_store

US = "milestones/meta-privacy-policy-en-us"
SEPT, DEC, WITH_NOTICE, VARIANT, JULY = (
    f"{US}/2025-09-28.md",
    f"{US}/2025-12-28.md",
    f"{US}/2026-05-01T0053Z.md",
    f"{US}/2026-05-01T1253Z.md",
    f"{US}/2026-07-24.md",
)
Edit = Callable[[str], str]
FLIP = timedelta(hours=12)  # "flips twice daily"
START = datetime(2026, 5, 1, 0, 53, tzinfo=UTC)


def flap_config(tmp_path: Path, url: str, readers: WebhookSink, operators: WebhookSink) -> Path:
    path = tmp_path / "watchdog.toml"
    path.write_text(
        "\n".join(
            [
                "[storage]",
                'dir = "archive"',
                "[fetch]",
                "retries = 0",
                "backoff = 0",
                "[[targets]]",
                'id = "us"',
                'name = "Meta US"',
                f'url = "{url}"',
                'select = ["#root"]',
                'confirm_delay = "0s"',
                "[[channels]]",
                f'url = "{readers.url}"',
                "[[channels]]",
                f'url = "{operators.url}"',
                'tags = ["failing"]',
            ]
        ),
        encoding="utf-8",
    )
    return path


def check_at(config_path: Path, moment: datetime) -> Outcome:
    """One real check cycle (fetch over loopback, SQLite on disk, outbox, delivery) with the clock at
    `moment` (the capture time too)."""
    config = load_config(config_path, environ={})

    def clock() -> datetime:
        return moment

    with open_store(config) as store:
        fetchers = Fetchers(config, clock=clock, sleep=lambda _s: None)
        try:
            (outcome,) = run_cycle(config.targets, Context(config, store, fetchers, clock=clock))
        finally:
            fetchers.close()
    return outcome


def serve(page_server: PageServer, markdown: str, seed: int) -> None:
    """The version, rendered afresh with page noise for each request of the check."""
    page_server.set("/us", *(render_page(markdown, seed=100 * seed + k) for k in range(2)), etag=False)


def play(page_server: PageServer, config: Path, steps: list[str | tuple[str, Edit]]) -> list[Outcome]:
    """Serve each version in turn (a version and an edit: the version's text so edited), one check each,
    twelve hours apart."""
    outcomes = []
    for number, step in enumerate(steps):
        relative, edit = step if isinstance(step, tuple) else (step, None)
        markdown = corpus_markdown(relative)
        serve(page_server, edit(markdown) if edit else markdown, number)
        outcomes.append(check_at(config, START + number * FLIP))
    return outcomes


def json_lines(config: Path, *command: str) -> list[dict[str, Any]]:
    """`policy-watchdog --config <file> <command> --json`, in process, oldest first."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["--config", str(config), *command, "--json"]) == 0
    return [json.loads(line) for line in reversed(out.getvalue().splitlines())]


def changes(config: Path) -> list[dict[str, Any]]:
    return json_lines(config, "changes")


def titles(sink: WebhookSink) -> list[str]:
    return [str(m.get("title", "")) for m in sink.received]


def test_a_page_flipping_for_days_is_announced_once_corrected_once_then_quiet(
    page_server: PageServer, webhook_sink: WebhookSink, second_webhook_sink: WebhookSink, tmp_path: Path
) -> None:
    readers, operators = webhook_sink, second_webhook_sink
    config = flap_config(tmp_path, page_server.url("/us"), readers, operators)
    flips = [VARIANT, WITH_NOTICE] * 6  # six days of flipping
    outcomes = play(page_server, config, [SEPT, DEC, WITH_NOTICE, VARIANT, WITH_NOTICE, *flips, JULY])

    kinds = [o.extra.get("kind") for o in outcomes]
    assert kinds == [None, "change", "capture", "change", "revert", *["revert"] * len(flips), "change"]
    versions = [o.version for o in outcomes]
    assert versions[2:5] == ["us@v3", "us@v4", "us@v3"]
    assert versions[5:-1] == ["us@v4", "us@v3"] * 6  # no new version for a flip
    assert versions[-1] == "us@v5"
    # the first return withdraws the variant's announcement; from the second one on, the page flips
    assert [o.extra.get("correction") for o in outcomes[4:-1]] == [True] + [None] * len(flips)
    assert [o.extra.get("flapping") for o in outcomes[4:-1]] == [None] + [True] * len(flips)

    received = titles(readers)
    assert len(received) == 4, received
    assert received[0].startswith("[Meta US] ") and "correction" not in received[0]  # December's policy
    assert received[1].startswith("[Meta US] ") and "opt-out" in received[1].rsplit(" · ", 1)[1]
    assert "correction: the change announced as us@c3 was withdrawn" in received[2]
    assert "withdrawn: the page is back to us@v3" in readers.received[2]["message"]
    assert "lasted 12 hours" in readers.received[2]["message"]
    july = sorted(received[3].rsplit(" · ", 1)[1].split(", "))
    assert july == ["ai-training", "legal-basis", "opt-out", "public-data"], received[3]
    assert outcomes[-1].alerted and sorted(outcomes[-1].topics) == july

    notes = titles(operators)
    assert len(notes) == 2, notes
    assert "capture problem" in notes[0]  # the list a capture had missed came back (us@c2)
    assert notes[1] == "[Meta US] the page flips between us@v3 and us@v4: flips not announced"
    note = operators.received[1]["message"]
    assert "us@v3" in note and "us@v4" in note and "within 30 days" in note

    recorded = changes(config)
    assert [c["kind"] for c in recorded] == [k for k in kinds if k is not None]
    # alerted: December's and the variant's wording, the capture notice (operators), July's wording
    assert [c["alerted"] for c in recorded] == [True, True, True, *[False] * (1 + len(flips)), True]
    assert all(c["topics"] == [] for c in recorded if c["kind"] == "revert")


def en_gb(markdown: str) -> str:
    """The British-English copy of a US text, as Meta serves for other English locales: "licence", "like"
    for "such as", day-first dates, straight apostrophes (normalise.py: none of it changes the meaning)."""
    markdown = re.sub(r"\blicense\b", "licence", markdown).replace("such as", "like")
    return markdown.replace("\u2019", "'").replace("December 16, 2025", "16 December 2025")


def test_a_variant_coming_back_written_differently_is_a_return_not_news(
    page_server: PageServer, webhook_sink: WebhookSink, second_webhook_sink: WebhookSink, tmp_path: Path
) -> None:
    """The variant comes back as a locale copy of itself: a new text, but one that says what a recently
    seen version says. It is archived (its exact text is a version) as a revert to that version, never
    announced; diffed against the page it replaces it would have been the same opt-out rewording again."""
    readers, operators = webhook_sink, second_webhook_sink
    config = flap_config(tmp_path, page_server.url("/us"), readers, operators)
    british = (VARIANT, en_gb)
    outcomes = play(page_server, config, [WITH_NOTICE, VARIANT, WITH_NOTICE, british, WITH_NOTICE, british])

    assert [o.extra.get("kind") for o in outcomes] == [None, "change", *["revert"] * 4]
    assert [o.version for o in outcomes] == ["us@v1", "us@v2", "us@v1", "us@v3", "us@v1", "us@v3"]
    received = titles(readers)
    assert len(received) == 2 and "correction" in received[1], received  # the variant, its withdrawal
    assert titles(operators) == ["[Meta US] the page flips between us@v1 and us@v2: flips not announced"]

    back = changes(config)[2]  # us@c3
    assert back["kind"] == "revert" and back["to_version"] == "us@v3" and not back["alerted"]
    assert back["summary"].startswith("reverted to us@v2 in meaning (only edits that keep it: ")
    assert "date format" in back["summary"] and "spelling" in back["summary"]
    returns = {
        row["id"]: [r["change"] for r in row["returns"]] for row in json_lines(config, "history", "us")
    }
    assert returns == {"us@v1": ["us@c2", "us@c4"], "us@v2": ["us@c3"], "us@v3": ["us@c5"]}

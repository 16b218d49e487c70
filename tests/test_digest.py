"""Digest channels (`[[channels]] digest = "daily" | "weekly"`): one brief per period, grouped by target and
topic, through the same outbox (nothing lost, nothing twice), nothing sent for a period without changes.
Real receivers (a local webhook, aiosmtpd), the outbox of a real SQLite archive end to end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from support.corpus import render_page
from support.harness import Site, cli, write_config
from support.messages import ARCHIVE, alert_of, change_message, status_alert_of
from support.pageserver import PageServer
from support.replay import corpus_text
from support.sinks import ListOutbox, SmtpSink, WebhookSink
from watchdog.config import load_config
from watchdog.digest import period_of
from watchdog.models import Channel, StatusMessage
from watchdog.notify import Notifier, channel_health, channel_key, deliver_pending, redact
from watchdog.pipeline import Context, Fetchers, run_cycle
from watchdog.storage import open_store

pytest_plugins = ["support.sinks"]

DAY = datetime(2025, 5, 27, 9, 0, tzinfo=UTC)  # a Tuesday


def digest_channel(url: str, period: str = "daily") -> Channel:
    return Channel(channel_key(url), url, redact(url), digest=period)  # type: ignore[arg-type]


def owed(n: int, target: str, sentence: str) -> tuple[str, object]:
    message = change_message(
        "# Policy\n\n## Legal basis\n\nWe rely on consent.\n",
        f"# Policy\n\n## Legal basis\n\nWe rely on consent.\n\n{sentence}\n",
        event_id=f"{target}@c{n}",
        name=target.replace("-", " ").title(),
    )
    return message.event_id, alert_of(message)


def no_sleep(seconds: float) -> None:
    raise AssertionError(f"unexpected retry sleep {seconds}")


@pytest.mark.parametrize(
    ("moment", "period", "start", "end"),
    [
        pytest.param(DAY, "daily", "2025-05-27T00:00", "2025-05-28T00:00", id="daily"),
        pytest.param(
            DAY.replace(hour=23, minute=59), "daily", "2025-05-27T00:00", "2025-05-28T00:00", id="late"
        ),
        pytest.param(DAY, "weekly", "2025-05-26T00:00", "2025-06-02T00:00", id="weekly-from-monday"),
        pytest.param(
            datetime(2025, 6, 1, 23, tzinfo=UTC),
            "weekly",
            "2025-05-26T00:00",
            "2025-06-02T00:00",
            id="sunday",
        ),
    ],
)
def test_periods_are_calendar_days_or_weeks_in_utc(
    moment: datetime, period: str, start: str, end: str
) -> None:
    assert [p.strftime("%Y-%m-%dT%H:%M") for p in period_of(moment, period)] == [start, end]


def test_one_daily_brief_grouped_by_target_and_topic_once_and_only_when_due(
    webhook_sink: WebhookSink, list_outbox: ListOutbox
) -> None:
    channel = digest_channel(webhook_sink.url)
    notifier = Notifier([channel], sleep=no_sleep)
    changes = [
        owed(1, "meta-privacy-policy", "We train AI models on public posts."),
        owed(2, "meta-privacy-policy", "You can object to it."),
        owed(1, "instagram-policy", "We use public content to train AI."),
    ]
    for hours, (_event, alert) in enumerate(changes):
        list_outbox.enqueue(alert, [channel.key], now=DAY + timedelta(hours=hours))  # type: ignore[arg-type]

    early = deliver_pending(list_outbox, notifier, [channel], now=DAY + timedelta(hours=10))
    assert (early.delivered, early.waiting) == (0, 3) and webhook_sink.received == [], "the day is not over"

    failing = StatusMessage(
        "meta-privacy-policy@failing1",
        "failing",
        "meta-privacy-policy",
        "Meta",
        "https://x/",
        DAY,
        "HTTP 503",
        3,
    )
    list_outbox.enqueue(status_alert_of(failing), [channel.key], now=DAY + timedelta(hours=11))
    deliver_pending(list_outbox, notifier, [channel], now=DAY + timedelta(hours=11))
    assert [p["title"] for p in webhook_sink.received] == ["[Meta] can no longer read the page: HTTP 503"], (
        "a failure notice is not summed up: it goes out at once"
    )

    report = deliver_pending(list_outbox, notifier, [channel], now=DAY + timedelta(hours=15, minutes=5))
    assert report.delivered == 3
    brief = webhook_sink.received[-1]
    assert brief["title"] == "policy-watchdog daily brief, 2025-05-27: 3 changes on 2 pages"
    body = brief["message"]
    meta = body.index("Meta Privacy Policy · Use of information for AI")
    assert (
        meta
        < body.index("Meta Privacy Policy · Opt-out")
        < body.index("Instagram Policy · Use of information for AI")
    )
    assert body.count(f"{ARCHIVE}/changes/") == 3, "each change with its link"
    assert '[Meta Privacy Policy] Added under "Legal basis": "We train AI models on public posts."' in body

    for later in (1, 30):
        again = deliver_pending(list_outbox, notifier, [channel], now=DAY + timedelta(days=later))
        assert again.delivered == 0, "nothing twice, nothing for a day without changes"
    assert len(webhook_sink.received) == 2
    assert sorted(list_outbox.delivered_log) == sorted(
        [(channel.key, e) for e, _a in changes] + [(channel.key, "meta-privacy-policy@failing1")]
    )


def test_a_brief_that_fails_is_retried_whole_and_sent_once(
    webhook_sink: WebhookSink, list_outbox: ListOutbox
) -> None:
    channel = digest_channel(webhook_sink.url, "weekly")
    for n, moment in enumerate((DAY, DAY + timedelta(days=2), DAY + timedelta(days=8)), start=1):
        _event, alert = owed(n, "meta-privacy-policy", f"Clause {n}: we train AI on public posts.")
        list_outbox.enqueue(alert, [channel.key], now=moment)  # type: ignore[arg-type]
    notifier = Notifier([channel], sleep=lambda _s: None, retries=0)
    webhook_sink.down()
    monday = datetime(2025, 6, 2, 0, 5, tzinfo=UTC)
    failed = deliver_pending(list_outbox, notifier, [channel], now=monday)
    assert (failed.failed, failed.delivered) == (2, 0) and webhook_sink.refused_posts == 1
    webhook_sink.up()  # a refused brief is tried again by the very next pass, whatever its backoff
    sent = deliver_pending(list_outbox, notifier, [channel], now=monday + timedelta(seconds=1))
    assert (sent.delivered, sent.waiting) == (2, 1), "the first week's brief; the second week is not over"
    assert [p["title"] for p in webhook_sink.received] == [
        "policy-watchdog weekly brief, week of 2025-05-26: 2 changes on 1 page"
    ]
    deliver_pending(list_outbox, notifier, [channel], now=monday + timedelta(days=7))
    assert [p["title"] for p in webhook_sink.received][1] == (
        "policy-watchdog weekly brief, week of 2025-06-02: 1 change on 1 page"
    )
    deliver_pending(list_outbox, notifier, [channel], now=monday + timedelta(days=30))
    assert len(webhook_sink.received) == 2, "each brief once"


def test_an_unanswered_brief_is_sent_at_most_twice_and_logged_against_each_change(
    webhook_sink: WebhookSink, list_outbox: ListOutbox
) -> None:
    """A brief is one send for all its rows: the write-ahead attempt log and the at-most-twice rule of any
    alert (README, "Nothing lost, at most twice") hold for each of them."""
    channel = digest_channel(f"{webhook_sink.url}?rto=1")
    for n in (1, 2):
        _event, alert = owed(n, "meta-privacy-policy", f"Clause {n}: we train AI on public posts.")
        list_outbox.enqueue(alert, [channel.key], now=DAY)  # type: ignore[arg-type]
    notifier = Notifier([channel], sleep=no_sleep)
    webhook_sink.delay = 2.0  # answers after apprise stopped waiting: the brief may have arrived
    first = deliver_pending(list_outbox, notifier, [channel], now=DAY + timedelta(days=1))
    assert (first.uncertain, first.delivered, webhook_sink.arrivals) == (2, 0, 1), "not retried in the pass"
    soon = deliver_pending(list_outbox, notifier, [channel], now=DAY + timedelta(days=1, seconds=1))
    assert (soon.waiting, webhook_sink.arrivals) == (2, 1), "an unanswered brief waits out its backoff"
    later = DAY + timedelta(days=2)
    second = deliver_pending(list_outbox, notifier, [channel], now=later)
    assert (second.uncertain, webhook_sink.arrivals) == (2, 2), "sent once more after its backoff"
    for days in (3, 30):
        report = deliver_pending(list_outbox, notifier, [channel], now=DAY + timedelta(days=days))
        assert report.unconfirmed == 2
    assert webhook_sink.arrivals == 2, "never a third time"
    assert [row.outcomes for row in list_outbox.rows] == [["unknown", "unknown"]] * 2


def test_an_email_brief_is_one_well_formed_document(smtp_server: SmtpSink, list_outbox: ListOutbox) -> None:
    channel = digest_channel(smtp_server.url())
    for n in range(1, 4):
        _event, alert = owed(n, "meta-privacy-policy", f"Clause {n}: we train AI on public posts.")
        list_outbox.enqueue(alert, [channel.key], now=DAY)  # type: ignore[arg-type]
    deliver_pending(list_outbox, Notifier([channel], sleep=no_sleep), [channel], now=DAY + timedelta(days=1))
    [message] = smtp_server.messages
    assert message["Subject"] == "policy-watchdog daily brief, 2025-05-27: 3 changes on 1 page"
    html = message.get_body(preferencelist=("html",))
    assert html is not None
    page = html.get_content()
    assert page.rstrip().endswith("</html>") and page.count("<li") == 3
    assert list(message.iter_attachments()) == []


APRIL = "series/facebook-privacy-policy-en/2025-04-23T12-31-08Z.md"
MAY = "series/facebook-privacy-policy-en/2025-05-28T00-30-56Z.md"
FR_2024_05 = "milestones/meta-privacy-policy-fr-fr/2024-05-21.md"
FR_PAUSE = "milestones/meta-privacy-policy-fr-fr/2024-06-26.md"


def test_a_digest_channel_from_the_config_through_the_real_archive(
    page_server: PageServer, webhook_sink: WebhookSink, tmp_path: Path
) -> None:
    path = write_config(
        tmp_path,
        page_server.base_url,
        [Site("fb", "/fb", 'name = "Meta Privacy Policy"'), Site("fr", "/fr", 'name = "Politique FR"')],
        channels=[webhook_sink.url],
        head='[alerts]\narchive_url = "https://archive.example.org"\n',
    )
    path.write_text(
        path.read_text().replace(
            f'url = "{webhook_sink.url}"', f'url = "{webhook_sink.url}"\ndigest = "daily"'
        )
    )
    config = load_config(path, environ={})
    assert config.channels[0].digest == "daily"
    clock = [DAY]

    def cycle() -> None:
        with open_store(config) as store:
            fetchers = Fetchers(config, clock=lambda: clock[0], sleep=lambda _s: None)
            try:
                run_cycle(
                    list(config.targets),
                    Context(config=config, store=store, fetchers=fetchers, clock=lambda: clock[0]),
                )
            finally:
                fetchers.close()

    page_server.set("/fb", render_page(corpus_text(APRIL)), etag=False)
    page_server.set("/fr", render_page(corpus_text(FR_2024_05)), etag=False)
    cycle()
    page_server.set("/fb", render_page(corpus_text(MAY), seed=1), etag=False)
    page_server.set("/fr", render_page(corpus_text(FR_PAUSE), seed=1), etag=False)
    clock[0] = DAY + timedelta(hours=2)
    cycle()
    assert webhook_sink.received == [], "changes wait for the day's brief"
    with open_store(config, writer=False) as store:
        [health] = channel_health(config.channels, store.outbox.all_pending())
    assert (health.owed, health.in_brief, health.state) == (2, 2, "ok"), "waiting is not failing"
    assert health.next_attempt_at == datetime(2025, 5, 28, tzinfo=UTC), "the daemon's next pass: day's end"
    clock[0] = DAY + timedelta(days=1, minutes=1)
    cycle()
    cycle()
    [brief] = webhook_sink.received
    assert brief["title"] == "policy-watchdog daily brief, 2025-05-27: 2 changes on 2 pages"
    assert "https://archive.example.org/changes/fb@c1.html" in brief["message"]
    assert "https://archive.example.org/changes/fr@c1.html" in brief["message"]
    with open_store(config, writer=False) as store:
        assert store.outbox.all_pending() == []


def test_a_bad_digest_period_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "watchdog.toml"
    path.write_text('[[channels]]\nurl = "json://127.0.0.1:9/x"\ndigest = "hourly"\n')
    result = cli("--config", str(path), "config", "check")
    assert result.returncode == 2
    assert "channels[0].digest" in result.stderr and "daily, weekly" in result.stderr

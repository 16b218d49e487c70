"""What the outbox guarantees, proved against real receivers (issue 11, points 3 and 5).

- A send whose outcome is unknown (a webhook slower than apprise's read time-out, an SMTP server that
  takes the message and drops the connection before its "250") is not retried inside the pass, waits for
  its backoff, and is sent at most twice in all: after two such sends the row is left unconfirmed. Before,
  one alert reached such a webhook up to 7 times over one `check` and two `deliver` runs, and such an SMTP
  server 3 times per run.
- A send cut short by a crash counts as one of the two (write-ahead attempt log).
- A channel apprise cannot load at delivery time gets nothing, is told once to the other channels, shows
  as failing in `status`, and a change owed only to it is not `[alerted]`.

The page server plays the watched site; `check` and `deliver` run as real processes, and later passes run
in-process with a clock past the backoff (`deliver_at`), as the daemon or a later `check` would.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from support.corpus import render_page
from support.daemon import wait_until
from support.harness import Site, cli, cycle, deliver_at, open_archive, write_config
from support.pageserver import PageServer
from support.replay import corpus_text
from support.sinks import SmtpSink, WebhookSink
from watchdog.notify import MAX_UNCERTAIN_SENDS, default_backoff

pytestmark = pytest.mark.usefixtures("each_backend")  # the outbox of each backend (SQLite; a real PostgreSQL)

BEFORE = "milestones/meta-privacy-policy-fr-fr/2024-05-21.md"
AFTER = "milestones/meta-privacy-policy-fr-fr/2024-06-26.md"
WAIT = 2.0  # the slow webhook answers after this many seconds...
READ_TIMEOUT = 1  # ...and apprise stops waiting after this many (its `rto` URL option)
LATER = default_backoff(1000)  # past any backoff


@pytest.fixture
def slow_webhook() -> Iterator[WebhookSink]:
    sink = WebhookSink(delay=WAIT)
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


def watched(page_server: PageServer, tmp_path: Path, channels: list[str]) -> Path:
    """A config watching one page with `channels`; its baseline is checked already."""
    config = write_config(
        tmp_path, page_server.base_url, [Site("ig", "/ig", 'notify = "all"')], channels=channels
    )
    page_server.set("/ig", render_page(corpus_text(BEFORE)), etag=False)
    cycle(config)
    return config


def change_with_cli(page_server: PageServer, config: Path) -> dict[str, object]:
    page_server.set("/ig", render_page(corpus_text(AFTER), seed=1), etag=False)
    result = cli("--config", str(config), "check", "--json")
    assert result.returncode == 0, result.stderr
    outcome: dict[str, object] = json.loads(result.stdout)
    assert outcome["status"] == "changed"
    return outcome


def attempts_of(config: Path, event_id: str) -> list[tuple[str, str | None]]:
    _config, store = open_archive(config)
    with store:
        (row,) = [d for d in store.outbox.all_pending() if d.alert.event_id == event_id]
        return [(a.outcome, a.error) for a in store.outbox.attempts(row.id)]


def test_a_webhook_slower_than_the_time_out_gets_each_alert_at_most_twice(
    page_server: PageServer, slow_webhook: WebhookSink, tmp_path: Path
) -> None:
    config = watched(page_server, tmp_path, [f"{slow_webhook.url}?rto={READ_TIMEOUT}"])
    outcome = change_with_cli(page_server, config)
    assert outcome["alerted"], "owed to a usable channel: it counts as alerted"
    assert slow_webhook.arrivals == 1, "an unknown outcome is not retried inside the pass"

    early = cli("--config", str(config), "deliver")  # within the backoff: nothing is sent
    assert early.returncode == 1 and "still owed" in early.stdout and slow_webhook.arrivals == 1

    now = datetime.now(UTC)
    second = deliver_at(config, now + LATER)
    assert second is not None and second.uncertain == 1 and slow_webhook.arrivals == 2
    for later in (2 * LATER, 10 * LATER):
        report = deliver_at(config, now + later)
        assert report is not None and report.unconfirmed == 1
    assert slow_webhook.arrivals == MAX_UNCERTAIN_SENDS == 2, "never a third time"

    assert [outcome for outcome, _e in attempts_of(config, "ig@c1")] == ["unknown", "unknown"]
    assert all("outcome unknown" in (error or "") for _o, error in attempts_of(config, "ig@c1"))
    status = cli("--config", str(config), "status")
    assert "unconfirmed" in status.stdout and "CHANNEL" in status.stdout, status.stdout
    done = cli("--config", str(config), "deliver")
    assert done.returncode == 0 and "1 alert(s) unconfirmed" in done.stdout, done.stdout


def test_an_smtp_server_that_drops_after_data_gets_each_alert_at_most_twice(
    page_server: PageServer, smtp_server: SmtpSink, tmp_path: Path
) -> None:
    config = watched(page_server, tmp_path, [smtp_server.url()])
    smtp_server.drop_after_data = True
    change_with_cli(page_server, config)
    assert len(smtp_server.messages) == 1, "one message per pass, not three"
    now = datetime.now(UTC)
    for later in (LATER, 2 * LATER, 3 * LATER):
        deliver_at(config, now + later)
    assert len(smtp_server.messages) == 2
    assert [o for o, _e in attempts_of(config, "ig@c1")] == ["unknown", "unknown"]


def test_when_the_second_send_is_answered_the_alert_is_delivered_and_was_sent_twice(
    page_server: PageServer, slow_webhook: WebhookSink, tmp_path: Path
) -> None:
    """Why twice is the honest bound: the first send did arrive, but nothing said so; not sending again
    would lose every alert whose first send was really lost (next test)."""
    config = watched(page_server, tmp_path, [f"{slow_webhook.url}?rto={READ_TIMEOUT}"])
    change_with_cli(page_server, config)
    slow_webhook.delay = 0.0  # the receiver is healthy again
    report = deliver_at(config, datetime.now(UTC) + LATER)
    assert report is not None and report.delivered == 1
    assert slow_webhook.arrivals == 2 and len(slow_webhook.received) == 2
    _config, store = open_archive(config)
    with store:
        assert store.outbox.all_pending() == []


def test_a_send_lost_on_the_way_is_delivered_by_the_next_pass(
    page_server: PageServer, webhook_sink: WebhookSink, tmp_path: Path
) -> None:
    """At least once: a connection cut before the alert arrived (the receiver went away mid-request) is
    an unknown outcome too, and the one more send delivers it."""
    config = watched(page_server, tmp_path, [f"{webhook_sink.url}?rto={READ_TIMEOUT}"])
    webhook_sink.down(refuse=False)
    webhook_sink.delay = WAIT  # it answers 503, but only after apprise gave up: nothing was recorded
    change_with_cli(page_server, config)
    assert webhook_sink.received == []
    webhook_sink.up()
    webhook_sink.delay = 0.0
    deliver_at(config, datetime.now(UTC) + LATER)
    assert len(webhook_sink.received) == 1


def test_a_send_cut_short_by_a_crash_counts_as_one_of_the_two(
    page_server: PageServer, slow_webhook: WebhookSink, tmp_path: Path
) -> None:
    config = watched(page_server, tmp_path, [f"{slow_webhook.url}?rto=30"])
    page_server.set("/ig", render_page(corpus_text(AFTER), seed=1), etag=False)
    slow_webhook.delay = 60.0  # the send hangs until we kill the sender
    cycle_proc = subprocess.Popen(
        [sys.executable, "-m", "watchdog", "--config", str(config), "check"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_until(lambda: slow_webhook.arrivals == 1, 60)
        time.sleep(0.2)
        cycle_proc.send_signal(signal.SIGKILL)  # between the channel taking the alert and any answer
        cycle_proc.wait(10)
    finally:
        if cycle_proc.poll() is None:
            cycle_proc.kill()
    ((outcome, error),) = attempts_of(config, "ig@c1")
    assert outcome == "unknown" and "sender stopped" in (error or ""), "logged before the send"
    slow_webhook.delay = 0.0
    now = datetime.now(UTC)
    for later in (LATER, 2 * LATER):
        deliver_at(config, now + later)
    assert slow_webhook.arrivals == 2, "the crashed send, and one more (which is answered)"
    _config, store = open_archive(config)
    with store:
        assert store.outbox.all_pending() == []


def test_a_channel_apprise_cannot_load_is_reported_once_and_never_alerted(
    page_server: PageServer, webhook_sink: WebhookSink, tmp_path: Path
) -> None:
    """The config passes `load_config` (only `config check` loads channels with apprise): at delivery
    time the broken channel gets nothing, the operators' channel (tag "failing") is told once."""
    config = write_config(
        tmp_path,
        page_server.base_url,
        [Site("ig", "/ig", 'notify = "all"')],
        channels=["nosuchscheme://token123"],
    )
    config.write_text(
        config.read_text() + f'[[channels]]\nurl = "{webhook_sink.url}"\ntags = ["failing"]\n',
        encoding="utf-8",
    )
    page_server.set("/ig", render_page(corpus_text(BEFORE)), etag=False)
    cycle(config)
    page_server.set("/ig", render_page(corpus_text(AFTER), seed=1), etag=False)
    text = cli("--config", str(config), "check")
    assert " changed " in text.stdout and "[alerted]" not in text.stdout, text.stdout
    assert text.stderr.count("cannot be used") == 1 and "token123" not in text.stderr, text.stderr
    (notice,) = webhook_sink.received
    assert "cannot be used" in notice["title"] and "token123" not in json.dumps(notice)

    again = cli("--config", str(config), "check", "--json")
    assert json.loads(again.stdout)["status"] == "unchanged"
    deliver_at(config, datetime.now(UTC) + LATER)
    assert len(webhook_sink.received) == 1, "reported once, not at every pass"
    status = cli("--config", str(config), "status")
    line = next(line for line in status.stdout.splitlines() if line.startswith("nosuchscheme://"))
    assert "failing" in line and "cannot load channel" in line and "token123" not in status.stdout
    _config, store = open_archive(config)
    with store:
        assert [d.alert.event_id for d in store.outbox.all_pending()] == ["ig@c1"], "kept for when it loads"


def test_a_change_owed_only_to_an_unloadable_channel_is_not_alerted_in_json(
    page_server: PageServer, tmp_path: Path
) -> None:
    config = watched(page_server, tmp_path, ["nosuchscheme://token123"])
    outcome = change_with_cli(page_server, config)
    assert outcome["alerted"] is False


def test_the_backoff_doubles_and_stays_under_the_hourly_timer() -> None:
    waits = [default_backoff(n) for n in range(1, 12)]
    assert waits[:4] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert max(waits) == timedelta(minutes=30), "an hourly `check` always finds an owed alert due again"

"""Stage notify: apprise delivery to real local endpoints (aiosmtpd SMTP, an HTTP webhook sink), routing,
length limits, secrets, and the outbox delivery loop over simulated cycles.

The only interception: Slack's cloud endpoint (requests.request inside apprise's Slack plugin)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support.messages import ARCHIVE, PAGE, alert_of, status_alert_of
from support.messages import change_message as make_message
from watchdog.errors import DeliveryError
from watchdog.models import Alert, ChangeMessage, Channel, StatusMessage
from watchdog.notify import (
    POINTER,
    REFUSED_RETRY,
    Notifier,
    channel_key,
    default_backoff,
    deliver_pending,
    redact,
    route,
)

if TYPE_CHECKING:
    from support.sinks import ListOutbox, SmtpSink, WebhookSink

# smtp_server, webhook_sink, second_webhook_sink, list_outbox (until tests/conftest.py lists support.sinks)
pytest_plugins = ["support.sinks"]

T0 = datetime(2025, 5, 27, 9, 0, tzinfo=UTC)

# Two real sentences of Meta's policies, as captured by Open Terms Archive (ODC-By 1.0; contributors of
# OpenTermsArchive/contrib-versions and genai-eu; see /work/shared/corpus/series/SOURCES.md): BEFORE from
# facebook-privacy-policy-genai/2026-06-01T10-30-28Z.md, AFTER from
# instagram-privacy-policy-en/2025-05-27T12-31-31Z.md. The wording belongs to Meta Platforms. AFTER is
# followed by made-up hostile page text (an ampersand, a tag) that must stay inert wherever it lands.
BEFORE = (
    "Even if you don't use our Products or have an account, we may still process information about you to "
    "develop and improve AI at Meta."
)
LEGAL_BASIS = "We’ll use this information on the basis of legitimate interests"
AFTER = (
    f"{LEGAL_BASIS} to develop and improve generative AI models for AI at Meta & you can object <b>here</b>."
)


def make_channel(url: str, *, tags: tuple[str, ...] = (), notify: str = "topics") -> Channel:
    """What config.py builds for a [[channels]] entry."""
    return Channel(key=channel_key(url), url=url, label=redact(url), tags=tags, notify=notify)  # type: ignore[arg-type]


DOC = "# Privacy Policy\n\n## What is our legal basis?\n\n### Legitimate interests\n\n{body}\n\nEnd.\n"


def change_message(n: int, *, passages: int = 1, archive_url: str | None = ARCHIVE) -> ChangeMessage:
    """Change n of the policy: BEFORE became AFTER, and (with `passages` > 1) as many more clauses changed,
    each in its own section."""

    def clauses(basis: str) -> str:
        return "".join(f"\n\n## Clause {i}\n\nClause {i}: we rely on {basis}." for i in range(1, passages))

    before = DOC.format(body=f"{BEFORE} Clause {n}.{clauses('consent')}")
    after = DOC.format(body=f"{AFTER} Clause {n}.{clauses('legitimate interests for AI training')}")
    return make_message(before, after, event_id=f"meta-privacy-policy@c{n}", archive_url=archive_url)


def change_alert(
    n: int,
    *,
    tags: tuple[str, ...] = ("legal-basis", "high", "meta-privacy-policy"),
    topic_change: bool = True,
    passages: int = 1,
    archive_url: str | None = ARCHIVE,
) -> Alert:
    return alert_of(
        change_message(n, passages=passages, archive_url=archive_url), tags=tags, topic_change=topic_change
    )


def status_alert(kind: str) -> Alert:
    message = StatusMessage(
        f"meta-privacy-policy@{kind}1",
        kind,
        "meta-privacy-policy",
        "Meta Privacy Policy",
        PAGE,
        T0,
        "HTTP 403",
        3,
    )
    return status_alert_of(message)


def no_sleep(seconds: float) -> None:
    raise AssertionError(f"unexpected retry (sleep {seconds}s): the first attempt should have worked")


def pointer(event_id: str) -> str:
    return POINTER.format(event_id=event_id)


# --------------------------------------------------------------------------- e-mail


def test_email_has_subject_text_and_html_parts_and_the_diff_attached(
    smtp_server: SmtpSink, tmp_path: Path
) -> None:
    channel = make_channel(smtp_server.url())
    alert = change_alert(1)
    Notifier([channel], sleep=no_sleep, scratch_dir=tmp_path).send(channel, alert)

    [message] = smtp_server.messages
    assert message["Subject"] == alert.title
    assert alert.title.startswith('[Meta Privacy Policy] Changed under "Legitimate interests": "We')
    assert smtp_server.logins == [("watchdog", "s3cret-pw")]  # the URL's credentials, over AUTH
    assert smtp_server.envelopes == [("watchdog@example.org", ("alerts@example.org",))]
    html_part = message.get_body(preferencelist=("html",))
    plain_part = message.get_body(preferencelist=("plain",))
    assert html_part is not None and plain_part is not None and html_part is not plain_part
    html = html_part.get_content()
    assert html.rstrip().endswith("</html>") and unclosed_tags(html) == [], "well-formed, nothing after it"
    assert "&amp; you can object &lt;b&gt;here&lt;/b&gt;" in html and "<b>here" not in html
    assert f'<a href="{ARCHIVE}/changes/meta-privacy-policy@c1.html">' in html
    assert "#s-privacy-policy--what-is-our-legal-basis--legitimate-interests" in html, "links to its section"
    plain = plain_part.get_content()
    assert f"Page: {PAGE}" in plain and f"Archive: {ARCHIVE}/changes/meta-privacy-policy@c1.html" in plain
    assert LEGAL_BASIS.replace("’", "'") in plain.replace("’", "'") and "you can object <b>here</b>" in plain
    assert "line" not in plain.lower(), "places are sections, never line numbers"
    [attached] = list(message.iter_attachments())
    assert attached.get_filename() == "meta-privacy-policy-c1.diff.txt"
    assert attached.get_content_type() == "text/plain" and attached.get_content_charset() == "utf-8"
    assert (
        "=== Privacy Policy › What is our legal basis? › Legitimate interests ===" in attached.get_content()
    )
    assert list(tmp_path.iterdir()) == []  # the temporary attachment file is gone


def test_email_over_the_limit_keeps_whole_passages_a_closed_document_and_the_archive_link(
    smtp_server: SmtpSink,
) -> None:
    alert = change_alert(2, passages=300)
    channel = make_channel(smtp_server.url())
    Notifier([channel], sleep=no_sleep).send(channel, alert)

    [message] = smtp_server.messages
    html_part = message.get_body(preferencelist=("html",))
    assert html_part is not None
    body = html_part.get_content().strip()
    assert len(body) <= 32768  # apprise's e-mail body_maxlen
    assert body.endswith("</html>") and unclosed_tags(body) == []
    pointer = re.search(r"… (\d+) more passages in the archive: <a href=\"([^\"]+)\">full diff</a>", body)
    assert pointer is not None and pointer.group(2) == f"{ARCHIVE}/changes/meta-privacy-policy@c2.html"
    shown = body.count('<section class="passage"')
    assert shown > 10 and shown + int(pointer.group(1)) == 300, "whole passages, the rest counted"
    plain = message.get_body(preferencelist=("plain",))
    assert plain is not None and f"{ARCHIVE}/changes/meta-privacy-policy@c2.html" in plain.get_content()
    [attached] = list(message.iter_attachments())
    assert attached.get_content().count("=== ") == 300, "the attachment is the whole diff"


class _Balance(HTMLParser):
    VOID = frozenset({"meta", "br", "img", "hr", "input", "link"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()


def unclosed_tags(markup: str) -> list[str]:
    parser = _Balance()
    parser.feed(markup)
    return parser.stack


# --------------------------------------------------------------------------- webhooks


def test_json_webhook_gets_the_headline_and_a_plain_text_body(webhook_sink: WebhookSink) -> None:
    channel = make_channel(webhook_sink.url)
    alert = change_alert(1)
    Notifier([channel], sleep=no_sleep).send(channel, alert)

    [payload] = webhook_sink.received
    assert (payload["title"], payload["type"]) == (alert.title, "warning")
    text = payload["message"]
    assert text.startswith(f"Page: {PAGE}\nArchive: {ARCHIVE}/changes/meta-privacy-policy@c1.html\n")
    assert (
        "Changed under Privacy Policy › What is our legal basis? › Legitimate interests  "
        "[ai-training, opt-out, legal-basis]" in text
    )
    assert f"  + {AFTER}\n" in text, "the sentence, with its changed words, as text"
    assert payload["attachments"] == []  # the attachment is for e-mail only
    assert webhook_sink.paths == ["/hook"]


def test_an_alert_queued_by_an_earlier_release_is_still_sent(webhook_sink: WebhookSink) -> None:
    """Outbox rows written before messages were format-neutral carry pre-rendered text: sent as it is."""
    channel = make_channel(webhook_sink.url)
    legacy = Alert(
        "x@c9", "change", "x", "[X] opt-out wording changed", "- old\n+ new\n", "", "", ("opt-out",)
    )
    Notifier([channel], sleep=no_sleep).send(channel, legacy)
    [payload] = webhook_sink.received
    assert (payload["title"], payload["message"].strip()) == ("[X] opt-out wording changed", "- old\n+ new")


def test_apprise_config_file_channel_reaches_every_service_in_it(
    webhook_sink: WebhookSink, second_webhook_sink: WebhookSink, tmp_path: Path
) -> None:
    config = tmp_path / "apprise.yml"
    config.write_text(f"urls:\n  - {webhook_sink.url}\n  - {second_webhook_sink.url}\n")
    channel = make_channel(str(config))
    Notifier([channel], sleep=no_sleep).send(channel, change_alert(1))
    assert [p["title"] for p in webhook_sink.received + second_webhook_sink.received] == [
        change_alert(1).title
    ] * 2


def test_retry_inside_a_config_file_channel_resends_only_to_the_service_that_failed(
    webhook_sink: WebhookSink, second_webhook_sink: WebhookSink, tmp_path: Path
) -> None:
    config = tmp_path / "apprise.txt"
    config.write_text(f"{webhook_sink.url}\n{second_webhook_sink.url}\n")
    channel = make_channel(str(config))
    second_webhook_sink.down()
    sleeps: list[float] = []

    def sleep_then_recover(seconds: float) -> None:
        sleeps.append(seconds)
        second_webhook_sink.up()

    Notifier([channel], sleep=sleep_then_recover).send(channel, change_alert(1))
    assert sleeps == [1.0]
    assert len(webhook_sink.received) == 1 and len(second_webhook_sink.received) == 1


def test_a_send_is_retried_with_backoff_then_reported_without_secrets(webhook_sink: WebhookSink) -> None:
    url = webhook_sink.url.replace("json://", "json://watchdog:hunter2-secret@")
    channel = make_channel(url)
    webhook_sink.down()
    sleeps: list[float] = []
    with pytest.raises(DeliveryError) as caught:
        Notifier([channel], sleep=sleeps.append, retries=2).send(channel, change_alert(1))
    assert sleeps == [1.0, 2.0]  # exponential, injected: no real waiting
    assert webhook_sink.refused_posts == 3
    message = str(caught.value)
    assert "503" in message and channel.label in message
    assert "hunter2-secret" not in message and "watchdog:" not in message


def test_a_channel_apprise_cannot_load_fails_at_once_naming_it_without_its_token() -> None:
    channel = make_channel("nosuchservice://token1234567/abc")
    with pytest.raises(DeliveryError, match=r"nosuchservice://\*\*\*/abc: cannot load channel") as caught:
        Notifier([channel], sleep=no_sleep).send(channel, change_alert(1))  # no_sleep: not retried
    assert "token1234567" not in str(caught.value)


# --------------------------------------------------------------------------- the outbox over cycles


def titles(sink: WebhookSink) -> list[str]:
    return [payload["title"] for payload in sink.received]


def test_outage_over_several_cycles_delivers_every_alert_once_and_in_order(
    webhook_sink: WebhookSink, second_webhook_sink: WebhookSink, list_outbox: ListOutbox
) -> None:
    flaky, steady = make_channel(webhook_sink.url), make_channel(second_webhook_sink.url)
    channels = [flaky, steady]
    outbox, sleeps = list_outbox, list[float]()
    notifier = Notifier(channels, sleep=sleeps.append)
    alerts = [change_alert(n) for n in range(1, 5)]
    for alert in alerts[:3]:
        outbox.enqueue(alert, [flaky.key, steady.key], now=T0)

    webhook_sink.down()  # answers 503
    first = deliver_pending(outbox, notifier, channels, now=T0)
    assert (first.delivered, first.failed, first.skipped) == (3, 1, 2)
    assert titles(second_webhook_sink) == [a.title for a in alerts[:3]]  # the other channel is not blocked
    assert webhook_sink.received == [] and webhook_sink.refused_posts == 3  # 1 try + 2 in-cycle retries

    # a new alert arrives while the flaky channel is still down: it must not overtake alerts 1-3, and the
    # refused row is tried again by this pass (a refusal never duplicates: every pass retries it)
    outbox.enqueue(alerts[3], [flaky.key, steady.key], now=T0 + timedelta(seconds=30))
    second = deliver_pending(outbox, notifier, channels, now=T0 + timedelta(seconds=30))
    assert (second.delivered, second.failed, second.skipped, second.waiting) == (1, 1, 3, 0)
    assert webhook_sink.refused_posts == 6

    webhook_sink.down(refuse=True)  # now the port is closed: connection refused
    third = deliver_pending(outbox, notifier, channels, now=T0 + timedelta(seconds=40))
    assert (third.failed, third.skipped, third.delivered) == (1, 3, 0)
    [(label, reason)] = third.errors
    assert label == flaky.label and "connection error" in reason.lower()
    (row,) = [d for d in outbox.all_pending(channel=flaky.key) if d.alert.event_id == alerts[0].event_id]
    assert row.next_attempt_at is not None
    assert row.next_attempt_at <= T0 + timedelta(seconds=40) + REFUSED_RETRY, "the daemon comes back soon"

    webhook_sink.up()  # the very next pass, whenever it runs, delivers everything owed, in order
    back = deliver_pending(outbox, notifier, channels, now=T0 + timedelta(seconds=41))
    assert (back.delivered, back.failed, back.skipped, back.waiting) == (4, 0, 0, 0)
    after = deliver_pending(outbox, notifier, channels, now=T0 + timedelta(hours=1))
    assert after == type(after)()  # nothing left

    assert titles(webhook_sink) == [a.title for a in alerts]  # each once, in order
    assert titles(second_webhook_sink) == [a.title for a in alerts]
    assert [event for key, event in outbox.delivered_log if key == flaky.key] == [a.event_id for a in alerts]
    assert sleeps == [1.0, 2.0] * 3  # in-cycle retries of the three failed passes
    # each try is logged: three in each of the three failed passes, then the one that delivered
    assert outbox.rows[0].outcomes == ["failed"] * 9 + ["delivered"]


def test_rows_for_a_channel_no_longer_configured_stay_pending(
    webhook_sink: WebhookSink, list_outbox: ListOutbox
) -> None:
    kept, gone = make_channel(webhook_sink.url), make_channel("json://127.0.0.1:9/removed")
    outbox = list_outbox
    outbox.enqueue(change_alert(1), [gone.key, kept.key], now=T0)
    report = deliver_pending(outbox, Notifier([kept], sleep=no_sleep), [kept], now=T0)
    assert (report.delivered, report.unconfigured) == (1, 1)
    assert [d.channel_key for d in outbox.all_pending()] == [gone.key]


def test_a_retry_that_succeeds_inside_the_cycle_counts_as_delivered(
    webhook_sink: WebhookSink, list_outbox: ListOutbox
) -> None:
    channel = make_channel(webhook_sink.url)
    outbox = list_outbox
    outbox.enqueue(change_alert(1), [channel.key], now=T0)
    webhook_sink.down()
    report = deliver_pending(
        outbox, Notifier([channel], sleep=lambda _: webhook_sink.up()), [channel], now=T0
    )
    assert (report.delivered, report.failed) == (1, 0)
    assert titles(webhook_sink) == [change_alert(1).title] and webhook_sink.refused_posts == 1


@pytest.mark.parametrize(
    ("attempts", "expected"),
    [
        pytest.param(1, timedelta(minutes=1), id="first-failure-one-minute"),
        pytest.param(3, timedelta(minutes=4), id="doubles"),
        pytest.param(50, timedelta(minutes=30), id="capped-at-half-an-hour"),
    ],
)
def test_default_backoff(attempts: int, expected: timedelta) -> None:
    assert default_backoff(attempts) == expected


# --------------------------------------------------------------------------- routing


TOPIC_HIGH = change_alert(1, tags=("opt-out", "high", "meta-privacy-policy"))
NO_TOPIC = change_alert(2, tags=("meta-privacy-policy",), topic_change=False)
# the capture changed shape, not the wording (watchdog/kinds.py): operators only
CAPTURE = replace(
    change_alert(3, tags=("failing", "meta-privacy-policy"), topic_change=False), kind="capture"
)


@pytest.mark.parametrize(
    ("alert", "tags", "channel_notify", "target_notify", "routed"),
    [
        pytest.param(TOPIC_HIGH, (), "topics", "topics", True, id="untagged-channel-gets-topic-changes"),
        pytest.param(TOPIC_HIGH, ("opt-out",), "topics", "topics", True, id="topic-tag-matches"),
        pytest.param(TOPIC_HIGH, ("eu-pause",), "topics", "topics", False, id="other-topic-tag-does-not"),
        pytest.param(TOPIC_HIGH, ("high",), "topics", "topics", True, id="severity-tag-matches"),
        pytest.param(TOPIC_HIGH, ("low",), "topics", "topics", False, id="other-severity-does-not"),
        pytest.param(TOPIC_HIGH, ("meta-privacy-policy",), "topics", "topics", True, id="target-tag-matches"),
        pytest.param(
            TOPIC_HIGH, ("failing",), "topics", "topics", False, id="failing-only-channel-skips-changes"
        ),
        pytest.param(NO_TOPIC, (), "topics", "topics", False, id="no-topic-change-not-pushed-by-default"),
        pytest.param(NO_TOPIC, (), "all", "topics", True, id="no-topic-change-to-channel-notify-all"),
        pytest.param(NO_TOPIC, (), "topics", "all", True, id="no-topic-change-when-target-notify-all"),
        pytest.param(NO_TOPIC, ("high",), "all", "topics", False, id="notify-all-still-filtered-by-tags"),
        pytest.param(
            NO_TOPIC, ("meta-privacy-policy",), "all", "topics", True, id="notify-all-with-target-tag"
        ),
        pytest.param(status_alert("failing"), (), "topics", "topics", True, id="failing-to-untagged"),
        pytest.param(
            status_alert("failing"), ("failing",), "topics", "topics", True, id="failing-to-failing-tag"
        ),
        pytest.param(
            status_alert("failing"), ("opt-out",), "topics", "topics", False, id="failing-not-to-topic"
        ),
        pytest.param(
            status_alert("failing"),
            ("meta-privacy-policy",),
            "topics",
            "topics",
            False,
            id="failing-not-to-target",
        ),
        pytest.param(
            status_alert("recovered"), ("failing", "high"), "all", "topics", True, id="recovered-too"
        ),
        pytest.param(CAPTURE, ("failing",), "topics", "topics", True, id="capture-to-operators"),
        pytest.param(CAPTURE, (), "all", "all", False, id="capture-never-to-untagged-subscribers"),
        pytest.param(CAPTURE, ("meta-privacy-policy",), "all", "topics", False, id="capture-not-to-target"),
    ],
)
def test_route(
    alert: Alert, tags: tuple[str, ...], channel_notify: str, target_notify: str, routed: bool
) -> None:
    channel = make_channel("json://127.0.0.1:9/hook", tags=tags, notify=channel_notify)
    assert route(alert, channel, target_notify=target_notify) is routed


# --------------------------------------------------------------------------- Slack (intercepted) and limits


SLACK_URL = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#policy-alerts"


class _SlackReply:
    """What hooks.slack.com answers to a webhook POST."""

    status_code = 200
    content = b"ok"


@pytest.fixture
def slack_posts(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Intercept the one HTTP call apprise's Slack plugin makes (requests.request) and keep its JSON."""
    posts: list[dict[str, Any]] = []

    def intercept(method: str, url: str, **kwargs: Any) -> _SlackReply:
        posts.append({"method": method, "url": url, "json": json.loads(kwargs["data"])})
        return _SlackReply()

    monkeypatch.setattr("requests.request", intercept)
    return posts


def test_slack_gets_mrkdwn_with_page_text_escaped(slack_posts: list[dict[str, Any]]) -> None:
    channel = make_channel(SLACK_URL)
    alert = change_alert(3)
    Notifier([channel], sleep=no_sleep).send(channel, alert)

    [post] = slack_posts
    assert post["url"] == "https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ"
    payload = post["json"]
    assert payload["mrkdwn"] is True and payload["channel"] == "#policy-alerts"
    [attachment] = payload["attachments"]
    assert attachment["title"] == alert.title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = attachment["text"]
    assert "*Changed* under <" in text and "**" not in text  # CommonMark bold became Slack bold
    assert "#s-privacy-policy--what-is-our-legal-basis--legitimate-interests|" in text, (
        "a link to its section"
    )
    assert "&amp; you can object &lt;b&gt;here&lt;/b&gt;" in text  # page text cannot become Slack markup
    assert "<b>" not in text
    assert f"<{ARCHIVE}/changes/meta-privacy-policy@c3.html|full diff>" in text


def test_slack_long_markdown_is_cut_at_a_passage_with_the_archive_link_within_its_limit(
    slack_posts: list[dict[str, Any]],
) -> None:
    alert = change_alert(4, passages=300)
    channel = make_channel(SLACK_URL)
    Notifier([channel], sleep=no_sleep).send(channel, alert)

    [post] = slack_posts  # one message: apprise did not split it
    text = post["json"]["attachments"][0]["text"]
    assert len(text) <= 35000  # Slack plugin's body_maxlen, after escaping
    assert re.search(
        rf"… \d+ more passages: <{re.escape(ARCHIVE)}/changes/meta-privacy-policy@c4.html"
        r"\|full diff in the archive>",
        text,
    )
    assert text.rstrip().endswith(f"<{ARCHIVE}/changes/meta-privacy-policy@c4.html|full diff>")


@pytest.mark.parametrize(
    ("scheme", "body_of", "max_chars", "max_lines"),
    [
        pytest.param("json", lambda p: p["message"], 32768, 0, id="json-32k"),
        pytest.param("mmost", lambda p: p["text"], 4000, 0, id="mattermost-4000-no-title-field"),
        pytest.param("kodi", lambda p: p["params"]["message"], 0, 2, id="kodi-two-lines"),
        pytest.param("rocket", lambda p: p["text"], 1000, 0, id="rocketchat-markdown-1000-no-title-field"),
    ],
)
def test_long_body_is_truncated_to_the_service_limit_keeping_the_archive_link(
    webhook_sink: WebhookSink,
    scheme: str,
    body_of: Callable[[dict[str, Any]], str],
    max_chars: int,
    max_lines: int,
) -> None:
    alert = change_alert(7, passages=300)
    url = {
        "mmost": f"mmost://{webhook_sink.host}:{webhook_sink.port}/token1",
        "rocket": f"rocket://hooktoken1%2Fabcdefgh@{webhook_sink.host}:{webhook_sink.port}",  # webhook mode
    }.get(scheme, f"{scheme}://{webhook_sink.host}:{webhook_sink.port}")
    channel = make_channel(url)
    Notifier([channel], sleep=no_sleep).send(channel, alert)

    [payload] = webhook_sink.received
    sent = body_of(payload)
    assert max_chars == 0 or len(sent) <= max_chars
    assert max_lines == 0 or len(sent.splitlines()) <= max_lines
    assert f"{ARCHIVE}/changes/meta-privacy-policy@c7.html" in sent, "the archive link survives the cut"
    if scheme in ("mmost", "rocket"):  # no title field: the headline leads the body, bold, escaped
        assert sent.startswith("**\\[Meta Privacy Policy\\] Changed under ")
    if max_lines == 0:
        assert re.search(r"… \d+ more passages", sent), "says how much is left out"


# --------------------------------------------------------------------------- secrets, identity, notify test


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param(
            "mailto://watchdog:s3cret-pw@127.0.0.1:2525?to=alerts@example.org&from=w@example.org&mode=insecure",
            "mailto://***:***@127.0.0.1:2525?to=***&from=***&mode=insecure",
            id="mail-credentials-and-addresses",
        ),
        pytest.param(
            "mailtos://me:pw@smtp.example.org", "mailtos://***:***@smtp.example.org", id="dns-host-kept"
        ),
        pytest.param(SLACK_URL, "slack://***/***/***/#policy-alerts", id="slack-tokens-in-host-and-path"),
        pytest.param(
            "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/-1001234567",
            "tgram://***/***",
            id="bot-token",
        ),
        pytest.param(
            "discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js", "discord://***/***", id="webhook-id-token"
        ),
        pytest.param(
            "gotify://push.example.org/AbCdEf123456?priority=high",
            "gotify://push.example.org/***?priority=high",
            id="path-token",
        ),
        pytest.param(
            "json://hooks.example.org/x?pass=secret&format=text",
            "json://hooks.example.org/x?pass=***&format=text",
            id="secret-query-key",
        ),
        pytest.param("xmpp://:p4ssw0rd@chat.example.org", "xmpp://:***@chat.example.org", id="password-only"),
        pytest.param("json://127.0.0.1:8080/hook", "json://127.0.0.1:8080/hook", id="nothing-secret"),
        pytest.param("json://[::1]:8080/hooks/alerts", "json://[::1]:8080/hooks/alerts", id="ipv6"),
        pytest.param(
            "/etc/policy-watchdog/apprise.yml", "/etc/policy-watchdog/apprise.yml", id="config-file-path"
        ),
    ],
)
def test_redact(url: str, expected: str) -> None:
    assert redact(url) == expected


@settings(max_examples=60, deadline=None)
@given(password=st.text(st.characters(codec="utf-8", exclude_characters=":@/?#&\n\r"), min_size=1))
def test_redact_never_shows_a_mail_password(password: str) -> None:
    assert redact(f"mailto://user:{password}@smtp.example.org?to=a@example.org") == (
        "mailto://***:***@smtp.example.org?to=***"
    )


def test_channel_key_is_stable_secret_free_and_depends_on_the_template_only() -> None:
    template = "mailto://user:${SMTP_PASSWORD}@smtp.example.org?to=alerts@example.org"
    key = channel_key(template)
    assert key == channel_key(template) and re.fullmatch(r"[0-9a-f]{64}", key)
    assert key != channel_key(template.replace("alerts@", "legal@"))
    assert "SMTP_PASSWORD" not in key and "user" not in key


def test_notify_test_reports_each_channel(
    webhook_sink: WebhookSink, second_webhook_sink: WebhookSink
) -> None:
    ok = make_channel(webhook_sink.url)
    refused = make_channel(second_webhook_sink.url.replace("json://", "json://u:hunter2-secret@"))
    broken = make_channel("nosuchservice://whatever")
    second_webhook_sink.down(refuse=True)
    notifier = Notifier([ok, refused, broken], sleep=no_sleep, clock=lambda: T0)

    results = notifier.test()
    assert [label for label, _ in results] == [ok.label, refused.label, broken.label]
    assert results[0][1] is None
    assert results[1][1] is not None and "connection error" in results[1][1].lower()
    assert "hunter2-secret" not in results[1][1]
    assert results[2][1] is not None and "cannot load channel" in results[2][1]
    [payload] = webhook_sink.received
    assert (
        payload["title"] == "policy-watchdog: test message" and "2025-05-27T09:00:00Z" in payload["message"]
    )


def test_importing_notify_does_not_import_apprise() -> None:
    code = (
        "import sys, watchdog.notify; print(sorted(m for m in ('apprise', 'tenacity') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

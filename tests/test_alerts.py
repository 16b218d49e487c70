"""Alerts end to end through the real archive: real pages over loopback, the SQLite outbox, apprise, and real
receivers (aiosmtpd for email, a local webhook). Nothing lost, nothing twice, failure alerts once."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lxml.html
import pytest
from lxml import etree

from support.corpus import render_page
from support.harness import Site, cli, cycle, deliver_at, open_archive, write_config
from support.pageserver import PageServer, Reply
from support.replay import corpus_text
from support.sinks import SmtpSink, WebhookSink
from watchdog.normalise import meaning_key
from watchdog.notify import default_backoff
from watchdog.publish import after_cycle

APRIL = "series/facebook-privacy-policy-en/2025-04-23T12-31-08Z.md"
MAY = "series/facebook-privacy-policy-en/2025-05-28T00-30-56Z.md"
JUNE = "series/facebook-privacy-policy-en/2025-06-16T12-31-49Z.md"
FR_2024_05 = "milestones/meta-privacy-policy-fr-fr/2024-05-21.md"  # the announcement
FR_PAUSE = "milestones/meta-privacy-policy-fr-fr/2024-06-26.md"  # "nous reportons"
MANY_ATTEMPTS = 100  # default_backoff's cap: past it, any row is due again


def test_an_email_alert_with_html_text_and_the_full_diff(
    page_server: PageServer, smtp_server: SmtpSink, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path,
        page_server.base_url,
        [Site("meta-privacy-policy", "/p", 'name = "Meta Privacy Policy"')],
        channels=[smtp_server.url()],
    )
    page_server.set("/p", render_page(corpus_text(APRIL)), etag=False)
    cycle(config)
    page_server.set("/p", render_page(corpus_text(MAY), seed=1), etag=False)
    (outcome,) = cycle(config)
    assert outcome.alerted
    (message,) = smtp_server.messages
    subject = message["Subject"]
    assert (
        subject.startswith('[Meta Privacy Policy] Added under "')
        and "Develop and improve artificial" in subject
    )
    assert subject.endswith("· ai-training, legal-basis, public-data"), "the topics as tags after it"
    html = message.get_body(preferencelist=("html",))
    text = message.get_body(preferencelist=("plain",))
    assert html is not None and text is not None
    assert (
        "Develop and improve artificial intelligence technology (also called AI at Meta)"
        in html.get_content()
    )
    assert "<ins" in html.get_content()
    assert "AI at Meta" in text.get_content()
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_filename() == "meta-privacy-policy-c1.diff.txt"
    assert attachment.get_content_charset() == "utf-8"
    assert "Develop and improve artificial intelligence technology" in attachment.get_content()


def test_a_channel_outage_loses_nothing_and_duplicates_nothing(
    page_server: PageServer, webhook_sink: WebhookSink, second_webhook_sink: WebhookSink, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path,
        page_server.base_url,
        [Site("ig", "/ig", 'notify = "all"')],
        channels=[webhook_sink.url, second_webhook_sink.url],
    )
    versions = [FR_2024_05, FR_PAUSE, FR_2024_05, FR_PAUSE]  # the last two are reverts: no alert
    page_server.set("/ig", render_page(corpus_text(versions[0])), etag=False)
    cycle(config)
    webhook_sink.down()  # the first channel answers 503 for a while; the second stays up
    page_server.set("/ig", render_page(corpus_text(FR_PAUSE), seed=1), etag=False)
    (change,) = cycle(config)
    assert change.alerted, "queued for retry counts as alerted"
    assert len(second_webhook_sink.received) == 1, "one channel down never blocks another"
    assert webhook_sink.received == [] and webhook_sink.refused_posts >= 1
    result = cli("--config", str(config), "check", "--json")  # the next cycle: the channel is still down
    assert json.loads(result.stdout)["status"] == "unchanged" and webhook_sink.received == []
    webhook_sink.up()
    _config, store = open_archive(config)
    with store:
        pending = store.outbox.all_pending()
    assert [d.alert.event_id for d in pending] == ["ig@c1"]
    # the channel answers again: the very next check delivers what it is owed (CONTRACT.md), exactly once
    result = cli("--config", str(config), "check", "--json")
    assert json.loads(result.stdout)["status"] == "unchanged"
    assert [r["title"] for r in webhook_sink.received] == [second_webhook_sink.received[0]["title"]]
    cycle(config)
    deliver_at(config, datetime.now(UTC) + 2 * default_backoff(MANY_ATTEMPTS))
    assert len(webhook_sink.received) == 1 and len(second_webhook_sink.received) == 1


def test_failure_alerts_once_and_recovery_once(
    page_server: PageServer, webhook_sink: WebhookSink, tmp_path: Path
) -> None:
    config = write_config(tmp_path, page_server.base_url, [Site("fb", "/p")], channels=[webhook_sink.url])
    page_server.set("/p", render_page(corpus_text(APRIL)), etag=False)
    cycle(config)
    page_server.set("/p", Reply(status=500, body="down"))
    statuses = [cycle(config)[0] for _ in range(5)]
    assert [o.status for o in statuses] == ["error"] * 5
    assert [o.alerted for o in statuses] == [False, False, True, False, False]
    (failing,) = webhook_sink.received
    assert "can no longer read" in failing["title"] and "HTTP 500" in failing["title"]
    status = cli("--config", str(config), "status")
    assert status.returncode == 1 and "failing" in status.stdout
    page_server.set("/p", render_page(corpus_text(APRIL), seed=3), etag=False)
    (back,) = cycle(config)
    assert back.status == "unchanged" and back.alerted
    assert "recovered" in webhook_sink.received[-1]["title"] and len(webhook_sink.received) == 2
    assert cli("--config", str(config), "status").returncode == 0


def test_changes_and_diff_commands(page_server: PageServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, page_server.base_url, [Site("fb", "/p"), Site("ig", "/ig")])
    page_server.set("/p", render_page(corpus_text(APRIL)), etag=False)
    page_server.set("/ig", render_page(corpus_text(FR_2024_05)), etag=False)
    cycle(config)
    page_server.set("/p", render_page(corpus_text(MAY), seed=1), etag=False)
    page_server.set("/ig", render_page(corpus_text(FR_PAUSE), seed=1), etag=False)
    cycle(config)
    lines = [
        json.loads(line) for line in cli("--config", str(config), "changes", "--json").stdout.splitlines()
    ]
    assert {line["id"] for line in lines} == {"fb@c1", "ig@c1"}
    keys = {
        "id",
        "target",
        "detected_at",
        "from_version",
        "to_version",
        "topics",
        "severity",
        "summary",
        "alerted",
    }
    assert all(keys <= set(line) for line in lines)
    only = cli("--config", str(config), "changes", "--topic", "eu-pause", "--json").stdout.splitlines()
    assert [json.loads(line)["id"] for line in only] == ["ig@c1"]
    later = cli("--config", str(config), "changes", "--since", "2999-01-01", "--json")
    assert later.stdout == ""
    for fmt, marker in (("text", "+ "), ("md", "~"), ("html", "<ins")):
        out = cli("--config", str(config), "diff", "fb@v1", "fb@v2", "--format", fmt)
        assert out.returncode == 0 and "artificial intelligence" in out.stdout and marker in out.stdout, fmt


# --------------------------------------------------------------------------- real changes, told alike

FR_JUNE_2025 = "milestones/meta-privacy-policy-fr-fr/2025-06-16.md"
FR_SEPT_2025 = "milestones/meta-privacy-policy-fr-fr/2025-09-04.md"  # a rewrite: half as long
ARCHIVE_URL = "https://archive.example.org"
LINE_NUMBERS = re.compile(r"@@|\bline \d|\bligne \d", re.IGNORECASE)
REGEX_SYNTAX = re.compile(r"\\[bswdBSWD]|\(\?|\[\^|\.\*|\.\+|\|\w|[\w)]\?\(")  # \b \s (?i) [^ .* .+ |x
REAL_CHANGES = [
    pytest.param(APRIL, MAY, "Develop and improve artificial intelligence", id="en-may-2025-ai-at-meta"),
    pytest.param(FR_2024_05, FR_PAUSE, "nous reportons la modification", id="fr-june-2024-pause"),
    pytest.param(FR_JUNE_2025, FR_SEPT_2025, None, id="fr-september-2025-rewrite"),
]


@pytest.mark.parametrize(("before", "after", "quoted"), REAL_CHANGES)
def test_a_real_change_is_told_the_same_way_by_every_channel_the_feed_and_the_site(
    page_server: PageServer,
    smtp_server: SmtpSink,
    webhook_sink: WebhookSink,
    second_webhook_sink: WebhookSink,
    cloud_posts: list[dict[str, Any]],
    tmp_path: Path,
    before: str,
    after: str,
    quoted: str | None,
) -> None:
    mattermost = f"mmost://{second_webhook_sink.host}:{second_webhook_sink.port}/token1"
    slack = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#policy"  # intercepted: a cloud service
    config = write_config(
        tmp_path,
        page_server.base_url,
        [Site("fb", "/p", 'name = "Meta Privacy Policy"\nmax_shrink = 0.9\nnotify = "all"')],
        channels=[smtp_server.url(), webhook_sink.url, mattermost, slack],
        head=f'[alerts]\narchive_url = "{ARCHIVE_URL}"\n',
    )
    page_server.set("/p", render_page(corpus_text(before)), etag=False)
    cycle(config)
    page_server.set("/p", render_page(corpus_text(after), seed=1), etag=False)
    (outcome,) = cycle(config)
    assert outcome.status == "changed" and outcome.alerted
    change_page = f"{ARCHIVE_URL}/changes/{outcome.change}.html"

    (mail,) = smtp_server.messages
    headline = mail["Subject"]
    assert headline.startswith("[Meta Privacy Policy] ") and (' under "' in headline or ': "' in headline)
    if quoted:
        assert quoted in headline, "the headline quotes the sentence that says it"
    html_part, plain_part = mail.get_body(preferencelist=("html",)), mail.get_body(preferencelist=("plain",))
    assert html_part is not None and plain_part is not None
    html = html_part.get_content()
    assert html.rstrip().endswith("</html>"), "nothing after </html>"
    page = lxml.html.fromstring(html)
    wheres = [" ".join(p.text_content().split()) for p in page.find_class("where")]
    assert wheres and all(re.match(r"(Added|Removed|Changed) under \S", w) for w in wheres), (
        "each names its section"
    )
    plain = plain_part.get_content()
    assert f"Page: {page_server.base_url}/p" in plain and f"Archive: {change_page}" in plain
    (hook,) = webhook_sink.received
    (chat,) = second_webhook_sink.received
    assert hook["title"] == headline
    [slack_post] = [p["json"] for p in cloud_posts if "hooks.slack.com" in p["url"]]
    slack_title = slack_post["attachments"][0]["title"]  # apprise writes & < > as Slack's entities
    assert slack_title == headline.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert len(chat["text"]) <= 4000 and change_page in chat["text"], "the archive link survives the cut"
    for body in (html, plain, hook["message"], chat["text"]):
        assert not LINE_NUMBERS.search(body), LINE_NUMBERS.search(body)
        assert_no_punctuation_only_pair(body)

    (record,) = [
        json.loads(line) for line in cli("--config", str(config), "changes", "--json").stdout.splitlines()
    ]
    assert record["sections"] and all(record["sections"]), "every hunk names its section"
    loaded, store = open_archive(config)
    with store:
        after_cycle(loaded, store)
    feed = etree.parse(str(loaded.storage_dir / "feeds" / "all.atom")).getroot()
    entry = feed.find("{http://www.w3.org/2005/Atom}entry")
    assert entry is not None and entry.findtext("{http://www.w3.org/2005/Atom}title") == headline
    content = lxml.html.fromstring(entry.findtext("{http://www.w3.org/2005/Atom}content") or "")
    versions = (
        f"{ARCHIVE_URL}/versions/{record['from_version']}.html",
        f"{ARCHIVE_URL}/versions/{record['to_version']}.html",
    )
    for where, root in (("e-mail", page), ("feed", content)):
        places = [p.xpath("a/@href") for p in root.find_class("where")]
        assert places and all(h and h[0].startswith(versions) and "#s-" in h[0] for h in places), (
            f"{where}: each passage links to its section in the version page"
        )
    site = lxml.html.parse(str(loaded.storage_dir / "site" / "changes" / f"{outcome.change}.html")).getroot()
    assert site.findtext(".//h1").strip() == headline
    assert next(h.text for h in site.iter("h2")) == "What changed", "phone-first: passages before metadata"
    for href in site.xpath("//section[@class='what-changed']//p[@class='summary']/a/@href"):
        assert href.startswith("#full-") and site.get_element_by_id(href[1:]).find_class("where")
    flagged = [li.text_content() for li in site.xpath("//ul[@class='flagged']/li")]
    assert flagged, "why it was flagged: the sentences a topic matched"
    for item in flagged:
        assert not REGEX_SYNTAX.search(item), f"words, not a regular expression: {item}"
    if after == FR_SEPT_2025:
        assert site.xpath("//p[@class='summary']/a[text()='full text']"), "the rewrite is summarised"


def assert_no_punctuation_only_pair(body: str) -> None:
    """No passage shows an old sentence next to a new one that says the same (a full stop added, a case
    change): those are folded. (A sentence removed in one passage and added in another has moved.)"""
    if "<section" in body:
        passages = [p.text_content() for p in lxml.html.fromstring(body).find_class("passage")]
    else:
        passages = body.split("\n\n")
    for passage in passages:
        lines = [line.strip().removeprefix("> ") for line in passage.splitlines()]
        old = [line[2:].strip() for line in lines if line.startswith(("- ", "− "))]
        new = {meaning_key(line[2:].strip()) for line in lines if line.startswith("+ ")}
        assert not [line for line in old if line and meaning_key(line) in new], passage[:300]

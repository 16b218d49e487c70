"""Hostile page text through every format and every kind of service: mentions, links, images, HTML,
Markdown, Slack mrkdwn, right-to-left overrides and zero-width characters. None stays active.

Real receivers where the service can run here: Mattermost (apprise's mmost:// posts to a local HTTP
server), Matrix (apprise's matrix:// in hookshot mode posts the formatted body a Matrix client shows, and its
plain fallback, to a local HTTP server), a json:// webhook, e-mail (aiosmtpd). Cloud-only services (Slack,
Discord, Microsoft Teams through Power Automate, Telegram) are intercepted at the HTTP layer (requests,
support.sinks.cloud_posts), the one mock allowed: what they would have received is checked the way the
service reads it."""

from __future__ import annotations

import json
import re
from typing import Any

import lxml.html
from markdown_it import MarkdownIt

from support.messages import ARCHIVE, PAGE, alert_of, change_message, status_alert_of
from support.sinks import SmtpSink, WebhookSink
from watchdog.models import Channel, StatusMessage
from watchdog.notify import Notifier, channel_key, redact
from watchdog.render import html, markdown, text
from watchdog.render.compose import Links, compose
from watchdog.render.json import render_json

pytest_plugins = ["support.sinks"]

# (id, hostile page text): each line becomes a sentence added to the policy
PAYLOADS = [
    ("broadcast-mentions", "Ask @everyone, @here, @channel, @all and @room to object."),
    ("slack-control-sequences", "Write to <!channel> or <!here|here> or <@U024BE7LH> for help."),
    ("discord-mentions", "Ping <@&987654321> and <@123456789> and @someone today."),
    ("markdown-link", "Object [here](https://evil.example/phish) before June."),
    ("javascript-link", "Click [opt out](javascript:alert(1)) to object."),
    ("slack-link", "Visit <https://evil.example/phish|the form> to object."),
    ("markdown-image", "Policy ![beacon](http://evil.example/b.png) updated."),
    ("bare-image-url", "See http://evil.example/beacon.png for details."),
    (
        "html",
        "We <b>may</b> <script>alert(1)</script> <img src=x onerror=alert(2)> "
        "<a href='https://evil.example'>use</a> it.",
    ),
    ("markdown", "**Bold** _it_ `code` ~~gone~~ ||spoiler|| and a # heading marker."),
    ("line-start", "# Heading-looking sentence at the start."),
    ("mrkdwn", "*bold* _italic_ ~strike~ `code` in Slack's own syntax."),
    ("rtl-override", "Download the file \u202egpj.exe\u202c to object."),
    ("zero-width", "Tell @\u200beveryone and @\u200deveryone and <\u200b!channel> and @\ufeffhere."),
    ("entities", "Fish &amp; chips &lt;b&gt;bold&lt;/b&gt; &#64;everyone &#64;room &#x40;here."),
]
HOSTILE = "\n\n".join(sentence for _id, sentence in PAYLOADS)
BEFORE = "# Privacy Policy\n\n## Your rights\n\nYou can object.\n"
AFTER = BEFORE + "\n" + HOSTILE + "\n"
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200c-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
# a mention a service would act on: "@" right before a broadcast word, or Slack's <!...> / <@...>
# (a backslash-escaped or entity-escaped "<" is literal text, as is one we broke with a zero-width space)
ACTIVE_MENTION = re.compile(
    r"(?<![\\\w\u200b])@(?:everyone|here|channel|all|room)\b|(?<!\\)<[!@#]", re.IGNORECASE
)
BROADCAST = re.compile(r"(?<![\\\w\u200b])@(?:everyone|here|channel|all|room)\b", re.IGNORECASE)
OURS = (PAGE, ARCHIVE)


def message() -> Any:
    return change_message(BEFORE, AFTER, event_id="meta-privacy-policy@c9")


def assert_inert_text(body: str, where: str) -> None:
    assert not CONTROL.search(body), (where, CONTROL.search(body))
    assert not ACTIVE_MENTION.search(body), (where, ACTIVE_MENTION.search(body))
    ours = body.replace("@\u200b", "").replace("<\u200b", "").replace("&lt;\u200b", "")
    assert "\u200b" not in ours, f"{where}: only our own breaks"


def assert_no_foreign_markup(root: Any, where: str) -> None:
    assert not root.xpath("//script | //img | //iframe | //object | //b | //@*[starts-with(name(), 'on')]"), (
        where
    )
    for href in root.xpath("//a/@href"):
        assert href.startswith(OURS), (where, href)


def rendered_markdown(source: str) -> Any:
    return lxml.html.fromstring(f"<div>{MarkdownIt('commonmark').render(source)}</div>")


# --------------------------------------------------------------------------- every format


def test_every_format_keeps_hostile_text_inert() -> None:
    story = compose(message())
    links = Links.published(ARCHIVE, story.message)
    assert len(story.passages) == 1 and len(story.passages[0].lines) == len(PAYLOADS), "all of it is shown"

    plain = text.render_text(story, links, guard=text.guard_broadcasts)
    assert_inert_text(plain, "text")
    assert "[here](https://evil.example/phish)" in plain, "plain text shows the words as they are"

    for dialect in (markdown.COMMONMARK, markdown.Dialect(strike="~", escape_ampersand=False)):
        md = markdown.render_markdown(story, links, dialect=dialect)
        assert_inert_text(md, "markdown")
        root = rendered_markdown(md)
        assert_no_foreign_markup(root, "markdown")
        shown = root.text_content()
        assert "[here](" in shown and "<script>alert(1)</script>" in shown and "**Bold**" in shown

    mail = html.render_email(story, links)
    assert not CONTROL.search(mail)
    page = lxml.html.fromstring(mail)
    assert_no_foreign_markup(page, "html")
    assert "<script>alert(1)</script>" in page.text_content()

    data = json.loads(render_json(story, links))
    assert not CONTROL.search(json.dumps(data, ensure_ascii=False))


# --------------------------------------------------------------------------- real receivers


def channel(url: str) -> Channel:
    return Channel(channel_key(url), url, redact(url))


def send(url: str) -> None:
    target = channel(url)
    Notifier([target], sleep=lambda _s: None).send(target, alert_of(message()))


def test_mattermost_gets_escaped_markdown_with_mentions_broken(webhook_sink: WebhookSink) -> None:
    send(f"mmost://{webhook_sink.host}:{webhook_sink.port}/token1")
    [payload] = webhook_sink.received
    assert webhook_sink.paths == ["/hooks/token1"]
    body = payload["text"]
    assert_inert_text(body, "mattermost")
    assert_no_foreign_markup(rendered_markdown(body), "mattermost")  # Mattermost renders Markdown
    assert "`http://evil.example/beacon.png`" in body, "a page URL is code: no link, no preview fetched"


def test_matrix_gets_html_and_a_plain_fallback_that_notify_nobody(webhook_sink: WebhookSink) -> None:
    """apprise renders Matrix's Markdown with Python-Markdown, which writes a backslash-escaped "&" as a bare
    "&": page text "&#64;room" must still reach the room as those characters, never as "@room" (Matrix
    notifies the whole room on "@room" in the plain body)."""
    send(f"matrix://token1@{webhook_sink.host}:{webhook_sink.port}/?mode=hookshot")
    [payload] = webhook_sink.received
    assert webhook_sink.paths == ["/webhook/token1"]
    page = lxml.html.fromstring(f"<div>{payload['html']}</div>")
    assert_no_foreign_markup(page, "matrix")
    plain = payload["text"].replace("\r\n", "\n", 1)  # apprise's own line break after the title
    for where, shown in (("matrix plain", plain), ("matrix html", page.text_content())):
        assert not CONTROL.search(shown), (where, CONTROL.search(shown))
        assert not BROADCAST.search(shown), (where, BROADCAST.search(shown))  # Slack's <!channel> is text
        assert "Fish &amp; chips &lt;b&gt;bold&lt;/b&gt; &#64;everyone &#64;room &#x40;here." in shown, where


def test_a_json_webhook_gets_inert_plain_text(webhook_sink: WebhookSink) -> None:
    send(webhook_sink.url)
    [payload] = webhook_sink.received
    for field in ("title", "message"):
        assert_inert_text(payload[field], f"json {field}")
    assert "<script>alert(1)</script>" in payload["message"], "plain text, shown as it is"


def test_an_email_is_escaped_html(smtp_server: SmtpSink) -> None:
    send(smtp_server.url())
    [mail] = smtp_server.messages
    body = mail.get_body(preferencelist=("html",))
    assert body is not None
    assert_no_foreign_markup(lxml.html.fromstring(body.get_content()), "e-mail")
    assert not CONTROL.search(mail["Subject"] + body.get_content())


# --------------------------------------------------------------------------- cloud services, intercepted


def test_slack_gets_mrkdwn_with_its_control_sequences_entity_escaped(
    cloud_posts: list[dict[str, Any]],
) -> None:
    send("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#policy")
    [post] = cloud_posts
    body = post["json"]["attachments"][0]["text"]
    assert_inert_text(body, "slack")
    ours = re.compile(
        r"<(?:https://archive\.example\.org/watch/[^|>]+|https://mbasic\.facebook\.com/[^|>]+)\|[^<>]*>"
    )
    assert "<" not in ours.sub("", body), "the only <...> are our own links"
    assert "&lt;!channel&gt;" in body and "&lt;`https://evil.example/phish`\\|the form&gt;" in body


def test_discord_gets_no_ping_and_no_masked_link(cloud_posts: list[dict[str, Any]]) -> None:
    send("discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js")
    [post] = cloud_posts
    payload = post["json"]
    assert "allow_mentions" not in payload and "allowed_mentions" not in payload, (
        "apprise found nobody to ping"
    )
    everything = json.dumps(payload, ensure_ascii=False)
    assert not ACTIVE_MENTION.search(everything.replace("\\u200b", "\u200b"))
    bodies = [payload.get("content") or ""] + [e.get("description", "") for e in payload.get("embeds", [])]
    for body in bodies:
        assert_no_foreign_markup(rendered_markdown(body), "discord")


def test_teams_and_telegram_get_inert_bodies(cloud_posts: list[dict[str, Any]]) -> None:
    send("workflows://prod-01.westus.logic.azure.com:443/abcd1234/signature12345")
    send("tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/-1001234567")
    teams, telegram = cloud_posts[0]["json"], cloud_posts[-1]["json"]
    card = json.dumps(teams, ensure_ascii=False)
    assert not CONTROL.search(card) and "@everyone" not in card and "<script>" not in card
    texts = [b["text"] for b in teams["attachments"][0]["content"]["body"] if b.get("type") == "TextBlock"]
    for body in texts:
        assert_no_foreign_markup(rendered_markdown(body), "teams")
    sent = telegram["text"]
    assert not CONTROL.search(sent) and not re.search(r"@(?:everyone|here|channel|all|room)\b", sent)
    if telegram["parse_mode"] == "HTML":
        assert_no_foreign_markup(lxml.html.fromstring(f"<div>{sent}</div>"), "telegram")
    else:  # Telegram's Markdown: no HTML at all; a link is [text](url) unless its "[" is escaped
        for target in re.findall(r"(?<!\\)\[[^\]]*\]\(([^)]*)\)", sent):
            assert target.startswith(OURS), target


def test_failure_alerts_neutralise_server_text_too(
    webhook_sink: WebhookSink, second_webhook_sink: WebhookSink, cloud_posts: list[dict[str, Any]]
) -> None:
    """A rejection reason and an HTTP reason phrase come from the server: as hostile as page text, for every
    service (Mattermost and Matrix received for real, the cloud services intercepted)."""
    reason = (
        "HTTP 503 <!channel> @everyone &#64;room [login](https://evil.example) ![b](http://e.example/b) "
        "\u202eevil"
    )
    failing = StatusMessage("fb@failing1", "failing", "fb", "Meta", PAGE, message().detected_at, reason, 3)
    for url in (
        f"mmost://{webhook_sink.host}:{webhook_sink.port}/token1",
        f"matrix://token1@{second_webhook_sink.host}:{second_webhook_sink.port}/?mode=hookshot",
        "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#p",
        "discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js",
        "workflows://prod-01.westus.logic.azure.com:443/abcd1234/signature12345",
        "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/-1001234567",
    ):
        target = channel(url)
        Notifier([target], sleep=lambda _s: None).send(target, status_alert_of(failing))
    mattermost = webhook_sink.received[0]["text"]
    matrix = second_webhook_sink.received[0]
    slack, discord, teams, telegram = (post["json"] for post in cloud_posts)
    attachment = slack["attachments"][0]
    for where, body in (
        ("mattermost", mattermost),
        ("slack title", attachment["title"]),
        ("slack text", attachment["text"]),
    ):
        assert_inert_text(body, where)
    blocks = teams["attachments"][0]["content"]["body"]
    for where, markdown_body in (
        ("mattermost", mattermost),
        ("discord", discord["content"]),
        *(("teams", block["text"]) for block in blocks if block.get("type") == "TextBlock"),
    ):
        assert_no_foreign_markup(rendered_markdown(markdown_body), where)
        assert not BROADCAST.search(markdown_body), where
    shown = lxml.html.fromstring(f"<div>{matrix['html']}</div>")
    assert_no_foreign_markup(shown, "matrix failure")
    for where, body in (("matrix html", shown.text_content()), ("matrix plain", matrix["text"])):
        assert not BROADCAST.search(body) and "\u202e" not in body, where
    assert not BROADCAST.search(telegram["text"]) and "\u202e" not in telegram["text"]
    assert "evil.example" not in re.sub(r"`[^`]*`", "", telegram["text"]).replace("\\", ""), "no live link"

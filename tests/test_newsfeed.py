"""Feed targets (`kind = "feed"`): RSS/Atom read safely, new items alert with their link, end to end.

The test feeds use the titles and addresses of real Meta newsroom posts (named in corpus/milestones/
SOURCES.md: the June 2024 pause, the April 2025 resumption) and of other newsroom posts; their summaries are
written for these tests, not Meta's wording. The feed is served by the local page server and checked by the
real pipeline into a real archive; alerts go to a real local webhook.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.harness import cli, cycle, open_archive
from support.pageserver import PageServer, Reply
from support.sinks import WebhookSink
from watchdog.errors import ExtractError
from watchdog.newsfeed import feed_text, read_feed

RESUMPTION = (
    "Making AI Work Harder for Europeans",
    "https://about.fb.com/news/2025/04/making-ai-work-harder-for-europeans/",
    "Test summary: Meta will begin training its AI models on public content shared by adults in the EU; "
    "people can object using a form.",
)
PAUSE = (
    "Building AI Technology for Europeans in a Transparent and Responsible Way",
    "https://about.fb.com/news/2024/06/building-ai-technology-for-europeans-in-a-transparent-and-responsible-way/",
    "Test summary: the EU launch is delayed after the Irish regulator asked for a pause.",
)
THREADS = ("Threads Reaches New Milestone", "https://about.fb.com/news/2025/01/threads-milestone/",
           "Test summary: numbers about an app.")  # fmt: skip
QUEST = ("New Quest Headsets", "https://about.fb.com/news/2025/02/quest-headsets/",
         "Test summary: hardware news.")  # fmt: skip
RSS_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel><title>Meta</title>'


def rss(*items: tuple[str, str, str]) -> str:
    body = "".join(
        f"<item><title>{title}</title><link>{link}?utm_source=rss&amp;utm_medium=rss</link>"
        f"<description><![CDATA[<p>{summary}</p>]]></description></item>"
        for title, link, summary in items
    )
    return f"{RSS_HEAD}{body}</channel></rss>"


# --------------------------------------------------------------------------- reading


def test_rss_items_become_blocks_with_canonical_links() -> None:
    feed = read_feed(rss(RESUMPTION, THREADS).encode(), url="https://about.fb.com/news/feed/")
    assert [i.title for i in feed.items] == [RESUMPTION[0], THREADS[0]]
    text = feed_text(feed)
    assert text.startswith("# Meta\n\n## Making AI Work Harder for Europeans\n<" + RESUMPTION[1] + ">\n")
    assert "utm_" not in text and "<p>" not in text


def test_atom_and_rss1_are_read_too() -> None:
    atom = (
        '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>News</title>'
        f'<entry><title>{PAUSE[0]}</title><link rel="alternate" href="{PAUSE[1]}"/>'
        f'<summary type="html">&lt;b&gt;{PAUSE[2]}&lt;/b&gt;</summary></entry></feed>'
    )
    rdf = (
        '<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        'xmlns="http://purl.org/rss/1.0/"><channel><title>News</title></channel>'
        f"<item><title>{THREADS[0]}</title><link>{THREADS[1]}</link><description>{THREADS[2]}</description>"
        "</item></rdf:RDF>"
    )
    (entry,) = read_feed(atom.encode(), url="https://x.org/").items
    assert (entry.title, entry.link, entry.summary) == PAUSE
    (item,) = read_feed(rdf.encode(), url="https://x.org/").items
    assert (item.title, item.link, item.summary) == THREADS


@pytest.mark.parametrize(
    "hostile",
    [
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]><rss><channel><title>&c;</title></channel></rss>',
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        "<rss><channel><title>&x;</title></channel></rss>",
        '<?xml version="1.0"?><!DOCTYPE rss SYSTEM "http://127.0.0.1:9/evil.dtd"><rss><channel/></rss>',
    ],
    ids=["billion-laughs", "external-entity-file", "external-dtd"],
)
def test_hostile_xml_is_refused_not_expanded(hostile: str) -> None:
    with pytest.raises(ExtractError, match="refused as unsafe"):
        read_feed(hostile.encode(), url="https://x.org/")


@pytest.mark.parametrize(
    "broken", ["<html><body>not a feed</body></html>", "<rss><channel><title>cut", ""], ids=str
)
def test_not_a_feed_is_unreadable(broken: str) -> None:
    with pytest.raises(ExtractError):
        read_feed(broken.encode(), url="https://x.org/")


# --------------------------------------------------------------------------- end to end


def write_config(tmp_path: Path, base_url: str, channel: str) -> Path:
    path = tmp_path / "watchdog.toml"
    path.write_text(
        "\n".join(
            [
                '[storage]\ndir = "archive"\n[fetch]\nretries = 0\ntimeout = 5\n',
                "[[targets]]",
                'id = "newsroom"',
                'kind = "feed"',
                f'url = "{base_url}/news/feed/"',
                'confirm_delay = "0s"',
                "min_length = 20",
                "[[channels]]",
                f"url = {json.dumps(channel)}",
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    return path


def serve(server: PageServer, feed: str) -> None:
    server.set(
        "/news/feed/", Reply(body=feed, headers={"Content-Type": "application/rss+xml; charset=UTF-8"})
    )


def test_a_new_post_on_ai_training_alerts_with_its_link(
    page_server: PageServer, webhook_sink: WebhookSink, tmp_path: Path
) -> None:
    config = write_config(tmp_path, page_server.base_url, webhook_sink.url)
    serve(page_server, rss(THREADS, QUEST))
    assert cycle(config)[0].status == "new"

    serve(page_server, rss(RESUMPTION, THREADS))  # a new post on top; the oldest falls off the window
    (outcome,) = cycle(config)
    assert outcome.status == "changed" and outcome.alerted
    assert {"ai-training", "opt-out"} <= set(outcome.topics)
    (alert,) = webhook_sink.received
    assert RESUMPTION[1] in alert["message"]
    assert "Quest" not in alert["title"]
    _config, store = open_archive(config)
    with store:
        evidence = store.archive.change_evidence(outcome.change or "")
    assert evidence and all(e["side"] == "inserted" for e in evidence)

    serve(page_server, rss(RESUMPTION))  # an item only falls off: archived, nobody alerted
    (quiet,) = cycle(config)
    assert (quiet.status, quiet.topics, quiet.alerted) == ("changed", (), False)
    assert len(webhook_sink.received) == 1


def test_a_hostile_feed_is_rejected_and_the_archive_keeps_its_version(
    page_server: PageServer, webhook_sink: WebhookSink, tmp_path: Path
) -> None:
    config = write_config(tmp_path, page_server.base_url, webhook_sink.url)
    serve(page_server, rss(PAUSE, THREADS))
    assert cycle(config)[0].status == "new"
    serve(page_server, '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "x">]><rss><channel/></rss>')
    (outcome,) = cycle(config)
    assert (outcome.status, outcome.version) == ("rejected", "newsroom@v1")
    assert "refused as unsafe" in (outcome.reason or "")
    assert webhook_sink.received == []


def test_follow_adds_a_new_post_on_a_topic_as_a_target_of_its_own(
    page_server: PageServer, webhook_sink: WebhookSink, tmp_path: Path
) -> None:
    config = write_config(tmp_path, page_server.base_url, webhook_sink.url)
    config.write_text(config.read_text().replace('kind = "feed"\n', 'kind = "feed"\nfollow = true\n'))
    post = page_server.url("/news/2025/04/making-ai-work-harder-for-europeans/")
    resumption = (RESUMPTION[0], post, RESUMPTION[2])
    serve(page_server, rss(THREADS, QUEST))
    assert cycle(config)[0].status == "new"
    serve(page_server, rss(resumption, THREADS, QUEST))
    (outcome,) = cycle(config)
    followed = "newsroom-making-ai-work-harder-for-europeans"
    assert outcome.extra["followed"] == [followed]
    stored = json.loads((tmp_path / "archive" / "followed-targets.json").read_text())
    assert [(f["id"], f["url"], f["name"], f["feed"]) for f in stored] == [
        (followed, post, RESUMPTION[0], "newsroom")
    ]

    # the next run watches the post itself: its <article>, not the site around it
    page_server.set(
        "/news/2025/04/making-ai-work-harder-for-europeans/",
        Reply(
            body="<html><body><nav>Newsroom menu</nav><article><h1>Making AI Work Harder for Europeans</h1>"
            "<p>Test body: from today we will train AI at Meta with public content from adults in the EU, "
            "and everyone can object.</p>"
            + "<p>More test text about the plans.</p>" * 10
            + "</article><footer>Meta 2025</footer></body></html>"
        ),
    )
    result = cli("--config", str(config), "check", "--json")
    rows = {row["target"]: row for row in map(json.loads, result.stdout.splitlines())}
    assert rows[followed]["status"] == "new", result.stdout + result.stderr
    assert rows["newsroom"]["status"] == "unchanged"
    _config, store = open_archive(config)
    with store:
        text = store.archive.version_text(f"{followed}@v1")
    assert text.startswith("# Making AI Work Harder for Europeans") and "Newsroom menu" not in text

    # the same item seen again (or another change of the feed) does not add it twice
    serve(page_server, rss(resumption, THREADS))
    cycle(config)
    assert len(json.loads((tmp_path / "archive" / "followed-targets.json").read_text())) == 1

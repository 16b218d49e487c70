"""Config: every problem is reported with its file, its key and what is wrong; good configs load."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from watchdog.config import bundled_config_dir, load_config, parse_duration
from watchdog.errors import ConfigError

GOOD = """
[storage]
dir = "state"

[[targets]]
id = "meta-privacy-policy"
url = "https://mbasic.facebook.com/privacy/policy/printable/"
select = ["#root"]
interval = "6h"
topics = ["opt-out"]
confirm_delay = "0s"
notify = "all"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "watchdog.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> list[tuple[str, str]]:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ=environ or {})
    assert all(p.file == str(path) for p in info.value.problems), "every problem names the file"
    return [(p.key, p.message) for p in info.value.problems]


def test_good_config_loads_with_relative_storage_dir(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD), environ={})
    assert config.storage_dir == tmp_path / "state"
    (target,) = config.targets
    assert target.name == "meta-privacy-policy"  # name defaults to id
    assert target.select == ("#root",)
    assert target.interval == timedelta(hours=6)
    assert target.confirm_delay == timedelta(0)
    assert target.topics == ("opt-out",)
    assert {t.id for t in config.topics} >= {
        "ai-training",
        "public-data",
        "opt-out",
        "eu-pause",
        "legal-basis",
    }


def test_bundled_default_config_loads_and_watches_the_real_pages() -> None:
    config = load_config(bundled_config_dir() / "watchdog.toml", environ={"HOME": "/nonexistent"})
    urls = {t.url for t in config.targets}
    assert "https://mbasic.facebook.com/privacy/policy/printable/" in urls
    assert "https://mbasic.facebook.com/privacy/genai/" in urls
    assert "https://privacycenter.instagram.com/policy" in urls
    assert "https://www.dataprotection.ie/en/news-media/latest-news/dpc-statement-meta-ai" in urls
    assert any("cnil.fr/fr/" in u for u in urls) and any("about.fb.com/news/2024/06" in u for u in urls)
    assert config.path is None and config.storage_dir == Path("/nonexistent/.local/state/policy-watchdog")


BROKEN = [
    pytest.param(
        '[[targets]]\nid = "a"\nurl = "https://x.org/"\nselet = ["#root"]\n',
        "targets[a].selet",
        "unknown key (did you mean 'select'?)",
        id="typo-in-key",
    ),
    pytest.param(
        '[[targets]]\nid = "a"\nurl = "https://x.org/"\ninterval = 6\nselect = "main"\nmin_length = "200"\n',
        "targets[a].min_length",
        "must be an integer, got a string",
        id="wrong-type",
    ),
    pytest.param(
        '[[targets]]\nid = "a"\nurl = "https://x.org/"\n[[targets]]\nid = "a"\nurl = "https://y.org/"\n',
        "targets[a].id",
        "duplicate target id",
        id="duplicate-id",
    ),
    pytest.param(
        '[[targets]]\nid = "Meta Policy"\nurl = "https://x.org/"\n',
        "targets[0].id",
        "malformed id",
        id="malformed-id",
    ),
    pytest.param(
        '[[targets]]\nid = "a"\nurl = "ftp://x.org/"\n', "targets[a].url", "not an http(s) URL", id="bad-url"
    ),
    pytest.param(
        '[[targets]]\nid = "a"\nurl = "https://x.org/"\nselect = ["div[[x"]\n',
        "targets[a].select[0]",
        "invalid CSS selector",
        id="bad-selector",
    ),
    pytest.param(
        '[[targets]]\nid = "a"\nurl = "https://x.org/"\ninterval = "6 hours"\n',
        "targets[a].interval",
        "bad duration",
        id="bad-interval",
    ),
    pytest.param(
        '[[channels]]\nurl = "mailto://u:${SMTP_PASSWORD}@smtp.example.org"\n',
        "channels[0].url",
        "environment variable ${SMTP_PASSWORD} is not set",
        id="missing-env",
    ),
    pytest.param(
        '[[targets]]\nid = "a"\nurl = "https://x.org/"\ntopics = ["opt-outt"]\n',
        "targets[a].topics[0]",
        "unknown topic 'opt-outt'",
        id="unknown-topic",
    ),
    pytest.param(
        '[[targets]]\nid = "a"\nurl = "https://x.org/"\nfetcher = "curl"\n',
        "targets[a].fetcher",
        "must be one of http, browser, auto",
        id="bad-fetcher",
    ),
    pytest.param(
        '[[topics]]\nid = "x"\nseverity = "urgent"\npatterns = ["("]\n',
        "topics[x].patterns[0]",
        "invalid regular expression",
        id="bad-regex",
    ),
    pytest.param('[[targets]]\nname = "no id"\n', "targets[0].id", "missing (required)", id="missing-id"),
    pytest.param('[storage]\ndir = "x"\n[[targets]\n', "-", "not valid TOML", id="toml-syntax"),
    pytest.param("[storge]\n", "storge", "unknown key (did you mean 'storage'?)", id="typo-in-section"),
    pytest.param(
        '[[targets]]\nid = "a"\nurl = "https://x.org/"\nmax_shrink = 1.5\n',
        "targets[a].max_shrink",
        "fraction between 0 and 1",
        id="bad-fraction",
    ),
    pytest.param(
        '[[targets]]\nid = "a"\nurl = "https://x.org/"\n[[targets.alternatives]]\nremove = ["nav"]\n',
        "targets[a].alternatives[0].select",
        "missing (required)",
        id="alternative-without-select",
    ),
    pytest.param(
        '[[targets]]\nid = "a"\nurl = "https://x.org/"\n'
        '[[targets.alternatives]]\nselect = ["main"]\nremov = []\n',
        "targets[a].alternatives[0].remov",
        "unknown key (did you mean 'remove'?)",
        id="alternative-typo",
    ),
    pytest.param(
        '[[targets]]\nid = "a"\nurl = "https://x.org/"\nalternatives = [{ select = ["div[[x"] }]\n',
        "targets[a].alternatives[0].select[0]",
        "invalid CSS selector",
        id="alternative-bad-selector",
    ),
    pytest.param(
        '[[targets]]\nid = "a"\nurl = "https://x.org/"\nalternatives = ["main"]\n',
        "targets[a].alternatives[0]",
        "must be a table",
        id="alternative-not-a-table",
    ),
    pytest.param(
        '[[targets]]\nid = "a"\nurl = "https://x.org/"\nwatch_links = ["help/contact/1"]\n',
        "targets[a].watch_links[0]",
        "not an http(s) URL or URL pattern",
        id="watch-link-not-a-url",
    ),
    pytest.param(
        '[[targets]]\nid = "a"\nurl = "https://x.org/"\nkind = "podcast"\n',
        "targets[a].kind",
        "must be one of page, feed",
        id="bad-kind",
    ),
    pytest.param(
        '[[targets]]\nid = "a"\nurl = "https://x.org/feed/"\nkind = "feed"\nselect = ["main"]\n',
        "targets[a].select",
        'has no effect on a target of kind "feed"',
        id="feed-with-select",
    ),
    pytest.param(
        '[[targets]]\nid = "a"\nurl = "https://x.org/feed/"\nkind = "feed"\nfetcher = "browser"\n',
        "targets[a].fetcher",
        'a target of kind "feed" is fetched with "http"',
        id="feed-with-browser",
    ),
    pytest.param(
        '[[targets]]\nid = "a"\nurl = "https://x.org/"\nfollow = true\n',
        "targets[a].follow",
        'only a target of kind "feed" can follow its items',
        id="follow-on-a-page",
    ),
]


def test_alternatives_watch_links_and_feed_kind_load(tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_text(
        '[[targets]]\nid = "a"\nurl = "https://x.org/"\nselect = ["#root"]\n'
        'watch_links = ["https://www.facebook.com/help/contact/*"]\n'
        '[[targets.alternatives]]\nselect = ["main"]\nremove = ["nav"]\n'
        '[[targets.alternatives]]\nselect = ["[role=main]"]\n'
        '[[targets]]\nid = "news"\nurl = "https://x.org/feed/"\nkind = "feed"\n'
    )
    config = load_config(path, environ={"HOME": str(tmp_path)})
    page, feed = config.targets
    assert [(a.select, a.remove) for a in page.alternatives] == [
        (("main",), ("nav",)),
        (("[role=main]",), ()),
    ]
    assert page.watch_links == ("https://www.facebook.com/help/contact/*",)
    assert (page.kind, feed.kind) == ("page", "feed")


@pytest.mark.parametrize(("text", "key", "message"), BROKEN)
def test_broken_config_names_file_key_and_problem(tmp_path: Path, text: str, key: str, message: str) -> None:
    found = problems(tmp_path, text)
    assert any(k == key and message in m for k, m in found), found


def test_every_problem_is_reported_not_just_the_first(tmp_path: Path) -> None:
    text = '[[targets]]\nid = "a"\nurl = "nope"\ninterval = "soon"\nselect = ["::bad("]\ncolour = 1\n'
    keys = {k for k, _ in problems(tmp_path, text)}
    assert {"targets[a].url", "targets[a].interval", "targets[a].select[0]", "targets[a].colour"} <= keys


def test_environment_variables_expand_and_channel_identity_hides_secrets(tmp_path: Path) -> None:
    text = (
        GOOD + '[[channels]]\nurl = "mailtos://alerts:${SMTP_PASSWORD}@smtp.example.org"\ntags = ["high"]\n'
    )
    config = load_config(write(tmp_path, text), environ={"SMTP_PASSWORD": "s3cr3t-value"})
    (channel,) = config.channels
    assert "s3cr3t-value" in channel.url
    assert "s3cr3t-value" not in channel.label and "s3cr3t-value" not in channel.key
    other = load_config(write(tmp_path, text), environ={"SMTP_PASSWORD": "rotated"})
    assert other.channels[0].key == channel.key, (
        "rotating a secret keeps the channel's identity (outbox rows)"
    )


def test_user_topics_replace_and_extend_bundled_ones(tmp_path: Path) -> None:
    text = GOOD + '[[topics]]\nid = "opt-out"\ntitle = "Mine"\nseverity = "low"\npatterns = ["x"]\n'
    text += '[[topics]]\nid = "biometrics"\ntitle = "Faces"\nseverity = "high"\n'
    text += 'patterns = ["facial recognition"]\n'
    topics = {t.id: t for t in load_config(write(tmp_path, text), environ={}).topics}
    assert topics["opt-out"].title == "Mine" and topics["opt-out"].patterns == ("x",)
    assert "biometrics" in topics and "ai-training" in topics


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("6h", 21600),
        ("90s", 90),
        ("1h30m", 5400),
        ("2.5d", 216000),
        ("0s", 0),
        ("6 hours", None),
        ("", None),
        ("h", None),
    ],
)
def test_parse_duration(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


def test_config_check_command_exit_codes_and_no_traceback(tmp_path: Path) -> None:
    bad = write(tmp_path, '[[targets]]\nid = "a"\nurl = "https://x.org/"\nselet = []\ninterval = "x"\n')
    result = subprocess.run(
        [sys.executable, "-m", "watchdog", "--config", str(bad), "config", "check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert f"error: {bad}: targets[a].selet: unknown key (did you mean 'select'?)" in lines
    assert any("targets[a].interval: bad duration" in line for line in lines)
    good = write(tmp_path, GOOD)
    ok = subprocess.run(
        [sys.executable, "-m", "watchdog", "--config", str(good), "config", "check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert "ok (1 targets" in ok.stdout


def test_missing_config_file_is_a_clean_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "watchdog", "--config", str(tmp_path / "nope.toml"), "check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2 and "file not found" in result.stderr and "Traceback" not in result.stderr

"""Config validation against malformed and hostile values (issue 11, point 2; channels: point 5).

Every numeric and duration setting has a range (finite, an upper bound the scheduler and `datetime` can
represent), header values are printable ASCII, URLs are parsed strictly, and every channel URL is loaded
with apprise by `config check`. Each row of the table is one config; `policy-watchdog config check` must
exit 2 and print one line naming the file, the key and the reason, never a traceback. Before this, rows
such as `jitter = inf`, `timeout = nan` or `max_growth = nan` passed `config check` (and crashed or
silently disabled the daemon later) and `interval = "99999999999d"`, the 400-digit duration,
`revert_window = "999999999999d"` and `url = "http://[::1/"` made `config check` itself crash.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.daemon import Daemons, NotifySocket, Watched, policy_page, wait_until, write_daemon_config
from support.pageserver import PageServer
from watchdog.cli import main
from watchdog.config import CONFIRM_DELAY, FETCH_BOUNDS, load_config
from watchdog.daemon import STUCK_AFTER
from watchdog.errors import ConfigError

T = '[[targets]]\nid = "a"\nurl = "https://example.org/policy"\n'  # a target to hang target keys on


def row(text: str, key: str, fragment: str, name: str) -> object:
    return pytest.param(text, key, fragment, id=name)


MALFORMED = [
    # [daemon]
    row("[daemon]\njitter = inf\n", "daemon.jitter", "must be a finite number, got inf", "jitter-inf"),
    row("[daemon]\njitter = nan\n", "daemon.jitter", "must be a finite number, got nan", "jitter-nan"),
    row("[daemon]\njitter = -inf\n", "daemon.jitter", "finite", "jitter-minus-inf"),
    row("[daemon]\njitter = 2\n", "daemon.jitter", "between 0 and 1, got 2", "jitter-above-one"),
    row("[daemon]\njitter = -0.1\n", "daemon.jitter", "between 0 and 1", "jitter-negative"),
    row("[daemon]\nmax_workers = 0\n", "daemon.max_workers", "between 1 and 64", "workers-zero"),
    row("[daemon]\nmax_workers = 100000\n", "daemon.max_workers", "between 1 and 64", "workers-huge"),
    row("[daemon]\nmax_workers = 1.5\n", "daemon.max_workers", "must be an integer", "workers-float"),
    # durations
    row(T + 'interval = "3000000d"\n', "targets[a].interval", "between 1s and 366d", "interval-3000000d"),
    row(T + 'interval = "99999999999d"\n', "targets[a].interval", "between 1s and 366d", "interval-1e11d"),
    row(T + f'interval = "{"9" * 400}s"\n', "targets[a].interval", "(403 characters)", "interval-400-digits"),
    row(T + 'interval = "0s"\n', "targets[a].interval", "between 1s and 366d, got '0s'", "interval-zero"),
    row(T + 'interval = "0.5s"\n', "targets[a].interval", "between 1s", "interval-half-second"),
    row(T + 'interval = "-5m"\n', "targets[a].interval", "bad duration '-5m'", "interval-negative"),
    row(T + 'interval = "1e9s"\n', "targets[a].interval", "bad duration", "interval-exponent"),
    row(T + 'interval = "inf"\n', "targets[a].interval", "bad duration 'inf'", "interval-inf-text"),
    row(T + "interval = 6\n", "targets[a].interval", "must be a duration string", "interval-bare-number"),
    row(T + 'confirm_delay = "1h"\n', "targets[a].confirm_delay", "between 0s and 5m", "confirm-delay-1h"),
    row(
        '[alerts]\nrevert_window = "999999999999d"\n',
        "alerts.revert_window",
        "between 0s and 3660d",
        "revert-window-huge",
    ),
    row("[alerts]\nrevert_window = 30\n", "alerts.revert_window", "duration string", "revert-window-number"),
    row("[alerts]\nfeed_entries = 0\n", "alerts.feed_entries", "between 1 and 1000", "feed-entries-zero"),
    # [fetch] numbers
    row("[fetch]\ntimeout = nan\n", "fetch.timeout", "must be a finite number, got nan", "timeout-nan"),
    row("[fetch]\ntimeout = inf\n", "fetch.timeout", "finite", "timeout-inf"),
    row("[fetch]\ntimeout = 0\n", "fetch.timeout", "between 0.1 and 300, got 0", "timeout-zero"),
    row("[fetch]\ntimeout = -1\n", "fetch.timeout", "between 0.1 and 300", "timeout-negative"),
    row("[fetch]\ntimeout = 1e308\n", "fetch.timeout", "between 0.1 and 300", "timeout-1e308"),
    row(
        f"[fetch]\nmax_bytes = 1{'0' * 400}\n", "fetch.max_bytes", "(401 characters)", "max-bytes-400-digits"
    ),
    row("[fetch]\nattempt_deadline = 0\n", "fetch.attempt_deadline", "between 1 and 300", "attempt-zero"),
    row("[fetch]\ndeadline = 100000\n", "fetch.deadline", "between 1 and 300", "deadline-huge"),
    row("[fetch]\nmax_bytes = 100\n", "fetch.max_bytes", "between 1024 and", "max-bytes-tiny"),
    row("[fetch]\nmax_redirects = -1\n", "fetch.max_redirects", "between 0 and 20", "redirects-negative"),
    row("[fetch]\nretries = 1000\n", "fetch.retries", "between 0 and 10", "retries-huge"),
    row("[fetch]\nbackoff = nan\n", "fetch.backoff", "finite", "backoff-nan"),
    row("[fetch]\nmax_retry_after = inf\n", "fetch.max_retry_after", "finite", "retry-after-inf"),
    # [alerts], [validate], target numbers
    row("[alerts]\nfailure_threshold = 0\n", "alerts.failure_threshold", "between 1 and", "threshold-zero"),
    row("[validate]\nmax_growth = nan\n", "validate.max_growth", "finite number, got nan", "max-growth-nan"),
    row(
        "[validate]\nmax_growth = 0.5\n", "validate.max_growth", "between 1 and 1000", "max-growth-below-one"
    ),
    row(T + "max_shrink = nan\n", "targets[a].max_shrink", "between 0 and 1, got nan", "max-shrink-nan"),
    row(
        T + "max_shrink = 1.5\n", "targets[a].max_shrink", "fraction between 0 and 1", "max-shrink-above-one"
    ),
    row(T + "min_length = -1\n", "targets[a].min_length", "between 0 and", "min-length-negative"),
    row(T + "min_length = 1e3\n", "targets[a].min_length", "must be an integer", "min-length-float"),
    row(T + "keep_links = 1\n", "targets[a].keep_links", "true or false", "keep-links-number"),
    # header values
    row(
        '[fetch]\nuser_agent = "watchdog\\r\\nX-Injected: 1"\n',
        "fetch.user_agent",
        "'\\r' at position 8 cannot go in an HTTP header",
        "user-agent-crlf",
    ),
    row('[fetch]\nuser_agent = ""\n', "fetch.user_agent", "must not be empty", "user-agent-empty"),
    row(T + 'user_agent = "a\\nb"\n', "targets[a].user_agent", "printable ASCII", "target-user-agent-lf"),
    row(
        T + 'accept_language = "en\\r\\nCookie: x"\n',
        "targets[a].accept_language",
        "cannot go in an HTTP header",
        "accept-language-crlf",
    ),
    row(
        T + 'accept_language = "français"\n', "targets[a].accept_language", "'ç'", "accept-language-non-ascii"
    ),
    row(T + 'name = "Meta\\nPolicy"\n', "targets[a].name", "one line", "name-newline"),
    # URLs
    row(
        '[[targets]]\nid = "a"\nurl = "http://[::1/"\n',
        "targets[a].url",
        "Invalid IPv6 URL",
        "url-open-bracket",
    ),
    row(
        '[[targets]]\nid = "a"\nurl = "http://[::1]:99999/"\n',
        "targets[a].url",
        "Port out of range",
        "url-port-range",
    ),
    row(
        '[[targets]]\nid = "a"\nurl = "http://x.org:abc/"\n',
        "targets[a].url",
        "malformed URL",
        "url-port-text",
    ),
    row('[[targets]]\nid = "a"\nurl = "http://x.org:0/"\n', "targets[a].url", "port 0", "url-port-zero"),
    row(
        '[[targets]]\nid = "a"\nurl = "http://exa mple.com/"\n', "targets[a].url", "contains ' '", "url-space"
    ),
    row('[[targets]]\nid = "a"\nurl = "http://300.1.1.1/"\n', "targets[a].url", "invalid IP", "url-bad-ipv4"),
    row(
        '[[targets]]\nid = "a"\nurl = "http://a..b/"\n',
        "targets[a].url",
        "invalid host name",
        "url-empty-label",
    ),
    row(
        '[[targets]]\nid = "a"\nurl = "http://-x-.org/"\n',
        "targets[a].url",
        "invalid host name",
        "url-hyphen",
    ),
    row('[[targets]]\nid = "a"\nurl = "http:///p"\n', "targets[a].url", "not an http(s) URL", "url-no-host"),
    row('[[targets]]\nid = "a"\nurl = "javascript:alert(1)"\n', "targets[a].url", "not an http(s)", "url-js"),
    row(
        '[alerts]\narchive_url = "http://[::1/"\n',
        "alerts.archive_url",
        "Invalid IPv6",
        "archive-url-bracket",
    ),
    # storage, TOML itself
    row('[storage]\ndir = "a\\u0000b"\n', "storage.dir", "not a usable folder name", "storage-dir-nul"),
    row('[storage]\nurl = "mysql://h/db"\n', "storage.url", "not a PostgreSQL URL", "storage-url-scheme"),
    row(
        '[storage]\nurl = "postgresql://h:99999/db"\n', "storage.url", "Port out of range", "storage-url-port"
    ),
    row('[storage]\nurl = "postgresql://h/db?nope=1"\n', "storage.url", '"nope"', "storage-url-parameter"),
    row('[storage]\nurl = "postgresql://h/${NO_SUCH_VAR}"\n', "storage.url", "is not set", "storage-url-var"),
    row('[storage]\nnode = "two words"\n', "storage.node", "not a node name", "storage-node-space"),
    row('[storage]\nlease = "1s"\n', "storage.lease", "between 2s and 1h", "storage-lease-short"),
    row(f"[fetch]\nretries = 1{'0' * 5000}\n", "-", "not valid TOML", "integer-past-python-limit"),
    # channels apprise cannot load (point 5)
    row(
        '[[channels]]\nurl = "nosuchscheme://x"\n',
        "channels[0].url",
        "apprise cannot use it",
        "channel-scheme",
    ),
    row(
        '[[channels]]\nurl = "mailto://"\n', "channels[0].url", "Could not load E-Mail URL", "channel-no-host"
    ),
    row('[[channels]]\nurl = "json://"\n', "channels[0].url", "Unparseable JSON URL", "channel-json-no-host"),
]


@pytest.mark.parametrize(("text", "key", "fragment"), MALFORMED)
def test_config_check_names_file_key_and_reason_for_each_malformed_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, key: str, fragment: str
) -> None:
    path = tmp_path / "watchdog.toml"
    path.write_text(text, encoding="utf-8")
    assert main(["--config", str(path), "config", "check"]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith(f"error: {path}: {key}: ")]
    assert any(fragment in line for line in lines), err
    assert "Traceback" not in err


def test_the_table_has_forty_rows_and_covers_every_case_of_the_issue() -> None:
    names = {p.id for p in MALFORMED}  # type: ignore[attr-defined]
    assert len(MALFORMED) >= 40
    issue = {"jitter-inf", "interval-3000000d", "interval-1e11d", "interval-400-digits", "revert-window-huge"}
    issue |= {"url-open-bracket", "timeout-nan", "max-growth-nan", "user-agent-crlf", "accept-language-crlf"}
    issue |= {"channel-scheme", "channel-no-host"}
    assert issue <= names


def test_config_check_in_a_real_process_exits_2_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "watchdog.toml"
    path.write_text(T + 'interval = "99999999999d"\n[daemon]\njitter = inf\n', encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "watchdog", "--config", str(path), "config", "check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f"error: {path}: targets[a].interval: must be between 1s and 366d" in result.stderr
    assert f"error: {path}: daemon.jitter: must be a finite number, got inf" in result.stderr


def test_the_largest_accepted_values_are_usable_by_the_scheduler(tmp_path: Path) -> None:
    path = tmp_path / "watchdog.toml"
    path.write_text(
        T + 'interval = "366d"\nconfirm_delay = "5m"\n'
        '[daemon]\njitter = 1\n[alerts]\nrevert_window = "3660d"\n',
        encoding="utf-8",
    )
    config = load_config(path, environ={})
    (target,) = config.targets
    now = datetime(9000, 1, 1, tzinfo=UTC)  # far in the future, and still nothing overflows
    assert now + target.interval * (1 + config.daemon.jitter) > now
    assert now - config.alerts.revert_window < now
    longest_check = 2 * 2 * FETCH_BOUNDS["deadline"].high + CONFIRM_DELAY.high  # "auto", confirmed
    assert longest_check < STUCK_AFTER, "a check within the bounds is never taken for a stuck one"


# ---------------------------------------------------------------------------- any value, no traceback

KEYS = (
    [("fetch", key) for key in [*FETCH_BOUNDS, "user_agent", "private_redirects"]]
    + [
        ("daemon", "jitter"),
        ("daemon", "max_workers"),
        ("alerts", "failure_threshold"),
        ("alerts", "revert_window"),
        ("alerts", "archive_url"),
        ("validate", "max_growth"),
        ("storage", "dir"),
        ("storage", "url"),
        ("storage", "node"),
        ("storage", "lease"),
    ]
    + [
        ("target", key)
        for key in (
            "url",
            "name",
            "interval",
            "confirm_delay",
            "accept_language",
            "user_agent",
            "min_length",
            "max_shrink",
            "keep_links",
            "ready",
            "select",
        )
    ]
)

SCALARS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.from_regex(r"\A-?[0-9]{1,40}(\.[0-9]{1,5})?[smhd]\Z"),
    st.booleans(),
)
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3))


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)  # JSON string escapes are TOML basic-string escapes


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(choice=st.sampled_from(KEYS), value=VALUES)
def test_any_value_for_any_key_loads_or_is_a_config_error(
    tmp_path: Path, choice: tuple[str, str], value: object
) -> None:
    section, key = choice
    line = f"{key} = {toml_value(value)}\n"
    text = (T + line) if section == "target" else f"[{section}]\n{line}"
    path = tmp_path / "fuzz.toml"
    path.write_text(text, encoding="utf-8")
    try:
        load_config(path, environ={})
    except ConfigError as exc:
        assert exc.problems and all(p.file == str(path) for p in exc.problems)


# ---------------------------------------------------------------------------- SIGHUP with a bad config


def test_sighup_with_the_issues_crashing_values_keeps_the_daemon_checking(
    page_server: PageServer, tmp_path: Path
) -> None:
    page_server.set("/a", policy_page(1))
    config = write_daemon_config(tmp_path, page_server.base_url, [Watched("a", "/a")])
    group = Daemons(config, tmp_path)
    with NotifySocket() as notify:
        try:
            run = group.start(notify=notify)
            assert wait_until(lambda: notify.count("READY=1") == 1 and page_server.hits("/a") >= 1, 15)
            good = config.read_text(encoding="utf-8")
            variants = [
                ("[daemon]\njitter = inf\n" + good, "daemon.jitter: must be a finite number, got inf"),
                (good.replace('"1s"', '"3000000d"'), "targets[a].interval: must be between 1s and 366d"),
                (
                    good.replace("timeout = 5", "timeout = nan"),
                    "fetch.timeout: must be a finite number, got nan",
                ),
                # valid, but a reload cannot apply it: the archive cannot move under a running daemon
                (good.replace('dir = "archive"', 'dir = "elsewhere"'), "storage.dir changed"),
            ]
            for n, (text, logged) in enumerate(variants, start=2):
                config.write_text(text, encoding="utf-8")
                run.send(signal.SIGHUP)
                assert wait_until(lambda n=n: notify.count("READY=1") == n, 10), run.log()
                assert wait_until(lambda logged=logged: logged in run.log(), 5), run.log()
                hits = page_server.hits("/a")
                assert wait_until(lambda hits=hits: page_server.hits("/a") >= hits + 2, 10), run.log()
            assert run.running()
            log = run.log()
            assert log.count("still running the previous") == len(variants), log
            assert "Traceback" not in log, log
            assert run.stop() == 0
        finally:
            group.close()

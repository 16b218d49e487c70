"""Start-up of `check` (issue 14): what it loads before its first request, proven by module, not by time.

The real command runs in a fresh interpreter against the local page server; a hook on socket.connect
records `sys.modules` when the first request opens its connection. The heavy libraries of the stages an
unchanged cycle does not reach before that point (rendering, delivery, publishing, the parser of record,
the diff engines, the browser, PostgreSQL) and the modules of the other commands must not be there: each
would add its import to every `check`. Timing lives in bench/bench_check.py (start-up column).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from support.corpus import corpus_markdown, render_page
from support.pageserver import PageServer
from watchdog import archived, claims, messages, models, results
from watchdog.classify import compile_topics
from watchdog.cli import COMMANDS, build_parser, command_named
from watchdog.config import bundled_config_dir, load_config
from watchdog.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent

# Runs `policy-watchdog check` in this interpreter; at the first connect, the loaded modules go to argv[2].
FIRST_REQUEST = r"""
import json, socket, sys
connect = socket.socket.connect
def first_connect(self, address):
    socket.socket.connect = connect
    with open(sys.argv[2], "w") as out:
        json.dump(sorted(sys.modules), out)
    return connect(self, address)
socket.socket.connect = first_connect
from watchdog.cli import main
raise SystemExit(main(["--config", sys.argv[1], "check", "--json"]))
"""

# Third-party libraries no unchanged page needs before its first request (top-level package names).
HEAVY = (
    "apprise",  # delivery
    "jinja2",  # rendering, the site
    "markdown_it",  # rendering
    "bs4",  # the parser of record (the fast reader decides first, after the fetch)
    "soupsieve",
    "lxml",  # the fast reader: after the fetch
    "diff_match_patch",  # the diff engines: a changed page only
    "fast_diff_match_patch",
    "playwright",  # the browser fetcher: browser targets only
    "psycopg",  # PostgreSQL: a postgresql:// archive only
    "psycopg_pool",
    "click",  # httpx's command-line client (httpx imports it when it can)
    "pygments",
    "rich",
    "tenacity",  # the fetcher's retries: only after a first attempt that failed (fetchers/retries.py)
)
# Our own modules of the other commands and of the stages after the requests or after a change.
OWN = (
    "watchdog.archive_copy",
    "watchdog.classify",
    "watchdog.cssxpath",  # the readers of a page: after its response (a 304 needs none)
    "watchdog.daemon",
    "watchdog.demo",
    "watchdog.diff",
    "watchdog.extract",  # the extractor: with the first response read (config loading needs csscheck only)
    "watchdog.digest",
    "watchdog.doctor",
    "watchdog.fastread",
    "watchdog.fetchers.browser",
    "watchdog.fetchers.retries",
    "watchdog.importers",
    "watchdog.kinds",
    "watchdog.links",
    "watchdog.messages",  # a change's diff, classification, messages and alerts: built after the requests
    "watchdog.archived",  # the hash chain read back, imports, the sentence index
    "watchdog.claims",  # leasing targets: the daemon's, a shared archive's
    "watchdog.results",  # a page read, the check's write and its outcome: after the requests
    "watchdog.normalise",
    "watchdog.publish",
    "watchdog.render",
    "watchdog.reextract",
    # the storage's parts a check uses after its requests, or never: reading the archive back, the outbox,
    # imports, copy-archive
    "watchdog.storage.import_write",
    "watchdog.storage.interfaces",  # the protocols: annotations only
    "watchdog.storage.outbox",
    "watchdog.storage.reader",
    "watchdog.storage.sqlite.archive",
    "watchdog.storage.sqlite.imports",
    "watchdog.storage.sqlite.outbox",
    "watchdog.storage.sqlite.transfer",
    "watchdog.storage.transfer",
    "watchdog.trace",
    "watchdog.validate",
)


def _config(tmp_path: Path, page_server: PageServer, extra: str = "") -> Path:
    page_server.set(
        "/policy", render_page(corpus_markdown("milestones/meta-privacy-policy-en-eu/2025-04-23.md"))
    )
    path = tmp_path / "watchdog.toml"
    path.write_text(
        "\n".join(
            [
                "[storage]",
                'dir = "archive"',
                "[fetch]",
                "retries = 0",
                "[[targets]]",
                'id = "policy"',
                f'url = "{page_server.url("/policy")}"',
                'select = ["#root"]',
                'confirm_delay = "0s"',
                extra,
            ]
        ),
        encoding="utf-8",
    )
    return path


def _loaded_before_first_request(config: Path, tmp_path: Path) -> list[str]:
    modules = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", FIRST_REQUEST, str(config), str(modules)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[0])["status"] == "new"  # a real cycle ran
    loaded: list[str] = json.loads(modules.read_text())
    return loaded


def _offending(loaded: list[str]) -> list[str]:
    return [
        name
        for name in loaded
        if name.split(".")[0] in HEAVY or any(name == own or name.startswith(own + ".") for own in OWN)
    ]


def test_check_loads_only_what_its_first_request_needs(page_server: PageServer, tmp_path: Path) -> None:
    loaded = _loaded_before_first_request(_config(tmp_path, page_server), tmp_path)
    assert "watchdog.fetchers.http" in loaded and "httpx" in loaded  # the hook saw the real request
    assert _offending(loaded) == []


def test_channels_and_own_topics_load_no_rendering(page_server: PageServer, tmp_path: Path) -> None:
    """A config with a channel and a topic of its own: notify (channel keys) and the classifier (the
    topic's patterns are compiled at load, so a bad one is exit 2) come in, rendering and apprise do not."""
    extra = "\n".join(
        [
            "[[channels]]",
            'url = "json://127.0.0.1:9/hook"',
            "[[topics]]",
            'id = "mine"',
            'patterns = ["training data"]',
        ]
    )
    loaded = _loaded_before_first_request(_config(tmp_path, page_server, extra), tmp_path)
    assert "watchdog.notify" in loaded and "watchdog.classify" in loaded
    classifier = {"watchdog.classify", "watchdog.diff", "watchdog.normalise"}  # and its imports
    # the models of notify and classify, and the Outbox protocol notify imports
    allowed = classifier | {"watchdog.messages", "watchdog.results", "watchdog.storage.interfaces"}
    assert [name for name in _offending(loaded) if name not in allowed] == []


def test_bundled_topics_compile() -> None:
    """Loading a config does not compile the bundled topics' patterns (only a config's own): so every one
    of them must compile, and none may match empty text, here."""
    path = bundled_config_dir() / "topics.toml"
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    config = load_config(ROOT / "config" / "watchdog.toml", environ={})
    assert {t.id for t in config.topics} == {t["id"] for t in raw["topics"]}
    compiled = compile_topics(config.topics, source=str(path))
    assert sum(len(c.regexes) for c in compiled.topics) == sum(len(t["patterns"]) for t in raw["topics"])


@pytest.mark.parametrize(
    ("pattern", "key", "problem"),
    [
        ("(", "topics[mine].patterns[0]", "invalid regular expression"),
        ("x*", "topics.mine.patterns[0]", "matches empty text"),
    ],
)
def test_a_configs_own_bad_pattern_still_fails_at_load(
    tmp_path: Path, pattern: str, key: str, problem: str
) -> None:
    path = tmp_path / "watchdog.toml"
    path.write_text(f'[[topics]]\nid = "mine"\npatterns = [{json.dumps(pattern)}]\n', encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(path, environ={})
    assert [(p.key, problem in p.message) for p in raised.value.problems] == [(key, True)]


def test_the_models_defined_elsewhere_are_still_importable_from_models() -> None:
    """watchdog/messages.py, archived.py, results.py and claims.py were split off models.py (their classes
    cost start-up time that a check does not need before its requests): every public name they define stays
    importable from watchdog.models, as the same object (tests import them with the rest of the model), and
    an unknown name is still an AttributeError."""
    defined = {
        (name, module)
        for module in (archived, claims, messages, results)
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (getattr(value, "__module__", None) == module.__name__ or name == "Message")  # Message: a Union
    }
    names = {name for name, _module in defined}
    assert {"ChangeMessage", "Hunk", "message_to_json", "ChainEntry", "Outcome", "CheckRecord"} <= names
    assert {"Capture", "NotModified", "ChangeRecord", "Event", "Claim", "DueClaim"} <= names
    assert [name for name, module in defined if getattr(models, name) is not getattr(module, name)] == []
    with pytest.raises(AttributeError, match="no attribute 'NoSuchModel'"):
        _ = models.NoSuchModel  # type: ignore[attr-defined]


def _parsed(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[str, object]:
    """What `parser` makes of `argv`: its namespace, or its exit (status, what it printed)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            return "parsed", vars(parser.parse_args(argv))
    except SystemExit as exit_:
        return "exit", (exit_.code, out.getvalue(), err.getvalue())


COMMAND_LINES = [
    ["check"],
    ["check", "--json", "a", "b"],
    ["--config", "check", "check"],  # a config file named like a command
    ["--config=w.toml", "-vv", "-q", "check", "--json"],
    ["--config", "-x", "check"],  # argparse refuses a value that looks like an option
    ["check", "--help"],
    ["check", "--nope"],
    ["-v", "--verbose", "history", "meta"],
    ["history"],  # a missing argument
    ["changes", "--since", "2025-01-01T00:00:00Z", "--json"],
    ["changes", "--since", "yesterday"],
    ["serve", "--port", "70000"],
    ["diff", "a", "b", "--format", "md"],
    ["import", "--help"],
    *[[name] for name in COMMANDS],
]


@pytest.mark.parametrize("argv", COMMAND_LINES, ids=" ".join)
def test_a_command_parsed_alone_reads_as_with_every_command(argv: list[str]) -> None:
    """main() builds only the parser of the command the arguments name (building every command's parser
    cost ~7 ms of each start): the namespace, the help and the errors must be those of the whole parser."""
    only = command_named(argv)
    assert only == next(word for word in argv if word in COMMANDS)  # every line here names its command
    assert _parsed(build_parser(only=only), argv) == _parsed(build_parser(), argv)


@pytest.mark.parametrize(
    "argv",
    [[], ["--help"], ["--version"], ["chek"], ["--conf", "x", "check"], ["-vq", "check"], ["--", "check"]],
    ids=" ".join,
)
def test_what_is_not_plainly_a_command_goes_to_the_whole_parser(argv: list[str]) -> None:
    assert command_named(argv) is None


# Runs the process entry point (`python -m watchdog`, as the console script does) with an atexit hook that
# reports, as the interpreter exits, how many objects the collector has set aside (gc.freeze).
ENTRY_POINT = r"""
import atexit, gc, runpy, sys
atexit.register(lambda: print(f"frozen at exit: {gc.get_freeze_count()}", file=sys.stderr))
sys.argv = ["policy-watchdog", *sys.argv[1:]]
runpy.run_module("watchdog", run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize(("extra", "code"), [([], 0), (["nope"], 2)])
def test_the_entry_point_exits_with_mains_code_skipping_the_final_collection(
    page_server: PageServer, tmp_path: Path, extra: list[str], code: int
) -> None:
    """The console script's `run` leaves with `main`'s exit code, its output whole, after moving what is
    alive to the permanent generation (the interpreter's final collection then skips it): the check's
    cycle and a usage error alike."""
    config = _config(tmp_path, page_server)
    done = subprocess.run(
        [sys.executable, "-c", ENTRY_POINT, "--config", str(config), "check", "--json", *extra],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == code, done.stderr
    if code == 0:
        assert json.loads(done.stdout.splitlines()[0])["status"] == "new"
    else:
        assert "nope" in done.stderr
    frozen = int(done.stderr.rsplit("frozen at exit: ", 1)[1])
    assert frozen > 10_000  # the modules, the config, the archive's rows: everything main left alive

"""Configuration: TOML -> frozen dataclasses. The only module that reads environment variables.

Every problem is collected (not just the first) as a ConfigProblem naming the file, the key (with the
target id, e.g. `targets[meta-privacy-policy].select[0]`) and what is wrong, so `config check` can print
them all at once. Relative paths inside a config file are relative to that file.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from watchdog import __version__
from watchdog.csscheck import check_selector
from watchdog.deferred import deferred
from watchdog.errors import ConfigError, ConfigProblem
from watchdog.models import Channel, FetchSettings, SelectorSet, Target, Topic
from watchdog.storage.address import redacted_url

# Loaded when first used (watchdog/deferred.py): channels' keys and labels need notify (without its
# rendering), topics of the config file's own need the classifier; a config without them loads neither.
# difflib only suggests a name for a misspelt key.
if TYPE_CHECKING:
    import difflib

    from watchdog import classify as classifier
    from watchdog import notify as notify_stage
else:
    classifier = deferred("watchdog.classify")
    difflib = deferred("difflib")
    notify_stage = deferred("watchdog.notify")

ENV_CONFIG = "POLICY_WATCHDOG_CONFIG"
SYSTEM_CONFIG = Path("/etc/policy-watchdog/watchdog.toml")
ID_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
FETCHERS = ("http", "browser", "auto")
DNS_LABEL_RE = re.compile(r"^(?!-)[\w-]{1,63}(?<!-)$")  # letters (IDN too), digits, '-', '_'; no edge '-'

TARGET_KINDS = ("page", "feed")
NOTIFY_MODES = ("topics", "all")
DIGEST_PERIODS = ("daily", "weekly")
SEVERITIES = ("high", "medium", "low")


def default_user_agent() -> str:
    return f"policy-watchdog/{__version__} (self-hosted policy change monitor; +https://pypi.org/project/policy-watchdog/)"


@dataclass(frozen=True, slots=True)
class Bounds:
    """The inclusive range a numeric or duration setting must lie in (durations in seconds)."""

    low: float
    high: float
    integer: bool = False


# The upper bounds are not tuning: past them a value is a typo, and every time derived from it must stay
# representable (datetime ends in year 9999; `now + interval * (1 + jitter)` is computed at every check),
# threads and memory finite, and the longest possible check (an "auto" target: two fetches, each up to
# `deadline`, twice with the confirm re-fetch, plus `confirm_delay`) well under the 30 minutes after which
# the daemon counts a check as stuck (daemon.STUCK_AFTER).
FETCH_BOUNDS = {
    "timeout": Bounds(0.1, 300),
    "attempt_deadline": Bounds(1, 300),
    "deadline": Bounds(1, 300),
    "max_bytes": Bounds(1024, 1 << 30, integer=True),
    "max_redirects": Bounds(0, 20, integer=True),
    "retries": Bounds(0, 10, integer=True),
    "backoff": Bounds(0, 300),
    "max_retry_after": Bounds(0, 3600),
}
INTERVAL = Bounds(1, 366 * 86400)
CONFIRM_DELAY = Bounds(0, 300)
REVERT_WINDOW = Bounds(0, 3660 * 86400)
FAILURE_THRESHOLD = Bounds(1, 1000, integer=True)
FEED_ENTRIES = Bounds(1, 1000, integer=True)
MAX_GROWTH = Bounds(1, 1000)
MIN_LENGTH = Bounds(0, 100_000_000, integer=True)
FRACTION = Bounds(0, 1)
JITTER = Bounds(0, 1)
MAX_WORKERS = Bounds(1, 64, integer=True)
LEASE = Bounds(2, 3600)
NODE_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._:-]{0,62}[A-Za-z0-9])?$")
WAYBACK_PAUSE = Bounds(0, 60)


@dataclass(frozen=True, slots=True)
class AlertSettings:
    failure_threshold: int = 3  # consecutive errors/rejections before one "can no longer read" alert
    revert_window: timedelta = timedelta(days=30)
    archive_url: str | None = None  # public base URL of the archive, used in alert links
    feed_entries: int = 50  # entries per Atom feed, the newest (older ones stay in the archive and its site)


@dataclass(frozen=True, slots=True)
class ValidateSettings:
    max_growth: float = 3.0
    block_signatures: tuple[tuple[str, str], ...] = ()  # (code, regex) added to the built-in ones


@dataclass(frozen=True, slots=True)
class DaemonSettings:
    max_workers: int = 4  # bounded concurrency across hosts (one request at a time per host regardless)
    jitter: float = 0.1  # fraction of the interval added at random to each next-due time
    publish: bool = True  # False: this daemon writes no feeds or site (a shared archive's worker node)


@dataclass(frozen=True, slots=True)
class StorageSettings:
    """[storage] besides `dir`: the shared archive and this machine's name in it."""

    url: str | None = None  # "postgresql://...": the archive in PostgreSQL; None: SQLite in the storage dir
    node: str | None = None  # this node's name in a shared archive; None: "<host name>:<pid>"
    lease: timedelta = timedelta(seconds=60)  # how long a due check stays claimed by a silent node


@dataclass(frozen=True, slots=True)
class ImportSettings:
    """`import wayback`: where the Wayback Machine is, and the pause between two of its captures."""

    wayback_url: str = "https://web.archive.org"
    wayback_pause: timedelta = timedelta(seconds=1)


@dataclass(frozen=True)
class Config:
    path: Path | None  # None for the bundled default
    storage_dir: Path
    targets: tuple[Target, ...]
    channels: tuple[Channel, ...]
    topics: tuple[Topic, ...]
    fetch: FetchSettings
    alerts: AlertSettings = field(default_factory=AlertSettings)
    validate: ValidateSettings = field(default_factory=ValidateSettings)
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    imports: ImportSettings = field(default_factory=ImportSettings)

    @property
    def source(self) -> str:
        return str(self.path) if self.path else "<bundled default config>"

    def target(self, target_id: str) -> Target | None:
        return next((t for t in self.targets if t.id == target_id), None)


# --------------------------------------------------------------------------- locating files


def bundled_config_dir() -> Path:
    """The bundled config/ folder: inside the installed wheel, or next to the package in a checkout."""
    packaged = Path(__file__).resolve().parent / "_bundled_config"  # not importlib.resources: see migrations
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "config"


def resolve_config_path(explicit: str | None, environ: Mapping[str, str] = os.environ) -> Path:
    """--config, else $POLICY_WATCHDOG_CONFIG, else /etc/policy-watchdog/watchdog.toml, else bundled."""
    if explicit:
        return Path(explicit)
    if environ.get(ENV_CONFIG):
        return Path(environ[ENV_CONFIG])
    if SYSTEM_CONFIG.is_file():
        return SYSTEM_CONFIG
    return bundled_config_dir() / "watchdog.toml"


def default_storage_dir(environ: Mapping[str, str] = os.environ) -> Path:
    state = environ.get(
        "STATE_DIRECTORY"
    )  # set by systemd's StateDirectory=; may list several, ':'-separated
    if state:
        return Path(state.split(":")[0])
    return Path(environ.get("HOME", "~")).expanduser() / ".local" / "state" / "policy-watchdog"


def config_fingerprint(target: Target) -> str:
    """Hash of the settings that shape extraction: a snapshot records which ones produced its version."""
    parts = [",".join(target.select), ",".join(target.remove), str(target.keep_links)]
    # Only when set, so that fingerprints recorded before these keys existed stay valid.
    parts += [f"{i}:{','.join(a.select)}/{','.join(a.remove)}" for i, a in enumerate(target.alternatives, 1)]
    parts += [f"watch:{link}" for link in target.watch_links]
    parts += [f"kind:{target.kind}"] if target.kind != "page" else []
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- the loader


def load_config(path: Path | str | None = None, *, environ: Mapping[str, str] | None = None) -> Config:
    """Read, expand and validate a config file. Raises ConfigError listing every problem found."""
    env = os.environ if environ is None else environ
    config_path = Path(path) if path is not None else resolve_config_path(None, env)
    bundled = config_path.resolve() == (bundled_config_dir() / "watchdog.toml").resolve()
    reader = _Reader(str(config_path), env)
    raw = reader.read_toml(config_path)
    # The bundled topics' patterns are compiled by the test suite (tests/test_startup.py), not by every
    # command that loads a config; a config's own patterns are compiled here (a bad one: exit 2).
    bundled_topics = _Reader(str(bundled_config_dir() / "topics.toml"), env, compile_patterns=False)
    topics = bundled_topics.topics(
        bundled_topics.read_toml(bundled_config_dir() / "topics.toml").get("topics", [])
    )
    config = reader.config(raw, base=config_path.parent, bundled_topics=topics, is_bundled=bundled)
    problems = bundled_topics.problems + reader.problems
    if problems or config is None:
        raise ConfigError(problems)
    _check_topics(config, topics)
    return config


def check_channels(config: Config) -> None:
    """Load every channel with apprise, as delivery will (`config check` only: apprise takes ~0.3 s to
    load); raise ConfigError naming each channel it cannot use."""
    problems = [
        ConfigProblem(config.source, f"channels[{index}].url", reason)
        for index, reason in notify_stage.unusable_channels(config.channels)
    ]
    if problems:
        raise ConfigError(problems)


def _check_topics(config: Config, bundled: tuple[Topic, ...]) -> None:
    """Compile the config's own topics now (those that are not the bundled ones, unchanged), so a pattern
    that matches empty text fails `config check`; raises ConfigError naming topics.<id>.patterns[i]."""
    own = [topic for topic in config.topics if topic not in bundled]
    if own:
        classifier.compile_topics(own, source=config.source)


class _Reader:
    """Walks the TOML tree, converting values and collecting problems with their file and key."""

    def __init__(self, file: str, environ: Mapping[str, str], *, compile_patterns: bool = True) -> None:
        self.file = file
        self.environ = environ
        self.compile_patterns = compile_patterns
        self.problems: list[ConfigProblem] = []

    def problem(self, key: str, message: str) -> None:
        self.problems.append(ConfigProblem(self.file, key, message))

    def read_toml(self, path: Path) -> dict[str, Any]:
        try:
            with path.open("rb") as handle:
                return tomllib.load(handle)
        except FileNotFoundError:
            self.problem("-", "file not found")
        except IsADirectoryError:
            self.problem("-", "is a directory, not a TOML file")
        except PermissionError:
            self.problem("-", "permission denied")
        except tomllib.TOMLDecodeError as exc:
            self.problem("-", f"not valid TOML: {exc}")
        except UnicodeDecodeError as exc:
            self.problem("-", f"not UTF-8 text: {exc}")
        except ValueError as exc:  # e.g. an integer longer than Python converts (4300 digits)
            self.problem("-", f"not valid TOML: {exc}")
        return {}

    # ---- scalar helpers

    def expand(self, key: str, value: str) -> str:
        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self.environ:
                self.problem(key, f"environment variable ${{{name}}} is not set")
                return ""
            return self.environ[name]

        return VAR_RE.sub(substitute, value)

    def typed(self, key: str, value: object, kind: type | tuple[type, ...], label: str) -> bool:
        # bool is an int in Python; a "true" where a number belongs is a mistake worth naming
        if isinstance(value, bool) and kind is not bool and bool not in _as_tuple(kind):
            self.problem(key, f"must be {label}, got a boolean")
            return False
        if not isinstance(value, kind):
            self.problem(key, f"must be {label}, got {_toml_type(value)}")
            return False
        return True

    def string(self, key: str, value: object, *, expand: bool = True) -> str | None:
        if not self.typed(key, value, str, "a string"):
            return None
        text = cast(str, value)
        return self.expand(key, text) if expand else text

    def strings(self, key: str, value: object) -> tuple[str, ...] | None:
        if isinstance(value, str):
            value = [value]  # a single selector is fine, say so rather than iterate its characters
        if not self.typed(key, value, list, "a list of strings"):
            return None
        items = [self.string(f"{key}[{i}]", item) for i, item in enumerate(cast(list[object], value))]
        return None if any(i is None for i in items) else tuple(cast(list[str], items))

    def duration(self, key: str, value: object, bounds: Bounds) -> timedelta | None:
        if not isinstance(value, str):  # a bare 6 could mean seconds or hours: ask for the unit
            self.problem(key, f"must be a duration string such as '6h' or '90s', got {_toml_type(value)}")
            return None
        text = self.string(key, value)
        if text is None:
            return None
        seconds = parse_duration(text)
        if seconds is None:
            self.problem(
                key, f"bad duration {_shown(text)}: use a number with a unit s, m, h or d (e.g. '6h', '90s')"
            )
            return None
        if not (math.isfinite(seconds) and bounds.low <= seconds <= bounds.high):
            low, high = format_duration(bounds.low), format_duration(bounds.high)
            self.problem(key, f"must be between {low} and {high}, got {_shown(text)}")
            return None
        return timedelta(seconds=seconds)

    def number(self, key: str, value: object, bounds: Bounds) -> float | None:
        kind: tuple[type, ...] = (int,) if bounds.integer else (int, float)
        if not self.typed(key, value, kind, "an integer" if bounds.integer else "a number"):
            return None
        number = cast(float, value)  # an int may have hundreds of digits: compare, never convert first
        if isinstance(number, float) and not math.isfinite(number):
            self.problem(key, f"must be a finite number, got {number}")
            return None
        if not bounds.low <= number <= bounds.high:
            self.problem(key, f"must be between {bounds.low:g} and {bounds.high:g}, got {_shown(number)}")
            return None
        return float(number)

    def integer(self, key: str, value: object, bounds: Bounds) -> int | None:
        number = self.number(key, value, bounds)
        return None if number is None else int(number)

    def header_value(self, key: str, value: object) -> str | None:
        """A string sent as an HTTP header value: printable ASCII only (CR/LF would split the request)."""
        text = self.string(key, value)
        if text is None:
            return None
        bad = next((i for i, c in enumerate(text) if not " " <= c <= "~"), None)
        if bad is not None:
            self.problem(
                key, f"must be printable ASCII: {text[bad]!r} at position {bad} cannot go in an HTTP header"
            )
            return None
        if not text.strip():
            self.problem(key, "must not be empty")
            return None
        return text

    def line(self, key: str, value: object) -> str | None:
        """A one-line text (names go into alert titles and mail subjects)."""
        text = self.string(key, value)
        if text is not None and any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
            self.problem(key, "must be one line of text without control characters")
            return None
        return text

    def choice(self, key: str, value: object, choices: Sequence[str]) -> str | None:
        text = self.string(key, value)
        if text is not None and text not in choices:
            self.problem(key, f"must be one of {', '.join(choices)}; got {text!r}")
            return None
        return text

    def unknown_keys(self, prefix: str, table: Mapping[str, object], known: Sequence[str]) -> None:
        for name in table:
            if name not in known:
                hint = _closest(name, known)
                self.problem(
                    f"{prefix}{name}", "unknown key" + (f" (did you mean {hint!r}?)" if hint else "")
                )

    def table(self, key: str, value: object) -> dict[str, Any] | None:
        return cast(dict[str, Any], value) if self.typed(key, value, dict, "a table") else None

    def tables(self, key: str, value: object) -> list[dict[str, Any]]:
        if not self.typed(key, value, list, f"an array of tables ([[{key}]])"):
            return []
        result = []
        for i, item in enumerate(cast(list[object], value)):
            table = self.table(f"{key}[{i}]", item)
            if table is not None:
                result.append(table)
        return result

    # ---- sections

    def config(
        self, raw: dict[str, Any], *, base: Path, bundled_topics: tuple[Topic, ...], is_bundled: bool
    ) -> Config | None:
        self.unknown_keys(
            "",
            raw,
            ("storage", "fetch", "alerts", "validate", "daemon", "import", "targets", "channels", "topics"),
        )
        storage_dir = self.storage(raw.get("storage", {}), base, is_bundled)
        storage = self.shared_storage(raw.get("storage", {}))
        fetch = self.fetch(raw.get("fetch", {}))
        topics = merge_topics(bundled_topics, self.topics(raw.get("topics", [])))
        targets = self.targets(raw.get("targets", []), topics)
        channels = self.channels(raw.get("channels", []), base)
        sections = (self.alerts(raw.get("alerts", {})), self.validation(raw.get("validate", {})))
        daemon = self.daemon(raw.get("daemon", {}))
        imports = self.imports(raw.get("import", {}))
        if self.problems or storage_dir is None or fetch is None or None in (*sections, daemon, imports):
            return None
        path = None if is_bundled else Path(self.file)
        alerts, validate = cast(tuple[AlertSettings, ValidateSettings], sections)
        assert daemon is not None and imports is not None
        return Config(
            path,
            storage_dir,
            targets,
            channels,
            topics,
            fetch,
            alerts,
            validate,
            daemon,
            storage or StorageSettings(),
            imports,
        )

    def storage(self, value: object, base: Path, is_bundled: bool) -> Path | None:
        table = self.table("storage", value)
        if table is None:
            return None
        self.unknown_keys("storage.", table, ("dir", "url", "node", "lease"))
        if "dir" not in table or is_bundled:
            return default_storage_dir(self.environ)
        text = self.string("storage.dir", table["dir"])
        if text is None:
            return None
        if "\x00" in text or not text.strip():
            self.problem("storage.dir", f"not a usable folder name: {_shown(text)}")
            return None
        try:
            return base / Path(text).expanduser()
        except RuntimeError as exc:  # "~someone" for a user that does not exist
            self.problem("storage.dir", f"cannot expand {_shown(text)}: {exc}")
            return None

    def shared_storage(self, value: object) -> StorageSettings | None:
        """`url`, `node` and `lease` of [storage] (its unknown keys are named by `storage`)."""
        table = value if isinstance(value, dict) else {}
        spec: dict[str, Callable[[str, object], object]] = {
            "url": self.database_url,
            "node": self.node_name,
            "lease": partial(self.duration, bounds=LEASE),
        }
        values: dict[str, Any] = {
            name: spec[name](f"storage.{name}", table[name]) for name in spec if name in table
        }
        return StorageSettings(**{name: v for name, v in values.items() if v is not None})

    def database_url(self, key: str, value: object) -> str | None:
        text = self.string(key, value)
        if text is None:
            return None
        problem = database_url_problem(text)
        if problem is not None:
            self.problem(key, problem)
            return None
        return text

    def node_name(self, key: str, value: object) -> str | None:
        text = self.string(key, value)
        if text is not None and not NODE_RE.match(text):
            self.problem(
                key,
                f"not a node name: {_shown(text)} (1-64 letters, digits, '.', '_', ':' or '-', "
                "starting and ending with a letter or digit)",
            )
            return None
        return text

    def fetch(self, value: object) -> FetchSettings | None:
        table = self.table("fetch", value)
        if table is None:
            return None
        spec: dict[str, Callable[[str, object], object]] = {
            name: partial(self.integer if bounds.integer else self.number, bounds=bounds)
            for name, bounds in FETCH_BOUNDS.items()
        }
        spec["user_agent"] = self.header_value
        spec["private_redirects"] = self.boolean
        values = self.fields("fetch.", table, spec)
        return FetchSettings(**{"user_agent": default_user_agent(), **values})

    def alerts(self, value: object) -> AlertSettings | None:
        table = self.table("alerts", value)
        if table is None:
            return None
        spec: dict[str, Callable[[str, object], object]] = {
            "failure_threshold": partial(self.integer, bounds=FAILURE_THRESHOLD),
            "revert_window": partial(self.duration, bounds=REVERT_WINDOW),
            "archive_url": lambda k, v: self.url(k, v),
            "feed_entries": partial(self.integer, bounds=FEED_ENTRIES),
        }
        return AlertSettings(**self.fields("alerts.", table, spec))

    def validation(self, value: object) -> ValidateSettings | None:
        table = self.table("validate", value)
        if table is None:
            return None
        spec: dict[str, Callable[[str, object], object]] = {
            "max_growth": partial(self.number, bounds=MAX_GROWTH),
            "block_signatures": self.signatures,
        }
        return ValidateSettings(**self.fields("validate.", table, spec))

    def daemon(self, value: object) -> DaemonSettings | None:
        table = self.table("daemon", value)
        if table is None:
            return None
        spec: dict[str, Callable[[str, object], object]] = {
            "max_workers": partial(self.integer, bounds=MAX_WORKERS),
            "jitter": partial(self.number, bounds=JITTER),
            "publish": self.boolean,
        }
        return DaemonSettings(**self.fields("daemon.", table, spec))

    def imports(self, value: object) -> ImportSettings | None:
        table = self.table("import", value)
        if table is None:
            return None
        spec: dict[str, Callable[[str, object], object]] = {
            "wayback_url": self.base_url,
            "wayback_pause": partial(self.duration, bounds=WAYBACK_PAUSE),
        }
        return ImportSettings(**self.fields("import.", table, spec))

    def base_url(self, key: str, value: object) -> str | None:
        """An http(s) address that paths are appended to: no query, no fragment."""
        text = self.url(key, value)
        if text is None:
            return None
        parts = urlsplit(text)
        if parts.query or parts.fragment:
            self.problem(key, f"must be a base address without '?' or '#': {_shown(text)}")
            return None
        return text.rstrip("/")

    def signatures(self, key: str, value: object) -> tuple[tuple[str, str], ...] | None:
        result = []
        for i, table in enumerate(self.tables(key, value)):
            self.unknown_keys(f"{key}[{i}].", table, ("code", "pattern"))
            code = self.string(f"{key}[{i}].code", table.get("code"))
            pattern = self.regex(f"{key}[{i}].pattern", table.get("pattern"))
            if code and pattern:
                result.append((code, pattern))
        return tuple(result)

    def fields(
        self, prefix: str, table: Mapping[str, object], spec: Mapping[str, Callable[[str, object], object]]
    ) -> dict[str, Any]:
        self.unknown_keys(prefix, table, tuple(spec))
        converted = {
            name: spec[name](f"{prefix}{name}", value) for name, value in table.items() if name in spec
        }
        return {name: value for name, value in converted.items() if value is not None}

    def url(self, key: str, value: object) -> str | None:
        text = self.string(key, value)
        if text is None:
            return None
        problem = url_problem(text)
        if problem is not None:
            self.problem(key, problem)
            return None
        return text

    def boolean(self, key: str, value: object) -> bool | None:
        return cast(bool, value) if self.typed(key, value, bool, "true or false") else None

    def regex(self, key: str, value: object) -> str | None:
        text = self.string(key, value, expand=False)
        if text is None:
            return None
        try:
            if self.compile_patterns:
                re.compile(text, re.IGNORECASE)
        except re.error as exc:
            self.problem(key, f"invalid regular expression {text!r}: {exc}")
            return None
        return text

    def selectors(self, key: str, value: object) -> tuple[str, ...] | None:
        items = self.strings(key, value)
        for i, selector in enumerate(items or ()):
            error = check_selector(selector)
            if error:
                self.problem(f"{key}[{i}]", f"invalid CSS selector {selector!r}: {error}")
        return items

    # ---- topics

    def topics(self, value: object) -> tuple[Topic, ...]:
        result: list[Topic] = []
        for i, table in enumerate(self.tables("topics", value)):
            topic = self.topic(i, table)
            if topic is None:
                continue
            if any(t.id == topic.id for t in result):
                self.problem(f"topics[{topic.id}].id", "duplicate topic id")
            result.append(topic)
        return tuple(result)

    def topic(self, index: int, table: Mapping[str, Any]) -> Topic | None:
        topic_id = self.ident(f"topics[{index}].id", table.get("id"))
        prefix = f"topics[{topic_id or index}]."
        self.unknown_keys(prefix, table, ("id", "title", "severity", "patterns"))
        title = self.string(prefix + "title", table.get("title", topic_id or ""))
        severity = self.choice(prefix + "severity", table.get("severity", "medium"), SEVERITIES)
        patterns = self.strings(prefix + "patterns", table.get("patterns"))
        for i, pattern in enumerate(patterns or ()):
            self.regex(f"{prefix}patterns[{i}]", pattern)
        if patterns == ():
            self.problem(prefix + "patterns", "must list at least one pattern")
        if None in (topic_id, title, severity, patterns):
            return None
        return Topic(
            cast(str, topic_id), cast(str, title), cast(Any, severity), cast(tuple[str, ...], patterns)
        )

    def ident(self, key: str, value: object) -> str | None:
        if value is None:
            self.problem(key, "missing (required)")
            return None
        text = self.string(key, value, expand=False)
        if text is not None and not ID_RE.match(text):
            self.problem(key, f"malformed id {text!r}: use lower-case letters, digits and '-' ([a-z0-9-]+)")
            return None
        return text

    # ---- targets

    def targets(self, value: object, topics: tuple[Topic, ...]) -> tuple[Target, ...]:
        result: list[Target] = []
        seen: set[str] = set()  # not a scan of `result`: 10,000 targets made that 50 million comparisons
        topic_ids = {t.id for t in topics}
        for i, table in enumerate(self.tables("targets", value)):
            target = self.target(i, table, topic_ids)
            if target is None:
                continue
            if target.id in seen:
                self.problem(f"targets[{target.id}].id", "duplicate target id")
                continue
            seen.add(target.id)
            result.append(target)
        return tuple(result)

    def target(self, index: int, table: Mapping[str, Any], topic_ids: set[str]) -> Target | None:
        target_id = self.ident(f"targets[{index}].id", table.get("id"))
        prefix = f"targets[{target_id or index}]."
        if "url" not in table:
            self.problem(prefix + "url", "missing (required)")
        spec = self.target_spec(topic_ids)
        values = self.fields(prefix, {k: v for k, v in table.items() if k != "id"}, spec)
        if target_id is None or "url" not in values:
            return None
        values.setdefault("name", target_id)
        target = replace(Target(id=target_id, url=values.pop("url"), name=values.pop("name")), **values)
        self.check_feed(prefix, target)
        return target

    def check_feed(self, prefix: str, target: Target) -> None:
        """A feed is read as RSS/Atom by the plain fetcher: page-reading keys would silently do nothing."""
        if target.kind != "feed":
            if target.follow:
                self.problem(prefix + "follow", 'only a target of kind "feed" can follow its items')
            return
        for key in ("select", "remove", "alternatives", "ready"):
            if getattr(target, key):
                self.problem(prefix + key, 'has no effect on a target of kind "feed" (an RSS/Atom feed)')
        if target.fetcher != "http":
            self.problem(prefix + "fetcher", 'a target of kind "feed" is fetched with "http"')

    def target_spec(self, topic_ids: set[str]) -> dict[str, Callable[[str, object], object]]:
        return {
            "url": self.url,
            "name": self.line,
            "select": self.selectors,
            "remove": self.selectors,
            "interval": partial(self.duration, bounds=INTERVAL),
            "topics": lambda k, v: self.topic_refs(k, v, topic_ids),
            "accept_language": self.header_value,
            "fetcher": lambda k, v: self.choice(k, v, FETCHERS),
            "ready": lambda k, v: self.single_selector(k, v),
            "confirm_delay": partial(self.duration, bounds=CONFIRM_DELAY),
            "notify": lambda k, v: self.choice(k, v, NOTIFY_MODES),
            "min_length": partial(self.integer, bounds=MIN_LENGTH),
            "max_shrink": self.fraction,
            "keep_links": self.boolean,
            "user_agent": self.header_value,
            "alternatives": self.selector_sets,
            "watch_links": self.link_patterns,
            "kind": lambda k, v: self.choice(k, v, TARGET_KINDS),
            "follow": self.boolean,
        }

    def selector_sets(self, key: str, value: object) -> tuple[SelectorSet, ...] | None:
        """`alternatives = [{ select = [...], remove = [...] }, ...]`: each needs a non-empty `select`."""
        result = []
        tables = self.tables(key, value)
        for i, table in enumerate(tables):
            prefix = f"{key}[{i}]."
            self.unknown_keys(prefix, table, ("select", "remove"))
            if "select" not in table:
                self.problem(prefix + "select", "missing (required): the selectors of this alternative")
                continue
            select = self.selectors(prefix + "select", table["select"])
            remove = self.selectors(prefix + "remove", table.get("remove", []))
            if select == ():
                self.problem(prefix + "select", "must list at least one CSS selector")
            elif select is not None and remove is not None:
                result.append(SelectorSet(select, remove))
        return tuple(result) if len(result) == len(tables) else None

    def link_patterns(self, key: str, value: object) -> tuple[str, ...] | None:
        """`watch_links`: http(s) URLs, or URL patterns with `*` wildcards."""
        items = self.strings(key, value)
        for i, item in enumerate(items or ()):
            parts = urlsplit(item)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                self.problem(f"{key}[{i}]", f"not an http(s) URL or URL pattern: {item!r}")
        return items

    def fraction(self, key: str, value: object) -> float | None:
        if isinstance(value, int | float) and not isinstance(value, bool) and not 0 <= value <= 1:
            self.problem(key, f"must be a fraction between 0 and 1, got {_shown(value)}")
            return None
        return self.number(key, value, FRACTION)

    def single_selector(self, key: str, value: object) -> str | None:
        items = self.selectors(key, [value] if isinstance(value, str) else value)
        if items is not None and len(items) != 1:
            self.problem(key, "must be one CSS selector")
            return None
        return items[0] if items else None

    def topic_refs(self, key: str, value: object, topic_ids: set[str]) -> tuple[str, ...] | None:
        items = self.strings(key, value)
        for i, topic_id in enumerate(items or ()):
            if topic_id not in topic_ids:
                self.problem(
                    f"{key}[{i}]", f"unknown topic {topic_id!r} (known: {', '.join(sorted(topic_ids))})"
                )
        return items

    # ---- channels

    def channels(self, value: object, base: Path) -> tuple[Channel, ...]:
        result = []
        for i, table in enumerate(self.tables("channels", value)):
            channel = self.channel(i, table, base)
            if channel is not None:
                result.append(channel)
        return tuple(result)

    def channel(self, index: int, table: Mapping[str, Any], base: Path) -> Channel | None:
        prefix = f"channels[{index}]."
        self.unknown_keys(prefix, table, ("url", "tags", "notify", "digest"))
        template = self.string(prefix + "url", table.get("url"), expand=False)
        if template is None:
            return None
        url = self.channel_url(prefix + "url", template, base)
        tags = self.strings(prefix + "tags", table.get("tags", []))
        notify = self.choice(prefix + "notify", table.get("notify", "topics"), NOTIFY_MODES)
        digest = (
            self.choice(prefix + "digest", table["digest"], DIGEST_PERIODS) if "digest" in table else None
        )
        if url is None or tags is None or notify is None or ("digest" in table and digest is None):
            return None
        return Channel(
            notify_stage.channel_key(template),
            url,
            notify_stage.redact(url),
            tags,
            cast(Any, notify),
            cast(Any, digest),
        )

    def channel_url(self, key: str, template: str, base: Path) -> str | None:
        url = self.expand(key, template)
        if "://" not in url:
            # not a URL: an apprise config file (YAML or text), relative to this config file
            path = base / url
            if not path.is_file():
                self.problem(
                    key, f"neither an apprise URL (scheme://...) nor an existing config file: {url!r}"
                )
                return None
            return str(path)
        return url


def merge_topics(bundled: tuple[Topic, ...], extra: tuple[Topic, ...]) -> tuple[Topic, ...]:
    """User topics replace bundled ones with the same id and extend the list otherwise."""
    by_id = {t.id: t for t in bundled}
    by_id.update({t.id: t for t in extra})
    return tuple(by_id.values())


def parse_duration(text: str) -> float | None:
    """'6h', '90s', '1h30m', '2.5d' -> seconds; None when malformed."""
    compact = text.strip().lower()
    matches = list(DURATION_RE.finditer(compact))
    if not matches or "".join(m.group(0) for m in matches).replace(" ", "") != compact.replace(" ", ""):
        return None
    return sum(float(m.group(1)) * UNIT_SECONDS[m.group(2)] for m in matches)


def format_duration(seconds: float) -> str:
    """The largest whole unit that states `seconds` exactly: 86400 -> '1d', 90 -> '90s'."""
    for unit in "dhm":
        size = UNIT_SECONDS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size:g}{unit}"
    return f"{seconds:g}s"


def url_problem(text: str) -> str | None:
    """Why `text` is not a usable http(s) URL, or None. Strict: what the fetchers could choke on later
    (an unclosed IPv6 bracket, a port out of range, a space, an impossible host name) is named now."""
    bad = next((c for c in text if ord(c) <= 0x20 or ord(c) == 0x7F), None)
    if bad is not None:
        return f"not a URL: {_shown(text)} contains {bad!r} (spaces and control characters must be %-encoded)"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        return f"malformed URL {_shown(text)}: {exc}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"not an http(s) URL: {_shown(text)}"
    if port == 0:
        return f"malformed URL {_shown(text)}: port 0"
    problem = _host_problem(parts.hostname, bracketed="[" in parts.netloc)
    return None if problem is None else f"malformed URL {_shown(text)}: {problem}"


def database_url_problem(text: str) -> str | None:
    """Why `text` is not a usable PostgreSQL URL, or None; the password never appears in the message."""
    hidden = redacted_url(text)
    shown = repr(hidden) if len(hidden) <= 200 else _shown(hidden)  # the host and database matter here
    bad = next((c for c in text if ord(c) <= 0x20 or ord(c) == 0x7F), None)
    if bad is not None:
        return f"malformed database URL {shown}: it contains {bad!r} (%-encode it)"
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 (parsing the port is the check)
    except ValueError as exc:
        return f"malformed database URL {shown}: {exc}"
    if parts.scheme not in ("postgresql", "postgres"):
        return f"not a PostgreSQL URL: {shown} (it must start with postgresql://)"
    if parts.fragment:
        return f"malformed database URL {shown}: a '#' must be %-encoded"
    try:  # lazy: psycopg is the optional `postgres` extra, and costs start-up time
        from psycopg import ProgrammingError
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        return "a PostgreSQL archive needs the `postgres` extra: pip install 'policy-watchdog[postgres]'"
    try:
        conninfo_to_dict(text)  # libpq's own parser: unknown parameters, bad escapes
    except (ProgrammingError, UnicodeError) as exc:
        return f"malformed database URL {shown}: {str(exc).strip()}"
    return None


def _host_problem(host: str, *, bracketed: bool) -> str | None:
    if bracketed or re.fullmatch(r"[\d.]+", host):
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return f"invalid IP address {host!r}"
        return None
    labels = host.rstrip(".").split(".")
    if len(host) > 253 or not all(DNS_LABEL_RE.match(label) for label in labels):
        return f"invalid host name {host!r}"
    try:
        host.encode("idna")
    except UnicodeError:
        return f"invalid host name {host!r}"
    return None


def _shown(value: object) -> str:
    """A value quoted for a message, shortened: a 400-digit number must not flood the terminal."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}...({len(text)} characters)"


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _toml_type(value: object) -> str:
    names = {
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        list: "an array",
        dict: "a table",
    }
    return names.get(type(value), type(value).__name__)


def _closest(name: str, known: Sequence[str]) -> str | None:
    matches = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return matches[0] if matches else None

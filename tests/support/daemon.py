"""Test support for the daemon stage: `policy-watchdog run` as a real subprocess, a fake systemd notify
socket (an AF_UNIX datagram socket the test binds), a webhook sink that time-stamps what it receives, and
the pages the daemon watches.

Used by tests/test_daemon.py and bench/bench_daemon.py.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from support.postgres import storage_lines
from support.sinks import WebhookSink

# Variables a developer's shell (or systemd, when the suite itself runs as a service) may have set: the
# child gets exactly the ones a test asks for.
_SYSTEMD_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM", "LISTEN_FDS")
_CHANGE_ID = re.compile(r"\b([a-z0-9](?:[a-z0-9-]*[a-z0-9])?@c\d+)\b")
_ATTACHMENT = re.compile(r"^([a-z0-9-]+)-c(\d+)\.diff\.txt$")


def wait_until(predicate: Callable[[], bool], timeout: float, *, every: float = 0.05) -> bool:
    """Poll `predicate` until it holds (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(every)


# --------------------------------------------------------------------------- systemd's side


class NotifySocket:
    """What systemd listens on for sd_notify: a datagram socket, here under an abstract name (no path
    length limit, nothing to clean up). Every datagram is kept with its arrival time."""

    def __init__(self) -> None:
        self.name = f"policy-watchdog-test-{uuid.uuid4().hex}"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind("\0" + self.name)
        self._sock.settimeout(0.1)
        self._lock = threading.Lock()
        self._datagrams: list[tuple[float, str]] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._receive, name="notify-socket", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        """The value of $NOTIFY_SOCKET."""
        return "@" + self.name

    def _receive(self) -> None:
        while not self._stopping.is_set():
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                continue
            with self._lock:
                self._datagrams.append((time.monotonic(), data.decode("utf-8")))

    @property
    def datagrams(self) -> list[str]:
        with self._lock:
            return [text for _at, text in self._datagrams]

    def lines(self) -> list[str]:
        return [line for text in self.datagrams for line in text.split("\n")]

    def count(self, line: str) -> int:
        return self.lines().count(line)

    def statuses(self) -> list[str]:
        return [line.removeprefix("STATUS=") for line in self.lines() if line.startswith("STATUS=")]

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=2)
        self._sock.close()

    def __enter__(self) -> NotifySocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- alert receiver


@dataclass
class TimedWebhookSink(WebhookSink):
    """The webhook sink, plus the arrival time (monotonic) of each accepted alert."""

    times: list[float] = field(default_factory=list)  # monotonic, to compare with the test's own events
    walls: list[float] = field(default_factory=list)  # time.time(), to compare with the daemon's log

    def start(self) -> None:
        super().start()
        # a sender killed mid-request resets the connection: expected in kill -9 tests, not worth a traceback
        setattr(self._server, "handle_error", lambda *_args: None)  # noqa: B010

    def record(self, path: str, body: bytes) -> int:
        status = super().record(path, body)
        if status == 200:
            with self._lock:
                self.times.append(time.monotonic())
                self.walls.append(time.time())
        return status

    def first_arrivals(self) -> dict[str, float]:
        """Change id -> wall-clock time its alert first arrived."""
        with self._lock:
            pairs = list(zip(self.walls, self.received, strict=True))
        first: dict[str, float] = {}
        for at, payload in pairs:
            for change in change_ids(payload):
                first.setdefault(change, at)
        return first

    def deliveries(self) -> list[tuple[float, str]]:
        """(arrival time, change id) for every accepted alert about a change, in arrival order."""
        with self._lock:
            pairs = list(zip(self.times, self.received, strict=True))
        return [(at, change) for at, payload in pairs for change in change_ids(payload)]


@pytest.fixture
def sink() -> Iterator[TimedWebhookSink]:
    """A webhook receiver that time-stamps what it accepts (the daemon and failover tests' channel)."""
    webhook = TimedWebhookSink()
    webhook.start()
    try:
        yield webhook
    finally:
        webhook.stop()


def change_ids(payload: Mapping[str, Any]) -> set[str]:
    """The change ids an apprise json:// payload is about: the diff attachment's name, else the text."""
    named = {
        f"{m.group(1)}@c{m.group(2)}"
        for attachment in payload.get("attachments") or ()
        if (m := _ATTACHMENT.match(str(attachment.get("filename", ""))))
    }
    if named:
        return named
    return set(_CHANGE_ID.findall(f"{payload.get('title', '')}\n{payload.get('message', '')}"))


# --------------------------------------------------------------------------- the daemon process


class DaemonProcess:
    """`python -m watchdog --config PATH run`, stderr kept in a file (a pipe nobody reads could fill up
    and block the daemon)."""

    def __init__(self, config_path: Path, *, env: Mapping[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "watchdog", "--config", str(config_path), "run"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            env=dict(env),
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def send(self, signum: int) -> None:
        self.process.send_signal(signum)

    def kill(self) -> int:
        """kill -9, and reap."""
        self.process.kill()
        return self.process.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM and wait; a daemon that does not stop in time is killed and the test fails on it."""
        if self.running():
            self.send(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def close(self) -> None:
        if self.running():
            self.kill()
        self._log.close()

    def __enter__(self) -> DaemonProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def daemon_env(
    *, notify: NotifySocket | None = None, watchdog_usec: int | None = None, **extra: str
) -> dict[str, str]:
    """The child's environment: ours without systemd's variables, plus the ones asked for. WATCHDOG_PID
    is left out on purpose: systemd sets it to the main pid, which we only learn after the fork."""
    env = {k: v for k, v in os.environ.items() if k not in _SYSTEMD_VARIABLES}
    if notify is not None:
        env["NOTIFY_SOCKET"] = notify.address
    if watchdog_usec is not None:
        env["WATCHDOG_USEC"] = str(watchdog_usec)
    env.update(extra)
    return env


@dataclass
class Daemons:
    """Starts daemons for one test, numbering their logs, and makes sure none outlives it."""

    config_path: Path
    log_dir: Path
    started: list[DaemonProcess] = field(default_factory=list)

    def start(self, **env: Any) -> DaemonProcess:
        log_path = self.log_dir / f"daemon-{len(self.started) + 1}.log"
        process = DaemonProcess(self.config_path, env=daemon_env(**env), log_path=log_path)
        self.started.append(process)
        return process

    def logs(self) -> str:
        return "\n".join(p.log() for p in self.started)

    def grep(self, needle: str) -> str:
        """The log lines of every run that contain `needle`, each prefixed with its run's number."""
        return "".join(
            f"run {n}: {line}\n"
            for n, p in enumerate(self.started, 1)
            for line in p.log().splitlines()
            if needle in line
        )

    def close(self) -> None:
        for process in self.started:
            process.close()


def split_duplicates(
    deliveries: list[tuple[float, str]], kills: list[float], *, window: float, in_transit: float = 0.1
) -> tuple[list[str], list[str]]:
    """(explained, unexplained) change ids received more than once; times are monotonic seconds.

    A repeat is explained by a kill -9 that fell in the outbox's duplicate window of the previous copy:
    from `in_transit` seconds before that copy arrived (the request was on the wire when the sender died;
    the sink stamps a request once it has read it) to `window` seconds after (the channel had accepted it,
    delivered_at was not committed yet). Anything else sent twice is a bug.
    """
    last_seen: dict[str, float] = {}
    explained: list[str] = []
    unexplained: list[str] = []
    for at, change in deliveries:
        previous = last_seen.get(change)
        if previous is not None:
            hit = any(previous - in_transit <= k <= min(previous + window, at) for k in kills)
            (explained if hit else unexplained).append(change)
        last_seen[change] = at
    return explained, unexplained


# --------------------------------------------------------------------------- pages


FILLER = (
    "This policy describes the information we process to support Facebook, Instagram, Messenger and "
    "other products and features offered by Meta Platforms. It explains how we collect, use and share "
    "information, how long we keep it, and how you can manage it in your settings at any time."
)


def policy_markdown(version: int, *, title: str = "Privacy Policy") -> str:
    """A policy text whose version sentence touches the opt-out topic: each version is a new wording."""
    return (
        f"# {title}\n\n{FILLER}\n\n"
        f"Revision {version}: you can object (opt out) to the use of your public posts for AI training "
        f"by filling in form number {version * 7 + 3}.\n\n{FILLER}\n"
    )


def policy_page(version: int, *, seed: int = 0, title: str = "Privacy Policy") -> bytes:
    """The policy as an HTML page with seeded invisible noise (tests/support/corpus.py)."""
    from support.corpus import render_page

    return render_page(policy_markdown(version, title=title), seed=seed)


# --------------------------------------------------------------------------- configs


@dataclass(frozen=True)
class Watched:
    """One target of a daemon test config. `base` overrides the server's base URL (e.g. the same server
    as "localhost", which the fetchers count as another host)."""

    id: str
    path: str
    interval: str = "1s"
    extra: str = 'notify = "all"'
    base: str | None = None


def write_daemon_config(
    directory: Path,
    base_url: str,
    targets: Sequence[Watched],
    *,
    channels: Sequence[str] = (),
    head: str = "",
) -> Path:
    """watchdog.toml for the daemon: archive in `directory/archive`, quick fetch retries, no confirm delay."""
    lines = [head, "[storage]", 'dir = "archive"', *storage_lines(), "[fetch]", "retries = 1", "backoff = 0"]
    lines += ["timeout = 5", ""]
    for t in targets:
        url = (t.base or base_url) + t.path
        lines += ["[[targets]]", f'id = "{t.id}"', f"url = {json.dumps(url)}", 'select = ["#root"]']
        lines += ['confirm_delay = "0s"', f'interval = "{t.interval}"', t.extra, ""]
    for url in channels:
        lines += ["[[channels]]", f"url = {json.dumps(url)}", ""]
    path = directory / "watchdog.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path

"""The daemon against wall-clock steps (issue 11, point 4): a step back must not stall the checks, a step
forward must not make every target due at once.

The daemon runs in-process around the real pipeline and the local page server; only its wall clock is
injected (`Edges.clock`): the real wall clock plus an offset the test changes, as an admin's `date -s` or
a VM restored from a snapshot would. The boot-time clock it compares against is the real one.

Before the fix (due times compared with the raw wall clock) the step back of one hour gave 0 checks in the
following seconds, and the step forward ran every target at once.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from support.daemon import Watched, policy_page, wait_until, write_daemon_config
from support.pageserver import PageServer
from watchdog.config import load_config
from watchdog.daemon import ClockWatch, Daemon, Edges, Schedule, SignalFlags, Wakeup
from watchdog.models import Outcome, Target
from watchdog.pipeline import Context, check_target
from watchdog.sdnotify import SystemdNotifier
from watchdog.storage.sqlite import SqliteStorage

HOUR = timedelta(hours=1)


@dataclass
class SettableClock:
    """The real wall clock, plus an offset: `set(+1h)` is `date -s "now + 1 hour"` for this process only."""

    offset: timedelta = timedelta(0)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self) -> datetime:
        with self.lock:
            return datetime.now(UTC) + self.offset

    def step(self, delta: timedelta) -> None:
        with self.lock:
            self.offset += delta


@dataclass
class CheckLog:
    """When each real check started (monotonic seconds), per target."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    starts: list[tuple[float, str]] = field(default_factory=list)

    def check(self, target: Target, ctx: Context) -> Outcome:
        with self.lock:
            self.starts.append((time.monotonic(), target.id))
        return check_target(target, ctx)

    def since(self, moment: float) -> list[str]:
        with self.lock:
            return [target_id for at, target_id in self.starts if at >= moment]

    def count(self, target_id: str) -> int:
        with self.lock:
            return sum(1 for _at, t in self.starts if t == target_id)


@pytest.fixture
def running_daemon(tmp_path: Path) -> Iterator[list[tuple[Daemon, threading.Thread]]]:
    """Daemons started by a test; stopped (their loop ended), and their store and pipe closed, after it."""
    started: list[tuple[Daemon, threading.Thread]] = []
    yield started
    for daemon, _loop in started:
        daemon.request_stop()
    for _daemon, loop in started:
        loop.join(20)
        assert not loop.is_alive(), "the loop did not stop"
    assert wait_until(lambda: not any(t.name.startswith("check:") for t in threading.enumerate()), 20)
    for daemon, _loop in started:
        daemon.store.close()
        daemon.wakeup.close()


def start(
    config_path: Path, clock: SettableClock, log: CheckLog, started: list[tuple[Daemon, threading.Thread]]
) -> None:
    config = load_config(config_path)
    edges = Edges(clock=clock, check=log.check, publish=lambda _c, _s: None)
    daemon = Daemon(
        config_path,
        config,
        SqliteStorage.open(config.storage_dir),
        notifier=SystemdNotifier(),
        flags=SignalFlags(),
        wakeup=Wakeup(),
        edges=edges,
    )
    loop = threading.Thread(target=daemon.run, daemon=True)
    started.append((daemon, loop))
    loop.start()


def test_a_clock_step_forward_bunches_nothing_and_a_step_back_stalls_nothing(
    page_server: PageServer, tmp_path: Path, running_daemon: list[tuple[Daemon, threading.Thread]]
) -> None:
    ids = [f"t{i}" for i in range(5)]
    for n, target_id in enumerate(ids):
        page_server.set(f"/{target_id}", policy_page(1, seed=n))
    # five targets every 4 s, started 1 s apart: one check a second, in turn
    watched = [Watched(t, f"/{t}", interval="4s", extra="") for t in ids]
    config = write_daemon_config(tmp_path, page_server.base_url, watched, head="[daemon]\njitter = 0\n")
    clock, log = SettableClock(), CheckLog()
    start(config, clock, log, running_daemon)
    assert wait_until(lambda: all(log.count(t) >= 1 for t in ids), 15), log.starts

    clock.step(+HOUR)  # without step detection every target is an hour overdue at the next wake-up
    forward = time.monotonic()
    time.sleep(3.0)
    starts = [at for at, _t in log.starts if at >= forward]
    assert starts, "checks go on after a step forward"
    assert max_within(starts, 0.3) <= 2, ("a step forward bunched the checks", log.since(forward))

    clock.step(-HOUR)  # without step detection every target is an hour away: no check for an hour
    back = time.monotonic()
    assert wait_until(lambda: set(log.since(back)) == set(ids), 10), (
        "after a step back every target is still checked on its interval",
        log.since(back),
    )


def max_within(moments: list[float], span: float) -> int:
    """The most moments that fall within any `span` seconds."""
    ordered = sorted(moments)
    return max(
        (sum(1 for m in ordered[i:] if m - first <= span) for i, first in enumerate(ordered)), default=0
    )


def test_clock_watch_tells_a_step_from_drift() -> None:
    elapsed = [100.0]
    wall = [datetime(2026, 5, 1, 12, 0, tzinfo=UTC)]
    watch = ClockWatch(lambda: wall[0], lambda: elapsed[0], tolerance=2.0)
    elapsed[0] += 60
    wall[0] += timedelta(seconds=60.5)  # NTP slewing: half a second in a minute is drift, not a step
    assert watch.step() is None
    assert watch.now() == wall[0], "the loop's now follows the wall clock between steps"
    elapsed[0] += 10
    wall[0] += timedelta(seconds=10) - HOUR
    assert watch.step() == -HOUR
    assert watch.now() == wall[0]
    elapsed[0] += 5  # the boot-time clock advances, the wall clock is set back again: only now() sees it
    wall[0] -= HOUR
    assert watch.now() == wall[0] + HOUR + timedelta(seconds=5), "now() only jumps in step()"


def test_schedule_shift_moves_every_due_time_and_returns_them_to_persist() -> None:
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    schedule = Schedule(jitter=0.0, rng=random.Random(1))
    targets = [Target(t, f"https://example.org/{t}", t, interval=HOUR) for t in ("a", "b")]
    schedule.apply(targets, {"a": now + timedelta(minutes=10), "b": now + timedelta(minutes=20)}, now)
    moved = schedule.shift(-HOUR)
    assert moved == {"a": now - timedelta(minutes=50), "b": now - timedelta(minutes=40)}
    assert schedule.due(now - HOUR, busy=lambda _t: False) == [], "still 10 and 20 minutes away"

"""The daemon stage: the schedule (pure), the loop in-process around the real pipeline, and
`policy-watchdog run` as a real subprocess against the local page server, a real webhook sink (apprise
json://) and a fake systemd notify socket: alerts, sd_notify, SIGHUP, SIGTERM, single instance, restarts
and kill -9 across many cycles. The loop and process tests run on both backends (SQLite; a real PostgreSQL).
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from support.daemon import (
    Daemons,
    NotifySocket,
    TimedWebhookSink,
    Watched,
    policy_page,
    split_duplicates,
    wait_until,
    write_daemon_config,
)
from support.pageserver import PageServer, Reply, start_page_server
from support.postgres import Backend
from watchdog.config import load_config
from watchdog.daemon import Daemon, Edges, Schedule, SignalFlags, Wakeup, handling_signals, status_line
from watchdog.errors import StorageError
from watchdog.models import Outcome, Target
from watchdog.notify import default_backoff
from watchdog.pipeline import Context, check_target
from watchdog.publish.evidence import check_archive
from watchdog.sdnotify import SystemdNotifier
from watchdog.storage import open_store
from watchdog.storage.interfaces import Storage

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
S = timedelta(seconds=1)


def target(target_id: str, interval: timedelta = H) -> Target:
    return Target(target_id, f"https://example.org/{target_id}", target_id, interval=interval)


# --------------------------------------------------------------------------- the schedule (pure)

START_CASES = [
    pytest.param(
        [target("a"), target("b"), target("c")],
        {"a": NOW - 2 * H, "b": None, "c": NOW - H},
        {"a": NOW, "c": NOW + S, "b": NOW + 2 * S},
        id="overdue-oldest-first-then-never-checked-one-second-apart",
    ),
    pytest.param(
        [target("a")],
        {"a": NOW + 30 * timedelta(minutes=1)},
        {"a": NOW + 30 * timedelta(minutes=1)},
        id="a-future-due-time-survives-the-restart",
    ),
    pytest.param(
        [target("a")],
        {"a": NOW + 5 * H},
        {"a": NOW + H * 1.1},
        id="a-due-time-beyond-the-shortened-interval-is-pulled-in",
    ),
    pytest.param(
        [target(f"t{i}", 2 * S) for i in range(5)],
        dict.fromkeys([f"t{i}" for i in range(5)]),
        {f"t{i}": NOW + S * (i / 2) for i in range(5)},
        id="the-start-up-spread-never-exceeds-the-shortest-interval",
    ),
    pytest.param(
        [target("a"), target("b")],
        {"a": NOW, "b": NOW + S},
        {"a": NOW, "b": NOW + S},
        id="due-exactly-now-runs-now",
    ),
]


@pytest.mark.parametrize(("targets", "persisted", "expected"), START_CASES)
def test_schedule_after_a_restart(
    targets: list[Target], persisted: dict[str, datetime | None], expected: dict[str, datetime]
) -> None:
    schedule = Schedule(jitter=0.1, rng=random.Random(1))
    assert schedule.apply(targets, persisted, NOW) == expected
    assert {t.id: schedule.due_at(t.id) for t in targets} == expected


def test_schedule_after_a_check_adds_the_interval_and_a_bounded_jitter() -> None:
    schedule = Schedule(jitter=0.25, rng=random.Random(7))
    schedule.apply([target("a")], {}, NOW)
    waits = [(schedule.done("a", NOW) or NOW) - NOW for _ in range(200)]
    assert all(H <= w <= H * 1.25 for w in waits)
    assert len(set(waits)) > 150, "the jitter is random, not a constant"
    assert schedule.done("unknown", NOW) is None


def test_schedule_reload_adds_drops_and_reschedules() -> None:
    schedule = Schedule(jitter=0.0, rng=random.Random(1))
    schedule.apply([target("keep"), target("gone"), target("slower"), target("faster")], {}, NOW)
    for tid in ("keep", "gone", "slower", "faster"):
        schedule.done(tid, NOW)  # all due at NOW + 1h
    later = NOW + 10 * timedelta(minutes=1)
    new = [
        target("keep"),
        target("slower", 2 * H),
        target("faster", 20 * timedelta(minutes=1)),
        target("new"),
    ]
    changed = schedule.apply(new, {"new": None}, later)
    assert changed == {"slower": NOW + H, "faster": later + 20 * timedelta(minutes=1), "new": later}
    assert schedule.due_at("keep") == NOW + H, "an unchanged target keeps its time"
    assert schedule.due_at("gone") is None and schedule.done("gone", later) is None
    assert [t.id for t in schedule.targets] == ["keep", "slower", "faster", "new"]
    much_later = NOW + 3 * H  # every target overdue, waiting for a worker: a reload keeps the queue as is
    assert schedule.apply(new, {}, much_later) == {}
    assert [t.id for t in schedule.due(much_later, busy=set().__contains__)] == [
        "new",
        "faster",
        "keep",
        "slower",
    ]


def test_schedule_due_skips_targets_in_flight_and_serves_the_longest_overdue_first() -> None:
    schedule = Schedule(jitter=0.0, rng=random.Random(1))
    persisted: dict[str, datetime | None] = {"a": NOW + 3 * S, "b": NOW + 2 * S, "c": NOW + S}
    schedule.apply([target("a"), target("b"), target("c")], persisted, NOW)
    busy = {"b"}
    assert [t.id for t in schedule.due(NOW + 10 * S, busy=busy.__contains__)] == ["c", "a"]
    assert [t.id for t in schedule.due(NOW + 10 * S, busy=set().__contains__)] == ["c", "b", "a"]
    assert schedule.next_due(busy={"c"}.__contains__) == NOW + 2 * S
    assert schedule.due(NOW, busy=busy.__contains__) == []


def test_schedule_heap_answers_as_a_full_sort_would_through_reloads_checks_and_clock_steps() -> None:
    """The schedule keeps a heap so that a pass costs O(due x log targets), not a sort of every target: over
    thousands of random operations (checks ending, reloads adding and dropping targets, clock steps, busy
    targets) its answers equal those of a full sort of the due times, and stale heap entries are dropped
    (the heap stays within a bound of the live targets)."""
    rng = random.Random(13)
    schedule = Schedule(jitter=0.5, rng=random.Random(2))
    ids = [f"t{i:03d}" for i in range(300)]
    now = NOW
    schedule.apply([target(i, S * rng.randint(1, 30)) for i in ids[:200]], {}, now)
    for step in range(3000):
        now += S * rng.random()
        live = [t.id for t in schedule.targets]
        busy = set(rng.sample(live, min(len(live), rng.randint(0, 6))))
        limit = rng.choice([None, 1, 4, 16])
        order = sorted((schedule.due_at(i), i) for i in live)
        expected = [i for d, i in order if d is not None and d <= now and i not in busy][:limit]
        assert [t.id for t in schedule.due(now, busy=busy.__contains__, limit=limit)] == expected
        free = [(d, i) for d, i in order if i not in busy]
        assert schedule.next_due(busy=busy.__contains__) == (free[0][0] if free else None)
        roll = rng.random()
        if roll < 0.8 and expected:
            schedule.done(rng.choice(expected), now)
        elif roll < 0.81:
            kept = rng.sample(ids, 200)
            schedule.apply([target(i, S * rng.randint(1, 30)) for i in kept], {}, now)
        elif roll < 0.815:
            schedule.shift(S * rng.randint(-600, 600))
        assert len(schedule._heap) <= 2 * len(schedule.targets) + 64 + 1, f"step {step}"


def test_a_pass_of_the_schedule_looks_at_the_due_head_only() -> None:
    """With 20,000 targets all overdue, asking for the first 4 due targets walks a handful of heap
    entries, not the whole schedule: counted through the `busy` callback, called once per entry looked at."""
    schedule = Schedule(jitter=0.0, rng=random.Random(1))
    many = [target(f"t{i:05d}", 24 * H) for i in range(20_000)]
    schedule.apply(many, {t.id: NOW + S * (20_000 - i) for i, t in enumerate(many)}, NOW)
    later = NOW + 24 * H  # all overdue by then
    looked: list[str] = []
    in_flight = {"t19999", "t19998"}  # the two most overdue

    def busy(target_id: str) -> bool:
        looked.append(target_id)
        return target_id in in_flight

    assert [t.id for t in schedule.due(later, busy=busy, limit=4)] == ["t19997", "t19996", "t19995", "t19994"]
    assert len(looked) == 6, "the 4 taken and the 2 in flight above them"
    looked.clear()
    assert schedule.next_due(busy=busy) == NOW + S * 3
    assert len(looked) == 3


def test_status_line_reads_like_a_sentence() -> None:
    due = datetime(2026, 5, 1, 14, 5, 9).astimezone()  # a local time, as the person reading it sees it
    assert status_line(targets=12, failing=1, next_due=due) == "12 targets, 1 failing, next check 14:05:09"
    assert status_line(targets=1, failing=0, next_due=None) == "1 target, 0 failing, nothing scheduled"


def test_a_signal_sets_its_flag_and_wakes_the_sleeping_loop() -> None:
    flags, wakeup = SignalFlags(), Wakeup()
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        with handling_signals(flags, wakeup):
            threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGHUP)).start()
            wakeup.wait(30)  # returns on the signal, not after 30 s
            assert flags.reload and not flags.stop
            os.kill(os.getpid(), signal.SIGTERM)
            wakeup.wait(30)
            assert flags.stop
        assert {signum: signal.getsignal(signum) for signum in before} == before, "handlers restored"
    finally:
        wakeup.close()


# --------------------------------------------------------------------------- the loop, in-process


@dataclass
class Census:
    """Wraps the real check_target, counting checks in flight overall and per target."""

    hold: Callable[[Target], None] = lambda _t: None
    lock: threading.Lock = field(default_factory=threading.Lock)
    now: int = 0
    peak: int = 0
    per_target: dict[str, int] = field(default_factory=dict)
    peak_per_target: dict[str, int] = field(default_factory=dict)
    done: dict[str, int] = field(default_factory=dict)

    def check(self, t: Target, ctx: Context) -> Outcome:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
            self.per_target[t.id] = self.per_target.get(t.id, 0) + 1
            self.peak_per_target[t.id] = max(self.peak_per_target.get(t.id, 0), self.per_target[t.id])
        try:
            self.hold(t)
            return check_target(t, ctx)
        finally:
            with self.lock:
                self.now -= 1
                self.per_target[t.id] -= 1
                self.done[t.id] = self.done.get(t.id, 0) + 1


@dataclass
class InProcess:
    daemon: Daemon
    store: Storage
    thread: threading.Thread
    result: list[int]

    def stop(self, timeout: float = 10.0) -> int:
        self.daemon.request_stop()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the loop did not stop"
        return self.result[0]


@pytest.fixture
def in_process(tmp_path: Path, each_backend: Backend) -> Iterator[Callable[..., InProcess]]:
    started: list[InProcess] = []

    def start(
        config_path: Path, *, check: Callable[[Target, Context], Outcome], stop_timeout: float = 5.0
    ) -> InProcess:
        config = load_config(config_path)
        store = open_store(config)
        wakeup = Wakeup()
        edges = Edges(check=check, stop_timeout=stop_timeout, publish=lambda _c, _s: None)
        daemon = Daemon(
            config_path,
            config,
            store,
            notifier=SystemdNotifier(),
            flags=SignalFlags(),
            wakeup=wakeup,
            edges=edges,
        )
        result: list[int] = []
        thread = threading.Thread(target=lambda: result.append(daemon.run()), daemon=True)
        thread.start()
        started.append(InProcess(daemon, store, thread, result))
        return started[-1]

    yield start
    for run in started:
        if run.thread.is_alive():
            run.daemon.request_stop()
            run.thread.join(10)
    # abandoned jobs (daemon threads) still use the store and the fetchers: let them end first
    jobs = ("check:", "deliver:", "publish:")
    assert wait_until(lambda: not any(t.name.startswith(jobs) for t in threading.enumerate()), 20)
    for run in started:
        if run.daemon.abandoned:
            run.daemon.runtime.ctx.fetchers.close()
        run.store.close()
        run.daemon.wakeup.close()


def test_bounded_concurrency_across_hosts_and_never_one_target_twice(
    page_server: PageServer, tmp_path: Path, in_process: Callable[..., InProcess]
) -> None:
    # 4 targets on two "hosts" (127.0.0.1 and localhost: one request at a time each), slow pages, 2 workers
    local = page_server.base_url.replace("127.0.0.1", "localhost")
    watched = [Watched(f"t{i}", f"/t{i}", base=local if i % 2 else None) for i in range(4)]
    for i in range(4):
        page_server.set(f"/t{i}", Reply(body=policy_page(1, seed=i), delay=0.3))
    config = write_daemon_config(tmp_path, page_server.base_url, watched, head="[daemon]\nmax_workers = 2\n")
    # Each target's first check waits (up to 5 s) for a second check to start: the bound is reached by
    # design, not by how the start-up spread and the page delays happened to fall (a serial daemon fails)
    census = Census(hold=Lockstep(parties=2, patience=5.0).hold)
    run = in_process(config, check=census.check)
    assert wait_until(lambda: all(census.done.get(f"t{i}", 0) >= 2 for i in range(4)), 30), census
    assert run.stop() == 0
    assert census.peak == 2, "at most max_workers checks at once, and the bound is reached across hosts"
    assert set(census.peak_per_target.values()) == {1}, "a target in flight is never started again"
    states = {s.id: s for s in run.store.archive.target_states()}
    assert all(states[f"t{i}"].current_version == f"t{i}@v1" for i in range(4))
    assert all(states[f"t{i}"].next_due_at is not None for i in range(4)), "the next due time is persisted"


def test_a_storage_error_stops_the_daemon_with_exit_code_1(
    page_server: PageServer, tmp_path: Path, in_process: Callable[..., InProcess]
) -> None:
    page_server.set("/ok", policy_page(1))
    page_server.set("/disk", policy_page(1, title="Other"))
    config = write_daemon_config(
        tmp_path, page_server.base_url, [Watched("ok", "/ok"), Watched("disk", "/disk")]
    )

    def full_disk(t: Target) -> None:
        if t.id == "disk" and census.done.get("disk", 0) >= 1:
            raise StorageError("cannot write blob: No space left on device")

    census = Census(hold=full_disk)
    run = in_process(config, check=census.check)
    run.thread.join(20)
    assert not run.thread.is_alive(), "a storage error is fatal: the loop stops by itself"
    assert run.result == [1]
    ok = run.store.archive.target_state("ok")
    assert ok is not None and ok.current_version == "ok@v1", "the other target's check was committed"


def test_stop_abandons_a_stuck_check_at_the_deadline(
    page_server: PageServer, tmp_path: Path, in_process: Callable[..., InProcess]
) -> None:
    page_server.set("/ok", policy_page(1))
    page_server.set("/stuck", policy_page(1, title="Stuck"))
    config = write_daemon_config(
        tmp_path, page_server.base_url, [Watched("ok", "/ok"), Watched("stuck", "/stuck")]
    )
    release = threading.Event()

    def stuck(t: Target) -> None:
        if t.id == "stuck":
            release.wait(60)

    census = Census(hold=stuck)
    run = in_process(config, check=census.check, stop_timeout=0.5)
    try:
        assert wait_until(lambda: census.done.get("ok", 0) >= 2 and census.per_target.get("stuck") == 1, 20)
        assert run.stop() == 0
        assert run.daemon.abandoned == ["stuck"]
        assert census.done.get("stuck", 0) == 0
        stuck_state = run.store.archive.target_state("stuck")
        assert stuck_state is not None and stuck_state.current_version is None, "nothing half-written"
    finally:
        release.set()


@dataclass
class Lockstep:
    """Holds each target's n-th check until every target has started its n-th one (at most `patience`
    seconds): checks of targets that share a text then store it at the same moment, which a daemon meets
    by chance (same interval, a restart) and a test must meet every round."""

    parties: int
    patience: float = 2.0
    condition: threading.Condition = field(default_factory=threading.Condition)
    arrived: dict[int, int] = field(default_factory=dict)
    started: dict[str, int] = field(default_factory=dict)

    def hold(self, t: Target) -> None:
        with self.condition:
            n = self.started[t.id] = self.started.get(t.id, 0) + 1
            self.arrived[n] = self.arrived.get(n, 0) + 1
            self.condition.notify_all()
            self.condition.wait_for(lambda: self.arrived[n] >= self.parties, timeout=self.patience)


SHARED_ROUNDS = 12


@pytest.mark.slow
def test_workers_storing_one_text_at_once_never_stop_the_daemon(
    tmp_path: Path, in_process: Callable[..., InProcess]
) -> None:
    """Issue 16: four targets on four hosts serve the very same page, a new text each round; four workers
    check them at once, so their threads store the same blobs at the same moment, round after round. Before
    the fix the shared temporary name made one of them fail and the daemon stop ("storage error")."""
    servers = [start_page_server() for _ in range(4)]  # four hosts: fetched at the same moment
    try:
        pages = [policy_page(v) for v in range(1, SHARED_ROUNDS + 1)]  # one seed: the same bytes everywhere
        for server in servers:
            server.set("/policy", *pages, etag=False)
        watched = [Watched(f"t{i}", "/policy", base=s.base_url) for i, s in enumerate(servers)]
        head = "[daemon]\nmax_workers = 4\njitter = 0\n"
        config = write_daemon_config(tmp_path, servers[0].base_url, watched, head=head)
        census = Census(hold=Lockstep(parties=4).hold)
        run = in_process(config, check=census.check)
        ids = [w.id for w in watched]
        finished = wait_until(
            lambda: not run.thread.is_alive() or all(census.done.get(i, 0) >= SHARED_ROUNDS for i in ids),
            SHARED_ROUNDS * 3 + 10,
        )
        assert run.thread.is_alive(), f"the daemon stopped (exit {run.result}) after {census.done}"
        assert finished, census.done
        assert run.stop() == 0
    finally:
        for server in servers:
            server.stop()
    texts = {i: [run.store.archive.version_text(v.id) for v in run.store.archive.versions(i)] for i in ids}
    assert all(len(t) == SHARED_ROUNDS for t in texts.values()), {i: len(t) for i, t in texts.items()}
    assert len({tuple(t) for t in texts.values()}) == 1, "every target archived the same texts"
    assert check_archive(run.store).problems == ()
    leftovers = [p for p in (tmp_path / "archive").rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


# --------------------------------------------------------------------------- the real process


@pytest.fixture
def notify_socket() -> Iterator[NotifySocket]:
    with NotifySocket() as sock:
        yield sock


@pytest.fixture
def daemons(tmp_path: Path, each_backend: Backend) -> Iterator[Callable[[Path], Daemons]]:
    made: list[Daemons] = []

    def make(config_path: Path) -> Daemons:
        made.append(Daemons(config_path, tmp_path))
        return made[-1]

    yield make
    for group in made:
        group.close()


def archive(config_path: Path) -> Storage:
    return open_store(load_config(config_path), writer=False)


def test_run_checks_alerts_and_talks_to_systemd(
    page_server: PageServer,
    tmp_path: Path,
    sink: TimedWebhookSink,
    notify_socket: NotifySocket,
    daemons: Callable[[Path], Daemons],
) -> None:
    page_server.set("/a", *[policy_page(v, seed=n) for n, v in enumerate((1, 1, 2, 2, 3))], etag=False)
    page_server.set("/b", policy_page(1, title="Terms"))
    page_server.set("/down", Reply(status=500, body="oops"))
    watched = [Watched("a", "/a"), Watched("b", "/b"), Watched("down", "/down")]
    config = write_daemon_config(tmp_path, page_server.base_url, watched, channels=[sink.url])
    group = daemons(config)
    run = group.start(notify=notify_socket, watchdog_usec=2_000_000)

    got_both = wait_until(lambda: {c for _at, c in sink.deliveries()} >= {"a@c1", "a@c2"}, 30)
    assert got_both, (sink.received, group.logs())
    assert wait_until(lambda: any("3 targets, 1 failing" in s for s in notify_socket.statuses()), 15)
    b_hits = page_server.hits("/b")
    assert wait_until(lambda: page_server.hits("/b") >= b_hits + 2, 10), "a failing target stops no other"
    assert wait_until(lambda: notify_socket.count("WATCHDOG=1") >= 3, 10)
    started = time.monotonic()
    assert run.stop(timeout=10) == 0
    assert time.monotonic() - started < 10

    lines = notify_socket.lines()
    assert lines[0] == "READY=1", lines[:5]
    assert lines[-1] == "STOPPING=1"
    assert any(s.startswith("3 targets, ") and ", next check " in s for s in notify_socket.statuses())
    log = run.log()
    assert "Traceback" not in log, log
    assert "a: changed: a@c1" in log
    ids = [c for _at, c in sink.deliveries()]
    assert sorted(ids) == sorted(set(ids)), "no alert twice"
    with archive(config) as store:
        assert [c.id for c in store.archive.changes(target="a")] == ["a@c2", "a@c1"]
        assert store.outbox.all_pending() == []


def test_sighup_applies_a_new_config_and_survives_a_broken_one(
    page_server: PageServer, tmp_path: Path, notify_socket: NotifySocket, daemons: Callable[[Path], Daemons]
) -> None:
    page_server.set("/a", policy_page(1))
    page_server.set("/b", policy_page(1, title="Added"))
    config = write_daemon_config(tmp_path, page_server.base_url, [Watched("a", "/a")])
    run = daemons(config).start(notify=notify_socket)
    assert wait_until(lambda: notify_socket.count("READY=1") == 1 and page_server.hits("/a") >= 1, 15)

    write_daemon_config(tmp_path, page_server.base_url, [Watched("a", "/a"), Watched("b", "/b")])
    run.send(signal.SIGHUP)
    assert wait_until(lambda: page_server.hits("/b") >= 2, 15), run.log()
    assert wait_until(lambda: notify_socket.count("READY=1") == 2, 5)
    assert notify_socket.count("RELOADING=1") == 1

    write_daemon_config(
        tmp_path, page_server.base_url, [Watched("a", "/a")], head="[daemon]\nmax_workerz = 3\n"
    )
    run.send(signal.SIGHUP)
    assert wait_until(lambda: notify_socket.count("READY=1") == 3, 10), run.log()
    hits = (page_server.hits("/a"), page_server.hits("/b"))
    assert wait_until(
        lambda: page_server.hits("/a") > hits[0] + 1 and page_server.hits("/b") > hits[1] + 1, 15
    )
    assert run.running()
    log = run.log()
    assert "daemon.max_workerz: unknown key (did you mean 'max_workers'?)" in log, log
    assert "still running the previous one" in log
    assert run.stop() == 0


def test_a_second_writer_is_refused_while_run_is_active(
    page_server: PageServer,
    tmp_path: Path,
    notify_socket: NotifySocket,
    daemons: Callable[[Path], Daemons],
    each_backend: Backend,
) -> None:
    """SQLite: one writer per storage dir. PostgreSQL: a shared archive, where a second daemon (a second
    node) and a `check` beside the running daemon are welcome (test_cluster.py tests them at length)."""
    page_server.set("/a", policy_page(1))
    config = write_daemon_config(tmp_path, page_server.base_url, [Watched("a", "/a")])
    group = daemons(config)
    first = group.start(notify=notify_socket)
    assert wait_until(lambda: notify_socket.count("READY=1") == 1, 15)
    if each_backend.name == "postgres":
        second = group.start()
        assert subprocess_run(config, "check", "a").returncode == 0
        assert second.running() and first.running()
        assert second.stop() == 0 and first.stop() == 0
        return
    second = group.start()
    assert second.process.wait(timeout=20) == 1
    check = subprocess_run(config, "check")
    for stderr in (second.log(), check.stderr):
        assert f"is in use by policy-watchdog (pid {first.pid})" in stderr, stderr
        assert "Traceback" not in stderr
    assert check.returncode == 1
    assert first.running()
    assert first.stop() == 0


def subprocess_run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    return subprocess.run(
        [sys.executable, "-m", "watchdog", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_restart_neither_stampedes_nor_skips(
    page_server: PageServer, tmp_path: Path, notify_socket: NotifySocket, daemons: Callable[[Path], Daemons]
) -> None:
    ids = ("a", "b", "c")
    for tid in ids:
        page_server.set(f"/{tid}", policy_page(1, title=tid.upper()))
    config = write_daemon_config(
        tmp_path, page_server.base_url, [Watched(t, f"/{t}", interval="1h") for t in ids]
    )
    group = daemons(config)

    def hits() -> list[int]:
        return [page_server.hits(f"/{t}") for t in ids]

    first = group.start(notify=notify_socket)
    assert wait_until(lambda: hits() == [1, 1, 1], 15), hits()
    assert first.stop() == 0
    due = next_due(config)
    assert all(
        timedelta(minutes=59) < d - datetime.now(UTC) <= timedelta(hours=1, minutes=7) for d in due.values()
    )

    second = group.start(notify=notify_socket)
    assert wait_until(lambda: notify_socket.count("READY=1") == 2, 15)
    time.sleep(2)  # anything scheduled at start-up would have run by now
    assert hits() == [1, 1, 1], "nothing runs before its persisted due time"
    assert second.stop() == 0
    assert next_due(config) == due

    with open_store(load_config(config)) as store:  # as if we had been down for hours
        store.checks.set_next_due(dict.fromkeys(ids, datetime.now(UTC) - timedelta(hours=3)))
    third = group.start(notify=notify_socket)
    assert wait_until(lambda: hits() == [2, 2, 2], 15), "a due time that passed while down runs soon"
    assert third.stop() == 0


def next_due(config: Path) -> dict[str, datetime]:
    with archive(config) as store:
        return {s.id: s.next_due_at for s in store.archive.target_states() if s.next_due_at is not None}


# --------------------------------------------------------------------------- kill -9 across many cycles

VERSIONS = 6  # each served twice in a row: v0 v0 v1 v1 ... v5 (then v5 for ever)
KILLS = 10
# An alert accepted by the channel within this many seconds before a kill may not have been marked
# delivered yet (notify.py: "the one window where a crash can duplicate an alert"); it then goes out again
# after the restart. bench/bench_daemon.py measures the window: about a millisecond at this load, hundreds
# under saturation (the commit waits for the store behind checks). Any other repeat is a bug: a repeat
# with no kill between the two copies, or of an alert delivered long before the kill.
DUPLICATE_WINDOW = 1.0


@pytest.mark.slow
def test_kill_9_at_random_moments_loses_nothing_and_sends_nothing_twice(
    page_server: PageServer,
    tmp_path: Path,
    sink: TimedWebhookSink,
    daemons: Callable[[Path], Daemons],
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    ids = ("a", "b", "c")
    scripts = {
        t: [policy_page(v, seed=n, title=t.upper()) for n, v in enumerate(sorted([*range(VERSIONS)] * 2))]
        for t in ids
    }
    for tid, script in scripts.items():
        page_server.set(f"/{tid}", *script, etag=False)
    config = write_daemon_config(
        tmp_path, page_server.base_url, [Watched(t, f"/{t}") for t in ids], channels=[sink.url]
    )
    group = daemons(config)
    kills: list[float] = []
    for _ in range(KILLS):
        victim = group.start()
        time.sleep(rng.uniform(0.2, 1.6))
        kills.append(time.monotonic())
        victim.kill()

    final = group.start()
    last = f"Revision {VERSIONS - 1}:"
    assert wait_until(lambda: current_texts_contain(config, ids, last), 40, every=0.2), group.logs()[-3000:]
    with archive(config) as store:
        changes = {c.id for c in store.archive.changes()}  # the pages no longer change: neither will this
    # a kill during a send leaves an attempt of unknown outcome (the channel may have the alert): by design
    # (notify.py) its one re-send waits out the first backoff, holding that channel's later rows behind it
    settle = 20 + default_backoff(1).total_seconds()
    delivered_all = wait_until(lambda: {c for _at, c in sink.deliveries()} >= changes, settle)
    assert delivered_all, (changes, sink.deliveries())
    assert final.stop() == 0

    config_obj = load_config(config)
    if (
        config_obj.storage.url is None
    ):  # SQLite's own check of the file (PostgreSQL's crash safety is its own)
        with closing(
            sqlite3.connect(f"file:{config_obj.storage_dir / 'archive.sqlite3'}?mode=ro", uri=True)
        ) as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    with archive(config) as store:
        for tid in ids:
            versions = store.archive.versions(tid)
            hashes = [v.text_hash for v in versions]
            assert len(set(hashes)) == len(hashes), f"{tid}: a text archived twice (seed {seed})"
            assert f"Revision {VERSIONS - 1}:" in store.archive.version_text(versions[0].id), (
                "the last text is current"
            )
            chain = sorted(store.archive.changes(target=tid), key=lambda c: c.seq)
            assert len(chain) == len(versions) - 1
            assert [c.from_version for c in chain[1:]] == [c.to_version for c in chain[:-1]]
        assert store.outbox.all_pending() == [], "every owed alert was delivered"
    delivered = sink.deliveries()
    assert {c for _at, c in delivered} == changes, "every change alerted, nothing else"
    explained, unexplained = split_duplicates(delivered, kills, window=DUPLICATE_WINDOW)
    assert unexplained == [], f"alerts sent twice without a kill in the window (seed {seed}): {unexplained}"
    with capsys.disabled():
        print(
            f"\n[kill -9] {KILLS} kills, {len(changes)} changes, {len(explained)} kill(s) landed in the "
            f"duplicate window (between the channel accepting and the commit): {explained}"
        )


def current_texts_contain(config: Path, ids: Sequence[str], needle: str) -> bool:
    with archive(config) as store:
        states = [store.archive.target_state(tid) for tid in ids]
        current = [s.current_version if s else None for s in states]
        return all(v is not None and needle in store.archive.version_text(v) for v in current)

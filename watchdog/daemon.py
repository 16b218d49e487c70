"""The daemon (`policy-watchdog run`): the schedule loop around the pipeline, signals and sd_notify.

    Schedule -> Workers (pipeline.check_target on threads) -> next due persisted -> deliver -> publish

Nothing else lives here: a check is `pipeline.check_target` (which commits everything it learned in one
store transaction), delivery is `pipeline.deliver`, publishing is `watchdog.publish.after_cycle`. The pieces:

- `Schedule`: when each target is next due. Pure (no store, no threads, no clock of its own). Due times are
  persisted by the loop after each check, so a restart neither stampedes (overdue targets are spread out)
  nor skips a target (one whose time passed while we were down runs soon). The next due time is written
  after the check's own transaction: a crash in between costs one extra check, never a skipped one.
- `Workers`: checks (and delivery / publishing passes) on daemon threads. The loop starts at most
  `daemon.max_workers` checks at once and never a second check of a target still in flight. Daemon threads,
  not a ThreadPoolExecutor: the executor's threads are joined at interpreter exit, which would turn the stop
  deadline into a hang behind one stuck check; an abandoned check has committed nothing (one transaction).
- `Wakeup` (a self-pipe) and `SignalFlags`: signal handlers only set a flag and write a byte; finished
  workers write a byte too. The loop sleeps on the pipe until the next due time, so idle costs nothing.
- `ClockWatch`: due times are wall-clock moments (they are persisted and shown), so the loop watches the
  wall clock against the boot-time clock; when someone steps the wall clock (an admin, NTP, a VM restored
  from a snapshot), every due time moves by the same step and stays as far away as it was: a step back
  stalls nothing, a step forward stampedes nothing.
- `Daemon`: the loop. It is the only thread that sends WATCHDOG=1, so a wedged loop gets the service
  restarted; a check stuck far beyond any fetch time-out stops the pings as well. A reload (SIGHUP) is
  prepared in full before it replaces anything: a config that fails validation, or that could not be
  applied, leaves the running one in place.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import logging
import os
import queue
import random
import select
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Literal

from watchdog.chores import deliver_in_child
from watchdog.config import Config, load_config
from watchdog.errors import ConfigError, ConflictError, StorageError, WatchdogError
from watchdog.follow import with_followed
from watchdog.models import Target
from watchdog.notify import channel_health
from watchdog.results import Outcome
from watchdog.sdnotify import SystemdNotifier
from watchdog.storage import open_store
from watchdog.storage.address import redacted_url
from watchdog.storage.interfaces import Storage

if TYPE_CHECKING:
    from watchdog.pipeline import Context

__all__ = [
    "Daemon",
    "Edges",
    "Schedule",
    "SignalFlags",
    "Wakeup",
    "Workers",
    "cmd_run",
    "run_daemon",
    "status_line",
]

log = logging.getLogger(__name__)

# Below the unit's TimeoutStopSec=30: we exit on our own before systemd resorts to SIGKILL.
STOP_TIMEOUT = 20.0
# Overdue and new targets start this far apart after a (re)start, within MAX_STARTUP_SPREAD and within
# the shortest of their intervals: polite to the sites, and a crash loop cannot turn into a request storm.
STARTUP_GAP = timedelta(seconds=1)
MAX_STARTUP_SPREAD = timedelta(minutes=5)
DELIVERY_MIN_GAP = 2.0  # seconds between two passes over the outbox
DELIVERY_RETRY = 30.0  # after a delivery pass that went wrong, look again this often
# Publishing re-reads the archive, so its cost grows with the archive: at most one refresh per 30 s,
# whatever the rate of changes (feeds a few seconds late are fine for pages checked every few hours).
PUBLISH_MIN_GAP = 30.0
PUBLISH_REFRESH = 600.0  # refresh at least this often while checks run ("last checked" stays current)
# A check outliving every fetch time-out and retry by far is stuck: stop pinging the watchdog so systemd
# restarts us (threads cannot be killed; a restart is the only clean way out).
STUCK_AFTER = 1800.0
STATUS_MIN_GAP = 1.0  # seconds between two STATUS= lines: a person reads them, not a graph
MAX_IDLE = 300.0  # wake at least this often: the wall clock may have jumped
# A change in (wall clock - boot-time clock) larger than this is a step of the wall clock, not drift: NTP
# slews by at most 0.5 ms per second, i.e. 0.15 s over the longest sleep (MAX_IDLE).
CLOCK_STEP = 2.0

Clock = Callable[[], datetime]
Kind = Literal["check", "deliver", "publish"]
CheckFn = Callable[[Target, "Context"], Outcome]
PublishFn = Callable[[Config, Storage], None]


def utc_now() -> datetime:
    return datetime.now(UTC)


def boot_clock() -> float:
    """Seconds since boot, counting suspended time (Linux CLOCK_BOOTTIME), unlike time.monotonic: after a
    laptop sleeps for hours its targets are overdue, and that is no clock step."""
    clock_id = getattr(time, "CLOCK_BOOTTIME", None)
    return time.clock_gettime(clock_id) if clock_id is not None else time.monotonic()


# --------------------------------------------------------------------------- the schedule


class Schedule:
    """When each target is next due. `apply` (start-up and reload) and `done` (after a check) return the
    due times that changed, for the caller to persist."""

    def __init__(self, *, jitter: float, rng: random.Random, startup_gap: timedelta = STARTUP_GAP) -> None:
        self.jitter = jitter
        self._rng = rng
        self._gap = startup_gap
        self._targets: dict[str, Target] = {}
        self._due: dict[str, datetime] = {}
        # (due time, id), a min-heap: a pass looks at the head only, O(due x log targets) rather than a sort
        # of every target. An entry whose time `_due` no longer holds is stale: dropped when it surfaces.
        self._heap: list[tuple[datetime, str]] = []

    @property
    def targets(self) -> tuple[Target, ...]:
        return tuple(self._targets.values())

    def due_at(self, target_id: str) -> datetime | None:
        return self._due.get(target_id)

    def target(self, target_id: str) -> Target | None:
        return self._targets.get(target_id)

    def apply(
        self, targets: Sequence[Target], persisted: Mapping[str, datetime | None], now: datetime
    ) -> dict[str, datetime]:
        """Adopt `targets`: removed ones are dropped; kept ones keep their place (sooner if their interval
        shrank); new ones resume from `persisted` or, when overdue or never checked, start soon, spread."""
        changed: dict[str, datetime] = {}
        late: list[tuple[Target, datetime | None]] = []
        for target in targets:
            old = self._targets.get(target.id)
            if old is not None:
                if old.interval != target.interval:  # a shortened interval takes effect now
                    changed[target.id] = min(self._due[target.id], now + self._longest_wait(target))
                continue
            due = persisted.get(target.id)
            if due is None or due <= now:
                late.append((target, due))
            else:  # never later than the interval allows (it may have shrunk while we were down)
                changed[target.id] = min(due, now + self._longest_wait(target))
        kept = {t.id for t in targets}
        self._due = {i: d for i, d in self._due.items() if i in kept}
        self._targets = {t.id: t for t in targets}
        changed.update(self._spread(late, now))
        self._due.update(changed)
        self._rebuild()
        return changed

    def done(self, target_id: str, now: datetime) -> datetime | None:
        """A check of the target finished: its next due time (None: the target was removed meanwhile)."""
        target = self._targets.get(target_id)
        if target is None:
            return None
        due = now + target.interval * (1 + self._rng.uniform(0, self.jitter))
        self._set(target_id, due)
        return due

    def shift(self, step: timedelta) -> dict[str, datetime]:
        """The wall clock stepped by `step`: move every due time with it (returned, to be persisted)."""
        self._due = {target_id: due + step for target_id, due in self._due.items()}
        self._rebuild()
        return dict(self._due)

    def due(self, now: datetime, *, busy: Callable[[str], bool], limit: int | None = None) -> list[Target]:
        """Targets due by `now` and not in flight, longest overdue first (fair when workers are scarce); the
        first `limit` of them (None: all)."""
        return [self._targets[i] for _d, i in self._head(limit, busy=busy, until=now)]

    def next_due(self, *, busy: Callable[[str], bool] = lambda _i: False) -> datetime | None:
        head = self._head(1, busy=busy)
        return head[0][0] if head else None

    def _set(self, target_id: str, due: datetime) -> None:
        self._due[target_id] = due
        heapq.heappush(self._heap, (due, target_id))
        if len(self._heap) > 2 * len(self._due) + 64:  # mostly stale entries: start afresh, O(targets)
            self._rebuild()

    def _rebuild(self) -> None:
        self._heap = [(due, target_id) for target_id, due in self._due.items()]
        heapq.heapify(self._heap)

    def _head(
        self, limit: int | None, *, busy: Callable[[str], bool], until: datetime | None = None
    ) -> list[tuple[datetime, str]]:
        """The first `limit` entries (None: all) due by `until` (None: any time) and not busy, in due order
        (ties by id). Pops them and the busy ones above them, then puts them back: O(k log n) for k looked
        at; stale entries met on the way are dropped for good."""
        heap = self._heap
        found: list[tuple[datetime, str]] = []
        popped: list[tuple[datetime, str]] = []
        seen: set[str] = set()
        while heap and (limit is None or len(found) < limit) and (until is None or heap[0][0] <= until):
            entry = heapq.heappop(heap)
            due, target_id = entry
            if self._due.get(target_id) != due or target_id in seen:
                continue  # superseded by a later _set (or a duplicate of a live entry)
            seen.add(target_id)
            popped.append(entry)
            if not busy(target_id):
                found.append(entry)
        for entry in popped:
            heapq.heappush(heap, entry)
        return found

    def _longest_wait(self, target: Target) -> timedelta:
        return target.interval * (1 + self.jitter)

    def _spread(self, late: list[tuple[Target, datetime | None]], now: datetime) -> dict[str, datetime]:
        """Overdue targets (oldest first), then never-checked ones, evenly over a short start-up window."""
        if not late:
            return {}
        order = sorted(late, key=lambda item: (item[1] is None, item[1] or now, item[0].id))
        shortest = min(t.interval for t, _due in order)
        window = min(self._gap * (len(order) - 1), MAX_STARTUP_SPREAD, shortest)
        step = window / max(len(order) - 1, 1)
        return {target.id: now + step * index for index, (target, _due) in enumerate(order)}


class ClockWatch:
    """The loop's "now": the wall clock as last read, advanced by the boot-time clock since. It jumps only
    in `step()`, which notices that the wall clock was set (wall - boot-time clock is constant otherwise),
    so the loop moves the schedule in the same breath and no decision ever sees one without the other."""

    def __init__(self, wall: Clock, elapsed: Callable[[], float], *, tolerance: float = CLOCK_STEP) -> None:
        self._wall = wall
        self._elapsed = elapsed
        self._tolerance = tolerance
        self._offset = self._read()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._offset + self._elapsed(), UTC)

    def step(self) -> timedelta | None:
        """The step since the last call (None: no step). Drift is forgotten at each call, never summed."""
        offset = self._read()
        moved, self._offset = offset - self._offset, offset
        return timedelta(seconds=moved) if abs(moved) > self._tolerance else None

    def _read(self) -> float:
        return self._wall().timestamp() - self._elapsed()


# --------------------------------------------------------------------------- waking the loop


class Wakeup:
    """A self-pipe: `set` from a signal handler or any thread, `wait` in the loop. A signal handler may
    not take locks the interrupted code might hold (threading.Event can deadlock there); write() cannot."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def set(self) -> None:
        with contextlib.suppress(BlockingIOError):  # a full pipe: the loop is bound to wake up anyway
            os.write(self._write, b"!")

    def wait(self, timeout: float) -> None:
        """Sleep until `set` or `timeout` seconds, whichever comes first; then forget pending wake-ups."""
        select.select([self._read], [], [], max(timeout, 0.0))
        try:
            while os.read(self._read, 4096):
                pass
        except BlockingIOError:
            pass  # drained

    def close(self) -> None:
        os.close(self._read)
        os.close(self._write)


@dataclass
class SignalFlags:
    """What the signal handlers asked for; the loop acts on it. Plain attributes: setting one is atomic."""

    stop_requests: int = 0
    reload: bool = False

    @property
    def stop(self) -> bool:
        return self.stop_requests > 0

    def note(self, signum: int) -> None:
        if signum == signal.SIGHUP:
            self.reload = True
        else:
            self.stop_requests += 1  # a second SIGTERM / Ctrl-C: stop waiting for in-flight checks


@contextmanager
def handling_signals(flags: SignalFlags, wakeup: Wakeup) -> Iterator[None]:
    """SIGTERM / SIGINT: stop; SIGHUP: reload. The handlers do the minimum; previous ones are restored."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        flags.note(signum)
        wakeup.set()

    wanted = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    previous = {signum: signal.signal(signum, handler) for signum in wanted}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


# --------------------------------------------------------------------------- workers


@dataclass(frozen=True, slots=True)
class Finished:
    """A job that ended. `value`: check -> Outcome, deliver -> bool (alerts still owed), publish -> None."""

    key: str
    kind: Kind
    value: object = None
    error: StorageError | None = None
    crashed: bool = False  # ended by an unexpected exception (printed by threading.excepthook)


@dataclass(frozen=True, slots=True)
class _Running:
    kind: Kind
    started: float
    owner: object  # the runtime (config + context) the job uses, so it is closed only when unused


class Workers:
    """Jobs on daemon threads, one per job, keyed (a target id, or "deliver" / "publish"). `start`,
    `collect` and the queries run on the loop thread only; workers just queue their result and wake it."""

    def __init__(self, *, wake: Callable[[], None], monotonic: Callable[[], float] = time.monotonic) -> None:
        self._wake = wake
        self._monotonic = monotonic
        self._running: dict[str, _Running] = {}
        self._finished: queue.SimpleQueue[Finished] = queue.SimpleQueue()

    def start(self, key: str, kind: Kind, job: Callable[[], object], *, owner: object = None) -> None:
        if key in self._running:
            raise RuntimeError(f"job {key!r} is already running")  # a bug in the loop, never a user error
        self._running[key] = _Running(kind, self._monotonic(), owner)
        thread = threading.Thread(target=self._run, args=(key, kind, job), name=f"{kind}:{key}", daemon=True)
        thread.start()

    def collect(self) -> list[Finished]:
        done: list[Finished] = []
        while True:
            try:
                finished = self._finished.get_nowait()
            except queue.Empty:
                return done
            self._running.pop(finished.key, None)
            done.append(finished)

    def busy(self, key: str) -> bool:
        return key in self._running

    def keys(self, kind: Kind) -> list[str]:
        return sorted(key for key, running in self._running.items() if running.kind == kind)

    def count(self, kind: Kind) -> int:
        return sum(1 for r in self._running.values() if r.kind == kind)

    def running(self) -> list[str]:
        return sorted(self._running)

    def uses(self, owner: object) -> bool:
        return any(r.owner is owner for r in self._running.values())

    def oldest_start(self) -> float | None:
        return min((r.started for r in self._running.values()), default=None)

    def _run(self, key: str, kind: Kind, job: Callable[[], object]) -> None:
        result = Finished(key, kind, crashed=True)
        try:
            result = Finished(key, kind, job())
        except StorageError as exc:
            result = Finished(key, kind, error=exc)
        finally:
            self._finished.put(result)
            self._wake()


# --------------------------------------------------------------------------- chores


@dataclass
class Chore:
    """A background pass (deliver, publish) requested any number of times, run once per request batch,
    never more often than every `min_gap` seconds. Times are monotonic seconds."""

    min_gap: float
    requested_at: float | None = None
    last_start: float = float("-inf")

    def request(self, now: float, *, delay: float = 0.0) -> None:
        at = now + delay
        self.requested_at = at if self.requested_at is None else min(self.requested_at, at)

    def ready_at(self) -> float | None:
        if self.requested_at is None:
            return None
        return max(self.requested_at, self.last_start + self.min_gap)

    def take(self, now: float) -> bool:
        ready = self.ready_at()
        if ready is None or ready > now:
            return False
        self.requested_at, self.last_start = None, now
        return True


# --------------------------------------------------------------------------- the loop


@dataclass(frozen=True)
class Edges:
    """Everything the loop touches outside itself, injectable."""

    clock: Clock = utc_now
    monotonic: Callable[[], float] = time.monotonic
    elapsed: Callable[[], float] = boot_clock  # against which wall-clock steps are detected
    sleep: Callable[[float], None] = time.sleep  # the pipeline's confirm delay
    rng: random.Random = field(default_factory=random.Random)
    check: CheckFn | None = None  # default: pipeline.check_target
    publish: PublishFn | None = None  # default: watchdog.publish.after_cycle when it exists
    stop_timeout: float = STOP_TIMEOUT


@dataclass
class Runtime:
    """One loaded config and the pipeline context built for it; replaced (not mutated) by a reload."""

    config: Config
    ctx: Context


def status_line(*, targets: int, failing: int, next_due: datetime | None) -> str:
    """The STATUS= line: "12 targets, 1 failing, next check 14:05:09" (local time, for a person)."""
    noun = "target" if targets == 1 else "targets"
    when = f"next check {next_due.astimezone():%H:%M:%S}" if next_due else "nothing scheduled"
    return f"{targets} {noun}, {failing} failing, {when}"


class Daemon:
    """The schedule loop. `run()` until `flags` asks to stop; returns the exit code (0, or 1 after a
    storage error, so that systemd restarts us)."""

    def __init__(
        self,
        config_path: Path,
        config: Config,
        store: Storage,
        *,
        notifier: SystemdNotifier,
        flags: SignalFlags,
        wakeup: Wakeup,
        edges: Edges | None = None,
    ) -> None:
        self.config_path = config_path
        self.store = store
        self.notifier = notifier
        self.flags = flags
        self.wakeup = wakeup
        self.edges = edges or Edges()
        self.workers = Workers(wake=wakeup.set, monotonic=self.edges.monotonic)
        self.schedule = Schedule(jitter=config.daemon.jitter, rng=self.edges.rng)
        self.clock_watch = ClockWatch(self.edges.clock, self.edges.elapsed)
        self.runtime = Runtime(config, self._context(config))
        self.abandoned: list[str] = []
        self._check = self.edges.check or _pipeline_check()
        self._publish = self.edges.publish
        self._retired: list[Runtime] = []
        self._fatal: StorageError | None = None
        self._deliver = Chore(DELIVERY_MIN_GAP)
        self._refresh = Chore(PUBLISH_MIN_GAP)
        self._next_ping = float("-inf")
        self._last_status: dict[str, str] = {}  # per target, to tell news from routine
        self._stuck_logged = False
        self._next_renewal = float("-inf")
        self._next_news = float("-inf")
        self._news: int | None = None
        # a shared archive: when to ask it for due targets next, and the targets it holds that this node's
        # config has not
        self._next_claim: datetime | None = None
        self._foreign: set[str] = set()
        self._status = ""
        self._status_stale = True
        self._last_report = float("-inf")

    @property
    def config(self) -> Config:
        return self.runtime.config

    def request_stop(self) -> None:
        """Stop from another thread (tests, embedding); a signal does the same through `flags`."""
        self.flags.note(signal.SIGTERM)
        self.wakeup.set()

    # ----------------------------------------------------------------- run

    def run(self) -> int:
        try:
            self._start()
            while not (self.flags.stop or self._fatal):
                self._step()
        except StorageError as exc:
            self._fail(exc)
        return self._shutdown()

    def _start(self) -> None:
        config = self.config
        self.store.checks.sync_targets(config.targets)
        self._adopt(config.targets)
        now = self.edges.monotonic()
        self._deliver.request(now)  # alerts owed from before the restart
        self._refresh.request(now)  # changes the previous run had no time to publish
        if self._publish is None:
            self._publish = _find_publisher()
        log.info(
            "running: %d targets, at most %d checks at once, archive in %s",
            len(config.targets),
            config.daemon.max_workers,
            _archive_place(config, self.store),
        )
        self.notifier.ready()

    def _step(self) -> None:
        if self.flags.reload:
            self._reload()
        self._follow_clock()
        self._collect()
        if self._fatal:
            return
        self._dispatch()
        self._renew()
        self._watch_news()
        self._run_chores()
        self._ping()
        self._report()
        self.wakeup.wait(self._timeout())

    def _follow_clock(self) -> None:
        step = self.clock_watch.step()
        if step is None:
            return
        log.warning(
            "the wall clock was set %+.0f s; every next check moves with it (none skipped, none bunched)",
            step.total_seconds(),
        )
        moved = self.schedule.shift(step)
        # a shared archive's due times are every node's: only this node's clock moved, so only its view does
        if not self.store.leases.shared:
            self._persist(moved)
        self._claim_by(None)
        self._status_stale = True

    def _adopt(self, targets: Sequence[Target]) -> None:
        persisted = {s.id: s.next_due_at for s in self.store.archive.target_states()}
        self._persist(self.schedule.apply(targets, persisted, self.clock_watch.now()))
        # a shared archive may hold targets of other nodes' configs (or removed ones): never claimed here
        self._foreign = set(persisted) - {t.id for t in targets}
        self._claim_by(None)
        self._status_stale = True

    def _persist(self, due: Mapping[str, datetime]) -> None:
        self.store.checks.set_next_due(due)

    # ----------------------------------------------------------------- checks

    def _dispatch(self) -> None:
        free = self.config.daemon.max_workers - self.workers.count("check")
        if free <= 0:
            return
        runtime = self.runtime
        now = self.clock_watch.now()
        if self.store.leases.shared:
            due = self._claimed(now, free)
        else:
            due = self.schedule.due(now, busy=self.workers.busy, limit=free)
        for target in due:
            # made here, on the loop thread: Fetchers' lazy cache is not meant for concurrent first use
            runtime.ctx.fetchers.for_target(target)
            job = partial(self._check, target, runtime.ctx)
            self.workers.start(target.id, "check", job, owner=runtime)

    def _claimed(self, now: datetime, free: int) -> list[Target]:
        """An archive shared with other nodes is the schedule: the due targets it leases to this node, most
        overdue first across all nodes. Asked again at once while it fills every free worker, else when
        it says more may be due (the next due time; soon while another node holds due targets)."""
        if self._next_claim is None or now < self._next_claim:
            return []
        skip = [*self.workers.keys("check"), *self._foreign]
        claim = self.store.leases.claim_due(now, limit=free, skip=skip)
        # nothing due at all: still ask now and then (a node may have started with new targets meanwhile)
        self._next_claim = claim.retry_at or now + timedelta(seconds=MAX_IDLE)
        mine = [target for i in claim.claimed if (target := self.schedule.target(i)) is not None]
        if len(mine) < len(claim.claimed):  # another node's config has targets this one's has not
            foreign = [i for i in claim.claimed if self.schedule.target(i) is None]
            self.store.leases.release(foreign)
            self._foreign.update(foreign)
            self._next_claim = now
        return mine

    def _claim_by(self, at: datetime | None) -> None:
        """Ask the shared archive for due targets no later than `at` (None: at once)."""
        at = at or self.clock_watch.now()
        self._next_claim = at if self._next_claim is None else min(self._next_claim, at)

    def _renew(self) -> None:
        """Keep this node's leases on the targets it is checking (a shared archive)."""
        now = self.edges.monotonic()
        if not self.store.leases.shared or now < self._next_renewal:
            return
        self._next_renewal = now + self.config.storage.lease.total_seconds() / 3
        running = self.workers.keys("check")
        if running:
            self.store.leases.renew(running)

    def _watch_news(self) -> None:
        """A shared archive: what other nodes recorded is published here too (every node publishes the
        archive into its own storage dir), looked at every PUBLISH_MIN_GAP."""
        now = self.edges.monotonic()
        # a worker node (publish = false) publishes nothing: what others recorded is none of its business
        if not self.store.leases.shared or not self._publishes() or now < self._next_news:
            return
        self._next_news = now + PUBLISH_MIN_GAP
        news = self.store.leases.news()
        if self._news is not None and news != self._news:
            self._refresh.request(now)
        self._news = news

    def _collect(self) -> None:
        finished = self.workers.collect()
        if not finished:
            return
        due: dict[str, datetime] = {}
        outcomes: list[Outcome] = []
        for job in finished:
            if job.error is not None and not isinstance(job.error, ConflictError):
                self._fail(job.error)
            elif job.kind == "check":
                outcomes.extend(self._checked(job, due))
            elif job.kind == "deliver":
                self._delivered(job)
            elif job.crashed:
                log.error("publishing the feeds and the site failed (see the traceback above)")
        self._persist(due)
        if outcomes:
            self._after_checks(outcomes)
        self._close_retired()

    def _checked(self, job: Finished, due: dict[str, datetime]) -> list[Outcome]:
        # even a crashed check is rescheduled: one target's trouble never stops its own schedule either
        next_due = self.schedule.done(job.key, self.clock_watch.now())
        if next_due is not None:
            due[job.key] = next_due
            self._claim_by(next_due)
        if job.error is not None:  # another node recorded the target first (ConflictError): no harm done
            log.warning("%s: this check is dropped: %s", job.key, job.error)
            return []
        if job.crashed or not isinstance(job.value, Outcome):
            log.error("%s: the check ended without an outcome (see the traceback above)", job.key)
            return []
        _log_outcome(job.value)
        return [job.value]

    def _after_checks(self, outcomes: Sequence[Outcome]) -> None:
        now = self.edges.monotonic()
        if any(o.alerted for o in outcomes):
            self._deliver.request(now)
        # the site shows each target's state: anything but "unchanged after unchanged" is news
        news = [
            o for o in outcomes if o.status != "unchanged" or self._last_status.get(o.target_id) != o.status
        ]
        self._last_status.update((o.target_id, o.status) for o in outcomes)
        self._refresh.request(now, delay=0.0 if news else PUBLISH_REFRESH)
        self._status_stale = True

    def _fail(self, exc: StorageError) -> None:
        if self._fatal is None:
            log.critical("storage error, stopping (the service manager restarts us): %s", exc)
            self._fatal = exc

    # ----------------------------------------------------------------- deliver, publish

    def _run_chores(self) -> None:
        now = self.edges.monotonic()
        runtime = self.runtime
        if runtime.config.channels and not self.workers.busy("deliver") and self._deliver.take(now):
            self.workers.start("deliver", "deliver", partial(_deliver, runtime), owner=runtime)
        publish = self._publish if runtime.config.daemon.publish else None
        if publish and not self.workers.busy("publish") and self._refresh.take(now):
            job = partial(publish, runtime.config, self.store)
            self.workers.start("publish", "publish", job, owner=runtime)

    def _delivered(self, job: Finished) -> None:
        """The next pass when the next owed alert is due (its backoff), never sooner than DELIVERY_MIN_GAP,
        and not before DELIVERY_RETRY after a pass that went wrong."""
        owed = job.value if isinstance(job.value, Owed) else None
        if owed is None:
            log.error("delivering alerts failed (see the traceback above); retrying later")
        if owed is None or not owed.clean:
            self._deliver.request(self.edges.monotonic(), delay=DELIVERY_RETRY)
        elif owed.next_due is not None:
            wait = (owed.next_due - self.clock_watch.now()).total_seconds()
            self._deliver.request(self.edges.monotonic(), delay=max(wait, DELIVERY_MIN_GAP))

    # ----------------------------------------------------------------- reload

    def _reload(self) -> None:
        self.flags.reload = False
        self.notifier.reloading()
        log.info("reloading the configuration from %s", self.config_path)
        try:
            config = with_followed(load_config(self.config_path))
            self._check_applicable(config)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("reload: %s", problem)
            log.error("reload: the configuration has errors; still running the previous one")
        except ReloadRefused as exc:
            log.error("reload: %s; still running the previous configuration", exc)
        else:
            self._apply(config)
        self.notifier.ready()
        self._status_stale = True

    def _check_applicable(self, config: Config) -> None:
        """Everything that could make `_apply` fail halfway, checked before it changes anything."""
        old = self.config
        if config.storage_dir.resolve() != old.storage_dir.resolve():
            raise ReloadRefused(
                f"storage.dir changed ({old.storage_dir} -> {config.storage_dir}); a reload cannot move "
                "the archive: restart the service"
            )
        if config.storage != old.storage:
            raise ReloadRefused("[storage] url, node or lease changed: restart the service to apply it")
        now = self.clock_watch.now()
        try:  # validation bounds every setting; this guards the arithmetic the schedule will do
            for target in config.targets:
                _latest = now + target.interval * (1 + config.daemon.jitter)
        except (OverflowError, ValueError) as exc:
            raise ReloadRefused(f"the schedule cannot be computed ({exc})") from exc

    def _apply(self, config: Config) -> None:
        old = self.config
        self.store.checks.sync_targets(config.targets)
        self._retired.append(self.runtime)
        self.runtime = Runtime(config, self._context(config, previous=self.runtime.ctx))
        self.schedule.jitter = config.daemon.jitter
        self._adopt(config.targets)
        self._deliver.request(self.edges.monotonic())  # channels may have changed
        self._refresh.request(self.edges.monotonic())  # so may names and targets shown in the site
        self._close_retired()
        kept = {t.id for t in config.targets}  # a set: config.target() scans, once per target made O(n²)
        self._last_status = {i: s for i, s in self._last_status.items() if i in kept}
        _log_reload(old, config)

    def _context(self, config: Config, *, previous: Context | None = None) -> Context:
        from watchdog.pipeline import Context, Fetchers, shared_host_turns

        fetchers = Fetchers(config, clock=self.edges.clock, host_turns=shared_host_turns(self.store))
        if previous is not None:
            # one request at a time per host holds across a reload too: checks started under the old
            # config may still be running
            fetchers.host_limiter = previous.fetchers.host_limiter
        return Context(
            config=config, store=self.store, fetchers=fetchers, clock=self.edges.clock, sleep=self.edges.sleep
        )

    def _close_retired(self) -> None:
        for runtime in [r for r in self._retired if not self.workers.uses(r)]:
            runtime.ctx.fetchers.close()
            self._retired.remove(runtime)

    # ----------------------------------------------------------------- systemd

    def _ping(self) -> None:
        interval = self.notifier.watchdog_interval
        now = self.edges.monotonic()
        if interval is None or now < self._next_ping:
            return
        oldest = self.workers.oldest_start()
        if oldest is not None and now - oldest > STUCK_AFTER:
            if not self._stuck_logged:
                log.error(
                    "a job has been running for over %d s (%s); no more watchdog pings, so the service "
                    "manager restarts us",
                    STUCK_AFTER,
                    ", ".join(self.workers.running()),
                )
                self._stuck_logged = True
            return
        self.notifier.watchdog_ping()
        self._next_ping = now + interval

    def _report(self) -> None:
        now = self.edges.monotonic()
        if not self._status_stale or now < self._last_report + STATUS_MIN_GAP:
            return
        self._status_stale, self._last_report = False, now
        threshold = self.config.alerts.failure_threshold
        configured = {t.id for t in self.config.targets}
        failing = len(configured.intersection(self.store.archive.failing(threshold)))
        # a shared archive's due times are every node's: this node's next claim, not its own view of them
        next_due = self._next_claim if self.store.leases.shared else self.schedule.next_due()
        text = status_line(targets=len(configured), failing=failing, next_due=next_due)
        if text != self._status:
            self._status = text
            self.notifier.status(text)

    def _timeout(self) -> float:
        """Seconds until something is due: a check (when a worker is free), a ping, a chore."""
        now = self.edges.monotonic()
        moments = [now + MAX_IDLE]
        if self.workers.count("check") < self.config.daemon.max_workers:
            if self.store.leases.shared:
                next_due = self._next_claim
            else:
                next_due = self.schedule.next_due(busy=self.workers.busy)
            if next_due is not None:
                moments.append(now + (next_due - self.clock_watch.now()).total_seconds())
        if self.notifier.watchdog_interval is not None:
            moments.append(self._next_ping)
        if self.store.leases.shared and self._publishes():
            moments.append(self._next_news)
        if self.store.leases.shared and self.workers.count("check"):
            moments.append(self._next_renewal)
        if self._status_stale:
            moments.append(self._last_report + STATUS_MIN_GAP)
        moments += self._chore_moments()
        return max(min(moments) - now, 0.0)

    def _publishes(self) -> bool:
        return self._publish is not None and self.config.daemon.publish

    def _chore_moments(self) -> list[float]:
        # only chores that can start: one that is running, or has nothing to run, must not spin the loop
        chores = [
            (self._deliver, bool(self.config.channels) and not self.workers.busy("deliver")),
            (self._refresh, self._publishes() and not self.workers.busy("publish")),
        ]
        return [at for chore, runnable in chores if runnable and (at := chore.ready_at()) is not None]

    # ----------------------------------------------------------------- stop

    def _shutdown(self) -> int:
        self.notifier.stopping()
        self._drain(self.edges.monotonic() + self.edges.stop_timeout)
        self.abandoned = self.workers.running()
        if self.abandoned:
            log.warning(
                "stopping without waiting for %s: nothing partial is stored, they run again after the "
                "restart",
                ", ".join(self.abandoned),
            )
        else:
            self._retired.append(self.runtime)
            self._close_retired()
        log.info("stopped")
        return 1 if self._fatal else 0

    def _drain(self, deadline: float) -> None:
        """Let running jobs finish (and record what they did) until `deadline` or a second stop signal."""
        if self.workers.running():
            log.info("stopping: waiting up to %g s for %s", self.edges.stop_timeout, self.workers.running())
        while self.workers.running() and self.flags.stop_requests < 2:
            remaining = deadline - self.edges.monotonic()
            if remaining <= 0:
                return
            self.wakeup.wait(remaining)
            try:
                self._collect()
            except StorageError as exc:
                self._fail(exc)


def _archive_place(config: Config, store: Storage) -> str:
    """Where the archive is, for the log: the storage dir, or the shared database and this node's name."""
    if config.storage.url is None:
        return str(config.storage_dir)
    return f"{redacted_url(config.storage.url)} as node {store.leases.node} (shared with other nodes)"


class ReloadRefused(WatchdogError):
    """A new configuration that is valid but cannot replace the running one (reload keeps the old)."""


def _log_reload(old: Config, new: Config) -> None:
    before, after = {t.id for t in old.targets}, {t.id for t in new.targets}
    log.info(
        "reloaded: %d targets (%d added, %d removed), %d channels",
        len(after),
        len(after - before),
        len(before - after),
        len(new.channels),
    )


def _log_outcome(outcome: Outcome) -> None:
    if outcome.status == "changed":
        topics = ", ".join(outcome.topics) or "no topic"
        log.info("%s: changed: %s -> %s (%s)", outcome.target_id, outcome.change, outcome.version, topics)
    elif outcome.status == "new":
        log.info("%s: first version %s", outcome.target_id, outcome.version)
    else:  # unchanged (routine), error / rejected (the pipeline already logged them as warnings)
        log.debug("%s: %s", outcome.target_id, outcome.status)


@dataclass(frozen=True, slots=True)
class Owed:
    """After a delivery pass: whether it ran cleanly, and when the next alert still owed is due."""

    clean: bool
    next_due: datetime | None  # None: nothing owed (unconfirmed alerts are never sent again by themselves)


def _deliver(runtime: Runtime) -> Owed:
    """One pass over the outbox, in a child process (watchdog/chores.py says why)."""
    clean = deliver_in_child(runtime.config)
    health = channel_health(runtime.config.channels, runtime.ctx.store.outbox.all_pending())
    return Owed(clean, min((h.next_attempt_at for h in health if h.owed and h.next_attempt_at), default=None))


def _pipeline_check() -> CheckFn:
    from watchdog.pipeline import check_target

    return check_target


def _find_publisher() -> PublishFn | None:
    """Feeds and site, regenerated in a child process (watchdog/chores.py says why)."""
    return _publish_in_child


def _publish_in_child(config: Config, store: Storage) -> None:
    from watchdog.chores import publish_in_child

    del store  # the child reads the archive through its own read-only connection
    if not publish_in_child(config):
        log.error("publishing the feeds and the site failed (see the lines above); retried later")


# --------------------------------------------------------------------------- entry points


def run_daemon(
    config_path: Path, *, notifier: SystemdNotifier | None = None, edges: Edges | None = None
) -> int:
    """`policy-watchdog run`. Raises ConfigError (exit 2) for a bad config at start-up and LockedError
    (exit 1, "... is in use by policy-watchdog (pid N) ...") when another process holds the archive."""
    flags, wakeup = SignalFlags(), Wakeup()
    store: Storage | None = None
    daemon: Daemon | None = None
    try:
        # handlers first: a SIGHUP or SIGTERM during start-up must not kill us with the default action
        with handling_signals(flags, wakeup):
            config = with_followed(load_config(config_path))
            store = open_store(config)
            daemon = Daemon(
                config_path,
                config,
                store,
                notifier=notifier or SystemdNotifier.from_env(),
                flags=flags,
                wakeup=wakeup,
                edges=edges,
            )
            return daemon.run()
    finally:
        # abandoned jobs still use the store and the pipe: the process exit releases them (and the lock)
        if daemon is None or not daemon.abandoned:
            if store is not None:
                store.close()
            wakeup.close()


def cmd_run(args: argparse.Namespace) -> int:
    from watchdog.config import resolve_config_path

    return run_daemon(resolve_config_path(args.config))

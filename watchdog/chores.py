"""The daemon's chores out of process: alert delivery and publishing run in short-lived child processes.

Why: apprise loads all of its ~100 service plugins on first use (about 25 MB that CPython never gives back),
and publishing reads the whole archive (memory that grows with it). Run inside the daemon, both would raise
its resident size for good after the first alert; run as `policy-watchdog deliver` / `publish` children,
the memory goes back to the system when they exit and the daemon stays at its idle size.

The delivery child writes to the archive (it marks outbox rows delivered) while the daemon holds the storage
dir's writer lock: it is told so with `--under-daemon`, checks that the lock really is held by its parent,
and asks the kernel to kill it if the parent dies (so a restarted daemon never delivers beside an orphan).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Sequence

from watchdog.config import Config

log = logging.getLogger(__name__)

DELIVER_TIMEOUT = 600.0
PUBLISH_TIMEOUT = 1800.0
PARENT_ENV = "POLICY_WATCHDOG_PARENT_PID"


def run_chore(config: Config, command: Sequence[str], *, timeout: float) -> int:
    """Run `policy-watchdog [--config PATH] COMMAND...` as a child; its log goes to our stderr."""
    argv = [
        sys.executable,
        "-m",
        "watchdog",
        *(["--config", str(config.path)] if config.path else []),
        *command,
    ]
    env = {**os.environ, PARENT_ENV: str(os.getpid())}
    try:
        return subprocess.run(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, timeout=timeout, check=False
        ).returncode
    except subprocess.TimeoutExpired:  # run() has killed it; its work is transactional, nothing half-done
        log.error(
            "%s took longer than %.0f s and was stopped; it will be retried", " ".join(command), timeout
        )
        return 1


def deliver_in_child(config: Config) -> bool:
    """One delivery pass in a child process; True when it ended without trouble."""
    return run_chore(config, ["deliver", "--under-daemon"], timeout=DELIVER_TIMEOUT) == 0


def publish_in_child(config: Config) -> bool:
    return run_chore(config, ["publish"], timeout=PUBLISH_TIMEOUT) == 0


def expected_parent() -> int:
    """In a chore child: the daemon's pid, after asking to die with it (Linux: PR_SET_PDEATHSIG)."""
    parent = int(os.environ.get(PARENT_ENV, "0"))
    _die_with_parent()
    if parent <= 1 or os.getppid() != parent:  # the parent may have died before the request above
        from watchdog.errors import StorageError

        raise StorageError("--under-daemon: the daemon that started this delivery is gone; nothing sent")
    return parent


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return  # elsewhere systemd's KillMode=mixed stops the whole group with the main process
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)

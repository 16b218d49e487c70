"""systemd integration for the daemon stage: the sd_notify protocol, without libsystemd.

A notification is one datagram of newline-separated ``KEY=VALUE`` lines sent to the AF_UNIX socket named
by ``$NOTIFY_SOCKET`` (a filesystem path, or an abstract name written with a leading ``@``), as described
in sd_notify(3). When the variable is unset (not started by systemd, or a unit without ``Type=notify``)
the notifier does nothing, so the daemon calls it unconditionally.

Sending is best effort by design: a lost ``STATUS=`` line must never take the service down, so socket
errors are logged at debug level and swallowed. A daemon whose loop really hangs stops sending
``WATCHDOG=1`` and systemd restarts it, which is the point of the watchdog.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = ["SystemdNotifier", "monotonic_usec"]

log = logging.getLogger(__name__)

# A notification must never stall the loop that sends it: systemd reads its socket promptly, so a
# send that blocks this long means the manager is gone or wedged, and the message is dropped.
DEFAULT_SEND_TIMEOUT = 2.0


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds: the clock systemd expects in ``MONOTONIC_USEC=``."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def _socket_address(value: str) -> str | None:
    """The address to pass to sendto(), or None when systemd's rules reject the value.

    Only absolute paths and '@'-prefixed abstract names are valid (as in libsystemd); anything else,
    e.g. a relative path or a newer manager's "vsock:" address, is ignored rather than guessed at.
    """
    if value.startswith("/"):
        return value
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    return None


def _watchdog_interval(environ: Mapping[str, str], pid: int) -> float | None:
    """Half of ``$WATCHDOG_USEC`` in seconds, as sd_watchdog_enabled(3) advises; None when off.

    ``$WATCHDOG_PID``, when set, names the process the watchdog is meant for: a child that inherited
    the environment (or a process started by the service's main process) must not ping.
    """
    raw_usec = environ.get("WATCHDOG_USEC", "")
    if not raw_usec.isdigit() or int(raw_usec) == 0:
        return None
    raw_pid = environ.get("WATCHDOG_PID")
    if raw_pid is not None and raw_pid != str(pid):
        return None
    return int(raw_usec) / 2 / 1_000_000


def _one_line(text: str) -> str:
    # A newline would start a new KEY=VALUE assignment inside the datagram: a STATUS built from page
    # or config text must not be able to send READY=1 or STOPPING=1 on the daemon's behalf.
    return " ".join(text.splitlines())


@dataclass(frozen=True, slots=True)
class SystemdNotifier:
    """Sends sd_notify messages; every method is a no-op when ``address`` is None.

    Build it with `from_env` in the daemon's main process. ``clock`` gives CLOCK_MONOTONIC in
    microseconds; ``send_timeout`` bounds how long one notification may block (seconds).
    """

    address: str | None = None
    watchdog_interval_seconds: float | None = None
    clock: Callable[[], int] = field(default=monotonic_usec, repr=False)
    send_timeout: float = DEFAULT_SEND_TIMEOUT

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] = os.environ,
        *,
        pid: int | None = None,
        clock: Callable[[], int] = monotonic_usec,
        send_timeout: float = DEFAULT_SEND_TIMEOUT,
    ) -> SystemdNotifier:
        """Read ``$NOTIFY_SOCKET``, ``$WATCHDOG_USEC`` and ``$WATCHDOG_PID`` (``pid``: this process's)."""
        raw = environ.get("NOTIFY_SOCKET", "")
        address = _socket_address(raw) if raw else None
        if raw and address is None:
            log.warning("ignoring NOTIFY_SOCKET=%r: not an absolute path or @abstract name", raw)
        interval = _watchdog_interval(environ, os.getpid() if pid is None else pid)
        return cls(
            address=address,
            watchdog_interval_seconds=interval,
            clock=clock,
            send_timeout=send_timeout,
        )

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between ``WATCHDOG=1`` pings (half the unit's WatchdogSec=), or None: no watchdog."""
        return self.watchdog_interval_seconds

    def ready(self) -> None:
        self.notify("READY=1")

    def status(self, text: str) -> None:
        self.notify(f"STATUS={_one_line(text)}")

    def reloading(self) -> None:
        # systemd >= 253 requires MONOTONIC_USEC with RELOADING=1 to tell this reload from an older
        # one; older managers ignore the extra line.
        self.notify("RELOADING=1", f"MONOTONIC_USEC={self.clock()}")

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    def watchdog_ping(self) -> None:
        self.notify("WATCHDOG=1")

    def notify(self, *lines: str) -> None:
        """Send ``lines`` as one datagram; failures are logged at debug level, never raised."""
        if self.address is None or not lines:
            return
        payload = "\n".join(lines).encode("utf-8")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.settimeout(self.send_timeout)
                sock.sendto(payload, self.address)
        except OSError as exc:
            log.debug("sd_notify %r to %r failed: %s", lines, self.address, exc)

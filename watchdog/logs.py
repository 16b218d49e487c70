"""Logging set-up for every command (the CLI calls it once, before any pipeline stage runs).

Records go to stderr. Under systemd, stderr is a stream to journald, which stamps each line with its own
time and reads a syslog priority from a ``<N>`` prefix (sd-daemon(3)); so there we print that prefix and
no timestamp or level name. Elsewhere (a terminal, cron, a test) the lines read
``2026-05-01 14:05:09,123 INFO watchdog.pipeline: message``.

systemd sets ``$JOURNAL_STREAM`` to ``DEVICE:INODE`` of the stream it connected; as systemd.exec(5)
advises, the prefix format is used only when the stream we write to is that very file, so a process that
inherited the variable but writes elsewhere (a redirected child, ``2>file``) keeps plain lines.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import TextIO

__all__ = ["JournalFormatter", "is_journal_stream", "setup_logging", "syslog_priority"]

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JOURNAL_FORMAT = "%(name)s: %(message)s"

# Libraries that log every request at INFO/DEBUG: useful when chasing a fetch problem (-vv), noise in a
# journal that must stay readable for months.
_CHATTY_LIBRARIES = ("httpx", "httpcore", "hpack")
# apprise's debug lines carry channel URLs with their secrets (Slack tokens, SMTP passwords): never below
# WARNING, whatever the verbosity. Delivery problems reach the log through watchdog.notify, scrubbed.
_SECRET_BEARING_LIBRARIES = ("apprise",)

# (lowest Python level, syslog priority) from the most to the least severe; sd-daemon(3) priorities.
_PRIORITIES = (
    (logging.CRITICAL, 2),
    (logging.ERROR, 3),
    (logging.WARNING, 4),
    (logging.INFO, 6),
)
_DEBUG_PRIORITY = 7


def syslog_priority(levelno: int) -> int:
    """The syslog priority for a Python level; custom levels map to the next less severe one."""
    for threshold, priority in _PRIORITIES:
        if levelno >= threshold:
            return priority
    return _DEBUG_PRIORITY


class JournalFormatter(logging.Formatter):
    """Prefixes *every* line with ``<N>``: journald splits a record at newlines, and a traceback's
    continuation lines would otherwise be filed at the stream's default priority (info)."""

    def __init__(self) -> None:
        super().__init__(JOURNAL_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines())


class _WatchdogHandler(logging.StreamHandler[TextIO]):
    """The one handler this module owns, told apart from others so a second call replaces it.

    Without a stream of its own it writes to whatever ``sys.stderr`` is when a record comes (as the
    standard library's last-resort handler does): a handler that kept the stderr of the moment it was
    installed would write into a closed file once that stderr is swapped and closed (an embedding
    program's or a test runner's captured stream).
    """

    def __init__(self, stream: TextIO | None) -> None:
        self._own: TextIO | None = stream
        super().__init__(stream)

    @property
    def stream(self) -> TextIO:
        return sys.stderr if self._own is None else self._own

    @stream.setter
    def stream(self, value: TextIO) -> None:
        if self._own is not None:  # StreamHandler.__init__ and setStream assign; keep following stderr
            self._own = value


def is_journal_stream(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """True when ``stream`` is the journald stream that ``$JOURNAL_STREAM`` names."""
    device, sep, inode = environ.get("JOURNAL_STREAM", "").partition(":")
    if not (sep and device.isdigit() and inode.isdigit()):
        return False
    try:
        stat = os.fstat(stream.fileno())
    except (OSError, ValueError):
        # No file descriptor (io.StringIO raises UnsupportedOperation, an OSError) or a closed one.
        return False
    return (stat.st_dev, stat.st_ino) == (int(device), int(inode))


def _root_level(verbosity: int) -> int:
    if verbosity < 0:
        return logging.WARNING
    return logging.INFO if verbosity == 0 else logging.DEBUG


def setup_logging(
    verbosity: int,
    *,
    environ: Mapping[str, str] = os.environ,
    stream: TextIO | None = None,
) -> None:
    """Send log records to ``stream`` (default: the current stderr).

    ``verbosity``: -1 (``-q``) warnings and errors, 0 info, 1 (``-v``) debug for this project, 2 and
    more (``-vv``) debug for the HTTP libraries too. Calling it again replaces the handler it installed
    earlier and leaves handlers installed by others (e.g. pytest's) alone.
    """
    out = sys.stderr if stream is None else stream
    handler = _WatchdogHandler(stream)
    handler.setFormatter(JournalFormatter() if is_journal_stream(out, environ) else _plain())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _WatchdogHandler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(_root_level(verbosity))
    library_level = logging.NOTSET if verbosity >= 2 else logging.WARNING
    for name in _CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(library_level)
    for name in _SECRET_BEARING_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)


def _plain() -> logging.Formatter:
    return logging.Formatter(PLAIN_FORMAT)

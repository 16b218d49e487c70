"""Logging set-up, written through real file descriptors: a pipe or a socket (what journald hands a
service as stderr) and a regular file."""

from __future__ import annotations

import io
import logging
import os
import re
import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import pytest

from watchdog.logs import setup_logging, syslog_priority

TIMESTAMPED = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


@dataclass
class Stream:
    """A text stream on a real file descriptor, and a way to read back what reached the descriptor."""

    writer: TextIO
    read_back: Callable[[], str]

    @property
    def journal_env(self) -> dict[str, str]:
        """$JOURNAL_STREAM as systemd would set it for this stream."""
        st = os.fstat(self.writer.fileno())
        return {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}

    def lines(self) -> list[str]:
        return self.read_back().splitlines()


def _pipe_stream() -> Iterator[Stream]:
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    writer = os.fdopen(write_fd, "w", encoding="utf-8")

    def read_back() -> str:
        try:
            return os.read(read_fd, 1 << 20).decode()
        except BlockingIOError:
            return ""

    yield Stream(writer, read_back)
    writer.close()
    os.close(read_fd)


def _socket_stream() -> Iterator[Stream]:
    # journald connects a service's stderr to an AF_UNIX stream socket.
    ours, journald = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    journald.setblocking(False)
    writer = ours.makefile("w", encoding="utf-8")

    def read_back() -> str:
        try:
            return journald.recv(1 << 20).decode()
        except BlockingIOError:
            return ""

    yield Stream(writer, read_back)
    writer.close()
    ours.close()
    journald.close()


@pytest.fixture(params=["pipe", "socket"])
def fd_stream(request: pytest.FixtureRequest) -> Iterator[Stream]:
    yield from (_pipe_stream() if request.param == "pipe" else _socket_stream())


@pytest.fixture
def file_stream(tmp_path: Path) -> Iterator[Stream]:
    path = tmp_path / "stderr.log"
    with path.open("w", encoding="utf-8") as writer:
        yield Stream(writer, lambda: path.read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """setup_logging configures the process's logging module: put it back after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    libraries = {n: logging.getLogger(n).level for n in ("httpx", "httpcore", "hpack")}
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)
    for name, lib_level in libraries.items():
        logging.getLogger(name).setLevel(lib_level)


def _log_every_level(name: str = "watchdog.test") -> None:
    logger = logging.getLogger(name)
    logger.debug("d")
    logger.info("i")
    logger.warning("w")
    logger.error("e")
    logger.critical("c")


def test_journal_stream_gets_level_prefixes_and_no_timestamp(fd_stream: Stream) -> None:
    setup_logging(1, environ=fd_stream.journal_env, stream=fd_stream.writer)
    _log_every_level()
    assert fd_stream.lines() == [
        "<7>watchdog.test: d",
        "<6>watchdog.test: i",
        "<4>watchdog.test: w",
        "<3>watchdog.test: e",
        "<2>watchdog.test: c",
    ]


def test_journal_prefixes_every_line_of_a_traceback(fd_stream: Stream) -> None:
    setup_logging(0, environ=fd_stream.journal_env, stream=fd_stream.writer)
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        logging.getLogger("watchdog.test").exception("check failed")
    lines = fd_stream.lines()
    assert lines[0] == "<3>watchdog.test: check failed"
    assert "<3>Traceback (most recent call last):" in lines
    assert lines[-2:] == ["<3>ValueError: bad", "<3>value"]
    assert all(line.startswith("<3>") for line in lines)


@pytest.mark.parametrize(
    ("environ_for", "why"),
    [
        pytest.param(lambda _s: {}, "unset", id="no-journal-stream-variable"),
        pytest.param(
            lambda s: {"JOURNAL_STREAM": f"{os.fstat(s.writer.fileno()).st_dev}:1"},
            "other inode",
            id="inherited-variable-names-another-stream",
        ),
        pytest.param(lambda _s: {"JOURNAL_STREAM": "garbage"}, "malformed", id="malformed"),
        pytest.param(lambda _s: {"JOURNAL_STREAM": "12:"}, "malformed", id="inode-missing"),
        pytest.param(lambda _s: {"JOURNAL_STREAM": ":34"}, "malformed", id="device-missing"),
    ],
)
def test_plain_format_unless_the_stream_is_the_journal(
    fd_stream: Stream, environ_for: Callable[[Stream], dict[str, str]], why: str
) -> None:
    setup_logging(0, environ=environ_for(fd_stream), stream=fd_stream.writer)
    logging.getLogger("watchdog.test").warning("hello")
    (line,) = fd_stream.lines()
    assert TIMESTAMPED.match(line), (why, line)
    assert line.endswith(" WARNING watchdog.test: hello")


def test_variable_for_stderr_does_not_leak_to_a_redirected_file(
    fd_stream: Stream, file_stream: Stream
) -> None:
    # The process inherited $JOURNAL_STREAM for its stderr but logs into a file: no <N> prefixes.
    setup_logging(0, environ=fd_stream.journal_env, stream=file_stream.writer)
    logging.getLogger("watchdog.test").info("to file")
    (line,) = file_stream.lines()
    assert TIMESTAMPED.match(line)
    assert fd_stream.lines() == []


def test_stream_without_file_descriptor_uses_plain_format() -> None:
    buffer = io.StringIO()
    setup_logging(0, environ={"JOURNAL_STREAM": "1:2"}, stream=buffer)
    logging.getLogger("watchdog.test").info("hi")
    assert TIMESTAMPED.match(buffer.getvalue())


@pytest.mark.parametrize(
    ("verbosity", "shown"),
    [
        pytest.param(-1, ["w", "e", "c"], id="quiet-shows-warnings-and-worse"),
        pytest.param(0, ["i", "w", "e", "c"], id="default-shows-info"),
        pytest.param(1, ["d", "i", "w", "e", "c"], id="verbose-shows-debug"),
        pytest.param(3, ["d", "i", "w", "e", "c"], id="more-verbose-still-debug"),
    ],
)
def test_verbosity_sets_the_threshold(verbosity: int, shown: list[str], file_stream: Stream) -> None:
    setup_logging(verbosity, environ={}, stream=file_stream.writer)
    _log_every_level()
    assert [line.rsplit(": ", 1)[1] for line in file_stream.lines()] == shown


@pytest.mark.parametrize(
    ("verbosity", "shown"),
    [
        pytest.param(0, ["w"], id="request-lines-hidden-by-default"),
        pytest.param(1, ["w"], id="hidden-with-one-v"),
        pytest.param(2, ["d", "i", "w"], id="shown-with-two-v"),
    ],
)
def test_http_libraries_are_quiet_below_two_v(verbosity: int, shown: list[str], file_stream: Stream) -> None:
    setup_logging(verbosity, environ={}, stream=file_stream.writer)
    for name in ("httpx", "httpcore.connection"):
        logger = logging.getLogger(name)
        logger.debug("d")
        logger.info("i")
        logger.warning("w")
    assert [line.rsplit(": ", 1)[1] for line in file_stream.lines()] == shown * 2


def test_calling_twice_installs_one_handler_and_keeps_foreign_ones(
    file_stream: Stream, tmp_path: Path
) -> None:
    foreign = logging.StreamHandler(io.StringIO())
    logging.getLogger().addHandler(foreign)
    setup_logging(0, environ={}, stream=file_stream.writer)
    setup_logging(0, environ={}, stream=file_stream.writer)
    logging.getLogger("watchdog.test").info("once")
    assert len(file_stream.lines()) == 1
    assert foreign in logging.getLogger().handlers
    assert foreign.stream.getvalue() == "once\n"


def test_second_call_moves_output_and_lowers_verbosity(file_stream: Stream, fd_stream: Stream) -> None:
    setup_logging(1, environ={}, stream=file_stream.writer)
    setup_logging(-1, environ=fd_stream.journal_env, stream=fd_stream.writer)
    _log_every_level()
    assert file_stream.lines() == []
    assert fd_stream.lines() == ["<4>watchdog.test: w", "<3>watchdog.test: e", "<2>watchdog.test: c"]


def test_default_stream_is_the_current_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    setup_logging(0, environ={})
    logging.getLogger("watchdog.test").warning("on stderr")
    captured = capfd.readouterr()
    assert captured.out == ""
    assert captured.err.endswith(" WARNING watchdog.test: on stderr\n")


def test_the_default_stream_follows_stderr_when_it_is_swapped_and_closed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A program that swaps and closes its stderr (a test runner's capture, an embedding program) must
    not leave the handler writing into the closed file ("--- Logging error --- ... closed file")."""
    first = (tmp_path / "first").open("w", encoding="utf-8")
    monkeypatch.setattr(sys, "stderr", first)
    setup_logging(0, environ={})
    first.close()
    second = (tmp_path / "second").open("w", encoding="utf-8")
    monkeypatch.setattr(sys, "stderr", second)
    logging.raiseExceptions = True  # the default: a failed emit prints "--- Logging error ---"
    logging.getLogger("watchdog.test").warning("after the swap")
    second.close()
    assert (tmp_path / "second").read_text(encoding="utf-8").endswith("watchdog.test: after the swap\n")


@pytest.mark.parametrize(
    ("levelno", "priority"),
    [
        pytest.param(logging.CRITICAL, 2, id="critical-is-crit"),
        pytest.param(logging.ERROR, 3, id="error-is-err"),
        pytest.param(logging.WARNING, 4, id="warning-is-warning"),
        pytest.param(logging.INFO, 6, id="info-is-info"),
        pytest.param(logging.DEBUG, 7, id="debug-is-debug"),
        pytest.param(25, 6, id="custom-level-between-info-and-warning-rounds-down-to-info"),
        pytest.param(45, 3, id="custom-level-between-error-and-critical-is-err"),
        pytest.param(5, 7, id="below-debug-is-debug"),
    ],
)
def test_syslog_priority(levelno: int, priority: int) -> None:
    assert syslog_priority(levelno) == priority

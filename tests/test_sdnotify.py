"""sd_notify protocol against real AF_UNIX datagram sockets bound by the test, as systemd binds its own."""

from __future__ import annotations

import logging
import os
import socket
import struct
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from watchdog.sdnotify import SystemdNotifier, monotonic_usec


@dataclass
class Receiver:
    """A bound datagram socket standing in for systemd's notify socket."""

    env_value: str  # what $NOTIFY_SOCKET says
    sock: socket.socket

    def receive(self) -> bytes:
        return self.sock.recv(4096)

    def receive_with_sender_pid(self) -> tuple[bytes, int]:
        # systemd learns the sender from SCM_CREDENTIALS (for NotifyAccess=main); so do we.
        data, ancdata, _flags, _addr = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid, _uid, _gid = struct.unpack("iII", payload[:12])
                return data, pid
        raise AssertionError("no SCM_CREDENTIALS received")

    def assert_nothing_queued(self) -> None:
        self.sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            self.sock.recv(4096)


def _bound(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    sock.settimeout(5)
    return sock


@pytest.fixture(params=["path", "abstract"])
def receiver(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    # tmp_path_factory with a short basename: sun_path holds at most 107 bytes.
    if request.param == "path":
        path = str(tmp_path_factory.mktemp("sd") / "notify")
        sock, env_value = _bound(path), path
    else:
        name = f"policy-watchdog-test-{uuid.uuid4().hex}"
        sock, env_value = _bound("\0" + name), "@" + name
    with sock:
        yield Receiver(env_value=env_value, sock=sock)


def _notifier(receiver: Receiver, **kwargs: object) -> SystemdNotifier:
    return SystemdNotifier.from_env({"NOTIFY_SOCKET": receiver.env_value}, **kwargs)  # type: ignore[arg-type]


MESSAGES: list[tuple[str, Callable[[SystemdNotifier], None], bytes]] = [
    ("ready", lambda n: n.ready(), b"READY=1"),
    ("stopping", lambda n: n.stopping(), b"STOPPING=1"),
    ("watchdog-ping", lambda n: n.watchdog_ping(), b"WATCHDOG=1"),
    (
        "status-human-text",
        lambda n: n.status("12 targets, 1 failing, next check 14:05"),
        b"STATUS=12 targets, 1 failing, next check 14:05",
    ),
    ("status-utf8", lambda n: n.status("vérifié à 14:05"), "STATUS=vérifié à 14:05".encode()),
    (
        "status-newline-cannot-inject-a-second-assignment",
        lambda n: n.status("page said\nREADY=1\r\nSTOPPING=1"),
        b"STATUS=page said READY=1 STOPPING=1",
    ),
    (
        "reloading-carries-monotonic-usec-from-the-clock",
        lambda n: n.reloading(),
        b"RELOADING=1\nMONOTONIC_USEC=1234567",
    ),
    (
        "notify-joins-lines-into-one-datagram",
        lambda n: n.notify("READY=1", "STATUS=up"),
        b"READY=1\nSTATUS=up",
    ),
]


@pytest.mark.parametrize(("send", "expected"), [m[1:] for m in MESSAGES], ids=[m[0] for m in MESSAGES])
def test_each_message_arrives_exactly(
    receiver: Receiver, send: Callable[[SystemdNotifier], None], expected: bytes
) -> None:
    notifier = _notifier(receiver, clock=lambda: 1234567)
    assert notifier.enabled
    send(notifier)
    assert receiver.receive() == expected
    receiver.assert_nothing_queued()


def test_messages_come_from_this_process_for_notify_access_main(receiver: Receiver) -> None:
    _notifier(receiver).ready()
    data, pid = receiver.receive_with_sender_pid()
    assert (data, pid) == (b"READY=1", os.getpid())


def test_lifecycle_sequence_in_order(receiver: Receiver) -> None:
    notifier = _notifier(receiver, clock=lambda: 7)
    notifier.ready()
    notifier.watchdog_ping()
    notifier.reloading()
    notifier.ready()
    notifier.stopping()
    received = [receiver.receive() for _ in range(5)]
    assert received == [
        b"READY=1",
        b"WATCHDOG=1",
        b"RELOADING=1\nMONOTONIC_USEC=7",
        b"READY=1",
        b"STOPPING=1",
    ]


def test_default_clock_is_clock_monotonic_in_microseconds(receiver: Receiver) -> None:
    before = monotonic_usec()
    _notifier(receiver).reloading()
    after = monotonic_usec()
    first, second = receiver.receive().split(b"\n")
    assert first == b"RELOADING=1"
    key, _, value = second.partition(b"=")
    assert key == b"MONOTONIC_USEC"
    assert before <= int(value) <= after
    # CLOCK_MONOTONIC is what time.monotonic() reads on Linux; microseconds, not seconds or ns.
    assert abs(int(value) / 1_000_000 - time.monotonic()) < 60


def test_no_notify_socket_means_no_op() -> None:
    notifier = SystemdNotifier.from_env({})
    assert not notifier.enabled
    notifier.ready()
    notifier.status("x")
    notifier.reloading()
    notifier.watchdog_ping()
    notifier.stopping()


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("relative/notify", id="relative-path-is-invalid"),
        pytest.param("@", id="empty-abstract-name-is-invalid"),
        pytest.param("vsock:2:1234", id="unsupported-vsock-address-is-ignored"),
    ],
)
def test_invalid_notify_socket_is_disabled_with_a_warning(
    value: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="watchdog.sdnotify"):
        notifier = SystemdNotifier.from_env({"NOTIFY_SOCKET": value})
    assert not notifier.enabled
    assert any(value in r.getMessage() for r in caplog.records)
    notifier.ready()  # and sending is a no-op


def _missing_path(tmp: Path, _stack: ExitStack) -> str:
    return str(tmp / "nobody-listens")


def _closed_socket_path(tmp: Path, _stack: ExitStack) -> str:
    path = str(tmp / "closed")
    _bound(path).close()  # the file stays, nobody reads it: ECONNREFUSED
    return path


def _stream_socket_path(tmp: Path, stack: ExitStack) -> str:
    path = str(tmp / "stream")
    sock = stack.enter_context(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
    sock.bind(path)
    sock.listen()  # a listening stream socket: a datagram to it fails with EPROTOTYPE
    return path


def _regular_file(_tmp: Path, _stack: ExitStack) -> str:
    return "/proc/version"


@pytest.mark.parametrize(
    "make_address",
    [
        pytest.param(_missing_path, id="socket-file-missing"),
        pytest.param(_closed_socket_path, id="nobody-reading"),
        pytest.param(_stream_socket_path, id="stream-not-datagram-socket"),
        pytest.param(_regular_file, id="not-a-socket"),
    ],
)
def test_send_errors_never_raise_and_are_logged_at_debug(
    make_address: Callable[[Path, ExitStack], str],
    tmp_path_factory: pytest.TempPathFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with ExitStack() as stack:
        address = make_address(tmp_path_factory.mktemp("sd"), stack)
        notifier = SystemdNotifier.from_env({"NOTIFY_SOCKET": address})
        with caplog.at_level(logging.DEBUG, logger="watchdog.sdnotify"):
            notifier.ready()
            notifier.status("still alive")
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert [r.levelno for r in failures] == [logging.DEBUG, logging.DEBUG]


def test_a_full_socket_queue_times_out_instead_of_hanging(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    filler = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    filler.setblocking(False)
    address = "\0" + receiver.env_value[1:] if receiver.env_value[0] == "@" else receiver.env_value
    with filler:
        with pytest.raises(BlockingIOError):  # the receiver's queue is finite: fill it
            for _ in range(100_000):
                filler.sendto(b"X" * 1024, address)
        notifier = _notifier(receiver, send_timeout=0.05)
        with caplog.at_level(logging.DEBUG, logger="watchdog.sdnotify"):
            notifier.watchdog_ping()
    assert any("failed" in r.getMessage() for r in caplog.records)


WATCHDOG_CASES = [
    pytest.param({"WATCHDOG_USEC": "120000000"}, 60.0, id="half-of-watchdog-usec-in-seconds"),
    pytest.param({"WATCHDOG_USEC": "3000000"}, 1.5, id="fractional-seconds-kept"),
    pytest.param({"WATCHDOG_USEC": "120000000", "WATCHDOG_PID": "4242"}, 60.0, id="pid-matches-this-process"),
    pytest.param({"WATCHDOG_USEC": "120000000", "WATCHDOG_PID": "1"}, None, id="pid-names-another-process"),
    pytest.param({"WATCHDOG_USEC": "0"}, None, id="zero-means-disabled"),
    pytest.param({"WATCHDOG_USEC": "-5"}, None, id="negative-is-invalid"),
    pytest.param({"WATCHDOG_USEC": "2min"}, None, id="not-a-number"),
    pytest.param({"WATCHDOG_USEC": ""}, None, id="empty"),
    pytest.param({"WATCHDOG_PID": "4242"}, None, id="pid-without-usec"),
    pytest.param({}, None, id="unset"),
]


@pytest.mark.parametrize(("environ", "expected"), WATCHDOG_CASES)
def test_watchdog_interval(environ: dict[str, str], expected: float | None) -> None:
    assert SystemdNotifier.from_env(environ, pid=4242).watchdog_interval == expected


def test_watchdog_pid_defaults_to_the_current_process() -> None:
    mine = {"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid())}
    other = {"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getppid())}
    assert SystemdNotifier.from_env(mine).watchdog_interval == 5.0
    assert SystemdNotifier.from_env(other).watchdog_interval is None


def test_watchdog_interval_is_independent_of_notify_socket() -> None:
    # As sd_watchdog_enabled(3): the interval is the unit's; where the pings go is $NOTIFY_SOCKET's.
    notifier = SystemdNotifier.from_env({"WATCHDOG_USEC": "4000000"})
    assert (notifier.enabled, notifier.watchdog_interval) == (False, 2.0)

"""Test support for storage faults: real file systems that fill up or cannot be written, made in a private
mount namespace (`unshare -m`, as root), so nothing leaks to the machine and everything vanishes with it.

    run_in_namespace(setup, steps, results)   one bash script: `setup` (mount a small tmpfs, a read-only bind
                                              mount, fill a disk...), then each step, a real command line
                                              (`python -m watchdog ...`) whose exit code, stdout and stderr
                                              are kept in `results` (outside the namespace) as a StepResult

A tmpfs mounted inside the namespace exists only while the script runs: every step that needs it (and any
check of what it holds afterwards) is a step of the same script.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

NAMESPACES_USABLE = os.geteuid() == 0 and shutil.which("unshare") is not None and shutil.which("mount")
needs_namespaces = pytest.mark.skipif(
    not NAMESPACES_USABLE,
    reason="needs root and util-linux's unshare/mount (a private mount namespace); .ci/run provides both",
)


@dataclass(frozen=True)
class Step:
    """One command of the script: `argv` for `python -m watchdog` (or, with `shell`, a shell line)."""

    name: str
    argv: Sequence[str] = ()
    shell: str = ""

    def line(self, python: str, results: Path) -> str:
        command = self.shell or " ".join(shlex.quote(a) for a in (python, "-m", "watchdog", *self.argv))
        out, err, rc = (shlex.quote(str(results / f"{self.name}.{s}")) for s in ("out", "err", "rc"))
        return f"{command} >{out} 2>{err}; echo $? >{rc}"


@dataclass(frozen=True)
class StepResult:
    returncode: int
    stdout: str
    stderr: str


def run_in_namespace(
    setup: str,
    steps: Sequence[Step],
    results: Path,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 240,
) -> dict[str, StepResult]:
    """Run `setup` then each step in a fresh private mount namespace; each step's result by name."""
    results.mkdir(parents=True, exist_ok=True)
    script = "\n".join(["set -u", setup, *(s.line(sys.executable, results) for s in steps)])
    done = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "bash", "-c", script],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    assert done.returncode == 0, f"the namespace script failed: {done.stderr}"
    return {s.name: _result(results, s.name) for s in steps}


def _result(results: Path, name: str) -> StepResult:
    def read(suffix: str) -> str:
        return (results / f"{name}.{suffix}").read_text(encoding="utf-8", errors="replace")

    return StepResult(int(read("rc").strip()), read("out"), read("err"))


def tmpfs(folder: Path, size: str) -> str:
    """Setup lines: a tmpfs of `size` (e.g. "4m") on `folder`."""
    where = shlex.quote(str(folder))
    return f"mkdir -p {where} && mount -t tmpfs -o size={size} tmpfs {where}"


def fill(folder: Path, *, leave_kib: int = 0) -> str:
    """Setup lines: fill the file system of `folder` up, leaving about `leave_kib` KiB free."""
    filler = shlex.quote(str(folder / "filler"))
    if not leave_kib:
        return f"dd if=/dev/zero of={filler} bs=4k 2>/dev/null || true"
    free = f"$(( $(df --output=avail -k {shlex.quote(str(folder))} | tail -1) - {leave_kib} ))"
    return f"dd if=/dev/zero of={filler} bs=1k count={free} 2>/dev/null || true"


def read_only_bind(source: Path, target: Path) -> str:
    """Setup lines: `source` seen read-only at `target` (a bind mount: even root cannot write through it)."""
    src, dst = shlex.quote(str(source)), shlex.quote(str(target))
    return f"mkdir -p {dst} && mount --bind {src} {dst} && mount -o remount,bind,ro {dst}"

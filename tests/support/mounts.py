"""Test support for storage faults: real file systems that fill up or cannot be written, made in a private
mount namespace (`unshare -m`, as root), so nothing leaks to the machine and everything vanishes with it.

    run_in_namespace(setup, steps, results)   one bash script: `setup` (mount a small tmpfs, a read-only bind
                                              mount, fill a disk...), then each step, a real command line
                                              (`python -m watchdog ...`) whose exit code, stdout and stderr
                                              are kept in `results` (outside the namespace) as a StepResult

A tmpfs mounted inside the namespace exists only while the script runs: every step that needs it (and any
check of what it holds afterwards) is a step of the same script.

A disk that fails with real I/O errors (EIO), without device-mapper: an ext4 file system on a loop device
whose backing file is then cut short under it (`ext4_on_loop`, `cut_off_free_space`). The kernel fails every
read or write past the device's new end with "attempt to access beyond end of device" (EIO), so whatever the
file system allocates from then on cannot be written, while what was written before stays readable.
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

LOOP_TOOLS = ("losetup", "mkfs.ext4", "dumpe2fs", "debugfs", "findmnt", "truncate")
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


def _loop_devices_usable() -> bool:
    """Root, the tools and a free loop device the kernel hands out (`losetup -f` asks, attaches nothing)."""
    if not NAMESPACES_USABLE or not all(shutil.which(tool) for tool in LOOP_TOOLS):
        return False
    if not Path("/dev/loop-control").exists():
        return False
    found = subprocess.run(["losetup", "-f"], capture_output=True, text=True, check=False, timeout=30)
    return found.returncode == 0 and found.stdout.startswith("/dev/loop")


LOOP_DEVICES_USABLE = _loop_devices_usable()
needs_loop_devices = pytest.mark.skipif(
    not LOOP_DEVICES_USABLE,
    reason="needs root, a free loop device (/dev/loop-control), util-linux (losetup, findmnt) and e2fsprogs "
    "(mkfs.ext4, dumpe2fs, debugfs); .ci/run provides them",
)


def ext4_on_loop(backing: Path, folder: Path, content: Path, size: str = "8M") -> str:
    """Setup lines: an ext4 file system of `size` holding a copy of `content`, mounted on `folder`, on a loop
    device backed by a file in a tmpfs at `backing`, with its free space cut off: the loop device ends where
    the free space begins, so every block the file system allocates from then on lies past the end of the
    device (each write of it fails, EIO), while everything `content` held stays readable.

    mkfs.ext4 -d lays the copy out from the start of one block group (no flex_bg, no journal), so the free
    space is one tail; `errors=continue`: an I/O error does not turn the file system read-only, every later
    write meets the I/O error itself. Mounted with `-o loop`: the loop device is detached when the file
    system is unmounted (the EXIT trap does it in order), at the latest when the namespace ends."""
    image, where, back = (shlex.quote(str(p)) for p in (backing / "disk.img", folder, backing))
    header = f"dumpe2fs -h {image} 2>/dev/null | sed -nE"
    tail_only = '"${FREE#*-}" = "$((COUNT - 1))"'
    return "\n".join(
        [
            f"mkdir -p {back} {where} && mount -t tmpfs -o size=64m tmpfs {back}",
            f"truncate -s {size} {image}",
            "mkfs.ext4 -q -F -O ^has_journal,^flex_bg,^resize_inode -E lazy_itable_init=0 "
            f"-d {shlex.quote(str(content))} {image}",
            f"FREE=$(dumpe2fs {image} 2>/dev/null | sed -nE 's/^  Free blocks: //p')",
            f"BLOCK=$({header} 's/^Block size: +([0-9]+)/\\1/p')",
            f"COUNT=$({header} 's/^Block count: +([0-9]+)/\\1/p')",
            f'test {tail_only} || {{ echo "the free space is not one tail: $FREE" >&2; exit 90; }}',
            f"mount -o loop,errors=continue {image} {where}",
            f"trap 'umount {where} 2>/dev/null || umount -l {where}; umount -l {back}' EXIT",
            f"truncate -s $((${{FREE%-*}} * BLOCK)) {image} && losetup -c $(findmnt -n -o SOURCE {where})",
        ]
    )


def regrow(backing: Path, folder: Path, size: str = "8M") -> str:
    """Shell line: the device of `folder` back to its full size (the cut-off part reads as zeros) and the file
    system mounted again, so what follows reads the device itself, not what the kernel had cached."""
    image, where = (shlex.quote(str(p)) for p in (backing / "disk.img", folder))
    return f"umount {where} && truncate -s {size} {image} && mount -o loop,errors=continue {image} {where}"


def cut_from_file(backing: Path, folder: Path, name: str) -> str:
    """Shell line: the loop device of `folder` made to end where file `name` (in the file system's root)
    begins, and that file's cached pages dropped: reading it now meets the I/O error (a bad stretch of disk
    under a file that was written fine)."""
    image, where, path = (shlex.quote(str(p)) for p in (backing / "disk.img", folder, folder / name))
    loop = f"$(findmnt -n -o SOURCE {where})"
    first = f"$(debugfs -R 'bmap /{name} 0' {loop} 2>/dev/null)"
    block = f"$(dumpe2fs -h {loop} 2>/dev/null | sed -nE 's/^Block size: +([0-9]+)/\\1/p')"
    return (
        f"FIRST={first}; BLOCK={block}; truncate -s $((FIRST * BLOCK)) {image} && losetup -c {loop} "
        f"&& dd if={path} iflag=nocache count=0 status=none"
    )


def detach_loops(backing: Path) -> None:
    """Detach every loop device still backed by a file under `backing` (a namespace script that was killed
    cannot run its trap); the kernel keeps the backing file's name even when its tmpfs is gone."""
    listed = subprocess.run(
        ["losetup", "-a", "-n", "-O", "NAME,BACK-FILE"], capture_output=True, text=True, check=False
    )
    for line in listed.stdout.splitlines():
        name, _, back = line.strip().partition(" ")
        if back.strip().startswith(str(backing)):
            subprocess.run(["losetup", "-d", name], capture_output=True, check=False)

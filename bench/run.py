"""Run every benchmark (bench/bench_*.py), each in its own process, and print their figures.

    .venv/bin/python bench/run.py [--quick] [--only NAME ...] [--list]

`--quick` asks each script for a smaller size: a script that takes `--quick` gets it; otherwise the size
options it defines (see QUICK_SIZES) get small values. Each script's output is passed through as it comes,
then a summary says how long each took and whether it failed. Exit status 1 when any script failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

# Options that size a benchmark, and the small value `--quick` gives them when a script defines one.
QUICK_SIZES: dict[str, str] = {
    "--runs": "2",
    "--rounds": "1",
    "--repeat": "1",
    "--targets": "10",
    "--seconds": "5",
    "--changes": "10",
    "--pages": "4",
}


@dataclass(frozen=True)
class Result:
    script: str
    args: tuple[str, ...]
    returncode: int
    seconds: float


def scripts(only: Sequence[str]) -> list[Path]:
    found = sorted(BENCH.glob("bench_*.py"))
    return [s for s in found if not only or any(name in s.stem for name in only)]


def quick_args(script: Path) -> list[str]:
    """The arguments that make `script` small: its own --quick, else its size options made small."""
    source = script.read_text(encoding="utf-8")
    if '"--quick"' in source:
        return ["--quick"]
    args: list[str] = []
    for option, value in QUICK_SIZES.items():
        if f'"{option}"' in source:
            args += [option, value]
    return args


def run(script: Path, args: Sequence[str]) -> Result:
    title = " ".join([f"bench/{script.name}", *args])
    print(f"\n{'=' * 100}\n{title}\n{'=' * 100}", flush=True)
    start = time.monotonic()
    # Output is inherited, not captured: figures appear as they are measured.
    returncode = subprocess.run([sys.executable, str(script), *args], cwd=ROOT, check=False).returncode
    return Result(script.name, tuple(args), returncode, time.monotonic() - start)


def summary(results: Sequence[Result]) -> None:
    print(f"\n{'=' * 100}\nsummary")
    for r in results:
        status = "ok" if r.returncode == 0 else f"FAILED (exit {r.returncode})"
        print(f"  {r.script:24s} {r.seconds:7.1f} s  {status}  {' '.join(r.args)}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes: a smoke run of every script")
    parser.add_argument("--only", nargs="+", default=[], metavar="NAME", help="scripts whose name has NAME")
    parser.add_argument("--list", action="store_true", help="list the scripts and exit")
    args = parser.parse_args(argv)
    chosen = scripts(args.only)
    if args.list or not chosen:
        print("\n".join(f"bench/{s.name}" for s in chosen) or "no benchmark matches")
        return 0 if chosen else 1
    results = [run(s, quick_args(s) if args.quick else []) for s in chosen]
    summary(results)
    return 0 if all(r.returncode == 0 for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""`python -m watchdog`: the same entry point as the `policy-watchdog` console script."""

from watchdog.cli import run

run()

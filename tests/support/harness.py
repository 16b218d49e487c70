"""Test support: write a config for targets served by the local page server and run real check cycles."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from support.postgres import storage_lines
from watchdog.config import Config, load_config
from watchdog.models import Outcome
from watchdog.notify import DeliveryReport
from watchdog.pipeline import Context, Fetchers, deliver, run_cycle, shared_host_turns
from watchdog.storage import open_store
from watchdog.storage.interfaces import Storage


@dataclass(frozen=True)
class Site:
    """One target of a test config: its id, the page server path, and extra TOML lines."""

    id: str
    path: str
    extra: str = ""


def write_config(
    directory: Path, base_url: str, sites: Sequence[Site], *, channels: Sequence[str] = (), head: str = ""
) -> Path:
    lines = [head, "[storage]", 'dir = "archive"', *storage_lines(), "[fetch]", "retries = 1", "backoff = 0"]
    lines += ["timeout = 5", ""]
    for site in sites:
        lines += [
            "[[targets]]",
            f'id = "{site.id}"',
            f'url = "{base_url}{site.path}"',
            'select = ["#root"]',
            'confirm_delay = "0s"',
            'interval = "1s"',
            site.extra,
            "",
        ]
    for url in channels:
        lines += ["[[channels]]", f"url = {json.dumps(url)}", ""]
    path = directory / "watchdog.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def cycle(config_path: Path, *, only: Sequence[str] = ()) -> list[Outcome]:
    """One real check cycle through the library (fetch over loopback, SQLite archive on disk)."""
    config = load_config(config_path, environ={})
    targets = [t for t in config.targets if not only or t.id in only]
    with open_store(config) as store:
        fetchers = Fetchers(config, sleep=lambda _s: None, host_turns=shared_host_turns(store))
        try:
            return run_cycle(targets, Context(config=config, store=store, fetchers=fetchers))
        finally:
            fetchers.close()


def deliver_at(config_path: Path, moment: datetime) -> DeliveryReport | None:
    """One delivery pass, as `deliver` or the daemon runs it, with the clock at `moment` (past a backoff)."""
    config = load_config(config_path, environ={})
    with open_store(config, writer=True) as store:
        fetchers = Fetchers(config)
        try:
            return deliver(Context(config=config, store=store, fetchers=fetchers, clock=lambda: moment))
        finally:
            fetchers.close()


def open_archive(config_path: Path) -> tuple[Config, Storage]:
    config = load_config(config_path, environ={})
    return config, open_store(config, writer=False)


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The real command line, as a user (or a monitoring script) runs it."""
    environ = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "watchdog", *args],
        capture_output=True,
        text=True,
        check=False,
        env=environ,
        timeout=timeout,
    )

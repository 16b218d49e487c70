"""`copy-archive --to URL`: the whole archive of this config into another store, e.g. from the SQLite file
of a single machine into the PostgreSQL database several nodes will share, and back (storage/transfer.py
says how: rows as stored, in batches, idempotent and resumable). The destination is then verified the way
`verify` does it. A progress bar is drawn on a terminal (stderr), nothing when stderr is a file or a pipe.

    --to postgresql://user@host/db    a PostgreSQL archive (the password: ${VAR} in the URL, or libpq's own
                                      PGPASSWORD / ~/.pgpass)
    --to /var/lib/policy-watchdog2    a storage dir (SQLite)
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from watchdog.config import VAR_RE, Config, database_url_problem, load_config, resolve_config_path
from watchdog.errors import UsageError
from watchdog.publish.evidence import check_archive
from watchdog.storage import open_store
from watchdog.storage.address import is_database_url, redacted_url
from watchdog.storage.transfer import copy_archive

EXIT_OK, EXIT_FAILED = 0, 1
BAR = 30  # characters


def cmd_copy_archive(args: argparse.Namespace) -> int:
    config = load_config(resolve_config_path(args.config))
    destination = destination_config(config, args.to, environ=os.environ)
    with open_store(config, writer=False) as source, open_store(destination) as dest:
        bar = ProgressBar(sys.stderr) if sys.stderr.isatty() else None
        try:
            report = copy_archive(source, dest, progress=bar.update if bar else None)
        finally:
            if bar:
                bar.close()
        print(f"copied to {where(destination)}: {report.summary()}")
        problems = check_archive(dest).problems
    for problem in problems:
        print(problem)
    if problems:
        print(f"verify: {len(problems)} problem(s) in the copy")
        return EXIT_FAILED
    print("verify: the copy's hashes and chains are intact")
    return EXIT_OK


def destination_config(config: Config, to: str, *, environ: Mapping[str, str]) -> Config:
    """The config of the destination store: the same settings, another archive."""
    text = _expanded(to, environ)
    if is_database_url(text):
        problem = database_url_problem(text)
        if problem is not None:
            raise UsageError(f"--to: {problem}")
        if text == config.storage.url:
            raise UsageError("--to: that is this config's own archive")
        return replace(config, storage=replace(config.storage, url=text))
    directory = Path(text).expanduser().resolve()
    if config.storage.url is None and directory == config.storage_dir.resolve():
        raise UsageError("--to: that is this config's own storage dir")
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"--to: {directory} is not a folder")
    return replace(config, storage_dir=directory, storage=replace(config.storage, url=None))


def _expanded(text: str, environ: Mapping[str, str]) -> str:
    """${VAR} from the environment, as in the config file (a password need not be typed in a command)."""
    missing = [m.group(1) for m in VAR_RE.finditer(text) if m.group(1) not in environ]
    if missing:
        raise UsageError(f"--to: environment variable ${{{missing[0]}}} is not set")
    return VAR_RE.sub(lambda m: environ[m.group(1)], text)


def where(config: Config) -> str:
    return redacted_url(config.storage.url) if config.storage.url else str(config.storage_dir)


class ProgressBar:
    """One line per table, redrawn in place: `versions   [#########.....]  1200/2000`."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._what = ""

    def update(self, what: str, done: int, total: int) -> None:
        if what != self._what and self._what:
            self._out.write("\n")
        self._what = what
        filled = BAR if total == 0 else BAR * done // total
        self._out.write(
            f"\r{what.replace('_', ' '):<16} [{'#' * filled}{'.' * (BAR - filled)}] {done:>8}/{total}"
        )
        self._out.flush()

    def close(self) -> None:
        if self._what:
            self._out.write("\n")
            self._out.flush()

"""The publishing commands of the CLI: `serve`, `export-site DIR`, `export --format jsonl`, `verify`.

Declared like the rest of watchdog/cli.py (a configure function and a handler per command, handler(args)
-> exit code); cli.COMMANDS lists them. Each opens the archive read-only, so it runs beside the daemon.
Heavy modules (lxml, http.server) are imported by the handlers, not when the CLI starts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from watchdog.archived import ChainHead
from watchdog.config import Config, load_config, resolve_config_path
from watchdog.errors import AnchorError, StorageError
from watchdog.publish import export_site
from watchdog.publish.evidence import (
    chain_heads_json,
    check_archive,
    export_jsonl,
    read_anchor,
)
from watchdog.storage import open_store
from watchdog.storage.files import atomic_text_file, write_atomically
from watchdog.storage.interfaces import Storage

# the exit codes of watchdog.cli (whose command table calls these handlers, and defines their arguments:
# this module does not import it)
EXIT_OK, EXIT_FAILED = 0, 1


def _config(args: argparse.Namespace) -> Config:
    return load_config(resolve_config_path(args.config))


# --------------------------------------------------------------------------- serve


def cmd_serve(args: argparse.Namespace) -> int:
    from watchdog.publish.serve import serve  # with the site's templates: Jinja2, only for `serve`

    config = _config(args)

    def ready(url: str) -> None:
        print(f"serving the archive at {url} (feeds under {url}feeds/); Ctrl-C stops", flush=True)

    serve(config, host=args.host, port=args.port, ready=ready)
    return EXIT_OK


# --------------------------------------------------------------------------- export-site


def cmd_export_site(args: argparse.Namespace) -> int:
    config = _config(args)
    directory = Path(args.directory)
    with open_store(config, writer=False) as store:
        report = export_site(config, store, directory)
    print(f"{directory}: {report}; open {directory / 'index.html'}")
    return EXIT_OK


# --------------------------------------------------------------------------- export


def cmd_export(args: argparse.Namespace) -> int:
    config = _config(args)
    with open_store(config, writer=False) as store:
        if args.chain_heads is not None:
            targets = _write_heads(store, Path(args.chain_heads))
            print(f"{args.chain_heads}: chain heads of {targets} target(s)", file=sys.stderr)
            if args.output is None:
                return EXIT_OK
        if args.output is None:
            export_jsonl(store, sys.stdout, include_text=args.with_text)
            return EXIT_OK
        versions, changes = _export_to_file(store, Path(args.output), include_text=args.with_text)
    print(f"{args.output}: {versions} versions, {changes} changes", file=sys.stderr)
    return EXIT_OK


def _export_to_file(store: Storage, path: Path, *, include_text: bool) -> tuple[int, int]:
    try:
        with atomic_text_file(path) as handle:
            return export_jsonl(store, handle, include_text=include_text)
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _write_heads(store: Storage, path: Path) -> int:
    with store.reading() as reader:
        heads = reader.chain_heads()
    try:
        write_atomically(path, chain_heads_json(heads))
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return len(heads)


# --------------------------------------------------------------------------- verify


def cmd_verify(args: argparse.Namespace) -> int:
    config = _config(args)
    anchor = _anchor(Path(args.against)) if args.against else []
    with open_store(config, writer=False) as store:
        report = check_archive(store, against=anchor)
    out: TextIO = sys.stdout
    for problem in report.problems:
        print(problem, file=out)
    if report.problems:
        print(f"verify: {len(report.problems)} problem(s) in {config.storage_dir}", file=out)
        return EXIT_FAILED
    print(report.summary(), file=out)
    if args.against:
        print(f"ok: every chain of {args.against} ({len(anchor)} target(s)) is still whole", file=out)
    return EXIT_OK


def _anchor(path: Path) -> list[ChainHead]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AnchorError(f"{path}: {exc.strerror or exc}") from exc
    return read_anchor(data, str(path))

"""Stage 7, publish: Atom feeds, the static HTML archive, the read-only web view, evidence exports.

    after_cycle(config, store)   called by `check`, `reextract` and the daemon after every cycle: brings
                                 <storage dir>/feeds/ and <storage dir>/site/ up to date, incrementally
    publish(...)                 the same into any folders (`export-site DIR` writes both into DIR)

    export_site(...)             `export-site DIR`

Modules: archive (the read model, diff cache), output (incremental atomic writes), site, feeds (both
rendered by watchdog.render), serve, evidence (verify, export), commands (the CLI commands). This file
imports nothing heavy (the CLI loads it for every command): the generators, which load Jinja2 and lxml,
are imported by `publish` when it runs.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from watchdog.config import Config
from watchdog.errors import StorageError
from watchdog.publish.archive import (
    DiffCache,
    code_fingerprint,
    diff_cache_dir,
    full_texts_dir,
    load_archive,
    templates_cache_dir,
)
from watchdog.publish.evidence import chain_heads_json
from watchdog.publish.output import Page, WriteReport, page_key, write_pages
from watchdog.storage.files import sweep_temporaries
from watchdog.storage.interfaces import ArchiveReader, Storage

log = logging.getLogger(__name__)

LOCK_NAME = ".publish.lock"
CHAIN_HEADS = "chain-heads.json"
STALE_TEMPORARY = 600.0  # seconds: a page is written in milliseconds; an older temporary file is a leftover
GENERATOR_MODULES = (
    "watchdog.publish.archive",
    "watchdog.publish.site",
    "watchdog.publish.feeds",
    "watchdog.diff",
    "watchdog.sections",
    "watchdog.render",  # the package: its modules and its templates
)


@dataclass(frozen=True, slots=True)
class PublishReport:
    site: WriteReport
    feeds: WriteReport
    diffs_computed: int

    def __str__(self) -> str:
        return f"site: {self.site}; feeds: {self.feeds}; {self.diffs_computed} diff(s) computed"


def after_cycle(config: Config, store: Storage) -> None:
    """Refresh <storage dir>/feeds/ and <storage dir>/site/ after a cycle (only what changed is written)."""
    root = config.storage_dir
    report = publish(
        config,
        store,
        site_dir=root / "site",
        feeds_dir=root / "feeds",
        cache_dir=diff_cache_dir(root),
        texts_dir=full_texts_dir(root),
        templates_dir=templates_cache_dir(root),
    )
    log.debug("published: %s", report)


def publish(
    config: Config,
    store: Storage,
    *,
    site_dir: Path,
    feeds_dir: Path,
    cache_dir: Path | None,
    texts_dir: Path | None = None,
    templates_dir: Path | None = None,
) -> PublishReport:
    """Generate the site into `site_dir` and the feeds into `feeds_dir` from one snapshot of the archive.
    `cache_dir` keeps the diffs, `texts_dir` the version pages' rendered full texts, `templates_dir` the
    templates' compiled code (None: not kept)."""
    # the generators load Jinja2 and lxml (~0.1 s): only a command that publishes pays for them
    from watchdog.publish.feeds import FeedBuilder
    from watchdog.publish.site import SiteBuilder
    from watchdog.render.html import keep_compiled

    if templates_dir is not None:
        keep_compiled(templates_dir)

    generator = code_fingerprint(*GENERATOR_MODULES)
    with _exclusive(site_dir), store.reading() as reader:
        _sweep(site_dir, feeds_dir)
        archive = load_archive(reader)
        diffs = DiffCache(texts=reader.text, directory=cache_dir)
        site = SiteBuilder(config, archive, reader, diffs, generator, full_texts_dir=texts_dir)
        # a change's story is composed once, for its page and its feed entries
        feeds = FeedBuilder(config, archive, reader, diffs, generator, stories=site.stories)
        heads = _chain_heads_page(reader)  # beside the feeds and the site: whoever keeps a copy can
        site_report = write_pages(site_dir, [*site.pages(), heads], generator=generator)  # detect a rewrite
        feeds_report = write_pages(feeds_dir, [*feeds.pages(), heads], generator=generator)
    return PublishReport(site_report, feeds_report, diffs.computed)


def export_site(config: Config, store: Storage, directory: Path) -> str:
    """`export-site DIR`: the whole archive (pages and feeds/) under DIR; returns a one-line report."""
    report = publish(config, store, site_dir=directory, feeds_dir=directory / "feeds", cache_dir=None)
    return str(report)


def _chain_heads_page(reader: ArchiveReader) -> Page:
    """chain-heads.json: each target's last record hash and record count (publish/evidence.py, anchoring)."""
    data = chain_heads_json(reader.chain_heads())
    return Page(CHAIN_HEADS, page_key(data), lambda: data)


def _sweep(*folders: Path) -> None:
    """Temporary files of publishers that died mid-write (we hold the folder's publishing lock; the age
    leaves alone a publisher of the same feeds folder under another site folder's lock)."""
    for folder in folders:
        try:
            sweep_temporaries(folder, older_than=STALE_TEMPORARY)
        except OSError as exc:  # best effort: they take room, never a reader's view
            log.warning("could not remove leftover temporary files under %s: %s", folder, exc)


@contextmanager
def _exclusive(site_dir: Path) -> Iterator[None]:
    """One publisher at a time per output folder (the daemon's cycle and `serve` starting up)."""
    try:
        site_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(site_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StorageError(
            f"cannot write the published files under {site_dir}: {exc.strerror or exc}"
        ) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # blocks while another publisher finishes: its output is ours too
        yield
    finally:
        os.close(fd)

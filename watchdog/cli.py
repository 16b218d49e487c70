"""The command line: argument parsing, output formats and exit codes. No pipeline logic lives here.

Exit codes (CONTRACT.md): 0 success (changes are not errors); 1 at least one target errored or was
rejected (or the archive is busy/broken); 2 usage or config error. Any WatchdogError becomes one clean line
on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TextIO

from watchdog import __version__
from watchdog.config import Config, check_channels, load_config, resolve_config_path
from watchdog.deferred import deferred
from watchdog.errors import (
    AnchorError,
    ConfigError,
    FetchError,
    NotFoundError,
    QueryError,
    UsageError,
    WatchdogError,
)
from watchdog.follow import with_followed
from watchdog.logs import setup_logging
from watchdog.models import SOURCE_NAMES, Target, TargetState, Version, iso
from watchdog.storage import open_store
from watchdog.storage.search import MAX_RESULTS

# The modules of the commands other than the one that runs, and of the stages it may not reach, are loaded
# when first used (watchdog/deferred.py): `check` loads neither the daemon, nor the importers, nor
# publishing before its first request.
if TYPE_CHECKING:
    from watchdog import archive_copy, chores, daemon, demo, diff, doctor, notify, pipeline, publish
    from watchdog import reextract as reextracting
    from watchdog import results as fetch_results
    from watchdog import trace as tracing
    from watchdog.importers import history, ota, wayback
    from watchdog.publish import commands as publish_commands
    from watchdog.render import html as render_html
    from watchdog.render import markdown as render_markdown
    from watchdog.render import text as render_text
    from watchdog.results import Capture, ChangeRecord, NewChange, Outcome
    from watchdog.storage.interfaces import ArchiveReader, Storage  # the protocols: annotations only
else:
    archive_copy = deferred("watchdog.archive_copy")
    chores = deferred("watchdog.chores")
    daemon = deferred("watchdog.daemon")
    demo = deferred("watchdog.demo")
    doctor = deferred("watchdog.doctor")
    fetch_results = deferred("watchdog.results")
    diff = deferred("watchdog.diff")
    history = deferred("watchdog.importers.history")
    notify = deferred("watchdog.notify")
    ota = deferred("watchdog.importers.ota")
    pipeline = deferred("watchdog.pipeline")
    publish = deferred("watchdog.publish")
    publish_commands = deferred("watchdog.publish.commands")
    reextracting = deferred("watchdog.reextract")
    render_html = deferred("watchdog.render.html")
    render_markdown = deferred("watchdog.render.markdown")
    render_text = deferred("watchdog.render.text")
    tracing = deferred("watchdog.trace")
    wayback = deferred("watchdog.importers.wayback")

log = logging.getLogger("watchdog")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

Handler = Callable[[argparse.Namespace], int]


# --------------------------------------------------------------------------- parser


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command line; `only`: with that one command's arguments alone (see command_named)."""
    parser = argparse.ArgumentParser(
        prog="policy-watchdog",
        description="Watch Meta's privacy / AI-training pages and regulators' guidance; "
        "archive them and alert on change.",
    )
    parser.add_argument("--version", action="version", version=f"policy-watchdog {__version__}")
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="config file (default: $POLICY_WATCHDOG_CONFIG, "
        "/etc/policy-watchdog/watchdog.toml, else the bundled default)",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (twice: debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (helptext, configure, handler) in COMMANDS.items():
        if only is not None and name != only:
            continue
        sub = commands.add_parser(name, help=helptext, description=helptext)
        configure(sub)
        sub.set_defaults(handler=handler)
    return parser


# The global options exactly as build_parser spells them: what may come before the command (command_named).
_GLOBAL_FLAGS = frozenset({"-q", "--quiet", "--verbose"})


def command_named(argv: Sequence[str]) -> str | None:
    """The command `argv` runs, when that is plain to see: its first word after global options written in
    full (`--config PATH`, `--config=PATH`, `-v`, `-vv`, `--verbose`, `-q`, `--quiet`). Else None (help,
    --version, an unknown command, an abbreviated or bundled option...: the whole parser reads those).

    Why: each command's parser costs CPU to build (argparse makes a parser per command, with its help
    texts), ~7 ms for all of them at every start, before a check's first request. Parsed by a parser with
    only that command, a command line whose command is plain to see reads exactly as with all of them."""
    words = iter(argv)
    for word in words:
        if word == "--config":
            next(words, None)  # its value, whatever it looks like
        elif not (word in _GLOBAL_FLAGS or word.startswith("--config=") or _repeated_v(word)):
            return word if word in COMMANDS else None
    return None


def _repeated_v(word: str) -> bool:
    return len(word) > 1 and word[0] == "-" and set(word[1:]) == {"v"}


def _json_flag(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--json", action="store_true", help="one JSON object per line")


def _configure_check(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("target_ids", nargs="*", metavar="TARGET_ID", help="only these targets (default: all)")
    _json_flag(sub)


def _configure_history(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("target_id", metavar="TARGET_ID")
    _json_flag(sub)


def _configure_show(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("version_id", metavar="VERSION_ID")


def _configure_changes(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--target", metavar="ID")
    sub.add_argument("--topic", metavar="ID")
    sub.add_argument("--since", metavar="ISO-8601", type=_parse_since)
    _json_flag(sub)


def _configure_diff(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("version_a", metavar="VERSION_A")
    sub.add_argument("version_b", metavar="VERSION_B")
    sub.add_argument("--format", choices=("text", "md", "html"), default="text")


def _configure_config(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("action", choices=("check",), help="check: validate the config and print every error")


def _configure_reextract(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("target_id", metavar="TARGET_ID")


def _configure_serve(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    sub.add_argument("--port", type=_port, default=8080, help="port (default: 8080; 0: any free port)")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from exc
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range (0-65535): {port}")
    return port


def _configure_export_site(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("directory", metavar="DIR", help="where to write the site (created if missing)")


def _configure_export(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--format", choices=("jsonl",), default="jsonl", help="jsonl: one JSON object per line")
    sub.add_argument("--output", metavar="FILE", help="write to FILE (atomically) instead of stdout")
    sub.add_argument("--with-text", action="store_true", help="include each version's full text")
    sub.add_argument(
        "--chain-heads",
        metavar="FILE",
        help="write each target's last record hash and record count to FILE (keep it: `verify --against "
        "FILE` later detects a rewritten, trimmed or deleted chain); alone, nothing else is exported",
    )


def _configure_verify(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--against",
        metavar="FILE",
        help="also check the archive against chain heads kept earlier (`export --chain-heads`, or a copy of "
        "feeds/chain-heads.json): every chain must still be there, whole, with the same records",
    )


def _configure_copy_archive(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--to",
        required=True,
        metavar="URL",
        help="postgresql://user@host/database, or a storage dir (SQLite) to copy the archive into",
    )


def _configure_notify(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("action", choices=("test",), help="test: send a test message to every channel")


def _no_arguments(sub: argparse.ArgumentParser) -> None:
    del sub


def _parse_since(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 date or time: {text!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --------------------------------------------------------------------------- shared helpers


def _config(args: argparse.Namespace) -> Config:
    """The config, with the items its feeds follow (watchdog/follow.py) as targets."""
    return with_followed(load_config(resolve_config_path(args.config)))


def _open_store(config: Config, *, writer: bool) -> Storage:
    return open_store(config, writer=writer)


def _out() -> TextIO:
    return sys.stdout


def _print_json_lines(objects: Sequence[dict[str, object]]) -> None:
    for obj in objects:
        print(json.dumps(obj, ensure_ascii=False), file=_out())


def _when(moment: datetime | None) -> str:
    return iso(moment) if moment else "-"


def _table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(),
            file=_out(),
        )


# --------------------------------------------------------------------------- commands


def cmd_check(args: argparse.Namespace) -> int:
    config = _config(args)
    targets = _select_targets(config, args.target_ids)
    with _open_store(config, writer=True) as store:
        fetchers = pipeline.Fetchers(config, host_turns=pipeline.shared_host_turns(store))
        try:
            ctx = pipeline.Context(config=config, store=store, fetchers=fetchers, sleep=_real_sleep)
            outcomes = pipeline.run_cycle(targets, ctx)
        finally:
            fetchers.close()
        _print_outcomes(outcomes, as_json=args.json)  # the results stand even if publishing fails next
        _after_cycle(config, store)
    return EXIT_FAILED if any(o.status in ("error", "rejected") for o in outcomes) else EXIT_OK


def _real_sleep(seconds: float) -> None:
    time.sleep(seconds)


def _after_cycle(config: Config, store: Storage) -> None:
    """Feeds and the static site are refreshed after each cycle."""
    publish.after_cycle(config, store)


def _select_targets(config: Config, ids: Sequence[str]) -> list[Target]:
    selected = [t for t in config.targets if not ids or t.id in ids]
    unknown = sorted(set(ids) - {t.id for t in selected})
    if unknown:
        known = ", ".join(t.id for t in config.targets)
        raise UsageError(f"unknown target {', '.join(unknown)} (configured: {known})")
    return selected


def _print_outcomes(outcomes: Sequence[Outcome], *, as_json: bool) -> None:
    if as_json:
        _print_json_lines([o.to_dict() for o in outcomes])
        return
    for o in outcomes:
        detail = o.reason or (
            f"{o.change} ({', '.join(o.topics) or 'no topic'})" if o.change else o.version or ""
        )
        flag = " [alerted]" if o.alerted else ""
        print(f"{o.target_id:<36} {o.status:<9} {detail}{flag}", file=_out())


TARGET_COLUMNS = {
    "TARGET": "target",
    "STATE": "state",
    "LAST CHECK": "last_check",
    "LAST CHANGE": "last_change",
}
STATUS_COLUMNS = {
    **TARGET_COLUMNS,
    "FAILURES": "consecutive_failures",
    "NEXT DUE": "next_due",
    "NODE": "last_node",
    "REASON": "last_reason",
}


def _target_rows(args: argparse.Namespace) -> list[dict[str, object]]:
    config = _config(args)
    with _open_store(config, writer=False) as store:
        states = {s.id: s for s in store.archive.target_states()}
    return [_target_row(config, t.id, states.get(t.id)) for t in config.targets]


def _print_rows(rows: list[dict[str, object]], columns: dict[str, str], *, as_json: bool) -> None:
    if as_json:
        _print_json_lines(rows)
        return
    cells = [
        [str(row[key]) if row[key] not in (None, "") else "-" for key in columns.values()] for row in rows
    ]
    _table([list(columns), *cells])


def cmd_targets(args: argparse.Namespace) -> int:
    _print_rows(_target_rows(args), TARGET_COLUMNS, as_json=args.json)
    return EXIT_OK


def _target_row(config: Config, target_id: str, state: TargetState | None) -> dict[str, object]:
    target = config.target(target_id)
    assert target is not None
    failing = bool(state and state.consecutive_failures >= config.alerts.failure_threshold)
    return {
        "target": target_id,
        "name": target.name,
        "url": target.url,
        "state": "failing" if failing else ("ok" if state and state.last_check_at else "never checked"),
        "last_check": iso(state.last_check_at) if state and state.last_check_at else None,
        "last_status": state.last_status if state else None,
        "last_reason": state.last_reason if state else None,
        "last_change": iso(state.last_change_at) if state and state.last_change_at else None,
        "current_version": state.current_version if state else None,
        "consecutive_failures": state.consecutive_failures if state else 0,
        "next_due": iso(state.next_due_at) if state and state.next_due_at else None,
        "last_node": state.last_node if state else None,
    }


def cmd_status(args: argparse.Namespace) -> int:
    rows = _target_rows(args)
    _print_rows(rows, STATUS_COLUMNS, as_json=args.json)
    if not args.json:
        _print_channels(_config(args))
    return EXIT_FAILED if any(r["state"] == "failing" for r in rows) else EXIT_OK


def _print_channels(config: Config) -> None:
    """The alert channels, under the targets: what each is owed and whether it takes it."""
    if not config.channels:
        return
    with _open_store(config, writer=False) as store:
        health = notify.channel_health(config.channels, store.outbox.all_pending())
    rows = [["CHANNEL", "STATE", "OWED", "UNCONFIRMED", "NEXT TRY", "REASON"]]
    for h in health:
        due = _when(h.next_attempt_at) if h.owed else "-"
        rows.append([h.label, h.state, str(h.owed), str(h.unconfirmed), due, h.failing or "-"])
    print(file=_out())
    _table(rows)


def cmd_history(args: argparse.Namespace) -> int:
    config = _config(args)
    with _open_store(config, writer=False) as store:
        archive = store.archive
        state = archive.target_state(args.target_id)
        if state is None and config.target(args.target_id) is None:
            raise NotFoundError(f"unknown target {args.target_id!r}")
        versions = archive.versions(args.target_id)
        returns = _returns(archive.changes(target=args.target_id))
    current = state.current_version if state else None
    if args.json:
        _print_json_lines([_history_row(v, current, returns.get(v.id, [])) for v in versions])
        return EXIT_OK
    if not versions:
        print(f"{args.target_id}: no version yet (run `policy-watchdog check {args.target_id}`)", file=_out())
        return EXIT_OK
    rows = [["VERSION", "FIRST SEEN", "LAST SEEN", "CHARS", "SHA-256", "SOURCE", "NOTE"]]
    rows += [
        [
            v.id,
            iso(v.first_seen),
            iso(v.last_seen),
            str(v.length),
            v.text_hash[:12],
            SOURCE_NAMES.get(v.source, v.source),
            _note(v, current, returns),
        ]
        for v in versions
    ]
    _table(rows)
    return EXIT_OK


def _returns(changes: Sequence[ChangeRecord]) -> dict[str, list[ChangeRecord]]:
    """version id -> the reverts that brought its text (or its meaning: a variant back, written differently)
    back, oldest first."""
    found: dict[str, list[ChangeRecord]] = {}
    for change in sorted(changes, key=lambda c: c.detected_at):
        if change.kind == "revert":
            found.setdefault(change.reverted_to or change.to_version, []).append(change)
    return found


def _history_row(version: Version, current: str | None, returns: Sequence[ChangeRecord]) -> dict[str, object]:
    return {
        "id": version.id,
        "target": version.target_id,
        "first_seen": iso(version.first_seen),
        "last_seen": iso(version.last_seen),
        "text_hash": version.text_hash,
        "length": version.length,
        "technical": version.technical,
        "source": version.source,
        "recorded_at": iso(version.recorded_at) if version.recorded_at else None,
        "current": version.id == current,
        "returns": [{"at": iso(c.detected_at), "change": c.id, "from": c.from_version} for c in returns],
    }


def _note(version: Version, current: str | None, returns: Mapping[str, Sequence[ChangeRecord]]) -> str:
    """current, technical, and each return of this text after a revert ("back 2025-06-01 (c5)")."""
    notes = ["current"] if version.id == current else []
    notes += ["technical"] if version.technical else []
    notes += [
        f"back {c.detected_at:%Y-%m-%d} ({c.id.rsplit('@', 1)[-1]})" for c in returns.get(version.id, [])
    ]
    return ", ".join(notes)


def cmd_show(args: argparse.Namespace) -> int:
    config = _config(args)
    with _open_store(config, writer=False) as store:
        text = store.archive.version_text(args.version_id)
    _out().write(text)
    return EXIT_OK


def cmd_changes(args: argparse.Namespace) -> int:
    config = _config(args)
    with _open_store(config, writer=False) as store:
        records = store.archive.changes(target=args.target, topic=args.topic, since=args.since)
    if args.json:
        for record in records:
            print(record.to_json(), file=_out())
        return EXIT_OK
    if not records:
        print("no changes recorded", file=_out())
        return EXIT_OK
    for r in records:
        topics = ", ".join(r.topics) or ("reverted" if r.kind == "revert" else "no topic")
        print(f"{iso(r.detected_at)}  {r.id:<40} {topics:<30} {r.summary}", file=_out())
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    config = _config(args)
    with _open_store(config, writer=False) as store:
        before = store.archive.version_text(args.version_a)
        after = store.archive.version_text(args.version_b)
    renderers = {
        "text": render_text.full_diff,
        "md": render_markdown.full_diff,
        "html": render_html.full_diff,
    }
    _out().write(renderers[args.format](diff.diff_texts(before, after)))
    return EXIT_OK


def cmd_config(args: argparse.Namespace) -> int:
    path = resolve_config_path(args.config)
    config = load_config(path)  # raises ConfigError with every problem
    check_channels(config)  # each channel loaded with apprise, as delivery will
    channels = len(config.channels)
    print(
        f"{config.source}: ok ({len(config.targets)} targets, {channels} channels, "
        f"{len(config.topics)} topics; "
        f"archive in {config.storage_dir})",
        file=_out(),
    )
    return EXIT_OK


def cmd_reextract(args: argparse.Namespace) -> int:
    config = _config(args)
    target = config.target(args.target_id)
    if target is None:
        raise UsageError(f"unknown target {args.target_id!r}")
    with _open_store(config, writer=True) as store:
        report = reextracting.reextract(target, config, store)
        _after_cycle(config, store)
    print(report, file=_out())
    return EXIT_OK


def cmd_notify(args: argparse.Namespace) -> int:
    config = _config(args)
    if not config.channels:
        print("no [[channels]] configured", file=_out())
        return EXIT_USAGE
    results = notify.Notifier(config.channels).test()
    for label, error in results:
        print(f"{label}: {'ok' if error is None else 'FAILED: ' + error}", file=_out())
    return EXIT_FAILED if any(error for _, error in results) else EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    if not args.verbose:
        setup_logging(-1)  # the demo tells its own story on stdout; keep routine log lines out of it
    return demo.run_demo(out=_out())


def _configure_deliver(sub: argparse.ArgumentParser) -> None:
    # the daemon's delivery chore runs under the daemon's storage lock (see watchdog/chores.py)
    sub.add_argument("--under-daemon", action="store_true", help=argparse.SUPPRESS)


def cmd_deliver(args: argparse.Namespace) -> int:
    config = _config(args)
    holder = chores.expected_parent() if args.under_daemon else None
    with open_store(config, writer=True, lock_held_by=holder) as store:
        ctx = pipeline.Context(config=config, store=store, fetchers=pipeline.Fetchers(config))
        pipeline.deliver(ctx)
        health = notify.channel_health(config.channels, store.outbox.all_pending())
    in_brief = sum(h.in_brief for h in health)
    owed, unconfirmed = sum(h.owed for h in health) - in_brief, sum(h.unconfirmed for h in health)
    if owed:
        print(f"{owed} alert(s) still owed (a channel is down or backing off; retried later)", file=_out())
    if in_brief:
        print(f"{in_brief} change(s) wait for their channel's daily or weekly brief", file=_out())
    if unconfirmed:
        print(
            f"{unconfirmed} alert(s) unconfirmed: sent twice without an answer, never sent again (they may "
            "well have arrived; see `policy-watchdog status`)",
            file=_out(),
        )
    # under the daemon, 1 means trouble only: the daemon reads what is owed (and when) from the outbox
    return EXIT_FAILED if owed and not args.under_daemon else EXIT_OK


def _configure_doctor(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("target_id", metavar="TARGET_ID")
    sub.add_argument(
        "--offline", action="store_true", help="do not fetch: examine the last rejected snapshot"
    )
    _json_flag(sub)


def cmd_doctor(args: argparse.Namespace) -> int:
    """Why a target fails and, when its selectors no longer match, selectors that would read it again."""
    config = _config(args)
    target = config.target(args.target_id)
    if target is None:
        raise UsageError(f"unknown target {args.target_id!r}")
    with _open_store(config, writer=False) as store:
        current = store.archive.current_version(target.id)
        reference = store.archive.version_text(current.id) if current else None
        capture, source = _doctor_capture(config, target, store.archive, offline=args.offline)
    rejection, _ = pipeline.extract_and_validate(
        target, config, capture, previous_length=current.length if current else None
    )
    diagnosis = doctor.diagnose(
        target,
        capture,
        source=source,
        rejection=(rejection.code, rejection.reason) if rejection else None,
        reference=reference,
        reference_id=current.id if current else None,
    )
    _print_diagnosis(diagnosis, as_json=args.json)
    return EXIT_OK if diagnosis.status == "ok" else EXIT_FAILED


def _print_diagnosis(diagnosis: doctor.Diagnosis, *, as_json: bool) -> None:
    if as_json:
        _print_json_lines([diagnosis.to_dict()])
    else:
        _out().write(diagnosis.to_text())


def _doctor_capture(
    config: Config, target: Target, store: ArchiveReader, *, offline: bool
) -> tuple[Capture, str]:
    """The page fetched now or, offline or when the fetch fails, the last rejected snapshot."""
    problem = "--offline"
    if not offline:
        fetchers = pipeline.Fetchers(config)
        try:
            fetched = fetchers.for_target(target).fetch(target)
            if isinstance(fetched, fetch_results.Capture):
                return fetched, f"fetched now from {fetched.final_url} (HTTP {fetched.status})"
            problem = "the server answered 304 Not Modified"
        except FetchError as exc:
            problem = f"the fetch failed: {exc.reason}"
        finally:
            fetchers.close()
    rejected = [s for s in store.latest_snapshots(target.id, 50) if s.outcome == "rejected"]
    if not rejected:
        raise NotFoundError(f"{target.id}: {problem}, and no rejected snapshot is stored to examine")
    snapshot = rejected[0]
    capture = reextracting.capture_of(store, snapshot)
    return capture, f"the last rejected snapshot ({iso(snapshot.fetched_at)}; {problem})"


def cmd_publish(args: argparse.Namespace) -> int:
    config = _config(args)
    with _open_store(config, writer=False) as store:
        _after_cycle(config, store)
    return EXIT_OK


# --------------------------------------------------------------------------- import, search, trace


def _configure_import(sub: argparse.ArgumentParser) -> None:
    sources = sub.add_subparsers(dest="source", metavar="SOURCE", required=True)
    ota = sources.add_parser(
        "ota",
        help="a document's history from an Open Terms Archive versions repository (a clone or a bundle)",
        description="Import a document's history from an Open Terms Archive versions repository.",
    )
    ota.add_argument(
        "repository", metavar="SOURCE", help="a clone of the versions repository, or a git bundle"
    )
    ota.add_argument(
        "--document",
        required=True,
        metavar="PATH",
        help="the document's file, e.g. 'Facebook/Privacy Policy.md'",
    )
    ota.add_argument(
        "--target", required=True, metavar="ID", help="the configured target it is the history of"
    )
    _json_flag(ota)
    ota.set_defaults(handler=cmd_import_ota)
    wayback = sources.add_parser(
        "wayback",
        help="a target's history from the Wayback Machine's CDX API",
        description="Import a target's history from the Wayback Machine ([import] wayback_url).",
    )
    wayback.add_argument("--target", required=True, metavar="ID")
    wayback.add_argument(
        "--from", dest="since", metavar="DATE", type=_parse_date, help="first day (YYYY-MM-DD)"
    )
    wayback.add_argument("--to", dest="until", metavar="DATE", type=_parse_date, help="last day (YYYY-MM-DD)")
    _json_flag(wayback)
    wayback.set_defaults(handler=cmd_import_wayback)


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def _import_target(config: Config, target_id: str) -> Target:
    target = config.target(target_id)
    if target is None:
        raise UsageError(f"unknown target {target_id!r} (import into a configured target)")
    if target.kind != "page":
        raise UsageError(f"{target_id} is a feed: only pages have a history to import")
    return target


def cmd_import_ota(args: argparse.Namespace) -> int:
    config = _config(args)
    target = _import_target(config, args.target)
    with _open_store(config, writer=True) as store, ota.GitRepository(Path(args.repository)) as repository:
        source = ota.OtaSource(repository, args.document, target, config)
        _import(config, store, source, target, as_json=args.json)
    return EXIT_OK


def cmd_import_wayback(args: argparse.Namespace) -> int:
    config = _config(args)
    target = _import_target(config, args.target)
    fetchers = pipeline.Fetchers(config)
    try:
        with _open_store(config, writer=True) as store:
            imported = [v for v in store.archive.versions(target.id) if v.source != "live"]
            last = imported[0] if imported and imported[0].source == "wayback" else None
            source = wayback.WaybackSource(
                target,
                config,
                fetchers.for_target_kind("http"),
                since=args.since,
                until=args.until,
                previous=(last.length, last.text_hash) if last else None,
                sleep=_real_sleep,
            )
            _import(config, store, source, target, as_json=args.json)
    finally:
        fetchers.close()
    return EXIT_OK


def _import(
    config: Config, store: Storage, source: history.Source, target: Target, *, as_json: bool
) -> history.Tally:
    """Run an import (nothing is pushed to any channel), report it, then refresh feeds and site."""
    ctx = pipeline.Context(config=config, store=store, fetchers=pipeline.Fetchers(config))

    def describe(before: str, after: str, ids: history.ChangeIds) -> NewChange:
        return pipeline.describe_change(
            target,
            ctx,
            before,
            after,
            change_id=ids.change_id,
            from_id=ids.from_id,
            to_id=ids.to_id,
            at=ids.at,
            kind="imported",
        )

    progress = _ImportProgress(target.id, source.name, as_json=as_json)
    tally = history.run_import(
        source, target, store, describe=describe, progress=progress, at=datetime.now(UTC)
    )
    progress.finish(tally)
    _after_cycle(config, store)
    return tally


class _ImportProgress:
    """A progress bar on a terminal (stderr); otherwise, or with --json, one JSON object per line."""

    def __init__(self, target_id: str, source: str, *, as_json: bool) -> None:
        self._target, self._source = target_id, source
        self._bar = not as_json and sys.stderr.isatty()

    def step(self, done: int, total: int, ref: str, outcome: str) -> None:
        if not self._bar:
            line = {"event": "progress", "target": self._target, "source": self._source}
            _print_json_lines([{**line, "done": done, "total": total, "ref": ref, "outcome": outcome}])
            return
        width = 30
        filled = width * done // max(total, 1)
        bar = "#" * filled + "." * (width - filled)
        sys.stderr.write(f"\r{self._target} [{bar}] {done}/{total} {ref[:14]} {outcome:<10}")
        sys.stderr.flush()

    def finish(self, tally: history.Tally) -> None:
        counts = tally.to_dict()
        if not self._bar:
            _print_json_lines([{"event": "done", "target": self._target, "source": self._source, **counts}])
            return
        sys.stderr.write("\n")
        print(
            f"{self._target}: imported {counts['versions'] + counts['technical']} version(s) "
            f"from {self._source} ({counts['technical']} technical) and {counts['changes']} change(s); "
            f"{counts['collapsed']} record(s) repeated the text before them, {counts['rejected']} failed "
            f"validation; {counts['covered']} were imported before, {counts['after_live']} came after the "
            f"live watch began; {counts['relinked']} record(s) re-linked; nothing was sent to any channel",
            file=_out(),
        )


def _configure_search(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("query", metavar="QUERY", help='words (all must occur) or a "quoted phrase"')
    sub.add_argument("--target", metavar="ID")
    sub.add_argument(
        "--limit",
        type=int,
        default=50,
        metavar="N",
        help=f"at most N sentences (default 50, at most {MAX_RESULTS})",
    )
    _json_flag(sub)


def cmd_search(args: argparse.Namespace) -> int:
    config = _config(args)
    with _open_store(config, writer=False) as store:
        if (
            args.target
            and store.archive.target_state(args.target) is None
            and config.target(args.target) is None
        ):
            raise NotFoundError(f"unknown target {args.target!r}")
        hits = store.archive.search(args.query, target=args.target, limit=args.limit)
    if args.json:
        _print_json_lines([hit.to_dict() for hit in hits])
        return EXIT_OK
    if not hits:
        print("no sentence of the archive matches", file=_out())
    for hit in hits:
        until = "now" if hit.last_seen is None else iso(hit.last_seen)[:10]
        print(f"{hit.target_id}  {iso(hit.first_seen)[:10]} – {until:<10}  {hit.sentence}", file=_out())
    return EXIT_OK


def _configure_trace(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("target_id", metavar="TARGET_ID")
    sub.add_argument("text", metavar="TEXT", help="the sentence (the nearest one is followed when not exact)")
    _json_flag(sub)


def cmd_trace(args: argparse.Namespace) -> int:
    config = _config(args)
    with _open_store(config, writer=False) as store:
        if store.archive.target_state(args.target_id) is None:
            raise NotFoundError(f"unknown target {args.target_id!r} (or nothing archived for it yet)")
        life = tracing.trace(store.archive, args.target_id, args.text)
    if args.json:
        _print_json_lines([event.to_dict() for event in life.events])
        return EXIT_OK
    _print_trace(life)
    return EXIT_OK


def _print_trace(life: tracing.Trace) -> None:
    if not life.exact:
        print(f"no sentence is exactly that; the nearest: {life.sentence}", file=_out())
    for event in life.events:
        print(f"{iso(event.at)[:10]}  {event.event:<11}  {event.version:<32}  {event.text}", file=_out())


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Handler]] = {
    "check": ("one cycle over all (or the named) targets, then exit", _configure_check, cmd_check),
    "run": (
        "the daemon: check each target on its interval until SIGTERM",
        _no_arguments,
        lambda args: daemon.cmd_run(args),
    ),
    "targets": ("each target with its last check, last change and state", _json_flag, cmd_targets),
    "status": ("like targets, plus next due time; exit 1 when any target is failing", _json_flag, cmd_status),
    "history": ("a target's versions, newest first", _configure_history, cmd_history),
    "show": ("the normalised text of a version", _configure_show, cmd_show),
    "changes": ("detected changes, newest first", _configure_changes, cmd_changes),
    "diff": ("a readable diff between two versions", _configure_diff, cmd_diff),
    "config": ("validate the config and print every error", _configure_config, cmd_config),
    "reextract": (
        "rebuild versions from stored raw snapshots (technical; never alerts)",
        _configure_reextract,
        cmd_reextract,
    ),
    "notify": ("send a test message to every channel", _configure_notify, cmd_notify),
    "serve": (
        "read-only web view of the archive and the feeds",
        _configure_serve,
        lambda args: publish_commands.cmd_serve(args),
    ),
    "export-site": (
        "write the static HTML archive (with its feeds) to DIR",
        _configure_export_site,
        lambda args: publish_commands.cmd_export_site(args),
    ),
    "export": (
        "every version and change, with hashes and provenance (JSON lines)",
        _configure_export,
        lambda args: publish_commands.cmd_export(args),
    ),
    "verify": (
        "recompute every hash and the hash chain; exit 1 on any mismatch",
        _configure_verify,
        lambda args: publish_commands.cmd_verify(args),
    ),
    "copy-archive": (
        "copy the whole archive (ids, hashes, chains, outbox) to another store, e.g. postgresql://...",
        _configure_copy_archive,
        lambda args: archive_copy.cmd_copy_archive(args),
    ),
    "deliver": (
        "send the alerts still owed to the channels (check and run do this themselves)",
        _configure_deliver,
        cmd_deliver,
    ),
    "publish": (
        "regenerate the feeds and the static site in the storage dir (check and run do this too)",
        _no_arguments,
        cmd_publish,
    ),
    "import": (
        "bring in a target's history from Open Terms Archive (ota) or the Wayback Machine (wayback)",
        _configure_import,
        cmd_import_ota,
    ),
    "search": (
        "sentences of the archive containing QUERY, with when each was first and last seen",
        _configure_search,
        cmd_search,
    ),
    "trace": (
        "the life of one sentence: when it appeared, each edit, when it disappeared",
        _configure_trace,
        cmd_trace,
    ),
    "doctor": (
        "why a target fails, and selectors that would reproduce its last version",
        _configure_doctor,
        cmd_doctor,
    ),
    "demo": (
        "offline: replay real recorded Meta policy versions from a local server and show the alerts",
        _no_arguments,
        cmd_demo,
    ),
}


# --------------------------------------------------------------------------- entry point


def run() -> NoReturn:
    """The process's entry point (the `policy-watchdog` console script, `python -m watchdog`): `main`, then
    exit with its code.

    Before the interpreter exits, every object still alive moves to the collector's permanent generation
    (gc.freeze), which the interpreter's final collection skips: that pass walks all of them (the modules,
    a check's archive, texts and pages: ~40 ms of CPU after a cycle that recorded 12 changes, ~3% of it)
    only to free memory that the exit gives back anyway. Nothing is left open to clean up by then: `main`
    has closed the archive and the files it wrote through context managers, atexit handlers (logging's
    flush) and the standard streams' flush still run, and objects freed by their reference count are
    finalised as before. `main` itself, called in-process (the tests), does not freeze."""
    code = main()
    gc.freeze()
    raise SystemExit(code)


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    args = build_parser(only=command_named(words)).parse_args(words)
    setup_logging(-1 if args.quiet else args.verbose)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    except (UsageError, NotFoundError, AnchorError, QueryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except WatchdogError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        sys.stderr.close()  # `policy-watchdog changes | head`: not an error
        return EXIT_OK

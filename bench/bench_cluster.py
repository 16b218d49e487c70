"""Benchmark: scale out. 10,000 targets checked by 1, 2 and 4 `policy-watchdog run` daemons sharing one
PostgreSQL archive, and by 1 daemon on SQLite.

    .venv/bin/python bench/bench_cluster.py [--targets 10000] [--seconds 60] [--nodes 1,2,4]
                                            [--workers 4] [--hosts 64] [--policy-every 10] [--url URL]

The site: pages made per request by --hosts HTTP servers on 127.0.0.1 (a host is host:port, and each host
gets one request at a time across all nodes), every --policy-every-th target the real 367 KB printable
Meta privacy policy, the others a small policy page (~2 KB), each with its own revision sentence, served
byte-identical on every request. The archive: a throwaway PostgreSQL server the script starts (as the
test suite does; --url uses an existing, empty database instead), and a SQLite storage dir.

First a pass on PostgreSQL where every target gets its first version (extraction, a snapshot, a version
and their blobs per target; `--baseline-nodes` daemons); `copy-archive --to DIR` copies that archive into
the SQLite storage dir (so both backends hold the very same records). Then for each node count a steady
phase of --seconds (every target due every second: the daemons are saturated; pages unchanged). Figures:
checks per second (the site's hits: one request per check), CPU per check of the daemons (their own
utime + stime; the feed/site publishing children are left out and reported apart), CPU per check of the
PostgreSQL server, RSS per daemon (end and peak), the database's size per 1,000 versions, and the
scaling ratio (checks per second with n nodes / with one). The machine's load is printed with the figures:
on a shared 2-core machine every process competes for the same two cores.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from bench_daemon import Sampler, mb, page_template, sample, serve  # noqa: E402

from support.daemon import DaemonProcess, daemon_env, wait_until  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
REVISION = b"@@REVISION@@"
NONCE = b"@@NONCE@@"


# --------------------------------------------------------------------------- the site


class Site:
    """Byte-identical pages per path: a small page, or the real-size policy for every n-th target. Speaks
    bench_daemon's site protocol (hit, body, validators), so its HTTP server serves it."""

    validators = False

    def __init__(self, policy_every: int) -> None:
        self.small = page_template("small").replace(NONCE, b"0")
        self.policy = page_template("policy").replace(NONCE, b"0")
        self.policy_every = policy_every
        self._lock = threading.Lock()
        self.hits = 0
        self._cache: dict[str, bytes] = {}

    def hit(self, path: str) -> int:
        with self._lock:
            self.hits += 1
            return self.hits

    def body(self, path: str, count: int) -> bytes:
        del count  # the same bytes on every request
        with self._lock:
            cached = self._cache.get(path)
        if cached is None:
            number = int(path.strip("/t") or 0)
            template = self.policy if self.policy_every and number % self.policy_every == 0 else self.small
            cached = template.replace(REVISION, path.strip("/").encode())
            with self._lock:
                self._cache[path] = cached
        return cached

    def total(self) -> int:
        with self._lock:
            return self.hits


def serve_hosts(site: Site, hosts: int) -> tuple[list[ThreadingHTTPServer], list[str]]:
    """`hosts` servers on 127.0.0.1, each its own host:port (one request at a time each, across nodes)."""
    started = [serve(site) for _ in range(hosts)]  # type: ignore[arg-type]  # bench_daemon.Site protocol
    return [server for server, _base in started], [base for _server, base in started]


def write_config(work: Path, bases: list[str], targets: int, *, url: str | None, workers: int) -> Path:
    lines = ["[storage]", 'dir = "archive"', *([f'url = "{url}"'] if url else []), 'lease = "60s"']
    # publish = false: the feeds and the site (bench_publish.py measures them) would take the CPU the checks
    # are measured with, once per node on this one machine
    lines += [
        "[daemon]",
        f"max_workers = {workers}",
        "publish = false",
        "[fetch]",
        "retries = 0",
        "timeout = 30",
    ]
    lines += [""]
    for i in range(targets):
        lines += [
            "[[targets]]",
            f'id = "t{i:05d}"',
            f'url = "{bases[i % len(bases)]}/t{i:05d}"',
            'select = ["#root"]',
            'interval = "1s"',
            'confirm_delay = "0s"',
            "",
        ]
    path = work / "watchdog.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- processes and figures


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(own utime + stime, reaped children's cutime + cstime) of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / TICKS
    children = (int(fields[13]) + int(fields[14])) / TICKS
    return own, children


def postgres_cpu(postmaster: int | None) -> float:
    """CPU seconds of the benchmark's own PostgreSQL server: its postmaster and every backend it forked
    (the suites of others may run PostgreSQL servers on the same machine). 0 with --url (not ours)."""
    if postmaster is None:
        return 0.0
    total = sum(cpu_seconds(postmaster))  # with the exited backends it reaped
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = Path(proc, "stat").read_text().rsplit(")", 1)[1].split()
            if int(stat[1]) == postmaster:  # field 4, the parent's pid
                total += cpu_seconds(int(proc.name))[0]
        except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError, ValueError):
            continue
    return total


def postmaster_pid(data: Path) -> int:
    """The server's pid (the first line of its postmaster.pid)."""
    return int((data / "postmaster.pid").read_text().split()[0])


def local_postmaster(url: str) -> int | None:
    """With --url: the server's postmaster when it runs on this machine (a backend's parent), so its CPU is
    measured too; None when it is elsewhere."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        row = connection.execute("SELECT pg_backend_pid()").fetchone()
    try:
        stat = Path(f"/proc/{row[0] if row else 0}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, PermissionError):
        return None
    return int(stat[1])


def has_children(pid: int) -> bool:
    try:
        return any(Path(task, "children").read_text().strip() for task in Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return False


@dataclass
class Steady:
    backend: str
    nodes: int
    seconds: float
    checks: int
    daemon_cpu: float
    chore_cpu: float
    server_cpu: float
    rss_end_kb: list[int]
    rss_peak_kb: list[int]
    load: float  # the machine's 1-minute load average at the end of the phase

    @property
    def rate(self) -> float:
        return self.checks / self.seconds

    def line(self, one_node_rate: float | None) -> str:
        scale = f"x{self.rate / one_node_rate:.2f}" if one_node_rate else "-"
        per = (lambda cpu: f"{cpu / self.checks * 1000:6.2f}") if self.checks else (lambda _c: "   -  ")
        rss = ", ".join(mb(k) for k in self.rss_end_kb)
        peak = max(self.rss_peak_kb) if self.rss_peak_kb else 0
        return (
            f"{self.backend:<10} {self.nodes} node(s)  {self.rate:8.1f} checks/s  scaling {scale:<6} "
            f"CPU/check: daemons {per(self.daemon_cpu)} ms, database {per(self.server_cpu)} ms  "
            f"RSS per daemon {rss} (peak {mb(peak)})  publishing children {self.chore_cpu:.1f} s CPU  "
            f"load {self.load:.1f}"
        )


def start_nodes(config: Path, work: Path, count: int, phase: str) -> list[DaemonProcess]:
    """`count` daemons, each logging into a file of its own for this phase."""
    logs = [work / f"{phase}-node-{n}.log" for n in range(count)]
    return [DaemonProcess(config, env=daemon_env(), log_path=log) for log in logs]


def started(node: DaemonProcess) -> bool:
    """The daemon has read its config, synced its targets and begun its loop (its "running:" line): at
    10,000 targets that takes seconds of CPU, more with several nodes starting at once on 2 cores, and must
    not be counted as the steady state."""
    return "watchdog.daemon: running:" in node.log()


def stop_nodes(nodes: list[DaemonProcess]) -> None:
    for node in nodes:
        node.stop(timeout=60)
        node.close()


def versions_count(config: Path) -> int:
    from watchdog.config import load_config
    from watchdog.storage import open_store

    with open_store(load_config(config), writer=False) as store:
        return sum(1 for s in store.archive.target_states() if s.current_version)


def first_pass(config: Path, work: Path, targets: int, nodes: int, postmaster: int | None) -> None:
    print(
        f"postgresql: first pass, {targets} targets get their first version ({nodes} node(s)) ...", flush=True
    )
    started, cpu0 = time.monotonic(), postgres_cpu(postmaster)
    group = start_nodes(config, work, nodes, "first-pass")
    try:
        done = wait_until(lambda: versions_count(config) >= targets, 3600, every=5.0)
        cpu = sum(sum(cpu_seconds(n.pid)) for n in group)
    finally:
        stop_nodes(group)
    seconds = time.monotonic() - started
    print(
        f"postgresql: first pass {'done' if done else 'TIMED OUT'} in {seconds:.0f} s "
        f"({targets / seconds:.1f} first versions/s; daemons and their publishing children {cpu:.0f} s CPU, "
        f"PostgreSQL {postgres_cpu(postmaster) - cpu0:.0f} s CPU; load {os.getloadavg()[0]:.1f})",
        flush=True,
    )


def copy_to_sqlite(config: Path, archive: Path) -> None:
    """The SQLite side's archive: `copy-archive --to DIR` of the PostgreSQL one after its first pass (the
    same records, byte for byte; a second first pass on one node would take the better part of an hour)."""
    started = time.monotonic()
    command = [
        sys.executable,
        "-m",
        "watchdog",
        "--config",
        str(config),
        "copy-archive",
        "--to",
        str(archive),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=daemon_env())
    if done.returncode != 0:
        raise SystemExit(f"copy-archive failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    last = done.stdout.strip().splitlines()[-2:]
    print(f"sqlite: copy-archive of the first pass in {time.monotonic() - started:.0f} s: {'; '.join(last)}")


def steady(
    config: Path, work: Path, site: Site, nodes: int, seconds: float, backend: str, postmaster: int | None
) -> Steady:
    """`nodes` daemons for `seconds` once started: checks/s, CPU, RSS."""
    group = start_nodes(config, work, nodes, f"{backend}-{nodes}")
    try:
        return measure(group, site, seconds, backend, postmaster)
    finally:
        stop_nodes(group)


def measure(
    group: list[DaemonProcess], site: Site, seconds: float, backend: str, postmaster: int | None
) -> Steady:
    samplers = [Sampler(n.pid, every=1.0) for n in group]
    if not wait_until(lambda: all(started(n) for n in group), 900, every=1.0):
        raise SystemExit(f"the daemons did not start within 15 minutes: see {group[0].log_path}")
    time.sleep(10)  # warm-up: the first claims, the start-up publishing pass
    wait_until(lambda: not any(has_children(n.pid) for n in group), 600, every=1.0)
    before = [cpu_seconds(n.pid) for n in group]
    hits0, server0, t0 = site.total(), postgres_cpu(postmaster), time.monotonic()
    time.sleep(seconds)
    hits1, server1, t1 = site.total(), postgres_cpu(postmaster), time.monotonic()
    after = [cpu_seconds(n.pid) for n in group]
    ends = [sample(n.pid) for n in group]
    load = os.getloadavg()[0]
    for sampler in samplers:
        sampler.stop()
    return Steady(
        backend=backend,
        nodes=len(group),
        seconds=t1 - t0,
        checks=hits1 - hits0,
        daemon_cpu=sum(a[0] - b[0] for a, b in zip(after, before, strict=True)),
        chore_cpu=sum(a[1] - b[1] for a, b in zip(after, before, strict=True)),
        server_cpu=server1 - server0,
        rss_end_kb=[e.rss_kb for e in ends],
        rss_peak_kb=[e.hwm_kb for e in ends],
        load=load,
    )


def tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def database_size(url: str, *, vacuum: bool = False) -> int:
    """pg_database_size; with `vacuum`, after VACUUM FULL (the rows alone, without the dead row versions
    that every unchanged check's UPDATEs leave until autovacuum reuses their space)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        if vacuum:
            connection.execute("VACUUM FULL")
        row = connection.execute("SELECT pg_database_size(current_database())").fetchone()
    return int(row[0]) if row else 0


def per_thousand(size: int, versions: int, empty: int = 0) -> str:
    """Size per 1,000 versions, net of what the store weighs empty (`empty`)."""
    net = size - empty
    return f"{net / max(versions, 1) * 1000 / 1e6:.1f} MB per 1,000 versions ({size / 1e6:.0f} MB in all)"


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--targets", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each steady phase")
    parser.add_argument("--nodes", default="1,2,4", help="node counts on PostgreSQL")
    parser.add_argument("--workers", type=int, default=4, help="[daemon] max_workers of each node")
    parser.add_argument("--hosts", type=int, default=64)
    parser.add_argument("--policy-every", type=int, default=10, help="every n-th target a real-size page")
    parser.add_argument("--baseline-nodes", type=int, default=4)
    parser.add_argument("--url", help="an existing, empty PostgreSQL database (default: start one)")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    counts = [int(n) for n in args.nodes.split(",")]

    site = Site(args.policy_every)
    servers, bases = serve_hosts(site, args.hosts)
    small, policy = len(site.small), len(site.policy)
    print(
        f"scale-out benchmark: {args.targets} targets on {args.hosts} local hosts, "
        f"every {args.policy_every}th a real-size page ({policy // 1024} KB HTML; the others "
        f"{small // 1024} KB), interval 1 s, "
        f"{args.workers} workers per node, {os.cpu_count()} CPU cores; load average before: "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        flush=True,
    )
    results: list[Steady] = []
    sizes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        server, postmaster = None, None
        url = args.url
        if url is None:
            from support.postgres import PostgresServer, pg_bindir

            server = PostgresServer(pg_bindir())
            server.start()
            url, postmaster = server.create_database(), postmaster_pid(server.data)
        else:
            postmaster = local_postmaster(url)
        empty = database_size(url)
        sqlite_work = Path(tmp) / "sqlite"
        sqlite_work.mkdir()
        sqlite_config = write_config(sqlite_work, bases, args.targets, url=None, workers=args.workers)
        try:
            work = Path(tmp) / "postgresql"
            work.mkdir()
            config = write_config(work, bases, args.targets, url=url, workers=args.workers)
            first_pass(config, work, args.targets, args.baseline_nodes, postmaster)
            if not args.skip_sqlite:
                copy_to_sqlite(config, sqlite_work / "archive")
            for count in counts:
                results.append(steady(config, work, site, count, args.seconds, "postgresql", postmaster))
                print(results[-1].line(results[0].rate if count != counts[0] else None), flush=True)
            versions = versions_count(config)
            sizes.append(f"postgresql as used: {per_thousand(database_size(url), versions, empty)}")
            vacuumed = database_size(url, vacuum=True)
            sizes.append(f"postgresql after VACUUM FULL: {per_thousand(vacuumed, versions, empty)}")
            sizes.append(f"(an empty archive database: {empty / 1e6:.1f} MB, not counted)")
        finally:
            if server is not None:
                server.stop()
        if not args.skip_sqlite:
            results.append(steady(sqlite_config, sqlite_work, site, 1, args.seconds, "sqlite", None))
            print(results[-1].line(None), flush=True)
            archive = sqlite_work / "archive"
            size = (archive / "archive.sqlite3").stat().st_size + tree_size(archive / "blobs")
            sizes.append(f"sqlite: {per_thousand(size, versions_count(sqlite_config))}")
    for s in servers:
        s.shutdown()
    print("\nsteady state (pages unchanged, every target due every second):")
    one = next((r.rate for r in results if r.backend == "postgresql" and r.nodes == 1), None)
    for result in results:
        print("  " + result.line(one if result.backend == "postgresql" else None))
    print("database size: " + "; ".join(sizes))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

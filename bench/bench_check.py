"""Benchmark of one check cycle (`policy-watchdog check`) side by side with urlwatch 2.29; prints figures.

    .venv/bin/python bench/bench_check.py [--repeat 3] [--pages 12] [--quick] [--tools a,b,...]
                                          [--scenarios ...] [--compare DIR] [--dir DIR] [--instructions]

The yardstick (docs/standards): a check cycle over the real pages costs no more CPU, and at most 1.5x the
peak memory, of urlwatch 2.29 with the `css` + `html2text` filters on the same pages, measured side by side
in one run.

The pages: 12 real policy documents served from a local page server (127.0.0.1 only): the two raw HTML
snapshots kept in tests/fixtures/extract (Meta's printable privacy policy, the EU Meta AI terms: real pages
of 350-500 KB) and render_page() of real corpus versions (Meta's EU / FR / US policies, Instagram's EU and
US ones, the generative-AI pages, the AI terms), each one path. Scenarios, each a second cycle after a
first one (the baseline) made in a fresh archive:

    unchanged, 304        the server sends a strong ETag; the second cycle's conditional GET gets a 304
    unchanged, same bytes no validators; the very same bytes come back
    unchanged, new noise  no validators; the same text with fresh noise (render_page with a seed of its own
                          for each round, for the raw snapshots the next real capture, whose text is
                          identical)
    changed               every page moves to its next real version (a real wording change)

The tools, each run as a fresh process per cycle (interleaved, so that drift of the machine hits every
tool alike): `python -m watchdog --config X check --json` (the real command: it also refreshes the feeds
and the static site), a driver calling `pipeline.run_cycle` alone (the check without publishing), and
urlwatch with `css` + `html2text` (its default `re` method) and `css` + `html2text: pyhtml2text`. urlwatch
keeps its stdout reporter on (so it builds its diff and report) with the output discarded.

CPU is user+sys of the measured process (os.wait4), peak RSS its ru_maxrss. A forked child inherits the
high-water mark of the process it was forked from, so each command is started by a tiny launcher
(`python -S -I`, ~8 MB) instead of by this process, whose page server holds every page. The CPU a tool spends
before its first request (start-up: imports, config, archive) is read by a sitecustomize hook at its first
socket connect (time.process_time()).

Ratios to urlwatch: `CPU x` is the ratio of the medians; `paired` the median over rounds of the ratio
within a round (the tools of a round run back to back, so a slow spell of the VM weighs on both sides).
The verdict lines judge by `CPU x` and print the paired ratio beside it.

`--dir DIR` makes every folder of the run under DIR instead of the system's temporary folder: a check that
finds changes creates a few hundred files and urlwatch a few, so the kernel's cost of a new file, which the
run prints for its folder, weighs on the comparison (on this VM, 2026-12-06: 36-650 us of CPU a file in fresh
folders under /tmp, changing from run to run, 10-21 us under /work or /var/tmp).

`--instructions` also runs each tool's second cycle of each scenario once under valgrind's callgrind and
prints the instructions it executed in user space (callgrind's total Ir, threads included) and their ratio
to urlwatch's: a count that does not move with the machine's load or its drift (the same run twice agrees
within 0.1%), so a change of a few percent shows; it leaves out the kernel's work (file creation, fsync,
page faults), which the CPU times include. About a minute per tool and scenario.

Also printed: the median CPU time of reading each page (in this process, after a warm-up): the fast
reader's fingerprint of a page with new noise (what an unchanged check costs), its text of the next
version (what a changed page costs), and the parser of record (beautifulsoup4) on the same page.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.corpus import corpus_markdown, render_page  # noqa: E402
from support.pageserver import PageServer, start_page_server  # noqa: E402

PYTHON = sys.executable
URLWATCH = shutil.which("urlwatch", path=str(Path(PYTHON).parent)) or "urlwatch"
EXTRACT = ROOT / "tests" / "fixtures" / "extract"
CPU_LIMIT = 1.0  # the yardstick: no more CPU than urlwatch
RSS_LIMIT = 1.5  # ... and at most 1.5x its peak memory
REFERENCE = "urlwatch css+html2text"

# Started from here, it forks and execs the measured command (argv[2:]) and writes that child's rusage
# as JSON to argv[1].
LAUNCHER = r"""
import json, os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, ru = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    json.dump({"rc": os.waitstatus_to_exitcode(status), "cpu": ru.ru_utime + ru.ru_stime,
               "maxrss_kb": ru.ru_maxrss}, out)
"""

# The check without the publish step: what `check` does before it refreshes the feeds and the site.
DRIVER = r"""
import json, sys
from watchdog.config import load_config
from watchdog.pipeline import Context, Fetchers, run_cycle
from watchdog.storage.sqlite import SqliteStorage

config = load_config(sys.argv[1])
with SqliteStorage.open(config.storage_dir) as store:
    fetchers = Fetchers(config)
    try:
        outcomes = run_cycle(config.targets, Context(config=config, store=store, fetchers=fetchers))
    finally:
        fetchers.close()
for outcome in outcomes:
    print(json.dumps(outcome.to_dict()))
"""


# --------------------------------------------------------------------------- the pages


@dataclass(frozen=True)
class Page:
    """One watched page: its bytes in each state, and how both tools select its content."""

    id: str
    select: tuple[str, ...]
    remove: tuple[str, ...]
    base: bytes  # the first cycle of the "unchanged" scenarios
    noises: tuple[bytes, ...]  # the same text, other bytes (one per round, in turn)
    before: bytes  # the first cycle of the "changed" scenario
    after: bytes  # the next real version

    @property
    def path(self) -> str:
        return f"/{self.id}"

    def noise(self, round_number: int) -> bytes:
        return self.noises[round_number % len(self.noises)]


def _snapshot(name: str) -> bytes:
    return gzip.decompress((EXTRACT / f"{name}.html.gz").read_bytes())


def _raw_pages() -> list[Page]:
    """Real captured pages, as served: the next capture of the same text is the noise variant."""
    printable = "facebook-privacy-policy-printable-html/"
    terms = "meta-ai-terms/"
    return [
        Page(
            "printable-policy",
            ("#root",),
            (),
            base=_snapshot(printable + "2025-12-16T23-35-44Z"),
            noises=(_snapshot(printable + "2025-12-17T11-35-35Z"),),
            before=_snapshot(printable + "2025-12-16T11-35-42Z"),
            after=_snapshot(printable + "2025-12-16T23-35-44Z"),
        ),
        Page(
            "meta-ai-terms-raw",
            ("[role=main]",),
            ("[role=contentinfo]", "div:has(> [role=separator])"),  # the footer, as in bench_extract
            base=_snapshot(terms + "2026-01-21T23-36-24Z"),
            noises=(_snapshot(terms + "2026-01-22T23-36-44Z"),),
            before=_snapshot(terms + "2026-01-22T23-36-44Z"),
            after=_snapshot(terms + "2026-04-21T10-32-37Z"),
        ),
    ]


# (page id, corpus document, version, next version): consecutive real versions of similar length whose
# extracted texts differ (some consecutive corpus records differ only in link targets or markup).
RENDERED = (
    ("meta-policy-eu", "milestones/meta-privacy-policy-en-eu", "2025-04-23", "2025-05-28"),
    ("meta-policy-fr", "milestones/meta-privacy-policy-fr-fr", "2025-12-17", "2026-07-24"),
    ("meta-policy-us", "milestones/meta-privacy-policy-en-us", "2026-05-01T0053Z", "2026-05-01T1253Z"),
    ("instagram-eu", "milestones/instagram-privacy-policy-en-eu", "2025-12-17", "2026-07-24"),
    ("instagram-us", "milestones/instagram-privacy-policy-en-us", "2025-09-18", "2025-12-16"),
    ("genai-privacy-center", "milestones/meta-genai-privacy-center-en-us", "2025-12-28", "2026-07-11"),
    ("meta-ai-terms-eu", "milestones/meta-ai-terms-eu", "2026-01-21", "2026-05-13"),
    ("policy-genai-series", "series/facebook-privacy-policy-genai", "2026-07-07T10-30-25Z",
     "2026-07-09T10-30-24Z"),
    ("policy-en-series", "series/facebook-privacy-policy-en", "2025-08-16T00-31-48Z",
     "2025-09-19T00-31-53Z"),
    ("instagram-series", "series/instagram-privacy-policy-en", "2025-05-27T12-31-31Z",
     "2025-05-28T00-31-33Z"),
)  # fmt: skip


NOISE_VARIANTS = 5  # page noise differs from round to round (a real server adds fresh noise every time)


def _rendered_page(page_id: str, document: str, version: str, following: str) -> Page:
    old = corpus_markdown(f"{document}/{version}.md")
    new = corpus_markdown(f"{document}/{following}.md")
    base = render_page(old, seed=1)
    return Page(
        page_id,
        ("#root",),
        (),
        base=base,
        noises=tuple(render_page(old, seed=seed) for seed in range(2, 2 + NOISE_VARIANTS)),
        before=base,
        after=render_page(new, seed=3),
    )


def build_pages(count: int) -> list[Page]:
    pages = _raw_pages() + [_rendered_page(*row) for row in RENDERED]
    return pages[:count]


# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    key: str  # for --scenarios
    name: str
    etag: bool  # the server sends ETag / Last-Modified and answers conditional GETs with 304
    first: Callable[[Page], bytes]
    second: Callable[[Page, int], bytes]  # (page, round)
    expected: str  # what every page of the second cycle should come out as


SCENARIOS = (
    Scenario("304", "unchanged, 304", True, lambda p: p.base, lambda p, r: p.base, "unchanged"),
    Scenario(
        "same-bytes", "unchanged, same bytes", False, lambda p: p.base, lambda p, r: p.base, "unchanged"
    ),
    Scenario(
        "new-noise", "unchanged, new noise", False, lambda p: p.base, lambda p, r: p.noise(r), "unchanged"
    ),
    Scenario("changed", "changed", False, lambda p: p.before, lambda p, r: p.after, "changed"),
)


def serve(server: PageServer, pages: Sequence[Page], state: Callable[[Page], bytes], *, etag: bool) -> None:
    for page in pages:
        server.set(page.path, state(page), etag=etag)


# --------------------------------------------------------------------------- the tools


@dataclass(frozen=True)
class Tool:
    """How to set one tool up in a fresh folder, run one cycle there, and read what it reported."""

    name: str
    prepare: Callable[[Path, PageServer, Sequence[Page]], None]
    command: Callable[[Path], list[str]]
    statuses: Callable[[str], Counter[str]]
    source: Path = ROOT  # the folder that holds the `watchdog` package it imports


def _watchdog_config(folder: Path, server: PageServer, pages: Sequence[Page]) -> None:
    lines = ["[storage]", 'dir = "archive"', "[fetch]", "retries = 0", "timeout = 30", ""]
    for page in pages:
        lines += [
            "[[targets]]",
            f'id = "{page.id}"',
            f'url = "{server.url(page.path)}"',
            f"select = {json.dumps(list(page.select))}",
            f"remove = {json.dumps(list(page.remove))}",
            'confirm_delay = "0s"',  # urlwatch does not re-fetch to confirm a change either
            "",
        ]
    (folder / "watchdog.toml").write_text("\n".join(lines), encoding="utf-8")


def _watchdog_statuses(stdout: str) -> Counter[str]:
    return Counter(json.loads(line)["status"] for line in stdout.splitlines() if line.startswith("{"))


def _urlwatch_setup(method: str | None) -> Callable[[Path, PageServer, Sequence[Page]], None]:
    def prepare(folder: Path, server: PageServer, pages: Sequence[Page]) -> None:
        html2text: object = "html2text" if method is None else {"html2text": method}
        jobs = []
        for page in pages:
            css: dict[str, str] = {"selector": ", ".join(page.select)}
            if page.remove:
                css["exclude"] = ", ".join(page.remove)
            jobs.append({"name": page.id, "url": server.url(page.path), "filter": [{"css": css}, html2text]})
        # JSON is YAML: one document per job, as urlwatch reads its urls.yaml.
        (folder / "urls.yaml").write_text("\n---\n".join(json.dumps(j) for j in jobs) + "\n")
        config = {
            "display": {"new": True, "error": True, "unchanged": False, "empty-diff": True},
            "report": {"stdout": {"enabled": True, "color": False}},
        }
        (folder / "urlwatch.yaml").write_text(json.dumps(config) + "\n")

    return prepare


def _urlwatch_command(folder: Path) -> list[str]:
    return [
        PYTHON,
        URLWATCH,
        "--urls",
        str(folder / "urls.yaml"),
        "--config",
        str(folder / "urlwatch.yaml"),
        "--cache",
        str(folder / "cache.db"),
        "--hooks",
        str(folder / "hooks.py"),
    ]


def _urlwatch_statuses(stdout: str) -> Counter[str]:
    """The report's summary lines ("NEW: ...", "CHANGED: ..."); unchanged jobs are not listed."""
    words = {"NEW:": "new", "CHANGED:": "changed", "ERROR:": "error", "UNCHANGED:": "unchanged"}
    found = Counter(words[line.split()[1]] for line in _numbered(stdout) if line.split()[1] in words)
    return found


def _numbered(stdout: str) -> list[str]:
    # urlwatch's text report starts with a numbered summary: "01. CHANGED: name (url)".
    return [line for line in stdout.splitlines() if line[:2].isdigit() and ". " in line[:5]]


def watchdog_tools(source: Path = ROOT, label: str = "") -> list[Tool]:
    """The real `check` command, and the pipeline alone (no publish step), importing from `source`."""
    config = "watchdog.toml"
    return [
        Tool(
            f"policy-watchdog check{label}",
            _watchdog_config,
            lambda f: [PYTHON, "-m", "watchdog", "--config", str(f / config), "check", "--json"],
            _watchdog_statuses,
            source,
        ),
        Tool(
            f"watchdog run_cycle only{label}",
            _watchdog_config,
            lambda f: [PYTHON, "-c", DRIVER, str(f / config)],
            _watchdog_statuses,
            source,
        ),
    ]


URLWATCH_TOOLS = (
    Tool(REFERENCE, _urlwatch_setup(None), _urlwatch_command, _urlwatch_statuses),
    Tool("urlwatch css+pyhtml2text", _urlwatch_setup("pyhtml2text"), _urlwatch_command, _urlwatch_statuses),
)


# --------------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Sample:
    cpu: float  # user + sys seconds
    rss_mb: float  # peak resident set size
    statuses: Counter[str]
    startup_cpu: float | None = None  # CPU seconds spent before the first request (None: it made none)


# Loaded by every measured process (PYTHONPATH): at the first socket connect, the process's CPU time so
# far is written to the file named by the environment (start-up: imports, config, archive, before any
# request), and connect is restored.
SITECUSTOMIZE = """
import os, socket, time
_file = os.environ.get("BENCH_FIRST_REQUEST_FILE")
if _file:
    _connect = socket.socket.connect
    def _first_connect(self, address):
        socket.socket.connect = _connect
        with open(_file, "w") as out:
            out.write(repr(time.process_time()))
        return _connect(self, address)
    socket.socket.connect = _first_connect
"""


@dataclass(frozen=True)
class Runner:
    """Runs one cycle of a tool as a fresh process and reads its rusage."""

    pycache: Path  # where every child keeps its bytecode (see child_env)

    def child_env(self, folder: Path, source: Path) -> dict[str, str]:
        """Loopback only: no proxy may see the traffic; a private HOME for urlwatch's defaults.

        Both tools run from compiled bytecode, as an installed package does: PYTHONDONTWRITEBYTECODE (set
        in some dev shells) would make every process recompile policy-watchdog from source. The bytecode
        goes to a folder of this run (PYTHONPYCACHEPREFIX), not into the source tree.
        """
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        hook = self.pycache / "hook"
        if not (hook / "sitecustomize.py").is_file():
            hook.mkdir(exist_ok=True)
            (hook / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
        path = os.pathsep.join([str(source), str(hook)])
        env.update(HOME=str(folder), NO_PROXY="127.0.0.1,localhost", PYTHONPATH=path)
        env["PYTHONPYCACHEPREFIX"] = str(self.pycache)
        env["BENCH_FIRST_REQUEST_FILE"] = str(folder / "first-request")
        return env

    def measure(self, tool: Tool, folder: Path) -> Sample:
        usage_file = folder / "rusage.json"
        first_request = folder / "first-request"
        first_request.unlink(missing_ok=True)
        proc = subprocess.run(
            [PYTHON, "-S", "-I", "-c", LAUNCHER, str(usage_file), *tool.command(folder)],
            cwd=folder,
            env=self.child_env(folder, tool.source),
            capture_output=True,
            text=True,
            check=False,
        )
        usage = json.loads(usage_file.read_text())
        if usage["rc"] not in (0, 1):  # 1: policy-watchdog's "a target was rejected", seen in the statuses
            raise RuntimeError(f"{tool.name} exited {usage['rc']}: {proc.stderr[-2000:]}")
        startup = float(first_request.read_text()) if first_request.is_file() else None
        return Sample(usage["cpu"], usage["maxrss_kb"] / 1024, tool.statuses(proc.stdout), startup)


# --------------------------------------------------------------------------- the run

FIRST = "first cycle (baseline)"
Results = dict[tuple[str, str], list[Sample]]


def run(
    runner: Runner,
    server: PageServer,
    tools: Sequence[Tool],
    pages: Sequence[Page],
    scenarios: Sequence[Scenario],
    repeat: int,
) -> Results:
    """Every scenario `repeat` times; within a round the tools take turns, each in a fresh folder."""
    for tool in tools:  # a warm-up: bytecode compiled and files cached for every tool alike
        _round(runner, server, tool, pages, scenarios[0], 0)
    results: Results = {}
    for number in range(repeat):
        for scenario in scenarios:
            for tool in tools:
                first, second = _round(runner, server, tool, pages, scenario, number)
                results.setdefault((tool.name, FIRST), []).append(first)
                results.setdefault((tool.name, scenario.name), []).append(second)
    return results


def _round(
    runner: Runner, server: PageServer, tool: Tool, pages: Sequence[Page], scenario: Scenario, number: int
) -> tuple[Sample, Sample]:
    with tempfile.TemporaryDirectory(prefix="bench-check-") as tmp:
        folder = Path(tmp)
        tool.prepare(folder, server, pages)
        serve(server, pages, scenario.first, etag=scenario.etag)
        first = runner.measure(tool, folder)
        # Only the pages that differ are set again: a path set anew would get a new Last-Modified.
        moved = [p for p in pages if scenario.second(p, number) != scenario.first(p)]
        serve(server, moved, lambda page: scenario.second(page, number), etag=scenario.etag)
        return first, runner.measure(tool, folder)


# --------------------------------------------------------------------------- the report


def _median(samples: Sequence[Sample]) -> tuple[float, float]:
    return statistics.median(s.cpu for s in samples), statistics.median(s.rss_mb for s in samples)


def _paired(samples: Sequence[Sample], reference: Sequence[Sample]) -> float:
    """The median, over rounds, of the CPU ratio within a round. The tools of a round run back to back, so
    a slow spell of this VM (its CPU time wanders by up to 1.5x) weighs on both sides of each ratio; the
    ratio of the medians can pair one tool's fast rounds with the other's slow ones."""
    return statistics.median(s.cpu / r.cpu for s, r in zip(samples, reference, strict=True))


def _statuses(samples: Sequence[Sample]) -> str:
    counts = samples[-1].statuses
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "(none listed)"


def print_table(results: Results, tools: Sequence[Tool], scenarios: Sequence[Scenario]) -> None:
    names = [FIRST, *(s.name for s in scenarios)]
    header = (
        f"{'tool':26s} {'scenario':24s} {'CPU s':>7s} {'CPU range':>11s} {'peak RSS MB':>11s}"
        f" {'CPU x':>6s} {'paired':>6s} {'RSS x':>6s} {'start-up s':>10s}"
    )
    print(header + "  reported (last run)")
    print("-" * (len(header) + 22))
    for scenario in names:
        reference = results.get((REFERENCE, scenario))
        for tool in tools:
            samples = results[(tool.name, scenario)]
            cpu, rss = _median(samples)
            ratios = f"{'':6s} {'':6s} {'':6s}"
            if reference and tool.name != REFERENCE:
                ref_cpu, ref_rss = _median(reference)
                paired = _paired(samples, reference)
                ratios = f"{cpu / ref_cpu:6.2f} {paired:6.2f} {rss / ref_rss:6.2f}"
            spread = f"{min(s.cpu for s in samples):.2f}-{max(s.cpu for s in samples):.2f}"
            startups = [s.startup_cpu for s in samples if s.startup_cpu is not None]
            startup = f"{statistics.median(startups):10.3f}" if startups else f"{'-':>10s}"
            print(
                f"{tool.name:26s} {scenario:24s} {cpu:7.3f} {spread:>11s} {rss:11.1f} {ratios} {startup}"
                f"  {_statuses(samples)}"
            )
        print()


def print_verdict(results: Results, tools: Sequence[Tool], scenarios: Sequence[Scenario], pages: int) -> None:
    ours = [t.name for t in tools if not t.name.startswith("urlwatch")]
    theirs = [t.name for t in tools if t.name.startswith("urlwatch")]
    print(f"yardstick: CPU <= {CPU_LIMIT:g}x and peak RSS <= {RSS_LIMIT:g}x urlwatch's, per scenario")
    for scenario in [FIRST, *(s.name for s in scenarios)]:
        for mine in ours:
            for other in theirs:
                cpu, rss = _median(results[(mine, scenario)])
                ref_cpu, ref_rss = _median(results[(other, scenario)])
                ok = cpu <= CPU_LIMIT * ref_cpu and rss <= RSS_LIMIT * ref_rss
                paired = _paired(results[(mine, scenario)], results[(other, scenario)])
                print(
                    f"  {'meets ' if ok else 'MISSES'} {scenario:24s} {mine:26s} vs {other:26s}"
                    f" CPU {cpu / ref_cpu:4.2f}x (paired {paired:4.2f}x)  RSS {rss / ref_rss:4.2f}x"
                )
    _check_outcomes(results, ours, pages)


def _check_outcomes(results: Results, ours: Sequence[str], pages: int) -> None:
    """A benchmark of the wrong work is worthless: every page must come out as the scenario says."""
    expected = {FIRST: "new", **{s.name: s.expected for s in SCENARIOS}}
    for (tool, scenario), samples in results.items():
        if tool in ours:
            for sample in samples:
                if sample.statuses != Counter({expected[scenario]: pages}):
                    print(f"  WARNING: {tool} / {scenario}: {dict(sample.statuses)}")


def count_instructions(
    runner: Runner,
    server: PageServer,
    tools: Sequence[Tool],
    pages: Sequence[Page],
    scenarios: Sequence[Scenario],
) -> dict[tuple[str, str], int]:
    """Per tool and scenario: the instructions of one second cycle under callgrind (its first cycle runs as
    usual). The same state as the CPU rounds: a fresh folder, the first pages, then the second ones."""
    counts = {}
    for scenario in scenarios:
        for tool in tools:
            with tempfile.TemporaryDirectory(prefix="bench-check-") as tmp:
                folder = Path(tmp)
                tool.prepare(folder, server, pages)
                serve(server, pages, scenario.first, etag=scenario.etag)
                runner.measure(tool, folder)
                moved = [p for p in pages if scenario.second(p, 0) != scenario.first(p)]
                serve(server, moved, lambda page: scenario.second(page, 0), etag=scenario.etag)  # noqa: B023
                counts[(tool.name, scenario.name)] = _callgrind(runner, tool, folder)
    return counts


def _callgrind(runner: Runner, tool: Tool, folder: Path) -> int:
    out = folder / "callgrind.out"
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *tool.command(folder)],
        cwd=folder,
        env=runner.child_env(folder, tool.source),
        capture_output=True,
        text=True,
        check=False,
    )
    totals = [line for line in out.read_text().splitlines() if line.startswith(("totals:", "summary:"))]
    if proc.returncode not in (0, 1) or not totals:
        raise RuntimeError(f"{tool.name} under callgrind exited {proc.returncode}: {proc.stderr[-2000:]}")
    return int(totals[-1].split()[1])


def print_instructions(
    counts: dict[tuple[str, str], int], tools: Sequence[Tool], scenarios: Sequence[Scenario]
) -> None:
    print("instructions of one second cycle (callgrind Ir, user space, threads included; ratio to urlwatch):")
    for scenario in scenarios:
        reference = counts.get((REFERENCE, scenario.name))
        for tool in tools:
            count = counts[(tool.name, scenario.name)]
            ratio = f"{count / reference:6.2f}x" if reference and tool.name != REFERENCE else ""
            print(f"  {tool.name:26s} {scenario.name:24s} {count / 1e9:7.3f} G {ratio}")


def print_versions() -> None:
    packages = ["beautifulsoup4", "lxml", "soupsieve", "httpx", "urlwatch", "html2text", "requests",
                "cssselect", "policy-watchdog"]  # fmt: skip
    found = []
    for name in packages:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    print(f"Python {platform.python_version()} ({platform.machine()}, {os.cpu_count()} CPUs)")
    print("; ".join(found))


def print_file_creation() -> None:
    """The kernel's CPU per new file in a fresh folder where the rounds run (each round's folders are fresh):
    a check that finds changes creates a few hundred files (blobs, caches, the site's pages), urlwatch a few.
    On this VM (2026-12-06) it was 10-21 us under /work or /var/tmp and 36-650 us under /tmp, changing from
    run to run (ext4's inode allocation for the folders made there), so the same code's CPU can differ by
    ~0.15 s between them."""
    costs = []
    for _ in range(3):
        with tempfile.TemporaryDirectory(prefix="bench-check-probe-") as tmp:
            folder = Path(tmp) / "a" / "b"
            folder.mkdir(parents=True)
            start = time.process_time()
            for number in range(40):
                os.close(os.open(folder / f"f{number}", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            costs.append((time.process_time() - start) / 40 * 1e6)
    where = tempfile.gettempdir()
    print(f"file creation in fresh folders under {where}: {statistics.median(costs):.0f} us CPU a file")


def print_load() -> None:
    """The machine's load: CPU-time figures are noisy on a shared machine (cache, frequency)."""
    one, five, fifteen = os.getloadavg()
    print(f"load average: {one:.2f}, {five:.2f}, {fifteen:.2f} ({os.cpu_count()} CPUs)")


def print_pages(pages: Sequence[Page]) -> None:
    sizes = ", ".join(f"{p.id} {len(p.base) // 1024} KB" for p in pages)
    print(f"{len(pages)} pages on 127.0.0.1: {sizes}")


# --------------------------------------------------------------------------- per-page extraction


def _cpu_ms(action: Callable[[], object], runs: int) -> float:
    """Median CPU milliseconds of `runs` calls, after one warm-up call."""
    action()
    samples = []
    for _ in range(runs):
        start = time.process_time()
        action()
        samples.append((time.process_time() - start) * 1000)
    return statistics.median(samples)


def print_extraction(pages: Sequence[Page], runs: int) -> None:
    """Per page: the fast reader on new noise (fingerprint), on the next version (text), and the parser of
    record (beautifulsoup4) on the next version; median CPU ms."""
    from watchdog.extract import extract
    from watchdog.fastread import read_page

    print(f"per-page extraction, median CPU ms of {runs} runs (fast reader vs parser of record):")
    columns = f"{'noise: fingerprint':>19s} {'changed: text':>14s} {'beautifulsoup4':>15s}"
    print(f"  {'page':22s} {'KB':>5s} {columns}")
    for page in pages:
        noise, after = page.noises[0], page.after
        options = {"content_type": "text/html; charset=utf-8", "url": f"https://www.facebook.com{page.path}",
                   "select": page.select, "remove": page.remove}  # fmt: skip
        fingerprint = _cpu_ms(lambda: read_page(noise, **options).fingerprints(1), runs)  # noqa: B023
        text = _cpu_ms(lambda: read_page(after, **options).extracted(), runs)  # noqa: B023
        full = _cpu_ms(lambda: extract(after, **options), max(1, runs // 3))  # noqa: B023
        print(f"  {page.id:22s} {len(after) // 1024:5d} {fingerprint:19.1f} {text:14.1f} {full:15.1f}")


# --------------------------------------------------------------------------- start-up


def print_startup(runner: Runner, sources: Sequence[Path]) -> None:
    """`--help` of each tool (the floor of any cycle), and the slowest imports of ours."""
    commands = [
        (f"policy-watchdog --help{_label(s)}", s, [PYTHON, "-m", "watchdog", "--help"]) for s in sources
    ]
    commands.append(("urlwatch --help", ROOT, [PYTHON, URLWATCH, "--help"]))
    with tempfile.TemporaryDirectory(prefix="bench-check-") as tmp:
        folder = Path(tmp)
        for name, source, command in commands:
            tool = Tool(name, _ignore, _fixed(command), lambda _s: Counter(), source)
            runner.measure(tool, folder)  # warm-up: bytecode
            samples = [runner.measure(tool, folder) for _ in range(3)]
            cpu, rss = _median(samples)
            print(f"  {name:34s} CPU {cpu:.3f} s, peak RSS {rss:.1f} MB")
        for source in sources:
            _print_importtime(runner, folder, source)


def _fixed(command: list[str]) -> Callable[[Path], list[str]]:
    return lambda _folder: command


def _ignore(folder: Path, server: PageServer, pages: Sequence[Page]) -> None:
    del folder, server, pages


def _label(source: Path) -> str:
    return "" if source == ROOT else f" [{source.name}]"


HEAVY = ("apprise", "tenacity", "diff_match_patch", "playwright", "httpx", "bs4", "soupsieve", "lxml",
         "markdown_it", "sqlite3")  # fmt: skip


def _print_importtime(runner: Runner, folder: Path, source: Path) -> None:
    proc = subprocess.run(
        [PYTHON, "-X", "importtime", "-m", "watchdog", "--help"],
        cwd=folder,
        env=runner.child_env(folder, source),
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "cumulative" not in line:
            _self, cumulative, module = (part for part in line[12:].split("|"))
            rows.append((int(cumulative), module.rstrip()))
    top = [(us, m.strip()) for us, m in rows if not m.startswith("  ")]  # one space follows the "|"
    total = sum(us for us, _ in top) / 1000
    heavy = sorted({m.strip().split(".")[0] for _, m in rows} & set(HEAVY))
    slowest = ", ".join(f"{m} {us / 1000:.1f} ms" for us, m in sorted(top, reverse=True)[:4])
    print(f"  python -X importtime -m watchdog --help{_label(source)}: {total:.1f} ms; slowest: {slowest}")
    print(f"  heavy modules imported by --help: {', '.join(heavy) or 'none'}")


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="rounds per scenario (medians reported)")
    parser.add_argument("--pages", type=int, default=len(RENDERED) + 2, help="how many pages to watch")
    parser.add_argument("--quick", action="store_true", help="1 round over 6 pages (a smoke run)")
    parser.add_argument("--runs", type=int, default=9, help="runs per per-page extraction figure")
    parser.add_argument("--tools", help="comma-separated tool names (default: all)")
    parser.add_argument(
        "--scenarios",
        help=f"comma-separated scenarios (default: all): {', '.join(s.key for s in SCENARIOS)}",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        help="where each round's folders are made (default: the system's temporary folder)",
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count each tool's instructions for one second cycle per scenario (valgrind's callgrind)",
    )
    parser.add_argument(
        "--compare",
        type=Path,
        metavar="DIR",
        help="also measure the `watchdog` package in DIR (e.g. a copy made before a change)",
    )
    args = parser.parse_args(argv)
    if args.dir:
        args.dir.mkdir(parents=True, exist_ok=True)
        tempfile.tempdir = str(args.dir.resolve())  # every folder of the run: rounds, bytecode, probes
    repeat, count = (1, 6) if args.quick else (args.repeat, args.pages)
    sources = [ROOT, *([args.compare.resolve()] if args.compare else [])]
    tools = [t for s in sources for t in watchdog_tools(s, _label(s))] + list(URLWATCH_TOOLS)
    tools = [t for t in tools if not args.tools or t.name in args.tools.split(",")]
    scenarios = [s for s in SCENARIOS if not args.scenarios or s.key in args.scenarios.split(",")]
    pages = build_pages(count)
    print_versions()
    print_pages(pages)
    print_load()
    print_file_creation()
    print_extraction(pages, 3 if args.quick else args.runs)
    with tempfile.TemporaryDirectory(prefix="bench-check-pycache-") as pycache:
        runner = Runner(Path(pycache))
        print("start-up (median of 3):")
        print_startup(runner, sources)
        print(f"check cycles: {repeat} round(s) per scenario, medians; each cycle a fresh process")
        with start_page_server() as server:
            results = run(runner, server, tools, pages, scenarios, repeat)
            counts = (
                count_instructions(runner, server, tools, pages, scenarios) if args.instructions else None
            )
    print()
    print_table(results, tools, scenarios)
    print_verdict(results, tools, scenarios, len(pages))
    if counts is not None:
        print_instructions(counts, tools, scenarios)
    print_load()
    print(
        "note: urlwatch does less per page: no validation (block pages, partial captures), no archive of\n"
        "raw snapshots and versions with a hash chain, no topic classification, no feeds or static site;\n"
        "the yardstick applies all the same."
    )


if __name__ == "__main__":
    main()

"""deploy/: the systemd units (checked by systemd's own `systemd-analyze`) and install.sh.

`systemd-analyze verify` loads a unit as systemd would and also checks that every Exec*= program exists
and is executable. /opt/policy-watchdog/venv/bin/policy-watchdog only exists on an installed machine, so
the verify tests copy the units into a temporary directory and point that one program path at a real
executable created there: the only difference from the shipped files, asserted below. Everything else
(ExecReload=/bin/kill, network-online.target, the timer's service, the drop-ins) is resolved for real.
`--man=no`: a Documentation=man: reference would otherwise depend on the man pages installed here.

install.sh runs for real into a --prefix under tmp_path (a real venv, the project's real wheel), and
with --dry-run into the real root, which it must leave untouched.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
INSTALL_SH = DEPLOY / "install.sh"
SERVICES = ("policy-watchdog.service", "policy-watchdog-check.service")
UNITS = (*SERVICES, "policy-watchdog-check.timer")
PROGRAM = "/opt/policy-watchdog/venv/bin/policy-watchdog"
CONFIG = "/etc/policy-watchdog/watchdog.toml"
MAX_EXPOSURE = 2.0
# systemd-analyze without colours, pager or localised text, whatever the terminal.
ANALYZE_ENV = {**os.environ, "SYSTEMD_COLORS": "0", "SYSTEMD_PAGER": "", "LC_ALL": "C.UTF-8"}


def _systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.skip("systemd-analyze is not installed (Debian: apt-get install systemd)")
    version = subprocess.run([path, "--version"], capture_output=True, text=True, check=True).stdout
    match = re.match(r"systemd (\d+)", version)
    if match is None or int(match.group(1)) < 250:
        pytest.skip(f"systemd-analyze security --offline needs systemd >= 250, have: {version[:40]!r}")
    return path


def _analyze(*args: str | Path) -> subprocess.CompletedProcess[str]:
    cmd = [_systemd_analyze(), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=ANALYZE_ENV, timeout=60)


# ---------------------------------------------------------------------------------------------------
# Units as data


@dataclass(frozen=True)
class Entry:
    section: str
    key: str
    value: str


def unit_entries(text: str) -> list[Entry]:
    """Assignments in file order (a key may repeat, as SystemCallFilter= does)."""
    entries, section = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        entries.append(Entry(section, key.strip(), value.strip()))
    return entries


def _unit(name: str) -> list[Entry]:
    return unit_entries((DEPLOY / name).read_text(encoding="utf-8"))


def _values(name: str, key: str) -> list[str]:
    return [e.value for e in _unit(name) if e.section == "Service" and e.key == key]


# Keys that make the daemon a daemon and the check a oneshot; every other [Service] line is hardening
# or paths and must be the same in both units.
ROLE_KEYS = {
    "Type",
    "NotifyAccess",
    "ExecStart",
    "ExecReload",
    "Restart",
    "RestartSec",
    "RestartPreventExitStatus",
    "WatchdogSec",
    "TimeoutStartSec",
    "TimeoutStopSec",
}


def test_both_services_share_one_hardening_block() -> None:
    daemon, check = (
        [e for e in _unit(name) if e.section == "Service" and e.key not in ROLE_KEYS] for name in SERVICES
    )
    assert daemon == check


REQUIRED_DAEMON_SETTINGS = [
    ("Type", "notify", "readiness-and-status-over-the-notify-socket"),
    ("NotifyAccess", "main", "children-cannot-speak-for-the-service"),
    ("ExecStart", f"{PROGRAM} --config {CONFIG} run", "runs-the-daemon-from-the-venv"),
    ("ExecReload", "/bin/kill -HUP $MAINPID", "reload-is-sighup"),
    ("WatchdogSec", "120", "a-hung-loop-gets-restarted"),
    ("Restart", "on-failure", "crashes-restart"),
    ("KillMode", "mixed", "a-browser-child-is-killed-too"),
    ("StateDirectory", "policy-watchdog", "data-in-var-lib"),
    ("ConfigurationDirectory", "policy-watchdog", "config-in-etc"),
    ("EnvironmentFile", "-/etc/policy-watchdog/env", "secrets-from-an-optional-root-only-file"),
    ("DynamicUser", "yes", "no-root-no-static-uid"),
    ("ProtectSystem", "strict", "read-only-os"),
    ("CapabilityBoundingSet", "", "no-capabilities"),
    ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6", "ip-and-local-sockets-only"),
    ("MemoryDenyWriteExecute", "yes", "no-writable-executable-memory"),
    ("SystemCallFilter", "@system-service", "syscall-allow-list"),
    ("SystemCallFilter", "~@privileged @resources", "privileged-syscalls-denied"),
]


@pytest.mark.parametrize(
    ("key", "value"),
    [pytest.param(k, v, id=i) for k, v, i in REQUIRED_DAEMON_SETTINGS],
)
def test_daemon_unit_has(key: str, value: str) -> None:
    assert value in _values("policy-watchdog.service", key)


def test_check_unit_runs_one_check_as_a_oneshot() -> None:
    assert _values("policy-watchdog-check.service", "Type") == ["oneshot"]
    assert _values("policy-watchdog-check.service", "ExecStart") == [f"{PROGRAM} --config {CONFIG} check"]


def test_timer_is_randomised_and_catches_up_after_downtime() -> None:
    timer = {e.key: e.value for e in _unit("policy-watchdog-check.timer") if e.section == "Timer"}
    assert timer["OnCalendar"]
    assert timer["RandomizedDelaySec"]
    assert timer["Persistent"] == "true"


# ---------------------------------------------------------------------------------------------------
# systemd-analyze verify: no output at all


def _verifiable_copy(tmp_path: Path) -> Path:
    """deploy/'s units and drop-in folders in tmp, with PROGRAM pointing at a real executable."""
    program = tmp_path / "bin" / "policy-watchdog"
    program.parent.mkdir()
    program.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    program.chmod(0o755)
    units = tmp_path / "units"
    units.mkdir()
    for source in sorted(DEPLOY.glob("*.service")) + sorted(DEPLOY.glob("*.timer")):
        text = source.read_text(encoding="utf-8")
        if source.suffix == ".service":
            assert text.count(PROGRAM) == 1, f"{source.name}: expected one ExecStart={PROGRAM}"
        (units / source.name).write_text(text.replace(PROGRAM, str(program)), encoding="utf-8")
    for dropins in DEPLOY.glob("*.d"):
        shutil.copytree(dropins, units / dropins.name)
    return units


def _verify(units: Path) -> subprocess.CompletedProcess[str]:
    return _analyze("verify", "--man=no", *(units / name for name in UNITS))


def test_systemd_analyze_verify_prints_nothing(tmp_path: Path) -> None:
    result = _verify(_verifiable_copy(tmp_path))
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def _typo_in_a_key(text: str) -> str:
    return text.replace("ProtectSystem=strict", "ProtectSystm=strict")


def _bad_value(text: str) -> str:
    return text.replace("RestartSec=30s", "RestartSec=soon")


def _missing_program(text: str) -> str:
    return text.replace("/bin/kill -HUP", "/nonexistent/kill -HUP")


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(_typo_in_a_key, "ProtectSystm", id="unknown-key-is-reported"),
        pytest.param(_bad_value, "soon", id="unparsable-value-is-reported"),
        pytest.param(_missing_program, "/nonexistent/kill", id="missing-program-is-reported"),
    ],
)
def test_verify_would_catch_a_broken_unit(
    tmp_path: Path, mutate: Callable[[str], str], expected: str
) -> None:
    """The no-output check above is not vacuous: each of these defects makes verify speak."""
    units = _verifiable_copy(tmp_path)
    daemon = units / "policy-watchdog.service"
    daemon.write_text(mutate(daemon.read_text(encoding="utf-8")), encoding="utf-8")
    result = _verify(units)
    assert expected in result.stdout + result.stderr


def test_verify_needs_the_program_to_exist(tmp_path: Path) -> None:
    """Why the copy above: the shipped ExecStart names the installed venv, absent on a build machine."""
    units = _verifiable_copy(tmp_path)
    shutil.copy(DEPLOY / "policy-watchdog.service", units / "policy-watchdog.service")
    result = _verify(units)
    if Path(PROGRAM).exists():
        pytest.skip(f"{PROGRAM} is installed on this machine")
    assert PROGRAM in result.stdout + result.stderr


# ---------------------------------------------------------------------------------------------------
# systemd-analyze security --offline=true: exposure 2.0 or less

EXPOSURE = re.compile(r"Overall exposure level for (?P<unit>\S+): (?P<level>\d+(?:\.\d+)?)")


def exposure(unit_file: Path) -> float:
    result = _analyze("security", "--offline=true", unit_file)
    match = EXPOSURE.search(result.stdout)
    assert match is not None, result.stdout + result.stderr
    assert match["unit"] == unit_file.name
    return float(match["level"])


@pytest.mark.parametrize("name", SERVICES)
def test_service_exposure_is_at_most_2(tmp_path: Path, name: str) -> None:
    level = exposure(_verifiable_copy(tmp_path) / name)
    assert level <= MAX_EXPOSURE, f"{name}: exposure {level} > {MAX_EXPOSURE}"


def test_exposure_parser_sees_an_unhardened_unit_as_exposed(tmp_path: Path) -> None:
    plain = tmp_path / "plain.service"
    plain.write_text("[Service]\nExecStart=/bin/true\n", encoding="utf-8")
    assert exposure(plain) > 9.0


# ---------------------------------------------------------------------------------------------------
# install.sh


def _run_install(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(INSTALL_SH), *map(str, args)], capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's real wheel, built once (pip fetches the build backend like any install does)."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(ROOT)],
        check=True,
        timeout=300,
    )
    (built,) = out.glob("policy_watchdog-*.whl")
    return built


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else []


OFFLINE = ("--pip-arg=--no-deps", "--pip-arg=--no-index")


def test_install_into_a_prefix_then_again(tmp_path: Path, wheel: Path) -> None:
    root = tmp_path / "root"
    first = _run_install("--prefix", root, "--python", sys.executable, *OFFLINE, wheel)
    assert first.returncode == 0, first.stdout + first.stderr

    # The program and config every unit names exist where the units look for them.
    for name in SERVICES:
        program, _, rest = _values(name, "ExecStart")[0].partition(" ")
        assert os.access(root / program.lstrip("/"), os.X_OK), program
        assert (root / rest.split()[1].lstrip("/")).is_file()
    venv_python = root / "opt/policy-watchdog/venv/bin/python"
    installed = subprocess.run(  # -I: not the checkout (the current directory) nor PYTHONPATH
        [venv_python, "-I", "-c", "import watchdog.sdnotify as m; print(m.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(installed).read_bytes() == (ROOT / "watchdog/sdnotify.py").read_bytes()
    # Installed with its bytecode: the services cannot write under /opt (ProtectSystem=strict), and a module
    # without its .pyc is compiled again at every start (~0.5 s of CPU for the package's ~100 modules).
    package = Path(installed).parent
    assert (
        package
        == root
        / "opt/policy-watchdog/venv/lib"
        / f"python{sys.version_info[0]}.{sys.version_info[1]}"
        / "site-packages/watchdog"
    )
    missing = [
        str(source.relative_to(package))
        for source in package.rglob("*.py")
        if not Path(importlib.util.cache_from_source(str(source))).is_file()
    ]
    assert missing == []

    etc = root / "etc/policy-watchdog"
    bundled = ROOT / "config/watchdog.toml"
    assert (etc / "watchdog.toml").read_bytes() == bundled.read_bytes()
    assert _mode(etc / "watchdog.toml") == 0o644  # the dynamic user reads it
    assert (etc / "env").read_bytes() == (DEPLOY / "env.example").read_bytes()
    assert _mode(etc / "env") == 0o600  # secrets: root only
    for unit in UNITS:
        assert (root / "etc/systemd/system" / unit).read_bytes() == (DEPLOY / unit).read_bytes()
        assert _mode(root / "etc/systemd/system" / unit) == 0o644
    assert _mode(root / "usr/local/bin/policy-watchdog") == 0o755
    assert "skipped: systemctl daemon-reload" in first.stdout

    # Second run: the admin's config and secrets are kept, a stale unit is replaced, the rest is reported.
    (etc / "watchdog.toml").write_text("# edited by the admin\n", encoding="utf-8")
    (etc / "env").write_text("SMTP_PASSWORD=hunter2\n", encoding="utf-8")
    (root / "etc/systemd/system/policy-watchdog.service").write_text("# old\n", encoding="utf-8")
    second = _run_install("--prefix", root, "--python", sys.executable, *OFFLINE, wheel)
    assert second.returncode == 0, second.stdout + second.stderr
    assert (etc / "watchdog.toml").read_text(encoding="utf-8") == "# edited by the admin\n"
    assert (etc / "env").read_text(encoding="utf-8") == "SMTP_PASSWORD=hunter2\n"
    unit_dir = root / "etc/systemd/system"
    assert (unit_dir / "policy-watchdog.service").read_bytes() == (
        DEPLOY / "policy-watchdog.service"
    ).read_bytes()
    assert f"unchanged {unit_dir}/policy-watchdog-check.timer" in second.stdout
    assert f"unchanged {root}/opt/policy-watchdog/venv (exists; reused)" in second.stdout
    assert f"kept {etc}/watchdog.toml" in second.stdout


def test_dry_run_into_a_prefix_creates_nothing(tmp_path: Path, wheel: Path) -> None:
    root = tmp_path / "root"
    result = _run_install("--dry-run", "--prefix", root, "--python", sys.executable, wheel)
    assert result.returncode == 0, result.stderr
    assert not root.exists()
    assert f"+ {sys.executable} -m venv {root}/opt/policy-watchdog/venv" in result.stdout
    for unit in UNITS:
        assert f"{root}/etc/systemd/system/{unit}" in result.stdout


REAL_PATHS = [
    Path("/opt/policy-watchdog"),
    Path("/etc/policy-watchdog"),
    Path("/usr/local/bin/policy-watchdog"),
    *(Path("/etc/systemd/system") / unit for unit in UNITS),
]


def test_dry_run_into_the_real_root_touches_nothing(tmp_path: Path, wheel: Path) -> None:
    before = {p: (p.exists(), _tree(p)) for p in REAL_PATHS}
    config = tmp_path / "mine.toml"
    config.write_text("# mine\n", encoding="utf-8")
    result = _run_install("--dry-run", "--python", sys.executable, "--config", config, wheel)
    assert result.returncode == 0, result.stderr
    assert {p: (p.exists(), _tree(p)) for p in REAL_PATHS} == before
    assert "+ install -D -m 0644 " in result.stdout
    assert " /etc/systemd/system/policy-watchdog.service\n" in result.stdout
    if not Path(CONFIG).exists():
        assert f"+ install -m 0644 {config} {CONFIG}\n" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("--frobnicate",), "unknown option: --frobnicate", id="unknown-option"),
        pytest.param(("--prefix",), "--prefix needs a value", id="option-without-value"),
        pytest.param(("/nonexistent/x.whl",), "SOURCE not found", id="missing-source"),
        pytest.param(("--config", "/nonexistent.toml"), "--config file not found", id="missing-config"),
        pytest.param(("a.whl", "b.whl"), "only one SOURCE", id="two-sources"),
        pytest.param(("--python", "/nonexistent/python3"), "not found", id="missing-python"),
    ],
)
def test_usage_errors_exit_2_with_a_message(args: tuple[str, ...], message: str, tmp_path: Path) -> None:
    result = _run_install("--dry-run", "--prefix", tmp_path / "root", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / "root").exists()


def test_help_lists_every_option() -> None:
    result = _run_install("--help")
    assert result.returncode == 0
    for option in ("--prefix", "--dry-run", "--python", "--config", "--browser", "--postgres", "--pip-arg"):
        assert option in result.stdout


@pytest.mark.parametrize("script", ["install.sh", "policy-watchdog-cli"])
def test_shell_scripts_pass_shellcheck(script: str) -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (Debian: apt-get install shellcheck)")
    result = subprocess.run([shellcheck, str(DEPLOY / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def _deploy_copy(tmp_path: Path, *, with_browser_dropin: bool) -> Path:
    copy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy)
    dropin = copy / "policy-watchdog.service.d" / "browser.conf"
    if with_browser_dropin:
        dropin.parent.mkdir(exist_ok=True)
        dropin.write_text("[Service]\nMemoryDenyWriteExecute=no\n", encoding="utf-8")
    elif dropin.exists():
        dropin.unlink()
    return copy


def _dry_run_browser(copy: Path, root: Path, wheel: Path) -> subprocess.CompletedProcess[str]:
    args = ["--dry-run", "--browser", "--prefix", str(root), str(wheel)]
    return subprocess.run(["bash", str(copy / "install.sh"), *args], capture_output=True, text=True)


def test_browser_option_installs_the_extra_and_the_dropin_for_both_services(
    tmp_path: Path, wheel: Path
) -> None:
    root = tmp_path / "root"
    result = _dry_run_browser(_deploy_copy(tmp_path, with_browser_dropin=True), root, wheel)
    assert result.returncode == 0, result.stderr
    assert f" {wheel}\\[browser\\]\n" in result.stdout  # printf %q escapes the brackets
    for service in SERVICES:
        assert f"{root}/etc/systemd/system/{service}.d/browser.conf\n" in result.stdout


def test_postgres_option_installs_the_extra_beside_the_browser(tmp_path: Path, wheel: Path) -> None:
    copy = _deploy_copy(tmp_path, with_browser_dropin=True)
    args = ["--dry-run", "--browser", "--postgres", "--prefix", str(tmp_path / "root"), str(wheel)]
    result = subprocess.run(["bash", str(copy / "install.sh"), *args], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f" {wheel}\\[browser\\,postgres\\]\n" in result.stdout  # printf %q escapes [ , ]


def test_browser_option_without_the_dropin_is_an_error(tmp_path: Path, wheel: Path) -> None:
    copy = _deploy_copy(tmp_path, with_browser_dropin=False)
    result = _dry_run_browser(copy, tmp_path / "root", wheel)
    assert result.returncode == 2
    assert "browser.conf is missing" in result.stderr
    assert "pip install" not in result.stdout  # refused before doing anything


# ---------------------------------------------------------------------------------------------------
# Under a real systemd (opt-in): boots this machine's own OS in a container (systemd-nspawn on a
# throw-away overlay of /, inside a private mount namespace, with a private network), installs with
# install.sh, and runs the shipped unit with ExecStart= replaced by a probe that uses watchdog.sdnotify
# and watchdog.logs the way the daemon does. Needs root, systemd-nspawn (Debian: systemd-container),
# overlayfs and a system Python >= 3.11; about 30 s.

E2E_VARIABLE = "POLICY_WATCHDOG_SYSTEMD_E2E"

PROBE = r"""
import logging, os, pathlib, signal, sys, time
from watchdog.logs import setup_logging
from watchdog.sdnotify import SystemdNotifier

setup_logging(0)
log = logging.getLogger("watchdog.probe")
notifier = SystemdNotifier.from_env()
state = pathlib.Path(os.environ["STATE_DIRECTORY"])
(state / "probe.txt").write_text("ok")
log.info("secret=%s interval=%s", os.environ.get("SMTP_PASSWORD"), notifier.watchdog_interval)
for path in ("/etc/probe", "/opt/policy-watchdog/probe", "/root/probe"):
    try:
        pathlib.Path(path).write_text("x")
        log.error("could write %s", path)
    except OSError:
        log.warning("cannot write %s", path)
try:
    os.sched_setaffinity(0, {0})
    log.error("sched_setaffinity allowed")
except OSError:
    log.warning("sched_setaffinity refused")
try:
    raise RuntimeError("first\nsecond")
except RuntimeError:
    log.exception("traceback follows")
log.debug("hidden at verbosity 0")
flags = {"hung": False, "stop": False}

def on_hup(*_):
    notifier.reloading()
    time.sleep(0.3)
    notifier.ready()
    notifier.status("reloaded")

signal.signal(signal.SIGHUP, on_hup)
signal.signal(signal.SIGUSR1, lambda *_: flags.update(hung=True))
signal.signal(signal.SIGTERM, lambda *_: flags.update(stop=True))
notifier.ready()
notifier.status("2 targets, 0 failing, next check 14:05")
while not flags["stop"]:
    if not flags["hung"]:
        notifier.watchdog_ping()
    time.sleep(0.2)
notifier.stopping()
log.info("stopped cleanly")
"""

ORCHESTRATE = r"""#!/bin/bash
# Runs inside the container, as root. Results: /nst/out/*.
set -u
out=/nst/out
show() {
    for p in ActiveState Result StatusText NRestarts ExecMainStatus; do
        systemctl show policy-watchdog -p "$p" --value
    done | paste -sd'|'
}
bash /nst/deploy/install.sh --python /usr/bin/python3 --pip-arg=--no-deps --pip-arg=--no-index \
    /nst/wheel/*.whl > $out/install.txt 2>&1
echo "install=$?" > $out/results
install -m 0644 /nst/probe.py /opt/policy-watchdog/probe.py
echo 'SMTP_PASSWORD=s3cret' >> /etc/policy-watchdog/env
mkdir -p /etc/systemd/system/policy-watchdog.service.d
cat > /etc/systemd/system/policy-watchdog.service.d/probe.conf <<'EOC'
[Service]
ExecStart=
ExecStart=/opt/policy-watchdog/venv/bin/python /opt/policy-watchdog/probe.py
WatchdogSec=3
RestartSec=1
EOC
systemctl daemon-reload
systemctl start policy-watchdog.service; echo "start=$?|$(show)" >> $out/results
sleep 5; echo "alive=$(show)" >> $out/results
# systemd < 253 ends the reload job when ExecReload=kill exits, before the service's READY=1: wait.
systemctl reload policy-watchdog.service; rc=$?
for _ in $(seq 20); do
    sleep 0.5
    [ "$(systemctl show -p StatusText --value policy-watchdog)" = reloaded ] && break
done
echo "reload=$rc|$(show)" >> $out/results
kill -USR1 "$(systemctl show -p MainPID --value policy-watchdog)"
for _ in $(seq 30); do
    sleep 0.5
    [ "$(systemctl show -p NRestarts --value policy-watchdog)" = 1 ] && break
done
sleep 1; echo "hung=$(show)" >> $out/results
systemctl stop policy-watchdog.service; echo "stop=$?|$(show)" >> $out/results
private=/var/lib/private/policy-watchdog
echo "state=$(readlink /var/lib/policy-watchdog)|$(stat -c %a $private)|$(stat -c %a $private/probe.txt)" \
    >> $out/results
for unit in policy-watchdog.service policy-watchdog-check.service; do
    systemd-analyze security "$unit" | tail -1 >> $out/security
done
journalctl -u policy-watchdog -o json --no-pager > $out/journal.json
"""

E2E_UNIT = """[Unit]
After=multi-user.target
SuccessAction=poweroff-force
FailureAction=poweroff-force
[Service]
Type=oneshot
ExecStart=/bin/bash /nst/orchestrate.sh
TimeoutStartSec=5min
"""

CONTAINER = r"""set -euo pipefail
ovl=$1 nst=$2
mount -t tmpfs -o size=4G tmpfs "$ovl"
mkdir "$ovl/upper" "$ovl/work" "$ovl/merged"
mount -t overlay overlay -o "lowerdir=/,upperdir=$ovl/upper,workdir=$ovl/work" "$ovl/merged"
exec systemd-nspawn --quiet -D "$ovl/merged" --private-network --register=no --keep-unit \
    --link-journal=no --bind="$nst:/nst" --bind-ro="$nst/e2e.service:/etc/systemd/system/e2e.service" \
    -b systemd.wants=e2e.service
"""


def _e2e_preconditions() -> None:
    if os.environ.get(E2E_VARIABLE) != "1":
        pytest.skip(f"boots a systemd container: set {E2E_VARIABLE}=1 to run it")
    if os.geteuid() != 0:
        pytest.skip("needs root")
    for tool in ("systemd-nspawn", "unshare"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (Debian: apt-get install systemd-container)")
    probe = subprocess.run(
        ["/usr/bin/python3", "-c", "import sys; print(sys.version_info >= (3, 11))"],
        capture_output=True,
        text=True,
    )
    if probe.stdout.strip() != "True":
        pytest.skip("/usr/bin/python3 >= 3.11 is needed inside the container")


def _cgroup_dirs() -> list[Path]:
    """The cgroup directories of this process that systemd-nspawn --keep-unit creates children in."""
    dirs = []
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers == "name=systemd":
            dirs.append(Path("/sys/fs/cgroup/systemd" + path))
        elif controllers == "":
            dirs += [Path("/sys/fs/cgroup/unified" + path), Path("/sys/fs/cgroup" + path)]
    return [d for d in dirs if (d / "cgroup.procs").exists()]


def _remove_new_cgroups(before: dict[Path, set[str]]) -> None:
    for parent, children in before.items():
        for child in {p.name for p in parent.iterdir() if p.is_dir()} - children:
            for sub in sorted((parent / child).rglob("*"), key=lambda p: -len(p.parts)):
                if sub.is_dir():
                    sub.rmdir()
            (parent / child).rmdir()


def _boot_container(work: Path, timeout: float = 240) -> str:
    """Boots the container; returns its console output. On timeout nspawn gets SIGTERM, which it turns
    into a clean poweroff of the container (SIGKILL would orphan the container's init)."""
    (work / "ovl").mkdir()
    cgroups = {d: {p.name for p in d.iterdir() if p.is_dir()} for d in _cgroup_dirs()}
    cmd = ["unshare", "--mount", "--propagation", "private", "bash", "-c", CONTAINER, "container"]
    proc = subprocess.Popen(
        [*cmd, str(work / "ovl"), str(work / "nst")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        console, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()
        console, _ = proc.communicate(timeout=60)
    finally:
        _remove_new_cgroups(cgroups)
    return console


@pytest.fixture(scope="module")
def systemd_e2e() -> None:
    """Skips before the wheel is built when the container cannot (or may not) be booted."""
    _e2e_preconditions()


@pytest.mark.slow
@pytest.mark.usefixtures("systemd_e2e")
def test_units_under_a_real_systemd(wheel: Path) -> None:
    # Not tmp_path: pytest may rotate old temporary directories away while the container still uses it.
    with tempfile.TemporaryDirectory(prefix="policy-watchdog-e2e-") as tmp:
        nst = Path(tmp) / "nst"
        (nst / "out").mkdir(parents=True)
        shutil.copytree(DEPLOY, nst / "deploy")
        (nst / "wheel").mkdir()
        shutil.copy(wheel, nst / "wheel")
        (nst / "probe.py").write_text(PROBE, encoding="utf-8")
        (nst / "orchestrate.sh").write_text(ORCHESTRATE, encoding="utf-8")
        (nst / "e2e.service").write_text(E2E_UNIT, encoding="utf-8")
        console = _boot_container(Path(tmp))
        out = {f.name: f.read_text(encoding="utf-8") for f in (nst / "out").iterdir()}
    assert "results" in out, console[-3000:]
    _check_e2e_results(out)


def _check_e2e_results(out: dict[str, str]) -> None:
    results = dict(line.split("=", 1) for line in out["results"].splitlines())
    assert results["install"] == "0", out["install.txt"]
    status = "2 targets, 0 failing, next check 14:05"
    # show: ActiveState|Result|StatusText|NRestarts|ExecMainStatus
    assert results["start"] == f"0|active|success|{status}|0|0"
    assert results["alive"] == f"active|success|{status}|0|0"  # WATCHDOG=1 keeps it alive
    assert results["reload"] == "0|active|success|reloaded|0|0"  # RELOADING=1 ... READY=1
    assert results["hung"] == f"active|success|{status}|1|0"  # no pings: killed, restarted
    assert results["stop"] == "0|inactive|success||0|0"  # STOPPING=1, exit 0
    assert results["state"] == "private/policy-watchdog|700|600"
    levels = [float(x) for x in re.findall(r"exposure level for \S+: (\d+\.\d+)", out["security"])]
    assert len(levels) == 2 and max(levels) <= MAX_EXPOSURE

    journal = [json.loads(line) for line in out["journal.json"].splitlines()]
    lines = [(int(e["PRIORITY"]), e["MESSAGE"]) for e in journal if e.get("_TRANSPORT") == "stdout"]
    assert (6, "watchdog.probe: secret=s3cret interval=1.5") in lines  # EnvironmentFile=, WatchdogSec=
    for path in ("/etc/probe", "/opt/policy-watchdog/probe", "/root/probe"):
        assert (4, f"watchdog.probe: cannot write {path}") in lines
    assert (4, "watchdog.probe: sched_setaffinity refused") in lines  # EPERM, not a kill
    assert [
        p for p, m in lines if m in ("Traceback (most recent call last):", "RuntimeError: first", "second")
    ] == [3, 3, 3] * 2
    assert (6, "watchdog.probe: stopped cleanly") in lines
    assert not [m for p, m in lines if p == 7 or m.startswith("<")]
    manager = [e["MESSAGE"] for e in journal if e.get("_TRANSPORT") != "stdout"]
    assert any("Watchdog timeout" in m for m in manager)

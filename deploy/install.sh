#!/usr/bin/env bash
# Installs policy-watchdog as a hardened systemd service; docs/service.md explains every step.
#
#   sudo deploy/install.sh                      # from this checkout
#   sudo deploy/install.sh dist/policy_watchdog-0.1.0-py3-none-any.whl
#
# Idempotent: run it again to upgrade. It never overwrites /etc/policy-watchdog/watchdog.toml or
# /etc/policy-watchdog/env once they exist, and it does not enable, start or restart anything.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: install.sh [--prefix DIR] [--dry-run] [--python PYTHON] [--config FILE] [--browser]
                  [--postgres] [--pip-arg ARG]... [SOURCE]

  SOURCE         the project directory or a wheel to install (default: the checkout holding this script)
  --prefix DIR   install under DIR instead of / (staging, tests); systemctl is then left alone
  --dry-run      print what would be done; change nothing
  --python PY    the Python (>= 3.11) that creates the virtual environment (default: python3)
  --config FILE  the config to install when /etc/policy-watchdog/watchdog.toml is absent
                 (default: the bundled one, with the real Meta and regulator pages)
  --browser      also install the [browser] extra and the browser drop-in for the unit
  --postgres     also install the [postgres] extra (an archive in PostgreSQL, shared by several machines)
  --pip-arg ARG  pass ARG to pip install (repeatable), e.g. --pip-arg=--no-index
EOF
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
prefix=""
dry_run=0
python=python3
config_src=""
browser=0
postgres=0
pip_args=()
source_arg=""

die() {
    printf 'install.sh: %s\n' "$*" >&2
    exit 2
}

need_value() {
    [ "$2" -ge 2 ] || die "$1 needs a value"
}

while [ $# -gt 0 ]; do
    case $1 in
        --prefix) need_value "$1" $#; prefix=$2; shift 2 ;;
        --prefix=*) prefix=${1#*=}; shift ;;
        --dry-run) dry_run=1; shift ;;
        --python) need_value "$1" $#; python=$2; shift 2 ;;
        --python=*) python=${1#*=}; shift ;;
        --config) need_value "$1" $#; config_src=$2; shift 2 ;;
        --config=*) config_src=${1#*=}; shift ;;
        --browser) browser=1; shift ;;
        --postgres) postgres=1; shift ;;
        --pip-arg) need_value "$1" $#; pip_args+=("$2"); shift 2 ;;
        --pip-arg=*) pip_args+=("${1#*=}"); shift ;;
        -h | --help) usage; exit 0 ;;
        -*) usage >&2; die "unknown option: $1" ;;
        *) [ -z "$source_arg" ] || die "only one SOURCE, got '$source_arg' and '$1'"; source_arg=$1; shift ;;
    esac
done

source_path=${source_arg:-$here/..}
[ -e "$source_path" ] || die "SOURCE not found: $source_path"
source_path=$(cd "$(dirname "$source_path")" && pwd)/$(basename "$source_path")
[ -z "$config_src" ] || [ -f "$config_src" ] || die "--config file not found: $config_src"

# "/" and "" both mean the real root; every path below is $root + the path on the target system.
root=${prefix%/}
venv=$root/opt/policy-watchdog/venv
etc=$root/etc/policy-watchdog
unit_dir=$root/etc/systemd/system
bin_dir=$root/usr/local/bin
browser_dropin=$here/policy-watchdog.service.d/browser.conf

say() { printf '%s\n' "$*"; }

# Prints the command (shell-quoted), then runs it unless --dry-run.
run() {
    printf '+'
    printf ' %q' "$@"
    printf '\n'
    [ "$dry_run" = 1 ] || "$@"
}

# install_file SRC DEST MODE [keep]: "keep" leaves an existing DEST alone (the admin's config, secrets).
install_file() {
    local src=$1 dest=$2 mode=$3 keep=${4:-}
    if [ -e "$dest" ] && [ "$keep" = keep ]; then
        say "kept $dest (exists; not overwritten)"
    elif [ -e "$dest" ] && cmp -s "$src" "$dest"; then
        say "unchanged $dest"
    else
        run install -D -m "$mode" "$src" "$dest"
    fi
}

check_preconditions() {
    if [ -z "$root" ] && [ "$dry_run" = 0 ] && [ "$(id -u)" != 0 ]; then
        die "installing into / needs root: run it with sudo (or use --dry-run / --prefix)"
    fi
    command -v "$python" >/dev/null || die "$python not found (Debian/Ubuntu: apt-get install python3 python3-venv)"
    "$python" -I -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
        die "$python is older than 3.11; policy-watchdog needs Python >= 3.11"
    check_python_location
    [ "$browser" = 0 ] || [ -f "$browser_dropin" ] ||
        die "--browser: $browser_dropin is missing from this copy of deploy/"
}

# The venv's interpreter is a symlink to $python's: under ProtectHome=yes the service cannot see a
# Python that lives in a home directory (pyenv, conda, ~/.local), and would fail with "not found".
check_python_location() {
    local real
    real=$("$python" -I -c 'import os, sys; print(os.path.realpath(sys.base_prefix))')
    case $real/ in
        /home/* | /root/* | /run/user/*)
            local msg="$python lives under $real, which the service cannot read (ProtectHome=yes); use the system's Python, e.g. --python /usr/bin/python3"
            if [ -z "$root" ] && [ "$dry_run" = 0 ]; then die "$msg"; fi
            say "warning: $msg"
            ;;
    esac
}

make_venv() {
    if [ -x "$venv/bin/python" ]; then
        say "unchanged $venv (exists; reused)"
    else
        run "$python" -m venv "$venv"
    fi
}

install_package() {
    local requirement=$source_path extras=()
    [ "$browser" = 0 ] || extras+=(browser)
    [ "$postgres" = 0 ] || extras+=(postgres)
    if [ "${#extras[@]}" -gt 0 ]; then
        requirement="${source_path}[$(IFS=,; echo "${extras[*]}")]"
    fi
    # The first pass brings the dependencies; the second replaces the project even when SOURCE has
    # the same version number as what is installed (pip would otherwise keep the old files).
    run "$venv/bin/python" -I -m pip install --quiet "${pip_args[@]}" "$requirement"
    run "$venv/bin/python" -I -m pip install --quiet --no-deps --force-reinstall "${pip_args[@]}" "$source_path"
}

bundled_config() {
    "$venv/bin/python" -I -c 'import importlib.resources as r; print(r.files("watchdog") / "_bundled_config" / "watchdog.toml")'
}

install_config() {
    run install -d -m 0755 "$etc"
    # 0644: the service's dynamic user must read it. Secrets stay out of it (${VAR}, see env).
    if [ -e "$etc/watchdog.toml" ]; then
        say "kept $etc/watchdog.toml (exists; not overwritten)"
    elif [ -n "$config_src" ]; then
        run install -m 0644 "$config_src" "$etc/watchdog.toml"
    elif [ "$dry_run" = 1 ] && [ ! -x "$venv/bin/python" ]; then
        say "would copy the bundled watchdog.toml of the installed package to $etc/watchdog.toml"
    else
        run install -m 0644 "$(bundled_config)" "$etc/watchdog.toml"
    fi
    # 0600 root: only systemd reads it (EnvironmentFile=, as root, before switching to the service user).
    install_file "$here/env.example" "$etc/env" 0600 keep
}

install_units() {
    local unit
    for unit in policy-watchdog.service policy-watchdog-check.service policy-watchdog-check.timer; do
        install_file "$here/$unit" "$unit_dir/$unit" 0644
    done
    if [ "$browser" = 1 ]; then
        # The same drop-in serves the daemon and the timer's check: both may start the browser.
        local dropin=$browser_dropin service
        for service in policy-watchdog.service policy-watchdog-check.service; do
            install_file "$dropin" "$unit_dir/$service.d/browser.conf" 0644
        done
    fi
    install_file "$here/policy-watchdog-cli" "$bin_dir/policy-watchdog" 0755
}

reload_systemd() {
    if [ -n "$root" ]; then
        say "skipped: systemctl daemon-reload (--prefix $prefix is not the running system)"
    elif [ ! -d /run/systemd/system ]; then
        say "skipped: systemctl daemon-reload (systemd is not running here)"
    else
        run systemctl daemon-reload
    fi
}

next_steps() {
    if [ "$dry_run" = 1 ]; then say $'\nDry run: nothing was changed. After a real install:'; else say $'\nInstalled. Next:'; fi
    cat <<EOF
  1. put the channels' secrets in /etc/policy-watchdog/env and the channels in
     /etc/policy-watchdog/watchdog.toml, then check the config:
       sudo policy-watchdog config check
  2. start the daemon now and at every boot:
       sudo systemctl enable --now policy-watchdog.service
     or, instead of the daemon, an hourly check:
       sudo systemctl enable --now policy-watchdog-check.timer
  3. watch it:  systemctl status policy-watchdog  ·  journalctl -u policy-watchdog -f
                sudo policy-watchdog status
After an upgrade of a running service: sudo systemctl restart policy-watchdog.service
EOF
}

check_preconditions
[ "$dry_run" = 0 ] || say "dry run: nothing is changed"
make_venv
install_package
install_config
install_units
reload_systemd
next_steps

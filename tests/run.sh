#!/usr/bin/env bash
# The test suite, from a fresh virtual environment installed from pyproject.toml:
# ruff (lint + format), mypy --strict, pytest with warnings as errors.
# Usage: bash tests/run.sh [extra pytest arguments]
# The long end-to-end tests (marked `slow`: the corpus replay, kill -9 at random moments, failover...) are
# left out so the suite stays under 15 minutes on 2 cores; `-m slow` runs only them, `-m "slow or not
# slow"` everything (a later -m wins). CI (.ci/run) runs both.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${POLICY_WATCHDOG_TEST_VENV:-.venv-test}"
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet ".[test,browser]"
echo "== ruff check"; "$venv/bin/ruff" check watchdog tests bench
echo "== ruff format --check"; "$venv/bin/ruff" format --check watchdog tests bench
echo "== mypy --strict watchdog"; "$venv/bin/mypy" --strict watchdog
echo "== pytest"
# `pytest` (not `python -m pytest`) imports the *installed* package, not the checkout: this proves the
# wheel ships everything it needs (bundled config, demo data)
"$venv/bin/pytest" -p no:cacheprovider -m "not slow" "$@"

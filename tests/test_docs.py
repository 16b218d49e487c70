"""Docs that cannot rot: every command, every config key and the two first-screen commands are in README."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from watchdog.cli import COMMANDS, build_parser
from watchdog.config import AlertSettings, DaemonSettings, ImportSettings, StorageSettings, ValidateSettings
from watchdog.models import FetchSettings, Target

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
CONFIG_BLOCK = README[README.index("## Configuration") : README.index("## Commands")]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_is_documented(command: str) -> None:
    assert re.search(rf"\| `{re.escape(command)}[ `]", README), f"README's command table lacks `{command}`"


SECTIONS = {
    "targets": Target,
    "fetch": FetchSettings,
    "alerts": AlertSettings,
    "validate": ValidateSettings,
    "daemon": DaemonSettings,
    "storage": StorageSettings,
    "import": ImportSettings,
}


@pytest.mark.parametrize(
    ("section", "key"),
    [
        (s, f.name)
        for s, cls in SECTIONS.items()
        for f in dataclasses.fields(cls)
        if f.name != "id" or s == "targets"
    ],
)
def test_every_config_key_is_documented(section: str, key: str) -> None:
    assert re.search(rf"^{re.escape(key)} = ", CONFIG_BLOCK, re.MULTILINE), (
        f"[{section}] {key} is not in README"
    )


def test_first_screen_has_the_install_and_test_commands() -> None:
    first_screen = README[: README.index("## ")]
    assert "pip install . && .venv/bin/policy-watchdog check" in first_screen
    assert "bash tests/run.sh" in first_screen
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert "bash tests/run.sh" in ci, ".ci/run runs the README's test command"


def test_help_lists_every_command() -> None:
    help_text = build_parser().format_help()
    assert all(name in help_text for name in COMMANDS)

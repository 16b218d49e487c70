"""Storage, migrations: named schema changes, one SQL file per migration and backend.

    migrations/sqlite/0001_initial.sql, 0002_..., 0003_...      (postgres/ follows the same names)

A migration is applied once, in name order, in its own transaction, and recorded in `schema_migrations`
(name, applied_at). Never edit a released migration: add a new file. Statements are separated by `;` at the
end of a line; `--` comments run to the end of their line (keep `;` out of them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Migration:
    name: str  # the file name without .sql, e.g. "0003_second_round"
    statements: tuple[str, ...]


def migrations(backend: str) -> tuple[Migration, ...]:
    """The backend's migrations, in the order they apply."""
    # the files beside this module, as installed (importlib.resources would load zipfile and more at every
    # start, for a package that is never zipped)
    folder = Path(__file__).resolve().parent / backend
    found = sorted(
        (entry.name.removesuffix(".sql"), entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    )
    return tuple(Migration(name, statements(script)) for name, script in found)


def statements(script: str) -> tuple[str, ...]:
    """The statements of an SQL script: comments dropped, split at `;` ending a line."""
    lines = [line.split("--", 1)[0].rstrip() for line in script.splitlines()]
    text = "\n".join(line for line in lines if line.strip())
    parts = (part.strip().rstrip(";").rstrip() for part in text.split(";\n"))
    return tuple(part for part in parts if part)

"""Own modules loaded on first use: what keeps a command's start-up to the stages it runs (not a stage).

Importing a module runs it: its classes are built, its own imports loaded. `policy-watchdog check` spent
~0.25 s of CPU before its first request loading every command's and every stage's modules (the daemon, the
importers, rendering, delivery...), most of which an unchanged cycle never runs, or runs only after its
requests. A module bound with `deferred` is imported the first time one of its attributes is read. The
binding stays at the top of the module, next to the imports, and is typed as the module itself:

    if TYPE_CHECKING:
        from watchdog import notify
    else:
        notify = deferred("watchdog.notify")  # delivery runs after the cycle's requests

    notify.deliver_pending(...)  # the first use imports watchdog.notify (thread-safe: the import lock)

mypy reads the real import (the `else` branch does not exist for it), so every use is type-checked as with
a plain import. tests/test_startup.py proves which modules `check` loads before its first request.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType


class DeferredModule:
    """Stands for the module `name` until then; every attribute read is the real module's attribute."""

    __slots__ = ("_module", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> object:
        # the first read imports the module (under the import lock); later reads find it kept here
        return getattr(self.module(), attribute)

    def module(self) -> ModuleType:
        found = self._module
        if found is None:
            found = self._module = import_module(self._name)
        return found

    def __repr__(self) -> str:
        return f"deferred({self._name!r})"


def deferred(name: str) -> DeferredModule:
    """The module `name` (an absolute name), imported when first used."""
    return DeferredModule(name)

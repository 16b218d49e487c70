"""watchdog/deferred.py: an own module bound at the top of a file, imported on its first attribute read."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_a_deferred_module_is_imported_on_first_use_then_kept() -> None:
    """Nothing is imported when the binding is made; the first attribute read imports the module; later
    reads use the module kept by the binding (no import machinery per read: the sentence index reads the
    splitter once per line of a policy)."""
    script = textwrap.dedent("""
        import sys
        from watchdog.deferred import deferred
        trace = deferred("watchdog.trace")
        assert "watchdog.trace" not in sys.modules
        first = trace.__name__
        assert first == "watchdog.trace" and "watchdog.trace" in sys.modules
        real = sys.modules.pop("watchdog.trace")
        assert trace.module() is real and trace.__name__ == first
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr

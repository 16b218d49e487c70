"""Stage fetch: the fetchers (plain HTTP with httpx, a real browser, auto); see fetchers/base.py.

httpx's package imports its own command-line client whenever click, pygments and rich can be imported
(click comes with apprise): ~10 ms of CPU, at every start, for a client this program never runs, and
before its first request. An entry of None in sys.modules makes that import fail (the documented meaning
of None there), which httpx expects and answers with a stub: set here, before fetchers/http.py imports
httpx. A program that imported httpx earlier keeps its client.
"""

import sys

sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

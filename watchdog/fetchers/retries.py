"""Stage 1, fetch: the plain-HTTP fetcher's retries (tenacity), loaded with the first failed attempt.

A fetch's first attempt runs without tenacity: most succeed, or fail in a way no retry helps, and
importing tenacity cost ~5 ms of CPU before every check's first request. When a first attempt fails in a
way a retry can help, the fetcher hands that failure to `policy`'s Retrying through `replaying`: tenacity
takes it as the outcome of attempt 1 (it would have run that attempt the same way: no hook runs before
one) and decides, waits, logs and runs the next attempts exactly as when it ran the first one itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt
from tenacity.stop import stop_base

Result = TypeVar("Result")


class StopAtDeadline(stop_base):
    """Tenacity stop: no retry that would not have `minimum` seconds left after its backoff."""

    def __init__(self, left: Callable[[], float], minimum: float) -> None:
        self._left = left
        self._minimum = minimum

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self._left() - retry_state.upcoming_sleep < self._minimum


def policy(
    *,
    attempts: int,
    left: Callable[[], float],
    minimum: float,
    wait: Callable[[RetryCallState], float],
    sleep: Callable[[float], None],
    before_sleep: Callable[[RetryCallState], None],
    transient: type[Exception],
) -> Retrying:
    """At most `attempts` attempts, none started with less than `minimum` seconds `left` after its wait;
    only a `transient` failure is retried, and the last one is raised as it is."""
    return Retrying(
        stop=stop_after_attempt(attempts) | StopAtDeadline(left, minimum),
        wait=wait,
        retry=retry_if_exception_type(transient),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )


def replaying(failed: Exception, attempt: Callable[[], Result]) -> Callable[[], Result]:
    """`attempt`, except that its first call raises `failed` (the failure of the attempt already made)."""
    replayed = [failed]

    def replay_then_attempt() -> Result:
        if replayed:
            raise replayed.pop()
        return attempt()

    return replay_then_attempt

"""A circuit breaker for the LLM server: after ``failures`` consecutive failures it opens and
every call fails at once (no request, no wait) for ``cooldown_s``; then one call may probe
(half-open): its success closes the breaker, its failure opens it for another cool-down.

A server that is down or overloaded then costs each rationale nothing instead of a connect
timeout and retries, and the server is not hammered while it recovers. The state is reported
through ``on_change`` (the service turns it into a gauge). Single event loop: no awaits happen
between a check and its update, so no lock is needed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """See the module docstring; ``clock`` is injectable for tests (seconds, monotonic)."""

    def __init__(self, failures: int = 5, cooldown_s: float = 30.0, *,
                 clock: Callable[[], float] = time.monotonic,
                 on_change: Callable[[BreakerState], None] | None = None) -> None:
        if failures < 1:
            raise ValueError("failures must be at least 1")
        if cooldown_s <= 0:
            raise ValueError("cooldown_s must be positive")
        self._threshold = failures
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._on_change = on_change
        self._failures = 0
        self._opened_at = 0.0
        self._state = BreakerState.CLOSED
        self._probing = False

    @property
    def state(self) -> BreakerState:
        """The state now (an open breaker whose cool-down has passed reads half-open)."""
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self._cooldown_s:
            return BreakerState.HALF_OPEN
        return self._state

    def allow(self) -> bool:
        """Whether a call may go to the server now (a half-open breaker lets one through)."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._probing:
            self._probing = True
            self._set(BreakerState.HALF_OPEN)
            return True
        return False

    def success(self) -> None:
        """The server answered: close (a half-open probe that succeeded closes it)."""
        self._failures = 0
        self._probing = False
        self._set(BreakerState.CLOSED)

    def failure(self) -> None:
        """The server failed a call: count it; open at the threshold or after a failed probe."""
        self._failures += 1
        if self._probing or self._failures >= self._threshold:
            self._probing = False
            self._opened_at = self._clock()
            self._set(BreakerState.OPEN)

    def release(self) -> None:
        """A call that was let through ended without a verdict on the server (cancelled)."""
        self._probing = False

    def _set(self, state: BreakerState) -> None:
        changed = state is not self._state
        self._state = state
        if changed and self._on_change is not None:
            self._on_change(state)

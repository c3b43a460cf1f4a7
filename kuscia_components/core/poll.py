"""Deadline-bounded polling with capped exponential backoff. Pure: the clock and sleep are
injected, so a test runs a five-minute wait in no time (tests/test_poll.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Delays start (for the first `hold` seconds), then start*factor, ... never above cap.

    The delay bounds how late a change is seen, the cap how many polls a long wait costs: most
    changes come early (a partner registering within seconds), so a wait polls fast for `hold`
    seconds, then backs off."""

    start: float = 0.2
    factor: float = 1.5
    cap: float = 0.8
    hold: float = 0.0

    def __post_init__(self) -> None:
        if not (self.start > 0 and self.factor >= 1 and self.cap >= self.start and self.hold >= 0):
            raise ValueError(
                f"backoff needs start > 0, factor >= 1 and cap >= start, e.g. Backoff(0.2, 1.5, 0.8); got {self}"
            )

    def next(self, delay: float) -> float:
        return min(self.cap, delay * self.factor)


class Poll:
    """One wait: `expired()` tells the caller when to give up, `wait()` sleeps the next step.

    The caller keeps its own loop (what it checks, says and decides differs per wait); this
    object only owns the timing, so every wait backs off and stops the same way:

        poll = Poll(timeout, clock=clock, sleep=sleep)
        while not done():
            if poll.expired():
                give_up()
            poll.wait()
    """

    def __init__(
        self,
        timeout_seconds: float,
        *,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.backoff = backoff or Backoff()
        self.timeout_seconds = float(timeout_seconds)
        self._clock, self._sleep = clock, sleep
        self.started = clock()
        self.deadline = self.started + self.timeout_seconds
        self._delay = self.backoff.start

    def now(self) -> float:
        return self._clock()

    def elapsed(self) -> float:
        return self._clock() - self.started

    def remaining(self) -> float:
        return max(0.0, self.deadline - self._clock())

    def expired(self) -> bool:
        return self._clock() >= self.deadline

    def wait(self) -> None:
        """Sleep the next backoff step, never past the deadline."""
        self._sleep(min(self._delay, self.remaining()))
        if self.elapsed() >= self.backoff.hold:
            self._delay = self.backoff.next(self._delay)

"""core/poll.py on a fake clock: capped exponential steps, never a sleep past the deadline."""

from __future__ import annotations

import pytest

from kuscia_components.core.poll import Backoff, Poll


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_steps_grow_by_the_factor_up_to_the_cap() -> None:
    clock = Clock()
    poll = Poll(60, backoff=Backoff(start=0.2, factor=2, cap=1.0), clock=clock, sleep=clock.sleep)
    for _ in range(5):
        poll.wait()
    assert clock.slept == pytest.approx([0.2, 0.4, 0.8, 1.0, 1.0])
    assert poll.elapsed() == pytest.approx(3.4) and not poll.expired()


def test_the_last_step_ends_at_the_deadline_and_then_it_is_expired() -> None:
    clock = Clock()
    poll = Poll(1.0, backoff=Backoff(start=0.3, factor=1.5, cap=0.8), clock=clock, sleep=clock.sleep)
    rounds = 0
    while not poll.expired():
        poll.wait()
        rounds += 1
    assert clock.now == pytest.approx(101.0) and poll.remaining() == 0.0
    assert sum(clock.slept) == pytest.approx(1.0) and rounds == 3  # 0.3, 0.45, then only the 0.25 left


def test_a_zero_timeout_is_expired_at_once() -> None:
    clock = Clock()
    assert Poll(0, clock=clock, sleep=clock.sleep).expired()


@pytest.mark.parametrize("bad", [{"start": 0}, {"factor": 0.5}, {"start": 2.0, "cap": 1.0}])
def test_a_backoff_that_would_spin_or_shrink_is_refused_with_an_example(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"e\.g\. Backoff\(0\.2, 1\.5, 0\.8\)"):
        Backoff(**bad)

"""The link's poll schedule (core/poll.py's `hold`): fast while a partner usually registers,
then few polls over a long wait."""

from __future__ import annotations

import pytest

from kuscia_components.core.poll import Backoff, Poll
from kuscia_components.peering.provider import LINK_BACKOFF


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def sleeps(timeout: float, backoff: Backoff) -> list[float]:
    clock = Clock()
    poll = Poll(timeout, backoff=backoff, clock=clock, sleep=clock.sleep)
    slept = []
    while not poll.expired():
        before = clock()
        poll.wait()
        slept.append(clock() - before)
    return slept


def test_link_schedule_polls_every_200_ms_for_6_s_then_at_most_100_in_300_s() -> None:
    slept = sleeps(300, LINK_BACKOFF)
    assert all(s == pytest.approx(0.2) for s in slept[:29])
    assert max(slept) == pytest.approx(6.0) and len(slept) <= 100


def test_hold_zero_backs_off_from_the_first_step() -> None:
    assert sleeps(2.0, Backoff(start=0.2, factor=2, cap=1.0))[:3] == pytest.approx([0.2, 0.4, 0.8])


def test_negative_hold_is_refused_with_an_example() -> None:
    with pytest.raises(ValueError, match=r"e\.g\. Backoff"):
        Backoff(hold=-1)

"""OfflineMocks itself: secret-ness like the engine, and runs that do not leak into each other."""

from __future__ import annotations

import pulumi
import pytest

from kuscia_components.offline.mocks import OfflineMocks, run_offline


def _boom(_: object) -> object:
    raise RuntimeError("boom from an earlier run")


def test_a_failed_run_does_not_leak_into_the_next() -> None:
    def failing() -> None:
        pulumi.export("x", pulumi.Output.from_input(1).apply(_boom))

    with pytest.raises(RuntimeError, match="boom"):
        run_offline(failing, OfflineMocks())
    assert run_offline(lambda: pulumi.export("y", 2), OfflineMocks()) == {"y": 2}


def test_stack_outputs_of_one_run_are_not_seen_by_the_next() -> None:
    assert run_offline(lambda: pulumi.export("a", 1), OfflineMocks()) == {"a": 1}
    assert run_offline(lambda: pulumi.export("b", 2), OfflineMocks()) == {"b": 2}

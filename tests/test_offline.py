"""OfflineMocks itself: secret-ness like the engine, and runs that do not leak into each other."""

from __future__ import annotations

import pulumi
import pytest

from kuscia_components.offline.mocks import OfflineMocks, UnknownStack, run_offline


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


# -- StackReference: like the engine's backend ----------------------------------------------------


def _read_bob() -> None:
    pulumi.export("bundle", pulumi.StackReference("peer-bob", stack_name="bob").get_output("peeringBundle"))


def test_a_reference_to_a_stack_that_does_not_exist_fails_like_the_engine() -> None:
    """pulumi pkg/backend/backend.go GetStackOutputs: `unknown stack "bob"` when the backend has
    no such stack (the diy/file backend's GetStack returns nil for it)."""
    with pytest.raises(UnknownStack, match='unknown stack "bob"'):
        run_offline(_read_bob, OfflineMocks())


def test_an_existing_stack_without_outputs_yields_nothing_and_one_with_outputs_its_outputs() -> None:
    assert run_offline(_read_bob, OfflineMocks(stack_outputs={"bob": {}})) == {"bundle": None}
    bundle = {"domainId": "bob"}
    assert run_offline(_read_bob, OfflineMocks(stack_outputs={"bob": {"peeringBundle": bundle}})) == {
        "bundle": bundle
    }

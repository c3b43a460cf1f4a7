"""A failed PartnerLink create leaves nothing behind, and says what it did (emulated nodes).

A create that raises has no state, so `pulumi destroy` would never remove what it registered:
every failure point after the first registration is tested here, plus a node restart right after
`domain/create` that the link's own deadline rides out.
"""

from __future__ import annotations

from typing import Any

import pytest

from kuscia_components.peering.client import ApiUnavailable, ValidationFailed
from kuscia_components.peering.props import LinkProps
from kuscia_components.peering.provider import PartnerLinkProvider, PeeringError, node_client, reconcile
from tests.emulator import KusciaEmulator
from tests.helpers import FakeTime, link_props

pytestmark = pytest.mark.usefixtures("quick_evidence")


def failing_after(client: Any, method: str, error: Exception, then: Any = None) -> None:
    """`client.method` does its work, then `then()` runs (a fault), then raises `error`."""
    real = getattr(client, method)

    def call(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        if then is not None:
            then()
        raise error

    setattr(client, method, call)


def test_emulated_route_create_failing_removes_the_partner_domain_it_created() -> None:
    with KusciaEmulator() as emu:
        alice, bob = emu.add_node("alice"), emu.add_node("bob")
        link = LinkProps.from_props(link_props(alice, bob, emu))
        with node_client(link) as client:
            client.create_route = _raise(ValidationFailed("route/create refused"))  # type: ignore[method-assign]
            with pytest.raises(PeeringError) as err:
                reconcile(link, client=client, undo_on_failure=True)
        assert "bob" not in alice.domains()
        text = str(err.value)
        assert "route/create refused" in text and "partner Domain bob" in text and "nothing is left" in text


def test_emulated_require_ready_timeout_removes_route_and_domain() -> None:
    with KusciaEmulator() as emu:
        alice, bob = emu.add_node("alice"), emu.add_node("bob")  # bob never registers alice
        fake = FakeTime(emu)
        with pytest.raises(PeeringError) as err:
            reconcile(
                link_props(alice, bob, emu, require_ready=True),
                clock=fake.clock,
                sleep=fake.sleep,
                undo_on_failure=True,
            )
        assert "bob" not in alice.domains() and "alice-bob" not in alice.routes()
        text = str(err.value)
        assert "not Ready after" in text and "route alice-bob and partner Domain" not in text
        assert "partner Domain bob and route alice-bob" in text and "removed them again" in text


def test_emulated_failure_keeps_what_existed_before() -> None:
    """Only what this create made is undone: a Domain registered earlier stays."""
    with KusciaEmulator() as emu:
        alice, bob = emu.add_node("alice"), emu.add_node("bob")
        PartnerLinkProvider().create(link_props(alice, bob, emu, phase="domain"))
        fake = FakeTime(emu)
        with pytest.raises(PeeringError) as err:
            reconcile(
                link_props(alice, bob, emu, require_ready=True),
                clock=fake.clock,
                sleep=fake.sleep,
                undo_on_failure=True,
            )
        assert "bob" in alice.domains() and "alice-bob" not in alice.routes()
        assert "had registered route alice-bob on" in str(err.value)


def test_emulated_undo_that_cannot_reach_the_node_says_what_is_left() -> None:
    with KusciaEmulator() as emu:
        alice, bob = emu.add_node("alice"), emu.add_node("bob")
        link = LinkProps.from_props(link_props(alice, bob, emu))
        with node_client(link, budget_seconds=0.5) as client:
            failing_after(
                client, "create_route", ApiUnavailable("node went away"), then=lambda: alice.restart(5)
            )
            with pytest.raises(PeeringError) as err:
                reconcile(link, client=client, undo_on_failure=True)
        text = str(err.value)
        assert "node went away" in text and "LEFT on the node" in text
        assert "partner Domain bob" in text and "route alice-bob" in text


def test_emulated_health_failure_before_any_registration_is_unchanged() -> None:
    with KusciaEmulator() as emu:
        alice, bob = emu.add_node("alice"), emu.add_node("bob")
        fake = FakeTime(emu)
        alice.restart(10_000)
        with pytest.raises(PeeringError) as err:
            link = link_props(alice, bob, emu, health_timeout_seconds=1, timeout_seconds=1)
            reconcile(link, clock=fake.clock, sleep=fake.sleep, undo_on_failure=True)
        assert "did not become healthy" in str(err.value) and "registered" not in str(err.value)


def test_emulated_update_failure_does_not_undo() -> None:
    """An update keeps its old state, so `destroy` still removes everything: nothing is undone."""
    with KusciaEmulator() as emu:
        alice, bob = emu.add_node("alice"), emu.add_node("bob")
        fake = FakeTime(emu)
        with pytest.raises(PeeringError):
            reconcile(link_props(alice, bob, emu, require_ready=True), clock=fake.clock, sleep=fake.sleep)
        assert "bob" in alice.domains() and "alice-bob" in alice.routes()


def test_emulated_node_restart_right_after_domain_create_is_ridden_out() -> None:
    """A 10 s restart right after `domain/create`: the retry budget is the link's deadline, not
    five attempts, so the link still becomes Ready."""
    with KusciaEmulator(handshake_delay=0.0) as emu:
        alice, bob = emu.add_node("alice"), emu.add_node("bob")
        PartnerLinkProvider().create(link_props(bob, alice, emu, phase="domain"))
        link = LinkProps.from_props(link_props(alice, bob, emu, timeout_seconds=60))
        with node_client(link, budget_seconds=link.timeout_seconds) as client:
            real = client.create_partner_domain

            def create_then_restart(*args: Any) -> None:
                real(*args)
                alice.restart(10)

            client.create_partner_domain = create_then_restart  # type: ignore[method-assign]
            outs = reconcile(link, client=client, undo_on_failure=True)
        assert outs["status"] == "Ready" and outs["domain_action"] == "created"


def _raise(error: Exception) -> Any:
    def call(*_args: Any, **_kwargs: Any) -> None:
        raise error

    return call

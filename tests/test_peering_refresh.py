"""A Ready link whose route broke since: Pulumi.yaml makes every `up` refresh first, the refresh
(`read`) reports the live status, and `diff` then redoes the link and says why (emulated nodes)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from kuscia_components.peering.provider import PartnerLinkProvider
from tests.emulator import KusciaEmulator
from tests.helpers import link_props

ROOT = Path(__file__).resolve().parent.parent


def test_project_refreshes_before_every_up() -> None:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["options"]["refresh"] == "always"


def test_emulated_route_broken_after_ready_is_redone_by_the_next_up(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with KusciaEmulator(handshake_delay=0.0) as emu:
        alice, bob = emu.add_node("alice"), emu.add_node("bob")
        provider = PartnerLinkProvider()
        provider.create(link_props(bob, alice, emu, phase="domain"))
        props = link_props(alice, bob, emu, timeout_seconds=30)
        state = provider.create(props).outs
        assert state["status"] == "Ready"
        assert not provider.diff("x", state, props).changes  # Ready and unchanged: nothing to do
        provider.delete("b", link_props(bob, alice, emu, phase="domain"))  # bob drops alice
        bob.rotate_key()  # and alice's copy of bob's key is stale: the handshake fails
        alice.restart(0.2)  # the route re-handshakes
        assert emu.wait_until(lambda: alice.routes()["alice-bob"]["status"] != "Succeeded", timeout=20)
        refreshed = provider.read("x", state)  # what `refresh: always` runs before the up
        assert refreshed.id == "x" and refreshed.outs["status"] != "Ready"
        assert provider.diff("x", refreshed.outs, props).changes
        assert "this `pulumi up` registers it again" in caplog.text

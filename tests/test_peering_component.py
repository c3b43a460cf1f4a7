"""The Peering component (one program, both nodes) under Pulumi mocks, against EMULATED nodes.

The nodes' Kubernetes objects are mocked; the peering links really run against the emulator.
Both parties bring their own key (the emulated nodes' keys), so the identity our program
derives matches the nodes it talks to.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pulumi
import pytest

from kuscia_components.config import PartyConfig, parse_party_config
from kuscia_components.node import AutonomyNode, AutonomyNodeArgs
from kuscia_components.offline import OfflineMocks, run_offline
from kuscia_components.peering import Peering, PeeringArgs
from tests.emulator import EmulatedNode, KusciaEmulator


@pytest.fixture
def emu() -> Iterator[KusciaEmulator]:
    with KusciaEmulator() as emulator:
        yield emulator


def party(node: EmulatedNode, emu: KusciaEmulator, **extra: object) -> PartyConfig:
    values = {
        "domainId": node.domain_id,
        "protocol": node.protocol,
        "capacity": json.dumps({"cpu": "2", "memory": "2Gi", "storage": "10Gi"}),
        "domainKeyData": node.key_pem,
        "kubeContext": emu.context,
        "kubeconfig": emu.kubeconfig_path,
        "peeringTimeoutSeconds": "10",
        **extra,
    }
    return parse_party_config(values, {"domainKeyData"})


def run_pair(a: PartyConfig, b: PartyConfig) -> tuple[OfflineMocks, dict[str, Any]]:
    def program() -> None:
        node_a = AutonomyNode(a.domain_id, AutonomyNodeArgs(a))
        node_b = AutonomyNode(b.domain_id, AutonomyNodeArgs(b))
        peering = Peering("pair", PeeringArgs(a=node_a, a_config=a, b=node_b, b_config=b))
        pulumi.export("status", peering.status)

    mocks = OfflineMocks()
    return mocks, run_offline(program, mocks, stack="pair")


def test_emulated_peering_component_registers_both_domains_first_then_routes_then_ready(
    emu: KusciaEmulator,
) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob", protocol="NOTLS")
    mocks, outputs = run_pair(party(alice, emu), party(bob, emu))
    assert outputs["status"] == {"alice": "Ready", "bob": "Ready"}
    creates = [
        (r.node, r.path.rsplit("/", 1)[-1], r.path.split("/proxy")[1])
        for r in emu.requests
        if r.method == "POST"
    ]
    domain_creates = [i for i, c in enumerate(creates) if c[2] == "/api/v1/domain/create"]
    route_creates = [i for i, c in enumerate(creates) if c[2] == "/api/v1/route/create"]
    assert len(domain_creates) == 2 and len(route_creates) == 2
    assert max(domain_creates) < min(route_creates)
    links = mocks.of_type("pulumi-python:dynamic/kuscia:PartnerLink")
    assert {link.name for link in links} == {
        "pair-alice-domain",
        "pair-bob-domain",
        "pair-alice-route",
        "pair-bob-route",
    }
    pair = mocks.one("kuscia:index:Peering", "pair")
    assert all(link.parent_urn == pair.urn for link in links)
    assert all(link.is_secret("token") for link in links)


def test_emulated_peering_component_wrong_key_on_one_node_fails_with_the_side_named(
    emu: KusciaEmulator,
) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    alice_cfg = party(alice, emu)
    bob_cfg = party(bob, emu, peeringTimeoutSeconds="10")
    bob.rotate_key()  # bob's node now runs a key the stack does not hold
    with pytest.raises(Exception) as err:
        run_pair(alice_cfg, bob_cfg)
    assert "Unauthorized" in type(err.value).__name__ or "rejected the Token" in str(err.value)

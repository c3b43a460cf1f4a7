"""Peering through Pulumi programs under mocks, against EMULATED nodes (tests/emulator).

The nodes' Kubernetes objects are mocked (OfflineMocks echoes them); the dynamic providers
really run, so the peering links talk to the emulated KusciaAPI through the fake API server.
Both parties bring their own key (the emulated nodes' keys), so the identity our program derives
matches the node it talks to. Every run is a fresh `pulumi up` (mocks keep no state between
runs); `refresh` is the provider's `read` on the recorded state.
"""

from __future__ import annotations

import dataclasses
import json
import runpy
from pathlib import Path
from typing import Any

import pulumi
import pytest

from kuscia_components.config import PartyConfig, parse_party_config
from kuscia_components.core import pki
from kuscia_components.node.component import AutonomyNode, AutonomyNodeArgs
from kuscia_components.offline.mocks import OfflineMocks, RecordedResource, run_offline
from kuscia_components.peering import resource as peering
from kuscia_components.peering.client import TlsFailed, Unauthorized
from kuscia_components.peering.component import Peering, PeeringArgs
from kuscia_components.peering.provider import PartnerLinkProvider
from kuscia_components.program import party_program
from tests.emulator import KusciaEmulator
from tests.helpers import kusciaapi_calls

LINK_TYPE = "pulumi-python:dynamic/kuscia:PartnerLink"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "one-cluster"


pytestmark = pytest.mark.usefixtures("quick_evidence")


def party(node: Any, emu: KusciaEmulator, *, wait: float = 10, **extra: object) -> PartyConfig:
    values = {
        "domainId": node.domain_id,
        "protocol": node.protocol,
        "capacity": {"cpu": "2", "memory": "2Gi", "storage": "10Gi"},
        "domainKeyData": node.key_pem,
        "kubeContext": emu.context,
        "kubeconfig": emu.kubeconfig_path,
        **extra,
    }
    cfg = parse_party_config(values, {"domainKeyData"})
    # Config allows 10 s at least (a real handshake takes minutes); the emulated one is instant.
    return dataclasses.replace(cfg, peering_timeout_seconds=wait)  # type: ignore[arg-type]


def run_pair(a: PartyConfig, b: PartyConfig) -> tuple[OfflineMocks, dict[str, Any]]:
    def program() -> None:
        node_a = AutonomyNode(a.domain_id, AutonomyNodeArgs(a))
        node_b = AutonomyNode(b.domain_id, AutonomyNodeArgs(b))
        pair = Peering("pair", PeeringArgs(a=node_a, a_config=a, b=node_b, b_config=b))
        pulumi.export("status", pair.status)

    mocks = OfflineMocks()
    return mocks, run_offline(program, mocks, stack="pair")


def run_party(cfg: PartyConfig, stacks: dict[str, dict[str, Any]]) -> tuple[OfflineMocks, dict[str, Any]]:
    """One party's own stack (the real program); `stacks` are the other stacks' outputs."""
    mocks = OfflineMocks(stack_outputs=stacks)
    return mocks, run_offline(lambda: party_program(cfg), mocks, stack=cfg.domain_id)


def posts(emu: KusciaEmulator, start: int = 0) -> list[tuple[str | None, str]]:
    return [(r.node, path) for r, path in kusciaapi_calls(emu, start=start) if r.method == "POST"]


def refresh(link: RecordedResource) -> dict[str, Any]:
    """`pulumi refresh` of one recorded link: the provider's read on its state."""
    state = {k: v for k, v in link.plain_state.items() if k != "__provider"}
    return PartnerLinkProvider().read(link.id, state).outs


# -- one program, both nodes: the Peering component ---------------------------------------------------


def test_emulated_peering_registers_both_domains_first_then_routes_then_ready(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob", protocol="NOTLS")
    mocks, outputs = run_pair(party(alice, emu), party(bob, emu))
    assert outputs["status"] == {"alice": "Ready", "bob": "Ready"}
    calls = posts(emu)
    domain_creates = [i for i, (_, path) in enumerate(calls) if path == "/api/v1/domain/create"]
    route_creates = [i for i, (_, path) in enumerate(calls) if path == "/api/v1/route/create"]
    assert [calls[i][0] for i in domain_creates] and len(domain_creates) == len(route_creates) == 2
    assert {calls[i][0] for i in route_creates} == {"alice", "bob"}
    assert max(domain_creates) < min(route_creates)  # phase 1 on both nodes before phase 2 on either
    links = mocks.of_type(LINK_TYPE)
    assert {link.name for link in links} == {
        "pair-alice-domain",
        "pair-bob-domain",
        "pair-alice-route",
        "pair-bob-route",
    }
    pair = mocks.one("kuscia:index:Peering", "pair")
    assert all(link.parent_urn == pair.urn for link in links)
    assert all(link.is_secret("token") for link in links)
    routes = [link for link in links if link.name.endswith("-route")]
    assert all(link.is_secret("partner_node") for link in routes)
    assert alice.routes()["alice-bob"]["status"] == bob.routes()["bob-alice"]["status"] == "Succeeded"


def test_emulated_peering_outputs_hold_no_token_in_the_clear(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    mocks, outputs = run_pair(party(alice, emu), party(bob, emu))
    for link in mocks.of_type(LINK_TYPE):
        public = {
            k: v for k, v in link.state.items() if k not in peering.SECRET_OUTPUTS and k != "__provider"
        }
        assert alice.token not in repr(public) and bob.token not in repr(public)
        provider_blob = link.plain_state["__provider"]
        assert alice.token not in provider_blob and bob.token not in provider_blob
    assert alice.token not in repr(outputs) and bob.token not in repr(outputs)


def test_emulated_peering_rerun_is_idempotent(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    run_pair(party(alice, emu), party(bob, emu))
    start = len(emu.requests)
    mocks, outputs = run_pair(party(alice, emu), party(bob, emu))
    assert outputs["status"] == {"alice": "Ready", "bob": "Ready"}
    assert not [path for _, path in posts(emu, start) if path.endswith(("/create", "/update", "/delete"))]
    actions = {
        link.name: link.plain_state.get("domain_action") or link.plain_state.get("route_action")
        for link in mocks.of_type(LINK_TYPE)
    }
    assert set(actions.values()) == {"unchanged"}


def test_emulated_peering_follows_a_key_rotation(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    run_pair(party(alice, emu), party(bob, emu))
    bob.rotate_key()  # bob's operator set a new domainKeyData and the node rolled
    _, outputs = run_pair(party(alice, emu), party(bob, emu))  # bob's config now holds the new key
    assert outputs["status"] == {"alice": "Ready", "bob": "Ready"}
    assert pki.same_public_key(alice.domains()["bob"]["cert"], bob.cert_pem)
    assert alice.domains()["bob"]["role"] == "partner"


def test_emulated_peering_node_with_another_key_than_the_stack_fails_clearly(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    bob_cfg = party(bob, emu)
    bob.rotate_key()  # bob's node now runs a key the stack does not hold
    # Over the port-forward the server certificate is checked first: signed by another key, it
    # does not chain to the CA the stack derives, so no request (and no token) is sent.
    with pytest.raises(TlsFailed) as err:
        run_pair(party(alice, emu), bob_cfg)
    assert err.value.kind == "node_ca_mismatch" and "bob" in str(err.value)
    assert "another domain key" in str(err.value) and bob.token not in str(err.value)
    assert not [r for r in emu.requests if r.via == "portforward" and r.node == "bob" and r.port == "8082"]


def test_emulated_peering_node_with_another_key_through_the_service_proxy_is_a_rejected_token(
    emu: KusciaEmulator,
) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    proxy = {"kusciaApiTransport": "serviceProxy"}
    bob_cfg = party(bob, emu, **proxy)
    bob.rotate_key()  # the proxy never checks the certificate: KusciaAPI refuses the token
    with pytest.raises(Unauthorized) as err:
        run_pair(party(alice, emu, **proxy), bob_cfg)
    assert str(err.value).startswith("token rejected") and "bob" in str(err.value)
    assert bob.token not in str(err.value)


def test_emulated_peering_require_ready_fails_the_pair_with_the_diagnosis(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    emu.set_unreachable("bob", True)  # alice's node cannot reach bob's gateway
    with pytest.raises(Exception) as err:
        run_pair(party(alice, emu, wait=1.5), party(bob, emu, wait=1.5, requirePeerReady=True))
    assert "route alice-bob not Ready after 2 s" in str(err.value)
    assert "bob is deployed by this same program" in str(err.value)
    assert "curl -kvvv https://kuscia-autonomy-bob.autonomy-bob.svc.cluster.local:1080" in str(err.value)


# -- two stacks, one party each: PartnerLink through the party program ---------------------------------


def test_emulated_two_stacks_converge_whoever_goes_first(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    alice_cfg = party(alice, emu, wait=1, peers=[{"domainId": "bob", "stack": "bob"}])
    bob_cfg = party(bob, emu, wait=1, peers=[{"domainId": "alice", "stack": "alice"}])

    # 1. alice goes first: bob's stack exists (`pulumi stack init bob`) but has no outputs yet,
    # so there is nothing to register.
    _, alice_out = run_party(alice_cfg, {"bob": {}})
    assert alice_out["links"]["bob"]["status"] == "WaitingForPartner"
    assert "Run `pulumi up -s bob` first" in alice_out["links"]["bob"]["diagnosis"]
    assert not posts(emu)

    # 2. bob registers alice from alice's bundle; alice has not registered bob yet.
    bob_mocks, bob_out = run_party(bob_cfg, {"alice": {"peeringBundle": alice_out["peeringBundle"]}})
    assert bob_out["links"]["alice"]["status"] == "WaitingForPartner"
    assert (
        "alice adds bob to its kuscia:peers and runs `pulumi up -s alice`"
        in bob_out["links"]["alice"]["diagnosis"]
    )
    assert "bob" not in alice.domains() and "alice" in bob.domains()

    # 3. alice's next `up` completes both directions.
    _, alice_out = run_party(alice_cfg, {"bob": {"peeringBundle": bob_out["peeringBundle"]}})
    assert alice_out["links"]["bob"] == {
        "routeName": "alice-bob",
        "status": "Ready",
        "reason": "",
        "diagnosis": "Route alice-bob is Ready: the token handshake succeeded.",
    }

    # 4. bob's `refresh` sees its side Ready too.
    assert refresh(bob_mocks.one(LINK_TYPE))["status"] == "Ready"
    assert alice.routes()["alice-bob"]["status"] == bob.routes()["bob-alice"]["status"] == "Succeeded"


def test_emulated_inline_bundle_across_organisations(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob", protocol="NOTLS")
    bob_bundle = {
        "domainId": "bob",
        "endpoint": bob.endpoint,
        "cert": pki.cert_b64(bob.cert_pem),
        "protocol": "NOTLS",
    }
    alice_bundle = {
        "domainId": "alice",
        "endpoint": alice.endpoint,
        "cert": pki.cert_b64(alice.cert_pem),
        "protocol": "TLS",
    }
    run_party(party(bob, emu, wait=0.5, peers=[alice_bundle]), {})
    _, alice_out = run_party(party(alice, emu, peers=[bob_bundle]), {})
    assert alice_out["links"]["bob"]["status"] == "Ready"
    route = next(r.body for r in emu.requests if r.node == "alice" and r.path.endswith("/route/create"))
    assert route["endpoint"]["ports"][0]["isTLS"] is False  # bob runs NOTLS: http://


# -- the example program -------------------------------------------------------------------------------


def test_emulated_one_cluster_example_peers_both_parties(emu: KusciaEmulator) -> None:
    nodes = [emu.add_node("alice"), emu.add_node("bob", protocol="NOTLS")]
    config = {
        f"kuscia-one-cluster:{node.domain_id}": json.dumps(
            {
                "domainId": node.domain_id,
                "protocol": node.protocol,
                "domainKeyData": node.key_pem,
                "capacity": {"cpu": "2", "memory": "4Gi", "storage": "20Gi"},
                "peeringTimeoutSeconds": 10,
                "kubeContext": emu.context,
                "kubeconfig": emu.kubeconfig_path,
            }
        )
        for node in nodes
    }
    mocks = OfflineMocks()
    outputs = run_offline(
        lambda: runpy.run_path(str(EXAMPLE / "__main__.py")),
        mocks,
        project="kuscia-one-cluster",
        stack="dev",
        config=config,
        secret_keys=list(config),
    )
    assert outputs["status"] == {"alice": "Ready", "bob": "Ready"}
    assert outputs["bundles"]["bob"]["endpoint"] == nodes[1].endpoint
    assert len(mocks.of_type(LINK_TYPE)) == 4

"""PartnerLink provider against the EMULATED Kuscia nodes and API server (tests/emulator).

Every test name says `emulated`: Kuscia and the API server are emulated, the HTTP, the
kubeconfig handling, the RSA handshake and our client are real.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import dill
import pytest

from kuscia_components import peering, pki
from kuscia_components.kusciaapi import KusciaApiClient, NodeTarget, RetryPolicy, Unauthorized
from kuscia_components.peering import PartnerLinkProvider, PeeringError, reconcile
from tests.emulator import EmulatedNode, KusciaEmulator


@pytest.fixture
def emu() -> Iterator[KusciaEmulator]:
    with KusciaEmulator() as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def quick_evidence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(peering, "EVIDENCE_AFTER_SECONDS", 0.3)
    monkeypatch.setattr(peering, "EVIDENCE_EVERY_SECONDS", 0.3)


def link_props(me: EmulatedNode, other: EmulatedNode, emu: KusciaEmulator, **changes: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "domain_id": me.domain_id,
        "namespace": me.namespace,
        "service": me.service,
        "protocol": me.protocol,
        "token": me.token,
        "own_cert": pki.cert_b64(me.cert_pem),
        "kube_context": emu.context,
        "kubeconfig": emu.kubeconfig_path,
        "partner_domain_id": other.domain_id,
        "partner_cert": pki.cert_b64(other.cert_pem),
        "partner_endpoint": other.endpoint,
        "partner_protocol": other.protocol,
        "partner_stack": other.domain_id,
        "stage": "all",
        "timeout_seconds": 5,
        "health_timeout_seconds": 5,
        "require_ready": False,
    }
    props.update(changes)
    return props


def partner_node(node: EmulatedNode) -> dict[str, str]:
    return {
        "namespace": node.namespace,
        "service": node.service,
        "protocol": node.protocol,
        "token": node.token,
    }


def test_emulated_first_party_waits_for_partner_then_both_ready(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob", protocol="NOTLS")
    provider = PartnerLinkProvider()
    first = provider.create(link_props(alice, bob, emu, timeout_seconds=1))
    assert first.outs["status"] == "WaitingForPartner"
    assert "bob" in first.outs["diagnosis"] and "pulumi up -s bob" in first.outs["diagnosis"]
    assert "not found in dest domain [bob]" in alice.gateway_log[-1]  # the emulator did the handshake
    second = provider.create(link_props(bob, alice, emu))
    assert second.outs["status"] == "Ready"
    refreshed = provider.read(first.id, first.outs)
    assert refreshed.outs["status"] == "Ready"
    assert (
        alice.routes()["alice-bob"]["status"] == "Succeeded"
        and bob.routes()["bob-alice"]["status"] == "Succeeded"
    )
    # a later `up` re-checks a link that was not Ready
    assert provider.diff(first.id, first.outs, link_props(alice, bob, emu, timeout_seconds=1)).changes


def test_emulated_objects_are_created_as_kuscia_expects(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    PartnerLinkProvider().create(link_props(alice, bob, emu, timeout_seconds=0.5))
    domain = alice.snapshot_domains()["bob"]
    assert domain["role"] == "partner"
    assert domain["auth_center"] == {"authentication_type": "Token", "token_gen_method": "RSA-GEN"}
    assert pki.same_public_key(domain["cert"], bob.cert_pem)
    route = alice.route_table["alice-bob"]
    assert route.host == "kuscia-autonomy-bob.autonomy-bob.svc.cluster.local"
    assert route.ports[0]["port"] == 1080 and route.ports[0]["isTLS"] is True


def test_emulated_domain_is_created_before_the_route(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    PartnerLinkProvider().create(link_props(alice, bob, emu, timeout_seconds=0.5))
    paths = [r.path.split("/proxy", 1)[1] for r in emu.requests if r.node == "alice"]
    assert paths.index("/api/v1/domain/create") < paths.index("/api/v1/route/create")


def test_emulated_recreate_is_idempotent_and_cheap(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    provider = PartnerLinkProvider()
    provider.create(link_props(bob, alice, emu, timeout_seconds=0.5))
    first = provider.create(link_props(alice, bob, emu))
    assert (first.outs["domain_action"], first.outs["route_action"], first.outs["status"]) == (
        "created",
        "created",
        "Ready",
    )
    before = len(emu.requests)
    again = provider.create(link_props(alice, bob, emu))
    assert (again.outs["domain_action"], again.outs["route_action"], again.outs["status"]) == (
        "unchanged",
        "unchanged",
        "Ready",
    )
    assert len(emu.requests) - before <= 5  # health, domain query, route query, status


def test_emulated_cert_rotation_updates_the_partner_and_recovers(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    provider = PartnerLinkProvider()
    a = provider.create(link_props(alice, bob, emu, timeout_seconds=0.5))
    b = provider.create(link_props(bob, alice, emu))
    assert b.outs["status"] == "Ready"
    bob.rotate_key()  # bob's domainKeyData changed: new key, cert and token
    assert bob.routes()["bob-alice"]["status"] == "Failed"  # alice still holds bob's old cert
    new_props = link_props(alice, bob, emu)
    ready_state = {**a.outs, "status": "Ready"}
    assert not provider.diff(
        a.id, ready_state, link_props(alice, bob, emu, partner_cert=a.outs["partner_cert"])
    ).changes
    assert provider.diff(a.id, ready_state, new_props).changes  # only the partner's public key changed
    updated = provider.update(a.id, a.outs, new_props)
    assert updated.outs["domain_action"] == "updated" and updated.outs["status"] == "Ready"
    assert alice.snapshot_domains()["bob"]["role"] == "partner"  # role and auth centre re-sent
    assert provider.update(b.id, b.outs, link_props(bob, alice, emu)).outs["status"] == "Ready"


def test_emulated_restart_changes_cert_bytes_but_not_the_key_so_nothing_updates(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    provider = PartnerLinkProvider()
    old_cert = pki.cert_b64(bob.cert_pem)
    provider.create(link_props(bob, alice, emu, timeout_seconds=0.5))
    provider.create(link_props(alice, bob, emu))
    bob.restart(downtime=0.0)
    assert pki.cert_b64(bob.cert_pem) != old_cert
    again = provider.create(link_props(alice, bob, emu))
    assert again.outs["domain_action"] == "unchanged" and again.outs["status"] == "Ready"


def test_emulated_endpoint_change_replaces_the_route(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    emu.alias("203.0.113.10", 31080, "bob")
    provider = PartnerLinkProvider()
    provider.create(link_props(bob, alice, emu, timeout_seconds=0.5))
    first = provider.create(link_props(alice, bob, emu))
    moved = link_props(alice, bob, emu, partner_endpoint="https://203.0.113.10:31080")
    assert provider.diff(first.id, first.outs, moved).changes
    updated = provider.update(first.id, first.outs, moved)
    assert updated.outs["route_action"] == "replaced" and updated.outs["status"] == "Ready"
    assert alice.route_table["alice-bob"].host == "203.0.113.10"


def test_emulated_diff_replaces_on_identity_changes(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    olds = {**link_props(alice, bob, emu), "status": "Ready"}
    provider = PartnerLinkProvider()
    assert not provider.diff("x", olds, link_props(alice, bob, emu)).changes
    assert provider.diff("x", olds, link_props(alice, bob, emu, namespace="other")).replaces == ["namespace"]
    assert (
        "partner_domain_id"
        in provider.diff("x", olds, link_props(alice, bob, emu, partner_domain_id="carol")).replaces
    )


def test_emulated_out_of_band_deletion_is_found_by_read_and_fixed_by_create(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    provider = PartnerLinkProvider()
    provider.create(link_props(bob, alice, emu, timeout_seconds=0.5))
    link = provider.create(link_props(alice, bob, emu))
    del alice.route_table["alice-bob"]  # someone ran `kubectl delete cdr alice-bob`
    gone = provider.read(link.id, link.outs)
    assert gone.id == "" and not gone.outs
    assert provider.create(link_props(alice, bob, emu)).outs["status"] == "Ready"
    del alice.domains["bob"]
    assert provider.read(link.id, link.outs).id == ""


def test_emulated_delete_cleans_both_objects_and_tolerates_not_found(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    provider = PartnerLinkProvider()
    link = provider.create(link_props(alice, bob, emu, timeout_seconds=0.5))
    provider.delete(link.id, link.outs)
    assert "bob" not in alice.snapshot_domains() and "alice-bob" not in alice.route_table
    provider.delete(link.id, link.outs)  # second time: nothing there, no error


def test_emulated_5xx_bursts_are_retried(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    PartnerLinkProvider().create(link_props(bob, alice, emu, timeout_seconds=0.5))
    alice.fail_next(3, status=503)
    client = fast_client(alice, emu)
    outs = reconcile(link_props(alice, bob, emu), client=client)
    assert outs["status"] == "Ready"
    assert client.calls >= 3 + 5


def test_emulated_4xx_is_not_retried(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    client = fast_client(alice, emu)
    client.target = NodeTarget(**{**client.target.__dict__, "token": "not-the-token"})  # type: ignore[arg-type]
    with pytest.raises(Unauthorized) as err:
        reconcile(link_props(alice, bob, emu), client=client)
    assert client.calls == 1
    assert "not-the-token" not in str(err.value) and alice.token not in str(err.value)


def test_emulated_slow_responses_time_out_and_are_retried(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    PartnerLinkProvider().create(link_props(bob, alice, emu, timeout_seconds=0.5))
    alice.delay_next(1, 1.5)
    client = fast_client(alice, emu, request_timeout=0.5)
    assert reconcile(link_props(alice, bob, emu), client=client)["status"] == "Ready"


def test_emulated_node_restart_is_waited_out(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    PartnerLinkProvider().create(link_props(bob, alice, emu, timeout_seconds=0.5))
    alice.restart(downtime=1.0)
    messages: list[str] = []
    outs = reconcile(link_props(alice, bob, emu), client=fast_client(alice, emu), progress=messages.append)
    assert outs["status"] == "Ready"
    assert any("waiting for KusciaAPI" in m for m in messages)


def test_emulated_partner_that_never_registers(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    outs = PartnerLinkProvider().create(link_props(alice, bob, emu, timeout_seconds=1)).outs
    assert outs["status"] == "WaitingForPartner" and "Reason:DestinationIsNotAuthrized" in outs["reason"]
    with pytest.raises(PeeringError) as err:
        PartnerLinkProvider().create(link_props(alice, bob, emu, timeout_seconds=1, require_ready=True))
    assert "not Ready after 1 s" in str(err.value) and "bob" in str(err.value)


def test_emulated_partner_evidence_makes_waiting_definite(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    outs = (
        PartnerLinkProvider()
        .create(link_props(alice, bob, emu, timeout_seconds=1, partner_node=partner_node(bob)))
        .outs
    )
    assert outs["status"] == "WaitingForPartner"
    assert "has not registered alice yet (no partner Domain" in outs["diagnosis"]


def test_emulated_wrong_cert_for_the_partner_fails_with_our_side_named(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    PartnerLinkProvider().create(link_props(bob, alice, emu, timeout_seconds=0.5))
    wrong = pki.cert_b64(pki.build_domain_cert(pki.generate_domain_key(), "bob"))
    with pytest.raises(PeeringError) as err:
        PartnerLinkProvider().create(
            link_props(alice, bob, emu, partner_cert=wrong, timeout_seconds=2, partner_node=partner_node(bob))
        )
    assert "alice holds a stale or wrong certificate for bob" in str(err.value)
    assert "may be not correct" in alice.gateway_log[-1]


def test_emulated_partner_holding_our_stale_cert_fails_with_their_side_named(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    provider = PartnerLinkProvider()
    provider.create(link_props(bob, alice, emu, timeout_seconds=0.5))  # bob registers alice's current key
    alice.rotate_key()  # then alice's key changes; bob still holds the old cert
    with pytest.raises(PeeringError) as err:
        provider.create(link_props(alice, bob, emu, timeout_seconds=2, partner_node=partner_node(bob)))
    assert "bob holds a stale or wrong certificate for alice" in str(err.value)
    assert "publickey hash mismatch" in alice.gateway_log[-1]


def test_emulated_unreachable_partner_keeps_waiting_without_failing(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    PartnerLinkProvider().create(link_props(bob, alice, emu, timeout_seconds=0.5))
    emu.set_unreachable("bob")
    outs = PartnerLinkProvider().create(link_props(alice, bob, emu, timeout_seconds=1)).outs
    assert outs["status"] == "WaitingForPartner" and "curl -kvvv" in outs["diagnosis"]
    assert "connection refused" in alice.gateway_log[-1]


def test_emulated_protocol_mismatch_is_a_hard_error_before_any_call(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob", protocol="NOTLS")
    with pytest.raises(PeeringError) as err:
        PartnerLinkProvider().create(
            link_props(
                alice,
                bob,
                emu,
                partner_endpoint="https://kuscia-autonomy-bob.autonomy-bob.svc.cluster.local:1080",
            )
        )
    assert "must start with http://" in str(err.value)
    assert not emu.requests


def test_emulated_missing_bundle_waits_with_the_command_to_run(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    outs = (
        PartnerLinkProvider()
        .create(link_props(alice, bob, emu, partner_cert=None, partner_endpoint=None))
        .outs
    )
    assert outs["status"] == "WaitingForPartner" and "pulumi up -s bob" in outs["diagnosis"]
    assert not emu.requests


def test_emulated_tls_sends_the_derived_token_and_notls_sends_none(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob", protocol="NOTLS")
    provider = PartnerLinkProvider()
    provider.create(link_props(alice, bob, emu, timeout_seconds=0.5))
    provider.create(link_props(bob, alice, emu, timeout_seconds=0.5))
    tls = [r for r in emu.requests if r.node == "alice"]
    plain = [r for r in emu.requests if r.node == "bob"]
    assert tls and plain
    assert all(r.headers.get("Token") == alice.token for r in tls)
    assert all(pki.kusciaapi_token(alice.key_pem, "alice") == r.headers["Token"] for r in tls)
    assert all("Token" not in r.headers for r in plain)
    assert all("/services/https:kuscia-autonomy-alice:8082/proxy/" in r.path for r in tls)
    assert all("/services/http:kuscia-autonomy-bob:8082/proxy/" in r.path for r in plain)


def test_emulated_no_token_in_outputs_logs_or_pickled_provider(
    emu: KusciaEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    provider = PartnerLinkProvider()
    outs = provider.create(link_props(alice, bob, emu, timeout_seconds=0.5)).outs
    public = {k: v for k, v in outs.items() if k not in peering.SECRET_OUTPUTS}
    assert alice.token not in repr(public)
    assert alice.token not in caplog.text
    assert alice.token.encode() not in dill.dumps(provider, recurse=True)
    assert alice.token not in repr(fast_client(alice, emu))


def fast_client(node: EmulatedNode, emu: KusciaEmulator, request_timeout: float = 2.0) -> KusciaApiClient:
    target = NodeTarget(
        namespace=node.namespace, service=node.service, domain_id=node.domain_id, protocol=node.protocol,
        token=node.token, kube_context=emu.context, kubeconfig=emu.kubeconfig_path,
    )  # fmt: skip
    policy = RetryPolicy(
        attempts=6, base_seconds=0.05, cap_seconds=0.2, request_timeout_seconds=request_timeout
    )
    return KusciaApiClient(target, retry=policy)

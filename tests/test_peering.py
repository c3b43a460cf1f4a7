"""PartnerLink provider against the EMULATED Kuscia nodes and API server (tests/emulator).

Every test name says `emulated`: Kuscia and the API server are emulated; the HTTP, the
kubeconfig handling, the RSA handshake and our client are real. Only the emulator's documented
API is used (add_node, domains(), routes(), requests, faults). Waits that must run out use a
fake clock, so short deadlines cost no real time.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest
from pulumi.dynamic.dynamic import serialize_provider

from kuscia_components.core import pki
from kuscia_components.peering import provider as peering
from kuscia_components.peering.client import KusciaApiClient, NodeTarget, RetryPolicy, Unauthorized
from kuscia_components.peering.provider import PartnerLinkProvider, PeeringError, reconcile
from kuscia_components.peering.resource import SECRET_OUTPUTS
from tests.emulator import KusciaEmulator
from tests.helpers import FakeTime, kusciaapi_calls, link_props

UNROUTABLE = "https://203.0.113.10:31080"  # TEST-NET-3: nothing answers there


pytestmark = pytest.mark.usefixtures("quick_evidence")


def partner_node(node: Any) -> dict[str, str]:
    """What the Peering component hands a route link about the other node (evidence)."""
    return {
        "namespace": node.namespace,
        "service": node.service,
        "protocol": node.protocol,
        "token": node.token,
    }


def client_for(
    node: Any, emu: KusciaEmulator, request_timeout: float = 2.0, attempts: int = 6
) -> KusciaApiClient:
    target = NodeTarget(
        namespace=node.namespace,
        service=node.service,
        domain_id=node.domain_id,
        protocol=node.protocol,
        token=node.token,
        kube_context=emu.context,
        kubeconfig=emu.kubeconfig_path,
    )
    policy = RetryPolicy(
        attempts=attempts, base_seconds=0.05, cap_seconds=0.2, request_timeout_seconds=request_timeout
    )
    return KusciaApiClient(target, retry=policy)


def api_paths(emu: KusciaEmulator, node: str, start: int = 0) -> list[str]:
    return [path for _r, path in kusciaapi_calls(emu, node, start)]


def wait_out(props: dict[str, Any], emu: KusciaEmulator, **kwargs: Any) -> dict[str, Any]:
    """reconcile() on a fake clock; returns outputs and the fake seconds it took."""
    fake = FakeTime(emu)
    start = fake.now
    outs = reconcile(props, clock=fake.clock, sleep=fake.sleep, **kwargs)
    return {**outs, "_elapsed": fake.now - start}


# -- the normal life of a link -----------------------------------------------------------------------


def test_emulated_first_party_waits_for_partner_then_both_ready(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob", protocol="NOTLS")
    provider = PartnerLinkProvider()
    first = wait_out(link_props(alice, bob, emu, timeout_seconds=2), emu)
    assert first["status"] == "WaitingForPartner" and first["_elapsed"] <= 2 + peering.POLL_CAP_SECONDS
    assert "Reason:DestinationIsNotAuthrized" in first["reason"]
    assert "bob adds alice to its kuscia:peers and runs `pulumi up -s bob`" in first["diagnosis"]
    assert "`pulumi stack output peeringBundle -s alice`" in first["diagnosis"]
    second = provider.create(link_props(bob, alice, emu))
    assert second.outs["status"] == "Ready"
    refreshed = provider.read(peering.link_id(first), first)
    assert refreshed.outs["status"] == "Ready" and refreshed.id == "alice-bob:all"
    assert (
        alice.routes()["alice-bob"]["status"] == "Succeeded"
        and bob.routes()["bob-alice"]["status"] == "Succeeded"
    )
    # a link that was not Ready is re-checked by the next `up`, a Ready one is left alone
    assert provider.diff("alice-bob:all", first, link_props(alice, bob, emu, timeout_seconds=2)).changes
    assert not provider.diff(
        "alice-bob:all", refreshed.outs, link_props(alice, bob, emu, timeout_seconds=2)
    ).changes


def test_emulated_objects_are_made_as_kuscia_expects_domain_first(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    wait_out(link_props(alice, bob, emu, timeout_seconds=0.5), emu)
    domain = alice.domains()["bob"]
    assert domain["role"] == "partner"
    assert domain["auth_center"] == {"authentication_type": "Token", "token_gen_method": "RSA-GEN"}
    assert pki.same_public_key(domain["cert"], bob.cert_pem)
    paths = api_paths(emu, "alice")
    assert paths.index("/api/v1/domain/create") < paths.index("/api/v1/route/create")
    route = next(r.body for r in emu.requests if r.path.endswith("/api/v1/route/create"))
    assert route["endpoint"] == {
        "host": "kuscia-autonomy-bob.autonomy-bob.svc.cluster.local",
        "ports": [{"name": "http", "port": 1080, "protocol": "HTTP", "isTLS": True}],
    }
    assert route["authentication_type"] == "Token" and route["token_config"]["token_gen_method"] == "RSA-GEN"


def test_emulated_recreate_is_idempotent_and_cheap(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    provider = PartnerLinkProvider()
    wait_out(link_props(bob, alice, emu, timeout_seconds=0.5), emu)
    first = provider.create(link_props(alice, bob, emu)).outs
    assert (first["domain_action"], first["route_action"], first["status"]) == ("created", "created", "Ready")
    start = len(emu.requests)
    again = provider.create(link_props(alice, bob, emu)).outs
    assert (again["domain_action"], again["route_action"], again["status"]) == (
        "unchanged",
        "unchanged",
        "Ready",
    )
    assert api_paths(emu, "alice", start) == [
        "/healthZ",
        "/api/v1/domain/query",
        "/api/v1/route/query",
        "/api/v1/route/status/batchQuery",
    ]


def test_emulated_cert_rotation_updates_the_partner_and_recovers(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    provider = PartnerLinkProvider()
    a = wait_out(link_props(alice, bob, emu, timeout_seconds=0.5), emu)
    b = provider.create(link_props(bob, alice, emu)).outs
    assert b["status"] == "Ready"
    bob.rotate_key()  # bob's domainKeyData changed: new key, cert and token
    assert bob.routes()["bob-alice"]["status"] == "Failed"  # alice still holds bob's old cert
    ready_a = {**a, "status": "Ready"}
    same_key_new_bytes = pki.cert_b64(pki.build_domain_cert(bob.key_pem, "bob"))
    assert not provider.diff(
        "a", ready_a, link_props(alice, bob, emu, partner_cert=a["partner_cert"])
    ).changes
    rotated = provider.diff("a", ready_a, link_props(alice, bob, emu))
    assert rotated.changes and not rotated.replaces
    updated = provider.update("a", a, link_props(alice, bob, emu)).outs
    assert updated["domain_action"] == "updated" and updated["status"] == "Ready"
    assert alice.domains()["bob"]["role"] == "partner"  # role and auth centre were re-sent
    assert alice.domains()["bob"]["auth_center"] == {
        "authentication_type": "Token",
        "token_gen_method": "RSA-GEN",
    }
    assert provider.update("b", b, link_props(bob, alice, emu)).outs["status"] == "Ready"  # bob's new token
    assert not provider.diff(
        "a", updated, link_props(alice, bob, emu, partner_cert=same_key_new_bytes)
    ).changes


def test_emulated_restart_changes_cert_bytes_but_not_the_key_so_nothing_updates(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    wait_out(link_props(bob, alice, emu, timeout_seconds=0.5), emu)
    PartnerLinkProvider().create(link_props(alice, bob, emu))
    old_cert = pki.cert_b64(bob.cert_pem)
    bob.restart(downtime=0.0)
    assert pki.cert_b64(bob.cert_pem) != old_cert
    again = PartnerLinkProvider().create(link_props(alice, bob, emu)).outs
    assert again["domain_action"] == "unchanged" and again["status"] == "Ready"


def test_emulated_endpoint_change_replaces_the_route_both_ways(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    provider = PartnerLinkProvider()
    wait_out(link_props(bob, alice, emu, timeout_seconds=0.5), emu)
    first = provider.create(link_props(alice, bob, emu)).outs
    moved = link_props(alice, bob, emu, partner_endpoint=UNROUTABLE, timeout_seconds=1)
    assert provider.diff("x", first, moved).changes and not provider.diff("x", first, moved).replaces
    away = wait_out(moved, emu)
    assert away["route_action"] == "replaced" and away["status"] == "WaitingForPartner"
    assert "203.0.113.10" in away["diagnosis"]
    back = provider.update("x", away, link_props(alice, bob, emu)).outs
    assert back["route_action"] == "replaced" and back["status"] == "Ready"
    creates = [r.body for r in emu.requests if r.node == "alice" and r.path.endswith("/route/create")]
    assert [c["endpoint"]["host"] for c in creates] == [
        "kuscia-autonomy-bob.autonomy-bob.svc.cluster.local",
        "203.0.113.10",
        "kuscia-autonomy-bob.autonomy-bob.svc.cluster.local",
    ]
    assert creates[1]["endpoint"]["ports"][0]["port"] == 31080


def test_emulated_diff_replaces_on_identity_changes(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    olds = {**link_props(alice, bob, emu), "status": "Ready"}
    provider = PartnerLinkProvider()
    assert not provider.diff("x", olds, link_props(alice, bob, emu)).changes
    assert not provider.diff("x", olds, link_props(alice, bob, emu, timeout_seconds=60)).changes
    assert provider.diff("x", olds, link_props(alice, bob, emu, namespace="other")).replaces == ["namespace"]
    assert provider.diff("x", olds, link_props(alice, bob, emu, partner_domain_id="carol")).replaces == [
        "partner_domain_id"
    ]
    assert provider.diff("x", olds, link_props(alice, bob, emu, domain_id="carol")).replaces == ["domain_id"]
    assert provider.diff("x", olds, link_props(alice, bob, emu, token="new")).changes


def test_emulated_out_of_band_deletion_is_found_by_read_and_fixed_by_create(
    emu: KusciaEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    provider = PartnerLinkProvider()
    wait_out(link_props(bob, alice, emu, timeout_seconds=0.5), emu)
    link = provider.create(link_props(alice, bob, emu))
    with client_for(alice, emu) as kubectl:  # someone deletes the route by hand
        kubectl.delete_route("alice", "bob")
    gone = provider.read(link.id, link.outs)
    assert gone.id == "" and not gone.outs  # Pulumi drops it from the state on refresh
    assert "route alice-bob is gone; the next `pulumi up` creates it again" in caplog.text
    assert provider.create(link_props(alice, bob, emu)).outs["status"] == "Ready"
    with client_for(alice, emu) as kubectl:
        kubectl.delete_route("alice", "bob")
        kubectl.delete_domain("bob")
    assert provider.read(link.id, link.outs).id == ""
    assert "partner Domain bob is gone" in caplog.text
    again = provider.create(link_props(alice, bob, emu)).outs
    assert (again["domain_action"], again["route_action"], again["status"]) == ("created", "created", "Ready")


def test_emulated_read_reports_a_partner_domain_changed_out_of_band(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    provider = PartnerLinkProvider()
    wait_out(link_props(bob, alice, emu, timeout_seconds=0.5), emu)
    link = provider.create(link_props(alice, bob, emu))
    wrong = pki.cert_b64(pki.build_domain_cert(pki.generate_domain_key(), "bob"))
    with client_for(alice, emu) as kubectl:
        kubectl.update_partner_domain("bob", wrong)
    drifted = provider.read(link.id, link.outs).outs
    assert pki.same_public_key(drifted["partner_cert"], wrong)  # so the next `up` sees a change
    assert provider.diff(link.id, {**drifted, "status": "Ready"}, link_props(alice, bob, emu)).changes
    assert emu.wait_until(lambda: alice.routes()["alice-bob"]["status"] == "Failed")  # Kuscia notices too
    live = provider.read(link.id, link.outs).outs
    assert (
        live["status"] == "Failed" and "alice holds a stale or wrong certificate for bob" in live["diagnosis"]
    )
    fixed = provider.update(link.id, live, link_props(alice, bob, emu)).outs
    assert fixed["domain_action"] == "updated" and fixed["status"] == "Ready"


def test_emulated_delete_cleans_both_objects_and_tolerates_not_found(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    provider = PartnerLinkProvider()
    link = wait_out(link_props(alice, bob, emu, timeout_seconds=0.5), emu)
    assert "bob" in alice.domains() and "alice-bob" in alice.routes()
    start = len(emu.requests)
    provider.delete("alice-bob:all", link)
    assert "bob" not in alice.domains() and "alice-bob" not in alice.routes()
    assert api_paths(emu, "alice", start) == ["/api/v1/route/delete", "/api/v1/domain/delete"]
    provider.delete("alice-bob:all", link)  # second time: nothing there, no error


def test_emulated_node_whose_service_is_gone_reads_as_gone_and_deletes_cleanly(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    link = wait_out(link_props(alice, bob, emu, timeout_seconds=0.5), emu)
    moved = {**link, "namespace": "autonomy-old", "service": "kuscia-autonomy-old"}  # no such Service now
    provider = PartnerLinkProvider()
    assert provider.read("alice-bob:all", moved).id == ""
    provider.delete("alice-bob:all", moved)  # nothing reachable to delete: not an error


def test_emulated_phases_touch_only_their_object(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    domain_only = wait_out(link_props(alice, bob, emu, phase="domain"), emu)
    assert domain_only["status"] == "Ready" and "bob" in alice.domains() and "alice-bob" not in alice.routes()
    route = wait_out(link_props(alice, bob, emu, phase="route", timeout_seconds=0.5), emu)
    assert "domain_action" not in route and route["route_action"] == "created"
    PartnerLinkProvider().delete("r", route)
    assert "bob" in alice.domains() and "alice-bob" not in alice.routes()


# -- faults --------------------------------------------------------------------------------------


def test_emulated_5xx_bursts_are_retried(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    wait_out(link_props(bob, alice, emu, timeout_seconds=0.5), emu)
    alice.fail_next(3, status=503)
    client = client_for(alice, emu)
    assert reconcile(link_props(alice, bob, emu), client=client)["status"] == "Ready"
    assert client.calls >= 3 + 5  # the three failures were retried


def test_emulated_rejected_token_fails_at_once_without_the_token(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    with pytest.raises(Unauthorized) as err:
        PartnerLinkProvider().create(link_props(alice, bob, emu, token="not-the-token-not-the-token-0000"))
    assert str(err.value).startswith("token rejected")
    assert "not-the-token" not in str(err.value) and alice.token not in str(err.value)
    assert len(api_paths(emu, "alice")) == 1


def test_emulated_slow_responses_time_out_and_are_retried(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    wait_out(link_props(bob, alice, emu, timeout_seconds=0.5), emu)
    alice.delay_next(1, 1.5)
    client = client_for(alice, emu, request_timeout=0.5)
    assert reconcile(link_props(alice, bob, emu), client=client)["status"] == "Ready"


def test_emulated_node_restart_is_waited_out_with_progress(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    wait_out(link_props(bob, alice, emu, timeout_seconds=0.5), emu)
    alice.restart(downtime=1.0)
    messages: list[str] = []
    outs = reconcile(link_props(alice, bob, emu), client=client_for(alice, emu), progress=messages.append)
    assert outs["status"] == "Ready"
    # port-forward (the default) finds alice's pod not Ready while it restarts: said, and waited out
    assert any("alice: waiting for KusciaAPI to be healthy" in m and "PodNotReady" in m for m in messages)
    assert messages[-1] == "alice-bob: Ready"


def test_emulated_node_that_never_gets_healthy_fails_with_the_pod_commands(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    alice.restart(downtime=60)
    with pytest.raises(PeeringError) as err:
        wait_out(
            link_props(alice, bob, emu, health_timeout_seconds=1),
            emu,
            client=client_for(alice, emu, attempts=1),
        )
    assert "alice's KusciaAPI did not become healthy in time" in str(err.value)
    assert "kubectl -n autonomy-alice get pods" in str(err.value)


def test_emulated_partner_that_never_registers(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    outs = wait_out(link_props(alice, bob, emu, timeout_seconds=3), emu)
    assert outs["status"] == "WaitingForPartner" and outs["_elapsed"] <= 3 + peering.POLL_CAP_SECONDS
    with pytest.raises(PeeringError) as err:
        wait_out(link_props(alice, bob, emu, timeout_seconds=3, require_ready=True), emu)
    assert "route alice-bob not Ready after 3 s" in str(err.value) and "`pulumi up -s bob`" in str(err.value)


def test_emulated_partner_evidence_makes_waiting_definite(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    outs = wait_out(link_props(alice, bob, emu, timeout_seconds=2, partner_node=partner_node(bob)), emu)
    assert outs["status"] == "WaitingForPartner"
    assert "bob has not registered alice yet: its node has no partner Domain for alice" in outs["diagnosis"]


def test_emulated_wrong_cert_for_the_partner_fails_with_our_side_named(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    wait_out(link_props(bob, alice, emu, timeout_seconds=0.5), emu)
    wrong = pki.cert_b64(pki.build_domain_cert(pki.generate_domain_key(), "bob"))
    with pytest.raises(PeeringError) as err:
        wait_out(
            link_props(
                alice, bob, emu, partner_cert=wrong, timeout_seconds=10, partner_node=partner_node(bob)
            ),
            emu,
        )
    assert "alice holds a stale or wrong certificate for bob" in str(err.value)
    assert bob.routes()["bob-alice"]["status"] == "Failed"  # Kuscia agrees: no handshake either way


def test_emulated_partner_holding_our_stale_cert_fails_with_their_side_named(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    wait_out(link_props(bob, alice, emu, timeout_seconds=0.5), emu)  # bob registers alice's current key
    alice.rotate_key()  # then alice's key changes; bob still holds the old cert
    with pytest.raises(PeeringError) as err:
        wait_out(link_props(alice, bob, emu, timeout_seconds=10, partner_node=partner_node(bob)), emu)
    message = str(err.value)
    assert "bob holds a stale or wrong certificate for alice" in message
    assert "`pulumi stack output peeringBundle -s alice`" in message and "`pulumi up -s bob`" in message


def test_emulated_partner_unreachable_after_a_token_existed(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    provider = PartnerLinkProvider()
    wait_out(link_props(bob, alice, emu, timeout_seconds=0.5), emu)
    link = provider.create(link_props(alice, bob, emu))
    emu.set_unreachable("bob", True)
    assert emu.wait_until(lambda: alice.routes()["alice-bob"]["status"] == "Failed")
    live = provider.read(link.id, link.outs).outs
    assert live["status"] == "WaitingForPartner" and "Reason:DestinationUnreachable" in live["reason"]
    assert "bob's gateway at https://kuscia-autonomy-bob" in live["diagnosis"]
    assert "curl -kvvv" in live["diagnosis"] and "NetworkPolicies" in live["diagnosis"]
    emu.set_unreachable("bob", False)
    assert provider.update(link.id, live, link_props(alice, bob, emu)).outs["status"] == "Ready"


def test_emulated_partner_pod_down_is_found_by_the_gateway_probe(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    wait_out(link_props(bob, alice, emu, timeout_seconds=0.5), emu)
    bob.restart(downtime=60)  # bob's pod is not Ready: its Service has no endpoint
    outs = wait_out(link_props(alice, bob, emu, timeout_seconds=2), emu)
    assert outs["status"] == "WaitingForPartner"
    assert "the Kuscia pod is not Ready" in outs["diagnosis"]
    # Under port-forward the probe looks for bob's pod and finds it not Ready: nothing is dialled.
    looked = [r for r in emu.requests if r.path.startswith("/api/v1/namespaces/autonomy-bob/pods?")]
    assert looked and "app%3Dkuscia-autonomy-bob" in looked[-1].path
    assert not kusciaapi_calls(emu, "bob", port="1080")


def test_emulated_portforward_gateway_service_is_probed_through_the_pods_it_selects(
    emu: KusciaEmulator,
) -> None:
    """A NodePort/LB partner's in-cluster endpoint names its gateway Service, kuscia-gateway-<id>
    (node/manifests.py), which selects the node's pods by `app: kuscia-autonomy-<id>`: the
    port-forward must follow the Service's selector, not take its name for a label (review of #11)."""
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    host = "kuscia-gateway-bob.autonomy-bob.svc.cluster.local"
    emu.alias(host, 1080, "bob")
    selector = {"app": "kuscia-autonomy-bob"}
    emu.put_object("v1", "Service", "autonomy-bob", "kuscia-gateway-bob", {"spec": {"selector": selector}})
    outs = wait_out(
        link_props(alice, bob, emu, timeout_seconds=1, partner_endpoint=f"https://{host}:1080"), emu
    )
    assert outs["status"] == "WaitingForPartner"
    assert "not Ready" not in outs["diagnosis"] and "does not exist" not in outs["diagnosis"]
    looked = [r for r in emu.requests if r.path.startswith("/api/v1/namespaces/autonomy-bob/pods?")]
    assert looked and all("app%3Dkuscia-autonomy-bob" in r.path for r in looked)
    assert any(
        r.port == "1080" and r.via == "portforward" for r, _ in kusciaapi_calls(emu, "bob", port="1080")
    )


def test_emulated_protocol_mismatch_is_a_hard_error_before_any_call(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob", protocol="NOTLS")
    https_to_plain = "https://kuscia-autonomy-bob.autonomy-bob.svc.cluster.local:1080"
    with pytest.raises(PeeringError) as err:
        PartnerLinkProvider().create(link_props(alice, bob, emu, partner_endpoint=https_to_plain))
    assert "must start with http://" in str(err.value) and "kuscia#450" in str(err.value)
    assert not emu.requests


def test_emulated_bundle_of_another_domain_is_refused_before_any_call(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    with pytest.raises(PeeringError) as err:
        PartnerLinkProvider().create(link_props(alice, bob, emu, bundle_domain_id="carol"))
    assert "belongs to domain 'carol'" in str(err.value)
    broken = base64.b64encode(
        b"-----BEGIN CERTIFICATE-----\nnot a cert\n-----END CERTIFICATE-----\n"
    ).decode()
    with pytest.raises(PeeringError) as err:
        PartnerLinkProvider().create(link_props(alice, bob, emu, partner_cert=broken))
    assert "certificate in bob's peering bundle is unusable" in str(err.value)
    assert not emu.requests


def test_emulated_missing_bundle_waits_with_the_command_to_run(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    provider = PartnerLinkProvider()
    link = provider.create(link_props(alice, bob, emu, partner_cert=None, partner_endpoint=None))
    assert (
        link.outs["status"] == "WaitingForPartner"
        and "Run `pulumi up -s bob` first" in link.outs["diagnosis"]
    )
    assert provider.read(link.id, link.outs).outs["status"] == "WaitingForPartner"
    provider.delete(link.id, link.outs)  # nothing was made: nothing to remove, no error
    with pytest.raises(PeeringError):
        provider.create(
            link_props(alice, bob, emu, partner_cert=None, partner_endpoint=None, require_ready=True)
        )
    assert not [r for r in emu.requests if r.method == "POST"]


# -- secrets and auth ----------------------------------------------------------------------------------


def test_emulated_tls_sends_the_derived_token_and_notls_sends_none(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob", protocol="NOTLS")
    wait_out(link_props(alice, bob, emu, timeout_seconds=0.5), emu)
    PartnerLinkProvider().create(link_props(bob, alice, emu))
    tls = [r for r, _path in kusciaapi_calls(emu, "alice")]
    plain = [r for r, _path in kusciaapi_calls(emu, "bob")]
    assert tls and plain
    assert all(r.headers.get("Token") == pki.kusciaapi_token(alice.key_pem, "alice") for r in tls)
    assert all("Token" not in r.headers for r in plain)
    assert all(r.via == "portforward" for r in tls + plain)  # the default transport


def test_emulated_no_token_in_outputs_logs_stderr_or_the_pickled_provider(
    emu: KusciaEmulator,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(peering, "get_engine", lambda: None)  # as in a dynamic provider's own process
    caplog.set_level(logging.DEBUG)
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    provider = PartnerLinkProvider()
    alice.fail_next(1, status=503)  # a retry is logged too
    outs = provider.create(
        link_props(alice, bob, emu, timeout_seconds=0.5, partner_node=partner_node(bob))
    ).outs
    provider.read("alice-bob:all", outs)
    public = {k: v for k, v in outs.items() if k not in SECRET_OUTPUTS}
    stderr = capsys.readouterr().err
    assert "info: alice: partner Domain bob created" in stderr  # progress reaches the Pulumi CLI
    assert "warning: alice-bob is not Ready after 0 s" in stderr
    assert emu.bearer_token not in repr(outs)  # the kubeconfig's credential is read, never kept
    for token in (alice.token, bob.token, emu.bearer_token):
        assert token not in repr(public)
        assert token not in caplog.text and token not in stderr
        assert token not in base64.b64decode(serialize_provider(provider)).decode("latin-1")
    assert vars(provider) == {}  # nothing at all is kept on the provider object

"""KusciaAPI over port-forward end to end, against EMULATED nodes: NOTLS, TLS and MTLS with the
server certificate verified against the node's own CA as `kusciaapi` (kube/tls.py), the MTLS
client certificate minted from the domain key, and the seed's curl run inside our pod.

The emulated KusciaAPI presents a Kuscia-shaped kusciaapi-server.crt signed by the node's domain
key and, under MTLS, requires a client certificate chaining to its ca.crt (tests/emulator/
tls_server.py, README.md cites upstream); the emulated curl answers from the real recordings
(tests/emulator/curl.py). Peering runs through Pulumi programs under mocks with the dynamic
providers really running; verify against objects the API server serves back.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pulumi
import pytest

from kuscia_components.checks.verify import run_verify
from kuscia_components.config import ConfigError, PartyConfig, parse_party_config
from kuscia_components.core import kusciaapi_certs, pki
from kuscia_components.core.dsn import build_dsn, datastore_endpoint
from kuscia_components.kube.tls import for_node
from kuscia_components.node.component import AutonomyNode, AutonomyNodeArgs
from kuscia_components.offline.mocks import OfflineMocks, run_offline
from kuscia_components.peering import resource as peering
from kuscia_components.peering.client import KusciaApiClient, RetryPolicy, TlsFailed
from kuscia_components.peering.component import Peering, PeeringArgs
from kuscia_components.peering.provider import PartnerLinkProvider
from tests.emulator import EmulatedNode, KusciaEmulator, curl
from tests.helpers import check, deploy, link_props, target_of

LINK_TYPE = "pulumi-python:dynamic/kuscia:PartnerLink"
UNREACHABLE_DSN = datastore_endpoint(build_dsn("kuscia", "Unused-pw-123", "127.0.0.1", 9, "kuscia_alice"))
FAST = RetryPolicy(
    attempts=2, base_seconds=0.01, cap_seconds=0.02, request_timeout_seconds=3, budget_seconds=3
)

pytestmark = pytest.mark.usefixtures("quick_evidence")


def party(node: EmulatedNode, emu: KusciaEmulator, *, wait: float = 10, **extra: object) -> PartyConfig:
    values = {
        "domainId": node.domain_id,
        "protocol": node.protocol,
        "capacity": {"cpu": "2", "memory": "2Gi", "storage": "10Gi"},
        "domainKeyData": node.key_pem,
        "kubeContext": emu.context,
        "kubeconfig": emu.kubeconfig_path,
        **extra,
    }
    shaped = {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}
    cfg = parse_party_config(shaped, {"domainKeyData"})
    return dataclasses.replace(cfg, peering_timeout_seconds=wait)  # type: ignore[arg-type]


def run_pair(a: PartyConfig, b: PartyConfig) -> tuple[OfflineMocks, dict[str, Any]]:
    def program() -> None:
        pair = Peering(
            "pair",
            PeeringArgs(
                a=AutonomyNode(a.domain_id, AutonomyNodeArgs(a)),
                a_config=a,
                b=AutonomyNode(b.domain_id, AutonomyNodeArgs(b)),
                b_config=b,
            ),
        )
        pulumi.export("status", pair.status)

    mocks = OfflineMocks()
    return mocks, run_offline(program, mocks, stack="pair")


def kusciaapi_via(emu: KusciaEmulator) -> set[tuple[str, str]]:
    """(how, port) of every request that reached a node's KusciaAPI or gateway."""
    seen = {(r.via, str(r.port)) for r in emu.requests if r.via == "portforward"}
    seen |= {("proxy", str(r.port)) for r in emu.requests if r.via == "proxy" and "/proxy/" in r.path}
    return seen


def with_tls(props: dict[str, Any], node: EmulatedNode, *, key_pem: str | None = None) -> dict[str, Any]:
    """The node's KusciaAPI TLS material as the program passes it (node/component.py outputs)."""
    cert, key = kusciaapi_certs.build_client_cert(key_pem or node.key_pem, node.domain_id)
    ca = pki.build_domain_cert(key_pem or node.key_pem, node.domain_id)
    return {
        **props,
        "kusciaapi_ca_pem": ca,
        "kusciaapi_client_cert_pem": cert,
        "kusciaapi_client_key_pem": key,
    }


# -- peering ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["NOTLS", "TLS", "MTLS"])
def test_emulated_portforward_peering_is_ready_with_kusciaapi_verified(
    emu: KusciaEmulator, protocol: str
) -> None:
    alice, bob = emu.add_node("alice", protocol=protocol), emu.add_node("bob", protocol=protocol)
    mocks, outputs = run_pair(party(alice, emu), party(bob, emu))
    assert outputs["status"] == {"alice": "Ready", "bob": "Ready"}
    assert kusciaapi_via(emu) == {("portforward", "8082")}  # never the service proxy
    for link in mocks.of_type(LINK_TYPE):
        assert link.plain_state["kusciaapi_ca_pem"].startswith("-----BEGIN CERTIFICATE-----")
        assert link.is_secret("kusciaapi_client_key_pem")
        public = {k: v for k, v in link.state.items() if k not in peering.SECRET_OUTPUTS}
        key = link.plain_state["kusciaapi_client_key_pem"]
        assert key not in repr(public) and key not in link.plain_state["__provider"]


@pytest.mark.parametrize("protocol", ["TLS", "MTLS"])
def test_emulated_portforward_peering_refuses_a_node_running_another_key(
    emu: KusciaEmulator, protocol: str
) -> None:
    alice, bob = emu.add_node("alice", protocol=protocol), emu.add_node("bob", protocol=protocol)
    alice_cfg = party(alice, emu)
    alice.rotate_key()  # alice's pod now runs a key the stack does not hold: another CA
    with pytest.raises(TlsFailed) as err:
        run_pair(alice_cfg, party(bob, emu))
    assert err.value.kind == "node_ca_mismatch" and "does not chain to alice's CA" in str(err.value)
    assert not [r for r in emu.requests if r.via == "portforward" and r.node == "alice" and r.port == "8082"]


def test_emulated_mtls_kusciaapi_refuses_a_client_without_the_domains_certificate(
    emu: KusciaEmulator,
) -> None:
    bob = emu.add_node("bob", protocol="MTLS")
    ca = pki.build_domain_cert(bob.key_pem, "bob")
    no_cert = target_of(emu, "bob", tls=for_node("TLS", "bob", ca))  # verifies, presents nothing
    with pytest.raises(TlsFailed) as missing, KusciaApiClient(no_cert, retry=FAST) as client:
        client.health()
    assert missing.value.kind in ("client_cert_rejected", "tls")
    assert "client certificate" in str(missing.value)
    stranger_cert, stranger_key = kusciaapi_certs.build_client_cert(pki.generate_domain_key(), "bob")
    foreign = target_of(
        emu, "bob", protocol="MTLS", tls=for_node("MTLS", "bob", ca, stranger_cert, stranger_key)
    )
    with pytest.raises(TlsFailed) as refused, KusciaApiClient(foreign, retry=FAST) as client:
        client.health()
    assert "client certificate" in str(refused.value)
    assert not [r for r in emu.requests if r.via == "portforward" and r.port == "8082"]  # no request got in
    own_cert, own_key = kusciaapi_certs.build_client_cert(bob.key_pem, "bob")
    good = target_of(emu, "bob", protocol="MTLS", tls=for_node("MTLS", "bob", ca, own_cert, own_key))
    with KusciaApiClient(good, retry=FAST) as client:
        assert client.health() is True


def test_mtls_with_the_service_proxy_is_refused_at_config_time() -> None:
    values = {"domainId": "alice", "capacity": json.dumps({"cpu": "1", "memory": "1Gi", "storage": "1Gi"})}
    with pytest.raises(ConfigError) as err:
        parse_party_config({**values, "protocol": "MTLS", "kusciaApiTransport": "serviceProxy"})
    text = str(err.value)
    assert "kuscia:kusciaApiTransport" in text and "cannot present" in text and "portForward" in text
    assert parse_party_config({**values, "protocol": "MTLS"}).kusciaapi_transport == "portForward"
    assert parse_party_config({**values, "protocol": "TLS", "kusciaApiTransport": "serviceProxy"})


# -- verify ----------------------------------------------------------------------------------------


def verify_party(node: EmulatedNode, emu: KusciaEmulator, **extra: object) -> PartyConfig:
    values: dict[str, object] = {
        "domainId": node.domain_id,
        "protocol": node.protocol,
        "kubeContext": emu.context,
        "kubeconfig": emu.kubeconfig_path,
        "capacity": {"cpu": "1", "memory": "1Gi", "storage": "1Gi"},
        **extra,
    }
    shaped = {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}
    return parse_party_config(shaped, {"domainKeyData"})


@pytest.mark.parametrize("protocol", ["NOTLS", "TLS", "MTLS"])
def test_emulated_portforward_verify_checks_kusciaapi_and_the_gateway(
    emu: KusciaEmulator, protocol: str
) -> None:
    alice = emu.add_node("alice", protocol=protocol)
    cfg = verify_party(alice, emu)
    deploy(emu, alice, cfg, UNREACHABLE_DSN)
    report = run_verify(cfg)
    kusciaapi, gateway = check(report, "KusciaAPI"), check(report, "gateway")
    assert kusciaapi.status == "PASS" and gateway.status == "PASS", (kusciaapi, gateway)
    verified = "server certificate verified against alice's CA as 'kusciaapi'" in kusciaapi.detail
    assert verified == (protocol != "NOTLS")
    assert kusciaapi_via(emu) == {("portforward", "8082"), ("portforward", "1080")}


def test_emulated_mtls_verify_with_a_secret_of_another_key_fails_before_sending_the_token(
    emu: KusciaEmulator,
) -> None:
    alice = emu.add_node("alice", protocol="MTLS")
    cfg = verify_party(alice, emu)
    deploy(emu, alice, cfg, UNREACHABLE_DSN, key_pem=pki.generate_domain_key())
    result = check(run_verify(cfg), "KusciaAPI")
    assert result.status == "FAIL" and "does not chain to alice's CA" in result.detail
    assert not [r for r in emu.requests if r.via == "portforward" and r.port == "8082"]


# -- the in-pod probe ---------------------------------------------------------------------------------


def waiting_link(
    emu: KusciaEmulator, alice: EmulatedNode, bob: EmulatedNode, **changes: Any
) -> dict[str, Any]:
    """alice's link to bob, who never registers alice: WaitingForPartner after a short wait."""
    props = with_tls(link_props(alice, bob, emu, timeout_seconds=0.8, **changes), alice)
    return PartnerLinkProvider().create(props).outs


@pytest.mark.parametrize("protocol", ["TLS", "MTLS"])
def test_emulated_in_pod_probe_says_the_waiting_partners_gateway_answered(
    emu: KusciaEmulator, protocol: str
) -> None:
    alice, bob = emu.add_node("alice", protocol=protocol), emu.add_node("bob")
    curl.install(alice)
    outs = waiting_link(emu, alice, bob)
    assert outs["status"] == "WaitingForPartner"
    diagnosis = outs["diagnosis"]
    assert f"{bob.endpoint} answered from inside alice's pod (401 from a Kuscia gateway)" in diagnosis
    assert "So bob has not registered alice yet, or holds a stale certificate of alice" in diagnosis


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ("timeout", "did not accept a connection from inside our pod"),
        ("refused", "refused the connection from inside our pod"),
        ("dns", "host name does not resolve from inside our pod"),
        ("scheme", "does not speak the scheme the route uses"),
    ],
)
def test_emulated_in_pod_probe_says_why_the_partner_did_not_answer(
    emu: KusciaEmulator, fault: str, words: str
) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    curl.install(alice)
    changes: dict[str, Any] = {}
    if fault in ("timeout", "refused"):
        emu.set_unreachable("bob", True, how=fault)
    elif fault == "dns":
        changes["partner_endpoint"] = "https://bob.example.invalid:1080"
    else:  # bob's gateway speaks HTTPS; a NOTLS bundle says http://
        changes.update(partner_endpoint=bob.endpoint.replace("https://", "http://"), partner_protocol="NOTLS")
    try:
        outs = waiting_link(emu, alice, bob, **changes)
        diagnosis = outs["diagnosis"]
    except Exception as err:  # a protocol mismatch is hard: the link fails with the diagnosis
        assert fault == "scheme", err
        diagnosis = str(err)
    assert words in diagnosis
    assert f"{bob.domain_id}'s gateway did not answer" in diagnosis or fault == "scheme"


def test_emulated_in_pod_probe_is_skipped_cleanly_when_exec_is_forbidden(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    curl.install(alice)
    emu.deny("create", "pods/exec")
    outs = waiting_link(emu, alice, bob)
    assert outs["status"] == "WaitingForPartner" and "inside our pod" not in outs["diagnosis"]
    assert "curl -kvvv" in outs["diagnosis"]  # the check to run by hand instead


def test_emulated_in_pod_probe_is_a_verify_check_per_partner(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    curl.install(alice)
    cfg = verify_party(
        alice, emu, peers=[{"domainId": "bob", "stack": "bob"}, {"domainId": "carol", "stack": "carol"}]
    )
    deploy(emu, alice, cfg, UNREACHABLE_DSN)
    PartnerLinkProvider().create(with_tls(link_props(alice, bob, emu, timeout_seconds=0.3), alice))
    emu.set_unreachable("bob", True, how="timeout")
    report = run_verify(cfg)
    probe = check(report, "in-pod probe bob")
    assert probe.status == "FAIL" and "did not accept a connection from inside our pod" in probe.detail
    assert "allow-list" in probe.fix
    assert check(report, "in-pod probe carol").status == "SKIP"  # no route, no bundle: nothing to probe
    emu.set_unreachable("bob", False)
    assert check(run_verify(cfg), "in-pod probe bob").status == "PASS"


# -- preflight ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["NOTLS", "TLS", "MTLS"])
def test_emulated_portforward_preflight_asks_for_the_streams_and_makes_the_tls_material(
    emu: KusciaEmulator, protocol: str
) -> None:
    from kuscia_components.checks.preflight import run_preflight

    alice = emu.add_node("alice", protocol=protocol)
    report = run_preflight(verify_party(alice, emu, domainKeyData=alice.key_pem))
    assert check(report, "access pods/portforward").status == "PASS"
    assert check(report, "access pods/exec").status == "PASS"
    tls = check(report, "KusciaAPI TLS")
    assert tls.status == "PASS"
    assert ("verified against alice's CA as 'kusciaapi'" in tls.detail) == (protocol != "NOTLS")
    assert ("client certificate signed by the domain key" in tls.detail) == (protocol == "MTLS")
    emu.deny("create", "pods/portforward")
    denied = check(run_preflight(verify_party(alice, emu)), "access pods/portforward")
    assert denied.status == "FAIL" and "serviceProxy" in denied.fix


def test_emulated_tls_preflight_warns_that_the_service_proxy_does_not_verify(emu: KusciaEmulator) -> None:
    from kuscia_components.checks.preflight import run_preflight

    alice = emu.add_node("alice")
    report = run_preflight(verify_party(alice, emu, kusciaApiTransport="serviceProxy"))
    tls = check(report, "KusciaAPI TLS")
    assert tls.status == "WARN" and "does not verify" in tls.detail and "portForward" in tls.fix

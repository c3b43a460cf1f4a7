"""PartnerLink's inputs at preview: `check()` refuses a bundle that can never work, with the
input named and the rule, before any node is touched; `LinkProps` reads the engine's dicts."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from pulumi.runtime.rpc import UNKNOWN

from kuscia_components.node.passwords import GeneratedPasswordProvider, PasswordProps
from kuscia_components.peering.props import DEFAULT_TIMEOUT_SECONDS, LinkProps
from kuscia_components.peering.provider import PartnerLinkProvider

TOKEN = "secret-token-0123456789abcdef"
ENDPOINT = "https://kuscia-autonomy-bob.autonomy-bob.svc.cluster.local:1080"


def news(cert: str, **changes: Any) -> dict[str, Any]:
    """PartnerLink inputs as the engine hands them to check()."""
    props: dict[str, Any] = {
        "__provider": "pickled",
        "domain_id": "alice",
        "namespace": "autonomy-alice",
        "service": "kuscia-autonomy-alice",
        "protocol": "TLS",
        "token": TOKEN,
        "partner_domain_id": "bob",
        "bundle_domain_id": "bob",
        "partner_cert": cert,
        "partner_endpoint": ENDPOINT,
        "partner_protocol": "TLS",
        "phase": "all",
        "timeout_seconds": 300.0,
        "require_ready": False,
        "health_timeout_seconds": 300.0,
        "route_name": None,
        "status": None,
    }
    props.update(changes)
    return props


def failures(inputs: dict[str, Any]) -> dict[str, str]:
    result = PartnerLinkProvider().check({}, inputs)
    assert result.inputs == inputs  # inputs pass through as given
    reasons = {f.property: f.reason for f in result.failures}
    assert all(TOKEN not in reason for reason in reasons.values())
    return reasons


def test_check_passes_a_good_link_a_missing_bundle_and_unknowns(rsa_cert_b64: str) -> None:
    assert failures(news(rsa_cert_b64)) == {}
    assert (
        failures(news(rsa_cert_b64, partner_cert=None, partner_endpoint=None)) == {}
    )  # waits for the partner
    unknown = {
        k: UNKNOWN for k in ("partner_domain_id", "partner_cert", "partner_endpoint", "partner_protocol")
    }
    assert failures(news(rsa_cert_b64, **unknown)) == {}  # preview: the bundle is not computed yet
    assert failures(news(rsa_cert_b64, domain_id=UNKNOWN, protocol=UNKNOWN, timeout_seconds=UNKNOWN)) == {}


def test_check_refuses_a_bundle_of_another_domain(rsa_cert_b64: str) -> None:
    reasons = failures(news(rsa_cert_b64, bundle_domain_id="carol"))
    assert set(reasons) == {"bundle_domain_id"}
    assert (
        "belongs to domain 'carol'" in reasons["bundle_domain_id"]
        and "kuscia:peers" in reasons["bundle_domain_id"]
    )


def test_check_refuses_an_unusable_certificate(rsa_cert_b64: str) -> None:
    broken = base64.b64encode(
        b"-----BEGIN CERTIFICATE-----\nnot a cert\n-----END CERTIFICATE-----\n"
    ).decode()
    reasons = failures(news(rsa_cert_b64, partner_cert=broken))
    assert set(reasons) == {"partner_cert"}
    assert "certificate in bob's peering bundle is unusable" in reasons["partner_cert"]


def test_check_refuses_an_http_https_mismatch_and_a_bad_url(rsa_cert_b64: str) -> None:
    reasons = failures(news(rsa_cert_b64, partner_protocol="NOTLS"))
    assert (
        "must start with http://" in reasons["partner_endpoint"]
        and "kuscia#450" in reasons["partner_endpoint"]
    )
    reasons = failures(news(rsa_cert_b64, partner_endpoint="bob:1080"))
    assert "must be an http:// or https:// URL with a host" in reasons["partner_endpoint"]
    assert "e.g. https://" in reasons["partner_endpoint"]


def test_check_refuses_a_notls_partner_outside_the_cluster_unless_the_network_is_trusted(
    rsa_cert_b64: str,
) -> None:
    """A bundle read by StackReference gets the pasted partner's rule (config/exposure.py): our
    gateway would send route tokens to it in plain HTTP across a network not declared ours."""
    outside = news(rsa_cert_b64, partner_protocol="NOTLS", partner_endpoint="http://bob.example.com:1080")
    reason = failures(outside)["partner_endpoint"]
    assert "bob.example.com" in reason and "plain HTTP" in reason and "kuscia:trustedNetwork" in reason
    assert failures({**outside, "trusted_network": True}) == {}
    assert failures({**outside, "trusted_network": UNKNOWN}) == {}  # decided once known
    inside = "http://kuscia-autonomy-bob.autonomy-bob.svc.cluster.local:1080"
    assert failures(news(rsa_cert_b64, partner_protocol="NOTLS", partner_endpoint=inside)) == {}
    assert LinkProps.from_props({**outside, "trusted_network": True}).trusted_network is True
    assert LinkProps.from_props(outside).trusted_network is False  # older states: not trusted


def test_check_names_each_bad_setting_with_an_example(rsa_cert_b64: str) -> None:
    reasons = failures(
        news(rsa_cert_b64, domain_id=" ", namespace=None, protocol="SSL", phase="both", timeout_seconds=-1)
    )
    assert set(reasons) == {"domain_id", "namespace", "protocol", "phase", "timeout_seconds"}
    assert "non-empty string, e.g. 'alice'" in reasons["domain_id"]
    assert "e.g. 'autonomy-alice'" in reasons["namespace"]
    assert "TLS, NOTLS or MTLS" in reasons["protocol"] and "'SSL'" in reasons["protocol"]
    assert "all, domain, route" in reasons["phase"]
    assert ">= 0, e.g. 300" in reasons["timeout_seconds"]


def test_check_takes_mtls_with_a_client_key_over_port_forward_and_refuses_it_otherwise(
    rsa_cert_b64: str,
) -> None:
    material = {"kusciaapi_client_cert_pem": "cert", "kusciaapi_client_key_pem": "key"}
    assert failures(news(rsa_cert_b64, protocol="MTLS", **material)) == {}
    proxied = failures(news(rsa_cert_b64, protocol="MTLS", kusciaapi_transport="serviceProxy", **material))
    assert "service proxy cannot present" in proxied["kusciaapi_transport"]
    assert "kusciaApiTransport: portForward" in proxied["kusciaapi_transport"]
    assert (
        "client certificate and key"
        in failures(news(rsa_cert_b64, protocol="MTLS"))["kusciaapi_client_key_pem"]
    )


def test_link_props_defaults_round_trip_and_hide_secrets(rsa_cert_b64: str) -> None:
    link = LinkProps.from_props(
        news(rsa_cert_b64, timeout_seconds=None, health_timeout_seconds=None, phase=None)
    )
    assert link.timeout_seconds == DEFAULT_TIMEOUT_SECONDS and link.health_timeout == DEFAULT_TIMEOUT_SECONDS
    assert link.phase == "all" and link.link_id == "alice-bob:all" and link.route_name == "alice-bob"
    assert LinkProps.from_props(link.to_props()) == link
    assert "__provider" not in link.to_props() and "status" not in link.to_props()
    assert TOKEN not in repr(LinkProps.from_props(news(rsa_cert_b64, partner_node={"token": TOKEN})))
    short = LinkProps.from_props(news(rsa_cert_b64, timeout_seconds=5.0, health_timeout_seconds=0))
    assert short.health_timeout == 5.0  # unset health timeout follows the link's
    preview = LinkProps.from_props(news(rsa_cert_b64, timeout_seconds=UNKNOWN, require_ready=UNKNOWN))
    assert preview.timeout_seconds == DEFAULT_TIMEOUT_SECONDS and preview.require_ready is False


def test_diff_is_typed_so_engine_floats_and_defaults_are_no_change(rsa_cert_b64: str) -> None:
    olds = {**news(rsa_cert_b64), "status": "Ready"}
    provider = PartnerLinkProvider()
    assert not provider.diff("x", olds, news(rsa_cert_b64, timeout_seconds=300)).changes
    assert not provider.diff("x", {**olds, "phase": None}, news(rsa_cert_b64)).changes
    assert provider.diff("x", olds, news(rsa_cert_b64, partner_endpoint=UNKNOWN)).changes


def test_diff_updates_a_link_whose_state_lacks_the_kusciaapi_ca_so_refresh_can_verify(
    rsa_cert_b64: str,
) -> None:
    olds = {**news(rsa_cert_b64), "status": "Ready"}  # a state from before the TLS inputs
    material = {
        "kusciaapi_ca_pem": "ca",
        "kusciaapi_client_cert_pem": "cert",
        "kusciaapi_client_key_pem": "k",
    }
    provider = PartnerLinkProvider()
    diff = provider.diff("x", olds, news(rsa_cert_b64, **material))
    assert diff.changes and diff.replaces == []  # an update in place: no Domain or route is remade
    assert not provider.diff("x", {**olds, **material}, news(rsa_cert_b64, **material)).changes


def test_password_check_names_the_rule_and_props_read_engine_values() -> None:
    provider = GeneratedPasswordProvider()
    good = {"purpose": "db", "length": 32.0, "keepers": None, "result": None}
    assert provider.check({}, good).failures == []
    assert provider.check({}, {**good, "length": UNKNOWN, "keepers": UNKNOWN}).failures == []
    (failure,) = provider.check({}, {**good, "length": 8}).failures
    assert failure.property == "length" and "16-128" in failure.reason and "Example: 32" in failure.reason
    (failure,) = provider.check({}, {**good, "keepers": "rotation=1"}).failures
    assert failure.property == "keepers" and "e.g." in failure.reason
    assert PasswordProps.from_props(good) == PasswordProps(purpose="db", length=32, keepers={})
    assert provider.diff("id", {**good, "keepers": {}}, {**good, "keepers": UNKNOWN}).replaces == ["keepers"]


@pytest.mark.parametrize("phase", ["domain", "route", "all"])
def test_every_link_phase_reads_back(rsa_cert_b64: str, phase: str) -> None:
    assert LinkProps.from_props(news(rsa_cert_b64, phase=phase)).link_id == f"alice-bob:{phase}"


def test_pure_modules_do_not_import_pulumi() -> None:
    """network/spec.py takes PeeringBundle from peering/bundle.py: planning never loads Pulumi."""
    import subprocess
    import sys

    modules = (
        "kuscia_components.peering.bundle",
        "kuscia_components.core.status",
        "kuscia_components.core.poll",
    )
    code = f"import sys; import {', '.join(modules)}, kuscia_components.network.planner; print('pulumi' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"

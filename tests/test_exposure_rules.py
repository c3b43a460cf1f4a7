"""What a node exposes and what Kubernetes would refuse, caught before anything touches a cluster.

- NOTLS beyond the cluster (a NodePort/LoadBalancer Service, or a publicEndpoint that is not a
  Service DNS name) is refused unless `trustedNetwork` says the network is trusted; the stack-file
  path (`kuscia-p2p check`, exit 2) and the network spec path apply the same rule.
- Kubernetes refuses zone-scoped IPv6 in a NetworkPolicy ipBlock (pkg/apis/networking/validation
  ValidateIPBlock parses with k8s.io/utils/net ParseCIDRSloppy, i.e. Go's net.ParseCIDR, which has
  no zones), and Kuscia's ClusterDomainRoute CRD (crds/v1alpha1/kuscia.secretflow_clusterdomainroutes.yaml,
  spec.endpoint.host `pattern`) takes only an IPv4 address or a DNS name as a route's host.
- k8s.io/apimachinery pkg/api/validation/objectmeta.go TotalAnnotationSizeLimitB: 256 KiB over
  len(key)+len(value) of one object's annotations.
- A loopback database endpoint is the Kuscia pod itself (kuscia#721).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kuscia_components.config import ConfigError, PartyConfig, config_warnings, parse_party_config
from kuscia_components.config.exposure import ANNOTATIONS_LIMIT_BYTES, in_cluster_host
from kuscia_components.core.hostport import has_zone, is_loopback_host
from kuscia_components.network.spec import NetworkSpec, NetworkSpecError, PartySpec

ROOT = Path(__file__).resolve().parents[1]
CAPACITY = {"cpu": "4", "memory": "4Gi", "storage": "100Gi"}
EXTERNAL = {"mode": "external", "adminUser": "root"}


def parse(secret: tuple[str, ...] = (), **values: object) -> PartyConfig:
    base: dict[str, object] = {"domainId": "alice", "capacity": CAPACITY, **values}
    shaped = {k: v if isinstance(v, str) else json.dumps(v) for k, v in base.items()}
    return parse_party_config(shaped, set(secret))


def problems(secret: tuple[str, ...] = (), **values: object) -> dict[str, str]:
    with pytest.raises(ConfigError) as err:
        parse(secret, **values)
    assert all(p.rule and p.example for p in err.value.problems)
    return {p.setting: str(p) for p in err.value.problems}


# -- NOTLS beyond the cluster -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["LoadBalancer", "NodePort", "nodeport"])
def test_notls_with_an_exposed_service_is_refused_naming_the_risk_and_the_fix(kind: str) -> None:
    found = problems(protocol="NOTLS", service={"type": kind})
    assert list(found) == ["kuscia:service.type"]
    line = found["kuscia:service.type"]
    assert "plain HTTP" in line and "replay" in line  # the risk
    assert "protocol TLS" in line and "kuscia:trustedNetwork true" in line  # the fixes


@pytest.mark.parametrize(
    "endpoint", ["http://203.0.113.10:31080", "http://gw.example.com", "http://kuscia.svc.example.com:1080"]
)
def test_notls_with_a_public_endpoint_outside_the_cluster_is_refused(endpoint: str) -> None:
    found = problems(protocol="NOTLS", publicEndpoint=endpoint)
    assert (
        list(found) == ["kuscia:publicEndpoint"] and "outside the cluster" in found["kuscia:publicEndpoint"]
    )


def test_notls_with_both_reports_both() -> None:
    found = problems(protocol="NOTLS", service={"type": "LoadBalancer"}, publicEndpoint="http://203.0.113.10")
    assert set(found) == {"kuscia:service.type", "kuscia:publicEndpoint"}


@pytest.mark.parametrize(
    "endpoint",
    [
        None,  # the default, kuscia-autonomy-alice.autonomy-alice.svc.cluster.local
        "http://kuscia-autonomy-alice.autonomy-alice.svc:1080",
        "http://gw.autonomy-alice.svc.cluster.local.:1080/p",
    ],
)
def test_notls_inside_the_cluster_is_accepted(endpoint: str | None) -> None:
    values = {"publicEndpoint": endpoint} if endpoint else {}
    assert parse(protocol="NOTLS", **values).protocol == "NOTLS"


def test_a_trusted_network_allows_notls_beyond_the_cluster_and_says_so() -> None:
    cfg = parse(
        protocol="NOTLS",
        service={"type": "LoadBalancer"},
        publicEndpoint="http://203.0.113.10:31080",
        trustedNetwork="true",
    )
    assert cfg.trusted_network is True
    assert any("trustedNetwork is true" in w for w in config_warnings(cfg))


def test_tls_beyond_the_cluster_needs_no_trust() -> None:
    cfg = parse(service={"type": "LoadBalancer"}, publicEndpoint="https://203.0.113.10:31080")
    assert cfg.trusted_network is False and cfg.protocol == "TLS"


def test_trusted_network_must_be_a_boolean_and_is_not_guessed() -> None:
    found = problems(protocol="NOTLS", service={"type": "LoadBalancer"}, trustedNetwork="maybe")
    assert list(found) == ["kuscia:trustedNetwork"]  # its own problem; the exposure rule waits for it


@pytest.mark.parametrize(
    ("host", "inside"),
    [
        ("a.b.svc", True),
        ("a.b.svc.cluster.local", True),
        ("A.B.SVC.", True),
        ("b.svc", False),  # no namespace
        ("svc.cluster.local", False),
        ("a.b.svc.example.com", False),  # could be a public name
        ("10.96.0.10", False),
        ("gw.example.com", False),
    ],
)
def test_what_counts_as_a_cluster_local_name(host: str, inside: bool) -> None:
    assert in_cluster_host(host) is inside


def test_check_exits_2_for_notls_behind_a_load_balancer(tmp_path: Path) -> None:
    stack = tmp_path / "Pulumi.exposed.yaml"
    stack.write_text(
        "config:\n  kuscia:domainId: alice\n  kuscia:protocol: NOTLS\n  kuscia:service:\n    type: LoadBalancer\n"
        "  kuscia:capacity: {cpu: '4', memory: 4Gi, storage: 100Gi}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "kuscia_components", "check", "--config", str(stack)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "kuscia:service.type" in done.stderr and "trustedNetwork" in done.stderr
    assert "Traceback" not in done.stderr
    trusted = stack.read_text() + "  kuscia:trustedNetwork: true\n"
    stack.write_text(trusted)
    again = subprocess.run(
        [sys.executable, "-m", "kuscia_components", "check", "--config", str(stack)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert again.returncode == 0, again.stdout + again.stderr


def _network(**carol: object) -> NetworkSpec:
    defaults = {"capacity": CAPACITY, "database": {"mode": "in-cluster"}}
    parties = [
        PartySpec.from_settings({"domainId": "alice", **defaults}),
        PartySpec.from_settings({"domainId": "carol", **defaults, **carol}),
    ]
    return NetworkSpec(parties=tuple(parties))


def test_the_network_spec_applies_the_same_rule() -> None:
    exposed = _network(protocol="NOTLS", service={"type": "NodePort"})
    with pytest.raises(NetworkSpecError) as err:
        exposed.validate()
    assert [p.setting for p in err.value.problems] == ["parties[1] (carol) kuscia:service.type"]
    _network(protocol="NOTLS", service={"type": "NodePort"}, trustedNetwork=True).validate()
    _network(protocol="NOTLS").validate()


# -- addresses Kubernetes refuses ---------------------------------------------------------------


@pytest.mark.parametrize("cidr", ["fe80::%eth0/64", "fe80::1%eth0", "fe80::1%25eth0/128"])
def test_zone_scoped_ipv6_in_kusciaapifrom_is_refused(cidr: str) -> None:
    found = problems(networkPolicy={"kusciaApiFrom": ["10.0.0.0/8", cidr]})
    assert list(found) == ["kuscia:networkPolicy.kusciaApiFrom[1]"]
    assert "zone" in found["kuscia:networkPolicy.kusciaApiFrom[1]"]


def test_ipv6_ranges_without_zones_stay_accepted_in_kusciaapifrom() -> None:
    cfg = parse(networkPolicy={"kusciaApiFrom": ["fe80::/64", "2001:db8::1"]})
    assert cfg.network_policy.kusciaapi_from == ("fe80::/64", "2001:db8::1/128")


@pytest.mark.parametrize(
    ("endpoint", "zone"),
    [
        ("https://[2001:db8::1]:31080", False),
        ("https://[fe80::1%eth0]:31080", True),
        ("https://[fe80::1%25eth0]:31080", True),
    ],
)
def test_ipv6_public_endpoints_are_refused_because_a_route_host_cannot_hold_one(
    endpoint: str, zone: bool
) -> None:
    found = problems(publicEndpoint=endpoint)
    line = found["kuscia:publicEndpoint"]
    assert list(found) == ["kuscia:publicEndpoint"] and "IPv4 address or a DNS name" in line
    assert ("zone" in line) is zone


def test_a_partners_ipv6_endpoint_is_refused_too(rsa_cert_b64: str) -> None:
    peer = {
        "domainId": "bob",
        "endpoint": "https://[fe80::1%eth0]:1080",
        "cert": rsa_cert_b64,
        "protocol": "TLS",
    }
    found = problems(peers=[peer])
    assert list(found) == ["kuscia:peers[0].endpoint"] and "zone" in found["kuscia:peers[0].endpoint"]


def test_annotations_over_kubernetes_total_limit_are_refused_in_bytes() -> None:
    name = "example.com/blob"
    fits = "x" * (ANNOTATIONS_LIMIT_BYTES - len(name))
    assert (
        parse(service={"type": "LoadBalancer", "annotations": {name: fits}}).service.annotations[name] == fits
    )
    over = "é" * ((ANNOTATIONS_LIMIT_BYTES - len(name)) // 2 + 1)  # fewer characters, more bytes
    found = problems(service={"type": "LoadBalancer", "annotations": {name: over}})
    assert list(found) == ["kuscia:service.annotations"] and "256 KiB" in found["kuscia:service.annotations"]
    assert over not in found["kuscia:service.annotations"]  # the 256 KiB value is not echoed whole


def test_a_300_kb_annotation_is_refused_quickly() -> None:
    found = problems(service={"type": "NodePort", "annotations": {"a": "v" * 300_000}})
    assert "exceed 262144 bytes" in found["kuscia:service.annotations"]


# -- a database at the pod itself -----------------------------------------------------------------


@pytest.mark.parametrize(
    "database",
    [
        {"endpoint": "localhost:3306"},
        {"endpoint": "LOCALHOST.:3306"},
        {"endpoint": "db.localhost:3306"},
        {"endpoint": "127.0.0.1:3306"},
        {"endpoint": "127.8.9.10"},
        {"endpoint": "[::1]:3306"},
        {"endpoint": "[::ffff:127.0.0.1]:3306"},
        {"endpoint": "0.0.0.0:3306"},
        {"host": "localhost", "port": 3306},
    ],
)
def test_a_loopback_database_endpoint_is_refused_with_the_reason(database: dict[str, object]) -> None:
    found = problems(
        ("databaseAdminPassword",), database={**EXTERNAL, **database}, databaseAdminPassword="pw"
    )
    assert len(found) == 1, found
    ((setting, line),) = found.items()
    assert setting in ("kuscia:database.endpoint", "kuscia:database.host")
    assert "the pod itself" in line and "kuscia#721" in line


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True), ("127.0.0.53", True), ("::1", True), ("::ffff:127.0.0.1", True), ("::", True),
        ("0.0.0.0", True), ("x.localhost.", True), ("localhost.example.com", False), ("10.0.0.1", False),
        ("2001:db8::1", False), ("mysql", False),
    ],
)  # fmt: skip
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_has_zone() -> None:
    assert has_zone("fe80::1%eth0") and has_zone("fe80::%1/64")
    assert not has_zone("fe80::1") and not has_zone("10.0.0.0/8")


def test_network_plan_exits_2_for_a_notls_party_behind_a_load_balancer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from kuscia_components.cli.main import main

    spec = tmp_path / "network.yaml"
    spec.write_text(
        "name: demo\ntopology: mesh\n"
        "defaults: {capacity: {cpu: '4', memory: 4Gi, storage: 100Gi}, database: {mode: in-cluster}}\n"
        "parties:\n  - domainId: alice\n"
        "  - {domainId: carol, protocol: NOTLS, service: {type: LoadBalancer}}\n"
    )
    assert main(["network", "plan", "--spec", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "(carol) kuscia:service.type" in err and "trustedNetwork" in err
    spec.write_text(
        spec.read_text().replace("type: LoadBalancer}", "type: LoadBalancer}, trustedNetwork: true")
    )
    assert main(["network", "plan", "--spec", str(spec)]) == 0

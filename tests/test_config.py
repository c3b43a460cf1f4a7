"""Config rules: every rejected value names the setting, the rule and a good example."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kuscia_components import pki
from kuscia_components.config import ConfigError, parse_party_config
from kuscia_components.stackfile import StackFileError, find_stack_file, load_stack_file

ROOT = Path(__file__).resolve().parent.parent
CAPACITY = json.dumps({"cpu": "4", "memory": "4Gi", "storage": "100Gi"})


def parse(secret: tuple[str, ...] = (), **values: object):
    base: dict[str, object] = {"domainId": "alice", "capacity": CAPACITY}
    base.update(values)
    return parse_party_config({k: v for k, v in base.items() if v is not None}, set(secret))


def problems(secret: tuple[str, ...] = (), **values: object) -> dict[str, str]:
    with pytest.raises(ConfigError) as err:
        parse(secret, **values)
    return {p.setting: str(p) for p in err.value.problems}


def test_defaults_follow_the_seed_and_design() -> None:
    cfg = parse()
    assert cfg.namespace == "autonomy-alice"
    assert cfg.protocol == "TLS" and cfg.runtime == "runk"
    assert cfg.public_endpoint == "https://kuscia-autonomy-alice.autonomy-alice.svc.cluster.local:1080"
    assert cfg.database.mode == "in-cluster" and cfg.database.name == "kuscia_alice"
    assert cfg.image.endswith(":1.1.0b0")
    assert cfg.peering_timeout_seconds == 300 and cfg.require_peer_ready is False


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("Alice", "RFC 1123"),
        ("-alice", "RFC 1123"),
        ("a" * 64, "RFC 1123"),
        ("alice.bob", "RFC 1123"),
        ("master", "reserved"),
        ("kube-system", "reserved"),
        ("cross-domain", "reserved"),
    ],
)
def test_domain_id_rules(value: str, fragment: str) -> None:
    found = problems(domainId=value)
    assert fragment in found["kuscia:domainId"] and "Example: alice" in found["kuscia:domainId"]


def test_missing_domain_id_is_reported() -> None:
    with pytest.raises(ConfigError) as err:
        parse_party_config({"capacity": CAPACITY})
    assert "kuscia:domainId" in str(err.value) and "required" in str(err.value)


def test_protocol_any_case_is_written_uppercase_and_mtls_is_not_supported_yet() -> None:
    assert parse(protocol="notls").protocol == "NOTLS"
    assert parse(protocol="Tls").protocol == "TLS"
    assert "not supported yet" in problems(protocol="mtls")["kuscia:protocol"]
    assert "one of NOTLS, TLS" in problems(protocol="ssl")["kuscia:protocol"]


def test_notls_default_endpoint_is_http() -> None:
    assert parse(protocol="NOTLS").public_endpoint.startswith("http://")


@pytest.mark.parametrize(
    ("endpoint", "protocol", "fragment"),
    [
        ("http://1.2.3.4:1080", "TLS", "must use https://"),
        ("https://1.2.3.4:1080", "NOTLS", "must use http://"),
        ("ftp://host", "TLS", "http:// or https://"),
        ("https://", "TLS", "with a host"),
        ("https://host:1080/?x=1", "TLS", "query"),
        ("https://host:99999", "TLS", "port"),
    ],
)
def test_public_endpoint_rules(endpoint: str, protocol: str, fragment: str) -> None:
    assert fragment in problems(publicEndpoint=endpoint, protocol=protocol)["kuscia:publicEndpoint"]


def test_public_endpoint_with_path_prefix_is_accepted() -> None:
    assert parse(publicEndpoint="https://gw.example.com:443/kuscia").public_endpoint.endswith("/kuscia")


@pytest.mark.parametrize("image", ["kuscia", "registry/kuscia:latest", "registry:5000/kuscia"])
def test_image_needs_a_pinned_tag_or_digest(image: str) -> None:
    assert "kuscia:image" in problems(image=image)


def test_image_with_digest_or_registry_port_and_tag_is_fine() -> None:
    assert parse(image="registry:5000/kuscia@sha256:" + "a" * 64).image.startswith("registry:5000")
    assert parse(image="registry:5000/kuscia:1.1.0b0").image == "registry:5000/kuscia:1.1.0b0"


def test_capacity_required_for_runk_and_not_for_runp() -> None:
    with pytest.raises(ConfigError) as err:
        parse_party_config({"domainId": "alice"})
    assert "kuscia:capacity" in str(err.value)
    assert parse_party_config({"domainId": "alice", "runtime": "runp"}).capacity is None


@pytest.mark.parametrize("bad", ["4 cores", "-1", "1.5.2", "Gi"])
def test_capacity_quantities_are_kubernetes_quantities(bad: str) -> None:
    capacity = json.dumps({"cpu": bad, "memory": "4Gi", "storage": "100Gi"})
    assert "Kubernetes quantity" in problems(capacity=capacity)["kuscia:capacity.cpu"]


def test_capacity_accepts_numbers_from_yaml_and_suffixes() -> None:
    cfg = parse(
        capacity=json.dumps({"cpu": 4, "memory": "512Mi", "storage": "1e3", "ephemeralStorage": "200Gi"})
    )
    assert cfg.capacity is not None and cfg.capacity.cpu == "4" and cfg.capacity.storage == "1e3"


def test_runc_is_refused_with_the_reason() -> None:
    assert "privileged" in problems(runtime="runc")["kuscia:runtime"]


@pytest.mark.parametrize("name", ["kuscia-alice", "a" * 65, "kuscia alice", ""])
def test_database_name_rule(name: str) -> None:
    found = problems(database=json.dumps({"name": name}))
    assert "kuscia:database.name" in found


def test_external_database_needs_endpoint_admin_user_and_secret_password() -> None:
    found = problems(database=json.dumps({"mode": "external"}))
    assert {"kuscia:database.endpoint", "kuscia:database.adminUser", "kuscia:databaseAdminPassword"} <= set(
        found
    )
    plain = problems(database=json.dumps({"mode": "external", "endpoint": "db:3306", "adminUser": "root"}),
                     databaseAdminPassword="hunter2hunter2")  # fmt: skip
    assert "must be set as a secret" in plain["kuscia:databaseAdminPassword"]
    assert "hunter2" not in json.dumps(plain)


def test_external_database_parses_endpoint_and_keeps_password_out_of_repr() -> None:
    cfg = parse(
        ("databaseAdminPassword",),
        database=json.dumps({"mode": "external", "endpoint": "[::1]:3307", "adminUser": "root"}),
        databaseAdminPassword="s3cret-value",
    )
    assert (cfg.database.host, cfg.database.port, cfg.database.admin_user) == ("::1", 3307, "root")
    assert cfg.database.admin_password == "s3cret-value"
    assert "s3cret-value" not in repr(cfg)


def test_unknown_keys_get_did_you_mean_at_every_level() -> None:
    found = problems(domainID="alice", service=json.dumps({"typ": "NodePort"}))
    assert "did you mean 'domainId'" in found["kuscia:domainID"]
    assert "did you mean 'type'" in found["kuscia:service.typ"]


def test_wrong_types_are_reported_with_the_expected_type() -> None:
    found = problems(capacity="4", peeringTimeoutSeconds="soon", requirePeerReady="yes",
                     service=json.dumps({"type": 5}))  # fmt: skip
    assert "must be an object" in found["kuscia:capacity"]
    assert "whole number" in found["kuscia:peeringTimeoutSeconds"]
    assert "true or false" in found["kuscia:requirePeerReady"]
    assert "must be a string" in found["kuscia:service.type"]


def test_empty_values_are_rejected() -> None:
    assert "must not be empty" in problems(namespace="  ")["kuscia:namespace"]


def test_all_problems_are_reported_together() -> None:
    with pytest.raises(ConfigError) as err:
        parse(domainId="Bad_ID", protocol="mtls", image="kuscia:latest", peeringTimeoutSeconds="5")
    settings = {p.setting for p in err.value.problems}
    assert settings >= {"kuscia:domainId", "kuscia:protocol", "kuscia:image", "kuscia:peeringTimeoutSeconds"}


def test_service_node_port_only_for_nodeport_and_in_range() -> None:
    assert "only applies" in problems(service=json.dumps({"nodePort": 31080}))["kuscia:service.nodePort"]
    assert (
        "from 30000 to 32767"
        in problems(service=json.dumps({"type": "NodePort", "nodePort": 80}))["kuscia:service.nodePort"]
    )
    cfg = parse(service=json.dumps({"type": "NodePort", "nodePort": 31080}))
    assert cfg.service.node_port == 31080


def test_network_policy_cidrs_are_validated() -> None:
    found = problems(networkPolicy=json.dumps({"kusciaApiFrom": ["10.0.0.1/24", "nope"]}))
    assert "kuscia:networkPolicy.kusciaApiFrom" in found
    cfg = parse(networkPolicy=json.dumps({"kusciaApiFrom": ["172.18.0.2/32"]}))
    assert cfg.network_policy.kusciaapi_from == ("172.18.0.2/32",)


# -- domainKeyData -------------------------------------------------------------------------------


def test_supplied_key_is_normalised_to_pkcs1_and_must_be_secret(rsa_key_pem: str) -> None:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(rsa_key_pem.encode(), None)
    pkcs8 = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode()  # fmt: skip
    cfg = parse(("domainKeyData",), domainKeyData=pki.domain_key_data(pkcs8))
    assert cfg.domain_key_data is not None and cfg.domain_key_data.startswith(
        "-----BEGIN RSA PRIVATE KEY-----"
    )
    found = problems(domainKeyData=pkcs8)
    assert "must be set as a secret" in found["kuscia:domainKeyData"]
    assert "PRIVATE KEY" not in found["kuscia:domainKeyData"].split("Example")[0].split("(")[0]


def test_bad_supplied_key_never_echoes_the_value() -> None:
    secret_junk = "c2VjcmV0LWp1bmstdmFsdWUtMTIzNDU="
    with pytest.raises(ConfigError) as err:
        parse(("domainKeyData",), domainKeyData=secret_junk)
    assert secret_junk not in str(err.value)
    assert "RSA private key of at least 2048 bits" in str(err.value)


# -- peers -----------------------------------------------------------------------------------


def test_peers_by_stack_and_inline(rsa_cert_b64: str) -> None:
    peers = json.dumps(
        [
            {"domainId": "bob", "stack": "bob"},
            {
                "domainId": "carol",
                "endpoint": "http://203.0.113.9:31080",
                "cert": rsa_cert_b64,
                "protocol": "notls",
            },
        ]
    )
    cfg = parse(peers=peers)
    assert [p.domain_id for p in cfg.peers] == ["bob", "carol"]
    assert cfg.peers[1].protocol == "NOTLS"


@pytest.mark.parametrize(
    ("peer", "fragment"),
    [
        ({"domainId": "alice", "stack": "alice"}, "own domain ID"),
        ({"domainId": "bob"}, "needs stack, or all of endpoint, cert and protocol"),
        ({"domainId": "bob", "stack": "bob", "protocol": "TLS"}, "not both"),
        (
            {"domainId": "bob", "endpoint": "http://h:1080", "cert": "CERT", "protocol": "TLS"},
            "must use https://",
        ),
        (
            {"domainId": "bob", "endpoint": "https://h:1080", "cert": "bm90LWEtY2VydA==", "protocol": "TLS"},
            "X.509",
        ),
    ],
)
def test_peer_rules(peer: dict[str, str], fragment: str, rsa_cert_b64: str) -> None:
    if peer.get("cert") == "CERT":
        peer = {**peer, "cert": rsa_cert_b64}
    with pytest.raises(ConfigError) as err:
        parse(peers=json.dumps([peer]))
    assert fragment in str(err.value)


def test_duplicate_peers_are_rejected() -> None:
    with pytest.raises(ConfigError) as err:
        parse(peers=json.dumps([{"domainId": "bob", "stack": "bob"}, {"domainId": "bob", "stack": "bob2"}]))
    assert "listed twice" in str(err.value)


def test_route_name_collisions_are_detected() -> None:
    # Route a -> x-a and route a-x -> a are both named "a-x-a" in Kuscia.
    with pytest.raises(ConfigError) as err:
        parse(
            domainId="a",
            peers=json.dumps([{"domainId": "x-a", "stack": "x"}, {"domainId": "a-x", "stack": "y"}]),
        )
    assert "would both be named" in str(err.value)


# -- stack files ---------------------------------------------------------------------------------


def test_committed_stack_files_parse_clean() -> None:
    for stack in ("alice", "bob"):
        stack_file = load_stack_file(find_stack_file(stack, ROOT))
        cfg = parse_party_config(stack_file.values, stack_file.secret_keys)
        other = "bob" if stack == "alice" else "alice"
        assert cfg.domain_id == stack and [p.stack for p in cfg.peers] == [other]


def test_stack_file_values_are_converted_like_the_pulumi_cli(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text(
        "config:\n  kuscia:domainId: x1\n  kuscia:requirePeerReady: true\n  kuscia:peeringTimeoutSeconds: 60\n"
        "  kuscia:capacity: {cpu: 4, memory: 4Gi, storage: 10Gi}\n  kubernetes:context: kind\n"
        "  kuscia:databaseAdminPassword:\n    secure: v1:abcdef\n"
    )
    stack_file = load_stack_file(path)
    assert (
        stack_file.values["requirePeerReady"] == "true" and stack_file.values["peeringTimeoutSeconds"] == "60"
    )
    assert json.loads(stack_file.values["capacity"]) == {"cpu": 4, "memory": "4Gi", "storage": "10Gi"}
    assert stack_file.encrypted_keys == {"databaseAdminPassword"}
    assert stack_file.other_config == {"kubernetes:context": "kind"}
    assert any("encrypted" in w for w in stack_file.warnings)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("config: [1, 2]\n", "must be a mapping"),
        ("config:\n  a: [\n", "not valid YAML"),
        ("- 1\n", "YAML mapping"),
    ],
)
def test_malformed_stack_files_are_clear_errors(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "Pulumi.bad.yaml"
    path.write_text(text)
    with pytest.raises(StackFileError) as err:
        load_stack_file(path)
    assert fragment in str(err.value)


def test_missing_stack_file_lists_what_exists() -> None:
    with pytest.raises(StackFileError) as err:
        find_stack_file("carol", ROOT)
    assert "Pulumi.alice.yaml" in str(err.value) and "pulumi stack init" in str(err.value)

"""Config rules: every rejected value names the setting, the rule and a good example; every
problem is reported at once; nothing but ConfigError ever comes out; secrets never show."""

from __future__ import annotations

import base64
import json
import pickle
import random
from fractions import Fraction
from typing import Any

import pytest

from kuscia_components.config import (
    ENCRYPTED,
    NESTED,
    SETTINGS,
    ConfigError,
    PartyConfig,
    config_warnings,
    parse_party_config,
    read_pulumi_config,
)
from kuscia_components.config.quantity import QuantityError, parse_quantity
from kuscia_components.core import pki
from tests.helpers import self_signed_cert

CAPACITY = json.dumps({"cpu": "4", "memory": "4Gi", "storage": "100Gi"})
EXTERNAL = {"mode": "external", "endpoint": "mysql.example.com:3306", "adminUser": "root"}


def parse(secret: tuple[str, ...] = (), **values: object) -> PartyConfig:
    """Pulumi's shape: every top-level value a string; objects as JSON text."""
    base: dict[str, object] = {"domainId": "alice", "capacity": CAPACITY}
    base.update(values)
    shaped = {k: v if isinstance(v, str) else json.dumps(v) for k, v in base.items() if v is not None}
    return parse_party_config(shaped, set(secret))


def problems(secret: tuple[str, ...] = (), **values: object) -> dict[str, str]:
    """setting -> the whole problem line, for a config that must be rejected."""
    with pytest.raises(ConfigError) as err:
        parse(secret, **values)
    found = {p.setting: str(p) for p in err.value.problems}
    assert all(p.rule and p.example for p in err.value.problems)
    return found


def only_problem(secret: tuple[str, ...] = (), **values: object) -> str:
    found = problems(secret, **values)
    assert len(found) == 1, found
    return next(iter(found.values()))


# -- defaults --------------------------------------------------------------------------------


def test_defaults_follow_the_seed_and_design() -> None:
    cfg = parse()
    assert cfg.namespace == "autonomy-alice" and cfg.service_name == "kuscia-autonomy-alice"
    assert (cfg.protocol, cfg.runtime, cfg.log_level) == ("TLS", "runk", "INFO")
    assert cfg.public_endpoint == "https://kuscia-autonomy-alice.autonomy-alice.svc.cluster.local:1080"
    assert (cfg.database.mode, cfg.database.name, cfg.database.user) == (
        "in-cluster",
        "kuscia_alice",
        "kuscia_alice",  # one user per party: parties may share a MySQL server
    )
    assert cfg.image.endswith("/kuscia:1.1.0b0") and cfg.database.image == "mysql:8.0.40"
    assert (cfg.service.type, cfg.service.node_port) == ("ClusterIP", None)
    assert cfg.network_policy.enabled and cfg.peers == () and cfg.domain_key_data is None
    assert cfg.peering_timeout_seconds == 300 and cfg.require_peer_ready is False
    assert cfg.capacity is not None and (cfg.capacity.cpu, cfg.capacity.ephemeral_storage) == ("4", None)
    assert cfg.encrypted_settings == frozenset()


def test_typed_values_and_pulumi_strings_give_the_same_config() -> None:
    typed: dict[str, object] = {
        "domainId": "alice",
        "capacity": {"cpu": 4, "memory": "4Gi", "storage": "100Gi"},
        "peeringTimeoutSeconds": 600,
        "requirePeerReady": True,
        "service": {"type": "NodePort", "nodePort": 31080},
        "peers": [{"domainId": "bob", "stack": "bob"}],
    }
    as_pulumi = {k: v if isinstance(v, str) else json.dumps(v) for k, v in typed.items()}
    as_pulumi["requirePeerReady"] = "true"
    assert parse_party_config(typed) == parse_party_config(as_pulumi)
    assert parse_party_config(typed).peering_timeout_seconds == 600


# -- domainId and namespace ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("Alice", "has uppercase letters"),
        ("-alice", "starts or ends with '-'"),
        ("alice-", "starts or ends with '-'"),
        ("alice.bob", "contains '.'"),
        ("alice_bob", "contains '_'"),
        ("a" * 48, "kuscia-autonomy-<domainId> must fit in 63 characters"),
        ("a" * 64, "has 64 characters"),
        ("master", "reserved"),
        ("kube-system", "reserved"),
        ("cross-domain", "reserved"),
        ("default", "reserved"),
    ],
)
def test_domain_id_rules(value: str, fragment: str) -> None:
    line = only_problem(domainId=value)
    assert line.startswith("kuscia:domainId: ") and fragment in line and line.endswith("Example: alice")


def test_domain_id_of_47_characters_fits_the_service_name() -> None:
    cfg = parse(domainId="a" * 47)
    assert len(cfg.service_name) == 63


def test_missing_domain_id_is_reported() -> None:
    with pytest.raises(ConfigError) as err:
        parse_party_config({"capacity": CAPACITY})
    assert [p.setting for p in err.value.problems] == ["kuscia:domainId"]
    assert "is required" in str(err.value)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("Autonomy", "uppercase"),
        ("a" * 64, "64 characters"),
        ("kube-system", "system namespace"),
        ("  ", "empty"),
    ],
)
def test_namespace_rules(value: str, fragment: str) -> None:
    assert fragment in only_problem(namespace=value)


def test_namespace_can_be_chosen() -> None:
    cfg = parse(namespace="kuscia")
    assert cfg.namespace == "kuscia" and cfg.public_endpoint.endswith(".kuscia.svc.cluster.local:1080")


# -- image, protocol, runtime, logLevel ------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "fragment"),
    [
        ("kuscia", "explicit tag or digest"),
        ("registry:5000/kuscia", "explicit tag or digest"),
        ("registry/kuscia:latest", "'latest'"),
        ("Registry/Kuscia:1.0", "image reference"),
        ("kuscia: 1.0", "image reference"),
    ],
)
def test_image_must_be_a_pinned_reference(image: str, fragment: str) -> None:
    assert fragment in only_problem(image=image)


@pytest.mark.parametrize(
    "image",
    [
        "registry:5000/team/kuscia:1.1.0b0",
        "kuscia@sha256:" + "a" * 64,
        "secretflow/kuscia:1.1.0b0@sha256:" + "b" * 64,
        "[::1]:5000/kuscia:v1",
    ],
)
def test_pinned_images_are_accepted(image: str) -> None:
    assert parse(image=image).image == image


def test_protocol_any_case_is_stored_uppercase_and_mtls_is_our_nodes_choice() -> None:
    assert parse(protocol="notls").protocol == "NOTLS"
    assert parse(protocol=" Tls ").protocol == "TLS"
    assert parse(protocol="mtls").protocol == "MTLS"
    assert "must be one of NOTLS, TLS, MTLS (did you mean TLS?)" in only_problem(protocol="TSL")


def test_runtime_choices() -> None:
    assert parse(runtime="RUNK").runtime == "runk"
    assert parse(runtime="runp").runtime == "runp"
    assert "privileged" in only_problem(runtime="runc")
    assert "one of runk, runp" in only_problem(runtime="docker")


def test_log_level_any_case() -> None:
    assert parse(logLevel="debug").log_level == "DEBUG"
    assert "one of DEBUG, INFO, WARN, ERROR (did you mean WARN?)" in only_problem(logLevel="WARNING")


# -- capacity and quantities -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("4", Fraction(4)),
        ("500m", Fraction(1, 2)),
        ("4Gi", Fraction(4 * 2**30)),
        ("1.5Gi", Fraction(3 * 2**29)),
        ("1e3", Fraction(1000)),
        ("1E3", Fraction(1000)),
        ("2E", Fraction(2 * 10**18)),
        ("1.", Fraction(1)),
        (".5k", Fraction(500)),
        ("+1", Fraction(1)),
        ("-1", Fraction(-1)),
        ("100n", Fraction(1, 10**7)),
        ("7u", Fraction(7, 10**6)),
        ("1e-3", Fraction(1, 1000)),
    ],
)
def test_quantities_parse_to_their_exact_value(text: str, value: Fraction) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("4 cores", "a number with an optional suffix"),
        ("1.5.2", "a number with an optional suffix"),
        ("Gi", "a number with an optional suffix"),
        ("1K", "a number with an optional suffix"),
        ("1e", "a number with an optional suffix"),
        ("", "a number with an optional suffix"),
        ("1e101", "exponent from -100 to 100"),
        ("10E", "at most 2^63-1"),
        ("1" * 65, "at most 64 characters"),
    ],
)
def test_non_quantities_are_refused_with_the_rule(text: str, fragment: str) -> None:
    with pytest.raises(QuantityError) as err:
        parse_quantity(text)
    assert fragment in str(err.value)


@pytest.mark.parametrize(
    ("cpu", "fragment"),
    [("4 cores", "Kubernetes quantity"), ("-1", "more than zero"), ("0", "more than zero"), (True, "string")],
)
def test_capacity_values_are_positive_quantities(cpu: object, fragment: str) -> None:
    line = only_problem(capacity={"cpu": cpu, "memory": "4Gi", "storage": "100Gi"})
    assert line.startswith("kuscia:capacity.cpu:") and fragment in line


def test_capacity_takes_yaml_numbers_as_quantities() -> None:
    cfg = parse(capacity={"cpu": 4.0, "memory": "512Mi", "storage": "1e3", "ephemeralStorage": 0.5})
    assert cfg.capacity is not None
    assert (cfg.capacity.cpu, cfg.capacity.storage, cfg.capacity.ephemeral_storage) == ("4", "1e3", "0.5")


def test_capacity_required_for_runk_with_its_three_parts() -> None:
    with pytest.raises(ConfigError) as err:
        parse_party_config({"domainId": "alice"})
    assert [p.setting for p in err.value.problems] == ["kuscia:capacity"]
    assert parse_party_config({"domainId": "alice", "runtime": "runp"}).capacity is None
    found = problems(capacity={"cpu": "4"})
    assert set(found) == {"kuscia:capacity.memory", "kuscia:capacity.storage"}


# -- service and publicEndpoint --------------------------------------------------------------


def test_service_settings() -> None:
    cfg = parse(service={"type": "nodeport", "nodePort": 31080, "annotations": {"example.com/x": "1"}})
    assert (cfg.service.type, cfg.service.node_port) == ("NodePort", 31080)
    assert cfg.service.annotations == {"example.com/x": "1"}
    assert "only applies" in only_problem(service={"nodePort": 31080})
    assert "from 30000 to 32767" in only_problem(service={"type": "NodePort", "nodePort": 80})
    assert "remove the quotes" in only_problem(service={"type": "NodePort", "nodePort": "31080"})
    assert "must be a string, not a number" in only_problem(service={"annotations": {"a": 1}})
    assert "annotation names" in only_problem(service={"annotations": {"bad key!": "x"}})


@pytest.mark.parametrize(
    ("endpoint", "protocol", "fragment"),
    [
        ("http://1.2.3.4:1080", "TLS", "must use https:// because the protocol is TLS"),
        ("https://1.2.3.4:1080", "NOTLS", "must use http:// because the protocol is NOTLS"),
        ("ftp://host", "TLS", "http:// or https:// URL with a host"),
        ("1.2.3.4:1080", "TLS", "http:// or https:// URL with a host"),
        ("https://", "TLS", "with a host"),
        ("https://host:1080/?x=1", "TLS", "query"),
        ("https://host:1080/#top", "TLS", "fragment"),
        ("https://user:pw@host:1080", "TLS", "user info"),
        ("https://host:99999", "TLS", "invalid port"),
        ("https://host:0", "TLS", "invalid port"),
        ("https://ho_st:1080", "TLS", "host name or an IP address"),
        ("https://host :1080", "TLS", "spaces"),
    ],
)
def test_public_endpoint_rules(endpoint: str, protocol: str, fragment: str) -> None:
    line = only_problem(publicEndpoint=endpoint, protocol=protocol)
    assert line.startswith("kuscia:publicEndpoint:") and fragment in line


@pytest.mark.parametrize("endpoint", ["https://gw.example.com:443/kuscia", "https://203.0.113.10"])
def test_public_endpoint_with_path_prefix_is_accepted(endpoint: str) -> None:
    assert parse(publicEndpoint=endpoint).public_endpoint == endpoint


def test_default_public_endpoint_follows_the_protocol() -> None:
    assert parse(protocol="NOTLS").public_endpoint.startswith("http://kuscia-autonomy-alice.")


# -- database --------------------------------------------------------------------------------


def test_database_name_defaults_per_domain_without_hyphens() -> None:
    assert parse(domainId="party-a").database.name == "kuscia_party_a"


@pytest.mark.parametrize("name", ["kuscia-alice", "a" * 65, "kuscia alice", "", "名前"])
def test_database_name_rule(name: str) -> None:
    found = problems(database={"name": name})
    assert list(found) == ["kuscia:database.name"]


@pytest.mark.parametrize("user", ["kuscia-user", "u" * 33])
def test_database_user_rule(user: str) -> None:
    assert "[A-Za-z0-9_]{1,32}" in only_problem(database={"user": user})


def test_external_database_needs_endpoint_admin_user_and_password() -> None:
    found = problems(database={"mode": "external"})
    assert set(found) == {
        "kuscia:database.endpoint",
        "kuscia:database.adminUser",
        "kuscia:databaseAdminPassword",
    }


@pytest.mark.parametrize(
    ("database", "host", "port"),
    [
        ({"endpoint": "db.example.com:3307"}, "db.example.com", 3307),
        ({"endpoint": "[2001:db8::5]:3307"}, "2001:db8::5", 3307),
        ({"endpoint": "10.0.0.5"}, "10.0.0.5", 3306),
        ({"host": "db.example.com", "port": 3310}, "db.example.com", 3310),
        ({"host": "db.example.com"}, "db.example.com", 3306),
    ],
)
def test_external_database_endpoint_forms(database: dict[str, object], host: str, port: int) -> None:
    db = {"mode": "external", "adminUser": "root", **database}
    cfg = parse(("databaseAdminPassword",), database=db, databaseAdminPassword=" s3cret value ")
    assert (cfg.database.host, cfg.database.port, cfg.database.admin_user) == (host, port, "root")
    assert cfg.database.admin_password == " s3cret value "  # verbatim: whitespace is part of it
    assert "s3cret" not in repr(cfg)


@pytest.mark.parametrize(
    ("database", "fragment"),
    [
        ({"endpoint": "::1:3306"}, "IPv6 address in brackets"),
        ({"endpoint": "db:99999"}, "from 1 to 65535"),
        ({"endpoint": "db:3306", "host": "db"}, "not both"),
        ({"endpoint": "tcp(db:3306)"}, "host:port"),
        ({"host": "db.example.com:3306"}, "host name or an IP address"),
        ({"host": "db", "port": "3306"}, "remove the quotes"),
        ({"endpoint": "db:3306", "adminUser": "u" * 33}, "at most 32 characters"),
    ],
)
def test_external_database_endpoint_rules(database: dict[str, object], fragment: str) -> None:
    db = {"mode": "external", "adminUser": "root", **database}
    line = only_problem(("databaseAdminPassword",), database=db, databaseAdminPassword="pw")
    assert fragment in line


def test_settings_of_the_other_database_mode_are_refused() -> None:
    forgot_mode = problems(database={"endpoint": "db:3306", "adminUser": "root"})
    assert set(forgot_mode) == {"kuscia:database.endpoint", "kuscia:database.adminUser"}
    assert "only applies to database.mode external" in forgot_mode["kuscia:database.endpoint"]
    line = only_problem(
        ("databaseAdminPassword",), database={**EXTERNAL, "storageSize": "5Gi"}, databaseAdminPassword="pw"
    )
    assert "only applies to database.mode in-cluster" in line
    assert "only used with database.mode external" in only_problem(
        ("databaseAdminPassword",), databaseAdminPassword="pw"
    )


def test_in_cluster_database_settings() -> None:
    cfg = parse(database={"storageSize": "20Gi", "storageClass": "fast-ssd", "image": "mysql:8.4.3"})
    assert (cfg.database.storage_size, cfg.database.storage_class, cfg.database.image) == (
        "20Gi",
        "fast-ssd",
        "mysql:8.4.3",
    )
    assert "more than zero" in only_problem(database={"storageSize": "0"})
    assert "StorageClass name" in only_problem(database={"storageClass": "Fast_SSD"})
    assert "'latest'" in only_problem(database={"image": "mysql:latest"})


def test_admin_password_must_be_secret_and_is_never_echoed() -> None:
    found = problems(database=EXTERNAL, databaseAdminPassword="hunter2hunter2")
    assert "must be a secret" in found["kuscia:databaseAdminPassword"]
    assert "pulumi config set --secret kuscia:databaseAdminPassword" in found["kuscia:databaseAdminPassword"]
    nested = problems(database={**EXTERNAL, "adminPassword": "hunter2hunter2"})
    assert "must be a secret" in nested["kuscia:database.adminPassword"]
    assert "hunter2" not in json.dumps(found) + json.dumps(nested)


def test_nested_admin_password_is_accepted_when_pulumi_marks_the_object_secret() -> None:
    cfg = parse(("database",), database={**EXTERNAL, "adminPassword": "from-path-secret"})
    assert cfg.database.admin_password == "from-path-secret"


def test_nested_secret_check_is_exact_when_the_secret_paths_are_known() -> None:
    """Offline, the stack file tells which leaf is encrypted: another secret leaf in the object
    must not make a plaintext password pass."""
    db = {**EXTERNAL, "adminUser": "root", "adminPassword": "plain-text-pw"}
    line = only_problem(("database", "database.adminUser"), database=db)
    assert "kuscia:database.adminPassword: must be a secret" in line
    cfg = parse(("database", "database.adminPassword"), database=db)
    assert cfg.database.admin_password == "plain-text-pw"


def test_admin_password_set_twice_is_refused() -> None:
    line = only_problem(
        ("databaseAdminPassword", "database"),
        database={**EXTERNAL, "adminPassword": "a"},
        databaseAdminPassword="b",
    )
    assert "is set twice" in line


def test_encrypted_admin_password_is_present_but_unknown_offline() -> None:
    values = {
        "domainId": "alice",
        "capacity": CAPACITY,
        "database": json.dumps(EXTERNAL),
        "databaseAdminPassword": ENCRYPTED,
    }
    cfg = parse_party_config(values, {"databaseAdminPassword"}, encrypted_keys={"databaseAdminPassword"})
    assert cfg.database.admin_password == ENCRYPTED
    assert cfg.encrypted_settings == {"databaseAdminPassword"}


# -- domainKeyData -----------------------------------------------------------------------------


def _pkcs8(key_pem: str) -> str:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(key_pem.encode(), None)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def test_supplied_key_is_normalised_to_pkcs1(rsa_key_pem: str) -> None:
    cfg = parse(("domainKeyData",), domainKeyData=pki.domain_key_data(_pkcs8(rsa_key_pem)))
    assert cfg.domain_key_data == rsa_key_pem
    assert cfg.domain_key_data.startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert "PRIVATE KEY" not in repr(cfg)


def test_supplied_key_must_be_secret_and_is_not_echoed(rsa_key_pem: str) -> None:
    line = only_problem(domainKeyData=rsa_key_pem)
    assert "must be a secret" in line and "pulumi config set --secret kuscia:domainKeyData" in line
    assert "PRIVATE KEY-----" not in line and rsa_key_pem.splitlines()[1] not in line


def test_bad_supplied_key_never_echoes_the_value() -> None:
    secret_junk = base64.b64encode(b"secret-junk-value-12345").decode()
    with pytest.raises(ConfigError) as err:
        parse(("domainKeyData",), domainKeyData=secret_junk)
    assert secret_junk not in str(err.value) and "secret-junk" not in str(err.value)
    assert secret_junk not in repr(err.value.problems)
    assert "RSA private key of at least 2048 bits" in str(err.value)


def test_short_rsa_key_is_refused_with_the_rule() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    small = (
        rsa.generate_private_key(public_exponent=65537, key_size=1024)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        .decode()
    )
    line = only_problem(("domainKeyData",), domainKeyData=small)
    assert "1024 bits" in line and small.splitlines()[1] not in line


def test_encrypted_key_is_skipped_offline_with_a_warning() -> None:
    values = {"domainId": "alice", "capacity": CAPACITY, "domainKeyData": ENCRYPTED}
    cfg = parse_party_config(values, {"domainKeyData"}, encrypted_keys={"domainKeyData"})
    assert cfg.domain_key_data is None and cfg.encrypted_settings == {"domainKeyData"}
    assert any("domainKeyData is encrypted" in w for w in config_warnings(cfg))


def test_values_of_settings_set_as_secrets_are_not_echoed() -> None:
    found = problems(
        ("publicEndpoint", "namespace"),
        publicEndpoint="http://hidden-host.internal:1",
        namespace="Hidden_Name",
    )
    assert (
        "must use https://" in found["kuscia:publicEndpoint"]
        and "namespace name" in found["kuscia:namespace"]
    )
    assert "hidden" not in json.dumps(found).lower()


def test_other_encrypted_settings_cannot_be_read_offline() -> None:
    values = {"domainId": "alice", "capacity": CAPACITY, "namespace": ENCRYPTED, "service": ENCRYPTED}
    with pytest.raises(ConfigError) as err:
        parse_party_config(values, {"namespace", "service"}, encrypted_keys={"namespace", "service"})
    found = {p.setting: p.rule for p in err.value.problems}
    assert "offline commands cannot read it" in found["kuscia:namespace"]
    assert "encrypted as a whole" in found["kuscia:service"]


# -- runkKubeconfigSecret, resources, networkPolicy --------------------------------------------


def test_runk_kubeconfig_secret() -> None:
    assert parse(runkKubeconfigSecret="runk-kubeconfig").runk_kubeconfig_secret == "runk-kubeconfig"
    assert "Secret name" in only_problem(runkKubeconfigSecret="Runk_Kubeconfig")
    assert "only applies to runtime runk" in only_problem(runtime="runp", runkKubeconfigSecret="x")


def test_resources_merge_with_defaults_and_requests_stay_within_limits() -> None:
    cfg = parse(resources={"requests": {"cpu": "2"}, "limits": {"memory": "16Gi"}})
    assert dict(cfg.resources.requests) == {"cpu": "2", "memory": "2Gi"}
    assert dict(cfg.resources.limits) == {"cpu": "4", "memory": "16Gi"}
    line = only_problem(resources={"requests": {"cpu": "6"}})
    assert line.startswith("kuscia:resources.requests.cpu: must not exceed resources.limits.cpu (4)")
    assert "did you mean 'ephemeral-storage'" in only_problem(
        resources={"limits": {"ephemeralStorage": "1Gi"}}
    )
    assert "Kubernetes quantity" in only_problem(resources={"limits": {"memory": "lots"}})
    assert parse(resources={"requests": {"cpu": "0"}}).resources.requests["cpu"] == "0"


def test_network_policy_settings() -> None:
    cfg = parse(networkPolicy={"kusciaApiFrom": ["172.18.0.2", "10.0.0.0/24", "10.0.0.0/24"]})
    assert cfg.network_policy.kusciaapi_from == ("172.18.0.2/32", "10.0.0.0/24")
    assert not parse(networkPolicy={"enabled": False}).network_policy.enabled
    assert "without host bits" in only_problem(networkPolicy={"kusciaApiFrom": ["10.0.0.1/24"]})
    assert "must not be empty" in only_problem(networkPolicy={"kusciaApiFrom": []})
    assert "must be a string, not a number" in only_problem(networkPolicy={"kusciaApiFrom": [10]})
    assert "without quotes" in only_problem(networkPolicy={"enabled": "false"})
    assert "must be a list" in only_problem(networkPolicy={"kusciaApiFrom": "10.0.0.0/8"})


# -- peers -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def carol_cert_b64(rsa_key_pem: str) -> str:
    """A certificate for partner carol: its CN must be the partner's domainId."""
    return pki.cert_b64(pki.build_domain_cert(rsa_key_pem, "carol"))


def _bundle(cert_b64: str, /, **changes: str) -> dict[str, str]:
    bundle = {
        "domainId": "carol",
        "endpoint": "https://203.0.113.9:31080",
        "cert": cert_b64,
        "protocol": "TLS",
    }
    return {**bundle, **changes}


def test_peers_by_stack_and_inline(carol_cert_b64: str) -> None:
    cfg = parse(
        peers=[
            {"domainId": "bob", "stack": "acme/kuscia-p2p/bob"},
            _bundle(carol_cert_b64, endpoint="http://203.0.113.9:31080", protocol="notls"),
        ],
        trustedNetwork="true",  # a NOTLS partner outside the cluster (exposure.plaintext_partner)
    )
    assert [(p.domain_id, p.stack, p.protocol) for p in cfg.peers] == [
        ("bob", "acme/kuscia-p2p/bob", None),
        ("carol", None, "NOTLS"),
    ]
    assert cfg.peers[1].cert == carol_cert_b64


def test_a_partner_running_mtls_is_addressed_like_tls(carol_cert_b64: str) -> None:
    assert parse(peers=[_bundle(carol_cert_b64, protocol="MTLS")]).peers[0].protocol == "TLS"


def _ec_cert_b64() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    cert = self_signed_cert(ec.generate_private_key(ec.SECP256R1()), "carol")
    return base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode()


@pytest.mark.parametrize(
    ("peer", "fragment"),
    [
        ({"domainId": "alice", "stack": "alice"}, "own domain ID"),
        ({"domainId": "Bob", "stack": "bob"}, "uppercase"),
        ({"stack": "bob"}, "is required"),
        ({"domainId": False, "stack": "bob"}, "quote it (YAML reads yes/no/on/off/y/n as true/false)"),
        ({"domainId": "bob"}, "needs stack, or all of endpoint, cert and protocol"),
        ({"domainId": "bob", "stack": "bob", "protocol": "TLS"}, "not both"),
        ({"domainId": "bob", "stack": "bob with spaces"}, "stack name"),
        ("bob", "must be an object"),
    ],
)
def test_peer_rules(peer: object, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse(peers=[peer])
    assert fragment in str(err.value) and "kuscia:peers[0]" in str(err.value)


@pytest.mark.parametrize(
    ("changes", "setting", "fragment"),
    [
        ({"endpoint": "http://h:1080"}, "endpoint", "must use https://"),
        ({"protocol": "NOTLS"}, "endpoint", "must use http://"),
        ({"protocol": "SSL"}, "protocol", "one of NOTLS, TLS"),
        ({"cert": "bm90LWEtY2VydA=="}, "cert", "X.509"),
        ({"cert": "EC"}, "cert", "not an RSA key"),
        ({"cert": ""}, "cert", "must not be empty"),
    ],
)
def test_inline_bundle_rules(
    changes: dict[str, str], setting: str, fragment: str, carol_cert_b64: str
) -> None:
    bundle = _bundle(carol_cert_b64, **changes)
    if bundle["cert"] == "EC":
        bundle["cert"] = _ec_cert_b64()
    line = only_problem(peers=[bundle])
    assert line.startswith(f"kuscia:peers[0].{setting}:") and fragment in line


def test_duplicate_peers_and_shared_stacks_are_refused() -> None:
    found = problems(
        peers=[
            {"domainId": "bob", "stack": "bob"},
            {"domainId": "bob", "stack": "bob2"},
            {"domainId": "carol", "stack": "bob"},
        ]
    )
    assert "already listed at peers[0]" in found["kuscia:peers[1].domainId"]
    assert "already the stack of peers[0]" in found["kuscia:peers[2].stack"]


@pytest.mark.parametrize(
    ("self_id", "peer_ids", "name"),
    [
        ("a", ["x-a", "a-x"], "a-x-a"),  # a -> x-a and a-x -> a
        ("a-b", ["c-a-b", "a-b-c"], "a-b-c-a-b"),  # a-b -> c-a-b and a-b-c -> a-b
    ],
)
def test_route_name_collisions_are_detected(self_id: str, peer_ids: list[str], name: str) -> None:
    peers = [{"domainId": p, "stack": f"s{i}"} for i, p in enumerate(peer_ids)]
    line = only_problem(domainId=self_id, peers=peers)
    assert line.startswith("kuscia:peers:") and f"would both be named '{name}'" in line


def test_hyphenated_ids_without_collision_are_fine() -> None:
    cfg = parse(
        domainId="org-a", peers=[{"domainId": "org-b", "stack": "b"}, {"domainId": "b-org", "stack": "c"}]
    )
    assert len(cfg.peers) == 2


# -- the remaining scalars -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("5", "from 10 to 3600"),
        ("3601", "from 10 to 3600"),
        ("soon", "whole number"),
        ("300.0", "whole number"),
        ("9" * 50, "whole number"),
        ("\u00b2", "whole number"),
        ("-20", "whole number"),
    ],
)
def test_peering_timeout_rules(value: str, fragment: str) -> None:
    assert fragment in only_problem(peeringTimeoutSeconds=value)


def test_booleans_and_cluster_access() -> None:
    cfg = parse(
        requirePeerReady="True", peeringTimeoutSeconds=" 900 ", kubeContext="kind-kuscia", kubeconfig="~/k"
    )
    assert (cfg.require_peer_ready, cfg.peering_timeout_seconds) == (True, 900)
    assert (cfg.kube_context, cfg.kubeconfig) == ("kind-kuscia", "~/k")
    assert "true or false" in only_problem(requirePeerReady="yes")
    assert "must not be empty" in only_problem(kubeContext="")


# -- unknown keys, wrong types, everything at once -------------------------------------------


def test_unknown_keys_get_did_you_mean_at_every_level(carol_cert_b64: str) -> None:
    found = problems(
        domainID="alice",
        service={"typ": "NodePort"},
        capacity={"cpu": "4", "memory": "4Gi", "storage": "1Gi", "ephemeral": "1Gi"},
        database={"nmae": "x_y"},
        resources={"limit": {}},
        networkPolicy={"enable": True},
        peers=[{"domainId": "bob", "stak": "bob"}],
    )
    assert "did you mean 'domainId'" in found["kuscia:domainID"]
    assert "did you mean 'type'" in found["kuscia:service.typ"]
    assert "did you mean 'ephemeralStorage'" in found["kuscia:capacity.ephemeral"]
    assert "did you mean 'name'" in found["kuscia:database.nmae"]
    assert "did you mean 'limits'" in found["kuscia:resources.limit"]
    assert "did you mean 'enabled'" in found["kuscia:networkPolicy.enable"]
    assert "did you mean 'stack'" in found["kuscia:peers[0].stak"]
    assert "Example: kuscia:service.type" in found["kuscia:service.typ"]


def test_unknown_keys_without_a_close_match_list_the_known_ones() -> None:
    line = problems(zzz="1")["kuscia:zzz"]
    assert "is not a setting; known settings here: domainId, namespace" in line


def test_nested_setting_names_at_the_top_level_point_to_their_place() -> None:
    assert "did you mean 'database.adminUser'" in problems(adminUser="root")["kuscia:adminUser"]
    line = problems(**{"database.name": "x"})["kuscia:database.name"]
    assert "without --path" in line and "pulumi config set --path 'kuscia:database.name'" in line


@pytest.mark.parametrize(
    ("values", "setting", "fragment"),
    [
        ({"domainId": 5}, "domainId", "must be a string, not a number"),
        ({"domainId": '{"name": "alice"}'}, "domainId", "must be a string, not an object"),
        ({"namespace": "[1, 2]"}, "namespace", "must be a string, not a list"),
        ({"capacity": "4"}, "capacity", "must be an object (a YAML mapping), not a number"),
        ({"capacity": "big"}, "capacity", "must be an object (a YAML mapping) (YAML or JSON)"),
        ({"capacity": "[]"}, "capacity", "not a list"),
        ({"peers": '{"domainId": "bob"}'}, "peers", "must be a list, not an object"),
        ({"service": ""}, "service", "must not be empty"),
        ({"database": '{"mode": null}'}, "database.mode", "not empty (null)"),
        ({"database": '{"name": ["a"]}'}, "database.name", "not a list"),
        ({"service": '{"type": 5}'}, "service.type", "must be a string, not a number"),
        ({"peeringTimeoutSeconds": True}, "peeringTimeoutSeconds", "whole number"),
    ],
)
def test_wrong_types_are_reported_with_the_expected_type(
    values: dict[str, object], setting: str, fragment: str
) -> None:
    base: dict[str, object] = {"domainId": "alice", "capacity": CAPACITY, **values}
    with pytest.raises(ConfigError) as err:
        parse_party_config(base)
    found = {p.setting: str(p) for p in err.value.problems}
    assert fragment in found[f"kuscia:{setting}"], found


def test_all_problems_are_reported_together() -> None:
    with pytest.raises(ConfigError) as err:
        parse(
            domainId="Bad_ID",
            protocol="ssl",
            image="kuscia:latest",
            peeringTimeoutSeconds="5",
            capacity={"cpu": "x"},
            service={"type": "Ingress"},
            database={"name": "a-b"},
            networkPolicy={"kusciaApiFrom": ["nope"]},
            peers=[{"domainId": "bob"}],
            logLevel="loud",
        )
    settings = {p.setting for p in err.value.problems}
    assert settings >= {
        "kuscia:domainId",
        "kuscia:protocol",
        "kuscia:image",
        "kuscia:peeringTimeoutSeconds",
        "kuscia:capacity.cpu",
        "kuscia:capacity.memory",
        "kuscia:service.type",
        "kuscia:database.name",
        "kuscia:networkPolicy.kusciaApiFrom[0]",
        "kuscia:peers[0]",
        "kuscia:logLevel",
    }
    assert str(err.value).startswith(f"{len(err.value.problems)} problem(s) in stack config:")


def test_config_error_survives_pickling() -> None:
    with pytest.raises(ConfigError) as err:
        parse(domainId="Bad")
    copy = pickle.loads(pickle.dumps(err.value))
    assert str(copy) == str(err.value) and copy.problems == err.value.problems


# -- nothing but ConfigError, and no secret in it, for any input ------------------------------

ODD_STRINGS = [
    "",
    " ",
    "TLS",
    "mtls",
    "runk",
    "runp",
    "in-cluster",
    "external",
    "NodePort",
    "4Gi",
    "-1",
    "1e999",
    "0",
    "alice",
    "a-b",
    "b-a",
    ENCRYPTED,
    "true",
    "{",
    "[1]",
    '{"a": 1}',
    "\u00b2",
    "\u0663",
    "9" * 5000,
    "\x00",
    "https://[::1",
    "http://h:0",
    "https://h:1080/p",
    "db:3306",
    "[::1]:3306",
    "::1",
    "a" * 300,
    "null",
    "NaN",
    "-----BEGIN CERTIFICATE-----",
    "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----",
]
NESTED_KEYS = sorted({k for keys in NESTED.values() for k in keys} | {"zz", "a.b"})


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 3 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.choice([0, -1, 1, 31080, 3306, 2**70, 10**40, -(10**30)])
    if kind == 3:
        return rng.choice([0.5, 4.0, float("inf"), float("nan"), -0.0, 1e21])
    if kind == 4:
        return (
            rng.choice(ODD_STRINGS)
            if rng.random() < 0.8
            else "".join(rng.choice("aZ-_.:/ 9@") for _ in range(6))
        )
    if kind in (5, 6):
        return {rng.choice(NESTED_KEYS): _random_value(rng, depth + 1) for _ in range(rng.randrange(5))}
    return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]


def _random_config(rng: random.Random, marker: str) -> tuple[dict[str, object], set[str], set[str]]:
    """A valid config with 0-3 random changes, so that every depth of the parser is reached."""
    values: dict[str, object] = {"domainId": rng.choice(["alice", "a-b"]), "capacity": CAPACITY}
    for _ in range(rng.randrange(4)):
        key = rng.choice([*SETTINGS, "zz", "database.name"])
        value = _random_value(rng)
        values[key] = value if isinstance(value, str) or rng.random() < 0.3 else json.dumps(value)
    if rng.random() < 0.3:
        extra = _random_value(rng, 2) if rng.random() < 0.5 else None
        database = {**EXTERNAL, "adminPassword": marker, **(extra if isinstance(extra, dict) else {})}
        values["database"] = json.dumps(database) if rng.random() < 0.8 else database
    for key in ("domainKeyData", "databaseAdminPassword"):
        if rng.random() < 0.3:
            values[key] = marker
    secret = {k for k in values if rng.random() < 0.2} | {
        "domainKeyData",
        "databaseAdminPassword",
        "database",
    }
    if rng.random() < 0.3:  # any setting the user made a secret keeps its value to itself
        chosen = rng.choice(SETTINGS)
        shown = marker.replace("S3cret", "Chosen")  # not a secret of ours: kept out of errors only
        values[chosen] = rng.choice(
            [shown, f"https://{shown}:1", json.dumps({"x": shown}), json.dumps([shown])]
        )
        secret.add(chosen)
    encrypted = {k for k in values if rng.random() < 0.05}
    return values, secret, encrypted


@pytest.mark.parametrize("seed", range(8))
def test_any_input_gives_a_config_or_a_config_error_and_never_shows_a_secret(seed: int) -> None:
    """Deterministic random configs (500 per seed): parsing raises nothing but ConfigError, and
    the value of a secret setting never appears in an error or a repr."""
    rng = random.Random(seed)
    outcomes = {"ok": 0, "error": 0}
    for case in range(500):
        marker = f"S3cret-{seed}-{case}-never-shown"
        values, secret, encrypted = _random_config(rng, marker)
        try:
            cfg = parse_party_config(values, secret, encrypted_keys=encrypted)
        except ConfigError as err:
            outcomes["error"] += 1
            text = str(err) + repr(err.problems)
            assert marker not in text and marker.replace("S3cret", "Chosen") not in text
            continue
        outcomes["ok"] += 1
        config_warnings(cfg)
        assert marker not in repr(cfg) and marker not in " ".join(config_warnings(cfg))
    assert outcomes["error"] > 50 and outcomes["ok"] > 20, outcomes


def test_random_valid_configs_parse(carol_cert_b64: str) -> None:
    """The other half of the property: many random *valid* combinations all parse."""
    rng = random.Random(7)
    for _ in range(200):
        protocol = rng.choice(["TLS", "NOTLS", "tls", "notls"])
        scheme = "http" if protocol.upper() == "NOTLS" else "https"
        peer_protocol = rng.choice(["TLS", "NOTLS"])
        in_cluster = protocol.upper() == "TLS" and rng.random() < 0.5  # only the partner may be NOTLS
        peer_host = "kuscia-autonomy-carol.autonomy-carol.svc" if in_cluster else "10.0.0.1"
        peer_endpoint = f"{'http' if peer_protocol == 'NOTLS' else 'https'}://{peer_host}:1080"
        values: dict[str, object] = {
            "domainId": rng.choice(["alice", "bob-1", "x" * 47]),
            "protocol": protocol,
            "runtime": rng.choice(["runk", "RUNK"]),
            "capacity": json.dumps({"cpu": rng.choice([4, "500m", 0.5]), "memory": "4Gi", "storage": "1e3"}),
            "publicEndpoint": f"{scheme}://gw{rng.randrange(9)}.example.com:{rng.randrange(1, 65536)}/p",
            "service": json.dumps(
                {"type": rng.choice(["NodePort", "LoadBalancer"]), "nodePort": rng.randrange(30000, 32768)}
            ),
            # NOTLS beyond the cluster, ours or a partner's, is refused unless the network is trusted
            "trustedNetwork": "true"
            if "NOTLS" in (protocol.upper(), peer_protocol) and not in_cluster
            else rng.choice(["true", "false"]),
            "peers": json.dumps(
                [
                    {
                        "domainId": "carol",
                        "endpoint": peer_endpoint,
                        "cert": carol_cert_b64,
                        "protocol": peer_protocol,
                    }
                ]
            ),
        }
        cfg = parse_party_config(values)
        assert cfg.protocol == protocol.upper() and cfg.public_endpoint.startswith(f"{scheme}://")


# -- warnings ----------------------------------------------------------------------------------


def test_a_plain_default_config_warns_of_nothing_the_port_forward_transport_needs_no_opening() -> None:
    assert parse().kusciaapi_transport == "portForward"
    assert config_warnings(parse()) == []
    ignored = config_warnings(parse(networkPolicy={"kusciaApiFrom": ["172.18.0.2/32"]}))
    assert len(ignored) == 1 and "is not used" in ignored[0]


def test_the_service_proxy_transport_warns_about_the_open_kusciaapi_range() -> None:
    warnings = config_warnings(parse(kusciaApiTransport="serviceproxy"))  # any case
    assert len(warnings) == 1 and "0.0.0.0/0" in warnings[0] and "portForward" in warnings[0]
    narrow = parse(kusciaApiTransport="serviceProxy", networkPolicy={"kusciaApiFrom": ["172.18.0.2/32"]})
    assert narrow.kusciaapi_transport == "serviceProxy" and config_warnings(narrow) == []


def test_an_unknown_kusciaapi_transport_is_refused_with_the_choices() -> None:
    with pytest.raises(ConfigError) as caught:
        parse(kusciaApiTransport="port-forward")
    text = str(caught.value)
    assert "kusciaApiTransport" in text and "portForward" in text and "serviceProxy" in text


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"protocol": "NOTLS"}, "without any authentication"),
        ({"networkPolicy": {"enabled": False}}, "open to the whole cluster"),
        ({"runtime": "runp"}, "kuscia-secretflow image"),
        ({"service": {"type": "LoadBalancer"}}, "partners in other clusters cannot use it"),
        ({"requirePeerReady": "true", "peeringTimeoutSeconds": "60"}, "several minutes"),
    ],
)
def test_warnings_for_trade_offs(values: dict[str, object], fragment: str) -> None:
    assert any(fragment in w for w in config_warnings(parse(**values)))


def test_warnings_for_a_shared_external_database() -> None:
    db = {**EXTERNAL, "endpoint": "10.0.0.9:3306", "user": "kuscia"}
    warnings = " ".join(
        config_warnings(parse(("databaseAdminPassword",), database=db, databaseAdminPassword="pw"))
    )
    assert "database.name defaults to kuscia_alice" in warnings
    assert "database.user is kuscia" in warnings
    chosen = {**EXTERNAL, "name": "kuscia_alice_prod", "user": "kuscia_alice"}
    assert (
        config_warnings(
            parse(
                ("databaseAdminPassword",),
                database=chosen,
                databaseAdminPassword="pw",
            )
        )
        == []
    )


def test_mixed_up_bundles_are_refused_or_warned(rsa_key_pem: str) -> None:
    bob_cert = pki.cert_b64(pki.build_domain_cert(rsa_key_pem, "bob"))
    # bob's certificate (CN=bob) pasted for carol: refused, naming both (it used to be a warning)
    with pytest.raises(ConfigError) as err:
        parse(peers=[_bundle(bob_cert, domainId="carol")])
    assert "kuscia:peers[0].cert" in str(err.value) and "CN 'bob'" in str(err.value)
    assert "domainId is 'carol'" in str(err.value)
    # certificates with the right CNs but one key: still a warning
    peers = [
        _bundle(pki.cert_b64(pki.build_domain_cert(rsa_key_pem, name)), domainId=name)
        for name in ("carol", "dave")
    ]
    warnings = " ".join(config_warnings(parse(peers=peers, publicEndpoint="https://gw.example.com")))
    assert "carol and dave carry the same public key" in warnings
    pasted = config_warnings(parse(peers=[_bundle(bob_cert, domainId="bob")]))
    assert any("in-cluster address" in w for w in pasted)


# -- the program's own path: pulumi.runtime config ----------------------------------------------


def test_read_pulumi_config_reads_kuscia_keys_and_secret_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    from pulumi.runtime import config as runtime_config

    config = {
        "kuscia:domainId": "alice",
        "kuscia:capacity": CAPACITY,
        "kuscia:database": json.dumps(EXTERNAL),
        "kuscia:databaseAdminPassword": "pw-from-pulumi",
        "aws:region": "x",
    }
    token = runtime_config.CONFIG.set(config)
    try:
        with pytest.raises(ConfigError) as err:
            read_pulumi_config()  # the password is not flagged secret
        assert [p.setting for p in err.value.problems] == ["kuscia:databaseAdminPassword"]
        assert "stack " in err.value.source
        monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(["kuscia:databaseAdminPassword"]))
        cfg = read_pulumi_config()
    finally:
        runtime_config.CONFIG.reset(token)
    assert cfg.domain_id == "alice" and cfg.database.admin_password == "pw-from-pulumi"

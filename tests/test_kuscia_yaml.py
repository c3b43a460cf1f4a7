"""kuscia.yaml: only fields Kuscia reads, exact names and case (NOTES §1), read back both by PyYAML
and by gopkg.in/yaml.v3 (the parser Kuscia uses) with unknown keys turned into errors."""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from kuscia_components.config import Capacity
from kuscia_components.node.kuscia_yaml import KusciaYamlInputs, config_checksum, render_kuscia_yaml
from tests.gobuild import build_go_program

KEY_DATA = "S0VZREFUQS1TRUNSRVQ="
HOSTILE_DSN = (
    "mysql://kuscia:p@ss:w/o?r#d%'\"\\ x: y@tcp(db:3306)/kine?charset=utf8mb4&parseTime=True&loc=Local"
)
HOSTILE_DSNS = [
    HOSTILE_DSN,
    "mysql://u:- leading dash, {flow}: [seq] & *alias !tag |pipe >fold@tcp(h:3306)/kine?x=1",
    "mysql://u:#comment-start@tcp(h:3306)/kine",
    "mysql://u:trailing space @tcp(h:3306)/kine",
    "mysql://u:tab\there\u00e9\u4e2d@tcp(h:3306)/kine",
    "mysql://u:'single''quotes'@tcp(h:3306)/kine",
    'mysql://u:"double"@tcp(h:3306)/kine',
    "mysql://u:%25%40url-looking@tcp(h:3306)/kine",
]
GO_SOURCE = Path(__file__).parent / "go_kuscia_yaml" / "main.go"


def inputs(**changes: Any) -> KusciaYamlInputs:
    base = KusciaYamlInputs(
        domain_id="alice",
        domain_key_data=KEY_DATA,
        protocol="TLS",
        runtime="runk",
        log_level="INFO",
        runk_namespace="autonomy-alice",
        dns_servers=("10.96.0.20",),
        runk_kubeconfig_file=None,
        capacity=Capacity("4", "4Gi", "100Gi", "200Gi"),
        datastore_endpoint=HOSTILE_DSN,
    )
    return replace(base, **changes)


def parsed(**changes: Any) -> dict[str, Any]:
    doc = yaml.safe_load(render_kuscia_yaml(inputs(**changes)))
    assert isinstance(doc, dict)
    return doc


@pytest.fixture(scope="session")
def go_yaml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/go_kuscia_yaml built against Debian's yaml.v3 (the library Kuscia parses with)."""
    return build_go_program(
        GO_SOURCE,
        tmp_path_factory.mktemp("go"),
        library="gopkg.in/yaml.v3",
        debian_package="golang-gopkg-yaml.v3-dev",
    )


def go_decode(binary: Path, text: str) -> dict[str, Any]:
    result = subprocess.run([str(binary)], input=text, capture_output=True, text=True, check=True)
    decoded = json.loads(result.stdout)
    assert isinstance(decoded, dict)
    return decoded


# -- shape ----------------------------------------------------------------------------------------


def test_fields_follow_kuscias_autonomy_config() -> None:
    assert parsed() == {
        "mode": "autonomy",
        "domainID": "alice",
        "domainKeyData": KEY_DATA,
        "logLevel": "INFO",
        "protocol": "TLS",
        "runtime": "runk",
        "runk": {"namespace": "autonomy-alice", "dnsServers": ["10.96.0.20"]},
        "capacity": {"cpu": "4", "memory": "4Gi", "storage": "100Gi", "ephemeralStorage": "200Gi"},
        "datastoreEndpoint": HOSTILE_DSN,
    }


def test_file_says_it_is_generated_and_starts_with_the_mode() -> None:
    lines = render_kuscia_yaml(inputs()).splitlines()
    assert lines[0].startswith("# Generated") and "Do not edit by hand" in lines[0]
    assert next(line for line in lines if not line.startswith("#")) == "mode: autonomy"


def test_never_a_kusciaapi_block() -> None:
    for runtime, capacity in (("runk", inputs().capacity), ("runp", None)):
        text = render_kuscia_yaml(inputs(runtime=runtime, capacity=capacity))
        assert "kusciaAPI" not in text


@pytest.mark.parametrize("protocol", ["NOTLS", "TLS", "MTLS"])
def test_protocol_is_written_in_exact_case(protocol: str) -> None:
    assert f"\nprotocol: {protocol}\n" in render_kuscia_yaml(inputs(protocol=protocol))
    assert parsed(protocol=protocol)["protocol"] == protocol


@pytest.mark.parametrize("protocol", ["tls", "notls", "Tls", "", "HTTPS"])
def test_protocol_must_be_exact_uppercase(protocol: str) -> None:
    with pytest.raises(ValueError, match="exactly NOTLS, TLS or MTLS") as err:
        render_kuscia_yaml(inputs(protocol=protocol))
    assert "e.g. 'TLS'" in str(err.value)


def test_runp_has_no_runk_block_and_capacity_only_when_given() -> None:
    doc = parsed(runtime="runp", capacity=None)
    assert doc["runtime"] == "runp" and "runk" not in doc and "capacity" not in doc
    with_capacity = parsed(runtime="runp", capacity=Capacity("2", "2Gi", "10Gi"))
    assert with_capacity["capacity"] == {"cpu": "2", "memory": "2Gi", "storage": "10Gi"}
    assert "runk" not in with_capacity


@pytest.mark.parametrize("capacity", [None, Capacity("", "4Gi", "100Gi"), Capacity("4", "4Gi", "")])
def test_runk_needs_cpu_memory_and_storage(capacity: Capacity | None) -> None:
    with pytest.raises(ValueError, match="capacity needs cpu, memory and storage") as err:
        render_kuscia_yaml(inputs(capacity=capacity))
    assert "e.g. cpu '4'" in str(err.value)


def test_runk_needs_a_namespace() -> None:
    with pytest.raises(ValueError, match=r"runk\.namespace"):
        render_kuscia_yaml(inputs(runk_namespace=""))


def test_runk_kubeconfig_file_only_when_given() -> None:
    assert "kubeconfigFile" not in parsed()["runk"]
    doc = parsed(runk_kubeconfig_file="/home/kuscia/etc/runk/kubeconfig")
    assert doc["runk"]["kubeconfigFile"] == "/home/kuscia/etc/runk/kubeconfig"


def test_dns_servers_are_a_list_even_when_empty() -> None:
    assert parsed(dns_servers=())["runk"]["dnsServers"] == []
    assert parsed(dns_servers=("10.0.0.10", "10.0.0.11"))["runk"]["dnsServers"] == ["10.0.0.10", "10.0.0.11"]


@pytest.mark.parametrize(
    ("change", "field_name"),
    [
        ({"domain_id": ""}, "domainID"),
        ({"domain_id": "master"}, "domainID"),
        ({"domain_key_data": ""}, "domainKeyData"),
        ({"runtime": "docker"}, "runtime"),
        ({"runtime": "RUNK"}, "runtime"),
        ({"datastore_endpoint": ""}, "datastoreEndpoint"),
    ],
)
def test_values_kuscia_would_refuse_are_refused_with_the_field_name(
    change: dict[str, str], field_name: str
) -> None:
    with pytest.raises(ValueError, match=f"kuscia.yaml {field_name}") as err:
        render_kuscia_yaml(inputs(**change))
    assert "e.g." in str(err.value)


# -- quoting ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("dsn", HOSTILE_DSNS)
def test_hostile_dsns_round_trip_exactly(dsn: str) -> None:
    assert parsed(datastore_endpoint=dsn)["datastoreEndpoint"] == dsn


@pytest.mark.parametrize("domain_id", ["123", "1e3", "0x1f", "true", "on", "null", "2026-01-01"])
def test_domain_ids_yaml_would_retype_stay_strings(domain_id: str) -> None:
    assert parsed(domain_id=domain_id)["domainID"] == domain_id


# -- read by Kuscia's own YAML library ------------------------------------------------------------------


def test_go_yaml_v3_reads_every_field_by_kuscias_names(go_yaml: Path) -> None:
    for runtime, capacity in (("runk", Capacity("4", "4Gi", "100Gi", "200Gi")), ("runp", None)):
        text = render_kuscia_yaml(
            inputs(runtime=runtime, capacity=capacity, runk_kubeconfig_file="/k/config")
        )
        decoded = go_decode(go_yaml, text)
        assert "error" not in decoded, decoded
        expected_yaml = yaml.safe_load(text)
        for key in (
            "mode",
            "domainID",
            "domainKeyData",
            "logLevel",
            "protocol",
            "runtime",
            "datastoreEndpoint",
        ):
            assert decoded[key] == expected_yaml[key], key
        assert decoded["kusciaAPI"] is None
        if runtime == "runk":
            assert decoded["runk"] == {
                "namespace": "autonomy-alice",
                "dnsServers": ["10.96.0.20"],
                "kubeconfigFile": "/k/config",
            }
            assert decoded["capacity"] == {
                "cpu": "4",
                "memory": "4Gi",
                "storage": "100Gi",
                "ephemeralStorage": "200Gi",
            }
        else:
            assert decoded["runk"] is None and decoded["capacity"] is None


def test_go_yaml_v3_reads_hostile_values_back_exactly(go_yaml: Path) -> None:
    for dsn in HOSTILE_DSNS:
        decoded = go_decode(go_yaml, render_kuscia_yaml(inputs(datastore_endpoint=dsn, domain_id="0x1f")))
        assert decoded.get("datastoreEndpoint") == dsn, decoded
        assert decoded["domainID"] == "0x1f"


def test_go_helper_rejects_a_misspelled_field(go_yaml: Path) -> None:
    """The check above is only meaningful if unknown keys fail (Kuscia itself ignores them)."""
    text = render_kuscia_yaml(inputs()).replace("\nprotocol:", "\nprotocl:")
    assert "protocl" in go_decode(go_yaml, text)["error"]


# -- checksum and secrets ---------------------------------------------------------------------------


def test_checksum_is_the_sha256_of_the_text_and_follows_every_change() -> None:
    text = render_kuscia_yaml(inputs())
    assert config_checksum(text) == hashlib.sha256(text.encode()).hexdigest()
    assert config_checksum(text) == config_checksum(render_kuscia_yaml(inputs()))
    variants = [
        inputs(log_level="DEBUG"),
        inputs(domain_key_data="T1RIRVI="),
        inputs(datastore_endpoint=HOSTILE_DSNS[1]),
        inputs(dns_servers=("10.96.0.21",)),
    ]
    checksums = {config_checksum(render_kuscia_yaml(v)) for v in variants}
    assert len(checksums) == len(variants) and config_checksum(text) not in checksums


def test_secrets_stay_out_of_repr_and_errors() -> None:
    text = repr(inputs())
    assert KEY_DATA not in text and "p@ss" not in text and "alice" in text
    with pytest.raises(ValueError) as err:
        render_kuscia_yaml(inputs(protocol="tls"))
    assert KEY_DATA not in str(err.value) and "p@ss" not in str(err.value)

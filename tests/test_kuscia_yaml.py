"""kuscia.yaml: only fields Kuscia reads, exact names and case (NOTES §1)."""

from __future__ import annotations

import pytest
import yaml

from kuscia_components.config import Capacity
from kuscia_components.kuscia_yaml import KusciaYamlInputs, config_checksum, render_kuscia_yaml

HOSTILE_DSN = (
    "mysql://kuscia:p@ss:w/o?r#d%'\"\\ x: y@tcp(db:3306)/kine?charset=utf8mb4&parseTime=True&loc=Local"
)


def inputs(**changes: object) -> KusciaYamlInputs:
    base = {
        "domain_id": "alice",
        "domain_key_data": "S0VZREFUQQ==",
        "protocol": "TLS",
        "runtime": "runk",
        "log_level": "INFO",
        "runk_namespace": "autonomy-alice",
        "dns_servers": ("10.96.0.20",),
        "runk_kubeconfig_file": None,
        "capacity": Capacity("4", "4Gi", "100Gi", "200Gi"),
        "datastore_endpoint": HOSTILE_DSN,
    }
    base.update(changes)
    return KusciaYamlInputs(**base)  # type: ignore[arg-type]


def test_fields_follow_kuscias_autonomy_config() -> None:
    doc = yaml.safe_load(render_kuscia_yaml(inputs()))
    assert doc == {
        "mode": "autonomy",
        "domainID": "alice",
        "domainKeyData": "S0VZREFUQQ==",
        "logLevel": "INFO",
        "protocol": "TLS",
        "runtime": "runk",
        "runk": {"namespace": "autonomy-alice", "dnsServers": ["10.96.0.20"]},
        "capacity": {"cpu": "4", "memory": "4Gi", "storage": "100Gi", "ephemeralStorage": "200Gi"},
        "datastoreEndpoint": HOSTILE_DSN,
    }


def test_never_a_partial_kusciaapi_block() -> None:
    text = render_kuscia_yaml(inputs())
    assert "kusciaAPI" not in text


@pytest.mark.parametrize("protocol", ["tls", "notls", "Tls", ""])
def test_protocol_must_be_exact_uppercase(protocol: str) -> None:
    with pytest.raises(ValueError, match="exactly"):
        render_kuscia_yaml(inputs(protocol=protocol))


def test_runk_needs_capacity_and_runp_has_no_runk_block() -> None:
    with pytest.raises(ValueError, match="capacity"):
        render_kuscia_yaml(inputs(capacity=None))
    doc = yaml.safe_load(render_kuscia_yaml(inputs(runtime="runp", capacity=None)))
    assert "runk" not in doc and "capacity" not in doc and doc["runtime"] == "runp"


def test_runk_kubeconfig_file_when_given() -> None:
    doc = yaml.safe_load(render_kuscia_yaml(inputs(runk_kubeconfig_file="/home/kuscia/etc/runk/kubeconfig")))
    assert doc["runk"]["kubeconfigFile"] == "/home/kuscia/etc/runk/kubeconfig"


def test_checksum_changes_with_any_config_change() -> None:
    first = config_checksum(render_kuscia_yaml(inputs()))
    assert first == config_checksum(render_kuscia_yaml(inputs()))
    assert first != config_checksum(render_kuscia_yaml(inputs(log_level="DEBUG")))
    assert len(first) == 64


def test_secrets_not_in_repr() -> None:
    assert "S0VZREFUQQ" not in repr(inputs()) and "p@ss" not in repr(inputs())

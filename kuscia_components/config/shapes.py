"""The Automation API's shape of the `kuscia:` settings (camelCase keys, as in a stack file).

GENERATED from kuscia_components/config/model.py by `python -m kuscia_components.config.docs`:
do not edit. `network.spec.PartySpec` extends `PartySettings`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypedDict

from kuscia_components.config.schema import spec_field


class CapacitySpec(TypedDict, total=False):
    """Schedulable capacity Kuscia advertises; runk requires cpu, memory and storage."""

    cpu: str
    memory: str
    storage: str
    ephemeralStorage: str


class ServiceSpec(TypedDict, total=False):
    type: Literal["ClusterIP", "NodePort", "LoadBalancer"]
    nodePort: int
    annotations: dict[str, str]


class DatabaseSpec(TypedDict, total=False):
    mode: Literal["in-cluster", "external"]
    name: str
    user: str
    host: str
    port: int
    adminUser: str
    image: str
    storageSize: str
    storageClass: str
    endpoint: str


class ResourcesSpec(TypedDict, total=False):
    """Requests/limits of the Kuscia container itself (k3s + envoy + agent in one pod)."""

    requests: dict[str, str]
    limits: dict[str, str]


class NetworkPolicySpec(TypedDict, total=False):
    enabled: bool
    kusciaApiFrom: list[str]


class PeerSpec(TypedDict, total=False):
    """A partner: either by StackReference (`stack`) or with an inline bundle."""

    domainId: str
    stack: str
    endpoint: str
    cert: str
    protocol: Literal["TLS", "NOTLS"]


@dataclass(frozen=True)
class PartySettings:
    """Every `kuscia:` setting by its Python name; None means not set (the default applies)."""

    domain_id: str = field(metadata={"key": "domainId"})
    namespace: str | None = spec_field("namespace")
    image: str | None = spec_field("image")
    protocol: Literal["TLS", "NOTLS", "MTLS"] | None = spec_field("protocol")
    runtime: Literal["runk", "runp"] | None = spec_field("runtime")
    capacity: CapacitySpec | None = spec_field("capacity")
    log_level: Literal["DEBUG", "INFO", "WARN", "ERROR"] | None = spec_field("logLevel")
    service: ServiceSpec | None = spec_field("service")
    public_endpoint: str | None = spec_field("publicEndpoint")
    database: DatabaseSpec | None = spec_field("database")
    domain_key_data: str | None = spec_field("domainKeyData", secret=True)
    pod_security: Literal["root", "rootless"] | None = spec_field("podSecurity")
    cluster_dns_server: str | None = spec_field("clusterDnsServer")
    runk_kubeconfig_secret: str | None = spec_field("runkKubeconfigSecret")
    resources: ResourcesSpec | None = spec_field("resources")
    network_policy: NetworkPolicySpec | None = spec_field("networkPolicy")
    trusted_network: bool | None = spec_field("trustedNetwork")
    peers: tuple[PeerSpec, ...] | None = spec_field("peers")
    peering_timeout_seconds: int | None = spec_field("peeringTimeoutSeconds")
    require_peer_ready: bool | None = spec_field("requirePeerReady")
    kube_context: str | None = spec_field("kubeContext")
    kubeconfig: str | None = spec_field("kubeconfig")
    kuscia_api_transport: Literal["portForward", "serviceProxy"] | None = spec_field("kusciaApiTransport")
    database_admin_password: str | None = spec_field("databaseAdminPassword", secret=True)

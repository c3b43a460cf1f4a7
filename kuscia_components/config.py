"""Typed party configuration (the `kuscia:` namespace of a stack) and every rule it must obey.

Config is parsed once, before any resource exists, into frozen dataclasses. Every problem in a
config is collected and reported together (`ConfigError`), each naming the setting, the rule and
an example of a good value, so a bad stack fails at preview and never with a traceback.

Secret values (`domainKeyData`, `database.adminPassword`) are held with `repr=False` so they can
never leak through a repr in a log line or an exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Protocol = Literal["NOTLS", "TLS"]
Runtime = Literal["runk", "runp"]
ServiceType = Literal["ClusterIP", "NodePort", "LoadBalancer"]
DatabaseMode = Literal["in-cluster", "external"]
LogLevel = Literal["DEBUG", "INFO", "WARN", "ERROR"]

CONFIG_NAMESPACE = "kuscia"
DEFAULT_IMAGE = "secretflow-registry.cn-hangzhou.cr.aliyuncs.com/secretflow/kuscia:1.1.0b0"
DEFAULT_MYSQL_IMAGE = "mysql:8.0.40"
GATEWAY_PORT = 1080
KUSCIAAPI_HTTP_PORT = 8082


@dataclass(frozen=True)
class Problem:
    """One rejected setting: what, which rule, and a value that would be accepted."""

    setting: str  # full key, e.g. "kuscia:database.name"
    rule: str  # e.g. "must match [A-Za-z0-9_]{1,64}"
    example: str  # e.g. "kuscia_alice"
    got: str | None = None  # short, non-secret rendering of the rejected value

    def __str__(self) -> str:
        got = f" (got {self.got})" if self.got is not None else ""
        return f"{self.setting}: {self.rule}{got}. Example: {self.example}"


class ConfigError(ValueError):
    """All problems of one config, reported together."""

    def __init__(self, problems: list[Problem], source: str = "stack config") -> None:
        self.problems = list(problems)
        self.source = source
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in {source}:\n{lines}")


@dataclass(frozen=True)
class Capacity:
    """Schedulable capacity Kuscia advertises; runk requires cpu, memory and storage."""

    cpu: str
    memory: str
    storage: str
    ephemeral_storage: str | None = None


@dataclass(frozen=True)
class PodResources:
    """Requests/limits of the Kuscia container itself (k3s + envoy + agent in one pod)."""

    requests: Mapping[str, str] = field(default_factory=lambda: {"cpu": "1", "memory": "2Gi"})
    limits: Mapping[str, str] = field(default_factory=lambda: {"cpu": "4", "memory": "8Gi"})


@dataclass(frozen=True)
class ServiceSettings:
    type: ServiceType = "ClusterIP"
    node_port: int | None = None  # gateway (1080) nodePort; only for NodePort/LoadBalancer
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NetworkPolicySettings:
    enabled: bool = True
    # Source CIDRs allowed to reach KusciaAPI (8082). Must include the API server's address,
    # because peering reaches KusciaAPI through the API server's service proxy.
    kusciaapi_from: tuple[str, ...] = ("0.0.0.0/0",)


@dataclass(frozen=True)
class DatabaseSettings:
    mode: DatabaseMode = "in-cluster"
    name: str = "kine"  # [A-Za-z0-9_]{1,64}; parse sets a per-domain default
    user: str = "kuscia"  # the dedicated kine user
    # external only
    host: str | None = None
    port: int = 3306
    admin_user: str | None = None
    admin_password: str | None = field(default=None, repr=False)  # secret
    # in-cluster only
    image: str = DEFAULT_MYSQL_IMAGE
    storage_size: str = "10Gi"
    storage_class: str | None = None


@dataclass(frozen=True)
class PeerSettings:
    """A partner: either by StackReference (`stack`) or with an inline bundle."""

    domain_id: str
    stack: str | None = None
    endpoint: str | None = None
    cert: str | None = None  # base64 of the partner's PEM certificate (public)
    protocol: Protocol | None = None


@dataclass(frozen=True)
class PartyConfig:
    domain_id: str
    namespace: str
    image: str = DEFAULT_IMAGE
    protocol: Protocol = "TLS"
    runtime: Runtime = "runk"
    capacity: Capacity | None = None
    log_level: LogLevel = "INFO"
    service: ServiceSettings = field(default_factory=ServiceSettings)
    public_endpoint: str = ""  # parse fills the default from the Service DNS name and protocol
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    domain_key_data: str | None = field(default=None, repr=False)  # secret, PKCS#1 PEM once parsed
    runk_kubeconfig_secret: str | None = None
    resources: PodResources = field(default_factory=PodResources)
    network_policy: NetworkPolicySettings = field(default_factory=NetworkPolicySettings)
    peers: tuple[PeerSettings, ...] = ()
    peering_timeout_seconds: int = 300
    require_peer_ready: bool = False
    kube_context: str | None = None
    kubeconfig: str | None = None

    @property
    def service_name(self) -> str:
        return f"kuscia-autonomy-{self.domain_id}"

    @property
    def service_dns_name(self) -> str:
        return f"{self.service_name}.{self.namespace}.svc.cluster.local"


def parse_party_config(
    values: Mapping[str, object],
    secret_keys: frozenset[str] | set[str] = frozenset(),
    *,
    source: str = "stack config",
) -> PartyConfig:
    """Parse `kuscia:` settings (keys without the namespace prefix) into a PartyConfig.

    Raises ConfigError listing every problem. See module docstring.
    """
    raise NotImplementedError  # implemented by the config work package

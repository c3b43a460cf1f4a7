"""Typed party configuration (the `kuscia:` namespace of a stack) and every rule it must obey.

Config is parsed once, before any resource exists, into frozen dataclasses. Every problem in a
config is collected and reported together (`ConfigError`), each naming the setting, the rule and
an example of a good value, so a bad stack fails at preview and never with a traceback.

Secret values (`domainKeyData`, `database.adminPassword`) are held with `repr=False` so they can
never leak through a repr in a log line or an exception.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
import urllib.parse
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

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


# ---------------------------------------------------------------------------------------------
# Parsing and validation
# ---------------------------------------------------------------------------------------------

RESERVED_DOMAIN_IDS = frozenset(
    {"default", "kube-system", "kube-public", "kube-node-lease", "master", "cross-domain"}
)
ENCRYPTED = "<encrypted: decrypted by Pulumi at deploy>"  # offline stand-in for `secure:` values

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
_DB_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_DB_USER = re.compile(r"^[A-Za-z0-9_]{1,32}$")
_QUANTITY = re.compile(r"^(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$")

_TOP_LEVEL = (
    "domainId", "namespace", "image", "protocol", "runtime", "capacity", "logLevel", "service",
    "publicEndpoint", "database", "databaseAdminPassword", "domainKeyData", "runkKubeconfigSecret",
    "resources", "networkPolicy", "peers", "peeringTimeoutSeconds", "requirePeerReady", "kubeContext",
    "kubeconfig",
)  # fmt: skip
_NESTED = {
    "capacity": ("cpu", "memory", "storage", "ephemeralStorage"),
    "service": ("type", "nodePort", "annotations"),
    "database": (
        "mode",
        "name",
        "user",
        "host",
        "port",
        "endpoint",
        "adminUser",
        "adminPassword",
        "image",
        "storageSize",
        "storageClass",
    ),
    "resources": ("requests", "limits"),
    "networkPolicy": ("enabled", "kusciaApiFrom"),
    "peers[]": ("domainId", "stack", "endpoint", "cert", "protocol"),
}


def parse_party_config(
    values: Mapping[str, object],
    secret_keys: Collection[str] = frozenset(),
    *,
    source: str = "stack config",
    encrypted_keys: Collection[str] = frozenset(),
) -> PartyConfig:
    """Parse `kuscia:` settings (keys without the namespace prefix) into a PartyConfig.

    Values may be what Pulumi hands a program (every top-level value a string, objects and
    lists as JSON) or already-typed Python values. `secret_keys` names the keys set as secrets
    (with or without the `kuscia:` prefix); `encrypted_keys` the ones that are present but
    cannot be decrypted here (offline render). Raises ConfigError listing every problem.
    """
    parser = _Parser(values, secret_keys, encrypted_keys)
    cfg = parser.parse()
    if parser.problems or cfg is None:
        raise ConfigError(parser.problems, source)
    return cfg


def read_pulumi_config() -> PartyConfig:
    """The running stack's `kuscia:` config, parsed (raises ConfigError at preview)."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    prefix = f"{CONFIG_NAMESPACE}:"
    merged: dict[str, object] = {}
    merged.update(runtime_config.get_config_env())
    merged.update(runtime_config.CONFIG.get())
    values = {k[len(prefix) :]: v for k, v in merged.items() if k.startswith(prefix)}
    secrets = {k for k in values if runtime_config.is_config_secret(prefix + k)}
    secrets |= {k[len(prefix) :] for k in runtime_config.get_config_secret_keys_env() if k.startswith(prefix)}
    return parse_party_config(values, secrets, source=f"stack {pulumi.get_stack()}")


def config_warnings(cfg: PartyConfig) -> list[str]:
    """Advice that does not block a deploy."""
    warnings: list[str] = []
    if cfg.protocol == "NOTLS":
        warnings.append(
            "protocol NOTLS: KusciaAPI (8082) answers without any authentication and the gateway speaks plain "
            "HTTP; use it only inside a trusted network, and narrow networkPolicy.kusciaApiFrom."
        )
    if cfg.network_policy.enabled and "0.0.0.0/0" in cfg.network_policy.kusciaapi_from:
        warnings.append(
            "networkPolicy.kusciaApiFrom allows 0.0.0.0/0: any pod in the cluster can reach KusciaAPI (token-"
            "protected with TLS). Narrow it to your API server addresses: kubectl get endpoints kubernetes "
            "-n default -o jsonpath='{.subsets[*].addresses[*].ip}' (each as /32)."
        )
    if not cfg.network_policy.enabled:
        warnings.append(
            "networkPolicy.enabled is false: every port of the node is open to the whole cluster."
        )
    return warnings


class _Parser:
    def __init__(
        self, values: Mapping[str, object], secret_keys: Collection[str], encrypted: Collection[str]
    ):
        self.raw = dict(values)
        self.secret = {k.removeprefix(f"{CONFIG_NAMESPACE}:") for k in secret_keys}
        self.encrypted = {k.removeprefix(f"{CONFIG_NAMESPACE}:") for k in encrypted}
        self.problems: list[Problem] = []

    # -- reporting ---------------------------------------------------------------------------

    def problem(self, key: str, rule: str, example: str, got: object = None, *, show: bool = True) -> None:
        shown = None if got is None or not show else _short(got)
        self.problems.append(Problem(f"{CONFIG_NAMESPACE}:{key}", rule, example, shown))

    def unknown_keys(self, where: str, given: Mapping[str, object], known: tuple[str, ...]) -> None:
        for key in given:
            if key in known:
                continue
            hint = _did_you_mean(key, known)
            prefix = f"{where}." if where else ""
            self.problem(
                f"{prefix}{key}",
                f"unknown setting{hint}; known settings here: {', '.join(known)}",
                f"kuscia:{prefix}{known[0]}",
            )

    # -- typed getters -----------------------------------------------------------------------

    def structured(self, key: str, kind: type, example: str) -> Any:
        value = self.raw.get(key)
        if value is None:
            return None
        if isinstance(value, str) and kind is not str:
            if key in self.encrypted:
                self.problem(
                    key,
                    "is encrypted as a whole and cannot be read offline; keep it plain and set only the "
                    "password as a secret (kuscia:databaseAdminPassword)",
                    example,
                )
                return None
            try:
                value = json.loads(value)
            except ValueError:
                self.problem(key, f"must be {_kind_name(kind)}", example, value)
                return None
        if not isinstance(value, kind):
            self.problem(key, f"must be {_kind_name(kind)}", example, value)
            return None
        return value

    def string(self, key: str, value: object, example: str, *, secret: bool = False) -> str | None:
        if value is None:
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, str | int | float)
            or isinstance(value, int | float)
        ):
            if isinstance(value, int | float) and not isinstance(value, bool):
                self.problem(
                    key, "must be a string (quote it)", example, None if secret else value, show=not secret
                )
            else:
                self.problem(key, "must be a string", example, None if secret else value, show=not secret)
            return None
        text = value.strip()
        if not text:
            self.problem(key, "must not be empty", example)
            return None
        return text

    def integer(self, key: str, value: object, example: str, low: int, high: int) -> int | None:
        if value is None:
            return None
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and value.strip().isdigit():
            number = int(value.strip())
        if number is None:
            self.problem(key, f"must be a whole number from {low} to {high}", example, value)
            return None
        if not low <= number <= high:
            self.problem(key, f"must be from {low} to {high}", example, value)
            return None
        return number

    def boolean(self, key: str, value: object, example: str) -> bool | None:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        self.problem(key, "must be true or false", example, value)
        return None

    def choice(
        self, key: str, value: object, allowed: tuple[str, ...], example: str, *, upper: bool
    ) -> str | None:
        text = self.string(key, value, example)
        if text is None:
            return None
        normal = text.upper() if upper else text.lower()
        if normal not in allowed:
            self.problem(key, f"must be one of {', '.join(allowed)}", example, text)
            return None
        return normal

    def quantity(self, key: str, value: object, example: str) -> str | None:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        text = self.string(key, value, example)
        if text is None:
            return None
        if not _QUANTITY.match(text):
            self.problem(
                key,
                "must be a Kubernetes quantity (a number with an optional suffix like m, Mi, Gi)",
                example,
                text,
            )
            return None
        return text

    def image(self, key: str, value: object, example: str) -> str | None:
        text = self.string(key, value, example)
        if text is None:
            return None
        if "@sha256:" in text:
            return text
        last = text.rsplit("/", 1)[-1]
        if ":" not in last:
            self.problem(
                key,
                "must name an explicit tag or digest (a moving image breaks reproducible deploys)",
                example,
                text,
            )
            return None
        if last.rsplit(":", 1)[1] in ("latest", ""):
            self.problem(key, "must not use the tag 'latest': pin a released version", example, text)
            return None
        return text

    # -- the config --------------------------------------------------------------------------

    def parse(self) -> PartyConfig | None:
        self.unknown_keys("", self.raw, _TOP_LEVEL)
        domain_id = self.domain_id("domainId", self.raw.get("domainId"))
        if "domainId" not in self.raw:
            self.problem("domainId", "is required: the party's domain ID, an RFC 1123 label", "alice")
        namespace = self.string("namespace", self.raw.get("namespace"), "autonomy-alice")
        if namespace is None and domain_id:
            namespace = f"autonomy-{domain_id}"
        elif namespace is not None and not _LABEL.match(namespace):
            self.problem(
                "namespace",
                "must be a Kubernetes namespace name: lowercase a-z, 0-9 and '-', at most 63, starting and ending alphanumeric",
                "autonomy-alice",
                namespace,
            )
        image = self.image("image", self.raw.get("image", DEFAULT_IMAGE), DEFAULT_IMAGE)
        protocol = self.protocol("protocol", self.raw.get("protocol", "TLS"))
        runtime_value = self.raw.get("runtime", "runk")
        if isinstance(runtime_value, str) and runtime_value.strip().lower() == "runc":
            self.problem(
                "runtime",
                "runc needs a privileged Kuscia pod on Kubernetes and is not supported here; use runk or runp",
                "runk",
            )
            runtime = None
        else:
            runtime = self.choice("runtime", runtime_value, ("runk", "runp"), "runk", upper=False)
        capacity = self.capacity(runtime)
        log_level = self.choice(
            "logLevel",
            self.raw.get("logLevel", "INFO"),
            ("DEBUG", "INFO", "WARN", "ERROR"),
            "INFO",
            upper=True,
        )
        service = self.service()
        database = self.database(domain_id)
        key = self.domain_key()
        kubeconfig_secret = self.string(
            "runkKubeconfigSecret", self.raw.get("runkKubeconfigSecret"), "runk-kubeconfig"
        )
        if kubeconfig_secret is not None and not _SUBDOMAIN.match(kubeconfig_secret):
            self.problem(
                "runkKubeconfigSecret",
                "must be a Secret name (lowercase DNS subdomain, at most 253)",
                "runk-kubeconfig",
                kubeconfig_secret,
            )
        resources = self.resources()
        network_policy = self.network_policy()
        timeout = self.integer(
            "peeringTimeoutSeconds", self.raw.get("peeringTimeoutSeconds", 300), "300", 10, 3600
        )
        require_ready = self.boolean("requirePeerReady", self.raw.get("requirePeerReady", False), "true")
        kube_context = self.string("kubeContext", self.raw.get("kubeContext"), "kind-kuscia")
        kubeconfig = self.string("kubeconfig", self.raw.get("kubeconfig"), "~/.kube/config")
        endpoint = None
        if domain_id and namespace and protocol:
            endpoint = self.public_endpoint(domain_id, namespace, protocol)
        peers = self.peers(domain_id)
        if self.problems or None in (
            domain_id,
            namespace,
            image,
            protocol,
            runtime,
            log_level,
            timeout,
            require_ready,
        ):
            return None
        assert (
            domain_id and namespace and image and protocol and runtime and log_level and endpoint is not None
        )
        return PartyConfig(
            domain_id=domain_id,
            namespace=namespace,
            image=image,
            protocol=protocol,  # type: ignore[arg-type]
            runtime=runtime,  # type: ignore[arg-type]
            capacity=capacity,
            log_level=log_level,  # type: ignore[arg-type]
            service=service or ServiceSettings(),
            public_endpoint=endpoint,
            database=database or DatabaseSettings(),
            domain_key_data=key,
            runk_kubeconfig_secret=kubeconfig_secret,
            resources=resources or PodResources(),
            network_policy=network_policy or NetworkPolicySettings(),
            peers=peers,
            peering_timeout_seconds=int(timeout or 300),
            require_peer_ready=bool(require_ready),
            kube_context=kube_context,
            kubeconfig=kubeconfig,
        )

    def domain_id(self, key: str, value: object) -> str | None:
        text = self.string(key, value, "alice")
        if text is None:
            return None
        if not _LABEL.match(text):
            self.problem(
                key,
                "must be an RFC 1123 label: lowercase a-z, 0-9 and '-', at most 63 characters, starting and ending alphanumeric (it becomes a namespace, a DNS name and part of route names)",
                "alice",
                text,
            )
            return None
        if text in RESERVED_DOMAIN_IDS:
            self.problem(
                key,
                f"is reserved by Kuscia/Kubernetes ({', '.join(sorted(RESERVED_DOMAIN_IDS))})",
                "alice",
                text,
            )
            return None
        return text

    def protocol(self, key: str, value: object) -> str | None:
        if isinstance(value, str) and value.strip().upper() == "MTLS":
            self.problem(
                key,
                "MTLS is not supported yet (client certificates for KusciaAPI are not automated); use TLS",
                "TLS",
            )
            return None
        return self.choice(key, value, ("NOTLS", "TLS"), "TLS", upper=True)

    def capacity(self, runtime: str | None) -> Capacity | None:
        raw = self.structured("capacity", dict, '{"cpu": "4", "memory": "4Gi", "storage": "100Gi"}')
        if raw is None:
            if runtime == "runk" and "capacity" not in self.raw:
                self.problem(
                    "capacity",
                    "is required for runtime runk (Kuscia refuses to start without cpu, memory and storage)",
                    '{"cpu": "4", "memory": "4Gi", "storage": "100Gi", "ephemeralStorage": "200Gi"}',
                )
            return None
        self.unknown_keys("capacity", raw, _NESTED["capacity"])
        parts: dict[str, str | None] = {}
        for field_name, example in (
            ("cpu", "4"),
            ("memory", "4Gi"),
            ("storage", "100Gi"),
            ("ephemeralStorage", "200Gi"),
        ):
            value = raw.get(field_name)
            if value is None:
                if field_name != "ephemeralStorage":
                    self.problem(f"capacity.{field_name}", "is required", example)
                continue
            parts[field_name] = self.quantity(f"capacity.{field_name}", value, example)
        cpu, memory, storage = parts.get("cpu"), parts.get("memory"), parts.get("storage")
        if not (cpu and memory and storage):
            return None
        return Capacity(cpu=cpu, memory=memory, storage=storage, ephemeral_storage=parts.get("ephemeralStorage"))

    def service(self) -> ServiceSettings | None:
        raw = self.structured("service", dict, '{"type": "LoadBalancer"}')
        if raw is None:
            return None
        self.unknown_keys("service", raw, _NESTED["service"])
        kind = self.string("service.type", raw.get("type", "ClusterIP"), "LoadBalancer")
        if kind is not None and kind not in ("ClusterIP", "NodePort", "LoadBalancer"):
            self.problem(
                "service.type", "must be one of ClusterIP, NodePort, LoadBalancer", "LoadBalancer", kind
            )
            kind = None
        node_port = self.integer("service.nodePort", raw.get("nodePort"), "31080", 30000, 32767)
        if node_port is not None and kind == "ClusterIP":
            self.problem(
                "service.nodePort",
                "only applies to service.type NodePort or LoadBalancer",
                '{"type": "NodePort", "nodePort": 31080}',
                node_port,
            )
        annotations = raw.get("annotations") or {}
        if not isinstance(annotations, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
        ):
            self.problem(
                "service.annotations",
                "must map strings to strings",
                '{"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"}',
                annotations,
            )
            annotations = {}
        if kind is None:
            return None
        return ServiceSettings(type=kind, node_port=node_port, annotations=dict(annotations))  # type: ignore[arg-type]

    def public_endpoint(self, domain_id: str, namespace: str, protocol: str) -> str | None:
        scheme = "http" if protocol == "NOTLS" else "https"
        default = f"{scheme}://kuscia-autonomy-{domain_id}.{namespace}.svc.cluster.local:1080"
        value = self.raw.get("publicEndpoint")
        if value is None:
            return default
        text = self.string("publicEndpoint", value, default)
        if text is None:
            return None
        return (
            text
            if self.endpoint_ok("publicEndpoint", text, protocol, f"{scheme}://203.0.113.10:31080")
            else None
        )

    def endpoint_ok(self, key: str, text: str, protocol: str, example: str) -> bool:
        parsed = urllib.parse.urlsplit(text)
        want = "http" if protocol == "NOTLS" else "https"
        try:
            port = parsed.port
        except ValueError:
            self.problem(key, "has an invalid port (1-65535)", example, text)
            return False
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            self.problem(key, "must be an http:// or https:// URL with a host", example, text)
            return False
        if parsed.scheme != want:
            self.problem(
                key,
                f"must use {want}:// because the protocol is {protocol} (Kuscia's gateway speaks {'plain HTTP' if want == 'http' else 'HTTPS'})",
                example,
                text,
            )
            return False
        if parsed.query or parsed.fragment or parsed.username or parsed.password:
            self.problem(key, "must not carry a query, fragment or user info", example, text)
            return False
        del port
        return True

    def database(self, domain_id: str | None) -> DatabaseSettings | None:
        raw = (
            self.structured(
                "database",
                dict,
                '{"mode": "external", "endpoint": "mysql.example.com:3306", "adminUser": "root"}',
            )
            or {}
        )
        self.unknown_keys("database", raw, _NESTED["database"])
        mode = self.string("database.mode", raw.get("mode", "in-cluster"), "in-cluster")
        if mode is not None and mode not in ("in-cluster", "external"):
            self.problem("database.mode", "must be in-cluster or external", "external", mode)
            mode = None
        default_name = f"kuscia_{(domain_id or 'node').replace('-', '_')}"[:64]
        name = self.string("database.name", raw.get("name", default_name), "kuscia_alice")
        if name is not None and not _DB_NAME.match(name):
            self.problem(
                "database.name",
                "must match [A-Za-z0-9_]{1,64} (older kine images break on '-' and other characters)",
                "kuscia_alice",
                name,
            )
        user = self.string("database.user", raw.get("user", "kuscia"), "kuscia")
        if user is not None and not _DB_USER.match(user):
            self.problem("database.user", "must match [A-Za-z0-9_]{1,32}", "kuscia_alice", user)
        image = self.image("database.image", raw.get("image", DEFAULT_MYSQL_IMAGE), DEFAULT_MYSQL_IMAGE)
        storage = self.quantity("database.storageSize", raw.get("storageSize", "10Gi"), "10Gi")
        storage_class = self.string("database.storageClass", raw.get("storageClass"), "standard")
        host, port = None, 3306
        admin_user = admin_password = None
        if mode == "external":
            endpoint = self.string("database.endpoint", raw.get("endpoint"), "mysql.example.com:3306")
            host = self.string("database.host", raw.get("host"), "mysql.example.com")
            port_value: object = raw.get("port", 3306)
            if endpoint is not None:
                host_part, port_part = _split_host_port(endpoint)
                host = host or host_part.strip("[]") or endpoint
                if port_part:
                    port_value = port_part
            parsed_port = self.integer("database.port", port_value, "3306", 1, 65535)
            port = parsed_port or 3306
            if not host:
                self.problem(
                    "database.endpoint",
                    "is required for database.mode external (host:port of the MySQL server)",
                    "mysql.example.com:3306",
                )
            elif any(c in host for c in "()/@?") or any(c.isspace() for c in host):
                self.problem(
                    "database.endpoint",
                    "must be host:port (a host name or IP address)",
                    "mysql.example.com:3306",
                    host,
                )
            admin_user = self.string("database.adminUser", raw.get("adminUser"), "root")
            if admin_user is None:
                self.problem(
                    "database.adminUser",
                    "is required for database.mode external (a MySQL user that can create databases, users and grants)",
                    "root",
                )
            admin_password = self.admin_password(raw)
        if (
            None in (mode, name, user, image, storage)
            or (name and not _DB_NAME.match(name))
            or (user and not _DB_USER.match(user))
        ):
            return None
        return DatabaseSettings(
            mode=mode,  # type: ignore[arg-type]
            name=name,  # type: ignore[arg-type]
            user=user,  # type: ignore[arg-type]
            host=host,
            port=port,
            admin_user=admin_user,
            admin_password=admin_password,
            image=image,  # type: ignore[arg-type]
            storage_size=storage,  # type: ignore[arg-type]
            storage_class=storage_class,
        )

    def admin_password(self, raw: Mapping[str, object]) -> str | None:
        how = "pulumi config set --secret kuscia:databaseAdminPassword"
        if "databaseAdminPassword" in self.raw:
            value = self.raw["databaseAdminPassword"]
            if "databaseAdminPassword" not in self.secret and "databaseAdminPassword" not in self.encrypted:
                self.problem("databaseAdminPassword", f"must be set as a secret ({how})", how, show=False)
                return None
            return self.string("databaseAdminPassword", value, how, secret=True)
        if "adminPassword" in raw:
            if "database" not in self.secret:
                self.problem("database.adminPassword", f"must be a secret; prefer {how}", how, show=False)
                return None
            return self.string("database.adminPassword", raw["adminPassword"], how, secret=True)
        self.problem("databaseAdminPassword", "is required for database.mode external", how)
        return None

    def domain_key(self) -> str | None:
        if "domainKeyData" not in self.raw:
            return None
        how = 'pulumi config set --secret kuscia:domainKeyData "$(base64 -w0 domain.key)"'
        if "domainKeyData" in self.encrypted:
            return None  # present but only Pulumi can decrypt it; validated at deploy
        if "domainKeyData" not in self.secret:
            self.problem("domainKeyData", f"must be set as a secret: {how}", how, show=False)
            return None
        value = self.string("domainKeyData", self.raw["domainKeyData"], how, secret=True)
        if value is None:
            return None
        from .pki import KeyFormatError, load_domain_key

        try:
            return load_domain_key(value)
        except KeyFormatError as err:
            self.problem("domainKeyData", str(err), how, show=False)
            return None

    def resources(self) -> PodResources | None:
        raw = self.structured(
            "resources",
            dict,
            '{"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "4", "memory": "8Gi"}}',
        )
        if raw is None:
            return None
        self.unknown_keys("resources", raw, _NESTED["resources"])
        default = PodResources()
        parsed: dict[str, dict[str, str]] = {}
        for part in ("requests", "limits"):
            block = raw.get(part, dict(getattr(default, part)))
            if not isinstance(block, dict):
                self.problem(
                    f"resources.{part}",
                    "must be an object of quantities",
                    '{"cpu": "1", "memory": "2Gi"}',
                    block,
                )
                return None
            self.unknown_keys(f"resources.{part}", block, ("cpu", "memory", "ephemeral-storage"))
            parsed[part] = {
                k: q for k, v in block.items() if (q := self.quantity(f"resources.{part}.{k}", v, "2Gi"))
            }
        return PodResources(requests=parsed["requests"], limits=parsed["limits"])

    def network_policy(self) -> NetworkPolicySettings | None:
        raw = self.structured("networkPolicy", dict, '{"enabled": true, "kusciaApiFrom": ["172.18.0.2/32"]}')
        if raw is None:
            return None
        self.unknown_keys("networkPolicy", raw, _NESTED["networkPolicy"])
        enabled = self.boolean("networkPolicy.enabled", raw.get("enabled", True), "true")
        ranges = raw.get("kusciaApiFrom", list(NetworkPolicySettings().kusciaapi_from))
        if not isinstance(ranges, list) or not ranges:
            self.problem(
                "networkPolicy.kusciaApiFrom",
                "must be a non-empty list of CIDRs",
                '["172.18.0.2/32"]',
                ranges,
            )
            return None
        cidrs = []
        for item in ranges:
            try:
                cidrs.append(str(ipaddress.ip_network(str(item), strict=True)))
            except ValueError:
                self.problem(
                    "networkPolicy.kusciaApiFrom",
                    "must hold CIDRs without host bits set",
                    '["172.18.0.2/32", "10.0.0.0/24"]',
                    item,
                )
        return NetworkPolicySettings(enabled=bool(enabled), kusciaapi_from=tuple(cidrs))

    def peers(self, self_id: str | None) -> tuple[PeerSettings, ...]:
        raw = self.structured("peers", list, '[{"domainId": "bob", "stack": "bob"}]')
        if not raw:
            return ()
        peers: list[PeerSettings] = []
        seen: set[str] = set()
        for index, item in enumerate(raw):
            where = f"peers[{index}]"
            if not isinstance(item, dict):
                self.problem(where, "must be an object", '{"domainId": "bob", "stack": "bob"}', item)
                continue
            self.unknown_keys(where, item, _NESTED["peers[]"])
            peer_id = self.domain_id(f"{where}.domainId", item.get("domainId"))
            if "domainId" not in item:
                self.problem(f"{where}.domainId", "is required", "bob")
            if peer_id is None:
                continue
            if peer_id == self_id:
                self.problem(f"{where}.domainId", "must not be this party's own domain ID", "bob", peer_id)
                continue
            if peer_id in seen:
                self.problem(f"{where}.domainId", "is listed twice: each partner once", "bob", peer_id)
                continue
            seen.add(peer_id)
            peer = self.peer(where, peer_id, item)
            if peer is not None:
                peers.append(peer)
        if self_id:
            self.route_collisions(self_id, [p.domain_id for p in peers])
        return tuple(peers)

    def peer(self, where: str, peer_id: str, item: Mapping[str, object]) -> PeerSettings | None:
        stack = self.string(f"{where}.stack", item.get("stack"), "bob")
        inline = [k for k in ("endpoint", "cert", "protocol") if k in item]
        if stack is not None and inline:
            self.problem(
                where,
                "give either stack (StackReference) or endpoint+cert+protocol (pasted bundle), not both",
                '{"domainId": "bob", "stack": "bob"}',
            )
            return None
        if stack is not None:
            return PeerSettings(domain_id=peer_id, stack=stack)
        if "stack" in item:
            return None
        missing = [k for k in ("endpoint", "cert", "protocol") if k not in item]
        if missing:
            self.problem(
                where,
                f"needs stack, or all of endpoint, cert and protocol (missing {', '.join(missing)})",
                '{"domainId": "bob", "endpoint": "https://203.0.113.10:31080", "cert": "<base64 PEM from bob\'s peeringBundle>", "protocol": "TLS"}',
            )
            return None
        protocol = self.protocol(f"{where}.protocol", item.get("protocol"))
        endpoint = self.string(f"{where}.endpoint", item.get("endpoint"), "https://203.0.113.10:31080")
        cert = self.string(f"{where}.cert", item.get("cert"), "<base64 PEM from the partner's peeringBundle>")
        if (
            protocol
            and endpoint
            and not self.endpoint_ok(f"{where}.endpoint", endpoint, protocol, "https://203.0.113.10:31080")
        ):
            return None
        if cert is not None:
            from .pki import CertFormatError, cert_public_key_pem

            try:
                cert_public_key_pem(cert)
            except CertFormatError as err:
                self.problem(
                    f"{where}.cert", str(err), "<base64 PEM from the partner's peeringBundle>", show=False
                )
                return None
        if None in (protocol, endpoint, cert):
            return None
        return PeerSettings(domain_id=peer_id, endpoint=endpoint, cert=cert, protocol=protocol)  # type: ignore[arg-type]

    def route_collisions(self, self_id: str, peer_ids: list[str]) -> None:
        """Kuscia names routes `<src>-<dst>`, so `a-b`->`c` and `a`->`b-c` are the same object."""
        names: dict[str, tuple[str, str]] = {}
        for peer_id in peer_ids:
            for src, dst in ((self_id, peer_id), (peer_id, self_id)):
                name = f"{src}-{dst}"
                other = names.setdefault(name, (src, dst))
                if other != (src, dst):
                    self.problem(
                        "peers",
                        f"routes {other[0]}->{other[1]} and {src}->{dst} would both be named '{name}' in Kuscia; rename one domain",
                        "domain IDs without hyphens, e.g. alice, bob, carol",
                    )


def _did_you_mean(key: str, known: tuple[str, ...]) -> str:
    lowered = {k.lower(): k for k in known}
    match = lowered.get(key.lower()) or next(
        iter(difflib.get_close_matches(key, known, n=1, cutoff=0.6)), None
    )
    return f" (did you mean '{match}'?)" if match else ""


def _kind_name(kind: type) -> str:
    names: dict[type, str] = {dict: "an object (a YAML mapping)", list: "a list", str: "a string"}
    return names.get(kind, kind.__name__)


def _short(value: object) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _split_host_port(endpoint: str) -> tuple[str, str]:
    """'host:3306' / '[::1]:3306' / 'host' -> (host, port text or '')."""
    if endpoint.startswith("["):
        host, _, rest = endpoint[1:].partition("]")
        return host, rest.removeprefix(":")
    if endpoint.count(":") == 1:
        host, _, port = endpoint.partition(":")
        return host, port
    return endpoint, ""

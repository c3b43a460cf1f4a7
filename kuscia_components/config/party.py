"""Typed party configuration (the `kuscia:` namespace of a stack) and every rule it must obey.

Config is parsed once, before any resource exists, into frozen dataclasses. Every problem in a
config is collected and reported together (`ConfigError`), each naming the setting, the rule and
an example of a good value, so a bad stack fails at preview and never with a traceback.

Values come in the shape Pulumi hands a program: every top-level value a string, objects and
lists as JSON text (`stackfile.py` produces the same shape offline). Already-typed Python values
are accepted too. Secret values (`domainKeyData`, the database admin password) are held with
`repr=False` and never shown in a problem, nor is any value of a key set as a secret.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
import urllib.parse
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

from kuscia_components.config.quantity import QuantityError, parse_quantity

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
ENCRYPTED = "<encrypted: decrypted by Pulumi at deploy>"  # offline stand-in for `secure:` values


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

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across Automation API processes
        return (type(self), (self.problems, self.source))


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
    admin_password: str | None = field(default=None, repr=False)  # secret (ENCRYPTED offline)
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
    # Settings present in the stack but encrypted, so unknown to an offline command (render,
    # check): "domainKeyData" (then domain_key_data is None) or the database admin password
    # (then admin_password is ENCRYPTED). Always empty under `pulumi up`, which decrypts.
    encrypted_settings: frozenset[str] = frozenset()

    @property
    def service_name(self) -> str:
        return f"kuscia-autonomy-{self.domain_id}"

    @property
    def service_dns_name(self) -> str:
        return f"{self.service_name}.{self.namespace}.svc.cluster.local"


# ---------------------------------------------------------------------------------------------
# The settings and their shapes
# ---------------------------------------------------------------------------------------------

RESERVED_DOMAIN_IDS = frozenset(
    {"default", "kube-system", "kube-public", "kube-node-lease", "master", "cross-domain"}
)
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})
# The Service is named kuscia-autonomy-<domainId> and must be a 63-character DNS label.
MAX_DOMAIN_ID_LENGTH = 63 - len("kuscia-autonomy-")

SETTINGS = (
    "domainId",
    "namespace",
    "image",
    "protocol",
    "runtime",
    "capacity",
    "logLevel",
    "service",
    "publicEndpoint",
    "database",
    "databaseAdminPassword",
    "domainKeyData",
    "runkKubeconfigSecret",
    "resources",
    "networkPolicy",
    "peers",
    "peeringTimeoutSeconds",
    "requirePeerReady",
    "kubeContext",
    "kubeconfig",
)
NESTED = {
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
    "resources.requests": ("cpu", "memory", "ephemeral-storage"),
    "resources.limits": ("cpu", "memory", "ephemeral-storage"),
    "networkPolicy": ("enabled", "kusciaApiFrom"),
    "peers[]": ("domainId", "stack", "endpoint", "cert", "protocol"),
}
SECRET_SETTINGS = frozenset({"domainKeyData", "databaseAdminPassword", "database.adminPassword"})
_EXTERNAL_ONLY = ("host", "port", "endpoint", "adminUser", "adminPassword")
_IN_CLUSTER_ONLY = ("image", "storageSize", "storageClass")

_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_DNS_NAME = re.compile(
    r"(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*"
)
_DB_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")
_DB_USER = re.compile(r"[A-Za-z0-9_]{1,32}")
_STACK_REF = re.compile(r"[A-Za-z0-9_.-]{1,100}(/[A-Za-z0-9_.-]{1,100}){0,2}")
_ANNOTATION_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?")
# Container image reference (distribution/reference grammar, simplified): lowercase path
# components, optional registry host[:port], then :tag and/or @algorithm:hex.
_IMAGE = re.compile(
    r"(?:(?P<registry>[A-Za-z0-9.-]+(?::[0-9]+)?|\[[0-9A-Fa-f:]+\](?::[0-9]+)?)/)?"
    r"(?P<path>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?"
)
_MISSING: Any = object()  # a setting that is not there at all (JSON null is a value)
_UNSHOWN: Any = object()


def parse_party_config(
    values: Mapping[str, object],
    secret_keys: Collection[str] = frozenset(),
    *,
    source: str = "stack config",
    encrypted_keys: Collection[str] = frozenset(),
) -> PartyConfig:
    """Parse `kuscia:` settings (keys without the namespace prefix) into a PartyConfig.

    `secret_keys` names the keys set as secrets (with or without the `kuscia:` prefix; dotted
    paths such as "database.adminPassword" make the check of nested secrets exact);
    `encrypted_keys` the ones present but unreadable here (offline). Raises ConfigError listing
    every problem; never raises anything else for any input.
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


# ---------------------------------------------------------------------------------------------
# Advice that does not block a deploy
# ---------------------------------------------------------------------------------------------


def config_warnings(cfg: PartyConfig) -> list[str]:
    """Non-fatal advice about a valid config: security trade-offs and likely slips."""
    warnings: list[str] = []
    add = warnings.append
    if cfg.protocol == "NOTLS":
        add(
            "protocol NOTLS: KusciaAPI (8082) answers anyone who reaches it without any authentication, and "
            "partners talk to the gateway in plain HTTP; use it only inside a trusted network and narrow "
            "networkPolicy.kusciaApiFrom."
        )
    if not cfg.network_policy.enabled:
        add(
            "networkPolicy.enabled is false: every port of the node, KusciaAPI included, is open to the whole cluster."
        )
    elif "0.0.0.0/0" in cfg.network_policy.kusciaapi_from:
        add(
            "networkPolicy.kusciaApiFrom allows 0.0.0.0/0: any pod in the cluster can reach KusciaAPI (the "
            "token still protects it under TLS). Peering only needs the API server, so narrow it to the API "
            "server addresses: kubectl get endpoints kubernetes -n default "
            "-o jsonpath='{.subsets[*].addresses[*].ip}' (each as /32)."
        )
    if "domainKeyData" in cfg.encrypted_settings:
        add(
            "domainKeyData is encrypted, so it was not checked here; offline output shows a stand-in key "
            "(pulumi up uses and checks the real one)."
        )
    if cfg.runtime == "runp" and cfg.image == DEFAULT_IMAGE:
        add(
            "runtime runp runs SecretFlow inside the Kuscia pod and needs the kuscia-secretflow image; the "
            "default image is the plain kuscia image. Set kuscia:image to a kuscia-secretflow tag."
        )
    warnings.extend(_database_warnings(cfg))
    warnings.extend(_reachability_warnings(cfg))
    warnings.extend(_peer_warnings(cfg))
    if cfg.require_peer_ready and cfg.peering_timeout_seconds < 300:
        add(
            f"requirePeerReady with peeringTimeoutSeconds {cfg.peering_timeout_seconds}: the first handshake "
            "often takes several minutes (up to about 5), so the deploy may fail while peering is still "
            "on its way; 300 or more is safer."
        )
    return warnings


def _database_warnings(cfg: PartyConfig) -> list[str]:
    db = cfg.database
    if db.mode != "external":
        return []
    warnings = []
    if db.name == default_database_name(cfg.domain_id):
        warnings.append(
            f"database.name defaults to {db.name}: if another stack with domain ID {cfg.domain_id} (say staging "
            "and production) uses the same MySQL server, both nodes would share one kine database and corrupt "
            "each other. Set database.name explicitly per stack."
        )
    if db.user == "kuscia":
        warnings.append(
            "database.user is kuscia: every party on a shared MySQL server would manage the same "
            f"user and overwrite its password. Give each party its own, e.g. kuscia_{cfg.domain_id.replace('-', '_')}."
        )
    if db.host is not None and _is_loopback(db.host):
        warnings.append(
            f"database host {db.host} is the Kuscia pod itself once it runs in Kubernetes (upstream issue "
            "#721); use an address the pod can reach, e.g. the server's IP or a Service DNS name."
        )
    return warnings


def _reachability_warnings(cfg: PartyConfig) -> list[str]:
    default = f"{'http' if cfg.protocol == 'NOTLS' else 'https'}://{cfg.service_dns_name}:{GATEWAY_PORT}"
    if cfg.public_endpoint != default:
        return []
    if cfg.service.type != "ClusterIP":
        return [
            f"service.type is {cfg.service.type} but publicEndpoint is the in-cluster address {default}: "
            "partners in other clusters cannot use it. Set publicEndpoint to the load balancer or "
            "node address, e.g. https://203.0.113.10:31080."
        ]
    if any(p.stack is None for p in cfg.peers):
        return [
            f"publicEndpoint is the in-cluster address {default}: a partner configured with a pasted bundle "
            "can reach it only from this same cluster. For partners elsewhere, expose the gateway "
            "(service.type LoadBalancer or NodePort) and set publicEndpoint."
        ]
    return []


def _peer_warnings(cfg: PartyConfig) -> list[str]:
    """Pasted bundles that look mixed up: a certificate for another domain, or one key twice."""
    from kuscia_components.core.pki import load_certificate, public_key_sha256

    warnings = []
    seen: dict[str, str] = {}
    for peer in cfg.peers:
        if peer.cert is None:
            continue
        try:
            names = load_certificate(peer.cert).subject.get_attributes_for_oid(_common_name_oid())
            fingerprint = public_key_sha256(peer.cert)
        except Exception:  # validated at parse time; nothing to add if it cannot be read again
            continue
        common_name = str(names[0].value) if names else None
        if common_name is not None and common_name != peer.domain_id:
            warnings.append(
                f"peers: the certificate given for {peer.domain_id} is Kuscia's certificate of "
                f"{common_name!r} (CN={common_name}): check that you pasted {peer.domain_id}'s own peering bundle."
            )
        if fingerprint in seen:
            warnings.append(
                f"peers: {seen[fingerprint]} and {peer.domain_id} carry the same public key; each party has "
                "its own key, so one of the pasted certificates is probably the wrong one."
            )
        seen.setdefault(fingerprint, peer.domain_id)
    return warnings


def _common_name_oid() -> Any:
    from cryptography.x509.oid import NameOID

    return NameOID.COMMON_NAME


def default_database_name(domain_id: str) -> str:
    """kuscia_<domainId> with '-' as '_' (older kine breaks on '-'), at most 64 characters."""
    return f"kuscia_{domain_id.replace('-', '_')}"[:64]


def default_database_user(domain_id: str) -> str:
    """kuscia_<domainId>, at most 32 characters: parties sharing one MySQL server must not share
    (and overwrite the password of) one user."""
    return f"kuscia_{domain_id.replace('-', '_')}"[:32]


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------


class _Parser:
    """One pass over the settings; each section method records problems and returns a value or
    None, so that every problem of the config is found in one run."""

    def __init__(
        self, values: Mapping[str, object], secret_keys: Collection[str], encrypted: Collection[str]
    ) -> None:
        prefix = f"{CONFIG_NAMESPACE}:"
        self.raw = {str(k).removeprefix(prefix): v for k, v in values.items()}
        self.secret = {str(k).removeprefix(prefix) for k in secret_keys}
        self.encrypted = {str(k).removeprefix(prefix) for k in encrypted}
        self.problems: list[Problem] = []
        self.unknown_offline: set[str] = set()

    # -- reporting ---------------------------------------------------------------------------

    def problem(self, key: str, rule: str, example: str, got: object = _UNSHOWN) -> None:
        top = re.split(r"[.\[]", key, maxsplit=1)[0]
        hidden = key in SECRET_SETTINGS or top in self.secret or top in self.encrypted
        shown = None if got is _UNSHOWN or hidden else _short(got)
        self.problems.append(Problem(f"{CONFIG_NAMESPACE}:{_clip(key)}", rule, example, shown))

    def unknown_keys(self, where: str, given: Mapping[Any, object], known: tuple[str, ...]) -> None:
        """Every key not in `known` is a problem, with the nearest known one as a suggestion."""
        for raw_key in given:
            key = str(raw_key)
            if key in known:
                continue
            full = f"{where}.{key}" if where else key
            if not where and re.match(r"[A-Za-z]+[.\[]", key):
                head = re.split(r"[.\[]", key, maxsplit=1)[0]
                if head in SETTINGS:
                    self.problem(
                        full,
                        f"is a top-level key named '{key}': `pulumi config set` without --path stores "
                        "a dotted name as one key. Remove it and set the nested value with --path",
                        f"pulumi config rm 'kuscia:{key}' && pulumi config set --path 'kuscia:{key}' VALUE",
                    )
                    continue
            match = _did_you_mean(key, known)
            if match is None and not where:
                match = next(
                    (
                        f"{p}.{k}"
                        for p, keys in NESTED.items()
                        if "[" not in p and "." not in p
                        for k in keys
                        if k.lower() == key.lower()
                    ),
                    None,
                )
            hint = f" (did you mean '{match}'?)" if match else f"; known settings here: {', '.join(known)}"
            example = f"kuscia:{where + '.' if where else ''}{match or known[0]}"
            self.problem(full, f"is not a setting{hint}", example)

    # -- typed getters: each returns None after recording a problem --------------------------

    def readable(self, key: str, value: object, example: str) -> bool:
        """False for a missing value, or an encrypted one that only Pulumi can read."""
        if value is _MISSING:
            return False
        if value == ENCRYPTED:
            self.problem(
                key,
                "is encrypted, so offline commands cannot read it (pulumi up can). Only domainKeyData and "
                "the database admin password need to be secrets; set this one in plain text",
                example,
            )
            return False
        return True

    def text(self, key: str, value: object, example: str, *, secret: bool = False) -> str | None:
        if not self.readable(key, value, example):
            return None
        shown = _UNSHOWN if secret else value
        if isinstance(value, bool) and _is_nested(key):
            self.problem(
                key, "must be a string; quote it (YAML reads yes/no/on/off/y/n as true/false)", example, shown
            )
            return None
        if not isinstance(value, str):
            self.problem(key, f"must be a string, not {_type_name(value)}", example, shown)
            return None
        if not _is_nested(key) and value.strip()[:1] in ("{", "[") and _json_container(value):
            self.problem(key, f"must be a string, not {_type_name(json.loads(value))}", example, shown)
            return None
        if not value.strip():
            self.problem(key, "must not be empty (remove the setting to use its default)", example)
            return None
        return value if secret else value.strip()

    def integer(self, key: str, value: object, example: str, low: int, high: int) -> int | None:
        if not self.readable(key, value, example):
            return None
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and not _is_nested(key) and re.fullmatch(r"\s*[0-9]{1,10}\s*", value):
            number = int(value)
        elif isinstance(value, str) and _is_nested(key) and re.fullmatch(r"[0-9]{1,10}", value.strip()):
            self.problem(key, "must be a number, not a string (remove the quotes)", example, value)
            return None
        if number is None:
            self.problem(key, f"must be a whole number from {low} to {high}", example, value)
            return None
        if not low <= number <= high:
            self.problem(key, f"must be from {low} to {high}", example, value)
            return None
        return number

    def boolean(self, key: str, value: object, example: str) -> bool | None:
        if not self.readable(key, value, example):
            return None
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and not _is_nested(key) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            self.problem(key, "must be true or false without quotes", example, value)
        else:
            self.problem(key, "must be true or false", example, value)
        return None

    def choice(self, key: str, value: object, allowed: tuple[str, ...], example: str) -> str | None:
        """One of `allowed`, matched in any case, returned in the canonical spelling."""
        text = self.text(key, value, example)
        if text is None:
            return None
        by_upper = {a.upper(): a for a in allowed}
        canonical = by_upper.get(text.upper())
        if canonical is None:
            close = difflib.get_close_matches(text.upper(), by_upper, n=1, cutoff=0.5)
            hint = f" (did you mean {by_upper[close[0]]}?)" if close else ""
            self.problem(key, f"must be one of {', '.join(allowed)}{hint}", example, text)
        return canonical

    def quantity(
        self, key: str, value: object, example: str, *, zero_ok: bool = False
    ) -> tuple[str, Fraction] | None:
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
            self.problem(
                key, "must be at most 2^63-1, the largest quantity Kubernetes represents", example, value
            )
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = _number_text(value)
        text = self.text(key, value, example)
        if text is None:
            return None
        try:
            amount = parse_quantity(text)
        except QuantityError as err:
            self.problem(key, str(err), example, text)
            return None
        if amount < 0 or (amount == 0 and not zero_ok):
            self.problem(key, f"must be {'zero or more' if zero_ok else 'more than zero'}", example, text)
            return None
        return text, amount

    def obj(self, key: str, value: object, example: str) -> dict[Any, Any] | None:
        return self.structured(key, value, dict, example)

    def array(self, key: str, value: object, example: str) -> list[Any] | None:
        return self.structured(key, value, list, example)

    def structured(self, key: str, value: object, kind: type, example: str) -> Any:
        """An object or list; at the top level Pulumi passes them as JSON text."""
        if value == ENCRYPTED and key in self.encrypted:
            self.problem(
                key,
                "is encrypted as a whole, so offline commands cannot read it (pulumi up can). "
                "Keep it in plain text and make only the secret inside a secret "
                "(kuscia:databaseAdminPassword, kuscia:domainKeyData)",
                example,
            )
            return None
        if not self.readable(key, value, example):
            return None
        if isinstance(value, str) and not _is_nested(key):
            if not value.strip():
                self.problem(key, "must not be empty (remove the setting to use its default)", example)
                return None
            try:
                value = json.loads(value)
            except (ValueError, RecursionError):
                self.problem(key, f"must be {_type_name(kind())} (YAML or JSON)", example, value)
                return None
        if not isinstance(value, kind):
            self.problem(key, f"must be {_type_name(kind())}, not {_type_name(value)}", example, value)
            return None
        return value

    def hostname(self, key: str, host: str, example: str) -> bool:
        if _valid_host(host):
            return True
        self.problem(key, "must be a host name or an IP address", example, host)
        return False

    def url(self, key: str, text: str, protocol: str, example: str) -> bool:
        """An http(s) URL with a host, optional port and path prefix, scheme matching protocol."""
        want = "http" if protocol == "NOTLS" else "https"
        try:
            parsed: urllib.parse.SplitResult | None = urllib.parse.urlsplit(text)
        except ValueError:  # e.g. an unclosed [IPv6 bracket
            parsed = None
        try:
            port_ok = parsed is None or parsed.port is None or parsed.port > 0
        except ValueError:  # not a number, or above 65535
            port_ok = False
        if parsed is None or parsed.scheme.lower() not in ("http", "https") or not parsed.hostname:
            self.problem(
                key, "must be an http:// or https:// URL with a host, e.g. https://host:port", example, text
            )
            return False
        if any(c.isspace() for c in text):
            self.problem(key, "must not contain spaces", example, text)
            return False
        if not port_ok:
            self.problem(key, "has an invalid port (1-65535)", example, text)
            return False
        if parsed.username is not None or "?" in text or "#" in text:
            self.problem(
                key,
                "must not carry user info, a query or a fragment (only host, port and path)",
                example,
                text,
            )
            return False
        if not self.hostname(key, parsed.hostname, example):
            return False
        if parsed.scheme.lower() != want:
            self.problem(
                key,
                f"must use {want}:// because the protocol is {protocol} (Kuscia's gateway then speaks "
                f"{'plain HTTP' if want == 'http' else 'HTTPS'})",
                example,
                text,
            )
            return False
        return True

    # -- the config --------------------------------------------------------------------------

    def get(self, key: str, default: object = _MISSING) -> object:
        return self.raw.get(key, default)

    def parse(self) -> PartyConfig | None:
        self.unknown_keys("", self.raw, SETTINGS)
        domain_id = self.domain_id("domainId", self.get("domainId"), own=True)
        if "domainId" not in self.raw:
            self.problem("domainId", "is required: the party's domain ID, an RFC 1123 label", "alice")
        namespace = self.namespace(domain_id)
        image = self.image("image", self.get("image", DEFAULT_IMAGE), DEFAULT_IMAGE)
        protocol = self.protocol("protocol", self.get("protocol", "TLS"))
        runtime = self.runtime()
        capacity = self.capacity(runtime)
        log_level = self.choice(
            "logLevel", self.get("logLevel", "INFO"), ("DEBUG", "INFO", "WARN", "ERROR"), "INFO"
        )
        service = self.service()
        endpoint = self.public_endpoint(domain_id, namespace, protocol)
        database = self.database(domain_id)
        key = self.domain_key()
        kubeconfig_secret = self.runk_kubeconfig_secret(runtime)
        resources = self.resources()
        network_policy = self.network_policy()
        peers = self.peers(domain_id)
        timeout = self.integer(
            "peeringTimeoutSeconds", self.get("peeringTimeoutSeconds", "300"), "300", 10, 3600
        )
        require_ready = self.boolean("requirePeerReady", self.get("requirePeerReady", "false"), "true")
        kube_context = self.text("kubeContext", self.get("kubeContext"), "kind-kuscia")
        kubeconfig = self.text("kubeconfig", self.get("kubeconfig"), "~/.kube/config")
        if self.problems:
            return None
        assert domain_id and namespace and image and protocol and runtime and log_level and endpoint
        assert service and database and resources and network_policy and peers is not None
        assert timeout is not None and require_ready is not None
        return PartyConfig(
            domain_id=domain_id,
            namespace=namespace,
            image=image,
            protocol=protocol,  # type: ignore[arg-type]
            runtime=runtime,  # type: ignore[arg-type]
            capacity=capacity,
            log_level=log_level,  # type: ignore[arg-type]
            service=service,
            public_endpoint=endpoint,
            database=database,
            domain_key_data=key,
            runk_kubeconfig_secret=kubeconfig_secret,
            resources=resources,
            network_policy=network_policy,
            peers=peers,
            peering_timeout_seconds=timeout,
            require_peer_ready=require_ready,
            kube_context=kube_context,
            kubeconfig=kubeconfig,
            encrypted_settings=frozenset(self.unknown_offline),
        )

    def domain_id(self, key: str, value: object, *, own: bool) -> str | None:
        example = "alice" if own else "bob"
        text = self.text(key, value, example)
        if text is None:
            return None
        limit = MAX_DOMAIN_ID_LENGTH if own else 63
        fault = _label_fault(text, limit)
        if fault:
            why = (
                "the Service kuscia-autonomy-<domainId> must fit in 63 characters"
                if own and len(text) > limit and len(text) <= 63
                else "it becomes a namespace, a DNS name and part of route names"
            )
            self.problem(
                key,
                f"must be an RFC 1123 label of at most {limit} characters: lowercase letters, digits and '-', "
                f"starting and ending with a letter or digit ({why}); this one {fault}",
                example,
                text,
            )
            return None
        if text in RESERVED_DOMAIN_IDS:
            self.problem(
                key,
                f"is reserved by Kuscia or Kubernetes ({', '.join(sorted(RESERVED_DOMAIN_IDS))})",
                example,
                text,
            )
            return None
        return text

    def namespace(self, domain_id: str | None) -> str | None:
        if "namespace" not in self.raw:
            return f"autonomy-{domain_id}" if domain_id else None
        text = self.text("namespace", self.get("namespace"), "autonomy-alice")
        if text is None:
            return None
        fault = _label_fault(text, 63)
        if fault:
            self.problem(
                "namespace",
                "must be a Kubernetes namespace name: lowercase letters, digits and '-', starting and ending "
                f"with a letter or digit, at most 63 characters; this one {fault}",
                "autonomy-alice",
                text,
            )
            return None
        if text in SYSTEM_NAMESPACES:
            self.problem("namespace", "must not be a Kubernetes system namespace", "autonomy-alice", text)
            return None
        return text

    def image(self, key: str, value: object, example: str) -> str | None:
        text = self.text(key, value, example)
        if text is None:
            return None
        match = _IMAGE.fullmatch(text)
        if match is None:
            self.problem(
                key, "must be a container image reference like registry/repository:tag", example, text
            )
            return None
        if match["tag"] is None and match["digest"] is None:
            self.problem(
                key,
                "must name an explicit tag or digest (a moving image breaks reproducible deploys)",
                example,
                text,
            )
            return None
        if match["tag"] == "latest":
            self.problem(key, "must not use the tag 'latest': pin a released version", example, text)
            return None
        return text

    def protocol(self, key: str, value: object, *, peer: bool = False) -> str | None:
        if isinstance(value, str) and value.strip().upper() == "MTLS":
            if peer:  # a partner's MTLS gateway is server-only HTTPS: addressed like TLS (NOTES §1.6)
                return "TLS"
            self.problem(
                key,
                "MTLS is not supported yet (client certificates for KusciaAPI are not automated); use TLS",
                "TLS",
            )
            return None
        return self.choice(key, value, ("NOTLS", "TLS"), "TLS")

    def runtime(self) -> str | None:
        value = self.get("runtime", "runk")
        if isinstance(value, str) and value.strip().lower() == "runc":
            self.problem(
                "runtime",
                "runc needs a privileged Kuscia pod on Kubernetes and is not supported here; use runk or runp",
                "runk",
            )
            return None
        return self.choice("runtime", value, ("runk", "runp"), "runk")

    def capacity(self, runtime: str | None) -> Capacity | None:
        example = '{"cpu": "4", "memory": "4Gi", "storage": "100Gi", "ephemeralStorage": "200Gi"}'
        if "capacity" not in self.raw:
            if runtime == "runk":
                self.problem(
                    "capacity",
                    "is required for runtime runk (Kuscia refuses to start without cpu, memory and storage)",
                    example,
                )
            return None
        raw = self.obj("capacity", self.get("capacity"), example)
        if raw is None:
            return None
        self.unknown_keys("capacity", raw, NESTED["capacity"])
        parts: dict[str, str] = {}
        for name, good in (
            ("cpu", "4"),
            ("memory", "4Gi"),
            ("storage", "100Gi"),
            ("ephemeralStorage", "200Gi"),
        ):
            if name not in raw:
                if name != "ephemeralStorage":
                    self.problem(
                        f"capacity.{name}", "is required (Kuscia needs cpu, memory and storage)", good
                    )
                continue
            parsed = self.quantity(f"capacity.{name}", raw[name], good)
            if parsed is not None:
                parts[name] = parsed[0]
        if not {"cpu", "memory", "storage"} <= set(parts):
            return None
        return Capacity(parts["cpu"], parts["memory"], parts["storage"], parts.get("ephemeralStorage"))

    def service(self) -> ServiceSettings | None:
        if "service" not in self.raw:
            return ServiceSettings()
        raw = self.obj("service", self.get("service"), '{"type": "LoadBalancer"}')
        if raw is None:
            return None
        self.unknown_keys("service", raw, NESTED["service"])
        kind = self.choice(
            "service.type",
            raw.get("type", "ClusterIP"),
            ("ClusterIP", "NodePort", "LoadBalancer"),
            "LoadBalancer",
        )
        node_port = self.integer("service.nodePort", raw.get("nodePort", _MISSING), "31080", 30000, 32767)
        if node_port is not None and kind == "ClusterIP":
            self.problem(
                "service.nodePort",
                "only applies to service.type NodePort or LoadBalancer",
                '{"type": "NodePort", "nodePort": 31080}',
                node_port,
            )
        annotations = self.annotations(raw.get("annotations", {}))
        if kind is None or annotations is None or self.problems_about("service"):
            return None
        return ServiceSettings(type=kind, node_port=node_port, annotations=annotations)  # type: ignore[arg-type]

    def annotations(self, value: object) -> dict[str, str] | None:
        example = '{"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"}'
        raw = self.obj("service.annotations", value, example)
        if raw is None:
            return None
        result: dict[str, str] = {}
        for name, text in raw.items():
            if not isinstance(text, str):
                self.problem(
                    f"service.annotations.{name}", f"must be a string, not {_type_name(text)}", example, text
                )
                continue
            if not _annotation_key_ok(str(name)):
                self.problem(
                    "service.annotations",
                    "keys must be Kubernetes annotation names ([prefix/]name, name at most 63 characters)",
                    example,
                    name,
                )
                continue
            result[str(name)] = text
        return result

    def public_endpoint(
        self, domain_id: str | None, namespace: str | None, protocol: str | None
    ) -> str | None:
        scheme = "http" if protocol == "NOTLS" else "https"
        example = f"{scheme}://203.0.113.10:31080"
        if "publicEndpoint" not in self.raw:
            if domain_id and namespace and protocol:
                return f"{scheme}://kuscia-autonomy-{domain_id}.{namespace}.svc.cluster.local:{GATEWAY_PORT}"
            return None
        text = self.text("publicEndpoint", self.get("publicEndpoint"), example)
        if text is None or protocol is None:
            return None
        return text if self.url("publicEndpoint", text, protocol, example) else None

    def database(self, domain_id: str | None) -> DatabaseSettings | None:
        example = '{"mode": "external", "endpoint": "mysql.example.com:3306", "adminUser": "root"}'
        raw = self.obj("database", self.get("database"), example) if "database" in self.raw else {}
        if raw is None:
            return None
        self.unknown_keys("database", raw, NESTED["database"])
        mode = self.choice(
            "database.mode", raw.get("mode", "in-cluster"), ("in-cluster", "external"), "external"
        )
        default_name = default_database_name(domain_id) if domain_id else "kuscia_alice"
        name = self.text("database.name", raw.get("name", default_name), "kuscia_alice")
        if name is not None and not _DB_NAME.fullmatch(name):
            self.problem(
                "database.name",
                "must match [A-Za-z0-9_]{1,64}: MySQL names without quoting (older kine breaks on '-')",
                "kuscia_alice",
                name,
            )
            name = None
        default_user = default_database_user(domain_id) if domain_id else "kuscia_alice"
        user = self.text("database.user", raw.get("user", default_user), "kuscia_alice")
        if user is not None and not _DB_USER.fullmatch(user):
            self.problem(
                "database.user", "must match [A-Za-z0-9_]{1,32} (a MySQL user name)", "kuscia_alice", user
            )
            user = None
        settings: dict[str, Any] = {"mode": mode, "name": name, "user": user}
        if mode == "in-cluster":
            self.misplaced(raw, _EXTERNAL_ONLY, "external")
            if "databaseAdminPassword" in self.raw:
                self.problem(
                    "databaseAdminPassword",
                    "is only used with database.mode external; remove it "
                    "(pulumi config rm kuscia:databaseAdminPassword) or set database.mode external",
                    '{"mode": "external", ...}',
                )
            settings.update(self.in_cluster_database(raw))
        elif mode == "external":
            self.misplaced(raw, _IN_CLUSTER_ONLY, "in-cluster")
            settings.update(self.external_database(raw))
        if any(
            v is None for k, v in settings.items() if k in ("mode", "name", "user", "image", "storage_size")
        ):
            return None
        if self.problems_about("database") or self.problems_about("databaseAdminPassword"):
            return None
        return DatabaseSettings(**settings)

    def misplaced(self, raw: Mapping[str, object], keys: tuple[str, ...], mode: str) -> None:
        for key in keys:
            if key in raw:
                self.problem(
                    f"database.{key}",
                    f"only applies to database.mode {mode}; set mode: {mode} or remove it",
                    f'{{"mode": "{mode}", "{key}": ...}}',
                )

    def in_cluster_database(self, raw: Mapping[str, object]) -> dict[str, Any]:
        image = self.image("database.image", raw.get("image", DEFAULT_MYSQL_IMAGE), DEFAULT_MYSQL_IMAGE)
        size = self.quantity("database.storageSize", raw.get("storageSize", "10Gi"), "10Gi")
        storage_class = self.text("database.storageClass", raw.get("storageClass", _MISSING), "standard")
        if storage_class is not None and not _DNS_NAME.fullmatch(storage_class):
            self.problem(
                "database.storageClass",
                "must be a StorageClass name (a lowercase DNS name)",
                "standard",
                storage_class,
            )
        return {"image": image, "storage_size": size[0] if size else None, "storage_class": storage_class}

    def external_database(self, raw: Mapping[str, object]) -> dict[str, Any]:
        example = "mysql.example.com:3306"
        host: str | None = None
        port_value: object = raw.get("port", 3306)
        if "endpoint" in raw and ("host" in raw or "port" in raw):
            self.problem(
                "database.endpoint", "give either endpoint (host:port) or host and port, not both", example
            )
        elif "endpoint" in raw:
            endpoint = self.text("database.endpoint", raw["endpoint"], example)
            split = _split_host_port(endpoint) if endpoint is not None else None
            if endpoint is not None and split is None:
                self.problem(
                    "database.endpoint",
                    "must be host:port (an IPv6 address in brackets: [2001:db8::1]:3306)",
                    example,
                    endpoint,
                )
            elif split is not None:
                host, port_text = split
                port_value = int(port_text) if port_text else 3306
        elif "host" in raw:
            host = self.text("database.host", raw["host"], "mysql.example.com")
        else:
            self.problem(
                "database.endpoint",
                "is required for database.mode external (host:port of the MySQL "
                "server, reachable from the cluster and from where you run pulumi)",
                example,
            )
        where = "database.endpoint" if "endpoint" in raw else "database.host"
        if host is not None and not self.hostname(where, host, example):
            host = None
        port = self.integer("database.port" if "port" in raw else where, port_value, "3306", 1, 65535)
        admin_user = self.text("database.adminUser", raw.get("adminUser"), "root")
        if "adminUser" not in raw:
            self.problem(
                "database.adminUser",
                "is required for database.mode external (a MySQL user that can "
                "create databases, users and grants)",
                "root",
            )
        elif admin_user is not None and len(admin_user) > 32:
            self.problem(
                "database.adminUser", "must be at most 32 characters (MySQL's limit)", "root", admin_user
            )
        return {
            "host": host,
            "port": port or 3306,
            "admin_user": admin_user,
            "admin_password": self.admin_password(raw),
        }

    def admin_password(self, raw: Mapping[str, object]) -> str | None:
        how = "pulumi config set --secret kuscia:databaseAdminPassword"
        top, nested = "databaseAdminPassword" in self.raw, "adminPassword" in raw
        if top and nested:
            self.problem(
                "database.adminPassword", "is set twice; keep only kuscia:databaseAdminPassword", how
            )
            return None
        if not top and not nested:
            self.problem(
                "databaseAdminPassword",
                "is required for database.mode external (the password of database.adminUser)",
                how,
            )
            return None
        key = "databaseAdminPassword" if top else "database.adminPassword"
        value = self.raw[key] if top else raw["adminPassword"]
        if key in self.encrypted or value == ENCRYPTED:
            self.unknown_offline.add(key)
            return ENCRYPTED
        if top:
            secret = key in self.secret
        else:  # Pulumi marks the whole object secret; offline, the stack file knows the exact path
            exact = any(k.startswith("database.") or k.startswith("database[") for k in self.secret)
            secret = key in self.secret if exact else "database" in self.secret
        if not secret:
            self.problem(
                key,
                f"must be a secret, or it sits in plain text in the stack file: run `{how}` "
                "(or `pulumi config set --secret --path kuscia:database.adminPassword`)",
                how,
            )
            return None
        return self.text(key, value, how, secret=True)

    def domain_key(self) -> str | None:
        if "domainKeyData" not in self.raw:
            return None
        how = 'pulumi config set --secret kuscia:domainKeyData "$(base64 -w0 domain.key)"'
        if "domainKeyData" in self.encrypted:
            self.unknown_offline.add("domainKeyData")
            return None
        if "domainKeyData" not in self.secret:
            self.problem(
                "domainKeyData",
                f"must be a secret, or the private key sits in plain text in the stack file: run {how}",
                how,
            )
            return None
        value = self.text("domainKeyData", self.get("domainKeyData"), how, secret=True)
        if value is None:
            return None
        from kuscia_components.core.pki import KeyFormatError, load_domain_key

        try:
            return load_domain_key(value)
        except KeyFormatError as err:  # pki's messages state the rule, never key material
            self.problem("domainKeyData", str(err), how)
        except Exception:  # any other library failure: still no traceback and no key material
            self.problem("domainKeyData", "does not parse as an RSA private key", how)
        return None

    def runk_kubeconfig_secret(self, runtime: str | None) -> str | None:
        name = self.text("runkKubeconfigSecret", self.get("runkKubeconfigSecret"), "runk-kubeconfig")
        if name is None:
            return None
        if not _DNS_NAME.fullmatch(name):
            self.problem(
                "runkKubeconfigSecret",
                "must be a Secret name (a lowercase DNS name, at most 253)",
                "runk-kubeconfig",
                name,
            )
            return None
        if runtime is not None and runtime != "runk":
            self.problem("runkKubeconfigSecret", "only applies to runtime runk", "runk-kubeconfig", name)
            return None
        return name

    def resources(self) -> PodResources | None:
        default = PodResources()
        if "resources" not in self.raw:
            return default
        example = '{"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "4", "memory": "8Gi"}}'
        raw = self.obj("resources", self.get("resources"), example)
        if raw is None:
            return None
        self.unknown_keys("resources", raw, NESTED["resources"])
        amounts: dict[str, dict[str, tuple[str, Fraction]]] = {}
        for part in ("requests", "limits"):
            amounts[part] = {k: (v, parse_quantity(v)) for k, v in getattr(default, part).items()}
            block = self.obj(f"resources.{part}", raw.get(part, {}), '{"cpu": "1", "memory": "2Gi"}')
            if block is None:
                continue
            self.unknown_keys(f"resources.{part}", block, NESTED[f"resources.{part}"])
            for name in NESTED[f"resources.{part}"]:
                if name in block:
                    parsed = self.quantity(f"resources.{part}.{name}", block[name], "2Gi", zero_ok=True)
                    if parsed is not None:
                        amounts[part][name] = parsed
        for name, (request, amount) in amounts["requests"].items():
            limit = amounts["limits"].get(name)
            if limit is not None and amount > limit[1]:
                self.problem(
                    f"resources.requests.{name}",
                    f"must not exceed resources.limits.{name} ({limit[0]}); Kubernetes refuses such a pod",
                    limit[0],
                    request,
                )
        if self.problems_about("resources"):
            return None
        return PodResources(
            requests={k: v[0] for k, v in amounts["requests"].items()},
            limits={k: v[0] for k, v in amounts["limits"].items()},
        )

    def network_policy(self) -> NetworkPolicySettings | None:
        if "networkPolicy" not in self.raw:
            return NetworkPolicySettings()
        example = '{"enabled": true, "kusciaApiFrom": ["172.18.0.2/32"]}'
        raw = self.obj("networkPolicy", self.get("networkPolicy"), example)
        if raw is None:
            return None
        self.unknown_keys("networkPolicy", raw, NESTED["networkPolicy"])
        enabled = self.boolean("networkPolicy.enabled", raw.get("enabled", True), "true")
        ranges = self.array(
            "networkPolicy.kusciaApiFrom", raw.get("kusciaApiFrom", ["0.0.0.0/0"]), '["172.18.0.2/32"]'
        )
        cidrs: list[str] = []
        if ranges is not None and not ranges:
            self.problem(
                "networkPolicy.kusciaApiFrom",
                "must not be empty: peering reaches KusciaAPI through the API server, which must be allowed",
                '["172.18.0.2/32"]',
            )
        for index, item in enumerate(ranges or []):
            key = f"networkPolicy.kusciaApiFrom[{index}]"
            text = self.text(key, item, "172.18.0.2/32")
            if text is None:
                continue
            try:
                cidrs.append(str(ipaddress.ip_network(text, strict=True)))
            except ValueError:
                self.problem(
                    key, "must be an IP range in CIDR form without host bits set", "10.0.0.0/24", text
                )
        if enabled is None or self.problems_about("networkPolicy"):
            return None
        return NetworkPolicySettings(enabled=enabled, kusciaapi_from=tuple(dict.fromkeys(cidrs)))

    def peers(self, self_id: str | None) -> tuple[PeerSettings, ...] | None:
        if "peers" not in self.raw:
            return ()
        raw = self.array("peers", self.get("peers"), '[{"domainId": "bob", "stack": "bob"}]')
        if raw is None:
            return None
        peers: list[PeerSettings] = []
        ids: dict[str, str] = {}
        stacks: dict[str, str] = {}
        for index, item in enumerate(raw):
            where = f"peers[{index}]"
            item = self.obj(where, item, '{"domainId": "bob", "stack": "bob"}')
            if item is None:
                continue
            self.unknown_keys(where, item, NESTED["peers[]"])
            if "domainId" not in item:
                self.problem(f"{where}.domainId", "is required: the partner's domain ID", "bob")
            peer_id = self.domain_id(f"{where}.domainId", item.get("domainId", _MISSING), own=False)
            if peer_id is not None and peer_id == self_id:
                self.problem(f"{where}.domainId", "must not be this party's own domain ID", "bob", peer_id)
                peer_id = None
            if peer_id is not None and peer_id in ids:
                self.problem(
                    f"{where}.domainId",
                    f"is already listed at {ids[peer_id]}: each partner once",
                    "bob",
                    peer_id,
                )
                peer_id = None
            if peer_id is not None:
                ids[peer_id] = where
            peer = self.peer(where, peer_id or "bob", item, stacks)
            if peer is not None and peer_id is not None:
                peers.append(peer)
        if self_id:
            self.route_collisions(self_id, list(ids))
        return None if self.problems_about("peers") else tuple(peers)

    def peer(
        self, where: str, peer_id: str, item: Mapping[str, object], stacks: dict[str, str]
    ) -> PeerSettings | None:
        bundle_example = (
            '{"domainId": "bob", "endpoint": "https://203.0.113.10:31080", '
            '"cert": "<cert from bob\'s peeringBundle output>", "protocol": "TLS"}'
        )
        inline = [k for k in ("endpoint", "cert", "protocol") if k in item]
        if "stack" in item and inline:
            self.problem(
                where,
                "give either stack (a StackReference) or endpoint, cert and protocol (a pasted "
                f"bundle), not both (has stack and {', '.join(inline)})",
                '{"domainId": "bob", "stack": "bob"}',
            )
            return None
        if "stack" in item:
            stack = self.text(f"{where}.stack", item["stack"], "bob")
            if stack is None:
                return None
            if not _STACK_REF.fullmatch(stack):
                self.problem(
                    f"{where}.stack",
                    "must be a stack name, or org/project/stack",
                    "acme/kuscia-p2p/bob",
                    stack,
                )
                return None
            if stack in stacks:
                self.problem(
                    f"{where}.stack",
                    f"is already the stack of {stacks[stack]}: each partner has its own",
                    "bob",
                    stack,
                )
                return None
            stacks[stack] = where
            return PeerSettings(domain_id=peer_id, stack=stack)
        missing = [k for k in ("endpoint", "cert", "protocol") if k not in item]
        if missing:
            self.problem(
                where,
                f"needs stack, or all of endpoint, cert and protocol (missing {', '.join(missing)})",
                bundle_example,
            )
            return None
        protocol = self.protocol(f"{where}.protocol", item["protocol"], peer=True)
        scheme = "http" if protocol == "NOTLS" else "https"
        endpoint = self.text(f"{where}.endpoint", item["endpoint"], f"{scheme}://203.0.113.10:31080")
        if (
            endpoint is not None
            and protocol is not None
            and not self.url(f"{where}.endpoint", endpoint, protocol, f"{scheme}://203.0.113.10:31080")
        ):
            endpoint = None
        cert = self.text(f"{where}.cert", item["cert"], "<cert from the partner's peeringBundle output>")
        if cert is not None and not self.certificate(f"{where}.cert", cert):
            cert = None
        if protocol is None or endpoint is None or cert is None:
            return None
        return PeerSettings(domain_id=peer_id, endpoint=endpoint, cert=cert, protocol=protocol)  # type: ignore[arg-type]

    def certificate(self, key: str, cert: str) -> bool:
        from kuscia_components.core.pki import CertFormatError, cert_public_key_pem

        example = "<cert from the partner's peeringBundle output>"
        try:
            cert_public_key_pem(cert)  # parses it (pki.load_certificate) and insists on an RSA key
        except CertFormatError as err:
            self.problem(key, str(err), example)
            return False
        except Exception:  # cryptography's other failures (unsupported key types, ...)
            self.problem(
                key, "is a certificate whose public key cannot be read; Kuscia needs an RSA key", example
            )
            return False
        return True

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
                        f"routes {other[0]}->{other[1]} and {src}->{dst} would both be named '{name}' in "
                        "Kuscia (routes are named <source>-<destination>); one of these domains needs another ID",
                        "domain IDs without '-', e.g. alice, bob, carol",
                    )

    def problems_about(self, key: str) -> bool:
        prefix = f"{CONFIG_NAMESPACE}:{key}"
        return any(
            p.setting == prefix or p.setting.startswith((f"{prefix}.", f"{prefix}[")) for p in self.problems
        )


# ---------------------------------------------------------------------------------------------
# Small pure helpers
# ---------------------------------------------------------------------------------------------


def _is_nested(key: str) -> bool:
    return "." in key or "[" in key


def _json_container(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict | list)
    except (ValueError, RecursionError):
        return False


def _label_fault(text: str, limit: int) -> str | None:
    """Why `text` is not an RFC 1123 label of at most `limit` characters (None if it is)."""
    if len(text) > limit:
        return f"has {len(text)} characters"
    if _LABEL.fullmatch(text):
        return None
    if text != text.lower() and _LABEL.fullmatch(text.lower()):
        return "has uppercase letters"
    if text[:1] == "-" or text[-1:] == "-":
        return "starts or ends with '-'"
    bad = sorted({c for c in text if not (c.isascii() and (c.isalnum() or c == "-"))})
    return f"contains {', '.join(repr(c) for c in bad[:5])}" if bad else "is not a label"


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return bool(_DNS_NAME.fullmatch(host.lower().rstrip(".")))


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host.lower().rstrip(".") == "localhost"


def _split_host_port(endpoint: str) -> tuple[str, str | None] | None:
    """'host:3306' / '[::1]:3306' / 'host' -> (host, port text or None); None if malformed."""
    match = re.fullmatch(
        r"\[([0-9A-Fa-f:.]+)\](?::([0-9]{1,5}))?|([^:\s\[\]/@]+)(?::([0-9]{1,5}))?", endpoint
    )
    if match is None:
        return None
    return (match[1], match[2]) if match[1] else (match[3], match[4])


def _annotation_key_ok(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    return bool(_ANNOTATION_NAME.fullmatch(name)) and (not prefix or bool(_DNS_NAME.fullmatch(prefix)))


def _did_you_mean(key: str, known: tuple[str, ...]) -> str | None:
    lowered = {k.lower().replace("-", "").replace("_", ""): k for k in known}
    exact = lowered.get(key.lower().replace("-", "").replace("_", ""))
    if exact:
        return exact
    return next(iter(difflib.get_close_matches(key, known, n=1, cutoff=0.6)), None)


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, dict):
        return "an object (a YAML mapping)"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "empty (null)"
    return "a string" if isinstance(value, str) else type(value).__name__


def _number_text(value: int | float) -> str:
    """A YAML/JSON number used as a quantity: 4 -> "4", 0.5 -> "0.5", 4.0 -> "4"."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def _short(value: object) -> str:
    """A short, one-line rendering of a rejected (non-secret) value."""
    if isinstance(value, dict | list) or value is None:
        return _type_name(value)
    if isinstance(value, int) and abs(value) >= 10**30:
        return "a very large number"
    text = repr(value) if isinstance(value, str) else json.dumps(value)
    return _clip(text)


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."

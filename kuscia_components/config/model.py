"""The `kuscia:` namespace: every setting declared once, as a field of the typed config it fills.

Each `setting(...)` names the stack-file key, how its value is read (a kind from `schema.py`,
plus a rule from `rules.py` or `exposure.py` where one is special), an example of a good value, and the rule and
default as docs/configuration.md states them. Parsing (`parse.py`), that doc's settings table
(`docs.py`) and the Automation API's `PartySpec` (`shapes.py`) all come from here.

Config objects are frozen; secret values are held with `repr=False`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from kuscia_components.config import exposure, rules
from kuscia_components.config.constants import (
    DEFAULT_IMAGE,
    DEFAULT_MYSQL_IMAGE,
    DatabaseMode,
    LogLevel,
    NodeProtocol,
    Protocol,
    Runtime,
    ServiceType,
)
from kuscia_components.config.schema import (
    BOOLEAN,
    TEXT,
    FinishFn,
    Setting,
    choice,
    custom,
    integer,
    list_of,
    nested_keys,
    obj,
    quantity,
    setting,
    settings_of,
    walk,
)

KusciaApiTransport = Literal["portForward", "serviceProxy"]
DEFAULT_REQUESTS = {"cpu": "1", "memory": "2Gi"}
DEFAULT_LIMITS = {"cpu": "4", "memory": "8Gi"}
_RESOURCE_KEYS = ("cpu", "memory", "ephemeral-storage")
_EXTERNAL = ("mode", "external")
_IN_CLUSTER = ("mode", "in-cluster")
_NEEDED = "is required (Kuscia needs cpu, memory and storage)"


@dataclass(frozen=True)
class Capacity:
    """Schedulable capacity Kuscia advertises; runk requires cpu, memory and storage."""

    cpu: str = setting("cpu", quantity(), "4", required=_NEEDED)
    memory: str = setting("memory", quantity(), "4Gi", required=_NEEDED)
    storage: str = setting("storage", quantity(), "100Gi", required=_NEEDED)
    ephemeral_storage: str | None = setting("ephemeralStorage", quantity(), "200Gi", default=None)


@dataclass(frozen=True)
class PodResources:
    """Requests/limits of the Kuscia container itself (k3s + envoy + agent in one pod)."""

    SPEC: ClassVar[str] = "ResourcesSpec"
    FINISH: ClassVar[FinishFn] = rules.requests_within_limits

    requests: Mapping[str, str] = setting(
        "requests",
        custom(
            rules.quantities(DEFAULT_REQUESTS), "object of quantities", "dict[str, str]", keys=_RESOURCE_KEYS
        ),
        '{"cpu": "1", "memory": "2Gi"}',
        default_factory=lambda: dict(DEFAULT_REQUESTS),
    )
    limits: Mapping[str, str] = setting(
        "limits",
        custom(
            rules.quantities(DEFAULT_LIMITS), "object of quantities", "dict[str, str]", keys=_RESOURCE_KEYS
        ),
        '{"cpu": "1", "memory": "2Gi"}',
        default_factory=lambda: dict(DEFAULT_LIMITS),
    )


@dataclass(frozen=True)
class ServiceSettings:
    SPEC: ClassVar[str] = "ServiceSpec"

    type: ServiceType = setting(
        "type",
        choice("ClusterIP", "NodePort", "LoadBalancer"),
        "LoadBalancer",
        default="ClusterIP",
        rule="`ClusterIP`, `NodePort` or `LoadBalancer`, in any case",
        default_doc="`ClusterIP`",
    )
    node_port: int | None = setting(  # the gateway's (1080) nodePort
        "nodePort",
        integer(30000, 32767),
        "31080",
        default=None,
        check=exposure.node_port,
        rule="from 30000 to 32767, for the gateway (1080). Only valid with `NodePort` or `LoadBalancer`",
        default_doc="chosen by Kubernetes",
    )
    annotations: Mapping[str, str] = setting(
        "annotations",
        custom(exposure.annotation_map, "object of strings", "dict[str, str]"),
        '{"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"}',
        default_factory=dict,
        rule="keys are annotation names (`[prefix/]name`), values are strings",
        default_doc="`{}`",
        doc_example="{service.beta.kubernetes.io/aws-load-balancer-type: nlb}",
    )


@dataclass(frozen=True)
class NetworkPolicySettings:
    SPEC: ClassVar[str] = "NetworkPolicySpec"

    enabled: bool = setting(
        "enabled", BOOLEAN, "true", default=True, rule="`true` or `false`", default_doc="`true`"
    )
    # Source CIDRs allowed to reach KusciaAPI (8082) under kusciaApiTransport serviceProxy. Must
    # include the API server's address, which proxies to the pod. Not used under portForward.
    kusciaapi_from: tuple[str, ...] = setting(
        "kusciaApiFrom",
        custom(exposure.cidrs, "list of strings", "list[str]"),
        '["172.18.0.2/32"]',
        default=("0.0.0.0/0",),
        rule="a non-empty list of CIDRs with no host bits set. A bare IP counts as `/32`. Used only with "
        "`kusciaApiTransport: serviceProxy`, where it must include the API server's addresses (the "
        "service proxy reaches KusciaAPI from there); with `portForward` KusciaAPI is admitted from the "
        "node's own namespace only",
        default_doc='`["0.0.0.0/0"]`',
    )


@dataclass(frozen=True)
class DatabaseSettings:
    SPEC: ClassVar[str] = "DatabaseSpec"
    FINISH: ClassVar[FinishFn] = rules.database  # where the external server is; its password
    INPUTS: ClassVar[tuple[Setting, ...]] = (
        Setting(
            "endpoint",
            TEXT,
            "mysql.example.com:3306",
            applies=_EXTERNAL,
            manual=True,
            rule="**external only, required** (or `host`): `host:port`. The port defaults to 3306, and IPv6 "
            "goes in brackets. Use this or `host`/`port`, not both",
        ),
        Setting(
            "adminPassword",
            TEXT,
            "pulumi config set --secret kuscia:databaseAdminPassword",
            secret=True,
            applies=_EXTERNAL,
            manual=True,
            spec=False,  # the Automation API sets it as databaseAdminPassword, a secret
            rule="the same password, nested. Accepted when set with `--secret --path`. Set it once, here or "
            "in `databaseAdminPassword`",
            doc_example="—",
        ),
    )

    mode: DatabaseMode = setting(
        "mode",
        choice("in-cluster", "external"),
        "external",
        default="in-cluster",
        rule="`in-cluster` runs a MySQL 8 StatefulSet in the namespace. `external` uses your MySQL server",
        default_doc="`in-cluster`",
    )
    name: str = setting(
        "name",
        TEXT,
        "kuscia_alice",
        default="kine",
        default_from=rules.database_name_default,
        check=rules.database_name,
        rule="`[A-Za-z0-9_]{1,64}`. Older kine breaks on `-`",
        default_doc="`kuscia_<domainId>` (`-` becomes `_`)",
    )
    user: str = setting(
        "user",
        TEXT,
        "kuscia_alice",
        default="kuscia",
        default_from=rules.database_user_default,
        check=rules.database_user,
        rule="`[A-Za-z0-9_]{1,32}`: the dedicated user kine logs in as",
        default_doc="`kuscia_<domainId>` (at most 32 characters)",
    )
    host: str | None = setting(
        "host",
        TEXT,
        "mysql.example.com",
        default=None,
        applies=_EXTERNAL,
        manual=True,
        rule="**external only**: the host part of `endpoint`",
    )
    port: int = setting(
        "port",
        integer(1, 65535),
        "3306",
        default=3306,
        applies=_EXTERNAL,
        manual=True,
        rule="**external only**: the port part of `endpoint`, from 1 to 65535",
        default_doc="`3306`",
    )
    admin_user: str | None = setting(
        "adminUser",
        TEXT,
        "root",
        default=None,
        applies=_EXTERNAL,
        required="is required for database.mode external (a MySQL user that can create databases, users and grants)",
        check=rules.admin_user,
        rule="**external only, required**: a MySQL user that can create databases, users and grants. At most "
        "32 characters",
    )
    admin_password: str | None = field(default=None, repr=False)  # secret (ENCRYPTED offline)
    image: str = setting(
        "image",
        TEXT,
        DEFAULT_MYSQL_IMAGE,
        default=DEFAULT_MYSQL_IMAGE,
        applies=_IN_CLUSTER,
        check=rules.image,
        rule="**in-cluster only**: like `image`",
        default_doc=f"`{DEFAULT_MYSQL_IMAGE}`",
        doc_example="mysql:8.4.3",
    )
    storage_size: str = setting(
        "storageSize",
        quantity(),
        "10Gi",
        default="10Gi",
        applies=_IN_CLUSTER,
        rule="**in-cluster only**: above zero",
        default_doc="`10Gi`",
        doc_example="20Gi",
    )
    storage_class: str | None = setting(
        "storageClass",
        TEXT,
        "standard",
        default=None,
        applies=_IN_CLUSTER,
        check=rules.storage_class,
        rule="**in-cluster only**: a StorageClass name",
        default_doc="the cluster default",
        doc_example="fast-ssd",
    )


@dataclass(frozen=True)
class PeerSettings:
    """A partner: either by StackReference (`stack`) or with an inline bundle."""

    SPEC: ClassVar[str] = "PeerSpec"
    FINISH: ClassVar[FinishFn] = rules.peer  # a stack, or endpoint, cert and protocol

    domain_id: str = setting(
        "domainId",
        custom(rules.peer_domain_id),
        "bob",
        required="is required: the partner's domain ID",
        rule="an RFC 1123 label (≤ 63), not reserved, not this party's own ID, and not listed twice. Quote "
        'IDs that YAML reads as booleans (`"no"`, `"on"`, `"y"`)',
        default_doc="**required**",
    )
    stack: str | None = setting(
        "stack",
        TEXT,
        "bob",
        default=None,
        manual=True,
        rule="a stack name or `org/project/stack`. Each partner has its own stack",
        doc_example="acme/kuscia-p2p/bob",
    )
    endpoint: str | None = setting(
        "endpoint",
        TEXT,
        "https://198.51.100.7:31080",
        default=None,
        manual=True,
        rule="like `publicEndpoint`. The scheme follows the partner's `protocol`",
    )
    cert: str | None = setting(  # base64 of the partner's PEM certificate (public)
        "cert",
        TEXT,
        rules.CERT_EXAMPLE,
        default=None,
        manual=True,
        rule="the partner's certificate: PEM, base64 of the PEM (as in the bundle) or the bare base64 body. "
        "It must hold an RSA key",
        doc_example="LS0tLS1CRUdJTi...",
    )
    protocol: Protocol | None = setting(
        "protocol",
        choice("TLS", "NOTLS"),
        "TLS",
        default=None,
        manual=True,
        rule="the partner's `NOTLS` or `TLS`, in any case. A partner running `MTLS` is addressed like `TLS`, "
        "over HTTPS",
    )


@dataclass(frozen=True)
class PartyConfig:
    FINISH: ClassVar[FinishFn] = exposure.exposure  # NOTLS only inside the cluster, or trusted
    INPUTS: ClassVar[tuple[Setting, ...]] = (
        Setting(
            "databaseAdminPassword",
            TEXT,
            "pulumi config set --secret kuscia:databaseAdminPassword",
            secret=True,
            manual=True,  # read with the database (rules.database)
            group="The database (kine's datastore)",
            rule="**external only, required**: the password of `adminUser`. It must be a secret. Kept as "
            "given: spaces count",
            doc_example="see [Secrets](#secrets)",
        ),
    )

    domain_id: str = setting(
        "domainId",
        TEXT,
        "alice",
        required="is required: the party's domain ID, an RFC 1123 label",
        check=rules.domain_id,
        group="The node",
        rule="RFC 1123 label: `a-z`, `0-9`, `-`, starting and ending with a letter or digit. At most **47** "
        "characters, because the Service `kuscia-autonomy-<domainId>` must fit in 63. Not `default`, "
        "`kube-system`, `kube-public`, `kube-node-lease`, `master` or `cross-domain`",
        default_doc="**required**",
    )
    namespace: str = setting(
        "namespace",
        TEXT,
        "autonomy-alice",
        default_from=rules.default_namespace,
        check=rules.namespace,
        group="The node",
        rule="a namespace name (RFC 1123 label, ≤ 63); not `kube-system`, `kube-public` or `kube-node-lease`",
        default_doc="`autonomy-<domainId>`",
    )
    image: str = setting(
        "image",
        TEXT,
        DEFAULT_IMAGE,
        default=DEFAULT_IMAGE,
        check=rules.image,
        group="The node",
        rule="an image reference with an explicit tag or digest; never the tag `latest`",
        default_doc=f"`{DEFAULT_IMAGE}`",
        doc_example="registry.example.com/kuscia:1.1.0b0",
    )
    protocol: NodeProtocol = setting(
        "protocol",
        custom(rules.protocol, py='Literal["TLS", "NOTLS", "MTLS"]'),
        "TLS",
        default="TLS",
        group="The node",
        rule="`NOTLS`, `TLS` or `MTLS`, in any case. It is always written uppercase, because Kuscia treats a "
        "lowercase `notls` as TLS. `MTLS` also makes KusciaAPI require a client certificate, which the "
        "stack mints from the domain key (docs/identity.md)",
        default_doc="`TLS`",
    )
    runtime: Runtime = setting(
        "runtime",
        custom(rules.runtime, py='Literal["runk", "runp"]'),
        "runk",
        default="runk",
        group="The node",
        rule="`runk` or `runp`, in any case. `runc` is refused because it needs a privileged pod",
        default_doc="`runk`",
    )
    capacity: Capacity | None = setting(
        "capacity",
        obj(Capacity),
        '{"cpu": "4", "memory": "4Gi", "storage": "100Gi", "ephemeralStorage": "200Gi"}',
        default=None,
        default_from=rules.capacity_missing,
        group="The node",
        rule="`cpu`, `memory` and `storage` are required, `ephemeralStorage` is optional. Each is a quantity "
        "above zero. YAML numbers are fine (`cpu: 4`)",
        default_doc="required for `runk`",
        doc_example='{cpu: "4", memory: 4Gi, storage: 100Gi, ephemeralStorage: 200Gi}',
    )
    log_level: LogLevel = setting(
        "logLevel",
        choice("DEBUG", "INFO", "WARN", "ERROR"),
        "INFO",
        default="INFO",
        group="The node",
        rule="`DEBUG`, `INFO`, `WARN` or `ERROR`, in any case",
        default_doc="`INFO`",
        doc_example="DEBUG",
    )
    service: ServiceSettings = setting(
        "service",
        obj(ServiceSettings),
        '{"type": "LoadBalancer"}',
        default=ServiceSettings(),
        group="Reaching the node",
    )
    public_endpoint: str = setting(  # parse fills the default from the Service DNS name and protocol
        "publicEndpoint",
        custom(exposure.public_endpoint),
        "https://203.0.113.10:31080",
        default="",
        default_from=exposure.default_endpoint,
        group="Reaching the node",
        rule="the URL partners dial: `http(s)://host[:port][/path-prefix]`. The host is a DNS name or an IPv4 "
        "address (a Kuscia route takes no IPv6 address). No user info, query or fragment. The scheme must follow `protocol`: "
        "`https` for TLS, `http` for NOTLS",
        default_doc="`https://kuscia-autonomy-<domainId>.<namespace>.svc.cluster.local:1080` (`http://` for "
        "`NOTLS`)",
    )
    database: DatabaseSettings = setting(
        "database",
        obj(DatabaseSettings, parse_missing=True),
        '{"mode": "external", "endpoint": "mysql.example.com:3306", "adminUser": "root"}',
        default=DatabaseSettings(),
        group="The database (kine's datastore)",
    )
    domain_key_data: str | None = setting(  # PKCS#1 PEM once parsed
        "domainKeyData",
        custom(rules.domain_key),
        'pulumi config set --secret kuscia:domainKeyData "$(base64 -w0 domain.key)"',
        default=None,
        secret=True,
        group="The node",
        rule="bring your own domain key: an unencrypted RSA key of at least 2048 bits, as PEM (PKCS#1 or "
        "PKCS#8) or base64 of the PEM. It is stored as PKCS#1. It must be set as a secret",
        default_doc="generated",
        doc_example="see [Secrets](#secrets)",
    )
    pod_security: str = setting(
        "podSecurity",
        choice("root", "rootless"),
        "rootless",
        default="root",
        group="The node",
        rule="`root` runs Kuscia as root, as upstream's default Deployment does (Pod Security `baseline`). "
        "`rootless` runs it as uid/gid 1000 with every capability dropped but `NET_BIND_SERVICE`, as "
        "upstream's rootless variant (`hack/k8s/autonomy/rootless`); the Kuscia pod then passes "
        "`restricted`. It needs `clusterDnsServer`, and a container runtime that lets a non-root process "
        "bind ports 53 and 80 (see [Pod security](#pod-security))",
        default_doc="`root`",
    )
    cluster_dns_server: str | None = setting(
        "clusterDnsServer",
        TEXT,
        "10.96.0.10",
        default=None,
        default_from=rules.cluster_dns_missing,
        check=rules.cluster_dns_server,
        group="The node",
        rule="**rootless only, required**: the IP address of the cluster's DNS Service (`kubectl -n "
        "kube-system get svc kube-dns -o jsonpath='{.spec.clusterIP}'`). As non-root, Kuscia's CoreDNS "
        "cannot take over the pod's /etc/resolv.conf, so the pod resolves through it at 127.0.0.1 and "
        "it forwards other names to this server",
        default_doc="none",
    )
    runk_kubeconfig_secret: str | None = setting(
        "runkKubeconfigSecret",
        TEXT,
        "runk-kubeconfig",
        default=None,
        check=rules.runk_only,
        group="The node",
        rule="the name of a Secret in the namespace that holds a kubeconfig for runk (a DNS name, ≤ 253). "
        "Only valid with `runtime: runk`",
        default_doc="none",
    )
    resources: PodResources = setting(
        "resources",
        obj(PodResources),
        '{"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "4", "memory": "8Gi"}}',
        default=PodResources(),
        group="The node",
        type_doc="object of `requests` and `limits`",
        rule="`requests` and `limits` are objects with the keys `cpu`, `memory` and `ephemeral-storage`. Each "
        "quantity is zero or more. Keys you give replace the default for that key only. A request may not "
        "exceed its limit",
        default_doc='requests `{cpu: "1", memory: 2Gi}`, limits `{cpu: "4", memory: 8Gi}`',
        doc_example='{requests: {cpu: "2"}, limits: {memory: 16Gi}}',
    )
    network_policy: NetworkPolicySettings = setting(
        "networkPolicy",
        obj(NetworkPolicySettings),
        '{"enabled": true, "kusciaApiFrom": ["172.18.0.2/32"]}',
        default=NetworkPolicySettings(),
        group="Reaching the node",
    )
    trusted_network: bool = setting(
        "trustedNetwork",
        BOOLEAN,
        "true",
        default=False,
        group="Reaching the node",
        rule="`true` declares the network between the parties trusted (one you control: a private link, a "
        "VPN). Only then may `protocol: NOTLS` go with `service.type` `NodePort`/`LoadBalancer` or with a "
        "`publicEndpoint` outside the cluster (not `<service>.<namespace>.svc[.cluster.local]`), and a partner "
        "`peers[].endpoint` be `http://` (a NOTLS partner) outside the cluster; without it that is refused, "
        "because NOTLS carries partner traffic and its route tokens in plain HTTP",
        default_doc="`false`",
    )
    peers: tuple[PeerSettings, ...] = setting(
        "peers",
        list_of(obj(PeerSettings), '{"domainId": "bob", "stack": "bob"}'),
        '[{"domainId": "bob", "stack": "bob"}]',
        default=(),
        check=rules.route_collisions,
        group="Peering",
        rule="each partner once. Each entry is either `{domainId, stack}` (a StackReference to the partner's "
        "stack) or `{domainId, endpoint, cert, protocol}` (the partner's pasted `peeringBundle`)",
        default_doc="`[]`",
        doc_example="[{domainId: bob, stack: bob}]",
    )
    peering_timeout_seconds: int = setting(
        "peeringTimeoutSeconds",
        integer(10, 3600),
        "300",
        default=300,
        group="Peering",
        rule="from 10 to 3600: how long a deploy waits for the handshake",
        default_doc="`300`",
        doc_example="600",
    )
    require_peer_ready: bool = setting(
        "requirePeerReady",
        BOOLEAN,
        "true",
        default=False,
        group="Peering",
        rule='`true` fails the deploy when a route is not Ready in time. `false` reports "waiting for peer", '
        "and a later `up` or `refresh` completes the peering",
        default_doc="`false`",
    )
    kube_context: str | None = setting(
        "kubeContext",
        TEXT,
        "kind-kuscia",
        default=None,
        group="Cluster access",
        rule="a kubeconfig context. The node *and* the peering use it",
        default_doc="the kubeconfig's current context",
    )
    kubeconfig: str | None = setting(
        "kubeconfig",
        TEXT,
        "~/.kube/config",
        default=None,
        group="Cluster access",
        rule="a path to a kubeconfig file",
        default_doc="`~/.kube/config` / `$KUBECONFIG`",
        doc_example="~/.kube/prod",
    )
    # How peering, verify and preflight reach KusciaAPI (8082). portForward (pods/portforward, as
    # kubectl port-forward) needs no NetworkPolicy opening, verifies the server certificate itself
    # and can present an MTLS client certificate; serviceProxy (services/proxy) is for clusters
    # whose RBAC forbids port-forward, and needs networkPolicy.kusciaApiFrom to admit the API server.
    kusciaapi_transport: KusciaApiTransport = setting(
        "kusciaApiTransport",
        choice("portForward", "serviceProxy"),
        "serviceProxy",
        default="portForward",
        check=rules.kusciaapi_transport,
        group="Cluster access",
        rule="`portForward` (pods/portforward to the node's pod: no NetworkPolicy opening, TLS checked by "
        "this program) or `serviceProxy` (the API server's service proxy, for clusters that forbid "
        "port-forward; needs `networkPolicy.kusciaApiFrom`; not with protocol `MTLS`), in any case",
        default_doc="`portForward`",
    )
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


# Derived from the declarations above, for the parser's suggestions and for other modules.
SETTINGS: tuple[str, ...] = tuple(s.key for s in settings_of(PartyConfig))
NESTED: dict[str, tuple[str, ...]] = nested_keys(PartyConfig)
SECRET_SETTINGS: frozenset[str] = frozenset(path for path, s in walk(PartyConfig) if s.secret)

"""The rules that are special to one setting, beyond what its kind checks.

Each is named in the setting's declaration (`model.py`) as its `check` (a value already read),
`read` (a raw value), `default_from` (a default that depends on other settings) or its object's
`FINISH` (rules across the keys of one object). Each records a `Problem` and returns None when
the value is refused; none raises. The rules of reaching the node (Service, endpoints,
NetworkPolicy, NOTLS exposure) are in `exposure.py`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from kuscia_components.config.constants import (
    ENCRYPTED,
    MAX_DOMAIN_ID_LENGTH,
    RESERVED_DOMAIN_IDS,
    SYSTEM_NAMESPACES,
    gateway_scheme,
)
from kuscia_components.config.exposure import route_host
from kuscia_components.config.read import DNS_NAME, Reader
from kuscia_components.config.schema import Ctx, ReadFn, Setting
from kuscia_components.core.hostport import is_loopback_host

_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_DB_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")
_DB_USER = re.compile(r"[A-Za-z0-9_]{1,32}")
_STACK_REF = re.compile(r"[A-Za-z0-9_.-]{1,100}(/[A-Za-z0-9_.-]{1,100}){0,2}")
# Container image reference (distribution/reference grammar, simplified): lowercase path
# components, optional registry host[:port], then :tag and/or @algorithm:hex.
_IMAGE = re.compile(
    r"(?:(?P<registry>[A-Za-z0-9.-]+(?::[0-9]+)?|\[[0-9A-Fa-f:]+\](?::[0-9]+)?)/)?"
    r"(?P<path>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?"
)
CERT_EXAMPLE = "<cert from the partner's peeringBundle output>"

# -- identity ---------------------------------------------------------------------------------


def domain_id(r: Reader, key: str, text: str, ctx: Ctx | None = None, *, own: bool = True) -> str | None:
    example = "alice" if own else "bob"
    limit = MAX_DOMAIN_ID_LENGTH if own else 63
    fault = _label_fault(text, limit)
    if fault:
        why = (
            "the Service kuscia-autonomy-<domainId> must fit in 63 characters"
            if own and len(text) > limit and len(text) <= 63
            else "it becomes a namespace, a DNS name and part of route names"
        )
        r.problem(
            key,
            f"must be an RFC 1123 label of at most {limit} characters: lowercase letters, digits and '-', "
            f"starting and ending with a letter or digit ({why}); this one {fault}",
            example,
            text,
        )
        return None
    if text in RESERVED_DOMAIN_IDS:
        r.problem(
            key,
            f"is reserved by Kuscia or Kubernetes ({', '.join(sorted(RESERVED_DOMAIN_IDS))})",
            example,
            text,
        )
        return None
    return text


def default_namespace(r: Reader, key: str, ctx: Ctx) -> str | None:
    return f"autonomy-{ctx.top['domain_id']}" if ctx.top.get("domain_id") else None


def namespace(r: Reader, key: str, text: str, ctx: Ctx) -> str | None:
    fault = _label_fault(text, 63)
    if fault:
        r.problem(
            key,
            "must be a Kubernetes namespace name: lowercase letters, digits and '-', starting and ending "
            f"with a letter or digit, at most 63 characters; this one {fault}",
            "autonomy-alice",
            text,
        )
        return None
    if text in SYSTEM_NAMESPACES:
        r.problem(key, "must not be a Kubernetes system namespace", "autonomy-alice", text)
        return None
    return text


def image(r: Reader, key: str, text: str, ctx: Ctx) -> str | None:
    example = ctx.setting.example if ctx.setting else key
    match = _IMAGE.fullmatch(text)
    if match is None:
        r.problem(key, "must be a container image reference like registry/repository:tag", example, text)
        return None
    if match["tag"] is None and match["digest"] is None:
        r.problem(
            key,
            "must name an explicit tag or digest (a moving image breaks reproducible deploys)",
            example,
            text,
        )
        return None
    if match["tag"] == "latest":
        r.problem(key, "must not use the tag 'latest': pin a released version", example, text)
        return None
    return text


def protocol(r: Reader, key: str, value: object, s: Setting, ctx: Ctx) -> str | None:
    return _protocol(r, key, value, peer=False)


def _protocol(r: Reader, key: str, value: object, *, peer: bool) -> str | None:
    if peer and isinstance(value, str) and value.strip().upper() == "MTLS":
        return "TLS"  # a partner's MTLS gateway is server-only HTTPS: addressed like TLS (NOTES §1.6)
    # Our own node under MTLS: KusciaAPI gets the client certificate minted from the domain key.
    return r.choice(key, value, ("NOTLS", "TLS") if peer else ("NOTLS", "TLS", "MTLS"), "TLS")


def kusciaapi_transport(r: Reader, key: str, value: str, ctx: Ctx) -> str | None:
    """MTLS KusciaAPI requires a client certificate, which the API server's service proxy
    cannot present (it dials the Service itself): only a port-forward reaches it."""
    if value == "serviceProxy" and ctx.top.get("protocol") == "MTLS":
        r.problem(
            key,
            "cannot be serviceProxy with protocol MTLS: KusciaAPI then requires a client certificate, which "
            "the API server's service proxy cannot present; use portForward (or protocol TLS)",
            "portForward",
            value,
        )
        return None
    return value


def runtime(r: Reader, key: str, value: object, s: Setting, ctx: Ctx) -> str | None:
    if isinstance(value, str) and value.strip().lower() == "runc":
        r.problem(
            key,
            "runc needs a privileged Kuscia pod on Kubernetes and is not supported here; use runk or runp",
            "runk",
        )
        return None
    return r.choice(key, value, ("runk", "runp"), "runk")


def capacity_missing(r: Reader, key: str, ctx: Ctx) -> None:
    if ctx.top.get("runtime") == "runk":
        r.problem(
            key,
            "is required for runtime runk (Kuscia refuses to start without cpu, memory and storage)",
            ctx.setting.example if ctx.setting else "",
        )


def runk_only(r: Reader, key: str, name: str, ctx: Ctx) -> str | None:
    if not DNS_NAME.fullmatch(name):
        r.problem(key, "must be a Secret name (a lowercase DNS name, at most 253)", "runk-kubeconfig", name)
        return None
    if ctx.top.get("runtime") not in (None, "runk"):
        r.problem(key, "only applies to runtime runk", "runk-kubeconfig", name)
        return None
    return name


def cluster_dns_missing(r: Reader, key: str, ctx: Ctx) -> None:
    if ctx.top.get("pod_security") == "rootless":
        r.problem(
            key,
            "is required for podSecurity rootless: Kuscia's CoreDNS forwards the names it does not serve "
            "to the cluster's DNS (kubectl -n kube-system get svc kube-dns -o jsonpath='{.spec.clusterIP}')",
            "10.96.0.10",
        )


def cluster_dns_server(r: Reader, key: str, text: str, ctx: Ctx) -> str | None:
    if ctx.top.get("pod_security") != "rootless":
        r.problem(key, "only applies to podSecurity rootless", "10.96.0.10", text)
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        address = None
    if address is None or "%" in text or address.is_unspecified or address.is_loopback:
        r.problem(
            key,
            "must be the IP address of the cluster's DNS Service (a resolv.conf nameserver takes an address, "
            "not a name; not a loopback or a zone)",
            "10.96.0.10",
            text,
        )
        return None
    return str(address)


def domain_key(r: Reader, key: str, value: object, s: Setting, ctx: Ctx) -> str | None:
    how = s.example
    if key in r.encrypted:
        r.unknown_offline.add(key)
        return None
    if key not in r.secret:
        r.problem(
            key, f"must be a secret, or the private key sits in plain text in the stack file: run {how}", how
        )
        return None
    text = r.text(key, value, how, secret=True)
    if text is None:
        return None
    from kuscia_components.core.pki import KeyFormatError, load_domain_key

    try:
        return load_domain_key(text)
    except KeyFormatError as err:  # pki's messages state the rule, never key material
        r.problem(key, str(err), how)
    except Exception:  # any other library failure: still no traceback and no key material
        r.problem(key, "does not parse as an RSA private key", how)
    return None


# -- resources --------------------------------------------------------------------------------


def quantities(defaults: Mapping[str, str]) -> ReadFn:
    """A reader of an object of quantities (zero or more) over `defaults`, key by key."""

    def read(r: Reader, key: str, value: object, s: Setting, ctx: Ctx) -> dict[str, str] | None:
        block = r.obj(key, value, s.example)
        if block is None:
            return None
        r.unknown_keys(key, block, s.kind.keys)
        merged = dict(defaults)
        for name in s.kind.keys:
            if name in block:
                parsed = r.quantity(f"{key}.{name}", block[name], "2Gi", zero_ok=True)
                if parsed is not None:
                    merged[name] = parsed[0]
        return merged

    return read


def requests_within_limits(r: Reader, where: str, ctx: Ctx) -> dict[str, Any] | None:
    from kuscia_components.config.quantity import parse_quantity

    requests, limits = ctx.here.get("requests") or {}, ctx.here.get("limits") or {}
    for name, request in requests.items():
        limit = limits.get(name)
        if limit is not None and parse_quantity(request) > parse_quantity(limit):
            r.problem(
                f"{where}.requests.{name}",
                f"must not exceed {where}.limits.{name} ({limit}); Kubernetes refuses such a pod",
                limit,
                request,
            )
    return {}


# -- the database -----------------------------------------------------------------------------


def default_database_name(domain_id: str) -> str:
    """kuscia_<domainId> with '-' as '_' (older kine breaks on '-'), at most 64 characters."""
    return f"kuscia_{domain_id.replace('-', '_')}"[:64]


def default_database_user(domain_id: str) -> str:
    """kuscia_<domainId>, at most 32 characters: parties sharing one MySQL server must not share
    (and overwrite the password of) one user."""
    return f"kuscia_{domain_id.replace('-', '_')}"[:32]


def database_name_default(r: Reader, key: str, ctx: Ctx) -> str:
    domain = ctx.top.get("domain_id")
    return default_database_name(domain) if domain else "kuscia_alice"


def database_user_default(r: Reader, key: str, ctx: Ctx) -> str:
    domain = ctx.top.get("domain_id")
    return default_database_user(domain) if domain else "kuscia_alice"


def database_name(r: Reader, key: str, name: str, ctx: Ctx) -> str | None:
    if _DB_NAME.fullmatch(name):
        return name
    rule = "must match [A-Za-z0-9_]{1,64}: MySQL names without quoting (older kine breaks on '-')"
    r.problem(key, rule, "kuscia_alice", name)
    return None


def database_user(r: Reader, key: str, user: str, ctx: Ctx) -> str | None:
    if _DB_USER.fullmatch(user):
        return user
    r.problem(key, "must match [A-Za-z0-9_]{1,32} (a MySQL user name)", "kuscia_alice", user)
    return None


def admin_user(r: Reader, key: str, user: str, ctx: Ctx) -> str | None:
    if len(user) <= 32:
        return user
    r.problem(key, "must be at most 32 characters (MySQL's limit)", "root", user)
    return None


def storage_class(r: Reader, key: str, name: str, ctx: Ctx) -> str | None:
    if DNS_NAME.fullmatch(name):
        return name
    r.problem(key, "must be a StorageClass name (a lowercase DNS name)", "standard", name)
    return None


def database(r: Reader, where: str, ctx: Ctx) -> dict[str, Any] | None:
    """Mode-specific rules: where an external server is, and its admin password (a secret)."""
    mode = ctx.here.get("mode")
    if mode == "in-cluster" and "databaseAdminPassword" in r.raw:
        r.problem(
            "databaseAdminPassword",
            "is only used with database.mode external; remove it "
            "(pulumi config rm kuscia:databaseAdminPassword) or set database.mode external",
            '{"mode": "external", ...}',
        )
    found: dict[str, Any] = {}
    if mode == "external":
        found = _external_server(r, ctx.raw)
        found["admin_password"] = _admin_password(r, ctx.raw)
    return None if r.problems_about("databaseAdminPassword") else found


def _external_server(r: Reader, raw: Mapping[Any, object]) -> dict[str, Any]:
    example = "mysql.example.com:3306"
    host: str | None = None
    port_value: object = raw.get("port", 3306)
    if "endpoint" in raw and ("host" in raw or "port" in raw):
        r.problem("database.endpoint", "give either endpoint (host:port) or host and port, not both", example)
    elif "endpoint" in raw:
        endpoint = r.text("database.endpoint", raw["endpoint"], example)
        split = _split_host_port(endpoint) if endpoint is not None else None
        if endpoint is not None and split is None:
            r.problem(
                "database.endpoint",
                "must be host:port (an IPv6 address in brackets: [2001:db8::1]:3306)",
                example,
                endpoint,
            )
        elif split is not None:
            host, port_text = split
            port_value = int(port_text) if port_text else 3306
    elif "host" in raw:
        host = r.text("database.host", raw["host"], "mysql.example.com")
    else:
        r.problem(
            "database.endpoint",
            "is required for database.mode external (host:port of the MySQL "
            "server, reachable from the cluster and from where you run pulumi)",
            example,
        )
    where = "database.endpoint" if "endpoint" in raw else "database.host"
    if host is not None and not r.hostname(where, host, example):
        host = None
    elif host is not None and (rule := _numeric_host_problem(host)) is not None:
        r.problem(where, rule, example, host)
        host = None
    elif host is not None and (is_loopback_host(host) or host.lower().rstrip(".") in _POD_LOOPBACK_NAMES):
        r.problem(
            where,
            f"is {host}, a loopback address: inside the Kuscia pod that is the pod itself, not your "
            "MySQL server (kuscia#721). Give an address the pod can reach: the server's IP, its DNS name "
            "or a Service name",
            example,
            host,
        )
        host = None
    port = r.integer("database.port" if "port" in raw else where, port_value, "3306", 1, 65535)
    return {"host": host, "port": port or 3306}


# kubelet writes these into every pod's /etc/hosts as ::1 (pkg/kubelet/kubelet_pods.go,
# managedHostsHeader: "::1 localhost ip6-localhost ip6-loopback"), so in the Kuscia pod they
# name the pod itself, as localhost does.
_POD_LOOPBACK_NAMES = frozenset({"ip6-localhost", "ip6-loopback"})
# What inet_aton (glibc's getaddrinfo, so Go's cgo resolver) reads as an IPv4 address: one to
# four parts, each decimal, octal (leading 0) or hex (0x): 127.1, 2130706433, 0x7f000001, 0177.0.0.1.
_INET_ATON = re.compile(r"(0[xX][0-9a-fA-F]*|[0-9]+)(\.(0[xX][0-9a-fA-F]*|[0-9]+)){0,3}\.?")
_CANONICAL_IPV4 = re.compile(
    r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}"
)


def _numeric_host_problem(host: str) -> str | None:
    """A host that only looks numeric is refused unless it is a canonical a.b.c.d: Go's own
    resolver takes `127.1` as a name to look up, glibc's inet_aton (Go's cgo resolver) as
    127.0.0.1, so what it reaches depends on how Kuscia was built; never a DNS name either."""
    if not _INET_ATON.fullmatch(host) or _CANONICAL_IPV4.fullmatch(host):
        return None
    return (
        f"is {host}, a numeric host that is not a canonical IPv4 address (four decimal parts 0-255, no "
        "leading zeros): resolvers read such forms differently (glibc reads 127.1, 2130706433 and "
        "0x7f000001 as the loopback 127.0.0.1). Write the address as a.b.c.d, or give a DNS name"
    )


def _admin_password(r: Reader, raw: Mapping[Any, object]) -> str | None:
    how = "pulumi config set --secret kuscia:databaseAdminPassword"
    top, nested = "databaseAdminPassword" in r.raw, "adminPassword" in raw
    if top and nested:
        r.problem("database.adminPassword", "is set twice; keep only kuscia:databaseAdminPassword", how)
        return None
    if not top and not nested:
        r.problem(
            "databaseAdminPassword",
            "is required for database.mode external (the password of database.adminUser)",
            how,
        )
        return None
    key = "databaseAdminPassword" if top else "database.adminPassword"
    value = r.raw[key] if top else raw["adminPassword"]
    if key in r.encrypted or value == ENCRYPTED:
        r.unknown_offline.add(key)
        return ENCRYPTED
    if top:
        secret = key in r.secret
    else:  # Pulumi marks the whole object secret; offline, the stack file knows the exact path
        exact = any(k.startswith("database.") or k.startswith("database[") for k in r.secret)
        secret = key in r.secret if exact else "database" in r.secret
    if not secret:
        r.problem(
            key,
            f"must be a secret, or it sits in plain text in the stack file: run `{how}` "
            "(or `pulumi config set --secret --path kuscia:database.adminPassword`)",
            how,
        )
        return None
    return r.text(key, value, how, secret=True)


# -- peering ----------------------------------------------------------------------------------


def peer_domain_id(r: Reader, key: str, value: object, s: Setting, ctx: Ctx) -> str | None:
    text = r.text(key, value, "bob")
    peer_id = domain_id(r, key, text, own=False) if text is not None else None
    if peer_id is not None and peer_id == ctx.top.get("domain_id"):
        r.problem(key, "must not be this party's own domain ID", "bob", peer_id)
        return None
    ids: dict[str, str] = ctx.shared.setdefault("ids", {})
    if peer_id is not None and peer_id in ids:
        r.problem(key, f"is already listed at {ids[peer_id]}: each partner once", "bob", peer_id)
        return None
    if peer_id is not None:
        ids[peer_id] = key.rsplit(".", 1)[0]
    return peer_id


def peer(r: Reader, where: str, ctx: Ctx) -> dict[str, Any] | None:
    """A partner is a StackReference (`stack`) or a pasted bundle (endpoint, cert, protocol)."""
    item = ctx.raw
    inline = [k for k in ("endpoint", "cert", "protocol") if k in item]
    if "stack" in item and inline:
        r.problem(
            where,
            "give either stack (a StackReference) or endpoint, cert and protocol (a pasted "
            f"bundle), not both (has stack and {', '.join(inline)})",
            '{"domainId": "bob", "stack": "bob"}',
        )
        return None
    if "stack" in item:
        return _peer_stack(r, f"{where}.stack", item["stack"], ctx.shared.setdefault("stacks", {}))
    missing = [k for k in ("endpoint", "cert", "protocol") if k not in item]
    if missing:
        r.problem(
            where,
            f"needs stack, or all of endpoint, cert and protocol (missing {', '.join(missing)})",
            '{"domainId": "bob", "endpoint": "https://203.0.113.10:31080", '
            '"cert": "<cert from bob\'s peeringBundle output>", "protocol": "TLS"}',
        )
        return None
    proto = _protocol(r, f"{where}.protocol", item["protocol"], peer=True)
    example = f"{gateway_scheme(proto)}://203.0.113.10:31080"
    endpoint = r.text(f"{where}.endpoint", item["endpoint"], example)
    if endpoint is not None and proto is not None:
        ok = r.url(f"{where}.endpoint", endpoint, proto, example)
        endpoint = endpoint if ok and route_host(r, f"{where}.endpoint", endpoint, example) else None
    cert = r.text(f"{where}.cert", item["cert"], CERT_EXAMPLE)
    if cert is not None and not _certificate(r, f"{where}.cert", cert, item.get("domainId")):
        cert = None
    if proto is None or endpoint is None or cert is None:
        return None
    return {"endpoint": endpoint, "cert": cert, "protocol": proto}


def _peer_stack(r: Reader, key: str, value: object, stacks: dict[str, str]) -> dict[str, Any] | None:
    stack = r.text(key, value, "bob")
    if stack is None:
        return None
    if not _STACK_REF.fullmatch(stack):
        r.problem(key, "must be a stack name, or org/project/stack", "acme/kuscia-p2p/bob", stack)
        return None
    if stack in stacks:
        r.problem(key, f"is already the stack of {stacks[stack]}: each partner has its own", "bob", stack)
        return None
    stacks[stack] = key.rsplit(".", 1)[0]
    return {"stack": stack}


def _certificate(r: Reader, key: str, cert: str, domain_id: object = None) -> bool:
    from kuscia_components.core.pki import CertFormatError, cert_domain_problem, cert_public_key_pem

    try:
        cert_public_key_pem(cert)  # parses it (pki.load_certificate) and insists on an RSA key
        mismatch = cert_domain_problem(cert, domain_id) if isinstance(domain_id, str) else None
        if mismatch:
            r.problem(key, mismatch, CERT_EXAMPLE)
            return False
    except CertFormatError as err:
        r.problem(key, str(err), CERT_EXAMPLE)
        return False
    except Exception:  # cryptography's other failures (unsupported key types, ...)
        r.problem(
            key, "is a certificate whose public key cannot be read; Kuscia needs an RSA key", CERT_EXAMPLE
        )
        return False
    return True


def route_collisions(r: Reader, key: str, peers: object, ctx: Ctx) -> object:
    """Kuscia names routes `<src>-<dst>`, so `a-b`->`c` and `a`->`b-c` are the same object."""
    self_id: str | None = ctx.top.get("domain_id")
    if not self_id:
        return peers
    names: dict[str, tuple[str, str]] = {}
    for peer_id in ctx.shared.get("ids", {}):
        for src, dst in ((self_id, peer_id), (peer_id, self_id)):
            name = f"{src}-{dst}"
            other = names.setdefault(name, (src, dst))
            if other != (src, dst):
                r.problem(
                    key,
                    f"routes {other[0]}->{other[1]} and {src}->{dst} would both be named '{name}' in "
                    "Kuscia (routes are named <source>-<destination>); one of these domains needs another ID",
                    "domain IDs without '-', e.g. alice, bob, carol",
                )
    return peers


# -- small pure helpers -----------------------------------------------------------------------


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


def _split_host_port(endpoint: str) -> tuple[str, str | None] | None:
    """'host:3306' / '[::1]:3306' / 'host' -> (host, port text or None); None if malformed."""
    match = re.fullmatch(
        r"\[([0-9A-Fa-f:.]+)\](?::([0-9]{1,5}))?|([^:\s\[\]/@]+)(?::([0-9]{1,5}))?", endpoint
    )
    if match is None:
        return None
    return (match[1], match[2]) if match[1] else (match[3], match[4])

"""Reaching the node: the rules of the settings that say who reaches what, and over which protocol.

The Service (`service.*`), the URL partners dial (`publicEndpoint`, and a partner's
`peers[].endpoint`), who may reach KusciaAPI (`networkPolicy.kusciaApiFrom`), and the rule
across them that refuses plain HTTP across an untrusted network.

Under `protocol: NOTLS` the gateway (1080) speaks plain HTTP, so partner traffic and the route
tokens that authenticate every request between gateways (NOTES §3) can be read and replayed by
anyone on the path; KusciaAPI (8082) has no token at all (NOTES §1.6). That is acceptable only
when every party sits in one cluster or the operator declares the network between the parties
trusted (`kuscia:trustedNetwork: true`). So NOTLS with a Service partners reach from outside
(NodePort/LoadBalancer), or with a `publicEndpoint` that is not a cluster-local Service name, is
refused before anything touches a cluster: this is the `FINISH` rule of the whole config. Our
gateway speaks each partner's protocol to it, so a pasted NOTLS partner (`http://`) outside the
cluster needs `trustedNetwork` too, whatever our own protocol (`plaintext_partner`).
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from typing import Any

from kuscia_components.config.constants import GATEWAY_PORT, gateway_scheme
from kuscia_components.config.read import DNS_NAME, Reader, type_name
from kuscia_components.config.schema import Ctx, Setting
from kuscia_components.core.hostport import has_zone

_ANNOTATION_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?")

# k8s.io/apimachinery pkg/api/validation/objectmeta.go: TotalAnnotationSizeLimitB, the sum of
# len(key) + len(value) in bytes over one object's annotations.
ANNOTATIONS_LIMIT_BYTES = 256 * 1024

_FIX = (
    "use protocol TLS, or keep the node inside the cluster (service.type ClusterIP and a *.svc "
    "publicEndpoint), or, only if the network between the parties is yours (a private link or VPN), "
    "set kuscia:trustedNetwork true"
)
_RISK = (
    "protocol NOTLS carries partner traffic, and the route tokens that authenticate it, in plain HTTP, "
    "so anyone on the path can read the data and replay the tokens"
)


def in_cluster_host(host: str) -> bool:
    """A Service DNS name: `<service>.<namespace>.svc` or `....svc.cluster.local`.

    Other cluster domains are not guessed (`x.svc.example.com` may be a public name); a cluster
    with another domain declares `trustedNetwork` instead."""
    labels = host.lower().rstrip(".").split(".")
    for tail in (["svc"], ["svc", "cluster", "local"]):
        if len(labels) >= 2 + len(tail) and labels[-len(tail) :] == tail:
            return True
    return False


def plaintext_partner(endpoint: str, protocol: str | None) -> str | None:
    """Why dialing a partner at `endpoint` sends our route tokens in plain HTTP across a network
    not known to be ours (the rule text), or None: a NOTLS partner (http://) outside the cluster.
    Our gateway speaks the partner's protocol to it, whatever our own, so this holds for every
    partner bundle: pasted (checked here) or read by StackReference (checked when it arrives)."""
    if protocol != "NOTLS" and not endpoint.lower().startswith("http://"):
        return None
    host = _host(endpoint)
    if host is None or in_cluster_host(host):
        return None
    return (
        f"is a NOTLS partner at {host}, outside the cluster (not a <service>.<namespace>.svc name): our "
        "gateway would send the route tokens that authenticate every request, and the data, to it in "
        "plain HTTP, readable and replayable by anyone on the path; ask the partner for a TLS bundle, or, "
        "only if the network between you is yours (a private link or VPN), set kuscia:trustedNetwork true"
    )


def exposure(r: Reader, where: str, ctx: Ctx) -> dict[str, Any]:
    """NOTLS only inside the cluster, unless `trustedNetwork` says the network is trusted: our
    own Service and publicEndpoint under our NOTLS, and every pasted NOTLS partner endpoint."""
    here = ctx.here
    if here.get("trusted_network") is not False:
        return {}  # trusted; or trustedNetwork itself was refused (its own problem says why)
    for index, peer in enumerate(here.get("peers") or ()):
        rule = plaintext_partner(peer.endpoint, peer.protocol) if peer.endpoint else None
        if rule is not None:
            r.problem(
                f"peers[{index}].endpoint",
                rule,
                "https://198.51.100.7:31080 with protocol TLS",
                peer.endpoint,
            )
    if here.get("protocol") != "NOTLS":
        return {}
    service = here.get("service")
    kind = getattr(service, "type", None)
    if kind is not None and kind != "ClusterIP":
        r.problem(
            "service.type",
            f"is {kind}, which makes the gateway reachable from outside the cluster, while {_RISK}: {_FIX}",
            '{"type": "LoadBalancer"} with protocol TLS',
            kind,
        )
    endpoint = here.get("public_endpoint")
    host = _host(endpoint) if isinstance(endpoint, str) else None
    if host is not None and not in_cluster_host(host):
        r.problem(
            "publicEndpoint",
            f"has the host {host}, outside the cluster (not a <service>.<namespace>.svc name), while "
            f"{_RISK}: {_FIX}",
            "https://203.0.113.10:31080 with protocol TLS",
            endpoint,
        )
    return {}


def _host(url: str) -> str | None:
    try:
        return urllib.parse.urlsplit(url).hostname
    except ValueError:  # already refused by publicEndpoint's own rule
        return None


def node_port(r: Reader, key: str, port: int, ctx: Ctx) -> int | None:
    if ctx.here.get("type") == "ClusterIP":
        r.problem(
            key,
            "only applies to service.type NodePort or LoadBalancer",
            '{"type": "NodePort", "nodePort": 31080}',
            port,
        )
        return None
    return port


def annotation_map(r: Reader, key: str, value: object, s: Setting, ctx: Ctx) -> dict[str, str] | None:
    raw = r.obj(key, value, s.example)
    if raw is None:
        return None
    result: dict[str, str] = {}
    for name, text in raw.items():
        if not isinstance(text, str):
            r.problem(f"{key}.{name}", f"must be a string, not {type_name(text)}", s.example, text)
        elif not _annotation_key_ok(str(name)):
            r.problem(
                key,
                "keys must be Kubernetes annotation names ([prefix/]name, name at most 63 characters)",
                s.example,
                name,
            )
        else:
            result[str(name)] = text
    size = sum(len(k.encode()) + len(v.encode()) for k, v in result.items())
    if size > ANNOTATIONS_LIMIT_BYTES:
        r.problem(
            key,
            f"total {size} bytes (names and values); Kubernetes refuses an object whose annotations "
            f"exceed {ANNOTATIONS_LIMIT_BYTES} bytes (256 KiB) in total",
            s.example,
        )
        return None
    return result


def default_endpoint(r: Reader, key: str, ctx: Ctx) -> str | None:
    domain, ns, proto = (ctx.top.get(k) for k in ("domain_id", "namespace", "protocol"))
    if domain and ns and proto:
        return f"{gateway_scheme(proto)}://kuscia-autonomy-{domain}.{ns}.svc.cluster.local:{GATEWAY_PORT}"
    return None


def public_endpoint(r: Reader, key: str, value: object, s: Setting, ctx: Ctx) -> str | None:
    proto = ctx.here.get("protocol")
    example = f"{gateway_scheme(proto)}://203.0.113.10:31080"
    text = r.text(key, value, example)
    if text is None or proto is None:
        return None
    return text if r.url(key, text, proto, example) and route_host(r, key, text, example) else None


def route_host(r: Reader, key: str, url: str, example: str) -> bool:
    """The host a partner's ClusterDomainRoute gets: Kuscia's CRD allows only an IPv4 address
    or a DNS name there (crds/v1alpha1/kuscia.secretflow_clusterdomainroutes.yaml,
    spec.endpoint.host `pattern`), so the partner's API server would refuse any IPv6 literal."""
    host = urllib.parse.urlsplit(url).hostname or ""
    if ":" not in host and not has_zone(host):
        return True
    zone = " (and a zone such as %eth0 is never valid in Kubernetes)" if has_zone(host) else ""
    r.problem(
        key,
        "must have an IPv4 address or a DNS name as its host: Kuscia's ClusterDomainRoute accepts no "
        f"IPv6 address as the endpoint host{zone}; give a DNS name that resolves to it",
        example,
        url,
    )
    return False


def cidrs(r: Reader, key: str, value: object, s: Setting, ctx: Ctx) -> tuple[str, ...] | None:
    ranges = r.array(key, value, s.example)
    if ranges is not None and not ranges:
        r.problem(
            key,
            "must not be empty: peering reaches KusciaAPI through the API server, which must be allowed",
            s.example,
        )
    found: list[str] = []
    for index, item in enumerate(ranges or []):
        text = r.text(f"{key}[{index}]", item, "172.18.0.2/32")
        if text is None:
            continue
        if has_zone(text):  # networking/validation ValidateIPBlock: netutils.ParseCIDRSloppy, no zones
            rule = "must be a CIDR without an IPv6 zone (%...): Kubernetes refuses zones in ipBlock.cidr"
            r.problem(f"{key}[{index}]", rule, "fe80::/64", text)
            continue
        try:
            found.append(str(ipaddress.ip_network(text, strict=True)))
        except ValueError:
            r.problem(
                f"{key}[{index}]",
                "must be an IP range in CIDR form without host bits set",
                "10.0.0.0/24",
                text,
            )
    return None if ranges is None else tuple(dict.fromkeys(found))


def _annotation_key_ok(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    return bool(_ANNOTATION_NAME.fullmatch(name)) and (not prefix or bool(DNS_NAME.fullmatch(prefix)))

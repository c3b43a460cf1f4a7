"""Peering: register a partner on our node and wait until the route token is really Ready.

`PartnerLink` is one side of a peering, in a party's own stack: the partner's Domain (role
partner, its certificate) and our route to it, through KusciaAPI. Domain before route, always
(a route made first is not re-queued when the Domain arrives; NOTES §3.3). It then polls the
route status until Ready or its own deadline (Pulumi's custom timeouts never reach dynamic
providers) and explains in user terms why it is not Ready.

By default a partner that has not registered us yet is not an error: the link ends
`WaitingForPartner` and the partner's `up` (or our next `up`/`refresh`) completes it.
`requirePeerReady` turns that timeout into an error. Key and protocol mismatches always fail.

`Peering` does both sides when one program holds both nodes: both Domains, then both routes.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult
from pulumi.runtime.settings import get_engine

if TYPE_CHECKING:
    from .config import PartyConfig, PeerSettings
    from .diagnosis import Diagnosis, Evidence
    from .kusciaapi import KusciaApiClient
    from .node import AutonomyNode

log = logging.getLogger(__name__)

Stage = Literal["all", "domain", "route"]
LinkStatus = Literal["Ready", "WaitingForPartner", "Failed"]
REPLACE_KEYS = ("domain_id", "partner_domain_id", "namespace", "service", "stage")
# Wait-policy changes alone do not touch the node: they only matter during the next wait.
UPDATE_KEYS = ("partner_endpoint", "partner_protocol", "protocol", "token")
SECRET_OUTPUTS = ("token", "partner_node")
POLL_START_SECONDS = 0.2
POLL_FACTOR = 1.5
POLL_CAP_SECONDS = 0.8  # bounds how late a Ready route is noticed
HARD_CONFIRMATIONS = 2  # a hard diagnosis must be seen twice in a row before failing
EVIDENCE_AFTER_SECONDS = 3.0  # a healthy handshake takes seconds; look closer only after that
EVIDENCE_EVERY_SECONDS = 10.0


class PeeringError(Exception):
    """Peering cannot succeed as configured; the message is the diagnosis with the next step."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    is_tls: bool
    path_prefix: str

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PeeringError(f"partner endpoint {url!r} must be an http:// or https:// URL with a host")
        is_tls = parts.scheme == "https"
        prefix = parts.path.rstrip("/")
        return cls(parts.hostname, parts.port or (443 if is_tls else 80), is_tls, prefix)


# -- the provider --------------------------------------------------------------------------------


class PartnerLinkProvider(ResourceProvider):
    """Stateless: every call builds its client from inputs and the deployer's kubeconfig."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = reconcile(props)
        return CreateResult(id_=link_id(props), outs=outs)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=reconcile(news))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [k for k in REPLACE_KEYS if olds.get(k) != news.get(k)]
        changed = [k for k in UPDATE_KEYS if olds.get(k) != news.get(k)]
        if _cert_changed(olds.get("partner_cert"), news.get("partner_cert")):
            changed.append("partner_cert")
        # A link that was not Ready is re-checked (and completed) by the next `up`.
        unfinished = news.get("stage", "all") != "domain" and olds.get("status") != "Ready"
        return DiffResult(
            changes=bool(replaces or changed or unfinished),
            replaces=replaces,
            stables=["domain_id", "partner_domain_id"],
            delete_before_replace=True,
        )

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        from .kusciaapi import DomainNotFound, RouteNotFound

        client = _client(props)
        stage = props.get("stage", "all")
        try:
            if stage in ("all", "domain"):
                client.query_domain(props["partner_domain_id"])
            if stage in ("all", "route"):
                client.query_route(props["domain_id"], props["partner_domain_id"])
        except (DomainNotFound, RouteNotFound):
            log.warning("%s: gone from the node; the next `pulumi up` recreates it", id_)
            return ReadResult(id_="", outs={})
        if stage == "domain":
            return ReadResult(id_=id_, outs=props)
        status, reason = _route_status(client, props["domain_id"], props["partner_domain_id"])
        diagnosis = _diagnose(props, status, reason)
        live = "Ready" if diagnosis.kind == "ready" else "WaitingForPartner"
        return ReadResult(id_=id_, outs={**props, **_status_outputs(live, reason, diagnosis)})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        from .kusciaapi import DomainNotFound, RouteNotFound, ServiceNotFound

        client = _client(props)
        stage = props.get("stage", "all")
        try:
            if stage in ("all", "route"):
                with contextlib.suppress(RouteNotFound):
                    client.delete_route(props["domain_id"], props["partner_domain_id"])
            if stage in ("all", "domain"):
                with contextlib.suppress(DomainNotFound):
                    client.delete_domain(props["partner_domain_id"])
        except ServiceNotFound:
            log.info("%s: the node's Service is gone, nothing left to delete", _id)


def link_id(props: Mapping[str, Any]) -> str:
    return f"{props['domain_id']}-{props['partner_domain_id']}:{props.get('stage', 'all')}"


def reconcile(
    props: Mapping[str, Any],
    *,
    client: KusciaApiClient | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Make the live node match `props` (Domain, then route), then wait; returns all outputs."""
    say = progress or _progress
    stage = props.get("stage", "all")
    src, dst = str(props["domain_id"]), str(props["partner_domain_id"])
    if not props.get("partner_cert") or not props.get("partner_endpoint"):
        diagnosis = _no_bundle_diagnosis(props)
        if props.get("require_ready"):
            raise PeeringError(str(diagnosis))
        say(f"{src}-{dst}: {diagnosis}")
        return {**props, **_status_outputs("WaitingForPartner", "", diagnosis)}
    _check_bundle(props)
    client = client or _client(props)
    wait_healthy(client, props, clock=clock, sleep=sleep, say=say)
    outs: dict[str, Any] = dict(props)
    if stage in ("all", "domain"):
        outs["domain_action"] = ensure_partner_domain(client, dst, str(props["partner_cert"]))
        say(f"{src}: partner Domain {dst} {outs['domain_action']}")
    if stage == "domain":
        return {**outs, **_status_outputs("Ready", "", None), "route_name": f"{src}-{dst}"}
    endpoint = Endpoint.parse(str(props["partner_endpoint"]))
    outs["route_action"] = ensure_route(client, src, dst, endpoint)
    say(f"{src}: route {src}-{dst} -> {props['partner_endpoint']} {outs['route_action']}")
    status, reason, diagnosis = wait_ready(client, props, clock=clock, sleep=sleep, say=say)
    return {**outs, **_status_outputs(status, reason, diagnosis)}


def wait_healthy(
    client: KusciaApiClient,
    props: Mapping[str, Any],
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    say: Callable[[str], None],
) -> None:
    from .kusciaapi import ApiUnavailable

    deadline = clock() + float(props.get("health_timeout_seconds") or props.get("timeout_seconds") or 300)
    delay = POLL_START_SECONDS
    while True:
        try:
            if client.health():
                return
            problem = "KusciaAPI answers but is not ready"
        except ApiUnavailable as err:
            problem = str(err)
        if clock() >= deadline:
            raise PeeringError(
                f"{props['domain_id']}'s KusciaAPI did not become healthy in time: {problem}. Check the pod: "
                f"kubectl -n {props['namespace']} get pods; kubectl -n {props['namespace']} logs "
                f"deploy/{props['service']}"
            )
        say(f"{props['domain_id']}: waiting for KusciaAPI to be healthy ({problem})")
        sleep(delay)
        delay = min(POLL_CAP_SECONDS, delay * POLL_FACTOR)


def ensure_partner_domain(client: KusciaApiClient, partner_id: str, cert_b64: str) -> str:
    """created | updated | unchanged. Compares public keys: cert bytes change on every restart."""
    from .kusciaapi import DomainExists, DomainNotFound
    from .pki import CertFormatError, same_public_key

    try:
        live = client.query_domain(partner_id)
    except DomainNotFound:
        try:
            client.create_partner_domain(partner_id, cert_b64)
            return "created"
        except DomainExists:
            live = client.query_domain(partner_id)
    live_cert = str(live.get("cert") or "")
    try:
        same_key = bool(live_cert) and same_public_key(live_cert, cert_b64)
    except CertFormatError:
        same_key = False
    if same_key and live.get("role") == "partner":
        return "unchanged"
    client.update_partner_domain(partner_id, cert_b64)
    return "updated"


def ensure_route(client: KusciaApiClient, source: str, destination: str, endpoint: Endpoint) -> str:
    """created | replaced | unchanged. Kuscia has no route update: a changed endpoint is recreated."""
    from .kusciaapi import RouteExists, RouteNotFound

    def create() -> None:
        client.create_route(
            source, destination, host=endpoint.host, port=endpoint.port, is_tls=endpoint.is_tls,
            path_prefix=endpoint.path_prefix,
        )  # fmt: skip

    try:
        live = client.query_route(source, destination)
    except RouteNotFound:
        try:
            create()
            return "created"
        except RouteExists:
            return "unchanged"
    if _route_matches(live, endpoint):
        return "unchanged"
    client.delete_route(source, destination)
    create()
    return "replaced"


def wait_ready(
    client: KusciaApiClient,
    props: Mapping[str, Any],
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    say: Callable[[str], None],
) -> tuple[LinkStatus, str, Diagnosis]:
    """Poll with capped backoff until Ready, a confirmed hard error, or the deadline."""
    src, dst = str(props["domain_id"]), str(props["partner_domain_id"])
    timeout = float(props.get("timeout_seconds") or 300)
    deadline = clock() + timeout
    delay = POLL_START_SECONDS
    hard_seen = 0
    last_said = ""
    evidence_due = clock() + EVIDENCE_AFTER_SECONDS
    evidence = None
    while True:
        status, reason = _route_status(client, src, dst)
        if status != "Succeeded" and (clock() >= evidence_due or clock() >= deadline):
            evidence = gather_evidence(client, props)
            evidence_due = clock() + EVIDENCE_EVERY_SECONDS
        diagnosis = _diagnose(props, status, reason, evidence)
        if diagnosis.kind == "ready":
            say(f"{src}-{dst}: Ready")
            return "Ready", reason, diagnosis
        hard_seen = hard_seen + 1 if diagnosis.hard else 0
        if hard_seen >= HARD_CONFIRMATIONS or (diagnosis.hard and clock() >= deadline):
            raise PeeringError(f"route {src}-{dst} failed: {diagnosis}")
        if diagnosis.summary != last_said:
            say(f"{src}-{dst}: not Ready yet - {diagnosis.summary}")
            last_said = diagnosis.summary
        if clock() >= deadline:
            if props.get("require_ready"):
                raise PeeringError(f"route {src}-{dst} not Ready after {timeout:.0f} s: {diagnosis}")
            say(
                f"warning: {src}-{dst} is not Ready after {timeout:.0f} s; leaving it WaitingForPartner. {diagnosis}"
            )
            return "WaitingForPartner", reason, diagnosis
        sleep(min(delay, max(0.0, deadline - clock())))
        delay = min(POLL_CAP_SECONDS, delay * POLL_FACTOR)


def _route_status(client: KusciaApiClient, src: str, dst: str) -> tuple[str, str]:
    from .kusciaapi import RouteNotFound

    try:
        statuses = client.route_status([(src, dst)])
    except RouteNotFound:
        return "", "route not found"
    entry = statuses.get(f"{src}-{dst}", {})
    return str(entry.get("status") or ""), str(entry.get("reason") or "")


def gather_evidence(client: KusciaApiClient, props: Mapping[str, Any]) -> Evidence:
    """What we can check through KusciaAPI: our node's own key, our copy of the partner's key,
    and, when we can reach the partner's node (one program, both nodes), its copy of ours."""
    from .diagnosis import Evidence
    from .kusciaapi import DomainNotFound, KusciaApiError
    from .pki import CertFormatError, same_public_key

    def matches(cert: str, expected: str | None) -> bool | None:
        if not cert or not expected:
            return None if not expected else False
        try:
            return same_public_key(cert, expected)
        except CertFormatError:
            return False

    src, dst = str(props["domain_id"]), str(props["partner_domain_id"])
    node_key = ours = has_us = theirs = None
    try:
        node_key = matches(str(client.query_domain(src).get("cert") or ""), props.get("own_cert"))
        ours = matches(str(client.query_domain(dst).get("cert") or ""), props.get("partner_cert"))
    except KusciaApiError:
        pass
    partner = props.get("partner_node")
    if partner:
        partner_client = _client({**partner, "domain_id": dst, "kube_context": props.get("kube_context"),
                                  "kubeconfig": props.get("kubeconfig")})  # fmt: skip
        try:
            # The partner's own certificate tells whether the bundle we were given is current.
            actual = str(partner_client.query_domain(dst).get("cert") or "")
            ours = False if matches(actual, props.get("partner_cert")) is False else ours
            live = partner_client.query_domain(src)
            has_us = live.get("role") == "partner"
            theirs = matches(str(live.get("cert") or ""), props.get("own_cert"))
        except DomainNotFound:
            has_us = False
        except KusciaApiError:
            pass
    return Evidence(
        our_copy_matches=ours, partner_has_us=has_us, partner_copy_matches=theirs, node_key_matches=node_key
    )


def _diagnose(
    props: Mapping[str, Any], status: str, reason: str, evidence: Evidence | None = None
) -> Diagnosis:
    from .diagnosis import LinkContext, diagnose

    ctx = LinkContext(
        source=str(props["domain_id"]),
        destination=str(props["partner_domain_id"]),
        endpoint=str(props.get("partner_endpoint") or ""),
        partner_stack=props.get("partner_stack") or None,
    )
    return diagnose(status, reason, ctx, evidence)


def _no_bundle_diagnosis(props: Mapping[str, Any]) -> Diagnosis:
    from .diagnosis import Diagnosis

    dst = props["partner_domain_id"]
    stack = props.get("partner_stack")
    where = f"stack {stack} has no peeringBundle output yet" if stack else f"no bundle was given for {dst}"
    return Diagnosis(
        "waiting_for_partner",
        f"{where}, so {props['domain_id']} cannot register {dst} yet.",
        f"Run `pulumi up -s {stack}` first, then `pulumi up` here." if stack else "Add the partner's bundle.",
        False,
    )


def _status_outputs(status: str, reason: str, diagnosis: Diagnosis | None) -> dict[str, Any]:
    return {
        "status": status,
        "reason": reason,
        "diagnosis": str(diagnosis) if diagnosis is not None else "",
        "checked_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _check_bundle(props: Mapping[str, Any]) -> None:
    from .pki import CertFormatError, cert_public_key_pem

    dst = props["partner_domain_id"]
    try:
        cert_public_key_pem(str(props["partner_cert"]))
    except CertFormatError as err:
        raise PeeringError(f"the certificate given for partner {dst} is unusable: {err}") from None
    endpoint = Endpoint.parse(str(props["partner_endpoint"]))
    protocol = str(props.get("partner_protocol") or "TLS")
    if endpoint.is_tls != (protocol != "NOTLS"):
        want = "http" if protocol == "NOTLS" else "https"
        raise PeeringError(
            f"partner {dst} runs protocol {protocol}, so its endpoint must start with {want}:// "
            f"(got {props['partner_endpoint']}); an http/https mismatch never becomes Ready (kuscia#450)"
        )


def _route_matches(live: Mapping[str, Any], endpoint: Endpoint) -> bool:
    live_endpoint = live.get("endpoint") or {}
    ports = live_endpoint.get("ports") or [{}]
    port = ports[0] if ports else {}
    same = live_endpoint.get("host") == endpoint.host and int(port.get("port") or 0) == endpoint.port
    if "isTLS" in port:
        same = same and bool(port["isTLS"]) == endpoint.is_tls
    if "path_prefix" in port:
        same = same and (port.get("path_prefix") or "").rstrip("/") == endpoint.path_prefix
    return same


def _cert_changed(old: str | None, new: str | None) -> bool:
    if not old or not new:
        return bool(old) != bool(new)
    from .pki import CertFormatError, same_public_key

    try:
        return not same_public_key(old, new)
    except CertFormatError:
        return old != new


def _client(props: Mapping[str, Any]) -> KusciaApiClient:
    from .kusciaapi import KusciaApiClient, NodeTarget

    return KusciaApiClient(
        NodeTarget(
            namespace=str(props["namespace"]),
            service=str(props["service"]),
            domain_id=str(props["domain_id"]),
            protocol=str(props["protocol"]),
            token=props.get("token") or None,
            kube_context=props.get("kube_context") or None,
            kubeconfig=props.get("kubeconfig") or None,
        )
    )


def _progress(message: str) -> None:
    log.info(message)
    if get_engine() is not None:  # inside a Pulumi run: show it in the CLI too
        with contextlib.suppress(Exception):
            pulumi.log.info(message)


# -- the resource --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WaitPolicy:
    timeout_seconds: int = 300
    require_ready: bool = False
    health_timeout_seconds: int = 300


class PartnerLink(Resource, module="kuscia", name="PartnerLink"):
    """One side of a peering: partner Domain + route self->partner + readiness (see module doc).

    Outputs: route_name, status (Ready | WaitingForPartner), reason (Kuscia's), diagnosis (ours),
    checked_at. Failures (key or protocol mismatch, or a timeout with require_ready) fail the
    deployment with the diagnosis.
    """

    route_name: pulumi.Output[str]
    status: pulumi.Output[str]
    reason: pulumi.Output[str]
    diagnosis: pulumi.Output[str]
    checked_at: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        domain_id: pulumi.Input[str],
        namespace: pulumi.Input[str],
        service: pulumi.Input[str],
        protocol: pulumi.Input[str],
        token: pulumi.Input[str] | None,
        partner: pulumi.Input[Mapping[str, Any]],
        own_cert: pulumi.Input[str] | None = None,
        partner_node: pulumi.Input[Mapping[str, Any]] | None = None,
        partner_stack: str | None = None,
        wait: WaitPolicy | None = None,
        stage: Stage = "all",
        kube_context: str | None = None,
        kubeconfig: str | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        policy = wait or WaitPolicy()
        bundle = pulumi.Output.from_input(partner)
        props = {
            "domain_id": domain_id,
            "namespace": namespace,
            "service": service,
            "protocol": protocol,
            "token": pulumi.Output.secret(token) if token is not None else None,
            "kube_context": kube_context,
            "kubeconfig": kubeconfig,
            "partner_domain_id": bundle.apply(lambda b: (b or {}).get("domainId")),
            "partner_cert": bundle.apply(lambda b: (b or {}).get("cert")),
            "partner_endpoint": bundle.apply(lambda b: (b or {}).get("endpoint")),
            "partner_protocol": bundle.apply(lambda b: (b or {}).get("protocol")),
            "partner_stack": partner_stack,
            "own_cert": own_cert,
            "partner_node": pulumi.Output.secret(partner_node) if partner_node is not None else None,
            "stage": stage,
            "timeout_seconds": policy.timeout_seconds,
            "require_ready": policy.require_ready,
            "health_timeout_seconds": policy.health_timeout_seconds,
            "route_name": None,
            "status": None,
            "reason": None,
            "diagnosis": None,
            "checked_at": None,
        }
        secret_opts = pulumi.ResourceOptions(additional_secret_outputs=list(SECRET_OUTPUTS))
        super().__init__(PartnerLinkProvider(), name, props, pulumi.ResourceOptions.merge(opts, secret_opts))


def node_link_args(node: AutonomyNode, cfg: PartyConfig) -> dict[str, Any]:
    """PartnerLink keyword arguments that describe our own node."""
    return {
        "domain_id": cfg.domain_id,
        "namespace": node.namespace,
        "service": node.service_name,
        "protocol": cfg.protocol,
        "token": node.kusciaapi_token,
        "own_cert": node.cert_b64,
        "kube_context": cfg.kube_context,
        "kubeconfig": cfg.kubeconfig,
        "wait": WaitPolicy(timeout_seconds=cfg.peering_timeout_seconds, require_ready=cfg.require_peer_ready),
    }


def link_partner(
    cfg: PartyConfig,
    node: AutonomyNode,
    peer: PeerSettings,
    bundle: pulumi.Output[Any],
    opts: pulumi.ResourceOptions | None,
) -> pulumi.Output[dict[str, str]]:
    """The party program's half of a peering with `peer`; returns its status for `links`."""
    link = PartnerLink(
        f"{cfg.domain_id}-link-{peer.domain_id}",
        **node_link_args(node, cfg),
        partner=bundle,
        partner_stack=peer.stack,
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[node])),
    )
    return pulumi.Output.all(link.route_name, link.status, link.reason, link.diagnosis).apply(
        lambda v: {
            "routeName": v[0] or "",
            "status": v[1] or "",
            "reason": v[2] or "",
            "diagnosis": v[3] or "",
        }
    )


def other_node_target(node: AutonomyNode) -> pulumi.Output[dict[str, Any]]:
    """How a route link reaches the partner's KusciaAPI for evidence (both nodes in one program)."""
    return pulumi.Output.all(node.namespace, node.service_name, node.protocol, node.kusciaapi_token).apply(
        lambda v: {"namespace": v[0], "service": v[1], "protocol": v[2], "token": v[3]}
    )


@dataclass(frozen=True)
class PeeringArgs:
    a: AutonomyNode
    a_config: PartyConfig
    b: AutonomyNode
    b_config: PartyConfig


class Peering(pulumi.ComponentResource):
    """Both sides of a peering when one program holds both nodes (one operator, one cluster).

    Both partner Domains first, then both routes, then both waits; `requirePeerReady` of either
    party makes a timeout an error for the pair.
    """

    status: pulumi.Output[dict[str, str]]

    def __init__(self, name: str, args: PeeringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("kuscia:index:Peering", name, None, opts)
        require = args.a_config.require_peer_ready or args.b_config.require_peer_ready
        sides = ((args.a, args.a_config, args.b), (args.b, args.b_config, args.a))
        domains = []
        for node, cfg, other in sides:
            domains.append(
                PartnerLink(
                    f"{name}-{cfg.domain_id}-domain",
                    **node_link_args(node, cfg),
                    partner=other.peering_bundle,
                    stage="domain",
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[node, other]),
                )
            )
        routes: dict[str, PartnerLink] = {}
        for node, cfg, other in sides:
            link_args = node_link_args(node, cfg)
            link_args["wait"] = WaitPolicy(cfg.peering_timeout_seconds, require)
            routes[cfg.domain_id] = PartnerLink(
                f"{name}-{cfg.domain_id}-route",
                **link_args,
                partner=other.peering_bundle,
                partner_node=other_node_target(other),
                stage="route",
                opts=pulumi.ResourceOptions(parent=self, depends_on=domains),
            )
        self.status = pulumi.Output.all(*[r.status for r in routes.values()]).apply(
            lambda values: dict(zip(routes, values, strict=True))
        )
        self.register_outputs({"status": self.status})

"""Peering: register a partner on our node and wait until the route token is really Ready.

`PartnerLink` is one side of a peering, in a party's own stack: the partner's Domain (role
partner, its certificate) and our route to it, through KusciaAPI (`kusciaapi.py`). Domain before
route, always: KusciaAPI refuses a route to an unknown Domain (kuscia#429), and a route that
exists before the Domain waits minutes (NOTES, pitfall 1). It then polls
the route status until Ready or its own deadline (Pulumi's custom timeouts never reach dynamic
providers) and explains in user terms why it is not Ready (`diagnosis.py`).

By default a partner that has not registered us yet is not an error: the link ends
`WaitingForPartner` with a warning, and the partner's `up` (or our next `up`/`refresh`) completes
it. `requirePeerReady` turns that timeout into an error. Key and protocol mismatches, a rejected
token and a refused request always fail, with the diagnosis.

`Peering` does both sides when one program holds both nodes, in real phases: a `phase="domain"`
link on each node, then a `phase="route"` link on each node that depends on both Domains.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypedDict

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult
from pulumi.runtime.settings import get_engine

from kuscia_components.config import gateway_scheme

if TYPE_CHECKING:
    from kuscia_components.config import PartyConfig, PeerSettings
    from kuscia_components.node.component import AutonomyNode
    from kuscia_components.peering.client import KusciaApiClient
    from kuscia_components.peering.diagnosis import Diagnosis, Evidence

log = logging.getLogger(__name__)

Phase = Literal["all", "domain", "route"]
LinkStatus = Literal["Ready", "WaitingForPartner", "Failed"]
# Changing which node or which partner is a different link: replace (delete, then create).
REPLACE_KEYS = ("domain_id", "partner_domain_id", "namespace", "service", "phase")
# Changing how we reach the partner, or our own token, is redone in place. Wait-policy changes
# alone do not touch the node: they only matter during the next wait.
UPDATE_KEYS = ("partner_endpoint", "partner_protocol", "protocol", "token")
SECRET_OUTPUTS = ("token", "partner_node")
POLL_START_SECONDS = 0.2
POLL_FACTOR = 1.5
POLL_CAP_SECONDS = 0.8  # bounds how late a Ready route is noticed (bench/peering.md)
PROGRESS_EVERY_SECONDS = 30.0  # a long wait says it is still alive
EVIDENCE_AFTER_SECONDS = 3.0  # a healthy handshake takes seconds; look closer only after that
EVIDENCE_EVERY_SECONDS = 10.0
HARD_CONFIRMATIONS = 2  # a hard diagnosis must hold in two evidence rounds before failing


class PeeringError(Exception):
    """Peering cannot succeed as configured; the message is the diagnosis with the next step."""


class PeeringBundle(TypedDict):
    """What a party publishes for its partners (stack output `peeringBundle`); all public."""

    domainId: str
    cert: str  # base64 of the PEM certificate (Domain.spec.cert form)
    endpoint: str  # http(s)://host:port[/prefix] of the gateway, as partners dial it
    protocol: str  # NOTLS | TLS


def inline_bundle(peer: PeerSettings) -> PeeringBundle | None:
    """A bundle pasted into `kuscia:peers` (across organisations); None for a stack peer."""
    if peer.stack is not None or peer.cert is None or peer.endpoint is None:
        return None
    return {
        "domainId": peer.domain_id,
        "cert": peer.cert,
        "endpoint": peer.endpoint,
        "protocol": peer.protocol or "TLS",
    }


def peer_bundle(
    peer: PeerSettings, given: Mapping[str, Mapping[str, Any]] | None = None
) -> pulumi.Output[Any]:
    """A partner's bundle: one the caller holds (Automation API), the `peeringBundle` output of
    the partner's stack by StackReference, or the bundle pasted inline."""
    if given and peer.domain_id in given:
        return pulumi.Output.from_input(dict(given[peer.domain_id]))
    if peer.stack is not None:
        return pulumi.StackReference(f"peer-{peer.domain_id}", stack_name=peer.stack).get_output(
            "peeringBundle"
        )
    return pulumi.Output.from_input(inline_bundle(peer))


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    is_tls: bool
    path_prefix: str

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        try:
            parts = urllib.parse.urlsplit(url)
            port = parts.port
        except ValueError:
            parts, port = None, None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise PeeringError(
                f"partner endpoint {url!r} must be an http:// or https:// URL with a host, "
                "e.g. https://kuscia-autonomy-bob.autonomy-bob.svc.cluster.local:1080"
            )
        is_tls = parts.scheme == "https"
        return cls(parts.hostname, port or (443 if is_tls else 80), is_tls, parts.path.rstrip("/"))

    def cluster_service(self) -> tuple[str, str] | None:
        """(namespace, service) when the host is a Service's cluster DNS name."""
        labels = self.host.split(".")
        if len(labels) >= 3 and labels[2] == "svc" and labels[3:] in ([], ["cluster", "local"]):
            return labels[1], labels[0]
        return None


# -- the provider --------------------------------------------------------------------------------


class PartnerLinkProvider(ResourceProvider):
    """Stateless: every call builds its client from inputs and the deployer's kubeconfig."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=link_id(props), outs=reconcile(props))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=reconcile(news))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [k for k in REPLACE_KEYS if olds.get(k) != news.get(k)]
        changed = [k for k in UPDATE_KEYS if olds.get(k) != news.get(k)]
        if _key_changed(olds.get("partner_cert"), news.get("partner_cert")):
            changed.append("partner_cert")
        # A link that is not Ready yet is re-checked (and completed) by the next `up`.
        unfinished = news.get("phase", "all") != "domain" and olds.get("status") != "Ready"
        return DiffResult(
            changes=bool(replaces or changed or unfinished),
            replaces=replaces,
            stables=["domain_id", "partner_domain_id"],
            delete_before_replace=True,
        )

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """Refresh: the live state. A Domain or route deleted by hand reads as gone (empty id),
        which drops the link from the state, so the next `up` creates it again."""
        from kuscia_components.peering.client import DomainNotFound, RouteNotFound, ServiceNotFound

        phase = props.get("phase", "all")
        src, dst = str(props["domain_id"]), str(props.get("partner_domain_id") or "")
        if not dst or not props.get("partner_cert"):
            return ReadResult(id_=id_, outs=props)  # nothing was registered yet
        with _client(props) as client:
            try:
                live_cert = str(client.query_domain(dst).get("cert") or "") if phase != "route" else ""
                if phase != "domain":
                    client.query_route(src, dst)
            except (DomainNotFound, RouteNotFound, ServiceNotFound) as err:
                gone = {DomainNotFound: f"partner Domain {dst}", RouteNotFound: f"route {src}-{dst}"}
                what = gone.get(type(err), f"{src}'s node Service")
                _say(f"warning: {what} is gone; the next `pulumi up` creates it again")
                return ReadResult(id_="", outs={})
            outs = dict(props)
            if live_cert and _key_changed(live_cert, str(props["partner_cert"])):
                outs["partner_cert"] = live_cert  # drift: the next `up` sees a changed key and updates
            if phase == "domain":
                return ReadResult(id_=id_, outs=outs)
            status, reason = route_status(client, src, dst)
            evidence = gather_evidence(client, props) if status != "Succeeded" else None
        diagnosis = _diagnose(props, status, reason, evidence)
        live: LinkStatus = (
            "Ready" if diagnosis.kind == "ready" else "Failed" if diagnosis.hard else "WaitingForPartner"
        )
        return ReadResult(id_=id_, outs={**outs, **_status_outputs(live, reason, diagnosis)})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Route, then partner Domain; either being gone already is fine."""
        from kuscia_components.peering.client import (
            ApiUnavailable,
            DomainNotFound,
            RouteNotFound,
            ServiceNotFound,
        )

        phase = props.get("phase", "all")
        src, dst = str(props["domain_id"]), str(props.get("partner_domain_id") or "")
        if not dst or not props.get("partner_cert"):
            return  # created without a bundle: nothing was registered
        with _client(props) as client:
            try:
                if phase != "domain":
                    with contextlib.suppress(RouteNotFound):
                        client.delete_route(src, dst)
                if phase != "route":
                    with contextlib.suppress(DomainNotFound):
                        client.delete_domain(dst)
            except ServiceNotFound:
                _say(f"{id_}: {src}'s node Service is gone, so is everything the link made")
            except ApiUnavailable as err:
                raise PeeringError(
                    f"cannot remove {src}'s registration of {dst}: {err} If {src}'s node is gone for good, "
                    "drop the link from the state with `pulumi state delete <urn>`."
                ) from None


def link_id(props: Mapping[str, Any]) -> str:
    return f"{props['domain_id']}-{props.get('partner_domain_id') or 'unknown'}:{props.get('phase', 'all')}"


# -- one reconciliation: health, Domain, route, wait ----------------------------------------------


def reconcile(
    props: Mapping[str, Any],
    *,
    client: KusciaApiClient | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Make the live node match `props` (Domain, then route), then wait; returns all outputs."""
    say = progress or _say
    phase = props.get("phase", "all")
    src, dst = str(props["domain_id"]), str(props.get("partner_domain_id") or "")
    if not dst or not props.get("partner_cert") or not props.get("partner_endpoint"):
        diagnosis = _no_bundle_diagnosis(props)
        if props.get("require_ready"):
            raise PeeringError(str(diagnosis))
        say(f"warning: {src}-{dst or '?'}: {diagnosis}")
        return {**props, "route_name": f"{src}-{dst}", **_status_outputs("WaitingForPartner", "", diagnosis)}
    endpoint = check_bundle(props)
    with _owned(client, props) as api:
        wait_healthy(api, props, clock=clock, sleep=sleep, say=say)
        outs: dict[str, Any] = {**props, "route_name": f"{src}-{dst}"}
        if phase != "route":
            outs["domain_action"] = ensure_partner_domain(api, dst, str(props["partner_cert"]))
            say(f"{src}: partner Domain {dst} {outs['domain_action']}")
        if phase == "domain":
            return {**outs, **_status_outputs("Ready", "", None)}
        outs["route_action"] = ensure_route(api, src, dst, endpoint)
        say(f"{src}: route {src}-{dst} -> {props['partner_endpoint']} {outs['route_action']}")
        status, reason, diagnosis = wait_ready(api, props, clock=clock, sleep=sleep, say=say)
    return {**outs, **_status_outputs(status, reason, diagnosis)}


def wait_healthy(
    client: KusciaApiClient,
    props: Mapping[str, Any],
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    say: Callable[[str], None],
) -> None:
    """Until KusciaAPI's /healthZ says ready (a node that was just deployed takes a minute)."""
    from kuscia_components.peering.client import ApiUnavailable

    src = props["domain_id"]
    deadline = clock() + float(props.get("health_timeout_seconds") or props.get("timeout_seconds") or 300)
    delay, last_said = POLL_START_SECONDS, ""
    while True:
        try:
            if client.health():
                return
            problem = "KusciaAPI answers but is not ready yet"
        except ApiUnavailable as err:
            problem = str(err)
        if clock() >= deadline:
            raise PeeringError(
                f"{src}'s KusciaAPI did not become healthy in time: {problem} Check the pod: "
                f"kubectl -n {props['namespace']} get pods; kubectl -n {props['namespace']} logs "
                f"deploy/{props['service']}"
            )
        if problem != last_said:
            say(f"{src}: waiting for KusciaAPI to be healthy ({problem})")
            last_said = problem
        sleep(min(delay, max(0.0, deadline - clock())))
        delay = min(POLL_CAP_SECONDS, delay * POLL_FACTOR)


def ensure_partner_domain(client: KusciaApiClient, partner_id: str, cert_b64: str) -> str:
    """created | updated | unchanged. Compares public keys: cert bytes change on every restart."""
    from kuscia_components.peering.client import DomainExists, DomainNotFound

    try:
        live = client.query_domain(partner_id)
    except DomainNotFound:
        try:
            client.create_partner_domain(partner_id, cert_b64)
            return "created"
        except DomainExists:  # made meanwhile (another link of the same program)
            live = client.query_domain(partner_id)
    if live.get("role") == "partner" and not _key_changed(str(live.get("cert") or ""), cert_b64):
        return "unchanged"
    client.update_partner_domain(partner_id, cert_b64)
    return "updated"


def ensure_route(client: KusciaApiClient, source: str, destination: str, endpoint: Endpoint) -> str:
    """created | replaced | unchanged. Kuscia has no route update: a changed endpoint is recreated."""
    from kuscia_components.peering.client import RouteExists, RouteNotFound

    def create() -> None:
        client.create_route(
            source,
            destination,
            host=endpoint.host,
            port=endpoint.port,
            is_tls=endpoint.is_tls,
            path_prefix=endpoint.path_prefix,
        )

    try:
        live = client.query_route(source, destination)
    except RouteNotFound:
        try:
            create()
            return "created"
        except RouteExists:
            live = client.query_route(source, destination)
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
    started = clock()
    deadline = started + timeout
    delay, hard_rounds, last_said = POLL_START_SECONDS, 0, ""
    evidence_due, next_progress = started + EVIDENCE_AFTER_SECONDS, started + PROGRESS_EVERY_SECONDS
    evidence: Evidence | None = None
    while True:
        status, reason = route_status(client, src, dst)
        fresh = False
        if status != "Succeeded" and clock() >= min(evidence_due, deadline):
            evidence, fresh = gather_evidence(client, props), True
            evidence_due = clock() + EVIDENCE_EVERY_SECONDS
        diagnosis = _diagnose(props, status, reason, evidence)
        if diagnosis.kind == "ready":
            say(f"{src}-{dst}: Ready")
            return "Ready", reason, diagnosis
        if diagnosis.hard:
            hard_rounds += 1 if fresh else 0
            if hard_rounds >= HARD_CONFIRMATIONS or clock() >= deadline:
                raise PeeringError(f"route {src}-{dst} failed: {diagnosis}")
            evidence_due = min(evidence_due, clock() + 1.0)  # confirm soon, with fresh evidence
        else:
            hard_rounds = 0
        now = clock()
        if diagnosis.summary != last_said or now >= next_progress:
            say(
                f"{src}-{dst}: not Ready after {now - started:.0f} s of {timeout:.0f} s - {diagnosis.summary}"
            )
            last_said, next_progress = diagnosis.summary, now + PROGRESS_EVERY_SECONDS
        if now >= deadline:
            if props.get("require_ready"):
                raise PeeringError(f"route {src}-{dst} not Ready after {timeout:.0f} s: {diagnosis}")
            say(
                f"warning: {src}-{dst} is not Ready after {timeout:.0f} s; it stays WaitingForPartner and the "
                f"next `pulumi up` or `pulumi refresh` checks again. {diagnosis}"
            )
            return "WaitingForPartner", reason, diagnosis
        sleep(min(delay, max(0.0, deadline - now)))
        delay = min(POLL_CAP_SECONDS, delay * POLL_FACTOR)


def route_status(client: KusciaApiClient, src: str, dst: str) -> tuple[str, str]:
    """(Succeeded | Failed | "", Kuscia's reason text) of the route src-dst."""
    from kuscia_components.peering.client import RouteNotFound

    try:
        statuses = client.route_status([(src, dst)])
    except RouteNotFound:
        return "", "route not found"
    entry = statuses.get(f"{src}-{dst}", {})
    return str(entry.get("status") or ""), str(entry.get("reason") or "")


def gather_evidence(client: KusciaApiClient, props: Mapping[str, Any]) -> Evidence:
    """What tells Kuscia's one generic reason apart, as far as we can look:
    our node's own key, our copy of the partner's key, the partner's Service (a cluster DNS
    endpoint) and, when one program holds both nodes (`partner_node`), the partner's copy of us."""
    from kuscia_components.peering.client import KusciaApiError, NodeTarget, probe_gateway
    from kuscia_components.peering.diagnosis import Evidence

    src, dst = str(props["domain_id"]), str(props["partner_domain_id"])
    found: dict[str, Any] = {}
    with contextlib.suppress(KusciaApiError):
        found["node_key_matches"] = _same_key(client.query_domain(src).get("cert"), props.get("own_cert"))
        found["our_partner_domain_present"], found["our_copy_matches"] = _registration(
            client, dst, props.get("partner_cert")
        )
    partner = props.get("partner_node")
    if partner:
        their_props = {
            **partner,
            "domain_id": dst,
            "kube_context": props.get("kube_context"),
            "kubeconfig": props.get("kubeconfig"),
            "timeout_seconds": props.get("timeout_seconds"),
        }
        with _client(their_props) as theirs, contextlib.suppress(KusciaApiError):
            # The partner's own certificate tells whether the bundle we were given is current.
            if _same_key(theirs.query_domain(dst).get("cert"), props.get("partner_cert")) is False:
                found["our_copy_matches"] = False
            found["partner_has_us"], found["partner_copy_matches"] = _registration(
                theirs, src, props.get("own_cert")
            )
    endpoint = Endpoint.parse(str(props["partner_endpoint"])) if props.get("partner_endpoint") else None
    service = endpoint.cluster_service() if endpoint is not None else None
    if endpoint is not None and service is not None:
        protocol = str(props.get("partner_protocol") or "TLS")
        target = NodeTarget(
            service[0],
            service[1],
            dst,
            protocol,
            kube_context=props.get("kube_context"),
            kubeconfig=props.get("kubeconfig"),
        )
        answers, detail = probe_gateway(target, port=endpoint.port)
        if answers is False:  # only a missing Service or pod is a fact about the partner's side
            found["gateway_reachable"], found["gateway_detail"] = False, detail
    return Evidence(**found)


def _registration(client: KusciaApiClient, domain_id: str, expected_cert: object) -> tuple[bool, bool | None]:
    """Does the client's node hold `domain_id` as a partner, and with the expected key?"""
    from kuscia_components.peering.client import DomainNotFound

    try:
        live = client.query_domain(domain_id)
    except DomainNotFound:
        return False, None
    return live.get("role") == "partner", _same_key(live.get("cert"), expected_cert)


def check_bundle(props: Mapping[str, Any]) -> Endpoint:
    """Refuse a bundle that can never work, before touching the node."""
    from kuscia_components.core.pki import CertFormatError, cert_public_key_pem

    dst = props["partner_domain_id"]
    bundle_id = props.get("bundle_domain_id")
    if bundle_id and bundle_id != dst:
        raise PeeringError(
            f"the peering bundle given for partner {dst} belongs to domain {bundle_id!r}: check kuscia:peers "
            f"(the stack name, or the bundle pasted for {dst})"
        )
    try:
        cert_public_key_pem(str(props["partner_cert"]))
    except CertFormatError as err:
        raise PeeringError(f"the certificate in {dst}'s peering bundle is unusable: {err}") from None
    endpoint = Endpoint.parse(str(props["partner_endpoint"]))
    protocol = str(props.get("partner_protocol") or "TLS")
    if endpoint.is_tls != (protocol != "NOTLS"):
        want = gateway_scheme(protocol)
        raise PeeringError(
            f"partner {dst} runs protocol {protocol}, so its endpoint must start with {want}:// "
            f"(got {props['partner_endpoint']}); an http/https mismatch never becomes Ready (kuscia#450)"
        )
    return endpoint


# -- helpers -------------------------------------------------------------------------------------


def _diagnose(
    props: Mapping[str, Any], status: str, reason: str, evidence: Evidence | None = None
) -> Diagnosis:
    from kuscia_components.peering.diagnosis import LinkContext, diagnose

    ctx = LinkContext(
        source=str(props["domain_id"]),
        destination=str(props["partner_domain_id"]),
        endpoint=str(props.get("partner_endpoint") or ""),
        partner_stack=props.get("partner_stack") or None,
        own_stack=props.get("own_stack") or None,
        partner_protocol=props.get("partner_protocol") or None,
        same_program=bool(props.get("partner_node")),
    )
    return diagnose(status, reason, ctx, evidence)


def _no_bundle_diagnosis(props: Mapping[str, Any]) -> Diagnosis:
    from kuscia_components.peering.diagnosis import Diagnosis

    src, dst = props["domain_id"], props.get("partner_domain_id") or "the partner"
    stack = props.get("partner_stack")
    if stack:
        return Diagnosis(
            "waiting_for_partner",
            f"stack {stack} has no peeringBundle output yet, so {src} cannot register {dst}.",
            f"Run `pulumi up -s {stack}` first, then `pulumi up` here.",
            False,
        )
    return Diagnosis(
        "waiting_for_partner",
        f"no peering bundle was given for {dst}, so {src} cannot register it.",
        f"Ask {dst} for `pulumi stack output peeringBundle` and add it to kuscia:peers.",
        False,
    )


def _status_outputs(status: LinkStatus, reason: str, diagnosis: Diagnosis | None) -> dict[str, Any]:
    return {
        "status": status,
        "reason": reason,
        "diagnosis": str(diagnosis) if diagnosis is not None else "",
        "checked_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _route_matches(live: Mapping[str, Any], endpoint: Endpoint) -> bool:
    live_endpoint = live.get("endpoint") or {}
    ports = live_endpoint.get("ports") or [{}]
    port = ports[0] if ports else {}
    same = live_endpoint.get("host") == endpoint.host and int(port.get("port") or 0) == endpoint.port
    if "isTLS" in port:  # Kuscia's query answer may leave these out
        same = same and bool(port["isTLS"]) == endpoint.is_tls
    if "path_prefix" in port:
        same = same and (port.get("path_prefix") or "").rstrip("/") == endpoint.path_prefix
    return same


def _same_key(cert: object, expected: object) -> bool | None:
    """Public keys equal? None when we have nothing to compare with; an unusable cert is False."""
    if not expected:
        return None
    if not cert:
        return False
    return not _key_changed(str(cert), str(expected))


def _key_changed(old: str | None, new: str | None) -> bool:
    if not old or not new:
        return bool(old) != bool(new)
    from kuscia_components.core.pki import CertFormatError, same_public_key

    try:
        return not same_public_key(old, new)
    except CertFormatError:
        return old != new


def _client(props: Mapping[str, Any]) -> KusciaApiClient:
    """Our node's client; its retry budget follows the link's deadline, so a node that is down
    cannot hold one call much past it."""
    from kuscia_components.peering.client import KusciaApiClient, NodeTarget, RetryPolicy

    timeout = float(props.get("timeout_seconds") or 300)
    budget = min(30.0, max(2.0, timeout / 4))
    return KusciaApiClient(
        NodeTarget(
            namespace=str(props["namespace"]),
            service=str(props["service"]),
            domain_id=str(props["domain_id"]),
            protocol=str(props["protocol"]),
            token=props.get("token") or None,
            kube_context=props.get("kube_context") or None,
            kubeconfig=props.get("kubeconfig") or None,
        ),
        retry=RetryPolicy(budget_seconds=budget, request_timeout_seconds=min(10.0, budget)),
    )


@contextlib.contextmanager
def _owned(client: KusciaApiClient | None, props: Mapping[str, Any]) -> Iterator[KusciaApiClient]:
    """The caller's client as it is, or one of our own, closed after."""
    if client is not None:
        yield client
        return
    with _client(props) as own:
        yield own


def _say(message: str) -> None:
    """Progress the user sees: the engine's log inside a Pulumi program (and under mocks); in a
    dynamic provider's own process, which has no engine connection, stderr, which the Pulumi CLI
    shows for dynamic providers (pulumi#18253). Also Python logging, for tools and tests."""
    warn = message.startswith("warning: ")
    text = message.removeprefix("warning: ")
    (log.warning if warn else log.info)(text)
    if get_engine() is None:
        print(f"{'warning' if warn else 'info'}: {text}", file=sys.stderr, flush=True)
        return
    with contextlib.suppress(Exception):
        (pulumi.log.warn if warn else pulumi.log.info)(text)


# -- the resource --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WaitPolicy:
    timeout_seconds: float = 300  # kuscia:peeringTimeoutSeconds
    require_ready: bool = False  # kuscia:requirePeerReady
    health_timeout_seconds: float = 300  # waiting for our own KusciaAPI


class PartnerLink(Resource, module="kuscia", name="PartnerLink"):
    """One side of a peering: partner Domain + route self->partner + readiness (module doc).

    Outputs: every input, plus route_name, status (Ready | WaitingForPartner | Failed after a
    refresh), reason (Kuscia's), diagnosis (ours, with the next step) and checked_at. The token
    and the partner node's details are secret outputs.
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
        partner: pulumi.Input[Mapping[str, Any] | None],
        partner_domain_id: str | None = None,
        own_cert: pulumi.Input[str] | None = None,
        partner_node: pulumi.Input[Mapping[str, Any]] | None = None,
        partner_stack: str | None = None,
        own_stack: str | None = None,
        wait: WaitPolicy | None = None,
        phase: Phase = "all",
        kube_context: str | None = None,
        kubeconfig: str | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        policy = wait or WaitPolicy()
        bundle = pulumi.Output.from_input(partner).apply(lambda b: dict(b or {}))
        props = {
            "domain_id": domain_id,
            "namespace": namespace,
            "service": service,
            "protocol": protocol,
            "token": pulumi.Output.secret(token) if token is not None else None,
            "kube_context": kube_context,
            "kubeconfig": kubeconfig,
            "partner_domain_id": partner_domain_id or bundle.apply(lambda b: b.get("domainId")),
            "bundle_domain_id": bundle.apply(lambda b: b.get("domainId")),
            "partner_cert": bundle.apply(lambda b: b.get("cert")),
            "partner_endpoint": bundle.apply(lambda b: b.get("endpoint")),
            "partner_protocol": bundle.apply(lambda b: b.get("protocol")),
            "partner_stack": partner_stack,
            "own_stack": own_stack if own_stack is not None else pulumi.get_stack(),
            "own_cert": own_cert,
            "partner_node": pulumi.Output.secret(partner_node) if partner_node is not None else None,
            "phase": phase,
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
    """PartnerLink keyword arguments that describe our own node and our wait policy."""
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
        partner_domain_id=peer.domain_id,
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

    Phase 1: a `phase="domain"` link on each node registers the other (Domain with its cert).
    Phase 2: a `phase="route"` link on each node, depending on both phase-1 links, creates the
    route and waits for its direction; it can read the partner's node, so its diagnosis is exact.
    `requirePeerReady` of either party makes a timeout an error for the pair. `status` maps each
    domain ID to its direction's status.
    """

    status: pulumi.Output[dict[str, str]]

    def __init__(self, name: str, args: PeeringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("kuscia:index:Peering", name, None, opts)
        require = args.a_config.require_peer_ready or args.b_config.require_peer_ready
        sides = (
            (args.a, args.a_config, args.b, args.b_config),
            (args.b, args.b_config, args.a, args.a_config),
        )
        domains = [
            PartnerLink(
                f"{name}-{cfg.domain_id}-domain",
                **node_link_args(node, cfg),
                partner=other.peering_bundle,
                partner_domain_id=other_cfg.domain_id,
                phase="domain",
                opts=pulumi.ResourceOptions(parent=self, depends_on=[node, other]),
            )
            for node, cfg, other, other_cfg in sides
        ]
        routes: dict[str, PartnerLink] = {}
        for node, cfg, other, other_cfg in sides:
            link_args = {
                **node_link_args(node, cfg),
                "wait": WaitPolicy(cfg.peering_timeout_seconds, require),
            }
            routes[cfg.domain_id] = PartnerLink(
                f"{name}-{cfg.domain_id}-route",
                **link_args,
                partner=other.peering_bundle,
                partner_domain_id=other_cfg.domain_id,
                partner_node=other_node_target(other),
                phase="route",
                opts=pulumi.ResourceOptions(parent=self, depends_on=domains),
            )
        self.status = pulumi.Output.all(*[r.status for r in routes.values()]).apply(
            lambda values: dict(zip(routes, values, strict=True))
        )
        self.register_outputs({"status": self.status})

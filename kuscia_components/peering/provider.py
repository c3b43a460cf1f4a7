"""PartnerLink's dynamic provider: check the inputs, make the live node match them (partner
Domain, then route), and wait until the route token is really Ready.

Domain before route, always: KusciaAPI refuses a route to an unknown Domain (kuscia#429), and a
route that exists before the Domain waits minutes (NOTES, pitfall 1). The wait has its own
deadline (Pulumi's custom timeouts never reach dynamic providers) and explains in user terms why
a route is not Ready (`diagnosis.py`). A partner that has not registered us yet is not an error
unless `require_ready`: the link ends WaitingForPartner and the next `up` or `refresh` completes
it. Key and protocol mismatches, a rejected token and a refused request always fail.

The provider is pickled into every stack's state by class path (`__provider`):
tests/test_provider_pickle.py pins that path, so moving this class is a deliberate act.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)
from pulumi.runtime.settings import get_engine

from kuscia_components.core.poll import Backoff, Poll
from kuscia_components.core.preview import unknowns_as_sentinel
from kuscia_components.core.status import LinkStatus
from kuscia_components.peering.bundle import Endpoint, PeeringError, check_bundle, key_changed
from kuscia_components.peering.evidence import gather_evidence, in_pod_probe
from kuscia_components.peering.props import LinkProps, input_problems

if TYPE_CHECKING:
    from kuscia_components.kube.tls import KusciaApiTls
    from kuscia_components.peering.client import KusciaApiClient
    from kuscia_components.peering.diagnosis import Diagnosis, Evidence

__all__ = ["PartnerLinkProvider", "PeeringError", "gather_evidence", "in_pod_probe", "link_id", "reconcile"]

log = logging.getLogger(__name__)

# Changing which node or which partner is a different link: replace (delete, then create).
REPLACE_KEYS = ("domain_id", "partner_domain_id", "namespace", "service", "phase")
# Changing how we reach the partner, or our own token, is redone in place. Wait-policy changes
# alone do not touch the node: they only matter during the next wait. New KusciaAPI TLS material
# (a new key, or a state from before the link had it) is an update too, so the state that
# `refresh` and `destroy` read holds what verifies the node.
UPDATE_KEYS = (
    "partner_endpoint",
    "partner_protocol",
    "protocol",
    "token",
    "kusciaapi_ca_pem",
    "kusciaapi_client_cert_pem",
)
# Every 0.2 s for 6 s (a partner that registers soon is seen within 0.2 s), then backing off to
# one poll every 6 s: about 85 polls in a 300 s wait (bench/peering.md).
LINK_BACKOFF = Backoff(start=0.2, factor=1.5, cap=6.0, hold=6.0)
POLL_CAP_SECONDS = 0.8  # how far past its deadline a wait may end (its last request and evidence)
PROGRESS_EVERY_SECONDS = 30.0  # a long wait says it is still alive
EVIDENCE_AFTER_SECONDS = 3.0  # a healthy handshake takes seconds; look closer only after that
EVIDENCE_EVERY_SECONDS = 10.0
HARD_CONFIRMATIONS = 2  # a hard diagnosis must hold in two evidence rounds before failing


class PartnerLinkProvider(ResourceProvider):
    """Stateless: every call builds its client from inputs and the deployer's kubeconfig."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """Refuse inputs that can never work (a bundle of another domain, an unusable cert, an
        http/https mismatch) at preview, before any node is touched. Inputs pass through as given."""
        failures = [CheckFailure(p.prop, p.reason) for p in input_problems(unknowns_as_sentinel(news))]
        return CheckResult(news, failures)

    def create(self, props: dict[str, Any]) -> CreateResult:
        link = LinkProps.from_props(props)
        return CreateResult(id_=link.link_id, outs=reconcile(link, undo_on_failure=True))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=reconcile(LinkProps.from_props(news)))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        olds, news = unknowns_as_sentinel(olds), unknowns_as_sentinel(news)
        old, new = LinkProps.from_props(olds), LinkProps.from_props(news)
        replaces = [k for k in REPLACE_KEYS if getattr(old, k) != getattr(new, k)]
        changed = [k for k in UPDATE_KEYS if getattr(old, k) != getattr(new, k)]
        if key_changed(old.partner_cert, new.partner_cert):
            changed.append("partner_cert")
        # A link not Ready yet (an output, read from the state) is redone by this `up`. The engine
        # shows that as an update without a property change (the SDK's host forwards no diff
        # details), so say why. A route that broke after Ready is seen through the refresh that
        # Pulumi.yaml's `options: refresh: always` runs before every `up` (`read`).
        why = ""
        if (
            new.phase != "domain"
            and not (replaces or changed or new.defer_wait)
            and olds.get("status") != "Ready"
        ):
            why = f"the state says {olds.get('status') or 'not Ready'}"
            say(f"{old.route_name}: {why}; this `pulumi up` registers it again and waits for Ready")
        return DiffResult(
            changes=bool(replaces or changed or why), replaces=replaces, delete_before_replace=True
        )

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """Refresh: the live state. A Domain or route deleted by hand reads as gone (empty id),
        which drops the link from the state, so the next `up` creates it again."""
        from kuscia_components.peering.client import DomainNotFound, RouteNotFound, ServiceNotFound

        link = LinkProps.from_props(props)
        src, dst = link.domain_id, link.partner_domain_id
        if not link.registers:
            return ReadResult(id_=id_, outs=props)  # nothing was registered yet
        with node_client(link) as client:
            try:
                live_cert = str(client.query_domain(dst).get("cert") or "") if link.phase != "route" else ""
                if link.phase != "domain":
                    client.query_route(src, dst)
            except (DomainNotFound, RouteNotFound, ServiceNotFound) as err:
                gone = {DomainNotFound: f"partner Domain {dst}", RouteNotFound: f"route {src}-{dst}"}
                what = gone.get(type(err), f"{src}'s node Service")
                say(f"warning: {what} is gone; the next `pulumi up` creates it again")
                return ReadResult(id_="", outs={})
            outs = dict(props)  # the state's outputs as they are, plus what changed live
            if live_cert and key_changed(live_cert, link.partner_cert):
                outs["partner_cert"] = live_cert  # drift: the next `up` sees a changed key and updates
            if link.phase == "domain":
                return ReadResult(id_=id_, outs=outs)
            status, reason = route_status(client, src, dst)
            evidence = gather_evidence(client, link) if status != "Succeeded" else None
        diagnosis = diagnose_link(link, status, reason, evidence)
        live: LinkStatus = (
            "Ready" if diagnosis.kind == "ready" else "Failed" if diagnosis.hard else "WaitingForPartner"
        )
        return ReadResult(id_=id_, outs={**outs, **status_outputs(live, reason, diagnosis)})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Route, then partner Domain; either being gone already is fine."""
        from kuscia_components.peering.client import (
            ApiUnavailable,
            DomainNotFound,
            RouteNotFound,
            ServiceNotFound,
        )

        link = LinkProps.from_props(props)
        src, dst = link.domain_id, link.partner_domain_id
        if not link.registers:
            return  # created without a bundle: nothing was registered
        with node_client(link) as client:
            try:
                if link.phase != "domain":
                    with contextlib.suppress(RouteNotFound):
                        client.delete_route(src, dst)
                if link.phase != "route":
                    with contextlib.suppress(DomainNotFound):
                        client.delete_domain(dst)
            except ServiceNotFound:
                say(f"{id_}: {src}'s node Service is gone, so is everything the link made")
            except ApiUnavailable as err:
                raise PeeringError(
                    f"cannot remove {src}'s registration of {dst}: {err} If {src}'s node is gone for good, "
                    "drop the link from the state with `pulumi state delete <urn>`."
                ) from None


def link_id(props: Mapping[str, Any]) -> str:
    return LinkProps.from_props(props).link_id


# -- one reconciliation: health, Domain, route, wait ----------------------------------------------


def reconcile(
    props: LinkProps | Mapping[str, Any],
    *,
    client: KusciaApiClient | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[str], None] | None = None,
    undo_on_failure: bool = False,
) -> dict[str, Any]:
    """Make the live node match `props` (Domain, then route), then wait; returns all outputs.

    A failed create leaves no state behind it, so nothing in `destroy` would ever remove what it
    registered: with `undo_on_failure` it removes what this call created before raising, and the
    error says what was done and undone (or what is left, if the node cannot be reached)."""
    link = props if isinstance(props, LinkProps) else LinkProps.from_props(props)
    tell = progress or say
    src, dst = link.domain_id, link.partner_domain_id
    outs: dict[str, Any] = {**link.to_props(), "route_name": link.route_name}
    if not link.registers or not link.partner_endpoint:
        diagnosis = no_bundle_diagnosis(link)
        if link.require_ready:
            raise PeeringError(str(diagnosis))
        tell(f"warning: {src}-{dst or '?'}: {diagnosis}")
        return {**outs, **status_outputs("WaitingForPartner", "", diagnosis)}
    endpoint = check_bundle(
        dst,
        bundle_domain_id=link.bundle_domain_id,
        cert=str(link.partner_cert),
        endpoint=link.partner_endpoint,
        protocol=link.partner_protocol,
        trusted_network=link.trusted_network,
    )
    from kuscia_components.peering.client import KusciaApiError

    made: list[str] = []  # what this call created, in order
    with _owned(client, link, budget_seconds=link.timeout_seconds) as api:
        try:
            wait_healthy(api, link, clock=clock, sleep=sleep, say=tell)
            if link.phase != "route":
                outs["domain_action"] = ensure_partner_domain(api, dst, str(link.partner_cert), made)
                tell(f"{src}: partner Domain {dst} {outs['domain_action']}")
            if link.phase == "domain":
                return {**outs, **status_outputs("Ready", "", None)}
            outs["route_action"] = ensure_route(api, src, dst, endpoint, made)
            tell(f"{src}: route {src}-{dst} -> {link.partner_endpoint} {outs['route_action']}")
            if link.defer_wait:  # one look; the stack's LinkReadiness waits for all links at once
                status, reason = route_status(api, src, dst)
                ready = status == "Succeeded"
                return {**outs, **status_outputs("Ready" if ready else "WaitingForPartner", reason, None)}
            status, reason, diagnosis = wait_ready(api, link, clock=clock, sleep=sleep, say=tell)
        except (PeeringError, KusciaApiError) as err:
            if not (undo_on_failure and made):
                raise
            raise PeeringError(f"{err} {undo(api, link, made)}") from None
    return {**outs, **status_outputs(status, reason, diagnosis)}


def undo(client: KusciaApiClient, link: LinkProps, made: list[str]) -> str:
    """Remove what a failed create registered (route first, as `delete`); says what happened."""
    from kuscia_components.peering.client import DomainNotFound, KusciaApiError, RouteNotFound

    src, dst = link.domain_id, link.partner_domain_id
    names = {"domain": f"partner Domain {dst}", "route": f"route {src}-{dst}"}
    removed, left = [], []
    for what in reversed(made):
        try:
            with contextlib.suppress(RouteNotFound, DomainNotFound):
                client.delete_route(src, dst) if what == "route" else client.delete_domain(dst)
            removed.append(names[what])
        except KusciaApiError as err:
            left.append(f"{names[what]} ({err})")
    said = f"This create had registered {' and '.join(names[w] for w in made)} on {src}'s node"
    if not left:
        return f"{said}; it removed them again, so nothing is left behind."
    return (
        f"{said}; removed: {', '.join(removed) or 'nothing'}; LEFT on the node, unknown to the state: "
        f"{'; '.join(left)}. The next `pulumi up` takes them over; `pulumi destroy` does not know them."
    )


def wait_healthy(
    client: KusciaApiClient,
    link: LinkProps,
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    say: Callable[[str], None],
) -> None:
    """Until KusciaAPI's /healthZ says ready (a node that was just deployed takes a minute)."""
    from kuscia_components.peering.client import ApiUnavailable

    src = link.domain_id
    poll = Poll(link.health_timeout, backoff=LINK_BACKOFF, clock=clock, sleep=sleep)
    last_said = ""
    while True:
        try:
            if client.health():
                return
            problem = "KusciaAPI answers but is not ready yet"
        except ApiUnavailable as err:
            problem = str(err)
        if poll.expired():
            raise PeeringError(
                f"{src}'s KusciaAPI did not become healthy in time: {problem} Check the pod: "
                f"kubectl -n {link.namespace} get pods; kubectl -n {link.namespace} logs "
                f"deploy/{link.service}"
            )
        if problem != last_said:
            say(f"{src}: waiting for KusciaAPI to be healthy ({problem})")
            last_said = problem
        poll.wait()


def ensure_partner_domain(
    client: KusciaApiClient, partner_id: str, cert_b64: str, made: list[str] | None = None
) -> str:
    """created | updated | unchanged. Compares public keys: cert bytes change on every restart.
    `made` gets "domain" just before the create call: one that fails may still have been applied."""
    from kuscia_components.peering.client import DomainExists, DomainNotFound

    try:
        live = client.query_domain(partner_id)
    except DomainNotFound:
        if made is not None:
            made.append("domain")
        try:
            client.create_partner_domain(partner_id, cert_b64)
            return "created"
        except DomainExists:  # made meanwhile (another link of the same program)
            if made is not None:
                made.remove("domain")
            live = client.query_domain(partner_id)
    if live.get("role") == "partner" and not key_changed(str(live.get("cert") or ""), cert_b64):
        return "unchanged"
    client.update_partner_domain(partner_id, cert_b64)
    return "updated"


def ensure_route(
    client: KusciaApiClient, source: str, destination: str, endpoint: Endpoint, made: list[str] | None = None
) -> str:
    """created | replaced | unchanged. Kuscia has no route update: a changed endpoint is recreated.
    `made` gets "route" just before a create of a route that did not exist."""
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
        if made is not None:
            made.append("route")
        try:
            create()
            return "created"
        except RouteExists:
            if made is not None:
                made.remove("route")
            live = client.query_route(source, destination)
    if route_matches(live, endpoint):
        return "unchanged"
    client.delete_route(source, destination)
    create()
    return "replaced"


def wait_ready(
    client: KusciaApiClient,
    link: LinkProps,
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    say: Callable[[str], None],
) -> tuple[LinkStatus, str, Diagnosis]:
    """Poll with capped backoff until Ready, a confirmed hard error, or the deadline."""
    src, dst = link.domain_id, link.partner_domain_id
    timeout = link.timeout_seconds
    poll = Poll(timeout, backoff=LINK_BACKOFF, clock=clock, sleep=sleep)
    hard_rounds, last_said = 0, ""
    evidence_due = poll.started + EVIDENCE_AFTER_SECONDS
    next_progress = poll.started + PROGRESS_EVERY_SECONDS
    evidence: Evidence | None = None
    while True:
        status, reason = route_status(client, src, dst)
        fresh = False
        if status != "Succeeded" and poll.now() >= min(evidence_due, poll.deadline):
            probe = in_pod_probe(client, poll.remaining())  # bounded by what is left of the wait
            evidence, fresh = gather_evidence(client, link, pod_probe=probe), True
            evidence_due = poll.now() + EVIDENCE_EVERY_SECONDS
        diagnosis = diagnose_link(link, status, reason, evidence)
        if diagnosis.kind == "ready":
            say(f"{src}-{dst}: Ready")
            return "Ready", reason, diagnosis
        if diagnosis.hard:
            hard_rounds += 1 if fresh else 0
            if hard_rounds >= HARD_CONFIRMATIONS or poll.expired():
                raise PeeringError(f"route {src}-{dst} failed: {diagnosis}")
            evidence_due = min(evidence_due, poll.now() + 1.0)  # confirm soon, with fresh evidence
        else:
            hard_rounds = 0
        now = poll.now()
        if diagnosis.summary != last_said or now >= next_progress:
            say(
                f"{src}-{dst}: not Ready after {poll.elapsed():.0f} s of {timeout:.0f} s - {diagnosis.summary}"
            )
            last_said, next_progress = diagnosis.summary, now + PROGRESS_EVERY_SECONDS
        if poll.expired():
            if link.require_ready:
                raise PeeringError(f"route {src}-{dst} not Ready after {timeout:.0f} s: {diagnosis}")
            say(
                f"warning: {src}-{dst} is not Ready after {timeout:.0f} s; it stays WaitingForPartner and the "
                f"next `pulumi up` or `pulumi refresh` checks again. {diagnosis}"
            )
            return "WaitingForPartner", reason, diagnosis
        poll.wait()


def route_status(client: KusciaApiClient, src: str, dst: str) -> tuple[str, str]:
    """(Succeeded | Failed | "", Kuscia's reason text) of the route src-dst."""
    from kuscia_components.peering.client import RouteNotFound

    try:
        statuses = client.route_status([(src, dst)])
    except RouteNotFound:
        return "", "route not found"
    entry = statuses.get(f"{src}-{dst}", {})
    return str(entry.get("status") or ""), str(entry.get("reason") or "")


# -- helpers -------------------------------------------------------------------------------------


def diagnose_link(link: LinkProps, status: str, reason: str, evidence: Evidence | None = None) -> Diagnosis:
    from kuscia_components.peering.diagnosis import LinkContext, diagnose

    ctx = LinkContext(
        source=link.domain_id,
        destination=link.partner_domain_id,
        endpoint=link.partner_endpoint or "",
        partner_stack=link.partner_stack,
        own_stack=link.own_stack,
        partner_protocol=link.partner_protocol,
        same_program=bool(link.partner_node),
    )
    return diagnose(status, reason, ctx, evidence)


def no_bundle_diagnosis(link: LinkProps) -> Diagnosis:
    from kuscia_components.peering.diagnosis import Diagnosis

    src, dst = link.domain_id, link.partner_domain_id or "the partner"
    if link.partner_stack:
        stack = link.partner_stack
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


def status_outputs(status: LinkStatus, reason: str, diagnosis: Diagnosis | None) -> dict[str, Any]:
    return {
        "status": status,
        "reason": reason,
        "diagnosis": str(diagnosis) if diagnosis is not None else "",
        "checked_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def route_matches(live: Mapping[str, Any], endpoint: Endpoint) -> bool:
    live_endpoint = live.get("endpoint") or {}
    ports = live_endpoint.get("ports") or [{}]
    port = ports[0] if ports else {}
    same = live_endpoint.get("host") == endpoint.host and int(port.get("port") or 0) == endpoint.port
    if "isTLS" in port:  # Kuscia's query answer may leave these out
        same = same and bool(port["isTLS"]) == endpoint.is_tls
    if "path_prefix" in port:
        same = same and (port.get("path_prefix") or "").rstrip("/") == endpoint.path_prefix
    return same


def node_client(link: LinkProps, budget_seconds: float | None = None) -> KusciaApiClient:
    """The client of the link's node. A call retries for as long as `budget_seconds` (the
    link's own deadline while it reconciles: a node restart of a few seconds is ridden out),
    by default a quarter of it, at most 30 s (refresh, delete: a node that is down fails soon)."""
    from kuscia_components.peering.client import KusciaApiClient, NodeTarget, RetryPolicy

    budget = budget_seconds or min(30.0, max(2.0, link.timeout_seconds / 4))
    return KusciaApiClient(
        NodeTarget(
            namespace=link.namespace,
            service=link.service,
            domain_id=link.domain_id,
            protocol=link.protocol,
            token=link.token,
            kube_context=link.kube_context,
            kubeconfig=link.kubeconfig,
            transport=link.kusciaapi_transport,
            tls=link_tls(link),
        ),
        retry=RetryPolicy(attempts=None, budget_seconds=budget, request_timeout_seconds=min(10.0, budget)),
    )


def link_tls(link: LinkProps) -> KusciaApiTls | None:
    """The TLS material of the link's node (kube/tls.py), or None: NOTLS, the service proxy (which
    never verifies), or a state written before the link carried the node's CA."""
    from kuscia_components.kube.tls import for_node

    if link.protocol == "NOTLS" or link.kusciaapi_transport == "serviceProxy" or not link.kusciaapi_ca_pem:
        return None
    try:
        return for_node(
            link.protocol,
            link.domain_id,
            link.kusciaapi_ca_pem,
            link.kusciaapi_client_cert_pem,
            link.kusciaapi_client_key_pem,
        )
    except ValueError as err:
        raise PeeringError(f"{link.domain_id}'s KusciaAPI: {err}") from None


@contextlib.contextmanager
def _owned(
    client: KusciaApiClient | None, link: LinkProps, budget_seconds: float | None = None
) -> Iterator[KusciaApiClient]:
    """The caller's client as it is, or one of our own, closed after."""
    if client is not None:
        yield client
        return
    with node_client(link, budget_seconds) as own:
        yield own


def say(message: str) -> None:
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

"""LinkReadiness: one wait for all PartnerLinks of a stack, instead of one wait per link.

Pulumi's dynamic-provider host serves every dynamic resource of a stack with 4 worker threads
(pulumi/dynamic/__main__.py). A link that waits in its own create holds one of them for up to
its deadline, so more than 4 links waited in batches and every other resource queued behind
them. Links made with `defer_wait` register (Domain, route) and return at once; this resource
depends on all of them and waits for all their routes in one call: each poll round asks each
node for all its pending routes in one `route/status/batchQuery`. Per link, the outcome is what
the link's own wait gave: Ready, WaitingForPartner (a warning) or an error (a confirmed hard
diagnosis, or a timeout under `requirePeerReady`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

from kuscia_components.core.poll import Poll
from kuscia_components.core.status import LinkStatus
from kuscia_components.peering import provider as links
from kuscia_components.peering.bundle import PeeringError
from kuscia_components.peering.props import LinkProps

__all__ = ["LinkReadiness", "LinkReadinessProvider", "wait_all"]

SECRETS = ("token", "partner_node", "kusciaapi_client_key_pem")  # PartnerLink's secret inputs


@dataclass
class _Pending:
    link: LinkProps
    deadline: float
    evidence_due: float
    hard_rounds: int = 0
    evidence: Any = None
    outcome: dict[str, str] | None = None
    error: str = ""
    last_said: str = ""


def wait_all(
    props: Sequence[Mapping[str, Any]],
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    say: Callable[[str], None] = links.say,
) -> dict[str, dict[str, str]]:
    """route name -> {status, reason, diagnosis, checked_at} once every route is decided."""
    from kuscia_components.peering.client import KusciaApiError, RouteNotFound

    waits = [LinkProps.from_props(p) for p in props]
    waits = [w for w in waits if w.phase != "domain" and w.registers and w.partner_endpoint]
    poll = Poll(
        max((w.timeout_seconds for w in waits), default=0.0),
        backoff=links.LINK_BACKOFF,
        clock=clock,
        sleep=sleep,
    )
    pending = [
        _Pending(w, poll.started + w.timeout_seconds, poll.started + links.EVIDENCE_AFTER_SECONDS)
        for w in waits
    ]
    by_node: dict[tuple[Any, ...], list[_Pending]] = {}
    for p in pending:
        by_node.setdefault(
            (p.link.namespace, p.link.service, p.link.kube_context, p.link.kubeconfig), []
        ).append(p)
    while True:
        for group in by_node.values():
            open_ = [p for p in group if p.outcome is None and not p.error]
            if not open_:
                continue
            with links.node_client(open_[0].link, budget_seconds=max(2.0, poll.remaining())) as client:
                try:
                    statuses = client.route_status(
                        [(p.link.domain_id, p.link.partner_domain_id) for p in open_]
                    )
                except RouteNotFound:
                    statuses = {}
                except KusciaApiError as err:
                    for p in open_:
                        p.error = f"route {p.link.route_name}: {err}"
                    continue
                for p in open_:
                    entry = statuses.get(p.link.route_name, {})
                    _decide(
                        p, client, str(entry.get("status") or ""), str(entry.get("reason") or ""), poll, say
                    )
        if all(p.outcome is not None or p.error for p in pending):
            break
        poll.wait()
    errors = [p.error for p in pending if p.error]
    if errors:
        raise PeeringError("; ".join(errors))
    return {p.link.route_name: p.outcome for p in pending if p.outcome is not None}


def _decide(
    p: _Pending, client: Any, status: str, reason: str, poll: Poll, say: Callable[[str], None]
) -> None:
    """One poll's result for one link, as `provider.wait_ready` decides it."""
    link, now = p.link, poll.now()
    fresh = False
    if status != "Succeeded" and now >= min(p.evidence_due, p.deadline):
        probe = links.in_pod_probe(client, p.deadline - now)  # bounded by what is left of the wait
        p.evidence, fresh = links.gather_evidence(client, link, pod_probe=probe), True
        p.evidence_due = now + links.EVIDENCE_EVERY_SECONDS
    diagnosis = links.diagnose_link(link, status, reason, p.evidence)
    expired = now >= p.deadline
    if diagnosis.kind == "ready":
        say(f"{link.route_name}: Ready")
        p.outcome = _outcome("Ready", reason, diagnosis)
    elif diagnosis.hard:
        p.hard_rounds += 1 if fresh else 0
        if p.hard_rounds >= links.HARD_CONFIRMATIONS or expired:
            p.error = f"route {link.route_name} failed: {diagnosis}"
        p.evidence_due = min(p.evidence_due, now + 1.0)
    elif expired:
        timeout = link.timeout_seconds
        if link.require_ready:
            p.error = f"route {link.route_name} not Ready after {timeout:.0f} s: {diagnosis}"
        else:
            say(
                f"warning: {link.route_name} is not Ready after {timeout:.0f} s; it stays WaitingForPartner and "
                f"the next `pulumi up` or `pulumi refresh` checks again. {diagnosis}"
            )
            p.outcome = _outcome("WaitingForPartner", reason, diagnosis)
    else:
        p.hard_rounds = 0
    if p.outcome is None and not p.error and diagnosis.summary != p.last_said:
        say(
            f"{link.route_name}: not Ready after {poll.elapsed():.0f} s of {link.timeout_seconds:.0f} s - {diagnosis.summary}"
        )
        p.last_said = diagnosis.summary


def _outcome(status: LinkStatus, reason: str, diagnosis: Any) -> dict[str, str]:
    return {k: str(v) for k, v in links.status_outputs(status, reason, diagnosis).items()}


class LinkReadinessProvider(ResourceProvider):
    """Inputs: `links`, the deferred links' props. Outputs: plus `statuses` (route -> outcome)."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_="readiness", outs=_outs(props))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=_outs(news))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """Wait again while a route is not Ready (the state says so), or when the links changed."""
        waiting = sorted(r for r, s in (olds.get("statuses") or {}).items() if s.get("status") != "Ready")
        if waiting:
            links.say(
                f"{', '.join(waiting)}: the state says not Ready; this `pulumi up` waits for them again"
            )
        return DiffResult(changes=bool(waiting) or olds.get("routes") != _routes(news.get("links") or []))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """Refresh: the links' own `read` reports their live status; this keeps its state."""
        return ReadResult(id_=id_, outs=props)


def _routes(props: Sequence[Mapping[str, Any]]) -> list[str]:
    """What the state keeps of the links (no secrets): each route and where it points."""
    return sorted(
        f"{p.get('domain_id')}-{p.get('partner_domain_id')} {p.get('partner_endpoint')} {p.get('timeout_seconds')}"
        for p in props
    )


def _outs(props: Mapping[str, Any]) -> dict[str, Any]:
    """Only what is not secret: the links' props (tokens) stay inputs."""
    given = _with_secrets(props)
    return {"routes": _routes(given), "statuses": wait_all(given)}


def _with_secrets(props: Mapping[str, Any]) -> list[dict[str, Any]]:
    secrets = list(props.get("secrets") or [])
    return [
        {**link, **(secrets[i] if i < len(secrets) else {})}
        for i, link in enumerate(props.get("links") or [])
    ]


class LinkReadiness(Resource, module="kuscia", name="LinkReadiness"):
    """Waits for the routes of `links` (PartnerLinks made with `defer_wait=True`) together."""

    statuses: pulumi.Output[dict[str, dict[str, str]]]

    def __init__(self, name: str, links: Sequence[Any], opts: pulumi.ResourceOptions | None = None) -> None:
        # The secrets apart, so that only they are secret in the state (not every domain ID).
        props = {
            "links": [{k: v for k, v in link.wait_inputs.items() if k not in SECRETS} for link in links],
            "secrets": pulumi.Output.secret([{k: link.wait_inputs[k] for k in SECRETS} for link in links]),
            "routes": None,
            "statuses": None,
        }
        after = pulumi.ResourceOptions(depends_on=list(links))
        super().__init__(LinkReadinessProvider(), name, props, pulumi.ResourceOptions.merge(opts, after))

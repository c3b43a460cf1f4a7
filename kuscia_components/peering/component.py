"""Peering in a program: a party's link to each partner (`link_partner`, with the partner's
bundle from `peer_bundle`), and `Peering`, both sides when one program holds both nodes.

By default a partner that has not registered us yet is not an error: the link ends
`WaitingForPartner` with a warning, and the partner's `up` (or our next `up`/`refresh`) completes
it. `requirePeerReady` turns that timeout into an error.

`Peering` runs in real phases: a `phase="domain"` link on each node, then a `phase="route"` link
on each node that depends on both Domains.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pulumi

from kuscia_components.peering.bundle import inline_bundle
from kuscia_components.peering.resource import KusciaApiTlsInputs, PartnerLink, WaitPolicy

if TYPE_CHECKING:
    from kuscia_components.config import PartyConfig, PeerSettings
    from kuscia_components.node.component import AutonomyNode


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


def node_link_args(node: AutonomyNode, cfg: PartyConfig) -> dict[str, Any]:
    """PartnerLink keyword arguments that describe our own node and our wait policy."""
    return {
        "domain_id": cfg.domain_id,
        "namespace": node.namespace,
        "service": node.service_name,
        "protocol": cfg.protocol,
        "token": node.kusciaapi_token,
        "own_cert": node.cert_b64,
        "kusciaapi_tls": KusciaApiTlsInputs(
            node.cert_pem, node.kusciaapi_client_cert_pem, node.kusciaapi_client_key_pem
        ),
        "kube_context": cfg.kube_context,
        "kubeconfig": cfg.kubeconfig,
        "kusciaapi_transport": cfg.kusciaapi_transport,
        "trusted_network": cfg.trusted_network,
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


def link_partners(
    cfg: PartyConfig,
    node: AutonomyNode,
    peers: Mapping[str, tuple[PeerSettings, pulumi.Output[Any]]],
    opts: pulumi.ResourceOptions | None,
) -> dict[str, pulumi.Output[dict[str, str]]]:
    """The party program's half of every peering (domain ID -> (peer, bundle)), with one wait.

    Each link registers and returns (`defer_wait`); one LinkReadiness waits for all their
    routes together, so the provider host's 4 workers are not held one per link (readiness.py).
    Returns each link's status for `links`, as `link_partner` does."""
    from kuscia_components.peering.readiness import LinkReadiness

    made = {
        domain_id: PartnerLink(
            f"{cfg.domain_id}-link-{peer.domain_id}",
            **node_link_args(node, cfg),
            partner=bundle,
            partner_domain_id=peer.domain_id,
            partner_stack=peer.stack,
            defer_wait=True,
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[node])),
        )
        for domain_id, (peer, bundle) in peers.items()
    }
    if not made:
        return {}
    ready = LinkReadiness(f"{cfg.domain_id}-links-ready", list(made.values()), opts=opts)

    def status(link: PartnerLink) -> pulumi.Output[dict[str, str]]:
        def pick(v: list[Any]) -> dict[str, str]:
            route, own = v[0] or "", {"status": v[1] or "", "reason": v[2] or "", "diagnosis": v[3] or ""}
            waited = (v[4] or {}).get(route) or {}
            return {
                "routeName": route,
                **own,
                **{k: waited[k] for k in ("status", "reason", "diagnosis") if k in waited},
            }

        return pulumi.Output.all(
            link.route_name, link.status, link.reason, link.diagnosis, ready.statuses
        ).apply(pick)

    return {domain_id: status(link) for domain_id, link in made.items()}


def other_node_target(node: AutonomyNode) -> pulumi.Output[dict[str, Any]]:
    """How a route link reaches the partner's KusciaAPI for evidence (both nodes in one program)."""
    return pulumi.Output.all(
        node.namespace,
        node.service_name,
        node.protocol,
        node.kusciaapi_token,
        node.cert_pem,
        node.kusciaapi_client_cert_pem,
        node.kusciaapi_client_key_pem,
    ).apply(
        lambda v: {
            "namespace": v[0],
            "service": v[1],
            "protocol": v[2],
            "token": v[3],
            "kusciaapi_ca_pem": v[4],
            "kusciaapi_client_cert_pem": v[5],
            "kusciaapi_client_key_pem": v[6],
        }
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

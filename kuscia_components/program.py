"""The Pulumi program: party config -> components -> stack outputs.

`__main__.py` (stack files, `pulumi up -s alice`), `render` (offline) and the Automation API
(`automation.py`, inline programs) all run this one function, so there is one source of truth.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from kuscia_components.config import PartyConfig, read_pulumi_config
from kuscia_components.node.component import AutonomyNode, AutonomyNodeArgs
from kuscia_components.peering.component import link_partner, peer_bundle


def party_program(
    config: PartyConfig | None = None,
    *,
    peer_bundles: Mapping[str, Mapping[str, Any]] | None = None,
) -> AutonomyNode:
    """Deploy one party's node and its half of every configured peering.

    `config` defaults to the stack's `kuscia:` config. `peer_bundles` (domainId -> bundle) lets a
    caller that already holds partners' bundles (the Automation API) skip StackReferences.
    """
    cfg = config if config is not None else read_pulumi_config()
    opts = _kubernetes_opts(cfg)
    node = AutonomyNode(cfg.domain_id, AutonomyNodeArgs(config=cfg), opts=opts)

    links: dict[str, Any] = {}
    for peer in cfg.peers:
        bundle = peer_bundle(peer, peer_bundles)
        links[peer.domain_id] = link_partner(cfg, node, peer, bundle, opts)

    pulumi.export("domainId", node.domain_id)
    pulumi.export("namespace", node.namespace)
    pulumi.export("serviceName", node.service_name)
    pulumi.export("publicEndpoint", node.public_endpoint)
    pulumi.export("peeringBundle", node.peering_bundle)
    pulumi.export("kusciaapiToken", node.kusciaapi_token)
    pulumi.export("links", links)
    return node


def _kubernetes_opts(cfg: PartyConfig) -> pulumi.ResourceOptions | None:
    """An explicit provider when the stack names a context or kubeconfig, so that the node and
    peering (which reads the same settings) always talk to the same cluster."""
    if cfg.kube_context is None and cfg.kubeconfig is None:
        return None
    provider = k8s.Provider(
        "kubernetes",
        context=cfg.kube_context,
        kubeconfig=_read_kubeconfig(cfg.kubeconfig) if cfg.kubeconfig else None,
    )
    return pulumi.ResourceOptions(providers={"kubernetes": provider})


def _read_kubeconfig(path: str) -> str:
    """The kubeconfig the stack names; a missing file is a config problem, not a traceback."""
    import os

    from kuscia_components.config import ConfigError, Problem

    try:
        with open(os.path.expanduser(path), encoding="utf-8") as handle:
            return handle.read()
    except OSError as err:
        rule = f"must name a readable kubeconfig file ({err.strerror})"
        raise ConfigError([Problem("kuscia:kubeconfig", rule, "~/.kube/config", path)]) from None

"""The Pulumi program: party config -> components -> stack outputs.

`__main__.py` (stack files, `pulumi up -s alice`), `render` (offline) and the Automation API
(`automation.py`, inline programs) all run this one function, so there is one source of truth.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from kuscia_components.config import PartyConfig, read_pulumi_config
from kuscia_components.kube.kubeconfig import project_path
from kuscia_components.node.component import AutonomyNode, AutonomyNodeArgs
from kuscia_components.peering.component import link_partners, peer_bundle


def party_program(
    config: PartyConfig | None = None,
    *,
    peer_bundles: Mapping[str, Mapping[str, Any]] | None = None,
) -> AutonomyNode:
    """Deploy one party's node and its half of every configured peering.

    `config` defaults to the stack's `kuscia:` config. `peer_bundles` (domainId -> bundle) lets a
    caller that already holds partners' bundles (the Automation API) skip StackReferences.
    """
    cfg = with_absolute_kubeconfig(config if config is not None else read_pulumi_config())
    opts = _kubernetes_opts(cfg)
    node = AutonomyNode(cfg.domain_id, AutonomyNodeArgs(config=cfg), opts=opts)

    peers = {peer.domain_id: (peer, peer_bundle(peer, peer_bundles)) for peer in cfg.peers}
    links: dict[str, Any] = dict(link_partners(cfg, node, peers, opts))

    pulumi.export("domainId", node.domain_id)
    pulumi.export("namespace", node.namespace)
    pulumi.export("serviceName", node.service_name)
    pulumi.export("publicEndpoint", node.public_endpoint)
    pulumi.export("peeringBundle", node.peering_bundle)
    pulumi.export("links", links)
    # No token output: a partner's StackReference copies this whole output map into its own
    # state, secrets included (decryptable there). `kuscia-p2p token` derives it from the key.
    return node


def with_absolute_kubeconfig(cfg: PartyConfig, project_dir: str | None = None) -> PartyConfig:
    """`kuscia:kubeconfig` relative to the project (where Pulumi.yaml lives), made absolute.

    The program runs in the project directory, but the dynamic providers that reuse the path
    for peering calls do not: the engine starts provider plugins in its own working directory
    (pulumi sdk/go/common/resource/plugin/provider_plugin.go), so a relative path would name
    another file there, or none.
    """
    if not cfg.kubeconfig:
        return cfg
    return dataclasses.replace(cfg, kubeconfig=project_path(cfg.kubeconfig, project_dir or _project_dir()))


def _project_dir() -> str:
    """Where Pulumi.yaml lives, as the engine tells the program (always absolute); the cwd
    without an engine (the SDK's default settings hold a relative placeholder)."""
    root = pulumi.get_root_directory()
    return root if root and os.path.isabs(root) else os.getcwd()


def _kubernetes_opts(cfg: PartyConfig) -> pulumi.ResourceOptions:
    """Always an explicit provider, for two reasons:

    - the node and peering (which reads the same context and kubeconfig) talk to one cluster;
    - `enable_secret_mutable`: without it pulumi-kubernetes replaces a Secret whose data changes
      (provider/pkg/provider/diff.go), and with our fixed names a replace is delete-then-create,
      so the pod would briefly mount a config Secret that does not exist.

    The kubeconfig's content (bearer tokens, client keys) is a provider input the engine stores
    in state; pulumi-kubernetes does not mark it secret, so we do. The content, not the path
    (which the provider also accepts): state then holds the cluster credentials a later
    `destroy` or `refresh` needs, whatever the file on this machine says by then.
    """
    provider = k8s.Provider(
        "kubernetes",
        context=cfg.kube_context,
        kubeconfig=pulumi.Output.secret(_read_kubeconfig(cfg.kubeconfig)) if cfg.kubeconfig else None,
        enable_secret_mutable=True,
    )
    return pulumi.ResourceOptions(providers={"kubernetes": provider})


def _read_kubeconfig(path: str) -> str:
    """The kubeconfig the stack names; a missing file is a config problem, not a traceback."""
    from kuscia_components.config import limits

    return limits.read_kubeconfig(path)

"""Two Kuscia parties on one cluster, peered by one program (the seed's scenario).

Each party is configured like a party stack's `kuscia:` config, under this project's `alice`
and `bob` keys. `Peering` registers both partner Domains, then both routes, and waits until
both directions are Ready (docs/peering.md).
"""

import pulumi
from pulumi.runtime.config import is_config_secret

from kuscia_components.config import PartyConfig, parse_party_config
from kuscia_components.node.component import AutonomyNode, AutonomyNodeArgs
from kuscia_components.peering.component import Peering, PeeringArgs

config = pulumi.Config()


def party(name: str) -> PartyConfig:
    """One party's settings; a secret object (e.g. one holding domainKeyData) keeps every key secret."""
    values = config.require_object(name)
    secret = is_config_secret(f"{config.name}:{name}")
    return parse_party_config(values, set(values) if secret else (), source=f"config {config.name}:{name}")


alice_cfg, bob_cfg = party("alice"), party("bob")
alice = AutonomyNode(alice_cfg.domain_id, AutonomyNodeArgs(alice_cfg))
bob = AutonomyNode(bob_cfg.domain_id, AutonomyNodeArgs(bob_cfg))
pair = Peering("alice-bob", PeeringArgs(a=alice, a_config=alice_cfg, b=bob, b_config=bob_cfg))

pulumi.export("status", pair.status)  # {"alice": "Ready", "bob": "Ready"}
pulumi.export("bundles", {"alice": alice.peering_bundle, "bob": bob.peering_bundle})

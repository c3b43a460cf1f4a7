"""The status and phase names every layer shares, in one place. Pure: no Pulumi.

The string values are part of the public surface (stack outputs `links`, rollout reports, the
`verify` table): rename a member only together with a migration note.
"""

from __future__ import annotations

from typing import Literal, get_args

LinkStatus = Literal["Ready", "WaitingForPartner", "Failed", "NotConfigured", "Unknown"]
"""One direction of a peering. A PartnerLink itself ends Ready, WaitingForPartner or Failed; a
rollout report adds NotConfigured (no link in the party's config) and Unknown (no outputs)."""

LINK_STATUSES: tuple[LinkStatus, ...] = get_args(LinkStatus)

LinkPhase = Literal["all", "domain", "route"]
"""What one PartnerLink reconciles: the partner Domain, the route, or both (a party's own stack)."""

LINK_PHASES: tuple[LinkPhase, ...] = get_args(LinkPhase)

RolloutPhase = Literal["nodes", "links", "ready", "remove"]
"""The network rollout's steps across stacks (network/planner.py), in order."""

ROLLOUT_PHASES: tuple[RolloutPhase, ...] = get_args(RolloutPhase)

PartyStatus = Literal["ok", "failed", "removed", "absent", "orphaned"]
"""One party's stack after a rollout."""

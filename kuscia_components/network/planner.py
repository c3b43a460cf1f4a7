"""Rolling out a network of parties: the pure phase planner (reports: network/report.py; the loop that runs
the plan: network/rollout.py) through a `StackRunner` (Pulumi via `automation.PulumiStackRunner`, or a test stand-in).

Peering is two-sided, so a rollout runs in phases nobody should choreograph by hand:
1. nodes: parties that are new, or whose own settings changed, come up first (with the partners
   whose bundles are already known), because their partners need their bundles;
2. links: every party gets every partner's bundle, read from the other stacks' outputs, as
   inline `kuscia:peers`; both sides register each other. Links wait only briefly here;
3. ready: parties with links not Ready yet run again and wait up to the deadline; rounds repeat
   only while a partner's bundle changed under them (a node replaced in phase 2);
4. remove: stacks of this network whose party left the spec are destroyed, after the remaining
   parties dropped their links to it in phases 1-2.

The planner (`plan_*`, `link_reports`) only reads the spec and what is known about each stack,
so it is tested directly. A party that fails is reported and left out of later phases; it does not
hide the others' results. Re-running with the same spec changes nothing: phase 1 is empty, each
party gets one no-op `up` (that also rolls out a new version of this package), phase 3 is empty.
The wait policy of a phase is applied in-process (`LinkWait`), so the stack config always equals
the spec and a plain `pulumi up` of a stack changes nothing either.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from kuscia_components.config import CONFIG_NAMESPACE
from kuscia_components.core.status import RolloutPhase
from kuscia_components.network.spec import (
    BUNDLE_KEYS,
    ConfigEntry,
    NetworkSpec,
    PartySpec,
    PeeringBundle,
)

if TYPE_CHECKING:
    from kuscia_components.config import PartyConfig


PEERS_KEY = f"{CONFIG_NAMESPACE}:peers"
LINK_PHASE_WAIT_SECONDS = 5  # phases 1-2: a link whose partner registered already is Ready in seconds
DEFAULT_READY_TIMEOUT_SECONDS = 600
MAX_READY_ROUNDS = 3
SECRET_OUTPUT = "[secret]"  # how runners hand back secret stack outputs

OutputSink = Callable[[str], None]


# -- the seam to Pulumi ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkWait:
    """How long this run's PartnerLinks wait for Ready. Applied to the parsed config inside the
    program, never written to the stack: wait-policy changes alone do not touch any resource."""

    timeout_seconds: int
    require_ready: bool | None = None  # None keeps the party's own requirePeerReady

    def apply(self, cfg: PartyConfig) -> PartyConfig:
        require = cfg.require_peer_ready if self.require_ready is None else self.require_ready
        return replace(
            cfg, peering_timeout_seconds=max(1, int(self.timeout_seconds)), require_peer_ready=require
        )


SHORT_WAIT = LinkWait(LINK_PHASE_WAIT_SECONDS, require_ready=False)


class StackRunner(Protocol):
    """What the rollout needs from Pulumi, one named stack at a time. Implementations are
    called from several threads at once (one stack per thread)."""

    def list_stacks(self) -> list[str]: ...

    def get_config(self, stack: str) -> dict[str, ConfigEntry] | None:
        """The stack's config (None when the stack does not exist)."""
        ...

    def set_config(self, stack: str, config: Mapping[str, ConfigEntry]) -> None:
        """Make the stack's `kuscia:`/`kuscia-network:` config exactly `config` (creating the
        stack if needed); secrets stored as secrets."""
        ...

    def up(
        self, stack: str, *, wait: LinkWait | None = None, on_output: OutputSink | None = None
    ) -> dict[str, Any]:
        """Run the party program on the stack; return its outputs, secret ones as SECRET_OUTPUT."""
        ...

    def outputs(self, stack: str) -> dict[str, Any] | None:
        """Last outputs (secret ones as SECRET_OUTPUT); None when the stack does not exist."""
        ...

    def destroy(self, stack: str, *, on_output: OutputSink | None = None) -> None:
        """Delete every resource of the stack, then the stack itself."""
        ...


# -- what is known and what to do -----------------------------------------------------------------


@dataclass
class StackState:
    """One stack as last seen: the config applied to it and its outputs."""

    config: dict[str, ConfigEntry] | None = None
    outputs: dict[str, Any] | None = None


@dataclass(frozen=True)
class StackUp:
    """One planned `up`: this config, then the program with this wait policy."""

    phase: RolloutPhase
    party: str
    stack: str
    config: Mapping[str, ConfigEntry]
    wait: LinkWait


def bundle_of(outputs: Mapping[str, Any] | None) -> PeeringBundle | None:
    """The `peeringBundle` output, if complete."""
    value = (outputs or {}).get("peeringBundle")
    if not isinstance(value, Mapping) or not all(
        isinstance(value.get(k), str) and value[k] for k in BUNDLE_KEYS
    ):
        return None
    return PeeringBundle(
        domainId=value["domainId"], cert=value["cert"], endpoint=value["endpoint"], protocol=value["protocol"]
    )


def known_bundles(spec: NetworkSpec, states: Mapping[str, StackState]) -> dict[str, PeeringBundle]:
    """domainId -> the peering bundle from that party's last outputs."""
    found = {}
    for party in spec.parties:
        bundle = bundle_of((states.get(party.domain_id) or StackState()).outputs)
        if bundle is not None:
            found[party.domain_id] = bundle
    return found


def desired_config(
    spec: NetworkSpec, party: PartySpec, bundles: Mapping[str, Mapping[str, Any]]
) -> dict[str, ConfigEntry]:
    """The party's stack config with every partner whose bundle is known."""
    partners = [bundles[p] for p in spec.partners(party.domain_id) if p in bundles]
    return party.to_config(partners, network=spec.name)


def plan_nodes(spec: NetworkSpec, states: Mapping[str, StackState]) -> list[StackUp]:
    """Phase 1: parties whose node is new or whose own settings (not their peers) changed."""
    bundles = known_bundles(spec, states)
    steps = []
    for party in spec.parties:
        state = states.get(party.domain_id) or StackState()
        want = desired_config(spec, party, bundles)
        if state.config is None or state.outputs is None or _own(state.config) != _own(want):
            steps.append(StackUp("nodes", party.domain_id, party.stack_name, want, SHORT_WAIT))
    return steps


def plan_links(
    spec: NetworkSpec, states: Mapping[str, StackState], *, ran: Collection[str], failed: Collection[str]
) -> list[StackUp]:
    """Phase 2: every party not run yet in this rollout, and every party whose partners'
    bundles changed, with all known bundles."""
    bundles = known_bundles(spec, states)
    steps = []
    for party in _alive(spec, failed):
        want = desired_config(spec, party, bundles)
        if party.domain_id not in ran or (states.get(party.domain_id) or StackState()).config != want:
            steps.append(StackUp("links", party.domain_id, party.stack_name, want, SHORT_WAIT))
    return steps


def plan_ready(
    spec: NetworkSpec,
    states: Mapping[str, StackState],
    *,
    failed: Collection[str],
    wait: LinkWait,
    touched: Collection[str] | None = None,
) -> list[StackUp]:
    """Phase 3, one round: parties whose partners' bundles changed since their last `up`, and
    parties with a link still waiting: any such link in the first round (`touched` None; the
    `up` waits until the deadline), later only links to a partner that ran again since
    (`touched`): the link may be Ready now, and only an `up` refreshes its status."""
    bundles = known_bundles(spec, states)
    steps = []
    for party in _alive(spec, failed):
        want = desired_config(spec, party, bundles)
        changed = (states.get(party.domain_id) or StackState()).config != want
        waiting = pending_links(spec, party.domain_id, states, failed)
        if touched is not None:
            waiting = [p for p in waiting if p in touched]
        if changed or waiting:
            steps.append(StackUp("ready", party.domain_id, party.stack_name, want, wait))
    return steps


def pending_links(
    spec: NetworkSpec, domain_id: str, states: Mapping[str, StackState], failed: Collection[str]
) -> list[str]:
    """Partners (alive, with a link configured) whose link from `domain_id` is not Ready."""
    links = links_output(states.get(domain_id))
    return [
        p
        for p in spec.partners(domain_id)
        if p not in failed and p in links and links[p].get("status") != "Ready"
    ]


def plan_removals(spec: NetworkSpec, members: Iterable[str]) -> list[str]:
    """Stacks of this network whose party is no longer in the spec."""
    wanted = {p.stack_name for p in spec.parties}
    return sorted(stack for stack in members if stack not in wanted)


def _alive(spec: NetworkSpec, failed: Collection[str]) -> list[PartySpec]:
    return [p for p in spec.parties if p.domain_id not in failed]


def _own(config: Mapping[str, ConfigEntry]) -> dict[str, ConfigEntry]:
    return {k: v for k, v in config.items() if k != PEERS_KEY}


def links_output(state: StackState | None) -> dict[str, dict[str, Any]]:
    links = ((state or StackState()).outputs or {}).get("links")
    if not isinstance(links, Mapping):
        return {}
    return {str(k): dict(v) for k, v in links.items() if isinstance(v, Mapping)}

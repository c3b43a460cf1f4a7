"""Rolling out a network of parties: a pure phase planner, typed reports, and the loop that runs
the plan through a `StackRunner` (Pulumi via `automation.PulumiStackRunner`, or a test stand-in).

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

import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol

from kuscia_components.config import CONFIG_NAMESPACE
from kuscia_components.core.redact import redact
from kuscia_components.core.status import LinkStatus, PartyStatus, RolloutPhase
from kuscia_components.network.spec import (
    BUNDLE_KEYS,
    NETWORK_KEY,
    ConfigEntry,
    NetworkSpec,
    PartySpec,
    PeeringBundle,
)

if TYPE_CHECKING:
    from kuscia_components.config import PartyConfig

log = logging.getLogger(__name__)

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
    links = _links_output(states.get(domain_id))
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


def _links_output(state: StackState | None) -> dict[str, dict[str, Any]]:
    links = ((state or StackState()).outputs or {}).get("links")
    if not isinstance(links, Mapping):
        return {}
    return {str(k): dict(v) for k, v in links.items() if isinstance(v, Mapping)}


# -- reports ----------------------------------------------------------------------------------------


@dataclass
class PartyReport:
    """One party's stack: how it went, how long each phase took, what it exports (no secrets)."""

    domain_id: str
    stack: str
    status: PartyStatus = "ok"
    error: str = ""
    phases: dict[str, float] = field(default_factory=dict)  # phase -> seconds spent in `up`/`destroy`
    bundle: PeeringBundle | None = None
    namespace: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict, repr=False)  # secret ones are SECRET_OUTPUT

    @property
    def seconds(self) -> float:
        return sum(self.phases.values())


@dataclass
class LinkReport:
    """One direction of a peering: the route `source-destination` on the source's node."""

    source: str
    destination: str
    status: LinkStatus
    route_name: str = ""
    reason: str = ""
    diagnosis: str = ""
    ready_after_seconds: float | None = None  # since the rollout started, when first seen Ready


@dataclass
class NetworkReport:
    name: str
    parties: dict[str, PartyReport] = field(default_factory=dict)
    links: list[LinkReport] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Every party up (or removed on purpose) and every link Ready."""
        return all(p.status in ("ok", "removed") for p in self.parties.values()) and all(
            link.status == "Ready" for link in self.links
        )

    def to_dict(self) -> dict[str, Any]:
        parties = {}
        for key, party in self.parties.items():
            data = asdict(party)
            shown_elsewhere = ("peeringBundle", "links", "namespace")  # bundle, links, namespace fields
            data["outputs"] = {
                k: v for k, v in party.outputs.items() if v != SECRET_OUTPUT and k not in shown_elsewhere
            }
            data["seconds"] = round(party.seconds, 2)
            parties[key] = data
        return {
            "name": self.name,
            "ok": self.ok,
            "seconds": round(self.seconds, 2),
            "parties": parties,
            "links": [asdict(link) for link in self.links],
        }

    def format_table(self) -> str:
        lines = [f"{'PARTY':<16} {'STACK':<16} {'STATUS':<9} {'SECONDS':>7}  ERROR"]
        for p in self.parties.values():
            lines.append(
                f"{p.domain_id:<16} {p.stack:<16} {p.status:<9} {p.seconds:7.1f}  {p.error}".rstrip()
            )
        if self.links:
            lines += ["", f"{'ROUTE':<33} {'STATUS':<17} {'READY AFTER':>11}  DIAGNOSIS"]
            for link in self.links:
                after = f"{link.ready_after_seconds:.1f} s" if link.ready_after_seconds is not None else "-"
                route = f"{link.source}-{link.destination}"
                lines.append(f"{route:<33} {link.status:<17} {after:>11}  {link.diagnosis}".rstrip())
        ready = sum(1 for link in self.links if link.status == "Ready")
        lines += ["", f"{ready}/{len(self.links)} links Ready; {'OK' if self.ok else 'NOT OK'}"]
        return "\n".join(lines)


def link_reports(
    spec: NetworkSpec,
    states: Mapping[str, StackState],
    unavailable: Mapping[str, str],
    ready_at: Mapping[tuple[str, str], float] | None = None,
) -> list[LinkReport]:
    """Every directed link of the spec, from the source party's `links` output. `unavailable`
    maps parties whose stack failed or is missing to why (a phrase such as "its stack failed: ...")."""
    reports = []
    for source, destination in spec.links():
        if source in unavailable:
            reports.append(
                LinkReport(source, destination, "Unknown", diagnosis=f"{source}: {unavailable[source]}")
            )
            continue
        link = _links_output(states.get(source)).get(destination)
        if link is None:
            why = unavailable.get(destination, "its stack has no peering bundle yet")
            reports.append(
                LinkReport(
                    source,
                    destination,
                    "NotConfigured",
                    diagnosis=f"{destination} not registered on {source}: {why}",
                )
            )
            continue
        status = str(link.get("status") or "Unknown")
        reports.append(
            LinkReport(
                source,
                destination,
                status if status in ("Ready", "WaitingForPartner", "Failed") else "Unknown",  # type: ignore[arg-type]
                route_name=str(link.get("routeName") or ""),
                reason=str(link.get("reason") or ""),
                diagnosis=str(link.get("diagnosis") or ""),
                ready_after_seconds=(ready_at or {}).get((source, destination)),
            )
        )
    return reports


def party_report(party: PartySpec, state: StackState | None) -> PartyReport:
    """A report from what the stack exports (no `up`)."""
    if state is None or state.outputs is None:
        return PartyReport(party.domain_id, party.stack_name, "absent", "the stack does not exist")
    report = PartyReport(party.domain_id, party.stack_name)
    _take_outputs(report, state.outputs)
    return report


def _take_outputs(report: PartyReport, outputs: Mapping[str, Any]) -> None:
    report.outputs = dict(outputs)
    report.bundle = bundle_of(outputs)
    namespace = outputs.get("namespace")
    report.namespace = namespace if isinstance(namespace, str) else None


# -- the loop ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a rollout, for a progress callback (and `logging`)."""

    phase: RolloutPhase | Literal["plan", "done"]
    party: str | None
    message: str
    failed: bool = False

    def __str__(self) -> str:
        who = f"{self.party}: " if self.party else ""
        return f"[{self.phase}] {who}{self.message}"


ProgressSink = Callable[[ProgressEvent], None]
PulumiOutputSink = Callable[[str, str], None]  # (stack, line)


class Rollout:
    """One run of the phases against a runner; see the module docstring."""

    def __init__(
        self,
        spec: NetworkSpec,
        runner: StackRunner,
        *,
        parallelism: int = 4,
        on_progress: ProgressSink | None = None,
        on_output: PulumiOutputSink | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if parallelism < 1:
            raise ValueError(f"parallelism must be at least 1 (got {parallelism}); e.g. 4")
        self.spec = spec
        self.runner = runner
        self.parallelism = parallelism
        self.on_progress = on_progress
        self.on_output = on_output
        self.clock = clock
        self.started = clock()
        self.states: dict[str, StackState] = {}
        self.reports = {p.domain_id: PartyReport(p.domain_id, p.stack_name) for p in spec.parties}
        self.failed: dict[str, str] = {}
        self.ran: set[str] = set()
        self.ready_at: dict[tuple[str, str], float] = {}
        self._secrets = [s for s in spec.secret_values() if s]

    # -- public steps --------------------------------------------------------------------------

    def deploy(self, *, ready_timeout_seconds: float = DEFAULT_READY_TIMEOUT_SECONDS) -> NetworkReport:
        self.observe()
        self.say(
            "plan",
            None,
            f"{len(self.spec.parties)} parties, {len(self.spec.links())} links, "
            f"parallelism {self.parallelism}",
        )
        self.run("nodes", plan_nodes(self.spec, self.states))
        self.run("links", plan_links(self.spec, self.states, ran=self.ran, failed=self.failed))
        deadline = self.clock() + ready_timeout_seconds
        touched: set[str] | None = None
        for _round in range(MAX_READY_ROUNDS):
            remaining = deadline - self.clock()
            if remaining < 1:
                self.say("ready", None, "deadline reached")
                break
            wait = LinkWait(int(remaining), require_ready=None)
            steps = plan_ready(self.spec, self.states, failed=self.failed, wait=wait, touched=touched)
            if not steps:
                break
            self.run("ready", steps, detail=f"waiting up to {int(remaining)} s")
            touched = {step.party for step in steps}
        removed = self.remove(plan_removals(self.spec, self.members()))
        return self.report(removed)

    def observe(self) -> None:
        """Read every party's stack config and outputs (one runner call each, in parallel)."""

        def read(party: PartySpec) -> tuple[str, StackState]:
            return party.domain_id, StackState(
                self.runner.get_config(party.stack_name), self.runner.outputs(party.stack_name)
            )

        for domain_id, state in self.parallel(self.spec.parties, read):
            self.states[domain_id] = state
        self._note_ready()

    def members(self) -> list[str]:
        """Every stack carrying this network's name (including parties no longer in the spec)."""
        wanted = {p.stack_name for p in self.spec.parties}
        found = []
        for stack in self.runner.list_stacks():
            if stack in wanted:
                found.append(stack)
                continue
            config = self.runner.get_config(stack) or {}
            entry = config.get(NETWORK_KEY)
            if entry is not None and entry.value == self.spec.name:
                found.append(stack)
        return found

    def run(self, phase: RolloutPhase, steps: Sequence[StackUp], *, detail: str = "") -> None:
        names = ", ".join(s.party for s in steps) or "nothing to do"
        self.say(phase, None, f"{len(steps)} stack(s){' ' + detail if detail and steps else ''}: {names}")
        for step, outcome, seconds in self.parallel(steps, self._up):
            report = self.reports[step.party]
            report.phases[phase] = report.phases.get(phase, 0.0) + seconds
            self.ran.add(step.party)
            if isinstance(outcome, BaseException):
                self.failed[step.party] = report.error = self._error_text(outcome)
                report.status = "failed"
                self.say(phase, step.party, f"FAILED after {seconds:.1f} s: {report.error}", failed=True)
                continue
            self.states[step.party] = StackState(dict(step.config), outcome)
            _take_outputs(report, outcome)
            self._note_ready()
            self.say(phase, step.party, f"up in {seconds:.1f} s; {self._link_summary(step.party)}")

    def remove(self, stacks: Sequence[str]) -> list[PartyReport]:
        if stacks:
            self.say("remove", None, f"{len(stacks)} stack(s) no longer in the spec: {', '.join(stacks)}")
        return self.parallel(stacks, lambda stack: self.destroy_stack(stack, "remove"))

    def report(self, extra: Iterable[PartyReport] = ()) -> NetworkReport:
        report = NetworkReport(self.spec.name, dict(self.reports))
        for item in extra:
            report.parties[item.domain_id] = item
        failed = {party: f"its stack failed: {error}" for party, error in self.failed.items()}
        report.links = link_reports(self.spec, self.states, failed, self.ready_at)
        report.seconds = self.clock() - self.started
        ready = sum(1 for link in report.links if link.status == "Ready")
        self.say(
            "done",
            None,
            f"{ready}/{len(report.links)} links Ready, {len(self.failed)} party(ies) failed, "
            f"{report.seconds:.1f} s",
            failed=not report.ok,
        )
        return report

    # -- helpers -------------------------------------------------------------------------------

    def _up(self, step: StackUp) -> tuple[StackUp, dict[str, Any] | BaseException, float]:
        started = self.clock()
        try:
            self.runner.set_config(step.stack, step.config)
            outputs = self.runner.up(step.stack, wait=step.wait, on_output=self._sink(step.stack))
        except Exception as err:  # one party failing must not hide the others
            return step, err, self.clock() - started
        return step, dict(outputs), self.clock() - started

    def destroy_stack(self, stack: str, phase: RolloutPhase) -> PartyReport:
        report = PartyReport(stack, stack, "removed")
        started = self.clock()
        try:
            self.runner.destroy(stack, on_output=self._sink(stack))
        except Exception as err:
            report.status, report.error = "failed", f"destroy failed: {self._error_text(err)}"
        report.phases[phase] = self.clock() - started
        self.say(
            phase,
            stack,
            report.error or f"destroyed in {report.phases[phase]:.1f} s",
            failed=bool(report.error),
        )
        return report

    def _sink(self, stack: str) -> OutputSink | None:
        sink = self.on_output
        return None if sink is None else (lambda line: sink(stack, line))

    def parallel(self, items: Iterable[Any], work: Callable[[Any], Any]) -> list[Any]:
        items = list(items)
        if not items:
            return []
        with ThreadPoolExecutor(max_workers=min(self.parallelism, len(items))) as pool:
            return [future.result() for future in as_completed([pool.submit(work, item) for item in items])]

    def _note_ready(self) -> None:
        now = self.clock() - self.started
        for source, state in self.states.items():
            for destination, link in _links_output(state).items():
                if link.get("status") == "Ready":
                    self.ready_at.setdefault((source, destination), round(now, 2))

    def _link_summary(self, party: str) -> str:
        links = _links_output(self.states.get(party))
        if not links:
            return "no links yet"
        ready = sum(1 for v in links.values() if v.get("status") == "Ready")
        return f"links {ready}/{len(links)} Ready"

    def _error_text(self, err: BaseException) -> str:
        text = str(err).strip() or type(err).__name__
        return redact(text, self._secrets)

    def say(self, phase: Any, party: str | None, message: str, *, failed: bool = False) -> None:
        event = ProgressEvent(phase, party, redact(message, self._secrets), failed)
        log.log(logging.WARNING if failed else logging.INFO, "%s", event)
        if self.on_progress is not None:
            self.on_progress(event)


def teardown(
    spec: NetworkSpec,
    runner: StackRunner,
    *,
    parallelism: int = 4,
    on_progress: ProgressSink | None = None,
    on_output: PulumiOutputSink | None = None,
) -> NetworkReport:
    """Destroy every stack of the network: the spec's parties and any member left behind."""
    rollout = Rollout(spec, runner, parallelism=parallelism, on_progress=on_progress, on_output=on_output)
    members = set(rollout.members())
    stacks = sorted(members | {p.stack_name for p in spec.parties})
    by_stack = {p.stack_name: p.domain_id for p in spec.parties}
    rollout.say("remove", None, f"{len(stacks)} stack(s): {', '.join(stacks)}")

    def destroy(stack: str) -> PartyReport:
        if stack not in members:  # members holds every existing stack of the spec's parties
            return PartyReport(by_stack.get(stack, stack), stack, "absent", "the stack does not exist")
        report = rollout.destroy_stack(stack, "remove")
        report.domain_id = by_stack.get(stack, stack)
        return report

    report = NetworkReport(spec.name, {r.domain_id: r for r in rollout.parallel(stacks, destroy)})
    report.seconds = rollout.clock() - rollout.started
    return report


def status_report(spec: NetworkSpec, runner: StackRunner, *, parallelism: int = 4) -> NetworkReport:
    """Parties and links as of each stack's last `up` (no change is made)."""
    rollout = Rollout(spec, runner, parallelism=parallelism)
    rollout.observe()
    report = NetworkReport(spec.name)
    for party in spec.parties:
        report.parties[party.domain_id] = party_report(party, rollout.states.get(party.domain_id))
    absent = {d: "its stack does not exist" for d, r in report.parties.items() if r.status == "absent"}
    for stack in plan_removals(spec, rollout.members()):
        report.parties[stack] = PartyReport(
            stack, stack, "orphaned", "no longer in the spec: the next `up` removes it"
        )
    report.links = link_reports(spec, rollout.states, absent)
    return report


def up_party(
    party: PartySpec,
    runner: StackRunner,
    *,
    partners: Iterable[Mapping[str, Any]] = (),
    network: str | None = None,
    wait: LinkWait | None = None,
    on_output: OutputSink | None = None,
) -> PartyReport:
    """One party's stack, with `partners`' bundles as its peers: config, then `up`."""
    report = PartyReport(party.domain_id, party.stack_name)
    started = time.monotonic()
    try:
        runner.set_config(party.stack_name, party.to_config(partners, network=network))
        outputs = runner.up(party.stack_name, wait=wait, on_output=on_output)
    except Exception as err:
        report.status, report.error = (
            "failed",
            redact(str(err).strip() or type(err).__name__, party.secret_values()),
        )
    else:
        _take_outputs(report, outputs)
    report.phases["up"] = time.monotonic() - started
    return report

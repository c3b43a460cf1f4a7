"""The loop that runs the planner's phases through a `StackRunner`, with progress events."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from kuscia_components.core.redact import redact
from kuscia_components.core.status import RolloutPhase
from kuscia_components.network.spec import (
    NETWORK_KEY,
    NetworkSpec,
    PartySpec,
)

if TYPE_CHECKING:
    pass

from kuscia_components.network.planner import (
    DEFAULT_READY_TIMEOUT_SECONDS,
    MAX_READY_ROUNDS,
    LinkWait,
    OutputSink,
    StackRunner,
    StackState,
    StackUp,
    links_output,
    plan_links,
    plan_nodes,
    plan_ready,
    plan_removals,
)
from kuscia_components.network.report import (
    NetworkReport,
    PartyReport,
    link_reports,
    party_report,
    take_outputs,
)

log = logging.getLogger(__name__)


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
            take_outputs(report, outcome)
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
            for destination, link in links_output(state).items():
                if link.get("status") == "Ready":
                    self.ready_at.setdefault((source, destination), round(now, 2))

    def _link_summary(self, party: str) -> str:
        links = links_output(self.states.get(party))
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
        take_outputs(report, outputs)
    report.phases["up"] = time.monotonic() - started
    return report

"""Typed reports of a network rollout: per party and per link, built from what the stacks say."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from kuscia_components.core.status import LinkStatus, PartyStatus
from kuscia_components.network.spec import (
    NetworkSpec,
    PartySpec,
    PeeringBundle,
)

if TYPE_CHECKING:
    pass

from kuscia_components.network.planner import SECRET_OUTPUT, StackState, bundle_of, links_output

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
    by_source: dict[str, dict[str, dict[str, Any]]] = {}  # each source's links output, read once
    for source, destination in spec.links():
        if source in unavailable:
            reports.append(
                LinkReport(source, destination, "Unknown", diagnosis=f"{source}: {unavailable[source]}")
            )
            continue
        if source not in by_source:
            by_source[source] = links_output(states.get(source))
        link = by_source[source].get(destination)
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
    take_outputs(report, state.outputs)
    return report


def take_outputs(report: PartyReport, outputs: Mapping[str, Any]) -> None:
    report.outputs = dict(outputs)
    report.bundle = bundle_of(outputs)
    namespace = outputs.get("namespace")
    report.namespace = namespace if isinstance(namespace, str) else None

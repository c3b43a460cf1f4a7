"""The `kubectl get cdr`-like table `verify` prints for a node's routes (pure).

Kuscia's ClusterDomainRoute printer columns are NAME SOURCE DESTINATION HOST AUTHENTICATION
READY, READY being the Ready condition's status: `True`, `False`, or empty while no condition
has been written (NOTES §2.2). KusciaAPI reports the same thing as `Succeeded`/`Failed` plus a
reason text (`LastUpdateAt=…, Message=…, Reason:…`, NOTES §4.1), so `ready_column` maps it back.
A route the node does not have at all gets READY `<missing>` (kubectl would simply not list
it). Under each row that is not Ready: Kuscia's reason and our diagnosis with the next step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MISSING = "<missing>"
UNKNOWN = "<unknown>"  # the node could not be asked
HEADER = ("NAME", "SOURCE", "DESTINATION", "HOST", "AUTHENTICATION", "READY")


@dataclass(frozen=True)
class RouteRow:
    name: str
    source: str
    destination: str
    host: str
    authentication: str
    ready: str  # "True" | "False" | "" (no status yet) | MISSING | UNKNOWN
    reason: str = ""  # Kuscia's own words
    diagnosis: str = ""  # ours, with the next step
    endpoint: str = ""  # host:port the route dials (not a kubectl column; for the diagnosis)

    @property
    def is_ready(self) -> bool:
        return self.ready == "True"


def ready_column(status: str, reason: str) -> str:
    """KusciaAPI's route status -> the READY column kubectl shows."""
    if status == "Succeeded":
        return "True"
    return "False" if reason.strip() else ""


def render_cdr_table(rows: Sequence[RouteRow]) -> str:
    cells = [HEADER, *((r.name, r.source, r.destination, r.host, r.authentication, r.ready) for r in rows)]
    widths = [max(len(cell[i]) for cell in cells) for i in range(len(HEADER))]
    lines = ["   ".join(value.ljust(widths[i]) for i, value in enumerate(HEADER)).rstrip()]
    for row, cell in zip(rows, cells[1:], strict=True):
        lines.append("   ".join(value.ljust(widths[i]) for i, value in enumerate(cell)).rstrip())
        if not row.is_ready:
            if row.reason:
                lines.append(f"    reason: {row.reason}")
            if row.diagnosis:
                lines.append(f"    diagnosis: {row.diagnosis}")
    return "\n".join(lines)

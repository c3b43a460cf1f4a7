"""Typed check results shared by `preflight` and `verify`, and how a report reads.

A check is a function that returns a `CheckResult` (PASS/FAIL/WARN/SKIP, what was seen, a
one-line fix). Expected failures are results, never exceptions; `run_steps` turns anything
unexpected into a FAIL line too, so neither command can end in a traceback. Secret values
(database passwords, the KusciaAPI token, the domain key) are collected in a
`core.redact.Redactor` during a run; the command line scrubs every line and JSON field with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from kuscia_components.checks.cdr_table import RouteRow

Status = Literal["PASS", "FAIL", "WARN", "SKIP"]
STATUSES: tuple[Status, ...] = ("PASS", "FAIL", "WARN", "SKIP")


@dataclass(frozen=True)
class CheckResult:
    """One check: `fix` is shown unless it PASSed; `data` carries machine-readable facts."""

    name: str
    status: Status
    detail: str
    fix: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status == "FAIL"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
            "fix": self.fix,
            "data": self.data,
        }


def passed(name: str, detail: str, **data: Any) -> CheckResult:
    return CheckResult(name, "PASS", detail, "", data)


def failed(name: str, detail: str, fix: str, **data: Any) -> CheckResult:
    return CheckResult(name, "FAIL", detail, fix, data)


def warned(name: str, detail: str, fix: str, **data: Any) -> CheckResult:
    return CheckResult(name, "WARN", detail, fix, data)


def skipped(name: str, detail: str, fix: str = "") -> CheckResult:
    return CheckResult(name, "SKIP", detail, fix)


def broken(name: str, err: BaseException) -> CheckResult:
    """A check that raised: a plain FAIL with the reason where the error is an answer refused for
    its size (the server's doing, not a bug here), else "the check itself broke"."""
    from kuscia_components.kube.errors import AnswerTooLarge
    from kuscia_components.peering.client import UnexpectedAnswer

    if isinstance(err, AnswerTooLarge) or (isinstance(err, UnexpectedAnswer) and "longer than" in str(err)):
        return failed(
            name,
            first_line(err),
            "the server answered with far more than such an answer ever holds: check that the kubeconfig "
            "and context point at your cluster's API server and the node is Kuscia, not another service",
        )
    return failed(
        name,
        f"the check itself broke: {type(err).__name__}: {first_line(err)}",
        "re-run with the same arguments; if it persists, report it with this line",
    )


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else type(err).__name__


@dataclass
class Report:
    """The outcome of one run of `preflight` or `verify`."""

    command: str
    stack: str
    domain_id: str
    checks: list[CheckResult] = field(default_factory=list)
    routes: list[RouteRow] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(c.failed for c in self.checks)

    def counts(self) -> dict[str, int]:
        return {s: sum(c.status == s for c in self.checks) for s in STATUSES}

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {
            "command": self.command,
            "stack": self.stack,
            "domainId": self.domain_id,
            "ok": self.ok,
            "counts": self.counts(),
            "checks": [c.to_dict() for c in self.checks],
            "routes": [asdict(r) for r in self.routes],
        }


def render_lines(checks: Sequence[CheckResult]) -> str:
    """Aligned `STATUS  name  detail` lines, with `fix:` under each that did not pass."""
    width = max((len(c.name) for c in checks), default=0)
    lines = []
    for check in checks:
        lines.append(f"{check.status:<4}  {check.name:<{width}}  {check.detail}".rstrip())
        if check.fix and check.status != "PASS":
            lines.append(f"{'':<4}  {'':<{width}}  fix: {check.fix}")
    return "\n".join(lines)


def render_report(report: Report) -> str:
    from kuscia_components.checks.cdr_table import render_cdr_table

    counts = report.counts()
    summary = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])
    verdict = "OK" if report.ok else "FAILED"
    parts = [render_lines(report.checks)]
    if report.routes:
        parts.append(render_cdr_table(report.routes))
    parts.append(f"{report.command} {report.stack}: {verdict} ({summary})")
    return "\n\n".join(parts)


# -- sequences -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One check (or a few that are read together) in a sequence; it is SKIPped when a step it
    `needs` did not pass. A step that yields several results counts as failed if any failed."""

    name: str
    run: Callable[[], CheckResult | list[CheckResult]]
    needs: tuple[str, ...] = ()


def run_steps(steps: Iterable[Step]) -> list[CheckResult]:
    outcome: dict[str, Status] = {}
    results: list[CheckResult] = []
    for step in steps:
        blocked = next((n for n in step.needs if outcome.get(n) in ("FAIL", "SKIP")), None)
        if blocked is not None:
            found = [skipped(step.name, f"not checked: '{blocked}' did not pass")]
        else:
            try:
                produced = step.run()
            except Exception as err:  # the last net under every check: never a traceback
                produced = broken(step.name, err)
            found = produced if isinstance(produced, list) else [produced]
        outcome[step.name] = (
            "FAIL" if any(r.failed for r in found) else (found[0].status if found else "PASS")
        )
        results.extend(found)
    return results

"""Typed check results and the command runner shared by `preflight` and `verify`.

A check is a function that returns a `CheckResult` (PASS/FAIL/WARN/SKIP, what was seen, a
one-line fix). Expected failures are results, never exceptions; `run_steps` turns anything
unexpected into a FAIL line too, so neither command can end in a traceback. Secret values
(database passwords, the KusciaAPI token, the domain key) are collected in a `Redactor` and
scrubbed from every line and JSON field before anything is printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TextIO

if TYPE_CHECKING:
    from kuscia_components.checks.cdr_table import RouteRow
    from kuscia_components.config import PartyConfig

Status = Literal["PASS", "FAIL", "WARN", "SKIP"]
STATUSES: tuple[Status, ...] = ("PASS", "FAIL", "WARN", "SKIP")
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
MASK = "****"


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
    return failed(
        name,
        f"the check itself broke: {type(err).__name__}: {first_line(err)}",
        "re-run with the same arguments; if it persists, report it with this line",
    )


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else type(err).__name__


class Redactor:
    """Secret values seen during a run; `scrub` replaces each with ****."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, *values: str | None) -> None:
        for value in values:
            if value and len(value) >= 4:  # shorter values would mask ordinary words
                self._secrets.add(value)

    def scrub(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text

    def scrub_tree(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {k: self.scrub_tree(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.scrub_tree(v) for v in value]
        return value

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} secrets)"


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


# -- the command line ----------------------------------------------------------------------------

Runner = Callable[["PartyConfig", argparse.Namespace, Redactor], Report]


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    from kuscia_components.cli.main import (
        _stack_arguments,  # --stack/--config/--project-dir, as every command has them
    )

    _stack_arguments(parser)
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout instead of lines")
    parser.add_argument("--watch", action="store_true", help="re-run until nothing FAILs or --timeout passes")
    parser.add_argument(
        "--timeout", type=float, default=300.0, metavar="SECONDS", help="--watch deadline (default 300)"
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="pause between --watch rounds (default 5)",
    )
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="per connection/request timeout of each check (default 5)",
    )


def run_command(
    argv: Sequence[str],
    *,
    parser: argparse.ArgumentParser,
    runner: Runner,
    out: TextIO | None = None,
    err: TextIO | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Parse, load the stack config (exit 2 with the problem list when bad), run the checks
    (again and again with --watch), print, and exit 0 only when nothing FAILed."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as stop:  # argparse already printed the usage line and the problem
        return int(stop.code or 0)
    for name in ("timeout", "interval", "request_timeout"):
        if getattr(args, name) <= 0 and not (name == "interval" and getattr(args, name) == 0):
            print(f"error: --{name.replace('_', '-')} must be a positive number of seconds", file=err)
            return EXIT_BAD_INPUT
    loaded = _load(args, out, err)
    if isinstance(loaded, int):
        return loaded
    stack, cfg, warnings = loaded
    for warning in warnings:
        print(f"warning: {warning}", file=err)
    redactor = Redactor()
    redactor.add(cfg.database.admin_password, cfg.domain_key_data)
    deadline = clock() + args.timeout
    while True:
        try:
            report = runner(cfg, args, redactor)
        except Exception as bug:  # in the orchestration: still a FAIL line, not a traceback
            report = Report(parser.prog.rsplit(" ", 1)[-1], stack, cfg.domain_id, [broken("run", bug)])
        report.stack = stack
        if report.ok or not args.watch or clock() >= deadline:
            break
        failing = ", ".join(c.name for c in report.checks if c.failed)
        left = max(0.0, deadline - clock())
        print(
            redactor.scrub(f"{report.command}: FAIL {failing}; checking again (gives up in {left:.0f} s)"),
            file=err,
        )
        sleep(min(args.interval, left))
    if args.json:
        print(json.dumps(redactor.scrub_tree(report.to_dict()), indent=2), file=out)
    else:
        print(redactor.scrub(render_report(report)), file=out)
    return EXIT_OK if report.ok else EXIT_FAILED


def _load(args: argparse.Namespace, out: TextIO, err: TextIO) -> tuple[str, PartyConfig, list[str]] | int:
    """(stack, config, warnings), or the exit code 2 after printing every problem."""
    from kuscia_components.cli.main import load_party
    from kuscia_components.config import ConfigError
    from kuscia_components.offline.stackfile import StackFileError

    try:
        stack, cfg, warnings = load_party(args)
    except ConfigError as bad:
        problems = [str(p) for p in bad.problems]
        header = f"{len(problems)} problem(s) in {bad.source}"
    except StackFileError as bad:
        problems, header = [str(bad)], "cannot read the stack file"
    else:
        return stack, cfg, warnings  # type: ignore[return-value]
    if args.json:
        print(json.dumps({"ok": False, "errors": problems}, indent=2), file=out)
    else:
        print(f"error: {header}:", file=err)
        for problem in problems:
            print(f"  - {problem}", file=err)
    return EXIT_BAD_INPUT


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

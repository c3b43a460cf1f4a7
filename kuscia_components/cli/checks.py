"""`preflight` and `verify`: parse, load the stack, run the library's checks, print the report.

The checks themselves are plain functions returning a `Report` (checks.preflight.run_preflight,
checks.verify.run_verify); here they are run once or again and again (--watch), and every line
and JSON field is scrubbed with the run's `Redactor` before it is printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from kuscia_components.cli.args import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    CommandText,
    add_stack_arguments,
    load_party,
    parse,
    party_redactor,
    stack_name_from_path,
)

if TYPE_CHECKING:
    from kuscia_components.checks.report import Report
    from kuscia_components.config import PartyConfig
    from kuscia_components.core.redact import Redactor

Runner = Callable[["PartyConfig", argparse.Namespace, "Redactor"], "Report"]
PASSWORD_ENV = "KUSCIA_DATABASE_ADMIN_PASSWORD"  # checks.preflight.PASSWORD_ENV, without importing it

PREFLIGHT = CommandText(
    "preflight",
    "check the cluster and database before the first `pulumi up`",
    "Before the first `pulumi up`: check the cluster access and, for an external database, the admin "
    f"credentials (the password from the stack, ${PASSWORD_ENV}, or `pulumi config get`). "
    "Exit 0 only when nothing FAILed.",
    ("preflight --stack alice", "preflight --stack alice --json"),
)
VERIFY = CommandText(
    "verify",
    "check a deployed node end to end (pod, KusciaAPI, gateway, DB, routes)",
    "Check a deployed node end to end: pod, KusciaAPI, gateway, database, routes. "
    "Exit 0 only when nothing FAILed.",
    (
        "verify --stack alice",
        "verify --stack alice --watch --timeout 600 --json",
        "verify --stack alice --db-address 127.0.0.1:3306",
    ),
)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    add_stack_arguments(parser)
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout instead of lines")
    parser.add_argument("--watch", action="store_true", help="re-run until nothing FAILs or --timeout passes")
    parser.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="--watch gives up after this long in all, each round's requests included (default 300)",
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


def add_preflight_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.set_defaults(run=lambda args: run_checks(args, runner=preflight_runner, command="preflight"))


def add_verify_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument(
        "--db-address",
        metavar="HOST:PORT",
        help="dial the node's database here instead of the DSN's host (e.g. a kubectl port-forward)",
    )
    parser.set_defaults(run=lambda args: run_checks(args, runner=verify_runner, command="verify"))


def register(subparsers: Any) -> None:
    add_preflight_arguments(PREFLIGHT.register(subparsers))
    add_verify_arguments(VERIFY.register(subparsers))


def preflight_parser() -> argparse.ArgumentParser:
    parser = PREFLIGHT.standalone()
    add_preflight_arguments(parser)
    return parser


def verify_parser() -> argparse.ArgumentParser:
    parser = VERIFY.standalone()
    add_verify_arguments(parser)
    return parser


def project_dir(args: argparse.Namespace) -> Path:
    """Where Pulumi.yaml lives: --project-dir, or the directory of the --config stack file."""
    path: Path = args.config.parent if args.config is not None else args.project_dir
    return path.absolute()


def with_project_kubeconfig(cfg: PartyConfig, args: argparse.Namespace) -> PartyConfig:
    """`kuscia:kubeconfig` made absolute relative to the project (kube.kubeconfig.project_path),
    as the program reads it, whatever the cwd: every command that reads the file calls this."""
    if not cfg.kubeconfig:
        return cfg
    from kuscia_components.kube.kubeconfig import project_path

    return dataclasses.replace(cfg, kubeconfig=project_path(cfg.kubeconfig, str(project_dir(args))))


def preflight_runner(cfg: PartyConfig, args: argparse.Namespace, redactor: Redactor) -> Report:
    from kuscia_components.checks.partner_stacks import pulumi_stack_lookup
    from kuscia_components.checks.preflight import admin_password_source, run_preflight

    project = project_dir(args)
    stack = args.stack or stack_name_from_path(args.config)
    source = admin_password_source(stack, project)
    stacks = pulumi_stack_lookup(project)
    return run_preflight(
        cfg, timeout=args.request_timeout, admin_password=source, redactor=redactor, partner_stacks=stacks
    )


def verify_runner(cfg: PartyConfig, args: argparse.Namespace, redactor: Redactor) -> Report:
    from kuscia_components.checks.verify import run_verify

    return run_verify(cfg, timeout=args.request_timeout, db_address=args.db_address, redactor=redactor)


def preflight_main(argv: Sequence[str]) -> int:
    return run_command(argv, parser=preflight_parser(), runner=preflight_runner)


def verify_main(argv: Sequence[str]) -> int:
    return run_command(argv, parser=verify_parser(), runner=verify_runner)


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
    """Parse `argv` with `parser`, then `run_checks`."""
    args = parse(parser, list(argv))
    if isinstance(args, int):
        return args
    command = parser.prog.rsplit(" ", 1)[-1]
    return run_checks(args, runner=runner, command=command, out=out, err=err, clock=clock, sleep=sleep)


def run_checks(
    args: argparse.Namespace,
    *,
    runner: Runner,
    command: str,
    out: TextIO | None = None,
    err: TextIO | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Load the stack config (exit 2 with the problem list when bad), run the checks (again and
    again with --watch), print, and exit 0 only when nothing FAILed."""
    from kuscia_components.checks.report import Report, broken, render_report

    out = out or sys.stdout
    err = err or sys.stderr
    for name in ("timeout", "interval", "request_timeout"):
        if getattr(args, name) <= 0 and not (name == "interval" and getattr(args, name) == 0):
            print(
                f"error: --{name.replace('_', '-')} must be a positive number of seconds (e.g. --{name.replace('_', '-')} 5)",
                file=err,
            )
            return EXIT_BAD_INPUT
    loaded = _load(args, out, err)
    if isinstance(loaded, int):
        return loaded
    stack, cfg, warnings = loaded
    cfg = with_project_kubeconfig(cfg, args)
    redactor = party_redactor(cfg)
    for warning in warnings:
        print(redactor.scrub(f"warning: {warning}"), file=err)
    deadline = clock() + args.timeout
    while True:
        try:
            report = runner(cfg, _within(args, deadline - clock()), redactor)
        except Exception as bug:  # in the orchestration: still a FAIL line, not a traceback
            report = Report(command, stack, cfg.domain_id, [broken("run", bug)])
        report.stack = stack
        left = deadline - clock()
        if report.ok or not args.watch or left <= args.interval:
            break  # the next round would start at or past the deadline: this report is the last
        failing = ", ".join(c.name for c in report.checks if c.failed)
        print(
            redactor.scrub(f"{report.command}: FAIL {failing}; checking again (gives up in {left:.0f} s)"),
            file=err,
        )
        sleep(args.interval)
        if clock() >= deadline:  # the pause overran it: no round starts past the deadline
            break
    if args.json:
        print(json.dumps(redactor.scrub_tree(report.to_dict()), indent=2), file=out)
    else:
        print(redactor.scrub(render_report(report)), file=out)
    return EXIT_OK if report.ok else EXIT_FAILED


def _within(args: argparse.Namespace, left: float) -> argparse.Namespace:
    """`args` for one --watch round: its request timeouts capped by the time left, so the
    watch as a whole ends by --timeout (without --watch, --timeout does not apply)."""
    if not args.watch or args.request_timeout <= left:
        return args
    capped = argparse.Namespace(**vars(args))
    capped.request_timeout = max(left, 0.1)
    return capped


def _load(args: argparse.Namespace, out: TextIO, err: TextIO) -> tuple[str, PartyConfig, list[str]] | int:
    """(stack, config, warnings), or the exit code 2 after printing every problem."""
    from kuscia_components.config import ConfigError
    from kuscia_components.offline.stackfile import StackFileError

    try:
        return load_party(args, err)
    except ConfigError as bad:
        problems = [str(p) for p in bad.problems]
        header = f"{len(problems)} problem(s) in {bad.source}"
    except StackFileError as bad:
        problems, header = [str(bad)], "cannot read the stack file"
    if args.json:
        print(json.dumps({"ok": False, "errors": problems}, indent=2), file=out)
    else:
        print(f"error: {header}:", file=err)
        for problem in problems:
            print(f"  - {problem}", file=err)
    return EXIT_BAD_INPUT

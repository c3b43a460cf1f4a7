"""`network plan|up|status|destroy --spec network.yaml`: a whole network through the Automation API.

Exit 0 when everything is as wanted, 1 when a party or link is not, 2 for bad input (spec,
options, missing Pulumi CLI or passphrase). Progress goes to stderr, the report to stdout; both
pass through the one redaction policy with the spec's secrets.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kuscia_components.cli.args import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, CommandText, parse

if TYPE_CHECKING:
    from kuscia_components.network.automation import WorkspaceSettings
    from kuscia_components.network.planner import StackRunner
    from kuscia_components.network.spec import NetworkSpec

RunnerFactory = Callable[["WorkspaceSettings"], "StackRunner"]
DEFAULT_READY_TIMEOUT = 600  # network.planner.DEFAULT_READY_TIMEOUT_SECONDS (a test keeps them equal)

NETWORK = CommandText(
    "network",
    "deploy / inspect / destroy a whole network (Automation API)",
    "Deploy, inspect or destroy a whole network of parties (Automation API).",
    (
        "network plan --spec network.yaml",
        "network up --spec network.yaml --parallel 4 --timeout 600",
        "network status --spec network.yaml --json",
        "network destroy --spec network.yaml",
    ),
)
ACTIONS = (
    CommandText(
        "network plan",
        "check the spec and show the parties and links (no Pulumi needed)",
        "Check the network spec and show each party's stack and partners; needs no Pulumi CLI.",
        ("network plan --spec network.yaml", "network plan --spec network.yaml --json"),
    ),
    CommandText(
        "network up",
        "deploy or converge every party, link them, wait until the links are Ready",
        "Roll out (or converge) the network: 1 nodes -> 2 links (both sides register) -> 3 ready (wait) "
        "-> 4 remove parties left out. Exit 0 only when every party and link is as wanted.",
        (
            "network up --spec network.yaml",
            "network up --spec network.yaml --parallel 4 --timeout 600 --pulumi-output",
        ),
    ),
    CommandText(
        "network status",
        "parties and links as of each stack's last up (changes nothing)",
        "Show every party and link as of each stack's last `up`; changes nothing.",
        ("network status --spec network.yaml", "network status --spec network.yaml --json"),
    ),
    CommandText(
        "network destroy",
        "destroy every stack of the network",
        "Destroy every stack of the network (also members no longer in the spec).",
        ("network destroy --spec network.yaml", "network destroy --spec network.yaml --quiet"),
    ),
)


def add_network_arguments(
    parser: argparse.ArgumentParser, runner_factory: RunnerFactory | None = None
) -> None:
    actions = parser.add_subparsers(dest="action", metavar="{plan,up,status,destroy}", required=True)
    for text in ACTIONS:
        action = text.register(actions)
        action.add_argument("--spec", type=Path, default=Path("network.yaml"), help="default: network.yaml")
        action.add_argument("--json", action="store_true", help="the report as JSON on stdout")
        _add_pulumi_arguments(action)  # on every action, as before: old command lines keep working
        action.set_defaults(run=lambda args: run_network(args, runner_factory=runner_factory))


def _add_pulumi_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend", help="Pulumi backend URL (default: the spec's, else file://<work dir>/state)"
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        help="project and stack settings (default: the spec's, else .kuscia-network next to the spec)",
    )
    parser.add_argument("--secrets-provider", help="passphrase (default), or awskms://... gcpkms://... etc.")
    parser.add_argument("--parallel", type=int, default=4, help="stacks at a time (default 4)")
    parser.add_argument(
        "--timeout",
        type=int,
        default=DEFAULT_READY_TIMEOUT,
        help="seconds to wait for links to be Ready (default 600)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--pulumi-output", action="store_true", help="stream Pulumi's own output to stderr")


def register(subparsers: Any) -> None:
    add_network_arguments(NETWORK.register(subparsers))


def network_parser(runner_factory: RunnerFactory | None = None) -> argparse.ArgumentParser:
    parser = NETWORK.standalone()
    add_network_arguments(parser, runner_factory)
    return parser


def network_main(argv: Sequence[str], *, runner_factory: RunnerFactory | None = None) -> int:
    """`kuscia-p2p network ...` with `argv` after `network`; `runner_factory` replaces the Pulumi CLI."""
    args = parse(network_parser(runner_factory), list(argv))
    return args if isinstance(args, int) else int(args.run(args))


def run_network(args: argparse.Namespace, *, runner_factory: RunnerFactory | None = None) -> int:
    from kuscia_components.core.redact import Redactor
    from kuscia_components.network.automation import (
        DEFAULT_WORK_DIR,
        PulumiCliMissing,
        StackOperationError,
        WorkspaceError,
        WorkspaceSettings,
    )
    from kuscia_components.network.rollout import Rollout, status_report, teardown
    from kuscia_components.network.spec import NetworkSpecError
    from kuscia_components.network.specfile import load_network_spec

    parallel, timeout = args.parallel, args.timeout
    if parallel < 1 or timeout < 1:
        print(
            "error: --parallel and --timeout must be at least 1 (e.g. --parallel 4 --timeout 600)",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    try:
        spec_file = load_network_spec(args.spec)
    except NetworkSpecError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    network = spec_file.network
    redactor = Redactor(network.secret_values())
    if args.action == "plan":
        if args.json:  # written as it is encoded: the text never exists whole (65,280 links at most)
            json.dump(plan_dict(network), sys.stdout, indent=2)
            print()
        else:
            print(format_plan(network))
        return EXIT_OK
    settings = WorkspaceSettings(
        work_dir=args.work_dir or spec_file.work_dir or args.spec.parent / DEFAULT_WORK_DIR,
        backend_url=args.backend or spec_file.backend,
        secrets_provider=args.secrets_provider or spec_file.secrets_provider,
    )
    try:
        runner = (runner_factory or pulumi_runner)(settings)
    except (WorkspaceError, PulumiCliMissing) as err:
        print(redactor.scrub(f"error: {err}"), file=sys.stderr)
        return EXIT_BAD_INPUT

    def progress(event: Any) -> None:
        if not args.quiet:
            print(redactor.scrub(str(event)), file=sys.stderr, flush=True)

    def pulumi_output(stack: str, line: str) -> None:
        if args.pulumi_output:
            print(redactor.scrub(f"[{stack}] {line.rstrip()}"), file=sys.stderr, flush=True)

    try:
        if args.action == "up":
            report = Rollout(
                network, runner, parallelism=parallel, on_progress=progress, on_output=pulumi_output
            ).deploy(ready_timeout_seconds=timeout)
            good = report.ok
        elif args.action == "status":
            report = status_report(network, runner)
            good = report.ok
        else:
            report = teardown(
                network, runner, parallelism=parallel, on_progress=progress, on_output=pulumi_output
            )
            good = all(p.status in ("removed", "absent") for p in report.parties.values())
    except (StackOperationError, OSError) as err:  # the backend itself (not one stack) failed
        print(redactor.scrub(f"error: {err}"), file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps(redactor.scrub_tree(report.to_dict()), indent=2))
    else:
        print(redactor.scrub(report.format_table()))
    return EXIT_OK if good else EXIT_FAILED


def pulumi_runner(settings: WorkspaceSettings) -> StackRunner:
    """PulumiStackRunner, reporting a missing CLI and bad settings together."""
    from kuscia_components.config import Problem
    from kuscia_components.network.automation import (
        PulumiCliMissing,
        PulumiStackRunner,
        WorkspaceError,
        locate_pulumi,
    )

    problems = settings.problems()
    command = None
    try:
        command = locate_pulumi(settings.pulumi_root)
    except PulumiCliMissing as err:
        problems.insert(
            0,
            Problem(
                "pulumi",
                f"{err.reason}: install it, then put ~/.pulumi/bin on PATH",
                "curl -fsSL https://get.pulumi.com | sh  (or https://www.pulumi.com/docs/install/)",
            ),
        )
    if problems or command is None:
        raise WorkspaceError(problems, "the Pulumi workspace")
    return PulumiStackRunner(settings, command=command)


def plan_dict(network: NetworkSpec) -> dict[str, Any]:
    """`network plan --json`: the parties, their stacks and partners, and every directed link."""
    return {
        "name": network.name,
        "topology": network.topology,
        "parties": [
            {
                "domainId": party.domain_id,
                "stack": party.stack_name,
                "partners": list(network.partners(party.domain_id)),
            }
            for party in network.parties
        ],
        "links": [{"source": source, "destination": dest} for source, dest in network.links()],
    }


def format_plan(network: NetworkSpec) -> str:
    lines = [
        f"network {network.name}: {len(network.parties)} parties, {network.link_count()} links "
        f"({'mesh' if network.topology == 'mesh' else 'explicit pairs'})",
        "",
    ]
    lines.append(f"{'PARTY':<16} {'STACK':<16} PARTNERS")
    for party in network.parties:
        partners = ", ".join(network.partners(party.domain_id)) or "-"
        lines.append(f"{party.domain_id:<16} {party.stack_name:<16} {partners}")
    lines += [
        "",
        "phases: 1 nodes -> 2 links (both sides register) -> 3 ready (wait) -> 4 remove parties left out",
    ]
    return "\n".join(lines)

"""Command line: `python -m kuscia_components render|check|preflight|verify|network ...`.

Exit codes: 0 success, 1 a check or operation failed, 2 bad input (config, arguments, files).
Bad input is reported as a list of problems, never as a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    commands: dict[str, Callable[[list[str]], int]] = {
        "render": _render_main,
        "check": _check_main,
        "preflight": _lazy("kuscia_components.checks.verify", "preflight_main"),
        "verify": _lazy("kuscia_components.checks.verify", "verify_main"),
        "network": _lazy("kuscia_components.network.automation", "network_main"),
    }
    if not args or args[0] in ("-h", "--help") or args[0] not in commands:
        print(__doc__.strip().splitlines()[0])
        print("\ncommands:")
        print("  render     write every object one party would deploy, without a cluster")
        print("  check      validate a stack's kuscia: config")
        print("  preflight  check the cluster and database before the first `pulumi up`")
        print("  verify     check a deployed node end to end (pod, KusciaAPI, gateway, DB, routes)")
        print("  network    deploy / inspect / destroy a whole network (Automation API)")
        if args and args[0] not in ("-h", "--help"):
            print(f"\nunknown command {args[0]!r}", file=sys.stderr)
            return EXIT_BAD_INPUT
        return EXIT_OK if args else EXIT_BAD_INPUT
    return commands[args[0]](args[1:])


def _lazy(module: str, function: str) -> Callable[[list[str]], int]:
    def run(argv: list[str]) -> int:
        import importlib

        entry: Callable[[list[str]], int] = getattr(importlib.import_module(module), function)
        return entry(argv)

    return run


def _stack_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--stack", "-s", help="stack name; reads Pulumi.<stack>.yaml in --project-dir")
    source.add_argument("--config", type=Path, help="path to any Pulumi stack file")
    parser.add_argument(
        "--project-dir", type=Path, default=Path.cwd(), help="where Pulumi.yaml lives (default: .)"
    )


def load_party(args: argparse.Namespace) -> tuple[str, object, list[str]]:
    """(stack name, PartyConfig, warnings) from --stack/--config; raises StackFileError/ConfigError."""
    from kuscia_components.config import config_warnings, parse_party_config
    from kuscia_components.offline.stackfile import find_stack_file, load_stack_file

    path = args.config if args.config is not None else find_stack_file(args.stack, args.project_dir)
    stack = args.stack or _stack_name_from_path(path)
    stack_file = load_stack_file(path)
    # Stack-file hints ("kuscia-p2p:domainId - did you mean kuscia:domainId?") matter most when
    # parsing fails, so they go out before the config is parsed.
    for warning in stack_file.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    cfg = parse_party_config(
        stack_file.values, stack_file.secret_keys, source=str(path), encrypted_keys=stack_file.encrypted_keys
    )
    return stack, cfg, config_warnings(cfg)


def _stack_name_from_path(path: Path) -> str:
    name = path.name
    if name.startswith("Pulumi.") and name.endswith((".yaml", ".yml")):
        return name[len("Pulumi.") :].rsplit(".", 1)[0]
    return path.stem


def _with_input_errors(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn bad-input exceptions into a problem list and exit code 2."""

    def wrapped(args: argparse.Namespace) -> int:
        from kuscia_components.config import ConfigError
        from kuscia_components.offline.stackfile import StackFileError

        try:
            return run(args)
        except ConfigError as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_BAD_INPUT
        except StackFileError as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_BAD_INPUT

    return wrapped


def _render_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kuscia_components render",
        description="Run one party's program without a cluster and write every object it would deploy.",
    )
    _stack_arguments(parser)
    parser.add_argument("--out", type=Path, required=True, help="directory for the rendered YAML files")
    parser.add_argument(
        "--show-secrets", action="store_true", help="write secret values in plain text (careful)"
    )

    @_with_input_errors
    def run(args: argparse.Namespace) -> int:
        from kuscia_components.offline.render import render

        stack, cfg, warnings = load_party(args)
        for warning in warnings:
            print(f"warning: {warning}", file=sys.stderr)
        result = render(cfg, args.out, stack=stack, show_secrets=args.show_secrets)  # type: ignore[arg-type]
        for warning in result.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        print(result.summary_table())
        print(f"\nWrote {len(result.objects)} files to {args.out}/ (all.yaml holds every object).")
        if result.secrets_shown:
            print(
                "warning: secret values are in plain text in these files; do not commit or share them.",
                file=sys.stderr,
            )
        else:
            print("Secret values are redacted; --show-secrets writes them.")
        return EXIT_OK

    return run(parser.parse_args(argv))


def _check_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kuscia_components check",
        description="Validate a stack's kuscia: config (no cluster needed).",
    )
    _stack_arguments(parser)

    @_with_input_errors
    def run(args: argparse.Namespace) -> int:
        stack, cfg, warnings = load_party(args)
        for warning in warnings:
            print(f"warning: {warning}")
        print(f"{stack}: config OK (domain {cfg.domain_id}, namespace {cfg.namespace})")  # type: ignore[attr-defined]
        return EXIT_OK

    return run(parser.parse_args(argv))

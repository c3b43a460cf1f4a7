"""The command line: `kuscia-p2p render|check|preflight|verify|network ...`.

`python -m kuscia_components ...` is the same command. Each family of commands is one module
(render.py, checks.py, network.py) that adds its subcommands; this module only dispatches.
Exit codes: 0 success, 1 a check or operation failed, 2 bad input (config, arguments, files).
Bad input is reported as a list of problems, never as a traceback.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Sequence

from kuscia_components.cli import checks, network, render, token
from kuscia_components.cli.args import EXIT_BAD_INPUT, PROG, SAME_AS, parse

EXAMPLES = (
    "render --stack alice --out rendered/alice",
    "check --stack alice",
    "preflight --stack alice",
    "verify --stack alice --json",
    "token --stack alice",
    "network up --spec network.yaml",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=textwrap.fill(
            "Deploy Kuscia (SecretFlow) autonomy nodes on Kubernetes with Pulumi, peer them, and check "
            "them. `<command> --help` shows each command's options and examples.",
            100,
        ),
        epilog="examples:\n" + "\n".join(f"  {PROG} {e}" for e in EXAMPLES) + f"\n\n{SAME_AS}\n"
        "exit codes: 0 ok, 1 a check or operation failed, 2 bad input.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="<command>", title="commands")
    render.register(commands)
    checks.register(commands)
    network.register(commands)
    token.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parse(parser, list(sys.argv[1:] if argv is None else argv))
    if isinstance(args, int):
        return args
    if getattr(args, "run", None) is None:  # no command
        parser.print_help()
        return EXIT_BAD_INPUT
    return int(args.run(args))

"""What every command shares: exit codes, help text with examples, --stack/--config/--project-dir.

Exit codes: 0 success, 1 a check or operation failed, 2 bad input (config, arguments, files).
Bad input is reported as a list of problems, never as a traceback.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from kuscia_components.config import PartyConfig
    from kuscia_components.core.redact import Redactor

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
PROG = "kuscia-p2p"
SAME_AS = "`python -m kuscia_components ...` runs the same commands."


@dataclass(frozen=True)
class CommandText:
    """A command's help: one line for the command list, a description, and examples (the part
    after `kuscia-p2p`) shown under --help."""

    name: str
    help: str
    description: str
    examples: tuple[str, ...]

    def epilog(self) -> str:
        lines = ["examples:", *(f"  {PROG} {example}" for example in self.examples), "", SAME_AS]
        return "\n".join(lines)

    def options(self) -> dict[str, Any]:
        return {
            "description": textwrap.fill(self.description, 100),
            "epilog": self.epilog(),
            "formatter_class": argparse.RawDescriptionHelpFormatter,
        }

    def standalone(self) -> argparse.ArgumentParser:
        """This command's own parser (prog `kuscia-p2p <name>`), for `<command>_main(argv)`."""
        return argparse.ArgumentParser(prog=f"{PROG} {self.name}", **self.options())

    def register(self, subparsers: Any) -> argparse.ArgumentParser:
        """This command as a subcommand of `subparsers` (the name's last word)."""
        parser: argparse.ArgumentParser = subparsers.add_parser(
            self.name.rsplit(" ", 1)[-1], help=self.help, **self.options()
        )
        return parser


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace | int:
    """The parsed arguments, or the exit code argparse chose (0 for --help, 2 for bad usage)."""
    try:
        return parser.parse_args(argv)
    except SystemExit as stop:  # argparse already printed the help or the usage line and problem
        return stop.code if isinstance(stop.code, int) else EXIT_BAD_INPUT


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--stack", "-s", help="stack name; reads Pulumi.<stack>.yaml in --project-dir")
    source.add_argument("--config", type=Path, help="path to any Pulumi stack file")
    parser.add_argument(
        "--project-dir", type=Path, default=Path.cwd(), help="where Pulumi.yaml lives (default: .)"
    )


def load_party(args: argparse.Namespace, err: TextIO | None = None) -> tuple[str, PartyConfig, list[str]]:
    """(stack name, PartyConfig, warnings) from --stack/--config; raises StackFileError/ConfigError."""
    from kuscia_components.config import config_warnings, parse_party_config
    from kuscia_components.offline.stackfile import StackFileError, find_stack_file, load_stack_file

    path = args.config if args.config is not None else find_stack_file(args.stack, args.project_dir)
    stack = args.stack or stack_name_from_path(path)
    stack_file = load_stack_file(path)
    # Stack-file hints ("kuscia-p2p:domainId - did you mean kuscia:domainId?") matter most when
    # parsing fails, so they go out before the config is parsed.
    for warning in stack_file.warnings:
        print(f"warning: {warning}", file=err or sys.stderr)
    if not stack_file.values and stack_file.other_config:
        raise StackFileError(foreign_namespace_problem(path, stack_file.other_config))
    cfg = parse_party_config(
        stack_file.values, stack_file.secret_keys, source=str(path), encrypted_keys=stack_file.encrypted_keys
    )
    return stack, cfg, config_warnings(cfg)


def foreign_namespace_problem(path: Path, other_config: dict[str, Any]) -> str:
    """A stack file with no kuscia: key at all is another program's (examples/one-cluster)."""
    namespaces = sorted({key.partition(":")[0] for key in other_config} - {"kubernetes", "pulumi"})
    found = ", ".join(f"{ns}:" for ns in namespaces) or "only provider settings"
    return (
        f"{path} has no kuscia: settings (it uses {found}): this command reads one party's stack of "
        "this project (config keys like kuscia:domainId, see Pulumi.alice.yaml); a stack of another "
        "program, such as examples/one-cluster, is checked by `pulumi preview` in its own directory"
    )


def party_redactor(cfg: PartyConfig) -> Redactor:
    """A redactor that already knows the secrets in the stack config itself."""
    from kuscia_components.config import ENCRYPTED
    from kuscia_components.core.redact import Redactor

    password = cfg.database.admin_password
    return Redactor([password if password != ENCRYPTED else None, cfg.domain_key_data])


def stack_name_from_path(path: Path) -> str:
    name = path.name
    if name.startswith("Pulumi.") and name.endswith((".yaml", ".yml")):
        return name[len("Pulumi.") :].rsplit(".", 1)[0]
    return path.stem


def with_input_errors(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn bad-input exceptions into a problem line and exit code 2."""

    def wrapped(args: argparse.Namespace) -> int:
        from kuscia_components.config import ConfigError
        from kuscia_components.offline.stackfile import StackFileError

        try:
            return run(args)
        except (ConfigError, StackFileError) as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_BAD_INPUT

    return wrapped

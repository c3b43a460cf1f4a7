"""`render` (every object one party would deploy, no cluster) and `check` (the stack's config)."""

from __future__ import annotations

import argparse
import atexit
import gc
import sys
from pathlib import Path
from typing import Any

from kuscia_components.cli.args import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    CommandText,
    add_stack_arguments,
    load_party,
    party_redactor,
    with_input_errors,
)
from kuscia_components.cli.checks import with_project_kubeconfig

RENDER = CommandText(
    "render",
    "write every object one party would deploy, without a cluster",
    "Run one party's program without a cluster and write every object it would deploy.",
    ("render --stack alice --out rendered/alice", "render --config path/to/Pulumi.bob.yaml --out /tmp/bob"),
)
CHECK = CommandText(
    "check",
    "validate a stack's kuscia: config",
    "Validate a stack's kuscia: config (no cluster needed): every problem names the setting, the rule "
    "and a good example.",
    ("check --stack alice", "check --config path/to/Pulumi.bob.yaml"),
)


def add_render_arguments(parser: argparse.ArgumentParser) -> None:
    add_stack_arguments(parser)
    parser.add_argument("--out", type=Path, required=True, help="directory for the rendered YAML files")
    parser.add_argument(
        "--show-secrets", action="store_true", help="write secret values in plain text (careful)"
    )
    parser.set_defaults(run=run_render)


def add_check_arguments(parser: argparse.ArgumentParser) -> None:
    add_stack_arguments(parser)
    parser.set_defaults(run=run_check)


def register(subparsers: Any) -> None:
    add_render_arguments(RENDER.register(subparsers))
    add_check_arguments(CHECK.register(subparsers))


@with_input_errors
def run_render(args: argparse.Namespace) -> int:
    stack, cfg, warnings = load_party(args)
    cfg = with_project_kubeconfig(cfg, args)
    if not cfg.domain_key_data:  # the program will generate the key: start it while pulumi imports
        from kuscia_components.core import pki

        pki.prepare_domain_key()
    skip_final_collections()
    from kuscia_components.offline.outdir import OutputDirError
    from kuscia_components.offline.render import render

    redactor = party_redactor(cfg)
    for warning in warnings:
        print(redactor.scrub(f"warning: {warning}"), file=sys.stderr)
    try:
        result = render(cfg, args.out, stack=stack, show_secrets=args.show_secrets)
    except OutputDirError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for warning in result.warnings:
        print(redactor.scrub(f"warning: {warning}"), file=sys.stderr)
    print(result.summary_table())
    print(f"\nWrote {len(result.files)} files to {args.out}/ (all.yaml holds every object).")
    if result.secrets_shown:
        print(
            "warning: secret values are in plain text in these files; do not commit or share them.",
            file=sys.stderr,
        )
    else:
        print("Secret values are redacted; --show-secrets writes them.")
    return EXIT_OK


def skip_final_collections() -> None:
    """At exit, leave the heap the program built (pulumi_kubernetes' thousands of classes, the mock
    runtime) to the OS. Interpreter shutdown otherwise runs full cyclic-GC passes over all of it
    (110-130 ms, a fifth of the whole render); reference counting still frees what it frees, only
    the scans are skipped. atexit runs before those passes; registered once per process."""
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)


@with_input_errors
def run_check(args: argparse.Namespace) -> int:
    stack, cfg, warnings = load_party(args)
    cfg = with_project_kubeconfig(cfg, args)
    if cfg.kubeconfig:  # the file render hands the provider: refused here as render refuses it
        from kuscia_components.config import limits

        limits.read_kubeconfig(cfg.kubeconfig)
    redactor = party_redactor(cfg)
    for warning in warnings:
        print(redactor.scrub(f"warning: {warning}"))
    print(f"{stack}: config OK (domain {cfg.domain_id}, namespace {cfg.namespace})")
    return EXIT_OK

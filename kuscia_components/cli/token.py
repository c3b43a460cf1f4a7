"""`token`: the node's KusciaAPI token, derived offline from the stack's domain key.

The token is no stack output (a partner's StackReference would copy it into the partner's
state), but it is a pure function of the domain key and the domain ID (NOTES §1.9), so this
command recomputes it. The key is encrypted in the stack's config (a supplied key) or state (a
generated one); only the Pulumi CLI decrypts either, so it is run for that. The token goes to
stdout alone; nothing read from the CLI is ever printed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from kuscia_components.cli.args import (
    EXIT_FAILED,
    EXIT_OK,
    CommandText,
    add_stack_arguments,
    load_party,
    with_input_errors,
)

TOKEN = CommandText(
    "token",
    "print the node's KusciaAPI token (derived from the stack's domain key)",
    "Print the node's KusciaAPI token, the one Kuscia derives from its domain key, to stdout. The key is "
    "decrypted by the Pulumi CLI: `pulumi config get kuscia:domainKeyData` for a supplied key, the stack's "
    "state (`pulumi stack export --show-secrets`) for a generated one.",
    ("token --stack alice", 'curl -H "Token: $(kuscia-p2p token --stack alice)" ...'),
)
IDENTITY_TYPE = "pulumi-python:dynamic/kuscia:DomainIdentity"
PULUMI_TIMEOUT_SECONDS = 120


class KeyUnavailable(Exception):
    """The domain key cannot be read; the message says what to run instead."""


def register(subparsers: Any) -> None:
    parser = TOKEN.register(subparsers)
    add_stack_arguments(parser)
    parser.set_defaults(run=run_token)


@with_input_errors
def run_token(args: argparse.Namespace) -> int:
    from kuscia_components.core.pki import KeyFormatError, kusciaapi_token

    stack, cfg, _warnings = load_party(args)
    try:
        encrypted = "domainKeyData" in cfg.encrypted_settings  # then domain_key_data is a stand-in
        if cfg.domain_key_data and not encrypted:
            key = cfg.domain_key_data
        else:
            key = read_domain_key(stack, args.project_dir, supplied=encrypted)
        token = kusciaapi_token(key, cfg.domain_id)
    except KeyUnavailable as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED
    except KeyFormatError:
        print(
            f"error: the domain key of stack {stack!r} does not load as an RSA key; "
            f"check `kuscia:domainKeyData` (`kuscia-p2p check --stack {stack}`)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    print(token)
    return EXIT_OK


def read_domain_key(stack: str, project_dir: Path, *, supplied: bool) -> str:
    """The stack's domain key through the Pulumi CLI: config for a supplied key, state otherwise."""
    command = ["config", "get", "kuscia:domainKeyData"] if supplied else ["stack", "export", "--show-secrets"]
    command += ["--stack", stack, "--cwd", str(project_dir)]
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise KeyUnavailable(
            "the Pulumi CLI (`pulumi`) is not on PATH, and only it decrypts the domain key. Install it "
            f"(https://www.pulumi.com/docs/install/), log in to the stack's backend, then run "
            f"`kuscia-p2p token --stack {stack}` again (it runs `pulumi {' '.join(command[:-2])}`)"
        )
    try:
        done = subprocess.run(
            [pulumi, *command], capture_output=True, text=True, timeout=PULUMI_TIMEOUT_SECONDS, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise KeyUnavailable(
            f"`pulumi {command[0]} {command[1]}` did not run: {type(err).__name__}"
        ) from None
    if done.returncode != 0:
        # The CLI's own complaint (no such stack, not logged in, no passphrase) holds no secret.
        reason = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise KeyUnavailable(f"`pulumi {' '.join(command)}` failed: {reason}")
    if supplied:
        return done.stdout.strip()
    return _key_from_state(done.stdout, stack)


def _key_from_state(exported: str, stack: str) -> str:
    """domain_key_data of the stack's one DomainIdentity in `pulumi stack export` output."""
    try:
        deployment = json.loads(exported)
        resources = deployment.get("deployment", {}).get("resources") or []
    except (ValueError, AttributeError):
        raise KeyUnavailable("`pulumi stack export` printed no deployment JSON") from None
    keys = [
        r.get("outputs", {}).get("domain_key_data")
        for r in resources
        if isinstance(r, dict) and r.get("type") == IDENTITY_TYPE
    ]
    found: list[str] = [k for k in keys if isinstance(k, str) and k]
    if len(found) != 1:
        raise KeyUnavailable(
            f"stack {stack!r} holds {len(found)} domain identities in its state (expected one): "
            f"run `pulumi up --stack {stack}` first"
        )
    return found[0]

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
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

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
MAX_EXPORT_BYTES = 16 * 1024 * 1024  # a node's state is ~100 KB (its manifests); JSON parsing ~10x
MAX_STDERR_BYTES = 256 * 1024
SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"  # Pulumi's special-value key (sdk resource/sig)
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"  # its value for a secret


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
    returncode, stdout, stderr = _run_bounded([pulumi, *command], f"pulumi {command[0]} {command[1]}")
    if returncode != 0:
        # The CLI's own complaint (no such stack, not logged in, no passphrase) holds no secret.
        reason = (stderr.strip().splitlines() or ["no message"])[-1][:300]
        raise KeyUnavailable(f"`pulumi {' '.join(command)}` failed: {reason}")
    if supplied:
        return stdout.strip()
    return _key_from_state(stdout, stack)


def _run_bounded(argv: list[str], what: str) -> tuple[int, str, str]:
    """Run the Pulumi CLI with a time bound and a size bound on what it prints: a state export is
    read into memory whole, so a runaway one is cut off (and the CLI stopped) at the bound."""
    try:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except OSError as error:
        raise KeyUnavailable(f"`{what}` did not run: {type(error).__name__}") from None
    assert process.stdout is not None and process.stderr is not None
    out = _Capped(process.stdout, MAX_EXPORT_BYTES, process)
    err = _Capped(process.stderr, MAX_STDERR_BYTES, process)
    deadline = time.monotonic() + PULUMI_TIMEOUT_SECONDS
    late = KeyUnavailable(
        f"`{what}` did not finish within {PULUMI_TIMEOUT_SECONDS} s; is the backend reachable?"
    )
    try:
        returncode = process.wait(timeout=PULUMI_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise late from None
    # A plugin the CLI started may still hold the pipes open: wait for their end within the bound.
    if not (out.join(deadline) and err.join(deadline)):
        raise late
    for capped, name in ((out, "its output"), (err, "its error output")):
        if capped.over:
            raise KeyUnavailable(
                f"`{what}` printed more than {capped.limit} bytes on {name}, more than any stack of this "
                "project holds, so it was stopped and nothing was read"
            )
    return returncode, out.text(), err.text()


class _Capped:
    """Reads one pipe on a thread, keeping at most `limit` bytes; past that, stops the process."""

    def __init__(self, pipe: IO[bytes], limit: int, process: subprocess.Popen[bytes]) -> None:
        self.limit, self.over = limit, False
        self._chunks: list[bytes] = []
        self._thread = threading.Thread(target=self._read, args=(pipe, process), daemon=True)
        self._thread.start()

    def _read(self, pipe: IO[bytes], process: subprocess.Popen[bytes]) -> None:
        size = 0
        with pipe:
            while chunk := os.read(pipe.fileno(), 65536):
                size += len(chunk)
                if size > self.limit:
                    self.over, self._chunks = True, []
                    process.kill()
                    return
                self._chunks.append(chunk)

    def join(self, deadline: float) -> bool:
        """True once the pipe was read to its end (or the bound), False if `deadline` came first."""
        self._thread.join(max(0.0, deadline - time.monotonic()))
        return not self._thread.is_alive()

    def text(self) -> str:
        return b"".join(self._chunks).decode("utf-8", "replace")


def _key_from_state(exported: str, stack: str) -> str:
    """domain_key_data of the stack's one DomainIdentity in `pulumi stack export` output, every
    level shape-checked: anything else is "not a state this command can read", never a crash."""
    try:
        document = json.loads(exported)
    except (ValueError, RecursionError):
        raise KeyUnavailable("`pulumi stack export` printed no deployment JSON") from None
    deployment = document.get("deployment") if isinstance(document, dict) else None
    resources = deployment.get("resources") if isinstance(deployment, dict) else None
    if not isinstance(deployment, dict) or not isinstance(resources, (list, type(None))):
        raise KeyUnavailable(
            "`pulumi stack export` printed JSON without a deployment's resource list "
            '({"deployment": {"resources": [...]}}); is the Pulumi CLI a current one?'
        )
    identities = [r for r in resources or [] if isinstance(r, dict) and r.get("type") == IDENTITY_TYPE]
    found = [key for key in map(_domain_key_of, identities) if key]
    if len(identities) != 1 or len(found) != 1:
        raise KeyUnavailable(
            f"stack {stack!r} holds {len(identities)} domain identities in its state, {len(found)} with a "
            f"domain key (expected one): run `pulumi up --stack {stack}` first"
        )
    return found[0]


def _domain_key_of(resource: dict[str, Any]) -> str | None:
    """The resource's `domain_key_data` output: a secret output, which `--show-secrets` prints as
    Pulumi's secret object with the value JSON-encoded under `plaintext` (pulumi
    pkg/resource/stack/deployment.go SerializePropertyValue, sdk/go/common/apitype SecretV1)."""
    outputs = resource.get("outputs")
    value = outputs.get("domain_key_data") if isinstance(outputs, dict) else None
    if isinstance(value, dict) and value.get(SECRET_SIG_KEY) == SECRET_SIG:
        plaintext = value.get("plaintext")
        try:
            value = json.loads(plaintext) if isinstance(plaintext, str) else None
        except (ValueError, RecursionError):
            value = None
    return value if isinstance(value, str) and value else None

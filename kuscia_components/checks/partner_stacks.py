"""Partner stacks (`kuscia:peers` entries with `stack:`): do they exist in the backend?

A StackReference to a stack that does not exist fails the preview and the `up` with
`unknown stack "bob"` (pulumi pkg/backend/backend.go GetStackOutputs; the diy backend returns no
stack for a missing one), while a stack that exists without outputs yields `{}` and the link then
ends WaitingForPartner. Only the backend knows which stacks exist, and only the Pulumi CLI speaks
to it (with the user's login), so preflight asks `pulumi stack output --stack X --json`: it
resolves the name exactly as the engine resolves a StackReference (`backend.ParseStackReference`,
then `GetStack`; pkg/cmd/pulumi/stack/io.go RequireStack), fails a missing one with
`no stack named 'X' found` (pkg/backend/backenderr/backenderr.go), and without `--show-secrets`
prints secret outputs as `[secret]`. Only the output names are kept. Without the CLI or a login,
the question cannot be asked: SKIP, never a guess; `render` and `check` (offline) only warn.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from kuscia_components.checks.report import CheckResult, failed, passed, skipped
from kuscia_components.config import PartyConfig

BUNDLE_OUTPUT = "peeringBundle"
MISSING_STACK = "no stack named"  # the CLI's words for StackNotFoundError
CLI_TIMEOUT_SECONDS = 60.0  # one backend round trip; a login prompt never comes (--non-interactive)
MAX_ANSWER_BYTES = 8 * 1024 * 1024  # a stack's outputs; anything larger is not an answer we read
PARALLEL_QUESTIONS = 4


@dataclass(frozen=True)
class StackAnswer:
    """What the backend said of one stack: `exists` is None when it could not be asked (`why`)."""

    exists: bool | None
    outputs: frozenset[str] = frozenset()
    why: str = ""


StackLookup = Callable[[str], StackAnswer]


def partner_stack_checks(cfg: PartyConfig, lookup: StackLookup | None) -> list[CheckResult]:
    """One check per `{stack: X}` peer, in config order; the questions run a few at a time."""
    peers = [peer for peer in cfg.peers if peer.stack is not None]
    if not peers:
        return []
    if lookup is None:
        return [
            skipped(
                _name(peer.stack),
                f"no Pulumi CLI on PATH to ask the backend whether it exists (`pulumi up` fails with "
                f'unknown stack "{peer.stack}" if it does not)',
                f"install the Pulumi CLI and preflight again, or check that `pulumi stack ls` lists {peer.stack}",
            )
            for peer in peers
            if peer.stack is not None
        ]
    with ThreadPoolExecutor(max_workers=min(PARALLEL_QUESTIONS, len(peers))) as pool:
        answers = list(pool.map(lambda peer: lookup(str(peer.stack)), peers))
    return [
        _verdict(str(peer.stack), peer.domain_id, cfg.domain_id, answer)
        for peer, answer in zip(peers, answers, strict=True)
    ]


def _name(stack: str | None) -> str:
    return f"partner stack {stack}"


def _verdict(stack: str, partner: str, own: str, answer: StackAnswer) -> CheckResult:
    name = _name(stack)
    if answer.exists is None:
        return skipped(
            name,
            f"could not ask the backend whether it exists: {answer.why}",
            f"pulumi login (the backend of this project), then preflight again; or check `pulumi stack ls` lists {stack}",
        )
    if not answer.exists:
        return failed(
            name,
            f"partner {partner}'s stack {stack} does not exist in the backend: the first `pulumi up -s {own}` "
            f'would fail with unknown stack "{stack}"',
            f"pulumi stack init {stack} (in {partner}'s project and backend; Pulumi.{stack}.yaml there), "
            f"or fix `stack:` of peer {partner}",
        )
    if BUNDLE_OUTPUT not in answer.outputs:
        return passed(
            name,
            f"exists, not deployed yet (no {BUNDLE_OUTPUT} output): the link to {partner} ends WaitingForPartner "
            f"until `pulumi up -s {stack}`",
        )
    return passed(name, f"exists and publishes its {BUNDLE_OUTPUT}")


def pulumi_stack_lookup(project_dir: Path, env: Mapping[str, str] | None = None) -> StackLookup | None:
    """Ask the Pulumi CLI on PATH, in `project_dir` (where the StackReference resolves); None
    when there is no CLI."""
    environ = dict(os.environ if env is None else env)
    pulumi = shutil.which("pulumi", path=environ.get("PATH"))
    if pulumi is None:
        return None
    cli = pulumi

    def lookup(stack: str) -> StackAnswer:
        command = [cli, "stack", "output", "--json", "--stack", stack, "--non-interactive"]
        try:
            done = subprocess.run(
                [*command, "--cwd", str(project_dir)],
                capture_output=True,
                timeout=CLI_TIMEOUT_SECONDS,
                env=environ,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            return StackAnswer(
                None, why=f"`pulumi stack output` did not answer in {CLI_TIMEOUT_SECONDS:.0f} s"
            )
        except OSError as err:
            return StackAnswer(None, why=f"cannot run {cli}: {err.strerror or err}")
        return answer_of(done.returncode, done.stdout, done.stderr)

    return lookup


def answer_of(returncode: int, stdout: bytes, stderr: bytes) -> StackAnswer:
    """Read one `pulumi stack output --json` run: the outputs' names, a missing stack, or why not."""
    err = stderr[:MAX_ANSWER_BYTES].decode("utf-8", "replace")
    if returncode != 0:
        if MISSING_STACK in err:
            return StackAnswer(False)
        lines = [line.strip() for line in err.splitlines() if line.strip()]
        return StackAnswer(None, why=(lines[0][:200] if lines else f"exit code {returncode}"))
    if len(stdout) > MAX_ANSWER_BYTES:
        return StackAnswer(None, why=f"the outputs are larger than {MAX_ANSWER_BYTES} bytes")
    try:
        outputs = json.loads(stdout.decode("utf-8") or "{}")
    except ValueError:
        return StackAnswer(None, why="`pulumi stack output --json` printed no JSON")
    if not isinstance(outputs, dict):
        return StackAnswer(None, why="`pulumi stack output --json` printed no JSON object")
    return StackAnswer(True, frozenset(str(key) for key in outputs))

"""preflight names every `{stack: X}` partner whose stack does not exist in the backend.

A stand-in `pulumi` on PATH (NOT the Pulumi CLI) answers `pulumi stack output --json` the way the
real CLI does (pkg/cmd/pulumi/stack/stack_output.go: the outputs as one JSON object, secrets as
"[secret]"; a missing stack fails with `error: no stack named 'X' found`,
pkg/backend/backenderr/backenderr.go), so this tests how preflight asks and reads, not Pulumi.
The cluster side runs against the EMULATED API server.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from kuscia_components.checks.partner_stacks import StackAnswer, answer_of, partner_stack_checks
from kuscia_components.cli.main import main
from kuscia_components.config import parse_party_config
from tests.emulator import KusciaEmulator

BUNDLE = {
    "domainId": "bob",
    "cert": "Q0VSVA==",
    "endpoint": "https://bob.example.com:1080",
    "protocol": "TLS",
}
NOT_LOGGED_IN = "error: PULUMI_ACCESS_TOKEN must be set for login during non-interactive CLI sessions"


def fake_pulumi(tmp_path: Path, *, logged_in: bool = True) -> Path:
    """bob: deployed; carol: created, never deployed (no outputs); any other stack: missing."""
    answers = tmp_path / "answers"
    answers.mkdir()
    (answers / "bob").write_text(json.dumps({"peeringBundle": BUNDLE, "links": "[secret]"}))
    (answers / "carol").write_text("{}")
    log = tmp_path / "calls"
    login = "" if logged_in else f'echo "{NOT_LOGGED_IN}" >&2; exit 255\n'
    script = tmp_path / "bin" / "pulumi"
    script.parent.mkdir()
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {log}\n'
        f"{login}"
        'stack=""; prev=""\n'
        'for a in "$@"; do [ "$prev" = "--stack" ] && stack="$a"; prev="$a"; done\n'
        f'if [ -f "{answers}/$stack" ]; then cat "{answers}/$stack"; exit 0; fi\n'
        "echo \"error: no stack named '$stack' found\" >&2; exit 255\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script.parent


def stack_file(tmp_path: Path, emu: KusciaEmulator, peers: list[dict[str, str]]) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    config = {
        "kuscia:domainId": "alice",
        "kuscia:runtime": "runp",
        "kuscia:kubeconfig": emu.kubeconfig_path,
        "kuscia:kubeContext": emu.context,
        "kuscia:peers": peers,
    }
    path = root / "Pulumi.alice.yaml"
    path.write_text(yaml.safe_dump({"config": config}))
    return path


PEERS = [{"domainId": d, "stack": d} for d in ("bob", "carol", "dave")]


def preflight(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, dict[str, dict[str, Any]]]:
    code = main(["preflight", "--config", str(path), "--json"])
    checks = json.loads(capsys.readouterr().out)["checks"]
    return code, {c["name"]: c for c in checks if c["name"].startswith("partner stack ")}


def test_emulated_preflight_fails_a_missing_partner_stack_and_names_it(
    emu: KusciaEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", f"{fake_pulumi(tmp_path)}{os.pathsep}/usr/bin:/bin")
    path = stack_file(tmp_path, emu, PEERS)
    code, found = preflight(capsys, path)
    assert code == 1  # only the missing stack FAILs: the emulated cluster passes
    assert list(found) == ["partner stack bob", "partner stack carol", "partner stack dave"]
    assert (
        found["partner stack bob"]["status"] == "PASS"
        and "peeringBundle" in found["partner stack bob"]["detail"]
    )
    carol = found["partner stack carol"]
    assert (
        carol["status"] == "PASS"
        and "WaitingForPartner" in carol["detail"]
        and "pulumi up -s carol" in carol["detail"]
    )
    dave = found["partner stack dave"]
    assert dave["status"] == "FAIL"
    assert 'unknown stack "dave"' in dave["detail"] and "pulumi stack init dave" in dave["fix"]
    calls = (tmp_path / "calls").read_text().splitlines()
    assert sorted(calls) == sorted(
        f"stack output --json --stack {s} --non-interactive --cwd {path.parent}"
        for s in ("bob", "carol", "dave")
    )  # asked in the project, where the StackReference resolves; never --show-secrets

    (tmp_path / "answers" / "dave").write_text("{}")  # `pulumi stack init dave`
    code, found = preflight(capsys, path)
    assert code == 0 and found["partner stack dave"]["status"] == "PASS"


def test_emulated_preflight_without_the_cli_or_a_login_skips_and_says_why(
    emu: KusciaEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = stack_file(tmp_path, emu, PEERS[:1])
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    code, found = preflight(capsys, path)
    bob = found["partner stack bob"]
    assert code == 0 and bob["status"] == "SKIP"
    assert "no Pulumi CLI" in bob["detail"] and 'unknown stack "bob"' in bob["detail"]

    monkeypatch.setenv("PATH", f"{fake_pulumi(tmp_path, logged_in=False)}{os.pathsep}/usr/bin:/bin")
    code, found = preflight(capsys, path)
    bob = found["partner stack bob"]
    assert code == 0 and bob["status"] == "SKIP"
    assert NOT_LOGGED_IN in bob["detail"] and "pulumi login" in bob["fix"]


def test_inline_partners_ask_nothing() -> None:
    cfg = parse_party_config(
        {
            "domainId": "alice",
            "runtime": "runp",
            "peers": json.dumps([{"domainId": "bob", "stack": "bob"}]),
        }
    )
    asked: list[str] = []
    checks = partner_stack_checks(cfg, lambda stack: asked.append(stack) or StackAnswer(True))
    assert asked == ["bob"] and [c.status for c in checks] == ["PASS"]
    assert partner_stack_checks(parse_party_config({"domainId": "alice", "runtime": "runp"}), None) == []


@pytest.mark.parametrize(
    ("rc", "out", "err", "expected"),
    [
        (0, b'{"peeringBundle": {"domainId": "bob"}}', b"", StackAnswer(True, frozenset({"peeringBundle"}))),
        (0, b"", b"", StackAnswer(True)),  # an existing stack with no outputs
        (255, b"", b"error: no stack named 'x' found\n", StackAnswer(False)),
        (0, b"not json", b"", StackAnswer(None, why="`pulumi stack output --json` printed no JSON")),
        (0, b"[1]", b"", StackAnswer(None, why="`pulumi stack output --json` printed no JSON object")),
        (1, b"", b"\n  error: boom  \nmore\n", StackAnswer(None, why="error: boom")),
        (1, b"", b"", StackAnswer(None, why="exit code 1")),
    ],
)
def test_answers_are_read_like_the_cli_writes_them(
    rc: int, out: bytes, err: bytes, expected: StackAnswer
) -> None:
    assert answer_of(rc, out, err) == expected

"""`kuscia-p2p token`: the KusciaAPI token from the stack's domain key, through the Pulumi CLI."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from kuscia_components.cli.main import main
from kuscia_components.core import pki

ROOT = Path(__file__).resolve().parent.parent
KEY = pki.generate_domain_key()


def fake_pulumi(tmp_path: Path, stdout: str, rc: int = 0, stderr: str = "") -> Path:
    """A `pulumi` on PATH that prints `stdout` and records its arguments."""
    (tmp_path / "out.txt").write_text(stdout)
    (tmp_path / "err.txt").write_text(stderr)
    script = tmp_path / "bin" / "pulumi"
    script.parent.mkdir(exist_ok=True)
    script.write_text(
        f'#!/bin/sh\necho "$@" > {tmp_path}/args.txt\ncat {tmp_path}/out.txt\ncat {tmp_path}/err.txt >&2\nexit {rc}\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script.parent


def state_with(*keys: str) -> str:
    resources = [{"type": "pulumi:pulumi:Stack", "outputs": {}}]
    resources += [
        {"type": "pulumi-python:dynamic/kuscia:DomainIdentity", "outputs": {"domain_key_data": k}}
        for k in keys
    ]
    return json.dumps({"version": 3, "deployment": {"resources": resources}})


def test_a_generated_key_is_read_from_the_state_and_only_the_token_is_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(
        "PATH", f"{fake_pulumi(tmp_path, state_with(pki.domain_key_data(KEY)))}{os.pathsep}/bin"
    )
    assert main(["token", "--stack", "alice", "--project-dir", str(ROOT)]) == 0
    out, err = capsys.readouterr()
    assert out == pki.kusciaapi_token(KEY, "alice") + "\n"
    assert err == ""
    assert (tmp_path / "args.txt").read_text().split()[:3] == ["stack", "export", "--show-secrets"]


def test_a_supplied_key_is_read_from_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stack_file = tmp_path / "Pulumi.carol.yaml"
    stack_file.write_text(
        "config:\n  kuscia:domainId: carol\n  kuscia:runtime: runp\n"
        "  kuscia:domainKeyData:\n    secure: v1:AAAA:BBBB\n"
    )
    monkeypatch.setenv("PATH", f"{fake_pulumi(tmp_path, pki.domain_key_data(KEY) + chr(10))}{os.pathsep}/bin")
    assert main(["token", "--config", str(stack_file)]) == 0
    out, _err = capsys.readouterr()
    assert out == pki.kusciaapi_token(KEY, "carol") + "\n"
    assert (tmp_path / "args.txt").read_text().split()[:5] == [
        "config",
        "get",
        "kuscia:domainKeyData",
        "--stack",
        "carol",
    ]


def test_without_the_pulumi_cli_it_says_what_to_install_and_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["token", "--stack", "alice", "--project-dir", str(ROOT)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "Pulumi CLI" in err and "https://www.pulumi.com/docs/install/" in err
    assert "kuscia-p2p token --stack alice" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("stdout", "rc", "stderr", "expected"),
    [
        ("", 255, "error: no stack named 'alice' found", "no stack named"),
        (state_with(), 0, "", "run `pulumi up --stack alice` first"),
        ("not json", 0, "", "no deployment JSON"),
    ],
)
def test_a_failing_or_empty_state_is_a_reason_not_a_traceback(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    stdout: str,
    rc: int,
    stderr: str,
    expected: str,
) -> None:
    monkeypatch.setenv("PATH", f"{fake_pulumi(tmp_path, stdout, rc, stderr)}{os.pathsep}/bin")
    assert main(["token", "--stack", "alice", "--project-dir", str(ROOT)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and expected in err and "Traceback" not in err


# -- whatever `pulumi stack export` prints, the answer is a reason, never a traceback ----------------

IDENTITY = "pulumi-python:dynamic/kuscia:DomainIdentity"


def export_of(resources: object) -> str:
    return json.dumps({"version": 3, "deployment": {"resources": resources}})


def secret_of(value: object) -> dict[str, str]:
    """A secret output as `pulumi stack export --show-secrets` prints it: Pulumi's secret object
    with the value JSON-encoded under `plaintext` (pulumi pkg/resource/stack/deployment.go
    SerializePropertyValue; sdk/go/common/apitype/core.go SecretV1)."""
    return {
        "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
        "plaintext": json.dumps(value),
    }


def test_a_secret_output_is_read_as_the_pulumi_cli_prints_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """domain_key_data is a secret output (node/identity.py), so this is the real export's form."""
    stdout = export_of(
        [{"type": IDENTITY, "outputs": {"domain_key_data": secret_of(pki.domain_key_data(KEY))}}]
    )
    monkeypatch.setenv("PATH", f"{fake_pulumi(tmp_path, stdout)}{os.pathsep}/bin")
    assert main(["token", "--stack", "alice", "--project-dir", str(ROOT)]) == 0
    assert capsys.readouterr().out == pki.kusciaapi_token(KEY, "alice") + "\n"


MALFORMED = {
    "outputs a list": export_of([{"type": IDENTITY, "outputs": ["x"]}]),
    "outputs a string": export_of([{"type": IDENTITY, "outputs": "x"}]),
    "key a number": export_of([{"type": IDENTITY, "outputs": {"domain_key_data": 5}}]),
    "key a map": export_of([{"type": IDENTITY, "outputs": {"domain_key_data": {"a": 1}}}]),
    "secret not JSON": export_of(
        [{"type": IDENTITY, "outputs": {"domain_key_data": {**secret_of(0), "plaintext": "{"}}}]
    ),
    "secret a number": export_of([{"type": IDENTITY, "outputs": {"domain_key_data": secret_of(7)}}]),
    "two identities, one key": export_of(
        [{"type": IDENTITY, "outputs": {"domain_key_data": pki.domain_key_data(KEY)}}, {"type": IDENTITY}]
    ),
    "resources a map": export_of({"a": 1}),
    "resources a string": export_of("x"),
    "deployment a list": json.dumps({"deployment": []}),
    "document a list": "[1, 2]",
    "document null": "null",
    "deeply nested": "[" * 100_000 + "]" * 100_000,
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_export_is_a_reason_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    monkeypatch.setenv("PATH", f"{fake_pulumi(tmp_path, MALFORMED[case])}{os.pathsep}/bin")
    assert main(["token", "--stack", "alice", "--project-dir", str(ROOT)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: ") and "Traceback" not in err
    assert "pulumi" in err and len(err) < 500


def test_an_endless_export_is_stopped_at_the_size_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "bin" / "pulumi"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\nexec yes '{\"deployment\": 1}'\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}/bin")
    monkeypatch.setattr("kuscia_components.cli.token.MAX_EXPORT_BYTES", 1_000_000)
    assert main(["token", "--stack", "alice", "--project-dir", str(ROOT)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "printed more than 1000000 bytes" in err and "Traceback" not in err

"""`python -m kuscia_components network plan|up|status|destroy` and the missing-CLI error.

The missing Pulumi CLI is tested for real: this machine has none, so the SDK's own attempt to run
it fails and we check what the user is told. Commands that need stacks run against the IN-MEMORY
STAND-IN FOR THE PULUMI CLI (tests/inmemory_runner.py) injected as the runner (`emulated`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kuscia_components.cli.network import network_main
from kuscia_components.network.automation import (
    PartySpec,
    PulumiCliMissing,
    PulumiStackRunner,
    WorkspaceSettings,
    deploy_network,
    locate_pulumi,
)
from tests.inmemory_runner import InMemoryStackRunner

ROOT = Path(__file__).resolve().parent.parent
SPEC = """
name: cli-test
topology: mesh
defaults:
  capacity: {cpu: "1", memory: 1Gi, storage: 1Gi}
parties:
  - domainId: alice
  - domainId: bob
  - {domainId: carol, protocol: NOTLS}
"""


def pulumi_is_installed() -> bool:
    return shutil.which("pulumi") is not None or (Path.home() / ".pulumi" / "bin" / "pulumi").exists()


needs_no_pulumi = pytest.mark.skipif(
    pulumi_is_installed(), reason="this checks the message when no Pulumi CLI exists"
)


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "network.yaml"
    path.write_text(SPEC)
    return path


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kuscia_components", "network", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )


# -- the missing CLI, for real ----------------------------------------------------------------------


@needs_no_pulumi
def test_a_missing_pulumi_cli_says_how_to_install_it_for_real() -> None:
    with pytest.raises(PulumiCliMissing) as err:
        locate_pulumi()
    assert isinstance(err.value.underlying, FileNotFoundError)  # what the SDK's PulumiCommand really hit
    message = str(err.value)
    assert (
        "curl -fsSL https://get.pulumi.com | sh" in message
        and "https://www.pulumi.com/docs/install/" in message
    )
    with pytest.raises(PulumiCliMissing):
        PulumiStackRunner(WorkspaceSettings(passphrase="unused"))
    with pytest.raises(PulumiCliMissing):  # the public API says the same, before touching anything
        party = PartySpec("alice", capacity={"cpu": "1", "memory": "1Gi", "storage": "1Gi"})
        deploy_network([party], workspace=WorkspaceSettings(passphrase="unused"))


@needs_no_pulumi
def test_the_network_command_without_pulumi_lists_what_is_missing_for_real() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_CONFIG_PASSPHRASE")}
    done = cli("up", "--spec", "network.yaml", env=env)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert "The Pulumi CLI was not found" in done.stderr and "get.pulumi.com" in done.stderr
    assert "PULUMI_CONFIG_PASSPHRASE: must be set" in done.stderr  # every problem at once
    with_passphrase = cli("status", "--spec", "network.yaml", env={**env, "PULUMI_CONFIG_PASSPHRASE": "x"})
    assert with_passphrase.returncode == 2 and "PULUMI_CONFIG_PASSPHRASE" not in with_passphrase.stderr


# -- bad input ------------------------------------------------------------------------------------------


def test_a_bad_spec_is_a_problem_list_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "network.yaml"
    bad.write_text("parties:\n  - {domainId: Alice_1}\n  - {domainId: bob, protocl: TLS}\n")
    assert network_main(["up", "--spec", str(bad)], runner_factory=lambda s: InMemoryStackRunner()) == 2
    err = capsys.readouterr().err
    assert "parties[0] (Alice_1) kuscia:domainId" in err and "did you mean 'protocol'" in err
    assert "Example:" in err and "Traceback" not in err


def test_bad_options_exit_2(spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        network_main(
            ["up", "--spec", str(spec), "--parallel", "0"], runner_factory=lambda s: InMemoryStackRunner()
        )
        == 2
    )
    assert "--parallel" in capsys.readouterr().err


def test_plan_needs_no_pulumi_and_shows_every_partner(spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def no_runner(settings: WorkspaceSettings) -> InMemoryStackRunner:
        raise AssertionError("plan must not build a runner")

    assert network_main(["plan", "--spec", str(spec)], runner_factory=no_runner) == 0
    out = capsys.readouterr().out
    assert "network cli-test: 3 parties, 6 links (mesh)" in out
    assert any(line.split()[:4] == ["carol", "carol", "alice,", "bob"] for line in out.splitlines())


def test_the_real_entry_point_runs_plan() -> None:
    done = cli("plan", "--spec", "network.yaml")
    assert done.returncode == 0 and "network demo: 3 parties, 6 links" in done.stdout


# -- up / status / destroy through the in-memory stand-in ------------------------------------------------


def test_up_status_destroy_emulated(spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runner = InMemoryStackRunner()
    seen: list[WorkspaceSettings] = []

    def factory(settings: WorkspaceSettings) -> InMemoryStackRunner:
        seen.append(settings)
        return runner

    assert network_main(["up", "--spec", str(spec)], runner_factory=factory) == 0
    out, err = capsys.readouterr()
    assert "6/6 links Ready; OK" in out and "carol-alice" in out
    assert "[nodes] 3 stack(s)" in err and "[done] 6/6 links Ready" in err
    assert seen[0].work_dir == spec.parent / ".kuscia-network"  # next to the spec, wherever we run
    assert seen[0].backend == f"file://{(spec.parent / '.kuscia-network' / 'state').resolve()}"

    assert network_main(["status", "--spec", str(spec), "--json"], runner_factory=factory) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["ok"] and status["name"] == "cli-test" and len(status["links"]) == 6
    assert {link["status"] for link in status["links"]} == {"Ready"}
    assert status["parties"]["carol"]["bundle"]["protocol"] == "NOTLS"

    assert network_main(["destroy", "--spec", str(spec), "--quiet"], runner_factory=factory) == 0
    out, err = capsys.readouterr()
    assert err == "" and out.count("removed") == 3 and runner.configs == {}
    assert network_main(["status", "--spec", str(spec)], runner_factory=factory) == 1
    assert "absent" in capsys.readouterr().out


def test_up_exits_1_when_a_party_fails_and_streams_pulumi_output_emulated(
    spec: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runner = InMemoryStackRunner()
    runner.fail_up.add("bob")
    code = network_main(["up", "--spec", str(spec), "--pulumi-output"], runner_factory=lambda s: runner)
    out, err = capsys.readouterr()
    assert code == 1 and "NOT OK" in out
    assert "bob" in out and "failed" in out and "API server is unreachable" in out
    assert "[alice] Updating (alice):" in err


def test_options_override_the_spec_and_the_spec_dir_anchors_paths(tmp_path: Path) -> None:
    spec = tmp_path / "network.yaml"
    spec.write_text(
        SPEC + "backend: file://./shared-state\nworkDir: settings\nsecretsProvider: awskms://alias/k\n"
    )
    seen: list[WorkspaceSettings] = []

    def factory(settings: WorkspaceSettings) -> InMemoryStackRunner:
        seen.append(settings)
        return InMemoryStackRunner()

    network_main(["status", "--spec", str(spec)], runner_factory=factory)
    network_main(
        ["status", "--spec", str(spec), "--backend", "s3://bucket/kuscia", "--work-dir", "/srv/k"],
        runner_factory=factory,
    )
    from_spec, from_options = seen
    assert from_spec.backend == f"file://{(tmp_path / 'shared-state').resolve()}"
    assert from_spec.work_dir == tmp_path / "settings" and from_spec.provider == "awskms://alias/k"
    assert from_options.backend == "s3://bucket/kuscia" and from_options.work_dir == Path("/srv/k")


def test_the_cli_never_prints_a_secret_emulated(
    spec: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, rsa_key_pem: str
) -> None:
    monkeypatch.setenv("ALICE_KEY", rsa_key_pem)
    spec.write_text(
        SPEC.replace("  - domainId: alice", "  - {domainId: alice, domainKeyData: {fromEnv: ALICE_KEY}}")
    )
    runner = InMemoryStackRunner()
    for args in (["up", "--pulumi-output"], ["status", "--json"], ["status"]):
        network_main([*args, "--spec", str(spec)], runner_factory=lambda s: runner)
        out, err = capsys.readouterr()
        for line in rsa_key_pem.splitlines()[1:-1]:
            assert line not in out and line not in err
        assert "token-of-" not in out + err
    assert runner.configs["alice"]["kuscia:domainKeyData"].secret


def test_the_documented_example_runs_emulated(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/automation.md's example, with the in-memory stand-in in place of the Pulumi CLI."""
    import kuscia_components.network.automation as automation

    text = (ROOT / "docs" / "automation.md").read_text()
    example = text.split("```python\n", 1)[1].split("```", 1)[0]
    runner = InMemoryStackRunner()
    workspaces: list[WorkspaceSettings | None] = []

    def stand_in(workspace: WorkspaceSettings | None = None) -> InMemoryStackRunner:
        workspaces.append(workspace)
        return runner

    monkeypatch.setattr(automation, "PulumiStackRunner", stand_in)
    exec(compile(example, "docs/automation.md", "exec"), {})
    out = capsys.readouterr().out
    assert "all Ready" in out and "carol-alice: Ready" in out
    assert runner.configs == {}  # the example ends by destroying what it made
    assert workspaces and all(w is not None and str(w.work_dir) == "/tmp/kuscia-demo" for w in workspaces)


def test_a_backend_that_cannot_be_read_is_an_error_line_not_a_traceback(
    spec: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from kuscia_components.network.automation import StackOperationError

    class Unreachable(InMemoryStackRunner):
        def list_stacks(self) -> list[str]:
            raise StackOperationError("stack ls: error: read s3://bucket/.pulumi: AccessDenied")

    for action in ("up", "status", "destroy"):
        assert (
            network_main([action, "--spec", str(spec), "--quiet"], runner_factory=lambda s: Unreachable())
            == 1
        )
        err = capsys.readouterr().err
        assert (
            "error: stack ls: error: read s3://bucket/.pulumi: AccessDenied" in err and "Traceback" not in err
        )

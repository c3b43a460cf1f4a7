"""`preflight` and `verify` read a relative `kuscia:kubeconfig` from the project directory (where
Pulumi.yaml and the stack file live), as the program does (program.with_absolute_kubeconfig), not
from the directory the command happens to run in. Against the EMULATED API server."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from kuscia_components.cli.main import main
from kuscia_components.kube.kubeconfig import project_path
from tests.emulator import KusciaEmulator


def project(tmp_path: Path, emu: KusciaEmulator) -> Path:
    """A project whose stack names its kubeconfig relative to the project: `kube/config`."""
    root = tmp_path / "project"
    (root / "kube").mkdir(parents=True)
    shutil.copy(emu.kubeconfig_path, root / "kube" / "config")
    config = {
        "kuscia:domainId": "alice",
        "kuscia:runtime": "runp",
        "kuscia:kubeconfig": "kube/config",
        "kuscia:kubeContext": emu.context,
    }
    (root / "Pulumi.alice.yaml").write_text(yaml.safe_dump({"config": config}))
    return root


def kube_context(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict[str, str]:
    main([*argv, "--json"])
    checks = json.loads(capsys.readouterr().out)["checks"]
    found: dict[str, str] = next(c for c in checks if c["name"] == "kube context")
    return found


@pytest.mark.parametrize("command", ["preflight", "verify"])
@pytest.mark.parametrize("how", ["--project-dir", "--config"])
def test_emulated_relative_kubeconfig_is_read_from_the_project_not_the_cwd(
    command: str,
    how: str,
    emu: KusciaEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = project(tmp_path, emu)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # where kube/config does not exist
    monkeypatch.setenv("PATH", "")  # no Pulumi CLI: nothing but the stack file is read
    monkeypatch.delenv("KUBECONFIG", raising=False)
    if how == "--project-dir":
        argv = [command, "--stack", "alice", "--project-dir", str(root)]
    else:
        argv = [command, "--config", str(root / "Pulumi.alice.yaml")]
    found = kube_context(capsys, argv)
    assert found["status"] == "PASS", found
    assert emu.context in found["detail"]


def test_emulated_a_config_path_relative_to_the_cwd_is_taken_from_the_cwd(
    emu: KusciaEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--config project/Pulumi.alice.yaml` given relative: its directory is the project."""
    project(tmp_path, emu)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", "")
    found = kube_context(capsys, ["preflight", "--config", "project/Pulumi.alice.yaml"])
    assert found["status"] == "PASS", found


def test_project_path_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert project_path("kube/config", "/srv/p") == "/srv/p/kube/config"
    assert project_path("../shared/config", "/srv/p") == "/srv/shared/config"
    assert project_path("/etc/kube/config", "/srv/p") == "/etc/kube/config"
    assert project_path("~/.kube/config", "/srv/p") == str(tmp_path / "home" / ".kube" / "config")
    monkeypatch.chdir(tmp_path)
    assert project_path("config", "p") == str(tmp_path / "p" / "config")  # always absolute

"""`render` and `check` read `kuscia:kubeconfig` as the program does: a relative path from the
project directory (kube.kubeconfig.project_path), whatever the cwd, and the file checked by the one
function the program uses (config.limits.read_kubeconfig), so `check` refuses what `render` does.
(Review of #10, findings 5 and 9; preflight/verify: tests/test_checks_project_dir.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from kuscia_components.cli.main import main

KUBECONFIG = (
    "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
    "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:6443'}}]\n"
    "users: [{name: u, user: {token: not-a-real-token}}]\n"
    "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
)


def _project(root: Path, kubeconfig: str) -> Path:
    root.mkdir()
    (root / "Pulumi.yaml").write_text("name: kuscia-p2p\nruntime: python\n")
    (root / "Pulumi.alice.yaml").write_text(
        f"config:\n  kuscia:domainId: alice\n  kuscia:runtime: runp\n  kuscia:kubeconfig: {kubeconfig}\n"
    )
    return root


def test_a_relative_kubeconfig_is_read_from_the_project_dir_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _project(tmp_path / "project", "kube/config")
    (project / "kube").mkdir()
    (project / "kube" / "config").write_text(KUBECONFIG)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "kube").mkdir(parents=True)
    (elsewhere / "kube" / "config").write_bytes(b"\0binary")  # what the cwd rule would read
    monkeypatch.chdir(elsewhere)
    for argv in (
        ["check", "--stack", "alice", "--project-dir", str(project)],
        ["check", "--config", str(project / "Pulumi.alice.yaml")],
        ["render", "--stack", "alice", "--project-dir", str(project), "--out", str(tmp_path / "out")],
    ):
        code = main(argv)
        said = capsys.readouterr()
        assert code == 0, said.err[-2000:]
    assert "not-a-real-token" not in (tmp_path / "out" / "all.yaml").read_text()


def test_a_missing_relative_kubeconfig_is_named_by_its_project_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _project(tmp_path / "project", "kube.yaml")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "kube.yaml").write_text(KUBECONFIG)  # in the cwd only: not the project's file
    for command in ("check", "render"):
        extra = ["--out", str(tmp_path / "out")] if command == "render" else []
        code = main([command, "--stack", "alice", "--project-dir", str(project), *extra])
        err = capsys.readouterr().err
        assert code == 2, err[-2000:]
        assert f"(got {project / 'kube.yaml'})" in err and "read from the project directory" in err

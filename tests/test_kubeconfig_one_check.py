"""One check of a kubeconfig file for every reader (review of #10): `check`/`render` (config.limits
.read_kubeconfig) and preflight/verify/peering (kube.kubeconfig.load, which the API-server
transport calls) refuse a bad file for the same reason, in the same words, never quoting it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from kuscia_components.config import ConfigError, limits
from kuscia_components.kube.errors import KubeconfigNotFound
from kuscia_components.kube.kubeconfig import KubeconfigRef, load

SECRET = "sk-do-not-print-4711"
LAUGHS = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 10))


def _text(text: str) -> Callable[[Path], None]:
    return lambda path: path.write_text(text, encoding="utf-8")


BAD: dict[str, Callable[[Path], None]] = {
    "invalid YAML": _text(f"users:\n- name: u\n  user: {{token: {SECRET}\n"),
    "tab indentation": _text(f"users:\n\t- token: {SECRET}\n"),
    "alias bomb": _text("l0: &l0 [x]\n" + LAUGHS),
    "binary": lambda path: path.write_bytes(b"\0\x01" + SECRET.encode()),
    "latin-1": lambda path: path.write_bytes(f"token: {SECRET} \xe9\n".encode("latin-1")),
    "over 4 MiB": lambda path: path.write_bytes(b"#" * (4 * limits.MiB + 1)),
    "directory": lambda path: path.mkdir(),
    "named pipe": lambda path: os.mkfifo(path),
}


@pytest.mark.parametrize("bad", sorted(BAD))
def test_check_and_the_transport_refuse_a_bad_kubeconfig_alike(bad: str, tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    BAD[bad](path)
    with pytest.raises(ConfigError) as by_check:
        limits.read_kubeconfig(str(path))
    with pytest.raises(KubeconfigNotFound) as by_transport:
        load(KubeconfigRef(str(path)))
    [problem] = by_check.value.problems
    assert problem.setting == "kuscia:kubeconfig" and problem.rule.startswith(
        "must name a kubeconfig file: it "
    )
    detail = by_transport.value.detail
    assert detail.startswith(f"no usable kubeconfig at {path}: it ")
    assert problem.rule.split(": it ", 1)[1] == detail.split(": it ", 1)[1]  # the same reason
    assert SECRET not in str(by_check.value) + str(by_transport.value)


def test_a_missing_entry_of_a_kubeconfig_list_is_skipped_as_kubectl_does(tmp_path: Path) -> None:
    """The one check lets a missing file through to the merger, which skips it; a bad one is not."""
    good = tmp_path / "good"
    good.write_text("apiVersion: v1\nkind: Config\nclusters: []\n", encoding="utf-8")
    bad = tmp_path / "bad"
    BAD["invalid YAML"](bad)
    listed = os.pathsep.join([str(tmp_path / "absent"), str(bad), str(good)])
    with pytest.raises(KubeconfigNotFound) as refused:
        load(KubeconfigRef(listed))
    assert refused.value.detail.startswith(f"no usable kubeconfig at {bad}: it is not valid YAML")
    assert "at line 4, column 1" in refused.value.detail  # the file ends inside the flow mapping


NAMED: dict[str, Callable[[Path], str]] = {
    "/dev/zero as client-key": lambda _dir: "/dev/zero",
    "a named pipe as client-key": lambda d: (os.mkfifo(d / "pipe"), "pipe")[
        1
    ],  # relative: the kubeconfig's dir
    "a 2 MiB client-key": lambda d: ((d / "big.pem").write_bytes(b"#" * (2 * limits.MiB)), "big.pem")[1],
}


@pytest.mark.parametrize("named", sorted(NAMED))
def test_a_file_the_kubeconfig_names_is_bounded_too(named: str, tmp_path: Path) -> None:
    """The official client (and the provider) read certificate-authority, client-certificate,
    client-key and tokenFile whole: /dev/zero or a FIFO there would be read without end."""
    target = NAMED[named](tmp_path)
    path = tmp_path / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:6443'}}]\n"
        f"users: [{{name: u, user: {{client-certificate: absent.crt, client-key: '{target}'}}}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u}}]\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as by_check:
        limits.read_kubeconfig(str(path))
    with pytest.raises(KubeconfigNotFound) as by_transport:
        load(KubeconfigRef(str(path)))
    [problem] = by_check.value.problems
    assert "users[u].user.client-key" in problem.rule and target in problem.rule
    assert "users[u].user.client-key" in by_transport.value.detail


def test_a_missing_named_file_is_left_to_the_client_to_name(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text("users: [{name: u, user: {client-key: absent.key}}]\n", encoding="utf-8")
    assert "absent.key" in limits.read_kubeconfig(str(path))

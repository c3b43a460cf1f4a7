"""pods/exec (kube/podexec.py) against the EMULATED API server: stdout, stderr, the exit status on
channel 3 (pkg/kubelet/cri/streaming/remotecommand; tests/emulator/README.md), bounds, RBAC.
The official client's own `kubernetes.stream.stream` is run against the emulator too."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from kuscia_components.kube import errors
from kuscia_components.kube.kubeconfig import KubeconfigRef, import_kubernetes
from kuscia_components.kube.podexec import CommandNotRun, exec_in_pod, run_in_node_pod
from kuscia_components.kube.transport import ApiServerTransport
from tests.emulator import EmulatedNode, KusciaEmulator

CURL_401 = (
    b"*   Trying 10.96.0.12:1080...\n* Connected to kuscia-autonomy-bob.autonomy-bob.svc (10.96.0.12)\n"
    b"< HTTP/1.1 401 Unauthorized\n< kuscia-error-message: Domain bob.x<--10.42.0.10 return http code 401.\n"
)


@pytest.fixture
def emu() -> Iterator[KusciaEmulator]:
    with KusciaEmulator() as emulator:
        yield emulator


def run(emu: KusciaEmulator, node: EmulatedNode, argv: list[str], **kw: float) -> tuple[int, bytes, bytes]:
    ref = KubeconfigRef(emu.kubeconfig_path, emu.context)
    return run_in_node_pod(ref, node.namespace, {"app": node.service}, argv, **kw)  # type: ignore[arg-type]


def test_emulated_exec_returns_exit_code_stdout_and_stderr(emu: KusciaEmulator) -> None:
    alice = emu.add_node("alice")
    seen: list[list[str]] = []

    def curl(argv: list[str]) -> tuple[int, bytes, bytes]:
        seen.append(argv)
        return 0, b'{"domain":"bob"}', CURL_401

    alice.exec_handlers["curl"] = curl
    argv = ["curl", "-kvvv", "https://kuscia-autonomy-bob.autonomy-bob.svc:1080"]
    code, out, err = run(emu, alice, argv)
    assert (code, out, err) == (0, b'{"domain":"bob"}', CURL_401)
    assert seen == [argv]  # each argument arrived as its own `command` query value, in order
    upgrade = next(
        r for r in emu.requests if r.path.startswith(f"/api/v1/namespaces/{alice.namespace}/pods/")
    )
    assert f"/pods/{alice.instance}/exec?command=curl&command=-kvvv" in upgrade.path
    # The Kuscia container by name: with an injected sidecar the API server refuses an exec that
    # names none (400 "a container name must be specified", pkg/registry/core/pod/strategy.go).
    assert "&container=kuscia" in upgrade.path


def test_emulated_exec_non_zero_exit_code_is_read_from_the_status_channel(emu: KusciaEmulator) -> None:
    alice = emu.add_node("alice")
    alice.exec_handlers["curl"] = lambda argv: (28, b"", b"curl: (28) Connection timed out after 5001 ms\n")
    code, out, err = run(emu, alice, ["curl", "-m", "5", "https://bob:1080"])
    assert code == 28 and out == b"" and b"timed out" in err


def test_emulated_exec_of_a_command_missing_from_the_image_is_command_not_run(emu: KusciaEmulator) -> None:
    alice = emu.add_node("alice")
    with pytest.raises(CommandNotRun, match="executable file not found"):
        run(emu, alice, ["kuscia", "diagnose", "network", "alice", "bob"])


def test_emulated_exec_output_is_capped_and_said_so(emu: KusciaEmulator) -> None:
    alice = emu.add_node("alice")
    alice.exec_handlers["yes"] = lambda argv: (0, b"y\n" * 100_000, b"")
    with ApiServerTransport(KubeconfigRef(emu.kubeconfig_path, emu.context)) as api:
        result = exec_in_pod(api, alice.namespace, alice.instance, ["yes"], max_bytes=1000)
    assert len(result.stdout) == 1000 and result.truncated and result.exit_code == 0


def test_emulated_exec_that_outlasts_the_timeout_ends_as_stream_closed(emu: KusciaEmulator) -> None:
    alice = emu.add_node("alice")
    release = threading.Event()
    alice.exec_handlers["sleep"] = lambda argv: (release.wait(10), (0, b"", b""))[1]
    try:
        with pytest.raises(errors.StreamClosed, match="timed out"):
            run(emu, alice, ["sleep", "60"], timeout=0.5)
    finally:
        release.set()


def test_emulated_exec_forbidden_and_no_pod_are_typed(emu: KusciaEmulator) -> None:
    alice = emu.add_node("alice")
    emu.deny("create", "pods/exec")
    with pytest.raises(errors.StreamForbidden) as err:
        run(emu, alice, ["curl", "x"])
    assert 'cannot create resource "pods/exec"' in err.value.message
    gone = emu.add_node("bob", pod=False)
    with pytest.raises(errors.PodNotFound):
        run(emu, gone, ["curl", "x"])


def test_emulated_exec_with_the_official_clients_own_stream(emu: KusciaEmulator) -> None:
    """kubernetes.stream.stream offers v5 then v4 and reads the exit code from channel 3's Status."""
    alice = emu.add_node("alice")
    alice.exec_handlers["sh"] = lambda argv: (3, b"out\n", b"err\n")
    import_kubernetes()
    from kubernetes import client, config
    from kubernetes.stream import stream

    api = client.CoreV1Api(config.new_client_from_config(emu.kubeconfig_path, context=emu.context))
    session = stream(
        api.connect_get_namespaced_pod_exec,
        alice.instance,
        alice.namespace,
        command=["sh", "-c", "exit 3"],
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
        _preload_content=False,
    )
    session.run_forever(timeout=5)
    assert session.subprotocol == "v5.channel.k8s.io"
    assert session.read_stdout() == "out\n" and session.read_stderr() == "err\n"
    assert session.returncode == 3

"""An API server that drips a pod stream must not hold it past its timeout: the websocket
upgrade's header lines one every 0.2 s, a 100 kB frame (under the message cap) whose bytes come one every 0.2 s, or a
close frame dripped the same way. websocket-client's timeouts bound each read (websocket/_socket.py
`recv`), so only the stream's whole deadline (kube/deadline, shared with the API-server
transport) ends these. A real loopback socket server plays the API server: it answers the pod
lookup with a Running, Ready pod and then drips the upgrade; nothing here is emulated Kubernetes.
The upgrade's answer is RFC 6455 section 4.2.2 (tests/helpers.py `websocket_upgrade`). Each case
runs in a thread joined with a generous bound, so a hang fails the test (no timing asserts)."""

from __future__ import annotations

import json
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kuscia_components.kube.errors import ApiServerUnreachable, StreamClosed
from kuscia_components.kube.kubeconfig import KubeconfigRef
from kuscia_components.kube.podexec import run_in_node_pod
from kuscia_components.kube.portforward import PortForwardTransport
from tests.helpers import finishes, websocket_upgrade

POD_LIST = {
    "kind": "PodList",
    "items": [
        {
            "metadata": {"name": "kuscia-0", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
        }
    ],
}


_SERVERS: dict[str, Any] = {}  # kubeconfig path -> the server it names, for tests that inspect it


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    mode = ""
    stop = threading.Event()
    followed: list[bytes] = []


class _Api(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: Any = self.server
        sock = self.request
        sock.settimeout(1.0)
        try:
            request = sock.recv(65536)
            if b"/portforward" not in request and b"/exec" not in request:  # the pod lookup
                body = json.dumps(POD_LIST).encode()
                head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                sock.sendall(head.encode() + body)
                return
            if server.mode == "a redirect":
                location = f"http://127.0.0.1:{server.server_address[1]}/elsewhere"
                sock.sendall(f"HTTP/1.1 302 Found\r\nLocation: {location}\r\n\r\n".encode())
                return
            if b"/elsewhere" in request:
                server.followed.append(request)
                return
            if server.mode == "upgrade header lines":
                sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\n")
                drip = b"X-A: b\r\n"
            elif server.mode == "a 100 kB frame":
                sock.sendall(websocket_upgrade(request) + b"\x82\x7f" + (10**5).to_bytes(8, "big"))
                drip = b"\x00"
            else:  # a whole port-forward answer, then a close frame that never ends
                sock.sendall(
                    websocket_upgrade(request)
                    + _port_forward_answer()
                    + b"\x88\x7d"  # a close frame of 125 bytes, the most a control frame may hold
                )
                drip = b"\x00"
            while not server.stop.is_set():
                sock.sendall(drip)
                time.sleep(0.2)
        except OSError:
            pass  # the client gave up: what we want


def _frame(payload: bytes) -> bytes:
    """An unmasked binary frame (servers do not mask, RFC 6455 section 5.1)."""
    assert len(payload) < 126
    return bytes([0x82, len(payload)]) + payload


def _port_forward_answer() -> bytes:
    port = (8082).to_bytes(2, "little")  # each channel's first message names the port (wsstream)
    http = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"
    return _frame(b"\x00" + port) + _frame(b"\x01" + port) + _frame(b"\x00" + http)


@pytest.fixture
def api_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A kubeconfig whose API server drips pod streams as `request.param` says."""
    server = _Server(("127.0.0.1", 0), _Api)
    server.mode = request.param
    server.stop = threading.Event()
    server.followed = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    path = tmp_path / "kubeconfig"
    cluster = {"server": f"http://127.0.0.1:{server.server_address[1]}"}
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "drip",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "drip", "context": {"cluster": "c", "user": "u"}}],
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    _SERVERS[str(path)] = server
    yield str(path)
    del _SERVERS[str(path)]
    server.stop.set()
    server.shutdown()
    server.server_close()


def port_forward(kubeconfig: str) -> Any:
    transport = PortForwardTransport(KubeconfigRef(kubeconfig), "autonomy-alice", {"app": "kuscia"}, 8082)
    with transport:
        return transport.request("POST", "/api/v1/domain/query", body=b"{}", timeout=1.5)


def pod_exec(kubeconfig: str) -> Any:
    return run_in_node_pod(KubeconfigRef(kubeconfig), "autonomy-alice", {"app": "kuscia"}, ["true"], 1.5)


@pytest.mark.parametrize("api_server", ["upgrade header lines"], indirect=True)
@pytest.mark.parametrize("call", [port_forward, pod_exec])
def test_a_dripped_upgrade_is_cut_at_the_timeout(api_server: str, call: Callable[[str], Any]) -> None:
    error = finishes(lambda: call(api_server))
    assert isinstance(error, ApiServerUnreachable), repr(error)
    assert "timed out" in error.reason


@pytest.mark.parametrize("api_server", ["a 100 kB frame"], indirect=True)
@pytest.mark.parametrize("call", [port_forward, pod_exec])
def test_a_dripped_frame_is_cut_at_the_timeout(api_server: str, call: Callable[[str], Any]) -> None:
    error = finishes(lambda: call(api_server))
    assert isinstance(error, StreamClosed), repr(error)
    assert "timed out" in error.reason


@pytest.mark.parametrize("api_server", ["a dripped close frame"], indirect=True)
def test_a_dripped_close_frame_does_not_hold_the_answer(api_server: str) -> None:
    """The answer came whole; closing the stream afterwards is bounded by the same deadline."""
    answer = finishes(lambda: port_forward(api_server))
    assert not isinstance(answer, BaseException), repr(answer)
    assert answer.status == 200 and answer.body == b"{}"


@pytest.mark.parametrize("api_server", ["a redirect"], indirect=True)
@pytest.mark.parametrize("call", [port_forward, pod_exec])
def test_a_redirected_upgrade_is_refused_and_never_followed_with_the_token(
    api_server: str, call: Callable[[str], Any]
) -> None:
    """websocket-client follows 3 redirects by default (websocket/_core.py `redirect_limit`),
    re-sending the Authorization header; the bearer token must not go where a 302 points."""
    outcome = finishes(lambda: call(api_server))
    assert isinstance(outcome, ApiServerUnreachable), outcome
    assert "redirect, which is not followed" in str(outcome)
    server = _SERVERS[api_server]
    assert server.followed == []

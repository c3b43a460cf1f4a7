"""A hostile or broken API server on a pod stream: each stream is refused with a typed error that
names what was wrong, bounded in time and memory.

Port-forward's wire format is wsstream's channel protocol (apimachinery pkg/util/httpstream/
wsstream/conn.go; kubelet pkg/kubelet/cri/streaming/portforward/websocket.go): channel 0 data,
channel 1 error, the first message on each starting with the port as two little-endian bytes.
Exec's is remotecommand's (stdout 1, stderr 2, status 3). A real loopback socket server plays
the API server (pod lookup, then the upgrade, RFC 6455 via tests/helpers.py
`websocket_upgrade`) and sends what the case says; nothing here is emulated Kubernetes. A hang
fails through `finishes`; memory is measured with tracemalloc, no timing is asserted."""

from __future__ import annotations

import json
import socketserver
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kuscia_components.kube.errors import AnswerTooLarge, StreamClosed
from kuscia_components.kube.kubeconfig import KubeconfigRef
from kuscia_components.kube.podexec import run_in_node_pod
from kuscia_components.kube.portforward import PortForwardTransport
from kuscia_components.kube.streams import V4_CHANNEL, open_channels
from kuscia_components.kube.transport import ApiServerTransport
from tests.helpers import finishes, websocket_upgrade

POD = {
    "metadata": {"name": "kuscia-0", "creationTimestamp": "2026-01-01T00:00:00Z"},
    "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
}
PORT = (8082).to_bytes(2, "little")
HTTP_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"
SUCCESS = json.dumps({"kind": "Status", "status": "Success"}).encode()
FLOOD = 20 * 1024 * 1024  # bytes a flooding server sends on an error/status channel


def frame(payload: bytes, opcode: int = 0x2, fin: bool = True) -> bytes:
    """An unmasked frame (servers do not mask, RFC 6455 section 5.1), any payload length."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        return head + bytes([n]) + payload
    if n < 65536:
        return head + b"\x7e" + n.to_bytes(2, "big") + payload
    return head + b"\x7f" + n.to_bytes(8, "big") + payload


def _flood(channel: bytes, first: bytes, size: int) -> Iterator[bytes]:
    """`first`, then FLOOD bytes in messages of `size`, each under the channel's per-message cap."""
    message = frame(channel + b"x" * size)
    yield frame(channel + first)
    for _ in range(FLOOD // size):
        yield message


def _script(mode: str) -> tuple[str, Iterator[bytes]]:
    """(the subprotocol the server chooses, what it sends after the upgrade, then it closes)."""
    heads = [frame(b"\x00" + PORT), frame(b"\x01" + PORT)]
    if mode == "unknown channel":
        return V4_CHANNEL, iter([*heads, frame(b"\x05" + b"hello")])
    if mode == "wrong port prefix":
        return V4_CHANNEL, iter([frame(b"\x00" + (8083).to_bytes(2, "little")), frame(b"\x00" + HTTP_OK)])
    if mode == "unoffered subprotocol":
        return "v9.evil.example", iter([*heads, frame(b"\x00" + HTTP_OK)])
    if mode == "2^40-byte frame":
        return V4_CHANNEL, iter([*heads, b"\x82\x7f" + (2**40).to_bytes(8, "big") + b"\x00" * 65536])
    if mode == "fragmented message":  # every fragment under the cap, their sum far over it
        fragments = [frame(b"\x00" + b"y" * 60000, fin=False)]
        fragments += [frame(b"y" * 60000, opcode=0x0, fin=False) for _ in range(100)]
        return V4_CHANNEL, iter([*heads, *fragments, frame(b"", opcode=0x0)])
    if mode == "error channel flood":
        return V4_CHANNEL, iter([frame(b"\x00" + PORT), *_flood(b"\x01", PORT, 2000)])
    if mode == "status channel flood":
        return V4_CHANNEL, _flood(b"\x03", SUCCESS, 60000)
    if mode == "dripped frame":  # 60 bytes announced, one a 0.2 s
        return V4_CHANNEL, iter([*heads, b"\x82\x3c", *(b"\x00" for _ in range(60))])
    raise AssertionError(mode)


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    mode = ""


class _Api(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: Any = self.server
        sock = self.request
        sock.settimeout(5.0)
        try:
            request = sock.recv(65536)
            if b"/portforward" not in request and b"/exec" not in request:  # the pod lookup
                body = json.dumps({"kind": "PodList", "items": [POD]}).encode()
                head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                sock.sendall(head.encode() + body)
                return
            subprotocol, sends = _script(server.mode)
            sock.sendall(websocket_upgrade(request, subprotocol))
            for data in sends:
                sock.sendall(data)
                if server.mode == "dripped frame" and len(data) == 1:
                    time.sleep(0.2)
            sock.sendall(frame(b"\x03\xe8", opcode=0x8))  # close, 1000
            while sock.recv(65536):  # until the client closes: unread bytes would reset it
                pass
        except OSError:
            pass  # the client gave up: what a refusal does


@pytest.fixture
def api_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A kubeconfig whose API server answers pod streams as `request.param` says."""
    server = _Server(("127.0.0.1", 0), _Api)
    server.mode = request.param
    threading.Thread(target=server.serve_forever, daemon=True).start()
    path = tmp_path / "kubeconfig"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "hostile",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{server.server_address[1]}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "hostile", "context": {"cluster": "c", "user": "u"}}],
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    yield str(path)
    server.shutdown()
    server.server_close()


def port_forward(kubeconfig: str, max_bytes: int = 8 * 1024 * 1024) -> Any:
    transport = PortForwardTransport(KubeconfigRef(kubeconfig), "autonomy-alice", {"app": "kuscia"}, 8082)
    with transport:
        return transport.request("POST", "/api/v1/domain/query", body=b"{}", timeout=20, max_bytes=max_bytes)


def pod_exec(kubeconfig: str) -> Any:
    return run_in_node_pod(KubeconfigRef(kubeconfig), "autonomy-alice", {"app": "kuscia"}, ["true"], 20)


@pytest.mark.parametrize(
    ("api_server", "reason"),
    [
        ("unknown channel", "a message on unknown channel 5"),
        ("wrong port prefix", "does not start with the port asked for"),
    ],
    indirect=["api_server"],
)
def test_a_port_forward_off_the_channel_protocol_is_refused(api_server: str, reason: str) -> None:
    error = finishes(lambda: port_forward(api_server))
    assert isinstance(error, StreamClosed), repr(error)
    assert reason in error.reason


@pytest.mark.parametrize("api_server", ["unoffered subprotocol"], indirect=True)
@pytest.mark.parametrize("call", [port_forward, pod_exec])
def test_an_upgrade_to_a_subprotocol_not_offered_is_a_protocol_error(api_server: str, call: Any) -> None:
    """websocket-client refuses it too (websocket/_handshake.py `_validate`), but only as an
    "Invalid WebSocket Header" that read as "API server unreachable"."""
    error = finishes(lambda: call(api_server))
    assert isinstance(error, StreamClosed), repr(error)
    assert "'v9.evil.example', which was not offered" in error.reason


@pytest.mark.parametrize("api_server", ["2^40-byte frame", "fragmented message"], indirect=True)
@pytest.mark.parametrize("call", [port_forward, pod_exec])
def test_a_message_longer_than_the_answer_cap_is_refused_before_it_is_read(
    api_server: str, call: Any
) -> None:
    """websocket-client reads a frame's whole announced length (frame_buffer.recv_strict) and
    joins a fragmented message's frames (continuous_frame) with no bound of its own."""
    call_capped = (lambda: port_forward(api_server, max_bytes=1000)) if call is port_forward else None
    error = finishes(call_capped or (lambda: call(api_server)))
    assert isinstance(error, AnswerTooLarge), repr(error)


@pytest.mark.parametrize(
    ("api_server", "call"),
    [("error channel flood", port_forward), ("status channel flood", pod_exec)],
    indirect=["api_server"],
)
def test_a_flooded_error_or_status_channel_is_kept_bounded_in_total(api_server: str, call: Any) -> None:
    """20 MB on the port-forward error channel or the exec status channel, each message under
    the per-message caps: what is kept stays bounded in total, not per message."""
    tracemalloc.start()
    try:
        outcome = finishes(lambda: call(api_server))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024, f"{peak} bytes held at the peak"
    if call is port_forward:
        assert isinstance(outcome, StreamClosed) and "x" * 100 in outcome.reason, repr(outcome)
    else:  # the flood after the Status spoils it: the command counts as not run
        assert type(outcome).__name__ == "CommandNotRun", repr(outcome)


@pytest.mark.parametrize("api_server", ["dripped frame"], indirect=True)
def test_a_read_ends_at_its_own_deadline_however_slowly_a_frame_drips(api_server: str) -> None:
    """A read's deadline earlier than the stream's: the per-recv socket timeout alone let a
    60-byte frame dripped over 12 s hold a 0.5 s read until it was whole."""
    with ApiServerTransport(KubeconfigRef(api_server)) as api:
        path = "/api/v1/namespaces/autonomy-alice/pods/kuscia-0/portforward"
        sock = open_channels(api, path, [("ports", "8082")], [V4_CHANNEL], 30, 65536)
        try:
            assert sock.read(time.monotonic() + 5) == (0, PORT)  # the two port heads come whole
            assert sock.read(time.monotonic() + 5) == (1, PORT)
            outcome = finishes(lambda: sock.read(time.monotonic() + 0.5))
        finally:
            sock.close()
    assert isinstance(outcome, StreamClosed), repr(outcome)
    assert "timed out" in outcome.reason

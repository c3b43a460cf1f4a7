"""EMULATION ONLY: the API server's pod streams, pods/portforward and pods/exec, over websockets.

A small RFC 6455 server (handshake, masked client frames, unmasked server frames) speaking
the channel protocol of apimachinery's wsstream/conn.go: each binary message starts with its
channel byte. Port-forward follows pkg/kubelet/cri/streaming/portforward/websocket.go (data
channel 0, error channel 1, each opened with the port in two little-endian bytes); exec follows
pkg/kubelet/cri/streaming/remotecommand (stdout 1, stderr 2, a metav1.Status on channel 3).
README.md lists the rules and their sources.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import ssl
import struct
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from . import KusciaEmulator
    from .node import EmulatedNode

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
PORTFORWARD_PROTOCOLS = ("v4.channel.k8s.io", "v4.base64.channel.k8s.io", "")  # portforward/websocket.go
EXEC_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io")  # remotecommand
MAX_MESSAGE = 1024 * 1024
KUBELET_CHUNK = 32 * 1024  # the kubelet copies in 32 KiB buffers (io.Copy)
OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA

GO_BAD_REQUEST = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
    b"400 Bad Request"
)
ExecHandler = Callable[[list[str]], tuple[int, bytes, bytes]]


class Closed(Exception):
    """The client closed the websocket (or the emulator is stopping)."""


class NotHttp(Exception):
    """The first bytes are no HTTP request line (e.g. a TLS ClientHello to a plain port)."""


# -- RFC 6455 -------------------------------------------------------------------------------------


def choose_protocol(offered: str, supported: tuple[str, ...]) -> str | None:
    """The first offered subprotocol the server supports, in the client's order; "" when none is
    offered and "" is allowed (wsstream/conn.go `handshake`). None: refuse."""
    wanted = [p.strip() for p in offered.split(",") if p.strip()] or [""]
    return next((p for p in wanted if p in supported), None)


class WebSocket:
    """The server side of one upgraded connection; frames read from the handler's buffered reader."""

    def __init__(self, rfile: BinaryIO, wfile: Any) -> None:
        self.rfile, self.wfile = rfile, wfile
        self._write = threading.Lock()

    def _read(self, n: int) -> bytes:
        data = self.rfile.read(n)
        if len(data) < n:
            raise Closed
        return data

    def recv(self) -> tuple[int, bytes]:
        """(opcode, payload) of the next data message; control frames are answered here."""
        while True:
            b0, b1 = self._read(2)
            opcode, length = b0 & 0x0F, b1 & 0x7F
            if not b1 & 0x80:
                self.close(1002)  # RFC 6455 §5.1: a client frame must be masked
                raise Closed
            if length == 126:
                length = struct.unpack("!H", self._read(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", self._read(8))[0]
            if length > MAX_MESSAGE:
                self.close(1009)
                raise Closed
            mask = self._read(4)
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(self._read(length)))
            if opcode == OP_CLOSE:
                self.close(1000)
                raise Closed
            if opcode == OP_PING:
                self.send(OP_PONG, payload)
                continue
            if opcode in (OP_TEXT, OP_BINARY):
                return opcode, payload

    def send(self, opcode: int, payload: bytes) -> None:
        head = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            head += bytes([n])
        elif n < 1 << 16:
            head += bytes([126]) + struct.pack("!H", n)
        else:
            head += bytes([127]) + struct.pack("!Q", n)
        with self._write:
            try:
                self.wfile.write(head + payload)
            except OSError:
                raise Closed from None

    def send_channel(self, channel: int, data: bytes, binary: bool = True) -> None:
        if binary:
            self.send(OP_BINARY, bytes([channel]) + data)
        else:  # base64.channel.k8s.io: the channel as a digit, then base64
            self.send(OP_TEXT, str(channel).encode() + base64.b64encode(data))

    def close(self, code: int = 1000) -> None:
        with contextlib.suppress(Closed):
            self.send(OP_CLOSE, struct.pack("!H", code))


def accept(handler: Any, supported: tuple[str, ...]) -> tuple[WebSocket, str] | None:
    """Answer the upgrade: 101 with Sec-WebSocket-Accept and the chosen subprotocol, or 400
    when the request is no websocket upgrade, 403 when no subprotocol fits (x/net/websocket's
    server answers a failed handshake with 403 Forbidden)."""
    headers = handler.headers
    if (headers.get("Upgrade") or "").lower() != "websocket" or not headers.get("Sec-WebSocket-Key"):
        handler._send(400, {"Content-Type": "text/plain"}, b"Bad Request: not a websocket upgrade\n")
        return None
    protocol = choose_protocol(headers.get("Sec-WebSocket-Protocol") or "", supported)
    if protocol is None:
        handler._send(403, {"Content-Type": "text/plain"}, b"requested protocol(s) are not supported\n")
        return None
    digest = hashlib.sha1((headers["Sec-WebSocket-Key"] + GUID).encode()).digest()
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {base64.b64encode(digest).decode()}",
    ]
    if protocol:
        lines.append(f"Sec-WebSocket-Protocol: {protocol}")
    handler.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    handler.close_connection = True
    return WebSocket(handler.rfile, handler.wfile), protocol


# -- byte streams inside the pod ------------------------------------------------------------------


class ChannelStream:
    """Channel 0 of a port-forward websocket as the pod's TCP connection sees it."""

    def __init__(self, ws: WebSocket, binary: bool) -> None:
        self.ws, self.binary = ws, binary
        self.ended = False

    def recv(self) -> bytes:
        if self.ended:
            return b""
        while True:
            try:
                opcode, payload = self.ws.recv()
            except Closed:
                self.ended = True
                return b""
            if opcode == OP_TEXT and not self.binary:
                channel, payload = int(payload[:1] or b"9"), base64.b64decode(payload[1:])
            else:
                channel, payload = (payload[0], payload[1:]) if payload else (9, b"")
            if channel == 0 and payload:
                return payload

    def send(self, data: bytes) -> None:
        for i in range(0, len(data), KUBELET_CHUNK):
            self.ws.send_channel(0, data[i : i + KUBELET_CHUNK], self.binary)


class TlsServerStream:
    """TLS terminated inside the emulated pod, over another stream (memory BIOs)."""

    def __init__(self, inner: Any, context: ssl.SSLContext, *, ca_subject: bytes | None = None) -> None:
        self.inner = inner
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._in, self._out, server_side=True)
        self.failed = ""
        first = inner.recv()
        if first[:1] != b"\x16" and first[:8].split(b" ")[0].isalpha():
            # Go's net/http (server.go, tlsRecordHeaderLooksLikeHTTP): plain HTTP to a TLS port
            inner.send(b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
            raise Closed
        self._in.write(first)
        self._step(self._tls.do_handshake)
        if ca_subject is not None and not self._issued_by_name(ca_subject):
            # Go refuses a client certificate whose issuer bytes are not ca.crt's subject
            # (tls_server.py _issued_by_name); OpenSSL has finished the handshake: drop it.
            self.failed = "client certificate signed by unknown authority"
            raise Closed

    def _issued_by_name(self, ca_subject: bytes) -> bool:
        from cryptography import x509

        der = self._tls.getpeercert(binary_form=True)
        return der is not None and x509.load_der_x509_certificate(der).issuer.public_bytes() == ca_subject

    def _step(self, action: Callable[[], Any]) -> Any:
        while True:
            try:
                result = action()
            except ssl.SSLWantReadError:
                self._flush()
                data = self.inner.recv()
                if not data:
                    self._in.write_eof()
                self._in.write(data)
                continue
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""
            except ssl.SSLError as err:  # e.g. the client refused our certificate
                self._flush()
                self.failed = str(err)
                raise Closed from None
            self._flush()
            return result

    def _flush(self) -> None:
        pending = self._out.read()
        if pending:
            self.inner.send(pending)

    def recv(self) -> bytes:
        data: bytes = self._step(lambda: self._tls.read(64 * 1024))
        return data

    def send(self, data: bytes) -> None:
        self._step(lambda: self._tls.write(data))


def read_request(stream: Any) -> tuple[str, str, dict[str, str], bytes] | None:
    """One HTTP/1.1 request from the stream (Content-Length bodies), or None when it ends first."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        data = stream.recv()
        if not data or len(buffer) > 64 * 1024:
            return None
        buffer += data
        if not buffer[:1].isalpha():
            raise NotHttp
    head, _, body = buffer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _version = ([*lines[0].split(" "), "", ""])[:3]
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip()] = value.strip()
    length = int(next((v for k, v in headers.items() if k.lower() == "content-length"), "0") or 0)
    while len(body) < length:
        data = stream.recv()
        if not data:
            return None
        body += data
    return method, path, headers, body[:length]


def response_bytes(status: int, headers: dict[str, str], body: bytes) -> bytes:
    from http import HTTPStatus

    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    lines = [f"HTTP/1.1 {status} {phrase}"]
    lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("content-length", "connection")]
    lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1") + body


# -- pods ------------------------------------------------------------------------------------------


def node_pod(node: EmulatedNode) -> dict[str, Any]:
    """The node's pod as the API server serves it: the Deployment's template labels (the seed's
    `app` selector plus the program's common labels), Running, Ready unless the node is down."""
    ready = "False" if node.serving_phase() == "down" else "True"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": node.instance,
            "namespace": node.namespace,
            "uid": hashlib.sha256(node.instance.encode()).hexdigest()[:32],
            "creationTimestamp": "2026-11-25T08:00:00Z",
            "labels": {
                "app": node.service,
                "app.kubernetes.io/name": "kuscia",
                "app.kubernetes.io/instance": node.domain_id,
                "app.kubernetes.io/component": "autonomy",
                "app.kubernetes.io/managed-by": "pulumi",
                "kuscia.secretflow/domain-id": node.domain_id,
            },
        },
        "spec": {"containers": [{"name": "kuscia"}], "nodeName": "emulated-node"},
        "status": {
            "phase": "Running",
            "podIP": node.pod_ip,
            "conditions": [{"type": "Ready", "status": ready}],
        },
    }


def pods_of(emu: KusciaEmulator, namespace: str | None) -> list[dict[str, Any]]:
    """The emulated nodes' pods in `namespace` (all when None). A test that put its own Pod with
    the node's `app` label in that namespace models the pods itself: then none is added."""
    out = []
    with emu.lock:
        nodes = list(emu.nodes.values())
    for node in nodes:
        if namespace not in (None, node.namespace) or not node.has_pod:
            continue
        if not emu.store.has_pod(node.namespace, node.service):
            out.append(node_pod(node))
    return out


def pod_named(emu: KusciaEmulator, namespace: str, name: str) -> tuple[EmulatedNode | None, bool]:
    """(the node behind pod `name`, whether that pod is Ready); (None, False) when no such pod."""
    with emu.lock:
        nodes = [n for n in emu.nodes.values() if n.namespace == namespace]
    for node in nodes:
        stored = emu.store.pod(namespace, name)
        if stored is not None and (stored.get("metadata") or {}).get("labels", {}).get("app") == node.service:
            conditions = (stored.get("status") or {}).get("conditions") or []
            return node, any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
        if node.instance == name and node.has_pod and not emu.store.has_pod(namespace, node.service):
            return node, node.serving_phase() != "down"
    return None, False


# -- port-forward -----------------------------------------------------------------------------------


def serve_portforward(handler: Any, node: EmulatedNode, pod: str, ports: list[str]) -> None:
    """One port per stream pair; the pod's listener answers one HTTP/1.1 request per connection."""
    accepted = accept(handler, PORTFORWARD_PROTOCOLS)
    if accepted is None:
        return
    ws, protocol = accepted
    binary = protocol != "v4.base64.channel.k8s.io"
    port = ports[0]
    header = struct.pack("<H", int(port))
    try:
        ws.send_channel(0, header, binary)
        ws.send_channel(1, header, binary)
        stream = ChannelStream(ws, binary)
        refusal = _refusal(node, port, pod)
        if refusal:
            stream.recv()  # kubelet dials when the first bytes come
            ws.send_channel(1, refusal.encode(), binary)
            return
        inner: Any = node.wrap_kusciaapi_stream(stream, int(port))
        try:
            request = read_request(inner)
        except NotHttp:  # Go's net/http answers a request line it cannot read so, and closes
            inner.send(GO_BAD_REQUEST)
            return
        if request is None:
            return
        method, path, headers, body = request
        record(handler, node, method, path, headers, body, port)
        if int(port) == 1080:
            reply = node.gateway(method, path, headers, "127.0.0.1")
        else:
            if node.take_drop():
                return  # the connection drops before any answer
            status, delay = node.take_fault()
            if delay and handler.server.stopping.wait(delay):
                return
            injected = node.take_answer() if status is None else None
            if status is not None:
                reply = (status, {"Content-Type": "text/plain"}, f"emulated fault: HTTP {status}".encode())
            elif injected is not None:
                reply = (injected[0], {"Content-Type": "application/json"}, injected[1])
            else:
                reply = node.kusciaapi(method, path, headers, body)
        inner.send(response_bytes(*reply))
    except Closed:
        pass
    finally:
        ws.close()


def record(
    handler: Any, node: EmulatedNode, method: str, path: str, headers: dict[str, str], body: bytes, port: str
) -> None:
    """Into `emu.requests`, as the proxy records its requests, with `via="portforward"`."""
    from .apiserver import RecordedRequest

    emu = handler.server.emulator
    try:
        parsed: Any = json.loads(body) if body else None
    except ValueError:
        parsed = body.decode("utf-8", "replace")
    with emu.lock:
        emu.requests.append(
            RecordedRequest(node.domain_id, method, path, headers, parsed, port, "portforward")
        )


def _refusal(node: EmulatedNode, port: str, pod: str) -> str:
    """The kubelet's error text when nothing listens on the port inside the pod."""
    if port in ("8082", "1080") and node.serving_phase() in ("up", "endpoints_missing"):
        return ""
    return (
        f"error forwarding port {port} to pod {pod}, uid : failed to execute portforward in network "
        f"namespace: failed to connect to localhost:{port} inside namespace, IPv4: dial tcp4 "
        f"127.0.0.1:{port}: connect: connection refused"
    )


# -- exec -------------------------------------------------------------------------------------------


def serve_exec(handler: Any, node: EmulatedNode, argv: list[str]) -> None:
    """Run `argv` through `node.exec_handlers[argv[0]]`; exit status on channel 3 as metav1.Status."""
    accepted = accept(handler, EXEC_PROTOCOLS)
    if accepted is None:
        return
    ws, protocol = accepted
    binary = protocol != "v4.base64.channel.k8s.io"
    try:
        run = node.exec_handlers.get(argv[0]) if argv else None
        if run is None:
            status = {
                "metadata": {},
                "status": "Failure",
                "message": (
                    "OCI runtime exec failed: exec failed: unable to start container process: exec: "
                    f'"{argv[0] if argv else ""}": executable file not found in $PATH: unknown'
                ),
                "reason": "InternalError",
                "details": {"causes": [{"message": "executable file not found"}]},
            }
        else:
            code, out, err = run(list(argv))
            for channel, data in ((1, out), (2, err)):
                for i in range(0, len(data), KUBELET_CHUNK):
                    ws.send_channel(channel, data[i : i + KUBELET_CHUNK], binary)
            status = {"metadata": {}, "status": "Success"}
            if code:
                status = {
                    "metadata": {},
                    "status": "Failure",
                    "message": f"command terminated with non-zero exit code: error executing command "
                    f"[{' '.join(argv)}], exit code {code}",
                    "reason": "NonZeroExitCode",
                    "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
                }
        ws.send_channel(3, json.dumps(status).encode(), binary)
    except Closed:
        pass
    finally:
        ws.close()

"""EMULATION ONLY: a fake Kubernetes API server on loopback, with the service proxy.

Over real HTTP it serves what the project's code uses of a real API server:
- bearer-token authentication (401 Status otherwise) and `/version`;
- the service proxy `/api/v1/namespaces/{ns}/services/{scheme}:{name}:{port}/proxy/{path}` as
  kubectl builds it: method, headers (incl. `Token`) and body go to the emulated node; the
  path is percent-decoded as a real API server decodes it; see README.md for the answers to
  unknown services, ports, missing endpoints, restarts and schemes;
- GET/LIST of stored objects with label/field selectors, 404 Status when missing;
- SelfSubjectAccessReview (allowed unless `KusciaEmulator.deny` said otherwise).
Every request is recorded in `KusciaEmulator.requests`.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from . import streams
from .objects import SelectorError, Target, _field_values, matches, parse_path

if TYPE_CHECKING:
    from . import KusciaEmulator
    from .node import EmulatedNode

POD_STREAM = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<pod>[^/]+)/(?P<sub>portforward|exec)$")
PROXY = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/services/(?P<svc>[^/]+)/proxy(?P<rest>/.*)?$")
SSAR = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
KUSCIAAPI_PORT, GATEWAY_PORT = "8082", "1080"


@dataclass
class RecordedRequest:
    """One request the fake API server saw; `node` is the emulated node a proxy path names."""

    node: str | None
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    port: str | None = None  # the service port of a proxy request ("8082", "1080")
    via: str = "proxy"  # "portforward": what a port-forward delivered inside the pod (path: the pod's)


def split_service_ref(ref: str) -> tuple[str, str, str]:
    """`[scheme:]name[:port]` as the API server reads it (`%3A` decodes to `:` first)."""
    parts = urllib.parse.unquote(ref).split(":")
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    return "", parts[0], ""


def status_body(code: int, reason: str, message: str, **details: Any) -> bytes:
    """A Kubernetes `Status` object, as every API server error answers."""
    document: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        document["details"] = details
    return json.dumps(document).encode()


JSON = {"Content-Type": "application/json"}


class ApiServerHandler(BaseHTTPRequestHandler):
    server: ApiServer
    protocol_version = "HTTP/1.1"
    timeout = 30  # idle keep-alive connections end
    # Headers and body go out in two writes; with Nagle on, the body waits for the client's
    # delayed ACK (~40 ms per request on Linux loopback), which would dominate every test.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        try:
            self._dispatch(method)
        except Exception as err:  # an emulator bug answers 500 rather than dropping the connection
            self._send(500, JSON, status_body(500, "InternalError", f"emulator error: {err!r}"))

    def _dispatch(self, method: str) -> None:
        emu = self.server.emulator
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = dict(self.headers.items())
        raw_path, _, query = self.path.partition("?")
        match = PROXY.match(raw_path)
        node, port = None, None
        if match:
            _scheme, name, port = split_service_ref(match["svc"])
            node = emu.node_by_service(match["ns"], name)
        try:
            parsed: Any = json.loads(body) if body else None
        except ValueError:
            parsed = body.decode("utf-8", "replace")
        with emu.lock:
            emu.requests.append(
                RecordedRequest(node.domain_id if node else None, method, self.path, headers, parsed, port)
            )
        if self.headers.get("Authorization") != f"Bearer {emu.bearer_token}":
            self._send(401, JSON, status_body(401, "Unauthorized", "Unauthorized"))
        elif match:
            self._proxy(match, method, body, headers, node)
        elif (stream := POD_STREAM.match(raw_path)) and method in ("GET", "POST"):
            self._pod_stream(stream["ns"], stream["pod"], stream["sub"], urllib.parse.parse_qs(query))
        elif raw_path == "/version" and method == "GET":
            self._json(
                200,
                {"major": "1", "minor": "33", "gitVersion": "v1.33.0-emulated", "platform": "linux/amd64"},
            )
        elif raw_path == SSAR and method == "POST":
            self._access_review(parsed if isinstance(parsed, dict) else {})
        elif method == "GET":
            self._object(raw_path, urllib.parse.parse_qs(query))
        else:
            self._send(
                405,
                JSON,
                status_body(
                    405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
                ),
            )

    def _access_review(self, review: dict[str, Any]) -> None:
        attrs = (review.get("spec") or {}).get("resourceAttributes") or {}
        verb, resource, sub = attrs.get("verb"), attrs.get("resource"), attrs.get("subresource")
        denied = self.server.emulator.denied
        # deny("get", "services") also denies services/proxy, as an RBAC rule on a resource would not
        # but as tests want; deny("get", "services/proxy") denies only the subresource.
        refused = (verb, resource) in denied or (sub and (verb, f"{resource}/{sub}") in denied)
        status: dict[str, Any] = {"allowed": not refused}
        if refused:
            status["reason"] = "denied by the emulator (KusciaEmulator.deny)"
        self._json(
            201,
            {
                "kind": "SelfSubjectAccessReview",
                "apiVersion": "authorization.k8s.io/v1",
                **review,
                "status": status,
            },
        )

    def _proxy(
        self,
        match: re.Match[str],
        method: str,
        body: bytes,
        headers: dict[str, str],
        node: EmulatedNode | None,
    ) -> None:
        scheme, name, port = split_service_ref(match["svc"])
        # Go's net/url decodes the path (a `%2F` becomes `/`) before the API server splits it
        # (apiserver/pkg/endpoints/request/requestinfo.go): the pod gets the decoded path.
        rest = urllib.parse.unquote(match["rest"] or "/")
        # The order of ResourceLocation (pkg/registry/core/service/storage/storage.go): the
        # Service, its port, its Endpoints object, a ready address; then the pod is dialled.
        if node is None:
            self._send(
                404,
                JSON,
                status_body(404, "NotFound", f'services "{name}" not found', name=name, kind="services"),
            )
            return
        if port not in (KUSCIAAPI_PORT, GATEWAY_PORT):
            self._unavailable(f'no service port {port} found for service "{name}"')
            return
        phase = node.serving_phase()
        if phase == "endpoints_missing":
            self._send(
                404,
                JSON,
                status_body(404, "NotFound", f'endpoints "{name}" not found', name=name, kind="endpoints"),
            )
            return
        if phase == "down":
            self._unavailable(f'no endpoints available for service "{name}"')
            return
        if phase == "refusing":
            self._unavailable(
                f"error trying to reach service: dial tcp {node.pod_ip}:{port}: connect: connection refused"
            )
            return
        if scheme == "https" and not node.is_tls:
            self._send(
                503,
                JSON,
                status_body(
                    503,
                    "ServiceUnavailable",
                    "error trying to reach service: tls: first record does not look like a TLS handshake",
                ),
            )
            return
        if scheme != "https" and node.is_tls:  # the node's Go HTTPS server answers plain HTTP so
            self._send(
                400,
                {"Content-Type": "text/plain; charset=utf-8", "Connection": "close"},
                b"Client sent an HTTP request to an HTTPS server.\n",
            )
            return
        if port == GATEWAY_PORT:
            self._send(*node.gateway(method, rest, headers, self.client_address[0]))
            return
        if node.take_drop():  # the connection drops before any answer (a restart mid-call)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        status, delay = node.take_fault()
        instance = node.instance
        if delay and self.server.stopping.wait(delay):
            return  # the emulator is shutting down
        if node.instance != instance:  # the pod restarted while the request was in flight
            self._unavailable(
                f"error trying to reach service: read tcp 10.42.0.1:43210->{node.pod_ip}:{port}: "
                "read: connection reset by peer"
            )
            return
        if status is not None:
            self._send(status, {"Content-Type": "text/plain"}, f"emulated fault: HTTP {status}".encode())
            return
        injected = node.take_answer()
        if injected is not None:
            self._send(injected[0], JSON, injected[1])
            return
        self._send(*node.kusciaapi(method, rest, headers, body))

    def _pod_stream(self, namespace: str, pod: str, sub: str, query: dict[str, list[str]]) -> None:
        """pods/portforward and pods/exec (pkg/registry/core/pod/rest/subresources.go): RBAC on the
        subresource, the pod looked up (404), then the upgrade relayed to the emulated kubelet."""
        emu = self.server.emulator
        with emu.lock:
            refused = any((verb, f"pods/{sub}") in emu.denied for verb in ("create", "get"))
        if refused:
            message = (
                f'pods "{pod}" is forbidden: User "emulated-admin" cannot create resource "pods/{sub}" '
                f'in API group "" in the namespace "{namespace}"'
            )
            self._send(403, JSON, status_body(403, "Forbidden", message, name=pod, kind="pods"))
            return
        node, _ready = streams.pod_named(emu, namespace, pod)
        if node is None:
            self._send(
                404, JSON, status_body(404, "NotFound", f'pods "{pod}" not found', name=pod, kind="pods")
            )
            return
        if sub == "portforward":
            ports = [p for value in query.get("ports", []) for p in value.split(",") if p]
            if not ports:
                self._send(400, JSON, status_body(400, "BadRequest", 'query parameter "port" is required'))
                return
            streams.serve_portforward(self, node, pod, ports)
        else:
            streams.serve_exec(self, node, query.get("command", []))

    def _object(self, path: str, query: dict[str, list[str]]) -> None:
        store = self.server.emulator.store
        target = parse_path(path)
        if target is not None and (target.group, target.plural, target.subresource) == ("", "pods", None):
            self._pods(target, query)
            return
        if target is None or (not store.known(target) and target.name is None):
            self._send(
                404, JSON, status_body(404, "NotFound", "the server could not find the requested resource")
            )
            return
        if target.name is not None:
            found = store.get(target)
            if found is None:
                self._send(
                    404,
                    JSON,
                    status_body(
                        404,
                        "NotFound",
                        f'{target.resource} "{target.name}" not found',
                        name=target.name,
                        group=target.group,
                        kind=target.plural,
                    ),
                )
            else:
                self._json(200, found)
            return
        try:
            listed = store.list(
                target, query.get("labelSelector", [""])[0], query.get("fieldSelector", [""])[0]
            )
        except SelectorError as err:
            self._send(400, JSON, status_body(400, "BadRequest", str(err)))
            return
        self._json(200, listed)

    def _pods(self, target: Target, query: dict[str, list[str]]) -> None:
        """Stored Pods plus each emulated node's own pod (streams.pods_of)."""
        emu = self.server.emulator
        virtual = streams.pods_of(emu, target.namespace)
        if target.name is not None:
            found = emu.store.get(target) or next(
                (p for p in virtual if p["metadata"]["name"] == target.name), None
            )
            if found is None:
                message = f'pods "{target.name}" not found'
                self._send(404, JSON, status_body(404, "NotFound", message, name=target.name, kind="pods"))
            else:
                self._json(200, found)
            return
        labels, fields = query.get("labelSelector", [""])[0], query.get("fieldSelector", [""])[0]
        try:
            listed = emu.store.list(target, labels, fields)
            virtual = [
                p
                for p in virtual
                if matches(labels, p["metadata"]["labels"]) and matches(fields, _field_values(p))
            ]
        except SelectorError as err:
            self._send(400, JSON, status_body(400, "BadRequest", str(err)))
            return
        listed["kind"], listed["items"] = "PodList", listed["items"] + virtual
        self._json(200, listed)

    def _unavailable(self, message: str) -> None:
        self._send(503, JSON, status_body(503, "ServiceUnavailable", message))

    def _json(self, status: int, document: Any) -> None:
        self._send(status, JSON, json.dumps(document).encode())

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        try:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (e.g. its timeout tripped)


class ApiServer(ThreadingHTTPServer):
    """One thread per connection, each tracked so `close` ends them all (no leaked threads)."""

    daemon_threads = True
    # socketserver's default backlog is 5; Go's listener takes the kernel's somaxconn. Each
    # port-forward or exec is a new connection, so a burst of them overflowed 5 and the kernel
    # dropped SYNs, which cost the client a 1 s retransmit (seen as upgrade timeouts).
    request_queue_size = 128

    def __init__(self, emulator: KusciaEmulator) -> None:
        super().__init__(("127.0.0.1", 0), ApiServerHandler)
        self.emulator = emulator
        self.stopping = threading.Event()
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._guard = threading.Lock()
        self._serve_thread = threading.Thread(
            target=self.serve_forever, args=(0.05,), name="emulated-apiserver", daemon=True
        )
        self._serve_thread.start()

    def process_request(self, request: Any, client_address: Any) -> None:
        worker = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name="emulated-apiserver-conn",
            daemon=True,
        )
        with self._guard:
            self._connections[request] = worker
        worker.start()

    def _serve_connection(self, request: socket.socket, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except OSError:
            pass  # the peer reset the connection, or `close` shut the socket
        finally:
            self.shutdown_request(request)
            with self._guard:
                self._connections.pop(request, None)

    def close(self) -> None:
        self.stopping.set()
        self.shutdown()
        self._serve_thread.join(timeout=5)
        with self._guard:
            connections = dict(self._connections)
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for worker in connections.values():
            worker.join(timeout=5)
        self.server_close()

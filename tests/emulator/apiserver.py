"""EMULATION ONLY: a fake Kubernetes API server on loopback, with the service proxy.

It serves what our code uses of a real API server, over real HTTP:
- bearer-token authentication (401 Status otherwise), `/version`;
- the service proxy `/api/v1/namespaces/{ns}/services/{scheme}:{name}:{port}/proxy/{path}` as
  kubectl builds it; it refuses a percent-encoded slash in the proxy suffix (API servers have
  mishandled those, kubernetes#14193), answers 404 for an unknown Service, 503 "no endpoints
  available" while a node is down, and fails a scheme that does not match the node's protocol
  the way a real proxy does (HTTP to an HTTPS port: 400; HTTPS to a plain port: 503);
- GET/LIST of stored objects (Deployments, Pods, Secrets, Namespaces...) with labelSelector;
- SelfSubjectAccessReview (allowed unless denied with `deny`).
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import KusciaEmulator

PROXY = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/services/(?P<svc>[^/]+)/proxy(?P<rest>/.*)?$")


@dataclass
class RecordedRequest:
    node: str | None
    method: str
    path: str
    headers: dict[str, str]
    body: Any


def split_service_ref(ref: str) -> tuple[str, str, str]:
    """`[scheme:]name[:port]` as the API server reads it (a `%3A` is decoded like a `:`)."""
    parts = urllib.parse.unquote(ref).split(":")
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    return "", parts[0], ""


def status_body(code: int, reason: str, message: str) -> bytes:
    return json.dumps(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        }
    ).encode()


class ApiServerHandler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the body waits for the client's
    # delayed ACK (~40 ms per request on Linux loopback), which would dominate every test.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        emu = self.server.emulator
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items()}
        if self.headers.get("Authorization") != f"Bearer {emu.bearer_token}":
            self._send(
                401, {"Content-Type": "application/json"}, status_body(401, "Unauthorized", "Unauthorized")
            )
            return
        raw_path, _, query = self.path.partition("?")
        match = PROXY.match(raw_path)
        node_name = None
        try:
            parsed_body = json.loads(body) if body else None
        except ValueError:
            parsed_body = body.decode("utf-8", "replace")
        if match:
            node = emu.node_by_service(match["ns"], split_service_ref(match["svc"])[1])
            node_name = node.domain_id if node else None
        emu.requests.append(RecordedRequest(node_name, method, self.path, headers, parsed_body))
        if match:
            self._proxy(match, body, headers)
        elif raw_path == "/version":
            self._json(200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0-emulated"})
        elif raw_path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews" and method == "POST":
            attrs = (parsed_body or {}).get("spec", {}).get("resourceAttributes", {})
            allowed = (attrs.get("verb"), attrs.get("resource")) not in emu.denied
            self._json(201, {**(parsed_body or {}), "status": {"allowed": allowed}})
        elif method == "GET":
            self._object(raw_path, urllib.parse.parse_qs(query))
        else:
            self._send(
                405,
                {"Content-Type": "application/json"},
                status_body(405, "MethodNotAllowed", "method not allowed"),
            )

    def _proxy(self, match: re.Match[str], body: bytes, headers: dict[str, str]) -> None:
        emu = self.server.emulator
        rest = match["rest"] or "/"
        if "%2f" in rest.lower():
            self._send(400, {"Content-Type": "application/json"},
                       status_body(400, "BadRequest", "encoded slash (%2F) in the proxy path is not allowed"))  # fmt: skip
            return
        scheme, name, port = split_service_ref(match["svc"])
        node = emu.node_by_service(match["ns"], name)
        if node is None:
            self._send(404, {"Content-Type": "application/json"},
                       status_body(404, "NotFound", f'services "{name}" not found'))  # fmt: skip
            return
        if node.is_down:
            self._send(503, {"Content-Type": "application/json"},
                       status_body(503, "ServiceUnavailable", f'no endpoints available for service "{name}"'))  # fmt: skip
            return
        wants_tls = node.protocol != "NOTLS"
        if scheme == "https" and not wants_tls:
            self._send(503, {"Content-Type": "application/json"}, status_body(
                503, "ServiceUnavailable", "error trying to reach service: tls: first record does not look like a TLS handshake"))  # fmt: skip
            return
        if scheme in ("", "http") and wants_tls:
            self._send(
                400, {"Content-Type": "text/plain"}, b"Client sent an HTTP request to an HTTPS server.\n"
            )
            return
        fault, delay = node.take_fault()
        if delay:
            time.sleep(delay)
        if fault is not None:
            self._send(fault, {"Content-Type": "text/plain"}, f"emulated fault {fault}".encode())
            return
        if port == "8082":
            status, out_headers, out_body = node.kusciaapi(rest, headers, body)
        elif port == "1080":
            status, out_headers, out_body = node.gateway()
        else:
            self._send(503, {"Content-Type": "application/json"},
                       status_body(503, "ServiceUnavailable", f"no endpoints available for port {port}"))  # fmt: skip
            return
        self._send(status, out_headers, out_body)

    def _object(self, path: str, query: dict[str, list[str]]) -> None:
        emu = self.server.emulator
        found = emu.objects.get(path)
        if found is not None:
            self._json(200, found)
            return
        selector = dict(
            pair.split("=", 1) for pair in (query.get("labelSelector", [""])[0].split(",")) if "=" in pair
        )
        items = [
            obj for key, obj in emu.objects.items()
            if key.rsplit("/", 1)[0] == path
            and all(obj.get("metadata", {}).get("labels", {}).get(k) == v for k, v in selector.items())
        ]  # fmt: skip
        if items or path in emu.collections:
            self._json(200, {"kind": "List", "apiVersion": "v1", "metadata": {}, "items": items})
            return
        name = path.rsplit("/", 1)[-1]
        resource = path.rsplit("/", 2)[-2] if path.count("/") >= 2 else path
        self._send(404, {"Content-Type": "application/json"},
                   status_body(404, "NotFound", f'{resource} "{name}" not found'))  # fmt: skip

    def _json(self, status: int, document: Any) -> None:
        self._send(status, {"Content-Type": "application/json"}, json.dumps(document).encode())

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    emulator: KusciaEmulator


def start(emulator: KusciaEmulator) -> tuple[_Server, threading.Thread]:
    server = _Server(("127.0.0.1", 0), ApiServerHandler)
    server.emulator = emulator
    thread = threading.Thread(target=server.serve_forever, name="emulated-apiserver", daemon=True)
    thread.start()
    return server, thread

"""EMULATION ONLY: one emulated Kuscia autonomy node (identity, Domains, routes, gateway, faults)."""

from __future__ import annotations

import copy
import datetime as dt
import json
import secrets
import socket
import ssl
import threading
from collections import deque
from typing import TYPE_CHECKING, Any

from cryptography import x509

from . import kusciaapi
from .handshake import Route
from .identity import (
    b64,
    cert_public_key,
    fingerprint,
    kuscia_cert,
    kusciaapi_token,
    new_key,
    not_before,
    private_pem,
)
from .tls_server import (
    ServerTls,
    gateway_tls,
    serve_connection,
    server_context,
    server_tls,
    wrap_server_stream,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

    from . import KusciaEmulator
    from .streams import ExecHandler

KUSCIA_VERSION = "v1.1.0b0"
Reply = tuple[int, dict[str, str], bytes]


class DomainTable(dict[str, dict[str, Any]]):
    """The node's Domain objects by ID. A dict, so a test can `del node.domains["bob"]` the way
    `kubectl delete domain bob` would; calling it, `node.domains()`, returns a deep-copied snapshot."""

    def __init__(self, lock: threading.RLock) -> None:
        super().__init__()
        self._lock = lock

    def __call__(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(dict(self))


class EmulatedNode:
    """A Kuscia autonomy node as far as KusciaAPI (:8082), the gateway (:1080) and the handshake go."""

    def __init__(
        self,
        network: KusciaEmulator,
        domain_id: str,
        *,
        protocol: str,
        namespace: str,
        service: str,
        key: rsa.RSAPrivateKey | None = None,
    ) -> None:
        self.network = network
        self.lock: threading.RLock = network.lock
        self.domain_id, self.protocol, self.namespace, self.service = domain_id, protocol, namespace, service
        self.instance = f"{service}-{secrets.token_hex(5)}-{secrets.token_hex(3)}"  # a pod name
        self.domains = DomainTable(self.lock)
        self.route_table: dict[str, Route] = {}
        self.gateway_log: list[str] = []
        self.auth_completed: set[str] = set()  # partner Domains whose inbound route was auto-created
        self.down_until = 0.0
        self.refusing_until = 0.0  # Ready in the Endpoints but not listening yet
        self.endpoints_missing = False  # the Service exists, its Endpoints object does not
        self.pod_ip = f"10.42.0.{len(network.nodes) + 10}"
        self._drops = 0
        self._fail: deque[int] = deque()
        self._answers: deque[tuple[int, bytes]] = deque()
        self._delay: deque[float] = deque()
        self.kusciaapi_sans: tuple[str, ...] = ()  # kuscia.yaml kusciaAPISans
        self._server_tls: ServerTls | None = None
        self._gateway_tls: ssl.SSLContext | None = None
        self._set_key(key or new_key())
        # pods/exec: argv[0] -> handler(argv) -> (exit code, stdout, stderr); see streams.serve_exec
        self.exec_handlers: dict[str, ExecHandler] = {}
        self.has_pod = True  # False: the API server serves no pod for it (nothing deployed)

    # -- identity --------------------------------------------------------------------------------

    def _set_key(self, key: rsa.RSAPrivateKey, cert_not_before: dt.datetime | None = None) -> None:
        self.key = key
        self.key_fingerprint = fingerprint(key.public_key())
        self._token = kusciaapi_token(key, self.domain_id)
        self.cert_pem = kuscia_cert(key, self.domain_id, cert_not_before)
        # createDefaultDomain at startup: the own Domain carries domain.crt, in base64 (NOTES §1.5).
        own = self.domains.setdefault(
            self.domain_id,
            {"role": "", "auth_center": None, "interConnProtocols": [], "master_domain_id": ""},
        )
        own["cert"] = b64(self.cert_pem)
        self._server_tls = None  # a (re)start signs a fresh kusciaapi-server.crt (NOTES §1.5)
        self._gateway_tls = None  # and a fresh gateway pair

    @property
    def key_pem(self) -> str:
        return private_pem(self.key)

    @property
    def token(self) -> str:
        """The KusciaAPI token this node expects (TLS/MTLS), derived from its key (NOTES §1.9)."""
        return self._token

    @property
    def is_tls(self) -> bool:
        """Kuscia compares `protocol` with the exact string NOTLS; anything else is HTTPS (NOTES §1.3)."""
        return self.protocol != "NOTLS"

    @property
    def endpoint(self) -> str:
        scheme = "https" if self.is_tls else "http"
        return f"{scheme}://{self.service}.{self.namespace}.svc.cluster.local:1080"

    # -- KusciaAPI's TLS listener (tls_server.py) -------------------------------------------------

    def kusciaapi_server_tls(self) -> ServerTls:
        """This pod start's kusciaapi-server.crt/key and ca.crt (made on first use: RSA is slow)."""
        with self.lock:
            if self._server_tls is None:
                self._server_tls = server_tls(
                    self.key,
                    self.domain_id,
                    hostname=self.instance,
                    pod_ip=self.pod_ip,
                    sans=self.kusciaapi_sans,
                )
            return self._server_tls

    def kusciaapi_tls_context(self) -> ssl.SSLContext | None:
        """The server context of :8082: None under NOTLS, client certs required under MTLS."""
        if not self.is_tls:
            return None
        return server_context(self.kusciaapi_server_tls(), require_client_cert=self.protocol == "MTLS")

    def wrap_server_stream(self, sock: socket.socket) -> socket.socket | None:
        """Terminate :8082's TLS on one connection (see tls_server.wrap_server_stream)."""
        ca_subject = None
        if self.protocol == "MTLS":
            ca = x509.load_pem_x509_certificate(self.kusciaapi_server_tls().ca_cert_pem.encode())
            ca_subject = ca.subject.public_bytes()
        return wrap_server_stream(sock, self.kusciaapi_tls_context(), ca_subject=ca_subject)

    def serve_kusciaapi_connection(self, sock: socket.socket) -> None:
        """Serve KusciaAPI on one connection (TLS per protocol) until it closes; for a relay."""
        serve_connection(self, sock)

    def own_fingerprint(self) -> str:
        """The public key in the node's own Domain cert (normally its key's; a client may change it)."""
        own = self.domains.get(self.domain_id) or {}
        return fingerprint(cert_public_key(own.get("cert") or ""))

    # -- faults ------------------------------------------------------------------------------------

    def fail_next(self, n: int, status: int = 503) -> None:
        """The next `n` KusciaAPI calls answer HTTP `status` (through the proxy or a port-forward)."""
        with self.lock:
            self._fail.extend([status] * n)

    def answer_next(self, body: bytes, n: int = 1, status: int = 200) -> None:
        """The next `n` KusciaAPI calls get exactly `body` (JSON content type) with `status`:
        an answer of a shape no Kuscia sends, or a huge one, as a broken or hostile node would."""
        with self.lock:
            self._answers.extend([(status, body)] * n)

    def take_answer(self) -> tuple[int, bytes] | None:
        with self.lock:
            return self._answers.popleft() if self._answers else None

    def delay_next(self, n: int, seconds: float) -> None:
        """The next `n` KusciaAPI calls wait `seconds` before answering (client timeouts)."""
        with self.lock:
            self._delay.extend([seconds] * n)

    def drop_next(self, n: int = 1) -> None:
        """The next `n` KusciaAPI calls lose their connection before any answer (no HTTP status)."""
        with self.lock:
            self._drops += n

    def take_drop(self) -> bool:
        with self.lock:
            if self._drops:
                self._drops -= 1
                return True
            return False

    def set_endpoints_missing(self, missing: bool = True) -> None:
        """No Endpoints object for the Service (just created, or deleted by hand): the API
        server's proxy answers 404 `endpoints "<svc>" not found`."""
        with self.lock:
            self.endpoints_missing = missing

    def serving_phase(self) -> str:
        """What the API server's proxy finds: "endpoints_missing", "down" (no ready address),
        "refusing" (Ready, not listening yet) or "up"."""
        with self.lock:
            now = self.network.now()
            if self.endpoints_missing:
                return "endpoints_missing"
            if now < self.down_until:
                return "down"
            return "refusing" if now < self.refusing_until else "up"

    def take_fault(self) -> tuple[int | None, float]:
        with self.lock:
            return (self._fail.popleft() if self._fail else None), (
                self._delay.popleft() if self._delay else 0.0
            )

    def restart(self, downtime: float = 1.0, *, refusing: float = 0.0) -> None:
        """Pod restart: down for `downtime` s (no endpoints), then `refusing` s in which the pod
        is an endpoint but refuses connections; state kept (it lives in MySQL), same key but new
        certificate bytes (NOTES §3.4); outbound routes re-handshake once it is back. A
        KusciaAPI call in flight answers 503 `connection reset by peer`."""
        with self.lock:
            self.down_until = self.network.now() + downtime
            self.refusing_until = self.down_until + refusing
            # A real restart takes well over NotBefore's one-second resolution: move it on.
            later = max(dt.datetime.now(dt.UTC), not_before(self.cert_pem) + dt.timedelta(seconds=1))
            self._set_key(self.key, later)
            self.instance = f"{self.service}-{secrets.token_hex(5)}-{secrets.token_hex(3)}"
            for route in self.route_table.values():
                if route.source == self.domain_id and route.token is not None:
                    route.renew = True

    def rotate_key(self, key_pem: str | None = None) -> None:
        """domainKeyData changed: new key, cert and token. Partners keep their stale copy."""
        from .identity import load_key

        with self.lock:
            self._set_key(load_key(key_pem) if key_pem else new_key())

    @property
    def is_down(self) -> bool:
        """Partners cannot reach it and its controllers do not run (down or still starting)."""
        return self.network.now() < self.refusing_until

    # -- snapshots -------------------------------------------------------------------------------

    def snapshot_domains(self) -> dict[str, dict[str, Any]]:
        return self.domains()

    def routes(self) -> dict[str, dict[str, Any]]:
        """Every route on this node after one more handshake round (so never staler than the call)."""
        self.network.engine.run_once()
        with self.lock:
            return {name: route.snapshot() for name, route in self.route_table.items()}

    # -- what a port-forward reaches inside the pod ---------------------------------------------

    def gateway_tls_context(self) -> ssl.SSLContext:
        """The gateway's (:1080) server side: its `<id>_ENVOY_EXTERNAL` pair (tls_server.gateway_tls),
        never asking for a client certificate (under MTLS too: only KusciaAPI requires one)."""
        with self.lock:
            if self._gateway_tls is None:
                self._gateway_tls = server_context(
                    gateway_tls(self.key, self.domain_id), require_client_cert=False
                )
            return self._gateway_tls

    def wrap_kusciaapi_stream(self, stream: Any, port: int) -> Any:
        """The byte stream a port-forward delivers to `port` inside the pod, as the listener there
        reads it: plain under NOTLS; for TLS nodes TLS is terminated here, on 8082 with KusciaAPI's
        own kusciaapi-server.crt (`kusciaapi_tls_context`, a client certificate required and Go's
        issuer-name rule under MTLS), on 1080 with the gateway's pair."""
        if not self.is_tls:
            return stream
        from .streams import TlsServerStream

        if port != 8082:
            return TlsServerStream(stream, self.gateway_tls_context())
        context = self.kusciaapi_tls_context()
        assert context is not None
        ca_subject = None
        if self.protocol == "MTLS":
            ca = x509.load_pem_x509_certificate(self.kusciaapi_server_tls().ca_cert_pem.encode())
            ca_subject = ca.subject.public_bytes()
        return TlsServerStream(stream, context, ca_subject=ca_subject)

    # -- what the API server's proxy forwards ----------------------------------------------------

    def kusciaapi(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        return kusciaapi.handle(self, method, path, headers, body)

    def gateway(self, method: str, path: str, headers: dict[str, str], client: str) -> Reply:
        """Port 1080. A bare request answers 401 with Kuscia's error header (NOTES §4.4); the
        handshake probe `GET /handshake` with Kuscia-Host answers {namespace, state} (§3.2)."""
        lower = {k.lower(): v for k, v in headers.items()}
        if (
            method == "GET"
            and path.split("?")[0].endswith("/handshake")
            and lower.get("kuscia-host") == f"kuscia-handshake.{self.domain_id}.svc"
        ):
            with self.lock:
                state = self.network.engine.probe(
                    self, lower.get("kuscia-source", ""), lower.get("kuscia-token-revision", "")
                )
            body = json.dumps({"namespace": self.domain_id, "state": state}).encode()
            return 200, {"Content-Type": "application/json"}, body
        document = {
            "domain": self.domain_id,
            "instance": self.instance,
            "kuscia": KUSCIA_VERSION,
            "reason": "unauthorized.",
        }
        headers_out = {
            "Content-Type": "text/plain",
            "kuscia-error-message": f"Domain {self.domain_id}.{self.instance}<--{client} return http code 401.",
            "server": "kuscia-gateway",
        }
        return 401, headers_out, json.dumps(document).encode()

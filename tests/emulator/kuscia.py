"""EMULATION ONLY: Kuscia autonomy nodes as far as KusciaAPI and the token handshake go.

Behaviour follows Kuscia's docs and source as summarised in shared/kuscia/NOTES.md; it is
written independently of kuscia_components (it never imports it), so our client cannot pass
by agreeing with itself:
- KusciaAPI is POST + JSON with protobuf field names; errors are `status.code` 11100 (validation),
  11305/11306 (domain missing/exists), 11404/11405 (route missing/exists) with HTTP 200;
  a bad Token on a TLS node is HTTP 401 (NOTES §4.1-4.2).
- Domain update resets `role` and `auth_center` unless re-sent (§4.1 caveat).
- Route create needs both Domains locally (§4.1, kuscia#429).
- The handshake does the RSA work for real (§3.1-3.2): the source encrypts a half-token to the
  public key from ITS partner Domain of the destination; the destination decrypts with its own
  private key, checks sha256 of the source's public key against ITS partner Domain of the source,
  and needs its destination-side route, which a `partner` Domain creates (§3.1).
- Every failed handshake shows on the route as DestinationIsNotAuthrized / TokenNotGenerate
  (§2.2, §3.5); the specific cause goes to the node's gateway log (`gateway_log`), as in Kuscia.
  A peer that goes away after a token existed shows DestinationUnreachable.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KUSCIA_VERSION = "v1.1.0b0"
CODE_OK = 0
CODE_VALIDATION = 11100
CODE_DOMAIN_NOT_EXISTS = 11305
CODE_DOMAIN_EXISTS = 11306
CODE_ROUTE_NOT_EXISTS = 11404
CODE_ROUTE_EXISTS = 11405


def make_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def key_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def make_cert(key: rsa.RSAPrivateKey, domain_id: str, not_before: dt.datetime | None = None) -> str:
    """What Kuscia's ParseCertWithGenerated makes (NOTES §1.5)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain_id)])
    now = not_before or dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=365 * 50))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def kuscia_token(key: rsa.RSAPrivateKey, domain_id: str) -> str:
    """`echo -n $ID | openssl dgst -sha256 -sign key | base64 | head -c 32` (gen_kusciaapi_token.sh)."""
    signature = key.sign(domain_id.encode(), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode()[:32]


def public_key_from_cert_field(cert: str) -> rsa.RSAPublicKey | None:
    """Kuscia's getValidCert: base64 PEM, raw PEM, or a headerless body."""
    text = (cert or "").strip()
    if not text:
        return None
    candidates = [text]
    with contextlib.suppress(Exception):
        candidates.append(base64.b64decode(text).decode())
    for candidate in candidates:
        try:
            if "BEGIN CERTIFICATE" in candidate:
                loaded = x509.load_pem_x509_certificate(candidate.encode())
            else:
                loaded = x509.load_der_x509_certificate(base64.b64decode(candidate))
            public = loaded.public_key()
            return public if isinstance(public, rsa.RSAPublicKey) else None
        except Exception:
            continue
    return None


def public_pem(public: rsa.RSAPublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)


@dataclass
class Route:
    source: str
    destination: str
    host: str
    ports: list[dict[str, Any]]
    token_gen_method: str = "RSA-GEN"
    ready_since: float | None = None  # when the current successful handshake completed
    had_token: bool = False
    reason: str = ""
    message: str = ""
    last_update: str = ""
    status: str = ""  # "", "Succeeded", "Failed"
    destination_side: bool = False  # auto-created by a partner Domain (HOST empty), NOTES §3.1


@dataclass
class EmulatedNode:
    domain_id: str
    namespace: str
    service: str
    protocol: str
    network: Any  # KusciaEmulator
    key: rsa.RSAPrivateKey = field(default_factory=make_key)
    domains: dict[str, dict[str, Any]] = field(default_factory=dict)
    route_table: dict[str, Route] = field(default_factory=dict)
    gateway_log: list[str] = field(default_factory=list)
    down_until: float = 0.0
    _fail: list[int] = field(default_factory=list)
    _delay: list[float] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        self.cert_pem = make_cert(self.key, self.domain_id)
        # The node's own Domain, created at startup (createDefaultDomain, NOTES §1.5).
        self.domains[self.domain_id] = {"role": "", "cert": base64.b64encode(self.cert_pem.encode()).decode()}

    # -- identity ----------------------------------------------------------------------------

    @property
    def key_pem(self) -> str:
        return key_pem(self.key)

    @property
    def token(self) -> str:
        return kuscia_token(self.key, self.domain_id)

    @property
    def endpoint(self) -> str:
        scheme = "http" if self.protocol == "NOTLS" else "https"
        return f"{scheme}://{self.service}.{self.namespace}.svc.cluster.local:1080"

    def rotate_key(self) -> None:
        """As if domainKeyData changed: new key, new own cert; partners keep their stale copy."""
        with self.lock:
            self.key = make_key()
            self.cert_pem = make_cert(self.key, self.domain_id)
            self.domains[self.domain_id]["cert"] = base64.b64encode(self.cert_pem.encode()).decode()

    # -- faults ------------------------------------------------------------------------------

    def fail_next(self, n: int, status: int = 503) -> None:
        with self.lock:
            self._fail.extend([status] * n)

    def delay_next(self, n: int, seconds: float) -> None:
        with self.lock:
            self._delay.extend([seconds] * n)

    def restart(self, downtime: float = 1.0) -> None:
        """Pod restart: API down for `downtime`, state kept (it lives in MySQL)."""
        with self.lock:
            self.down_until = time.monotonic() + downtime
            # Same key, new bytes (§3.4): a real restart takes well over the one-second
            # resolution of NotBefore, so the emulated one moves it on at least a second.
            previous = x509.load_pem_x509_certificate(self.cert_pem.encode()).not_valid_before_utc
            later = max(dt.datetime.now(dt.timezone.utc), previous + dt.timedelta(seconds=1))
            self.cert_pem = make_cert(self.key, self.domain_id, later)
            self.domains[self.domain_id]["cert"] = base64.b64encode(self.cert_pem.encode()).decode()

    @property
    def is_down(self) -> bool:
        return time.monotonic() < self.down_until

    def take_fault(self) -> tuple[int | None, float]:
        with self.lock:
            status = self._fail.pop(0) if self._fail else None
            delay = self._delay.pop(0) if self._delay else 0.0
        return status, delay

    # -- snapshots ---------------------------------------------------------------------------

    def routes(self) -> dict[str, dict[str, Any]]:
        with self.lock:
            names = list(self.route_table)
        out = {}
        for name in names:
            route = self.route_table[name]
            self.network.evaluate(self, route)
            out[name] = {
                "host": route.host,
                "ports": route.ports,
                "status": route.status,
                "reason": route.reason,
                "message": route.message,
            }
        return out

    def snapshot_domains(self) -> dict[str, dict[str, Any]]:
        with self.lock:
            return {k: dict(v) for k, v in self.domains.items()}

    # -- KusciaAPI -----------------------------------------------------------------------------

    def kusciaapi(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        if self.protocol != "NOTLS":
            token = next((v for k, v in headers.items() if k.lower() == "token"), None)
            if token != self.token:
                return 401, {"Content-Type": "text/plain"}, b"unauthorized"
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return 400, {"Content-Type": "text/plain"}, b"invalid json"
        handler = {
            "/healthZ": self._health,
            "/api/v1/domain/create": self._domain_create,
            "/api/v1/domain/query": self._domain_query,
            "/api/v1/domain/update": self._domain_update,
            "/api/v1/domain/delete": self._domain_delete,
            "/api/v1/domain/batchQuery": self._domain_batch_query,
            "/api/v1/route/create": self._route_create,
            "/api/v1/route/query": self._route_query,
            "/api/v1/route/delete": self._route_delete,
            "/api/v1/route/status/batchQuery": self._route_status,
        }.get(path)
        if handler is None:
            return 404, {"Content-Type": "text/plain"}, b"404 page not found"
        with self.lock:
            code, message, data = handler(request)
        payload = {"status": {"code": code, "message": message, "details": []}, "data": data}
        return 200, {"Content-Type": "application/json"}, json.dumps(payload).encode()

    def _health(self, _req: dict[str, Any]) -> tuple[int, str, Any]:
        return CODE_OK, "success", {"ready": True}

    def _domain_create(self, req: dict[str, Any]) -> tuple[int, str, Any]:
        domain_id = req.get("domain_id") or ""
        if not domain_id:
            return CODE_VALIDATION, "domain id can not be empty", None
        if domain_id in self.domains:
            return CODE_DOMAIN_EXISTS, f'domains.kuscia.secretflow "{domain_id}" already exists', None
        role = req.get("role") or ""
        if role not in ("", "partner"):
            return CODE_VALIDATION, f"role {role} is invalid", None
        cert = req.get("cert") or ""
        if cert and public_key_from_cert_field(cert) is None:
            return CODE_VALIDATION, "cert is invalid", None
        auth_center = req.get("auth_center") or (
            {"authentication_type": "Token", "token_gen_method": "RSA-GEN"} if role == "partner" else None
        )
        self.domains[domain_id] = {
            "role": role,
            "cert": cert,
            "auth_center": auth_center,
            "interConnProtocols": ["kuscia"] if role == "partner" else [],
        }
        if role == "partner":
            # The domain controller creates the destination-side CDR <peer>-<self>, owned by the
            # Domain, with an empty HOST (authorization_resource.go; NOTES §3.1).
            name = f"{domain_id}-{self.domain_id}"
            self.route_table.setdefault(name, Route(domain_id, self.domain_id, "", [], destination_side=True))
        return CODE_OK, "success", None

    def _domain_query(self, req: dict[str, Any]) -> tuple[int, str, Any]:
        domain_id = req.get("domain_id") or ""
        domain = self.domains.get(domain_id)
        if domain is None:
            return CODE_DOMAIN_NOT_EXISTS, f'domains.kuscia.secretflow "{domain_id}" not found', None
        return (
            CODE_OK,
            "success",
            {
                "domain_id": domain_id,
                "role": domain["role"],
                "cert": domain["cert"],
                "auth_center": domain.get("auth_center"),
                "annotations": {},
            },
        )

    def _domain_update(self, req: dict[str, Any]) -> tuple[int, str, Any]:
        domain_id = req.get("domain_id") or ""
        if domain_id not in self.domains:
            return CODE_DOMAIN_NOT_EXISTS, f'domains.kuscia.secretflow "{domain_id}" not found', None
        cert = req.get("cert") or ""
        if cert and public_key_from_cert_field(cert) is None:
            return CODE_VALIDATION, "cert is invalid", None
        # Kuscia's UpdateDomain rebuilds the spec from the request: role and auth_center are
        # reset unless re-sent (domain_service.go:294-324).
        self.domains[domain_id] = {
            "role": req.get("role") or "",
            "cert": cert,
            "auth_center": req.get("auth_center"),
            "interConnProtocols": ["kuscia"] if req.get("role") == "partner" else [],
        }
        return CODE_OK, "success", None

    def _domain_delete(self, req: dict[str, Any]) -> tuple[int, str, Any]:
        domain_id = req.get("domain_id") or ""
        if domain_id not in self.domains:
            return CODE_DOMAIN_NOT_EXISTS, f'domains.kuscia.secretflow "{domain_id}" not found', None
        del self.domains[domain_id]
        owned = self.route_table.get(f"{domain_id}-{self.domain_id}")
        if owned is not None and owned.destination_side:
            del self.route_table[f"{domain_id}-{self.domain_id}"]
        return CODE_OK, "success", None

    def _domain_batch_query(self, req: dict[str, Any]) -> tuple[int, str, Any]:
        out = []
        for domain_id in req.get("domain_ids") or []:
            code, message, data = self._domain_query({"domain_id": domain_id})
            if code:
                return code, message, None
            out.append(data)
        return CODE_OK, "success", {"domains": out}

    def _route_create(self, req: dict[str, Any]) -> tuple[int, str, Any]:
        src, dst = req.get("source") or "", req.get("destination") or ""
        endpoint = req.get("endpoint") or {}
        ports = endpoint.get("ports") or []
        if not src or not dst or not endpoint.get("host") or not ports:
            return CODE_VALIDATION, "source, destination, endpoint.host and endpoint.ports are required", None
        if req.get("authentication_type", "Token") not in ("Token", "MTLS", "None"):
            return CODE_VALIDATION, "authentication_type is invalid", None
        for port in ports:
            if not 1 <= int(port.get("port") or 0) <= 65535 or port.get("protocol") not in (
                "HTTP",
                "GRPC",
                "HTTPS",
                "GRPCS",
            ):
                return CODE_VALIDATION, "endpoint port is invalid", None
        for domain_id in (src, dst):
            if domain_id not in self.domains:
                return CODE_DOMAIN_NOT_EXISTS, f'domains.kuscia.secretflow "{domain_id}" not found', None
        name = f"{src}-{dst}"
        if name in self.route_table:
            return CODE_ROUTE_EXISTS, f'clusterdomainroutes.kuscia.secretflow "{name}" already exists', None
        token_config = req.get("token_config") or {"token_gen_method": "RSA-GEN"}
        self.route_table[name] = Route(
            src, dst, endpoint["host"], ports, token_config.get("token_gen_method", "RSA-GEN")
        )
        return CODE_OK, "success", None

    def _route_query(self, req: dict[str, Any]) -> tuple[int, str, Any]:
        name = f"{req.get('source')}-{req.get('destination')}"
        route = self.route_table.get(name)
        if route is None:
            return CODE_ROUTE_NOT_EXISTS, f'clusterdomainroutes.kuscia.secretflow "{name}" not found', None
        self.network.evaluate(self, route)
        return (
            CODE_OK,
            "success",
            {
                "name": name,
                "authentication_type": "Token",
                "source": route.source,
                "destination": route.destination,
                # Kuscia's query answer lists name/port/protocol per port (docs example), not isTLS.
                "endpoint": {
                    "host": route.host,
                    "ports": [
                        {"name": p.get("name", ""), "port": p["port"], "protocol": p["protocol"]}
                        for p in route.ports
                    ],
                },
                "token_config": {"token_gen_method": route.token_gen_method, "rolling_update_period": "0"},
                "status": {"status": route.status or "Failed", "reason": _reason_text(route)},
            },
        )

    def _route_delete(self, req: dict[str, Any]) -> tuple[int, str, Any]:
        name = f"{req.get('source')}-{req.get('destination')}"
        if name not in self.route_table:
            return CODE_ROUTE_NOT_EXISTS, f'clusterdomainroutes.kuscia.secretflow "{name}" not found', None
        del self.route_table[name]
        return CODE_OK, "success", None

    def _route_status(self, req: dict[str, Any]) -> tuple[int, str, Any]:
        out = []
        for key in req.get("route_keys") or []:
            name = f"{key.get('source')}-{key.get('destination')}"
            route = self.route_table.get(name)
            if route is None:
                return (
                    CODE_ROUTE_NOT_EXISTS,
                    f'clusterdomainroutes.kuscia.secretflow "{name}" not found',
                    None,
                )
            self.network.evaluate(self, route)
            status = "Succeeded" if route.status == "Succeeded" else "Failed"
            out.append({"name": name, "source": route.source, "destination": route.destination,
                        "status": {"status": status, "reason": "" if status == "Succeeded" else _reason_text(route)}})  # fmt: skip
        return CODE_OK, "success", {"routes": out}

    # -- gateway ---------------------------------------------------------------------------------

    def gateway(self) -> tuple[int, dict[str, str], bytes]:
        """A bare request to :1080 answers 401 with Kuscia's error header (NOTES §4.4)."""
        body = {
            "domain": self.domain_id,
            "instance": f"{self.service}-0",
            "kuscia": KUSCIA_VERSION,
            "reason": "unauthorized.",
        }
        return (
            401,
            {"kuscia-error-message": "unauthorized.", "Content-Type": "application/json"},
            json.dumps(body).encode(),
        )

    # -- handshake (destination side) -----------------------------------------------------------

    def answer_handshake(self, source: str, encrypted_half: bytes, pubhash: bytes) -> str | None:
        """Destination processing (handshake.go): None on success, else the error text."""
        with self.lock:
            partner = self.domains.get(source)
            if partner is None or partner.get("role") != "partner":
                # No partner Domain -> no destination-side route `<src>-<dst>` here (NOTES §3.1).
                return f"domainRoute [{source}-{self.domain_id}] not found in dest domain [{self.domain_id}]"
            known = public_key_from_cert_field(partner.get("cert", ""))
            if known is None:
                return f"invalid source domain [{source}] publickey, error: public key is empty"
            if hashlib.sha256(public_pem(known)).digest() != pubhash:
                return f"source domain [{source}] publickey hash mismatch in domainroute [{source}-{self.domain_id}]"
            try:
                plain = self.key.decrypt(encrypted_half, padding.PKCS1v15())
            except ValueError:
                return (
                    f"dest domain [{self.domain_id}] publickey in source domain [{source}] may be not correct"
                )
            if not plain.startswith(b"kuscia"):
                return (
                    f"dest domain [{self.domain_id}] publickey in source domain [{source}] may be not correct"
                )
        return None


def _reason_text(route: Route) -> str:
    if route.status == "Succeeded":
        return ""
    if not route.reason:
        return ""
    return f"LastUpdateAt={route.last_update}, Message={route.message}, Reason:{route.reason}"


def handshake_half() -> bytes:
    return b"kuscia" + os.urandom(16)

"""EMULATION ONLY: the TLS side of an emulated node's KusciaAPI (:8082) and a loopback server for it.

Kuscia, at every start, signs a fresh `kusciaapi-server.crt` with its CA (`ca.crt` = the domain
key, `CN=<domainID>`): CN `KusciaAPI`, DNS SANs `kusciaapi` + `kusciaAPISans` names + the pod
hostname + `localhost`, IP SANs `kusciaAPISans` IPs + 127.0.0.1 + the pod IP, 10 years, KeyUsage
KeyEncipherment|DigitalSignature, no EKU, AuthorityKeyId = the CA's SubjectKeyId (upstream
`pkg/web/framework/config/tls_server_config.go` GenerateServerKeyCerts, `cmd/kuscia/modules/
kusciaapi.go`, Go `crypto/x509` CreateCertificate). Under MTLS the listener requires and verifies a
client certificate against `ca.crt` (`pkg/kusciaapi/bean/http_server_bean.go` convertToGinConf,
`pkg/utils/tls/cert.go` BuildServerTLSConfig); a missing or foreign one fails the handshake. A
plain-HTTP request gets Go's `400 Client sent an HTTP request to an HTTPS server.` (net/http
server.go). Written from those sources, never from kuscia_components.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
import socket
import ssl
import struct
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from .identity import kuscia_cert

if TYPE_CHECKING:
    from .node import EmulatedNode

SAN_DNS_NAME = "kusciaapi"  # kusciaAPISanDNSName
COMMON_NAME = "KusciaAPI"
GO_PLAIN_HTTP_ANSWER = b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
TLS_HANDSHAKE_RECORD = 0x16
MAX_BODY = 2 * 1024 * 1024


@dataclass(frozen=True)
class ServerTls:
    """One pod start's KusciaAPI TLS material: the server pair and the CA that signed it."""

    cert_pem: str
    key_pem: str
    ca_cert_pem: str
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]


def ca_cert(key: rsa.RSAPrivateKey, domain_id: str) -> x509.Certificate:
    """The pod's ca.crt, generated at start like domain.crt (same key, same shape, fresh bytes)."""
    return x509.load_pem_x509_certificate(kuscia_cert(key, domain_id).encode())


def server_tls(
    ca_key: rsa.RSAPrivateKey, domain_id: str, *, hostname: str, pod_ip: str, sans: tuple[str, ...] = ()
) -> ServerTls:
    """GenerateServerKeyCerts: a new RSA-2048 key, signed by the CA."""
    ca = ca_cert(ca_key, domain_id)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    user_ips = [s for s in sans if _is_ip(s)]
    dns = [SAN_DNS_NAME, *(s for s in sans if not _is_ip(s)), hostname, "localhost"]
    ips = [*user_ips, "127.0.0.1", pod_ip]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, COMMON_NAME)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(secrets.randbits(32) or 1)  # uuid.New().ID(): a uint32
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
            ),
            critical=False,
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return ServerTls(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode(),
        ca_cert_pem=ca.public_bytes(serialization.Encoding.PEM).decode(),
        dns_names=tuple(dns),
        ip_addresses=tuple(ips),
    )


def gateway_tls(ca_key: rsa.RSAPrivateKey, domain_id: str) -> ServerTls:
    """The gateway's (:1080) external TLS pair, made at start and held in memory: CN
    `<domainID>_ENVOY_EXTERNAL`, IP SAN 127.0.0.1 only, ServerAuth, 10 years, signed by the CA
    (upstream cmd/kuscia/modules/domainroute.go, pkg/utils/tls/crypt.go GenerateKeyCertPairData)."""
    ca = ca_cert(ca_key, domain_id)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{domain_id}_ENVOY_EXTERNAL")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(secrets.randbits(32) or 1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return ServerTls(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode(),
        ca_cert_pem=ca.public_bytes(serialization.Encoding.PEM).decode(),
        dns_names=(),
        ip_addresses=("127.0.0.1",),
    )


def server_context(material: ServerTls, *, require_client_cert: bool) -> ssl.SSLContext:
    """BuildServerTLSConfig: the server pair; under MTLS RequireAndVerifyClientCert against ca.crt."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    handle, path = tempfile.mkstemp(prefix="emulated-kusciaapi-")
    try:
        os.write(handle, (material.cert_pem + material.key_pem).encode())
        os.close(handle)
        context.load_cert_chain(path)
    finally:
        os.unlink(path)
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=material.ca_cert_pem)
    return context


def wrap_server_stream(
    sock: socket.socket,
    context: ssl.SSLContext | None,
    *,
    ca_subject: bytes | None = None,
    timeout: float = 5.0,
) -> socket.socket | None:
    """The server end of one KusciaAPI connection: `sock` itself for NOTLS, the TLS socket after a
    successful handshake, or None when the handshake failed (a plain-HTTP client got Go's 400
    first). Under MTLS `ca_subject` (ca.crt's subject DER) adds Go's issuer-name rule. The caller
    closes `sock` on None."""
    if context is None:
        return sock
    sock.settimeout(timeout)
    try:
        first = sock.recv(5, socket.MSG_PEEK)
    except OSError:
        return None
    if first and first[0] != TLS_HANDSHAKE_RECORD:
        if first[:5] in (b"GET /", b"HEAD ", b"POST ", b"PUT /", b"OPTIO"):  # tlsRecordHeaderLooksLikeHTTP
            with suppress(OSError):
                sock.sendall(GO_PLAIN_HTTP_ANSWER)
        return None
    try:
        wrapped = context.wrap_socket(sock, server_side=True)
    except (ssl.SSLError, OSError):
        _drain(sock)
        return None
    if ca_subject is not None and not _issued_by_name(wrapped, ca_subject):
        # Go fails the handshake ("x509: certificate signed by unknown authority", alert bad
        # certificate); OpenSSL has already finished it, so the nearest is to reset the connection.
        wrapped.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        wrapped.close()
        return None
    return wrapped


def _drain(sock: socket.socket) -> None:
    """Read what the client already sent, so closing sends FIN and the client reads our alert
    rather than a reset (a bounded 50 ms, 64 KiB)."""
    try:
        sock.settimeout(0.05)
        sock.recv(65536)
    except OSError:
        pass


def _issued_by_name(stream: ssl.SSLSocket, ca_subject: bytes) -> bool:
    """Go finds a client certificate's parent by the exact bytes of its issuer name (x509
    CertPool.findPotentialParents, byName[RawIssuer]); OpenSSL, which verified the chain, compares
    names canonically. A CN in another string type passes OpenSSL and fails Go."""
    der = stream.getpeercert(binary_form=True)
    return der is not None and x509.load_der_x509_certificate(der).issuer.public_bytes() == ca_subject


def serve_connection(node: EmulatedNode, sock: socket.socket) -> None:
    """Serve KusciaAPI HTTP/1.1 on one accepted (or port-forwarded) connection until it closes."""
    stream = node.wrap_server_stream(sock)
    if stream is None:
        sock.close()
        return
    try:
        stream.settimeout(30)
        _Handler(stream, ("127.0.0.1", 0), node)
        if isinstance(stream, ssl.SSLSocket):
            stream.settimeout(1)
            stream.unwrap()  # close_notify, as Go's tls.Conn.Close sends
    except OSError:
        pass
    finally:
        with suppress(OSError):
            stream.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = ""

    def __init__(self, request: Any, client_address: Any, node: EmulatedNode) -> None:
        self.node = node
        super().__init__(request, client_address, None)  # type: ignore[arg-type]

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.send_error(413)
            return
        body = self.rfile.read(length) if length else b""
        status, headers, payload = self.node.kusciaapi(self.command, self.path, dict(self.headers), body)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_POST = do_GET = _serve


@contextmanager
def serve_kusciaapi(node: EmulatedNode) -> Iterator[tuple[str, int]]:
    """KusciaAPI of `node` on 127.0.0.1:<free port>, as the pod's :8082 speaks it (TLS per its
    protocol); what a port-forward reaches. Stops, with every connection, on exit."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()
    workers: list[threading.Thread] = []
    conns: list[socket.socket] = []

    def accept_loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conns.append(conn)
            worker = threading.Thread(
                target=serve_connection, args=(node, conn), name="emulated-kusciaapi-conn", daemon=True
            )
            workers.append(worker)
            worker.start()

    acceptor = threading.Thread(target=accept_loop, name="emulated-kusciaapi-accept", daemon=True)
    acceptor.start()
    try:
        yield listener.getsockname()[:2]
    finally:
        stop.set()
        acceptor.join(2)
        listener.close()
        for conn in conns:
            with suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        for worker in workers:
            worker.join(2)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True

"""Verified TLS to a node's KusciaAPI: trust only the node's own CA, present the MTLS client cert.

Kuscia's CA is the domain key with a self-signed `CN=<domainID>` certificate, and it signs
`kusciaapi-server.crt` (CN `KusciaAPI`, DNS SANs `kusciaapi`, the pod hostname, `localhost`, IP
SANs 127.0.0.1 and the pod IP; upstream `pkg/web/framework/config/tls_server_config.go`,
`cmd/kuscia/modules/kusciaapi.go`). The stack holds the domain certificate, which has the CA's
subject and key, so it is the trust anchor, and `kusciaapi` is the host name to verify whatever
address is dialled (a port-forward's 127.0.0.1, a pod IP). A server certificate that does not
chain to it comes from another key: the pod does not run the stack's domain key.

Lives in `kube` so both the port-forward transport and the KusciaAPI client can use it. Errors
are typed and worded for the user, and never carry key material.
"""

from __future__ import annotations

import os
import socket
import ssl
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from kuscia_components.core.kusciaapi_certs import SERVER_NAME

TLS_PROTOCOLS = ("TLS", "MTLS")
# OpenSSL verify codes (x509_vfy.h) that mean "signed by a key other than the node's CA".
_OTHER_KEY_CODES = {
    2: "unable to get issuer certificate",
    7: "certificate signature failure",
    18: "self-signed certificate",
    19: "self-signed certificate in chain",
    20: "unable to get local issuer certificate",
    21: "unable to verify the first certificate",
}
_HOSTNAME_MISMATCH = 62
_TIME_CODES = {9: "not yet valid", 10: "expired"}
# What OpenSSL reports when the peer answers a ClientHello with plain text (an HTTP server).
_PLAINTEXT_SIGNS = (
    "wrong_version_number",
    "wrong version number",
    "packet_length_too_long",
    "record_layer_failure",
    "http_request",
)
# Alerts a server sends when it refuses our client certificate (Go: certificate required / bad
# certificate; OpenSSL: unknown ca, certificate unknown, handshake failure).
_CLIENT_CERT_ALERTS = (
    "certificate_required",
    "certificate required",
    "bad_certificate",
    "bad certificate",
    "unknown_ca",
    "unknown ca",
    "certificate_unknown",
    "certificate unknown",
)
MAX_PEM = 64 * 1024  # a certificate chain or key longer than this is not Kuscia's


class KusciaApiTlsError(Exception):
    """A TLS failure towards KusciaAPI, in words; `kind` names it for callers and tests."""

    kind = "tls"


class NodeCaMismatch(KusciaApiTlsError):
    """The server certificate does not chain to the node CA this stack derives from its key."""

    kind = "node_ca_mismatch"


class HostnameMismatch(KusciaApiTlsError):
    """The server certificate chains to the node CA but does not name `kusciaapi`."""

    kind = "hostname_mismatch"


class ProtocolMismatch(KusciaApiTlsError):
    """One side speaks plain HTTP, the other HTTPS (protocol NOTLS on one, TLS/MTLS on the other)."""

    kind = "protocol_mismatch"


class ClientCertRejected(KusciaApiTlsError):
    """KusciaAPI under MTLS refused (or did not get) our client certificate."""

    kind = "client_cert_rejected"


class CertificateTime(KusciaApiTlsError):
    """A certificate in the chain is expired or not valid yet: a clock is off."""

    kind = "certificate_time"


@dataclass(frozen=True)
class KusciaApiTls:
    """What a client needs to talk TLS to one node's KusciaAPI. Built per call from the identity's
    outputs, never stored in a pickled provider (it holds the client key)."""

    protocol: str  # TLS | MTLS
    domain_id: str
    ca_cert_pem: str  # the node's domain certificate: the subject and key of its ca.crt
    client_cert_pem: str | None = None  # MTLS only
    client_key_pem: str | None = field(default=None, repr=False)  # MTLS only (secret)
    server_name: str = SERVER_NAME

    def __post_init__(self) -> None:
        if self.protocol not in TLS_PROTOCOLS:
            raise ValueError(f"KusciaAPI TLS needs protocol TLS or MTLS, e.g. 'TLS'; got {self.protocol!r}")
        if not self.ca_cert_pem or len(self.ca_cert_pem) > MAX_PEM:
            raise ValueError(
                "KusciaAPI TLS needs the node's domain certificate (the DomainIdentity's cert_pem)"
            )
        if self.protocol == "MTLS" and not (self.client_cert_pem and self.client_key_pem):
            raise ValueError(
                "KusciaAPI under MTLS needs the client certificate and key (the DomainIdentity's "
                "kusciaapi_client_cert_pem and kusciaapi_client_key_pem)"
            )

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("KusciaApiTls holds a client key and is never pickled")


def for_node(
    protocol: str,
    domain_id: str,
    ca_cert_pem: str,
    client_cert_pem: str | None = None,
    client_key_pem: str | None = None,
) -> KusciaApiTls | None:
    """The TLS material for a node's protocol from its identity's outputs; None under NOTLS
    (plain HTTP). The client certificate is used under MTLS only."""
    if protocol == "NOTLS":
        return None
    mtls = protocol == "MTLS"
    return KusciaApiTls(
        protocol,
        domain_id,
        ca_cert_pem,
        client_cert_pem if mtls else None,
        client_key_pem if mtls else None,
    )


def client_context(tls: KusciaApiTls) -> ssl.SSLContext:
    """A client context that trusts only the node's CA, checks the host name `tls.server_name`
    (pass it as `server_hostname`) and, under MTLS, presents the client certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # Go's crypto/tls server minimum
    try:
        context.load_verify_locations(cadata=tls.ca_cert_pem)
    except (ssl.SSLError, ValueError):
        raise ValueError("the node's domain certificate is not a PEM certificate") from None
    if tls.protocol == "MTLS":
        assert tls.client_cert_pem and tls.client_key_pem  # __post_init__
        with _pem_file(tls.client_cert_pem + "\n" + tls.client_key_pem) as path:
            try:
                context.load_cert_chain(path)
            except ssl.SSLError:
                raise ValueError("the KusciaAPI client certificate and key do not belong together") from None
    return context


def wrap_socket(
    sock: socket.socket, tls: KusciaApiTls, *, context: ssl.SSLContext | None = None
) -> ssl.SSLSocket:
    """Handshake on a connected socket (a port-forward's, a pod IP's); failures become typed errors.
    Under TLS 1.3 a refused client certificate only shows on the first read: `classify` that. A
    close without TLS's close_notify raises (Go's server always sends one) instead of reading as
    a clean end, so a cut answer is never taken for a whole one."""
    wrapped = (context or client_context(tls)).wrap_socket(
        sock, server_hostname=tls.server_name, do_handshake_on_connect=False, suppress_ragged_eofs=False
    )
    try:
        wrapped.do_handshake()
    except (ssl.SSLError, ConnectionError, OSError) as err:
        wrapped.close()
        raise classify(err, tls) from None
    return wrapped


def classify(err: BaseException, tls: KusciaApiTls) -> KusciaApiTlsError:
    """The typed error for an exception raised by a handshake or the first read/write after it."""
    node = f"{tls.domain_id}'s KusciaAPI"
    if isinstance(err, KusciaApiTlsError):
        return err
    if isinstance(err, ssl.SSLCertVerificationError):
        code = err.verify_code
        if code == _HOSTNAME_MISMATCH:
            return HostnameMismatch(
                f"{node} presented a certificate signed by {tls.domain_id}'s CA that does not name "
                f"{tls.server_name!r}: it is not the kusciaapi-server.crt Kuscia writes (its DNS SANs always "
                f"include {tls.server_name!r})"
            )
        if code in _OTHER_KEY_CODES:
            return NodeCaMismatch(
                f"{node} presented a certificate that does not chain to {tls.domain_id}'s CA "
                f"({_OTHER_KEY_CODES[code]}): the pod runs another domain key than this stack holds, or the "
                "address reaches another node. Run `pulumi up` for this node so kuscia.yaml carries the "
                "stack's key, or put the node's key in kuscia:domainKeyData"
            )
        if code in _TIME_CODES:
            return CertificateTime(
                f"{node} presented a certificate that is {_TIME_CODES[code]}: the clock of this machine or "
                "of the pod is off"
            )
        return KusciaApiTlsError(f"{node}'s certificate failed verification: {err.verify_message}")
    text = f"{getattr(err, 'reason', '') or ''} {err}".lower()
    if isinstance(err, ssl.SSLError) and any(sign in text for sign in _PLAINTEXT_SIGNS):
        return ProtocolMismatch(
            f"{node} answered the TLS handshake in plain text: the node runs protocol NOTLS but the stack "
            f"says {tls.protocol}. Set kuscia:protocol to what the node runs and `pulumi up`"
        )
    if isinstance(err, ssl.SSLError) and any(sign in text for sign in _CLIENT_CERT_ALERTS):
        if tls.protocol == "MTLS":
            return ClientCertRejected(
                f"{node} refused our client certificate: it is not signed by the key the pod runs with "
                "(the pod's ca.crt is derived from its domainKeyData). Run `pulumi up` for this node"
            )
        return ClientCertRejected(
            f"{node} asks for a client certificate: the node runs protocol MTLS but the stack says TLS. "
            "Set kuscia:protocol to MTLS and `pulumi up`"
        )
    if isinstance(err, ssl.SSLEOFError | ConnectionResetError | ssl.SSLZeroReturnError):
        # A refused client certificate often arrives as a bare close: the server's alert is lost
        # when it closes with our request still unread (TCP reset).
        why = (
            "it most likely refused our client certificate (not signed by the key the pod runs with)"
            if tls.protocol == "MTLS"
            else "the node may run protocol NOTLS, or MTLS, which wants a client certificate"
        )
        return KusciaApiTlsError(
            f"{node} closed the connection during the TLS handshake: {why} ({type(err).__name__})"
        )
    return KusciaApiTlsError(f"TLS to {node} failed: {type(err).__name__}: {str(err)[:200]}")


def plain_answer_from_tls_server(status: int, body: bytes) -> bool:
    """Did a plain-HTTP request reach an HTTPS server? Go's server answers exactly this (net/http
    server.go) when the stack says NOTLS but the node runs TLS or MTLS."""
    return status == 400 and b"Client sent an HTTP request to an HTTPS server" in body[:200]


@contextmanager
def _pem_file(pem: str) -> Iterator[str]:
    """A path to `pem` for OpenSSL's file-only load_cert_chain: an anonymous memory file where the
    OS has one (the key never reaches a disk), else a 0600 temp file removed right away."""
    data = pem.encode()
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("kusciaapi-client", 0)
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    handle, path = tempfile.mkstemp(prefix="kusciaapi-client-")
    try:
        os.write(handle, data)
        os.close(handle)
        yield path
    finally:
        os.unlink(path)

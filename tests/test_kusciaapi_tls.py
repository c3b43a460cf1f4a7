"""Verified TLS and MTLS to KusciaAPI: the client cert minted from the domain key, the client
context (kube/tls.py), and both against the emulated node's real TLS listener on loopback.

Upstream: `pkg/web/framework/config/tls_server_config.go` (server cert: CN KusciaAPI, SANs
`kusciaapi`, hostname, localhost, 127.0.0.1, pod IP, signed by ca.crt), `cmd/kuscia/modules/
kusciaapi.go` (CommonName, kusciaAPISanDNSName), `pkg/kusciaapi/bean/http_server_bean.go`
convertToGinConf + `pkg/utils/tls/cert.go` BuildServerTLSConfig (MTLS: RequireAndVerifyClientCert
against ca.crt), `scripts/deploy/init_kusciaapi_client_certs.sh` (CN KusciaAPIClient).
"""

from __future__ import annotations

import datetime as dt
import json
import pickle
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kuscia_components.core import kusciaapi_certs, pki
from kuscia_components.kube import tls
from kuscia_components.node.identity import DomainIdentityProvider, identity_outputs
from tests.emulator import EmulatedNode, KusciaEmulator
from tests.emulator.tls_server import serve_kusciaapi
from tests.gobuild import build_go_program

GO_LISTENER = Path(__file__).parent / "go_kusciaapi_tls" / "main.go"


def _material(node: EmulatedNode, protocol: str | None = None, **override: Any) -> tls.KusciaApiTls:
    """What the stack would hold for this node: derived by kuscia_components from the node's key."""
    outs = identity_outputs(pki.load_domain_key(node.key_pem), node.domain_id)
    values: dict[str, Any] = {
        "protocol": protocol or node.protocol,
        "domain_id": node.domain_id,
        "ca_cert_pem": outs["cert_pem"],
    }
    if values["protocol"] == "MTLS":
        values["client_cert_pem"] = outs["kusciaapi_client_cert_pem"]
        values["client_key_pem"] = outs["kusciaapi_client_key_pem"]
    return tls.KusciaApiTls(**{**values, **override})


def _utf8_issuer_client_cert(domain_key_pem: str, domain_id: str) -> tuple[str, str]:
    """Right key, right name, wrong string type: `CN=<id>` as UTF8String (cryptography's default)
    where Go's ca.crt says PrintableString. OpenSSL accepts it; Go does not."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    ca_key = serialization.load_pem_private_key(domain_key_pem.encode(), None)
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "KusciaAPIClient")]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain_id)]))
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()


def _health(address: tuple[str, int], material: tls.KusciaApiTls, token: str) -> tuple[int, Any]:
    """POST /healthZ over the verified client context; the first read classifies like `wrap_socket`."""
    raw = socket.create_connection(address, timeout=5)
    stream = tls.wrap_socket(raw, material)
    try:
        request = (
            f"POST /healthZ HTTP/1.1\r\nHost: {material.server_name}\r\nToken: {token}\r\n"
            "Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
        )
        stream.sendall(request.encode())
        data = b""
        while chunk := stream.recv(65536):
            data += chunk
    except (ssl.SSLError, OSError) as err:
        raise tls.classify(err, material) from None
    finally:
        stream.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body) if body else None


@pytest.fixture(scope="module")
def emu() -> Iterator[KusciaEmulator]:
    with KusciaEmulator() as emulator:
        yield emulator


# -- the client certificate -----------------------------------------------------------------------


def test_client_cert_is_signed_by_the_domain_key_as_the_upstream_script_makes_it(rsa_key_pem: str) -> None:
    cert_pem, key_pem = kusciaapi_certs.build_client_cert(rsa_key_pem, "alice")
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    ca = x509.load_pem_x509_certificate(pki.build_domain_cert(rsa_key_pem, "alice").encode())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "KusciaAPIClient"
    assert cert.issuer == ca.subject  # CN=alice
    # ...in Go's string type, byte for byte what Go writes into ca.crt's subject
    assert (
        cert.issuer.public_bytes()
        == x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, "alice", _type=_ASN1Type.PrintableString)]
        ).public_bytes()
    )
    ca.public_key().verify(  # type: ignore[union-attr, call-arg]
        cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm
    )
    akid = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert (
        akid.key_identifier == ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    )
    assert (
        ExtendedKeyUsageOID.CLIENT_AUTH
        in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    )
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert cert.not_valid_before_utc < dt.datetime.now(dt.UTC) < cert.not_valid_after_utc
    assert "BEGIN PRIVATE KEY" in key_pem and pki.public_key_sha256(cert_pem) != pki.public_key_sha256(
        rsa_key_pem
    )


def test_client_cert_of_another_key_or_domain_does_not_match(rsa_key_pem: str) -> None:
    domain_cert = pki.build_domain_cert(rsa_key_pem, "alice")
    ours, _ = kusciaapi_certs.build_client_cert(rsa_key_pem, "alice")
    other_key = pki.generate_domain_key()
    assert kusciaapi_certs.client_cert_matches(ours, domain_cert, "alice")
    assert not kusciaapi_certs.client_cert_matches(ours, domain_cert, "bob")
    assert not kusciaapi_certs.client_cert_matches(
        kusciaapi_certs.build_client_cert(other_key, "alice")[0], domain_cert, "alice"
    )
    assert not kusciaapi_certs.client_cert_matches("not a cert", domain_cert, "alice")


def test_a_state_from_before_mtls_gets_a_client_cert_on_the_next_up(rsa_key_pem: str) -> None:
    provider = DomainIdentityProvider()
    outs = provider.create({"domain_id": "alice", "supplied_key": rsa_key_pem}).outs
    old = {k: v for k, v in outs.items() if not k.startswith("kusciaapi_client_")}
    assert provider.diff("id", old, {"domain_id": "alice", "supplied_key": rsa_key_pem}).changes
    updated = provider.update("id", old, {"domain_id": "alice", "supplied_key": rsa_key_pem}).outs
    assert updated["cert_pem"] == outs["cert_pem"]  # the key and its cert stay: no pod roll
    assert kusciaapi_certs.client_cert_matches(
        updated["kusciaapi_client_cert_pem"], outs["cert_pem"], "alice"
    )
    # A current state is no change and keeps its client cert.
    assert not provider.diff("id", outs, {"domain_id": "alice", "supplied_key": rsa_key_pem}).changes
    kept = provider.update("id", outs, {"domain_id": "alice", "supplied_key": rsa_key_pem}).outs
    assert kept["kusciaapi_client_cert_pem"] == outs["kusciaapi_client_cert_pem"]


def test_tls_material_hides_and_refuses_to_pickle_the_client_key(rsa_key_pem: str) -> None:
    cert, key = kusciaapi_certs.build_client_cert(rsa_key_pem, "alice")
    material = tls.KusciaApiTls("MTLS", "alice", pki.build_domain_cert(rsa_key_pem, "alice"), cert, key)
    assert key not in repr(material)
    with pytest.raises(TypeError, match="never pickled"):
        pickle.dumps(material)
    with pytest.raises(ValueError, match="client certificate and key"):
        tls.KusciaApiTls("MTLS", "alice", material.ca_cert_pem)
    with pytest.raises(ValueError, match="TLS or MTLS"):
        tls.KusciaApiTls("NOTLS", "alice", material.ca_cert_pem)
    mismatched = tls.KusciaApiTls("MTLS", "alice", material.ca_cert_pem, cert, pki.generate_domain_key())
    with pytest.raises(ValueError, match="do not belong together"):
        tls.client_context(mismatched)


# -- against the emulated KusciaAPI's TLS listener ----------------------------------------------


@pytest.mark.parametrize("protocol", ["TLS", "MTLS"])
def test_tls_and_mtls_emulated_verify_the_server_and_answer(emu: KusciaEmulator, protocol: str) -> None:
    node = emu.add_node(f"ok-{protocol.lower()}", protocol=protocol)
    with serve_kusciaapi(node) as address:
        assert _health(address, _material(node), node.token) == (200, _healthy())
        assert _health(address, _material(node), "wrong-token")[0] == 401  # the Token still counts


@pytest.mark.parametrize("protocol", ["NOTLS", "TLS", "MTLS"])
def test_tls_emulated_over_a_socket_pair_as_a_port_forward_hands_one_over(
    emu: KusciaEmulator, protocol: str
) -> None:
    """The kubernetes client's port-forward gives a socket (one end of a socketpair); the relay
    hands the other end to the node. The client side is `for_node` + `wrap_socket` on it."""
    node = emu.add_node(f"pair-{protocol.lower()}", protocol=protocol)
    outs = identity_outputs(pki.load_domain_key(node.key_pem), node.domain_id)
    material = tls.for_node(
        protocol,
        node.domain_id,
        outs["cert_pem"],
        outs["kusciaapi_client_cert_pem"],
        outs["kusciaapi_client_key_pem"],
    )
    assert (material is None) is (protocol == "NOTLS")
    assert material is None or (material.client_key_pem is not None) is (protocol == "MTLS")
    ours, theirs = socket.socketpair()
    server = threading.Thread(target=node.serve_kusciaapi_connection, args=(theirs,), daemon=True)
    server.start()
    stream: socket.socket = tls.wrap_socket(ours, material) if material else ours
    stream.settimeout(5)
    headers = f"Token: {node.token}\r\n" if material else ""
    stream.sendall(
        f"POST /healthZ HTTP/1.1\r\nHost: kusciaapi\r\n{headers}Content-Length: 2\r\n"
        "Connection: close\r\n\r\n{}".encode()
    )
    data = b""
    while chunk := stream.recv(65536):
        data += chunk
    stream.close()
    server.join(5)
    assert data.startswith(b"HTTP/1.1 200") and json.loads(data.partition(b"\r\n\r\n")[2]) == _healthy()


def test_tls_emulated_server_cert_survives_a_restart_not_a_new_key(emu: KusciaEmulator) -> None:
    node = emu.add_node("restarts", protocol="TLS")
    material = _material(node)
    with serve_kusciaapi(node) as address:
        first = node.kusciaapi_server_tls().cert_pem
        node.restart(downtime=0.0)
        assert node.kusciaapi_server_tls().cert_pem != first  # a fresh key and cert at each start
        assert _health(address, material, node.token)[0] == 200
        node.rotate_key()  # the pod now runs another domainKeyData
        with pytest.raises(tls.NodeCaMismatch, match="another domain key"):
            _health(address, material, node.token)


def test_tls_emulated_another_nodes_server_is_refused(emu: KusciaEmulator) -> None:
    ours, theirs = emu.add_node("ours", protocol="TLS"), emu.add_node("theirs", protocol="TLS")
    with (
        serve_kusciaapi(theirs) as address,
        pytest.raises(tls.NodeCaMismatch, match="does not chain to ours's CA"),
    ):
        _health(address, _material(ours), ours.token)


def test_tls_emulated_host_name_is_checked_against_the_sans_kuscia_writes(emu: KusciaEmulator) -> None:
    node = emu.add_node("names", protocol="TLS")
    sans = node.kusciaapi_server_tls()
    assert sans.dns_names == ("kusciaapi", node.instance, "localhost")
    assert sans.ip_addresses == ("127.0.0.1", node.pod_ip)
    with serve_kusciaapi(node) as address:
        for name in ("localhost", "127.0.0.1", node.pod_ip):
            assert _health(address, _material(node, server_name=name), node.token)[0] == 200
        service = f"{node.service}.{node.namespace}.svc"  # not a SAN unless kusciaAPISans adds it
        with pytest.raises(tls.HostnameMismatch, match="does not name"):
            _health(address, _material(node, server_name=service), node.token)


@pytest.mark.parametrize("client_cert", ["missing", "foreign", "utf8-issuer"])
def test_mtls_emulated_refuses_a_missing_or_foreign_client_cert(
    emu: KusciaEmulator, client_cert: str
) -> None:
    node = emu.add_node(f"strict-{client_cert}", protocol="MTLS")
    if client_cert == "missing":
        material = _material(node, protocol="TLS")  # the stack thinks TLS
        match = "node runs protocol MTLS but the stack says TLS|or MTLS, which wants a client certificate"
    elif client_cert == "utf8-issuer":  # Go's exact issuer-name match (the bug the Go test found)
        cert, key = _utf8_issuer_client_cert(node.key_pem, node.domain_id)
        material = _material(node, client_cert_pem=cert, client_key_pem=key)
        match = "closed the connection during the TLS handshake: it most likely refused our client"
    else:
        other = pki.generate_domain_key()
        cert, key = kusciaapi_certs.build_client_cert(other, node.domain_id)  # same CN=<id>, other key
        material = _material(node, client_cert_pem=cert, client_key_pem=key)
        match = "refused our client certificate"
    with serve_kusciaapi(node) as address, pytest.raises(tls.KusciaApiTlsError, match=match) as refused:
        _health(address, material, node.token)
    assert isinstance(refused.value, tls.ClientCertRejected) or "closed the connection" in str(refused.value)


def test_tls_emulated_against_a_notls_node_is_a_protocol_mismatch(emu: KusciaEmulator) -> None:
    node = emu.add_node("plain", protocol="NOTLS")
    with serve_kusciaapi(node) as address, pytest.raises(tls.ProtocolMismatch, match="runs protocol NOTLS"):
        _health(address, _material(node, protocol="TLS"), node.token)


def test_plain_http_to_an_emulated_tls_node_gets_gos_400(emu: KusciaEmulator) -> None:
    node = emu.add_node("https-only", protocol="TLS")
    with serve_kusciaapi(node) as address, socket.create_connection(address, timeout=5) as raw:
        raw.sendall(b"POST /healthZ HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        answer = raw.recv(4096)
    status = int(answer.split()[1])
    assert tls.plain_answer_from_tls_server(status, answer.partition(b"\r\n\r\n")[2])
    assert not tls.plain_answer_from_tls_server(401, b"")


# -- against Go's own crypto/tls, built the way Kuscia builds its listener ----------------------


@pytest.fixture(scope="module")
def go_listener(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_go_program(GO_LISTENER, tmp_path_factory.mktemp("go"), library=None, debian_package="")


@pytest.fixture
def go_kusciaapi(go_listener: Path, tmp_path: Path, rsa_key_pem: str) -> Iterator[Any]:
    """start(protocol) -> address of a Go listener whose CA is `rsa_key_pem` with CN=alice."""
    key_file = tmp_path / "domain.key"
    key_file.write_text(rsa_key_pem)
    started: list[subprocess.Popen[str]] = []

    def start(protocol: str) -> tuple[str, int]:
        args = [str(go_listener), str(key_file), "alice", protocol, "kuscia-autonomy-alice-7d9f-x2"]
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        started.append(proc)
        assert proc.stdout is not None
        return "127.0.0.1", int(proc.stdout.readline())

    yield start
    for proc in started:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(10)


def _stack_material(key_pem: str, protocol: str, **override: Any) -> tls.KusciaApiTls:
    outs = identity_outputs(key_pem, "alice")
    values: dict[str, Any] = {"protocol": protocol, "domain_id": "alice", "ca_cert_pem": outs["cert_pem"]}
    if protocol == "MTLS":
        values |= {
            "client_cert_pem": outs["kusciaapi_client_cert_pem"],
            "client_key_pem": outs["kusciaapi_client_key_pem"],
        }
    return tls.KusciaApiTls(**{**values, **override})


@pytest.mark.parametrize("protocol", ["TLS", "MTLS"])
def test_tls_and_mtls_against_gos_listener_verify_and_answer(
    go_kusciaapi: Any, rsa_key_pem: str, protocol: str
) -> None:
    assert _health(go_kusciaapi(protocol), _stack_material(rsa_key_pem, protocol), "t") == (200, _healthy())


def test_mtls_gos_listener_refuses_a_missing_or_foreign_client_cert(
    go_kusciaapi: Any, rsa_key_pem: str
) -> None:
    address = go_kusciaapi("MTLS")
    with pytest.raises(tls.ClientCertRejected, match="node runs protocol MTLS"):
        _health(address, _stack_material(rsa_key_pem, "TLS"), "t")
    cert, key = kusciaapi_certs.build_client_cert(pki.generate_domain_key(), "alice")
    with pytest.raises(tls.ClientCertRejected, match="refused our client certificate"):
        _health(address, _stack_material(rsa_key_pem, "MTLS", client_cert_pem=cert, client_key_pem=key), "t")
    cert, key = _utf8_issuer_client_cert(rsa_key_pem, "alice")  # what the emulator's name rule copies
    with pytest.raises(tls.ClientCertRejected, match="refused our client certificate"):
        _health(address, _stack_material(rsa_key_pem, "MTLS", client_cert_pem=cert, client_key_pem=key), "t")


def test_tls_gos_listener_of_another_key_is_a_node_ca_mismatch(go_kusciaapi: Any) -> None:
    with pytest.raises(tls.NodeCaMismatch, match="another domain key"):
        _health(go_kusciaapi("TLS"), _stack_material(pki.generate_domain_key(), "TLS"), "t")


def _healthy() -> dict[str, Any]:
    return {"status": {"code": 0, "message": "success", "details": []}, "data": {"ready": True}}

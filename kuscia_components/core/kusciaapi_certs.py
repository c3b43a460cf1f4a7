"""KusciaAPI's TLS names and its MTLS client certificate, minted offline from the domain key (pure).

Kuscia signs `kusciaapi-server.crt` with its CA, and its CA *is* the domain key with a
self-signed `CN=<domainID>` certificate (`ca.crt`, the same shape as `domain.crt`; NOTES §1.4,
§1.5). So whoever holds the domain key can both verify KusciaAPI's server certificate (trust the
domain certificate) and mint a client certificate that KusciaAPI's MTLS listener accepts
(`RequireAndVerifyClientCert` against `ca.crt`; upstream `pkg/utils/tls/cert.go`
BuildServerTLSConfig, `scripts/deploy/init_kusciaapi_client_certs.sh`). The client gets a key of
its own, so handing the client credential to a tool never hands out the domain key.
"""

from __future__ import annotations

import datetime as _dt
import re
import secrets
from typing import TYPE_CHECKING

from kuscia_components.core import pki

if TYPE_CHECKING:
    from cryptography import x509

# `kusciaAPISanDNSName` (upstream cmd/kuscia/modules/kusciaapi.go): the one DNS SAN Kuscia always
# writes into kusciaapi-server.crt besides the pod's hostname (which changes with every pod) and
# `localhost`; the name a client verifies the server against, whatever address it dials.
SERVER_NAME = "kusciaapi"
SERVER_COMMON_NAME = "KusciaAPI"  # kusciaAPIConfig.TLS.CommonName
CLIENT_COMMON_NAME = "KusciaAPIClient"  # init_kusciaapi_client_certs.sh: -subj "/CN=KusciaAPIClient"
# The script signs for 1000 days; a cert that lives in Pulumi state and is only re-minted with the
# identity gets the 10 years Kuscia gives its own server certificate (tls_server_config.go).
CLIENT_VALIDITY_DAYS = 3650
# Go's asn1 writes a string as PrintableString when every character is in this set, else UTF8String
# (encoding/asn1 marshal.go, isPrintable without '*' and '&').
_GO_PRINTABLE = re.compile(r"[A-Za-z0-9'()+,\-./:=? ]*")
# Backdated so a pod whose clock runs behind ours does not see a certificate "not yet valid".
CLIENT_BACKDATE = _dt.timedelta(hours=1)


def build_client_cert(
    domain_key_pem: str, domain_id: str, now: _dt.datetime | None = None
) -> tuple[str, str]:
    """(client cert PEM, client key PKCS#8 PEM): `CN=KusciaAPIClient` on a new RSA-2048 key, issued
    by `CN=<domainID>` and signed with the domain key, as the upstream script makes it with
    `openssl x509 -req -CA ca.crt -CAkey ca.key`. The key is a secret; the cert is not."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_key = pki._private_key(domain_key_pem)
    client_key = rsa.generate_private_key(public_exponent=65537, key_size=pki.MIN_RSA_BITS)
    start = (now or _dt.datetime.now(_dt.UTC)).replace(microsecond=0) - CLIENT_BACKDATE
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CLIENT_COMMON_NAME)]))
        .issuer_name(go_common_name(domain_id))
        .public_key(client_key.public_key())
        .serial_number(secrets.randbits(63) | 1)
        .not_valid_before(start)
        .not_valid_after(start + _dt.timedelta(days=CLIENT_VALIDITY_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
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
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        # Go matches a parent by this key ID first (x509 CertPool.findPotentialParents); Kuscia's
        # ca.crt carries the SubjectKeyIdentifier Go derives from the same public key.
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = client_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem


def go_common_name(common_name: str) -> x509.Name:
    """`CN=<name>` encoded as Go's pkix.Name marshals it. Go finds a certificate's parent by the
    exact bytes of its issuer (x509 CertPool byName[RawIssuer]), so a client certificate must name
    Kuscia's ca.crt in Go's string type: PrintableString for a domain ID, not cryptography's
    default UTF8String, or KusciaAPI answers "certificate signed by unknown authority"."""
    from cryptography import x509
    from cryptography.x509.name import _ASN1Type
    from cryptography.x509.oid import NameOID

    kind = _ASN1Type.PrintableString if _GO_PRINTABLE.fullmatch(common_name) else _ASN1Type.UTF8String
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name, _type=kind)])


def client_cert_matches(client_cert_pem: str, domain_cert: str, domain_id: str) -> bool:
    """Was this client certificate issued by this domain (its name and its key)? One minted for an
    earlier key or another domain ID would be refused by KusciaAPI, so the caller mints anew."""
    from cryptography.hazmat.primitives.asymmetric import padding

    issuer = go_common_name(domain_id)
    try:
        cert = pki.load_certificate(client_cert_pem)
        algorithm = cert.signature_hash_algorithm
        if cert.issuer != issuer or algorithm is None:
            return False
        pki._cert_rsa_public_key(domain_cert).verify(
            cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), algorithm
        )
    except Exception:  # unparseable, not RSA, or a bad signature: not this domain's
        return False
    return True

"""Pure RSA / X.509 helpers for Kuscia domain identities (no Pulumi, no I/O).

Kuscia only ever uses the RSA public key inside a partner's certificate (NOTES §3.1), and
regenerates its own certificate bytes on every restart (§1.5), so comparisons are always by
public key, never by certificate bytes. Error messages never contain key material.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import hashlib
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa

MIN_RSA_BITS = 2048
CERT_VALIDITY_YEARS = 50
TOKEN_LENGTH = 32
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z ]+)-----")


class KeyFormatError(ValueError):
    """A private key that Kuscia cannot use; the message explains the rule, never the key."""


class CertFormatError(ValueError):
    """A certificate that cannot be parsed or holds no RSA key."""


def generate_domain_key(bits: int = MIN_RSA_BITS) -> str:
    """A new RSA key as PKCS#1 PEM, the format Kuscia documents for `domainKeyData`."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return _pkcs1_pem(key)


def load_domain_key(data: str) -> str:
    """Validate a supplied key (PEM or base64 of PEM, PKCS#1 or PKCS#8) -> PKCS#1 PEM."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    rule = (
        "must be an unencrypted RSA private key of at least 2048 bits, as PEM "
        "('-----BEGIN RSA PRIVATE KEY-----' PKCS#1 or '-----BEGIN PRIVATE KEY-----' PKCS#8), "
        "optionally base64-encoded as in kuscia.yaml's domainKeyData"
    )
    pem = _as_pem_text(data)
    if pem is None:
        raise KeyFormatError(f"not a PEM private key: {rule}")
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except TypeError:
        raise KeyFormatError(f"the key is encrypted with a passphrase: {rule}") from None
    except (ValueError, binascii.Error):
        raise KeyFormatError(f"the PEM block does not parse as a private key: {rule}") from None
    except Exception:  # cryptography raises UnsupportedAlgorithm and friends
        raise KeyFormatError(f"unsupported private key: {rule}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyFormatError(f"the key is not RSA ({type(key).__name__.lstrip('_')}): {rule}")
    if key.key_size < MIN_RSA_BITS:
        raise KeyFormatError(f"the RSA key has {key.key_size} bits: {rule}")
    return _pkcs1_pem(key)


def domain_key_data(key_pem: str) -> str:
    """base64 of the PKCS#1 PEM, the value of kuscia.yaml's `domainKeyData`."""
    return base64.b64encode(key_pem.encode()).decode()


def build_domain_cert(key_pem: str, domain_id: str, now: _dt.datetime | None = None) -> str:
    """A self-signed cert of the shape Kuscia generates for a domain (NOTES §1.5), as PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = _private_key(key_pem)
    start = (now or _dt.datetime.now(_dt.timezone.utc)).replace(microsecond=0)
    end = (
        start.replace(year=start.year + CERT_VALIDITY_YEARS)
        if not _is_feb29(start)
        else start + _dt.timedelta(days=365 * CERT_VALIDITY_YEARS + 12)
    )
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain_id)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def kusciaapi_token(key_pem: str, domain_id: str) -> str:
    """The KusciaAPI token Kuscia writes to var/certs/token when it is missing (NOTES §1.9):
    the first 32 characters of base64(RSASSA-PKCS1v15-SHA256(domain key, domainID))."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    signature = _private_key(key_pem).sign(domain_id.encode(), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode()[:TOKEN_LENGTH]


def load_certificate(data: str) -> x509.Certificate:
    """A certificate from PEM, base64 of PEM, or a bare base64 DER body (as KusciaAPI accepts)."""
    from cryptography import x509

    text = (data or "").strip()
    if not text:
        raise CertFormatError("the certificate is empty")
    pem = _as_pem_text(text)
    try:
        if pem is not None:
            return x509.load_pem_x509_certificate(pem.encode())
        return x509.load_der_x509_certificate(base64.b64decode("".join(text.split()), validate=True))
    except (ValueError, binascii.Error):
        raise CertFormatError(
            "not an X.509 certificate: expected PEM ('-----BEGIN CERTIFICATE-----'), base64 of that PEM "
            "(as in a peeringBundle), or a base64 DER body"
        ) from None


def cert_public_key_pem(cert: str) -> str:
    """The PKCS#1 public key PEM inside a certificate (what Kuscia's CDR controller uses)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    public_key = load_certificate(cert).public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise CertFormatError(
            f"the certificate holds a {type(public_key).__name__.lstrip('_')}, not an RSA key"
        )
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1).decode()


def public_key_sha256(cert_or_key_pem: str) -> str:
    """Hex sha256 of the PKCS#1 public key of a certificate or a private key."""
    from cryptography.hazmat.primitives import serialization

    pem = _as_pem_text(cert_or_key_pem) or ""
    if "PRIVATE KEY" in pem:
        public = _private_key(pem).public_key()
        der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    else:
        public_pem = cert_public_key_pem(cert_or_key_pem)
        der = serialization.load_pem_public_key(public_pem.encode()).public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.PKCS1
        )
    return hashlib.sha256(der).hexdigest()


def same_public_key(cert_a: str, cert_b: str) -> bool:
    """True when two certificates (or a cert and a key) carry the same RSA public key."""
    return public_key_sha256(cert_a) == public_key_sha256(cert_b)


def cert_b64(cert_pem: str) -> str:
    """base64 of the PEM, the form Kuscia's Domain.spec.cert and peering bundles carry."""
    return base64.b64encode(cert_pem.encode()).decode()


def _as_pem_text(data: str) -> str | None:
    """PEM text from PEM or base64-of-PEM input; None when it is neither."""
    text = (data or "").strip()
    if _PEM_BLOCK.search(text):
        return text
    try:
        decoded = base64.b64decode("".join(text.split()), validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return decoded.strip() if _PEM_BLOCK.search(decoded) else None


def _private_key(key_pem: str) -> rsa.RSAPrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyFormatError("the domain key must be RSA")
    return key


def _pkcs1_pem(key: rsa.RSAPrivateKey) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def _is_feb29(moment: _dt.datetime) -> bool:
    return moment.month == 2 and moment.day == 29

"""EMULATION ONLY: an emulated node's key, certificate and KusciaAPI token, and Kuscia's cert parsing.

Written from Kuscia's behaviour (shared/kuscia/NOTES.md §1.4, §1.5, §1.9, §4.1) and never from
`kuscia_components.core.pki`, so the project's own code cannot pass a test by agreeing with itself.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

BEGIN, END = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def load_key(pem: str) -> rsa.RSAPrivateKey:
    """PKCS#1 or PKCS#8 PEM, RSA only (what Kuscia's ParseRSAPrivateKeyData accepts, NOTES §1.4)."""
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("key_pem must be an RSA private key (PKCS#1 or PKCS#8 PEM)")
    return key


def private_pem(key: rsa.RSAPrivateKey) -> str:
    """PKCS#1 ("RSA PRIVATE KEY"), the format Kuscia's docs ask for."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def public_pem(public: rsa.RSAPublicKey) -> bytes:
    """PKCS#1 public PEM: what Kuscia puts in a route's tokenConfig and hashes for `pubhash`."""
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)


def pubhash(public: rsa.RSAPublicKey) -> bytes:
    """sha256 of the public PEM (handshake.go calcPublicKeyHash)."""
    return hashlib.sha256(public_pem(public)).digest()


def go_name(common_name: str) -> x509.Name:
    """CN=<name> as Go's pkix.Name marshals it: PrintableString when every character allows it,
    else UTF8String (encoding/asn1 marshal.go). Go compares issuer names byte for byte."""
    printable = all(c.isascii() and (c.isalnum() or c in "'()+,-./:=? ") for c in common_name)
    kind = _ASN1Type.PrintableString if printable else _ASN1Type.UTF8String
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name, _type=kind)])


def kuscia_cert(key: rsa.RSAPrivateKey, domain_id: str, not_before: dt.datetime | None = None) -> str:
    """The shape of Kuscia's generated domain.crt and ca.crt (crypt.go ParseCertWithGenerated, NOTES
    §1.5). Go's CreateCertificate gives a CA template without one a SubjectKeyId (crypto/x509)."""
    name = go_name(domain_id)
    start = (not_before or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=365 * 50))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def not_before(cert_pem: str) -> dt.datetime:
    return x509.load_pem_x509_certificate(cert_pem.encode()).not_valid_before_utc


def kusciaapi_token(key: rsa.RSAPrivateKey, domain_id: str) -> str:
    """First 32 characters of base64(RSASSA-PKCS1v15-SHA256(key, domainID)) (NOTES §1.9)."""
    signature = key.sign(domain_id.encode(), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode()[:32]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# -- Kuscia's getValidCert (domain_service.go) -----------------------------------------------------


def _go_b64decode(text: str) -> bytes | None:
    """Go's base64.StdEncoding.DecodeString: strict alphabet and padding, CR/LF ignored."""
    try:
        return base64.b64decode(text.replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        return None


def _verify_encoded(candidate: str) -> str | None:
    """tls.VerifyEncodeCert: None when `candidate` is base64 of a PEM certificate, else the error."""
    data = _go_b64decode(candidate)
    if data is None:
        return "cert must be encoded with base64"
    try:
        x509.load_pem_x509_certificate(data)
    except ValueError:
        return "cert format is invalid, must be an x509 certificate"
    return None


def normalize_cert(value: str) -> tuple[str, str]:
    """(stored value, error): base64 PEM, raw PEM, a headerless body or base64 twice, as Kuscia
    accepts them; the stored form is always base64 of the PEM. Error text is Kuscia's."""
    text = value.strip("\n")
    first_error = _verify_encoded(text)
    if first_error is None:
        return text, ""
    candidates = [b64(text)]
    if not text.startswith(BEGIN):
        candidates.append(b64(f"{BEGIN}\n{text}\n{END}"))
    decoded = _go_b64decode(text)
    if decoded is not None:
        candidates.append(decoded.decode("utf-8", "replace"))
    for candidate in candidates:
        if _verify_encoded(candidate) is None:
            return candidate, ""
    if "\r" in text:
        return normalize_cert(text.replace("\r", ""))
    return "", first_error


@functools.lru_cache(maxsize=512)
def cert_public_key(stored: str) -> rsa.RSAPublicKey | None:
    """The RSA key inside a Domain's stored cert (base64 PEM); None if empty or not RSA."""
    data = _go_b64decode(stored) if stored else None
    if not data:
        return None
    try:
        public = x509.load_pem_x509_certificate(data).public_key()
    except ValueError:
        return None
    return public if isinstance(public, rsa.RSAPublicKey) else None


def fingerprint(public: rsa.RSAPublicKey | None) -> str:
    return hashlib.sha256(public_pem(public)).hexdigest() if public is not None else ""

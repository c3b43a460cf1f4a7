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
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from concurrent.futures import Future

    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa

MIN_RSA_BITS = 2048
MAX_RSA_BITS = 8192  # Kuscia generates 2048; beyond 8192 each signature gets slow for nothing
RSA_EXPONENT = 65537  # what Kuscia and OpenSSL generate; e=3 invites low-exponent attacks
MAX_PEM_CHARS = 64 * 1024  # an RSA-8192 key is ~6.5 KB of PEM, base64 of it ~9 KB
CERT_VALIDITY_YEARS = 50
TOKEN_LENGTH = 32
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----")
KEY_RULE = (
    "the domain key must be one unencrypted RSA private key of at least 2048 bits and at most 8192, "
    "with public exponent 65537, as PEM "
    "(PKCS#1 '-----BEGIN RSA PRIVATE KEY-----' or PKCS#8 '-----BEGIN PRIVATE KEY-----'), "
    "optionally base64-encoded as in kuscia.yaml's domainKeyData; for example the output of "
    "`openssl genrsa -traditional 2048`"
)
CERT_RULE = (
    "expected one PEM certificate ('-----BEGIN CERTIFICATE-----...'), base64 of that PEM (as in "
    "Domain.spec.cert or a peering bundle's cert), or the base64 body without the BEGIN/END lines"
)


_PREPARED: dict[int, Future[rsa.RSAPrivateKey]] = {}  # bits -> a key being generated (prepare_domain_key)


class KeyFormatError(ValueError):
    """A private key that Kuscia cannot use; the message explains the rule, never the key."""


class CertFormatError(ValueError):
    """A certificate that cannot be parsed or holds no RSA key."""


def generate_domain_key(bits: int = MIN_RSA_BITS) -> str:
    """A new RSA key as PKCS#1 PEM, the format Kuscia documents for `domainKeyData`."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    prepared = _PREPARED.pop(bits, None)  # each prepared key is handed out once
    key = prepared.result() if prepared else rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return _remember(_pkcs1_pem(key), key)


def prepare_domain_key(bits: int = MIN_RSA_BITS) -> None:
    """Start generating the next key in a background thread, for a process that will need one
    soon (`render`): OpenSSL's RSA generation runs without the GIL, so it overlaps the imports."""
    from concurrent.futures import Future

    # Imported on this thread, not the generator's; and the certificate and PEM encoding that
    # follow the key need these two, which would otherwise load on the program's critical path.
    from cryptography import x509  # noqa: F401
    from cryptography.hazmat.primitives import serialization  # noqa: F401
    from cryptography.hazmat.primitives.asymmetric import rsa

    if bits in _PREPARED:
        return
    future: Future[rsa.RSAPrivateKey] = Future()

    def generate() -> None:
        try:
            future.set_result(rsa.generate_private_key(public_exponent=65537, key_size=bits))
        except BaseException as err:  # handed to whoever takes the key
            future.set_exception(err)

    _PREPARED[bits] = future
    threading.Thread(target=generate, name="prepare-domain-key", daemon=True).start()


def load_domain_key(data: str) -> str:
    """Validate a supplied key (PEM or base64 of PEM, PKCS#1 or PKCS#8) -> PKCS#1 PEM."""
    key = _private_key(data)
    return _remember(_pkcs1_pem(key), key)


def domain_key_data(key_pem: str) -> str:
    """base64 of the PKCS#1 PEM, the value of kuscia.yaml's `domainKeyData`."""
    return base64.b64encode(key_pem.encode()).decode()


def build_domain_cert(key_pem: str, domain_id: str, now: _dt.datetime | None = None) -> str:
    """A self-signed cert of the shape Kuscia generates for a domain (NOTES §1.5), as PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = _private_key(key_pem)
    start = (now or _dt.datetime.now(_dt.UTC)).replace(microsecond=0)
    end = _add_years(start, CERT_VALIDITY_YEARS)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain_id)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(end)
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
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        # Go's CreateCertificate adds this to every CA template without one (SHA-1, RFC 5280 §4.2.1.2)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
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
    """A certificate in any form KusciaAPI's getValidCert accepts: PEM, base64 of PEM (also twice),
    or the bare base64 body without the BEGIN/END lines (with or without line breaks, CRLF too)."""
    from cryptography import x509

    text = (data or "").replace("\r", "").strip()
    if not text:
        raise CertFormatError(f"the certificate is empty: {CERT_RULE}")
    if len(text) > MAX_PEM_CHARS:
        raise CertFormatError(f"the certificate is longer than {MAX_PEM_CHARS} characters: {CERT_RULE}")
    decoded = _unwrap_base64(text, max_decodes=2)
    if isinstance(decoded, str):
        _one_pem_block(decoded, "certificate", CertFormatError, CERT_RULE)
    try:
        if isinstance(decoded, str):
            return x509.load_pem_x509_certificate(decoded.encode())
        if decoded is not None:
            return x509.load_der_x509_certificate(decoded)
    except ValueError:
        pass
    raise CertFormatError(f"not an X.509 certificate: {CERT_RULE}")


def cert_public_key_pem(cert: str) -> str:
    """The PKCS#1 public key PEM inside a partner's certificate (what Kuscia's CDR controller uses);
    CertFormatError unless it is RSA of MIN_RSA_BITS..MAX_RSA_BITS with exponent 65537."""
    from cryptography.hazmat.primitives import serialization

    public_key = _cert_rsa_public_key(cert)
    problem = _rsa_strength(public_key.key_size, public_key.public_numbers().e)
    if problem:
        raise CertFormatError(
            f"the certificate's RSA key {problem}: a partner's domain certificate must carry an RSA key of "
            f"{MIN_RSA_BITS} to {MAX_RSA_BITS} bits with public exponent {RSA_EXPONENT}, as Kuscia generates"
        )
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1).decode()


def public_key_sha256(cert_or_key_pem: str) -> str:
    """Hex sha256 of the DER PKCS#1 public key of a certificate (any form load_certificate takes)
    or of a private key: a fingerprint that survives cert regeneration and key re-encoding."""
    from cryptography.hazmat.primitives import serialization

    pem = _as_pem_text(cert_or_key_pem) or ""
    if "PRIVATE KEY-----" in pem:
        public_key = _private_key(pem).public_key()
    else:
        public_key = _cert_rsa_public_key(cert_or_key_pem)
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    return hashlib.sha256(der).hexdigest()


def cert_domain_problem(cert: str, domain_id: str) -> str | None:
    """Why a certificate is not partner `domain_id`'s, or None: Kuscia issues a domain's certificate
    with CN=<domainID> (NOTES §1.5), so another CN is another domain's certificate."""
    from cryptography.x509.oid import NameOID

    names = load_certificate(cert).subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) > 1:
        # Go (crypto/x509/pkix Name.FillFromRDNSequence: each CN overwrites the last) reads the
        # last CN, other readers the first: which domain the certificate names would depend on
        # who reads it, and Kuscia only ever issues one.
        shown = ", ".join(repr(str(n.value)[:64]) for n in names[:4])
        return (
            f"the certificate's subject has {len(names)} CNs ({shown}): a Kuscia domain certificate has "
            "exactly one, its domain ID, and with several Go reads the last and other tools the first; "
            f"paste {domain_id[:64]}'s own peeringBundle cert"
        )
    common_name = str(names[0].value) if names else None
    if common_name == domain_id:
        return None
    shown = "no CN" if common_name is None else f"CN {common_name[:64]!r}"
    return (
        f"the certificate has {shown} but the partner's domainId is {domain_id!r}: a Kuscia domain "
        "certificate's CN is its domain ID, so this one belongs to another domain (paste that "
        "partner's own peeringBundle cert)"
    )


def same_public_key(cert_a: str, cert_b: str) -> bool:
    """True when two certificates (or a cert and a key) carry the same RSA public key."""
    return public_key_sha256(cert_a) == public_key_sha256(cert_b)


def cert_b64(cert_pem: str) -> str:
    """base64 of the PEM, the form Kuscia's Domain.spec.cert and peering bundles carry."""
    return base64.b64encode(cert_pem.encode()).decode()


def _as_pem_text(data: str) -> str | None:
    """PEM text from PEM or base64-of-PEM input; None when it is neither."""
    decoded = _unwrap_base64((data or "").replace("\r", "").strip(), max_decodes=1)
    return decoded if isinstance(decoded, str) else None


def _cert_rsa_public_key(cert: str) -> rsa.RSAPublicKey:
    from cryptography.hazmat.primitives.asymmetric import rsa

    public_key = load_certificate(cert).public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise CertFormatError(
            f"the certificate holds a {type(public_key).__name__.lstrip('_')}, not an RSA key: "
            "Kuscia domain certificates carry the domain's RSA key"
        )
    return public_key


def _unwrap_base64(text: str, max_decodes: int) -> str | bytes | None:
    """PEM text (str) once a PEM block shows up, raw bytes (DER) when base64 yields binary, None
    when the text is neither PEM nor standard base64 within `max_decodes` decodings."""
    for _ in range(max_decodes + 1):
        if _PEM_BLOCK.search(text):
            return text.strip()
        try:
            raw = base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            return None
        try:
            text = raw.decode("ascii").replace("\r", "")
        except UnicodeDecodeError:
            return raw if raw else None
    return None


# Parsing and checking an RSA key costs a signature (~2 ms at 2048 bits, ~100 ms at 8192): the
# cert and the token reuse the object of a key this process just generated or checked instead of
# parsing its PEM again. A few entries.
_KNOWN_KEYS: dict[str, rsa.RSAPrivateKey] = {}
_KNOWN_KEYS_MAX = 4


def _remember(pem: str, key: rsa.RSAPrivateKey) -> str:
    if key.key_size < MIN_RSA_BITS:  # a short test key must still be refused when loaded
        return pem
    if len(_KNOWN_KEYS) >= _KNOWN_KEYS_MAX:
        _KNOWN_KEYS.pop(next(iter(_KNOWN_KEYS)))
    _KNOWN_KEYS[pem] = key
    return pem


def _private_key(data: str) -> rsa.RSAPrivateKey:
    """Parse and check a domain key; every failure is a KeyFormatError naming the rule only."""
    known = _KNOWN_KEYS.get(data)
    if known is not None:
        return known
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    if len(data or "") > MAX_PEM_CHARS:
        raise KeyFormatError(f"the key is longer than {MAX_PEM_CHARS} characters: {KEY_RULE}")
    pem = _as_pem_text(data)
    if pem is None:
        raise KeyFormatError(f"not a PEM private key: {KEY_RULE}")
    _one_pem_block(pem, "key", KeyFormatError, KEY_RULE)
    try:
        # Unchecked: size and exponent first, then _inconsistency, never OpenSSL's primality tests.
        key = serialization.load_pem_private_key(
            pem.encode(), password=None, unsafe_skip_rsa_key_validation=True
        )
    except TypeError:
        raise KeyFormatError(f"the key is encrypted with a passphrase: {KEY_RULE}") from None
    except ValueError:
        raise KeyFormatError(f"the PEM block does not parse as a private key: {KEY_RULE}") from None
    except Exception:  # cryptography raises UnsupportedAlgorithm and friends
        raise KeyFormatError(f"unsupported private key: {KEY_RULE}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyFormatError(f"the key is not RSA ({type(key).__name__.lstrip('_')}): {KEY_RULE}")
    problem = _rsa_strength(key.key_size, key.public_key().public_numbers().e)
    if problem:
        raise KeyFormatError(f"the RSA key {problem}: {KEY_RULE}")
    problem = _inconsistency(key)
    if problem:
        raise KeyFormatError(f"the RSA key's numbers are inconsistent (a damaged key: {problem}): {KEY_RULE}")
    return key


def _inconsistency(key: rsa.RSAPrivateKey) -> str | None:
    """What is wrong with the key's numbers, checked by arithmetic, or None.

    OpenSSL's own check (what loading without `unsafe_skip_rsa_key_validation` runs) also tests
    p and q for primality, which costs seconds at 8192 bits and defends against a key crafted by
    someone else. This key is the operator's own: whoever could craft a key with a composite
    factor could as well publish the key, so primality protects nothing here. What does happen to
    one's own key is damage (a truncated or edited file, a field swapped, a bit flipped), and the
    relations below catch that: n = p*q, d an inverse of e modulo p-1 and q-1 (so modulo their
    lcm), the CRT exponents and coefficient derived from them, and a signature that verifies.
    Partners' certificates carry public keys only, so nothing of theirs is checked here.
    """
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    numbers = key.private_numbers()
    n, e = numbers.public_numbers.n, numbers.public_numbers.e
    p, q, d = numbers.p, numbers.q, numbers.d
    if min(p, q) < 3 or p == q:
        return "the prime factors are too small or equal"
    if p * q != n:
        return "n is not p*q"
    if not 0 < d < n or (e * d) % (p - 1) != 1 or (e * d) % (q - 1) != 1:
        return "d is not the inverse of e"
    if numbers.dmp1 != d % (p - 1) or numbers.dmq1 != d % (q - 1):
        return "the CRT exponents do not match d"
    if (numbers.iqmp * q) % p != 1:
        return "the CRT coefficient is not q's inverse modulo p"
    message = b"kuscia domain key self-check"
    try:
        signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        key.public_key().verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return "a signature made with it does not verify"
    return None


def _rsa_strength(bits: int, exponent: int) -> str | None:
    if bits < MIN_RSA_BITS:
        return f"has {bits} bits, fewer than {MIN_RSA_BITS}"
    if bits > MAX_RSA_BITS:
        return f"has {bits} bits, more than {MAX_RSA_BITS}"
    if exponent != RSA_EXPONENT:
        shown = exponent if exponent < 10**9 else f"of {exponent.bit_length()} bits"
        return f"has public exponent {shown}, not {RSA_EXPONENT}"
    return None


def _one_pem_block(pem: str, what: str, error: type[ValueError], rule: str) -> None:
    """A second block would be silently ignored by the parser: refuse it instead."""
    count = len(_PEM_BLOCK.findall(pem))
    if count > 1:
        raise error(f"the {what} holds {count} PEM blocks, so all but the first would be ignored: {rule}")


def _pkcs1_pem(key: rsa.RSAPrivateKey) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def _add_years(moment: _dt.datetime, years: int) -> _dt.datetime:
    """Go's time.AddDate(years, 0, 0): Feb 29 in a non-leap target year rolls to Mar 1."""
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:
        return moment.replace(year=moment.year + years, month=3, day=1)

"""pki: domain key formats, the Kuscia-shaped certificate, the KusciaAPI token, cert forms."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID, SignatureAlgorithmOID

from kuscia_components.core import pki
from tests.helpers import self_signed_cert

# TEST ONLY: a throwaway key committed so the token has a golden value (see the file's header).
FIXED_KEY_FILE = Path(__file__).parent / "fixtures" / "test_only_domain_key.pem"
# Computed once on the command line, exactly as upstream scripts/deploy/gen_kusciaapi_token.sh does:
#   echo "$(base64 -w0 test_only_domain_key.pem)" | base64 -d > /tmp/domain_key
#   echo -n alice | openssl dgst -sha256 -sign /tmp/domain_key -out sig; base64 < sig | head -c 32
GOLDEN_TOKENS = {"alice": "OAMVXV7mVmLIx+qhf5qoyU4duP4vBSDf", "bob": "GKooML+qPd/MqbDM/vaZOu7Wr2cwEUon"}
NOW = dt.datetime(2026, 11, 25, 8, 0, 7, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def fixed_key() -> str:
    return FIXED_KEY_FILE.read_text()


@pytest.fixture(scope="module")
def key_pem() -> str:
    return pki.generate_domain_key()


@pytest.fixture(scope="module")
def cert_pem(key_pem: str) -> str:
    return pki.build_domain_cert(key_pem, "alice", NOW)


def _private(key_pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(key_pem.encode(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def _pkcs8(key_pem: str, encryption: serialization.KeySerializationEncryption | None = None) -> str:
    return (
        _private(key_pem)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            encryption or serialization.NoEncryption(),
        )
        .decode()
    )


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _body(pem: str) -> str:
    return "\n".join(line for line in pem.splitlines() if line and not line.startswith("-----"))


def _ec_key_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


# -- keys ---------------------------------------------------------------------------------------


def test_generated_key_is_pkcs1_rsa_2048(key_pem: str) -> None:
    assert key_pem.startswith("-----BEGIN RSA PRIVATE KEY-----\n")
    key = _private(key_pem)
    assert key.key_size == 2048 and key.private_numbers().public_numbers.e == 65537
    assert pki.generate_domain_key() != key_pem


def test_every_accepted_key_form_normalizes_to_the_same_pkcs1_pem(key_pem: str) -> None:
    pkcs8 = _pkcs8(key_pem)
    forms = {
        "pkcs1": key_pem,
        "pkcs8": pkcs8,
        "base64 pkcs1 (domainKeyData)": _b64(key_pem),
        "base64 pkcs8 (openssl 3 genrsa | base64)": _b64(pkcs8),
        "wrapped base64": base64.encodebytes(pkcs8.encode()).decode(),
        "crlf": key_pem.replace("\n", "\r\n"),
        "surrounding blanks": f"\n  {pkcs8}\n\n",
    }
    for form, data in forms.items():
        assert pki.load_domain_key(data) == key_pem, form


def test_labelled_fixture_key_loads_despite_its_header(fixed_key: str) -> None:
    assert fixed_key.startswith("TEST ONLY")
    assert pki.load_domain_key(fixed_key).startswith("-----BEGIN RSA PRIVATE KEY-----")


def test_a_4096_bit_key_is_accepted() -> None:
    big = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    pem = big.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    assert _private(pki.load_domain_key(pem)).key_size == 4096


def _unusable_keys(key_pem: str) -> dict[str, tuple[str, str]]:
    """kind -> (data, what the message must say about it)."""
    pkcs1_body = _body(key_pem).splitlines()
    truncated = "\n".join(
        ["-----BEGIN RSA PRIVATE KEY-----", *pkcs1_body[:5], "-----END RSA PRIVATE KEY-----"]
    )
    return {
        "ec": (_ec_key_pem(), "not RSA"),
        "rsa1024": (pki.generate_domain_key(1024), "1024 bits"),
        "base64 rsa1024": (_b64(pki.generate_domain_key(1024)), "1024 bits"),
        "encrypted": (_pkcs8(key_pem, serialization.BestAvailableEncryption(b"pw")), "passphrase"),
        "certificate": (pki.build_domain_cert(key_pem, "alice"), "does not parse"),
        "truncated": (truncated, "does not parse"),
        "garbage": ("definitely-not-a-key-but-secret-material", "not a PEM private key"),
        "base64 garbage": (_b64("secret-material-that-is-no-key"), "not a PEM private key"),
        "bare body": ("\n".join(pkcs1_body), "not a PEM private key"),
        "empty": ("", "not a PEM private key"),
    }


def test_unusable_keys_are_rejected_with_the_rule_and_without_echoing_them(key_pem: str) -> None:
    for kind, (data, reason) in _unusable_keys(key_pem).items():
        with pytest.raises(pki.KeyFormatError) as err:
            pki.load_domain_key(data)
        message = str(err.value)
        assert isinstance(err.value, ValueError)
        assert reason in message, kind
        for rule in ("RSA", "at least 2048 bits", "PKCS#1", "PKCS#8", "base64", "openssl genrsa"):
            assert rule in message, (kind, rule)
        secret_lines = [line for line in _body(data).splitlines() if len(line) > 8] + [data.strip()]
        assert not any(line in message for line in secret_lines if line), kind
        # no chained cryptography exception either (its text is out of our control)
        assert err.value.__cause__ is None, kind
        assert err.value.__context__ is None or err.value.__suppress_context__, kind


def test_builders_reject_bad_keys_with_key_format_error() -> None:
    for build in (lambda k: pki.build_domain_cert(k, "alice"), lambda k: pki.kusciaapi_token(k, "alice")):
        with pytest.raises(pki.KeyFormatError, match="not RSA"):
            build(_ec_key_pem())


def test_domain_key_data_is_standard_base64_of_the_pkcs1_pem(key_pem: str) -> None:
    data = pki.domain_key_data(key_pem)
    assert "\n" not in data
    assert base64.b64decode(data, validate=True).decode() == key_pem
    assert pki.load_domain_key(data) == key_pem


# -- the certificate ----------------------------------------------------------------------------


def test_cert_has_the_shape_kuscia_generates(key_pem: str, cert_pem: str) -> None:
    """NOTES §1.5 / crypt.go ParseCertWithGenerated, field by field."""
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    cn = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alice")])
    assert cert.version == x509.Version.v3
    assert cert.subject == cn and cert.issuer == cn
    assert cert.serial_number == 1
    assert cert.signature_algorithm_oid == SignatureAlgorithmOID.RSA_WITH_SHA256
    assert cert.not_valid_before_utc == NOW
    assert cert.not_valid_after_utc == NOW.replace(year=2076)

    ext = cert.extensions
    basic = ext.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca is True and basic.value.path_length is None
    usage = ext.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    flags = {
        name
        for name in (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
        )
        if getattr(usage.value, name)
    }
    assert flags == {"digital_signature", "key_cert_sign"}
    ext_usage = ext.get_extension_for_class(x509.ExtendedKeyUsage)
    assert not ext_usage.critical
    assert list(ext_usage.value) == [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]
    # Go adds a SubjectKeyIdentifier to CA templates; no SANs, no AuthorityKeyIdentifier.
    assert ext.get_extension_for_class(x509.SubjectKeyIdentifier).value == (
        x509.SubjectKeyIdentifier.from_public_key(_private(key_pem).public_key())
    )
    assert {e.oid for e in ext} == {
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
    }


def test_cert_is_self_signed_by_the_domain_key(key_pem: str, cert_pem: str) -> None:
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    public = cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    assert public.public_numbers() == _private(key_pem).public_key().public_numbers()
    assert cert.signature_hash_algorithm is not None
    public.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), hashes.SHA256())
    cert.verify_directly_issued_by(cert)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
def test_openssl_accepts_the_cert_as_a_self_signed_ca(key_pem: str, tmp_path: Path) -> None:
    path = tmp_path / "domain.crt"
    path.write_text(pki.build_domain_cert(key_pem, "alice"))  # valid from now: openssl checks dates
    result = subprocess.run(
        ["openssl", "verify", "-CAfile", str(path), "-purpose", "sslserver", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_cert_validity_starts_now_without_backdating(key_pem: str) -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    cert = x509.load_pem_x509_certificate(pki.build_domain_cert(key_pem, "bob").encode())
    after = dt.datetime.now(dt.UTC)
    assert before <= cert.not_valid_before_utc <= after
    assert cert.not_valid_after_utc == cert.not_valid_before_utc.replace(
        year=cert.not_valid_before_utc.year + 50
    )


def test_cert_validity_from_feb_29_rolls_to_mar_1_like_go_add_date(key_pem: str) -> None:
    leap = dt.datetime(2028, 2, 29, 12, 0, tzinfo=dt.UTC)
    cert = x509.load_pem_x509_certificate(pki.build_domain_cert(key_pem, "alice", leap).encode())
    assert cert.not_valid_after_utc == dt.datetime(2078, 3, 1, 12, 0, tzinfo=dt.UTC)


def test_cert_is_regenerated_with_new_bytes_but_the_same_public_key(key_pem: str, cert_pem: str) -> None:
    later = pki.build_domain_cert(key_pem, "alice", NOW + dt.timedelta(days=1))
    assert later != cert_pem and pki.same_public_key(later, cert_pem)
    assert pki.same_public_key(cert_pem, key_pem) and pki.same_public_key(key_pem, pki.cert_b64(later))
    assert not pki.same_public_key(cert_pem, pki.build_domain_cert(pki.generate_domain_key(), "alice", NOW))


# -- the KusciaAPI token --------------------------------------------------------------------------


def test_token_of_the_fixed_test_key_matches_the_golden_openssl_values(fixed_key: str) -> None:
    for domain_id, golden in GOLDEN_TOKENS.items():
        assert pki.kusciaapi_token(fixed_key, domain_id) == golden


def test_token_follows_the_notes_formula_computed_independently(fixed_key: str, key_pem: str) -> None:
    """First 32 chars of standard base64(RSASSA-PKCS1-v1_5(SHA-256(domainID)))."""
    from cryptography.hazmat.primitives.asymmetric import utils

    for pem in (fixed_key, key_pem):
        for domain_id in ("alice", "bob", "a-0"):
            digest = hashlib.sha256(domain_id.encode()).digest()
            signature = _private(pki.load_domain_key(pem)).sign(
                digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256())
            )
            assert pki.kusciaapi_token(pem, domain_id) == base64.standard_b64encode(signature).decode()[:32]


def test_token_depends_only_on_the_key_and_domain_id(key_pem: str) -> None:
    token = pki.kusciaapi_token(key_pem, "alice")
    assert len(token) == pki.TOKEN_LENGTH == 32
    assert pki.kusciaapi_token(_pkcs8(key_pem), "alice") == token
    assert pki.kusciaapi_token(pki.domain_key_data(key_pem), "alice") == token
    assert pki.kusciaapi_token(key_pem, "bob") != token
    assert pki.kusciaapi_token(pki.generate_domain_key(), "alice") != token


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
def test_token_matches_upstream_script_steps_run_with_openssl(key_pem: str, tmp_path: Path) -> None:
    """gen_kusciaapi_token.sh: base64 -d domainKeyData; echo -n ID | openssl dgst -sha256 -sign."""
    key_file = tmp_path / "domain_key"
    key_file.write_bytes(base64.b64decode(pki.domain_key_data(_pkcs8(key_pem))))
    signature = subprocess.run(
        ["openssl", "dgst", "-sha256", "-sign", str(key_file)],
        input=b"alice",
        capture_output=True,
        check=True,
    ).stdout
    assert pki.kusciaapi_token(key_pem, "alice") == base64.b64encode(signature).decode()[:32]


# -- certificates in every form partners paste ---------------------------------------------------------


def test_certificates_load_in_every_form_kusciaapi_accepts(cert_pem: str) -> None:
    """The forms of getValidCert (domain_service.go) and its test."""
    body = _body(cert_pem)
    forms = {
        "pem": cert_pem,
        "base64 pem (Domain.spec.cert)": pki.cert_b64(cert_pem),
        "base64 twice": _b64(pki.cert_b64(cert_pem)),
        "headerless body": body,
        "headerless body on one line": body.replace("\n", ""),
        "crlf": cert_pem.replace("\n", "\r\n"),
        "surrounding newlines": f"\n\n{cert_pem}\n",
    }
    expected = x509.load_pem_x509_certificate(cert_pem.encode())
    for form, data in forms.items():
        assert pki.load_certificate(data) == expected, form


@pytest.mark.parametrize(
    "data",
    [
        "",
        "   ",
        "bm90IGEgY2VydA==",
        "not base64 at all!",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
    ],
)
def test_unparseable_certificates_raise_cert_format_error(data: str) -> None:
    with pytest.raises(pki.CertFormatError) as err:
        pki.load_certificate(data)
    assert isinstance(err.value, ValueError)
    assert "-----BEGIN CERTIFICATE-----" in str(err.value) and "base64" in str(err.value)


def test_a_private_key_is_not_taken_for_a_certificate(key_pem: str) -> None:
    with pytest.raises(pki.CertFormatError) as err:
        pki.load_certificate(key_pem)
    assert _body(key_pem).splitlines()[1] not in str(err.value)


def test_a_non_rsa_certificate_is_rejected_by_public_key_helpers() -> None:
    cert = self_signed_cert(ec.generate_private_key(ec.SECP256R1()), "carol", not_before=NOW)
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    assert pki.load_certificate(pem) == cert
    for helper in (pki.cert_public_key_pem, pki.public_key_sha256):
        with pytest.raises(pki.CertFormatError, match="not an RSA key"):
            helper(pem)


# -- public-key helpers ---------------------------------------------------------------------------


def test_cert_public_key_pem_is_pkcs1(key_pem: str, cert_pem: str) -> None:
    public_pem = pki.cert_public_key_pem(pki.cert_b64(cert_pem))
    assert public_pem.startswith("-----BEGIN RSA PUBLIC KEY-----")
    expected = (
        _private(key_pem)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
    )
    assert public_pem.encode() == expected


def test_public_key_fingerprint_is_the_same_for_every_form_of_key_and_cert(
    key_pem: str, cert_pem: str
) -> None:
    der = (
        _private(key_pem)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    )
    expected = hashlib.sha256(der).hexdigest()
    forms = (
        key_pem,
        _pkcs8(key_pem),
        pki.domain_key_data(key_pem),
        cert_pem,
        pki.cert_b64(cert_pem),
        _body(cert_pem),
    )
    assert {pki.public_key_sha256(form) for form in forms} == {expected}


def test_cert_b64_round_trips(cert_pem: str) -> None:
    assert base64.b64decode(pki.cert_b64(cert_pem)).decode() == cert_pem


# -- damaged own keys: caught by arithmetic, not by OpenSSL's primality tests --------------------


def _der_integer(value: int) -> bytes:
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")  # a leading 0: never negative
    return b"\x02" + _der_length(len(body)) + body


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _pkcs1_pem_of(*fields: int) -> str:
    """A PKCS#1 RSAPrivateKey (RFC 8017 A.1.2) holding exactly these numbers, damaged or not:
    version, n, e, d, p, q, dP, dQ, qInv."""
    body = b"".join(_der_integer(value) for value in fields)
    der = b"\x30" + _der_length(len(body)) + body
    raw = base64.b64encode(der).decode()
    text = "".join(raw[i : i + 64] + "\n" for i in range(0, len(raw), 64))
    return f"-----BEGIN RSA PRIVATE KEY-----\n{text}-----END RSA PRIVATE KEY-----\n"


def _fields(key_pem: str) -> list[int]:
    numbers = serialization.load_pem_private_key(
        key_pem.encode(), None, unsafe_skip_rsa_key_validation=True
    ).private_numbers()  # type: ignore[union-attr]
    public = numbers.public_numbers
    return [0, public.n, public.e, numbers.d, numbers.p, numbers.q, numbers.dmp1, numbers.dmq1, numbers.iqmp]


def _damaged(key_pem: str) -> dict[str, list[int]]:
    _, n, e, d, p, q, dp, dq, qi = _fields(key_pem)
    other_q = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_numbers().q
    return {
        "d + 2": [0, n, e, d + 2, p, q, dp, dq, qi],
        "dP + 2": [0, n, e, d, p, q, dp + 2, dq, qi],
        "dQ + 2": [0, n, e, d, p, q, dp, dq + 2, qi],
        "qInv + 1": [0, n, e, d, p, q, dp, dq, qi + 1],
        "q of another key": [0, n, e, d, p, other_q, dp, dq, qi],
        "p and q swapped": [0, n, e, d, q, p, dp, dq, qi],  # dP, dQ, qInv belong to the old order
        "p = q": [0, n, e, d, p, p, dp, dp, qi],
        "p = 1": [0, n, e, d, 1, n, 0, 0, 0],
    }


@pytest.mark.parametrize(
    "damage",
    ["d + 2", "dP + 2", "dQ + 2", "qInv + 1", "q of another key", "p and q swapped", "p = q", "p = 1"],
)
def test_a_damaged_own_key_is_refused_as_inconsistent(key_pem: str, damage: str) -> None:
    pem = _pkcs1_pem_of(*_damaged(key_pem)[damage])
    with pytest.raises(pki.KeyFormatError, match="numbers are inconsistent") as raised:
        pki.load_domain_key(pem)
    assert pem.splitlines()[1][:20] not in str(raised.value)


def test_the_der_builder_reproduces_a_good_key(key_pem: str) -> None:
    """The damaged keys above differ from a good one only in the field named."""
    pem = _pkcs1_pem_of(*_fields(key_pem))
    assert pem == key_pem and pki.load_domain_key(pem) == key_pem


def test_loading_an_own_key_never_runs_openssls_slow_check(
    key_pem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OpenSSL's check tests p and q for primality: seconds for RSA-8192 (review #10 finding 3),
    once per party. Every parse must skip it; the arithmetic above replaces it."""
    fresh = _pkcs8(key_pem)  # a form not in pki's cache of known keys
    real = serialization.load_pem_private_key
    checked: list[bool] = []

    def spy(data: bytes, password: bytes | None, **kwargs: object) -> object:
        checked.append(not kwargs.get("unsafe_skip_rsa_key_validation", False))
        return real(data, password, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(serialization, "load_pem_private_key", spy)
    assert pki.load_domain_key(fresh) == key_pem
    assert checked and not any(checked)

"""Domain identity: key formats, Kuscia-shaped certificate, KusciaAPI token, provider rules."""

from __future__ import annotations

import base64
import datetime as dt
import subprocess
import tempfile
from pathlib import Path

import dill
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kuscia_components import pki
from kuscia_components.identity import DomainIdentityProvider


def test_generated_key_is_pkcs1_rsa_2048(rsa_key_pem: str) -> None:
    assert rsa_key_pem.startswith("-----BEGIN RSA PRIVATE KEY-----")
    key = serialization.load_pem_private_key(rsa_key_pem.encode(), None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048


def test_pkcs8_and_base64_keys_are_accepted_and_written_as_pkcs1(rsa_key_pem: str) -> None:
    key = serialization.load_pem_private_key(rsa_key_pem.encode(), None)
    pkcs8 = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    for supplied in (pkcs8, base64.b64encode(pkcs8.encode()).decode(), rsa_key_pem):
        assert pki.load_domain_key(supplied) == rsa_key_pem


@pytest.mark.parametrize("kind", ["ec", "rsa1024", "garbage", "encrypted", "certificate"])
def test_unusable_keys_are_rejected_without_echoing_them(kind: str, rsa_key_pem: str) -> None:
    if kind == "ec":
        key = ec.generate_private_key(ec.SECP256R1())
        data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode()  # fmt: skip
    elif kind == "rsa1024":
        data = pki.generate_domain_key(1024)
    elif kind == "encrypted":
        key = serialization.load_pem_private_key(rsa_key_pem.encode(), None)
        data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.BestAvailableEncryption(b"pw")).decode()  # fmt: skip
    elif kind == "certificate":
        data = pki.build_domain_cert(rsa_key_pem, "alice")
    else:
        data = "definitely-not-a-key-but-secret-material"
    with pytest.raises(pki.KeyFormatError) as err:
        pki.load_domain_key(data)
    message = str(err.value)
    assert "at least 2048 bits" in message
    body = [line for line in data.splitlines() if line and not line.startswith("-----")]
    assert all(line not in message for line in body)


def test_cert_has_the_shape_kuscia_generates(rsa_key_pem: str) -> None:
    now = dt.datetime(2026, 11, 25, 8, 0, tzinfo=dt.timezone.utc)
    cert = x509.load_pem_x509_certificate(pki.build_domain_cert(rsa_key_pem, "alice", now).encode())
    cn = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alice")])
    assert cert.subject == cn and cert.issuer == cn
    assert cert.serial_number == 1
    assert cert.signature_hash_algorithm is not None and cert.signature_hash_algorithm.name == "sha256"
    assert cert.not_valid_before_utc == now
    assert cert.not_valid_after_utc == now.replace(year=2076)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_cert_sign and not usage.key_encipherment
    ext_usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(ext_usage) == {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH}
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    # self-signed with the domain key
    public = cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), hashes.SHA256())
    assert pki.same_public_key(pki.build_domain_cert(rsa_key_pem, "alice", now), rsa_key_pem)


def test_token_matches_kuscias_script_run_with_openssl(rsa_key_pem: str) -> None:
    """gen_kusciaapi_token.sh: echo -n ID | openssl dgst -sha256 -sign key | base64 | head -c 32."""
    with tempfile.TemporaryDirectory() as tmp:
        key_file = Path(tmp) / "domain.key"
        key_file.write_text(rsa_key_pem)
        signature = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(key_file)],
            input=b"alice",
            capture_output=True,
            check=True,
        ).stdout
    expected = base64.b64encode(signature).decode()[:32]
    assert pki.kusciaapi_token(rsa_key_pem, "alice") == expected
    assert len(expected) == 32 and pki.kusciaapi_token(rsa_key_pem, "bob") != expected


def test_certificates_load_from_pem_base64_and_headerless_body(rsa_key_pem: str) -> None:
    pem = pki.build_domain_cert(rsa_key_pem, "alice")
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    for form in (pem, pki.cert_b64(pem), body):
        assert pki.same_public_key(form, pem)
    with pytest.raises(pki.CertFormatError):
        pki.load_certificate("bm90IGEgY2VydA==")


def test_public_key_comparison_ignores_cert_bytes(rsa_key_pem: str) -> None:
    first = pki.build_domain_cert(rsa_key_pem, "alice", dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc))
    second = pki.build_domain_cert(rsa_key_pem, "alice")
    assert first != second and pki.same_public_key(first, second)
    assert not pki.same_public_key(first, pki.build_domain_cert(pki.generate_domain_key(), "alice"))


# -- the dynamic provider ---------------------------------------------------------------------


def test_provider_generates_identity_and_marks_secrets() -> None:
    provider = DomainIdentityProvider()
    result = provider.create({"domain_id": "alice", "supplied_key": None})
    outs = result.outs
    assert pki.same_public_key(outs["cert_pem"], outs["private_key_pem"])
    assert outs["kusciaapi_token"] == pki.kusciaapi_token(outs["private_key_pem"], "alice")
    assert base64.b64decode(outs["domain_key_data"]).decode() == outs["private_key_pem"]
    assert outs["cert_b64"] == pki.cert_b64(outs["cert_pem"])
    from kuscia_components.identity import SECRET_OUTPUTS

    assert {"private_key_pem", "domain_key_data", "kusciaapi_token"} <= set(SECRET_OUTPUTS)


def test_provider_uses_a_supplied_key(rsa_key_pem: str) -> None:
    outs = DomainIdentityProvider().create({"domain_id": "alice", "supplied_key": rsa_key_pem}).outs
    assert outs["private_key_pem"] == rsa_key_pem


def test_replacement_only_when_domain_or_supplied_key_changes(rsa_key_pem: str) -> None:
    provider = DomainIdentityProvider()
    key = serialization.load_pem_private_key(rsa_key_pem.encode(), None)
    pkcs8 = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode()  # fmt: skip
    olds = {"domain_id": "alice", "supplied_key": rsa_key_pem}
    assert not provider.diff("id", olds, {"domain_id": "alice", "supplied_key": pkcs8}).changes
    assert provider.diff("id", olds, {"domain_id": "alice2", "supplied_key": rsa_key_pem}).replaces == [
        "domain_id"
    ]
    other = pki.generate_domain_key()
    assert provider.diff("id", olds, {"domain_id": "alice", "supplied_key": other}).replaces == [
        "supplied_key"
    ]
    assert (
        provider.diff(
            "id", {"domain_id": "a", "supplied_key": None}, {"domain_id": "a", "supplied_key": None}
        ).changes
        is False
    )


def test_pickled_provider_carries_no_secret_material() -> None:
    provider = DomainIdentityProvider()
    outs = provider.create({"domain_id": "alice", "supplied_key": None}).outs
    blob = dill.dumps(provider, recurse=True)
    for secret in (outs["private_key_pem"], outs["kusciaapi_token"], outs["domain_key_data"]):
        assert secret.encode() not in blob
    assert outs["private_key_pem"].splitlines()[1].encode() not in blob

"""Inputs of the hostile corpus that are too big, binary or costly to commit: made at test time.

`material(name, tmp)` returns the text a `{{name}}` placeholder in cases.yaml stands for: a file
path (for kubeconfig and fromFile cases) or a base64 certificate (for pasted partner bundles).
"""

from __future__ import annotations

import base64
import datetime as dt
import os
from functools import cache
from pathlib import Path


def laughs(levels: int = 9, width: int = 9) -> str:
    """The billion-laughs document: each level a list of `width` aliases of the one below."""
    lines = ["  kuscia:lol0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"  kuscia:lol{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "config:\n  kuscia:domainId: alice\n" + "\n".join(lines) + "\n"


def merge_bomb(levels: int = 12) -> str:
    """Merge keys instead of lists: each level merges the one below twice."""
    lines = ["  kuscia:m0: &m0 {a: 1, b: 2, c: 3, d: 4}"]
    for i in range(1, levels):
        lines.append(f"  kuscia:m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}], k{i}: {i}}}")
    return "config:\n  kuscia:domainId: alice\n" + "\n".join(lines) + "\n"


def long_string_aliases(count: int = 2000, size: int = 100_000) -> str:
    """The issue's case: one 100 KB string and 2000 aliases of it (yaml.v3 shares the string)."""
    aliases = ", ".join(["*s"] * count)
    return f"config:\n  kuscia:domainId: alice\n  kuscia:x: &s {'y' * size}\n  kuscia:labels: [{aliases}]\n"


def nested(depth: int, kind: str = "flow") -> str:
    if kind == "flow":
        return "config:\n  kuscia:domainId: alice\n  kuscia:capacity: " + "[" * depth + "]" * depth + "\n"
    return (
        "config:\n  kuscia:domainId: alice\n  kuscia:capacity: " + "{a: " * depth + "1" + "}" * depth + "\n"
    )


def many_nodes(count: int = 60_000) -> str:
    return "config:\n  kuscia:domainId: alice\n  kuscia:labels: [" + ",".join(["a"] * count) + "]\n"


def spec_laughs() -> str:
    lines = ["x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    return "\n".join(lines) + "\nparties: [{domainId: alice}, {domainId: bob}]\n"


def _der_int(value: int) -> bytes:
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return b"\x02" + _der_len(len(body)) + body


def _der_len(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def fake_rsa_pem(bits: int) -> str:
    """A PKCS#1 key whose modulus has `bits` bits but whose numbers are made up: it parses without
    validation, so refusing it by size must happen before OpenSSL's (slow) consistency check.
    Generating a real RSA-16384 key takes minutes."""
    n = (1 << (bits - 1)) | 1
    body = b"".join(_der_int(v) for v in (0, n, 65537, n - 2, 3, 5, 7, 11, 13))
    der = b"\x30" + _der_len(len(body)) + body
    text = base64.encodebytes(der).decode()
    return f"-----BEGIN RSA PRIVATE KEY-----\n{text}-----END RSA PRIVATE KEY-----\n"


@cache
def _key(bits: int, exponent: int) -> object:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=exponent, key_size=bits)


def _key_pem(bits: int = 2048, exponent: int = 65537) -> str:
    from cryptography.hazmat.primitives import serialization

    key = _key(bits, exponent)
    return key.private_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def _cert_b64(bits: int, exponent: int, common_name: str, *more: str, one_rdn: bool = False) -> str:
    """A self-signed certificate built directly (pki refuses to load weak keys); `more` common
    names follow the first, each its own RDN, or all in one multi-valued RDN (`one_rdn`)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    key = _key(bits, exponent)
    cns = [x509.NameAttribute(NameOID.COMMON_NAME, cn) for cn in (common_name, *more)]
    name = x509.Name([x509.RelativeDistinguishedName(cns)] if one_rdn else cns)
    now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())  # type: ignore[attr-defined]
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=3650))
        .sign(key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode()


def material(name: str, tmp: Path) -> str:
    """The value of placeholder `{{name}}` in cases.yaml (files are made under `tmp`)."""
    certs = {
        "CERT_BOB": lambda: _cert_b64(2048, 65537, "bob"),
        "CERT_RSA1024": lambda: _cert_b64(1024, 65537, "bob"),
        "CERT_E3": lambda: _cert_b64(2048, 3, "bob"),
        "CERT_CN_CAROL": lambda: _cert_b64(2048, 65537, "carol"),
        "CERT_DAVE": lambda: _cert_b64(2048, 65537, "dave"),
        "CERT_CN_BOB_CAROL": lambda: _cert_b64(2048, 65537, "bob", "carol"),
        "CERT_CN_CAROL_BOB": lambda: _cert_b64(2048, 65537, "carol", "bob"),
        "CERT_CN_BOB_BOB": lambda: _cert_b64(2048, 65537, "bob", "bob"),
        "CERT_CN_ONE_RDN": lambda: _cert_b64(2048, 65537, "bob", "carol", one_rdn=True),
        "CERT_TWO_BLOCKS": lambda: base64.b64encode(
            base64.b64decode(_cert_b64(2048, 65537, "bob")) * 2
        ).decode(),
    }
    if name in certs:
        return certs[name]()
    files: dict[str, bytes | None] = {
        "FILE_BINARY": bytes(range(256)) * 64,
        "FILE_NUL": b"apiVersion: v1\x00kind: Config\n",
        "FILE_LATIN1": "clusters: []\nusers: [{name: j\xf6rg}]\n".encode("latin-1"),
        "FILE_HUGE": b"# " + b"x" * (5 * 1024 * 1024) + b"\n",
        "FILE_KUBE_LAUGHS": spec_laughs().encode(),
        "FILE_KUBE_NODES": ("clusters: [" + ",".join(["a"] * 60_000) + "]\n").encode(),
        "FILE_KEY_OK": _key_pem().encode(),
        "FILE_KEY_TWO": (_key_pem() * 2).encode(),
        "FILE_KEY_1024": _key_pem(1024).encode(),
        "FILE_KEY_E3": _key_pem(2048, 3).encode(),
        "FILE_KEY_16384": fake_rsa_pem(16384).encode(),
        "FILE_KEY_BIG": (b"-----BEGIN RSA PRIVATE KEY-----\n" + b"QUFB\n" * 30_000),
        "FILE_FIFO": None,
        "FILE_DIR": None,
    }
    path = tmp / name.lower()
    if name == "FILE_FIFO":
        if not path.exists():
            os.mkfifo(path)
    elif name == "FILE_DIR":
        path.mkdir(exist_ok=True)
    elif name in files:
        data = files[name]
        assert data is not None
        path.write_bytes(data)
    else:
        raise KeyError(f"no material named {name}")
    return str(path)


GENERATED = {
    "laughs": laughs,
    "merge_bomb": merge_bomb,
    "long_string_aliases": long_string_aliases,
    "deep_flow": lambda: nested(5000),
    "deep_map": lambda: nested(5000, "map"),
    "many_nodes": many_nodes,
    "spec_laughs": spec_laughs,
    "huge_scalar": lambda: "config:\n  kuscia:domainId: " + "a" * 900_000 + "\n",
    "huge_key": lambda: "config:\n  kuscia:" + "k" * 900_000 + ": 1\n",
    "huge_explicit_key": lambda: (
        "config:\n  kuscia:domainId: alice\n  ? kuscia:" + "k" * 900_000 + "\n  : 1\n"
    ),
    "over_cap": lambda: "config:\n  kuscia:domainId: alice\n# " + "x" * (1024 * 1024) + "\n",
    "huge_spec": lambda: "parties: [{domainId: alice}]\n# " + "x" * (1024 * 1024) + "\n",
    "spec_many_nodes": lambda: "parties: [{domainId: alice}]\nx: [" + ",".join(["a"] * 60_000) + "]\n",
    "spec_deep": lambda: "parties: " + "[" * 5000 + "]" * 5000 + "\n",
}

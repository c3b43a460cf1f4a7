"""Shared pytest fixtures: test-only RSA material (generated per session, never committed)."""

from __future__ import annotations

import pytest

from kuscia_components import pki

pytest_plugins = ("tests.mariadb",)  # the real MariaDB fixture


@pytest.fixture(scope="session")
def rsa_key_pem() -> str:
    return pki.generate_domain_key()


@pytest.fixture(scope="session")
def rsa_cert_b64(rsa_key_pem: str) -> str:
    return pki.cert_b64(pki.build_domain_cert(rsa_key_pem, "bob"))

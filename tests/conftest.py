"""Shared pytest fixtures: test-only RSA material (generated per session, never committed), the
EMULATED Kubernetes API server and Kuscia nodes, and the real MariaDB server (tests/mariadb.py)."""

from __future__ import annotations

import ast
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from kuscia_components.core import pki
from kuscia_components.peering import provider as peering
from tests.emulator import KusciaEmulator

pytest_plugins = ("tests.mariadb",)  # the real MariaDB fixture

# CPython 3.11.7 (CI's interpreter) keeps one AST recursion counter per interpreter, not per thread
# (fixed upstream by gh-106905), so two threads converting ASTs at once leave it off and every
# later ast.parse raises "SystemError: AST constructor recursion depth mismatch". The emulator's
# server threads format tracebacks, and 3.11's traceback module calls ast.parse for its carets,
# while the main thread parses too (pytest's assertion rewriting and reports): one lock for all.
_AST_LOCK = threading.RLock()
_ast_parse = ast.parse


def _serialized_parse(*args: Any, **kwargs: Any) -> Any:
    with _AST_LOCK:
        return _ast_parse(*args, **kwargs)


ast.parse = _serialized_parse


@pytest.fixture(scope="session")
def rsa_key_pem() -> str:
    return pki.generate_domain_key()


@pytest.fixture(scope="session")
def rsa_cert_b64(rsa_key_pem: str) -> str:
    return pki.cert_b64(pki.build_domain_cert(rsa_key_pem, "bob"))


@pytest.fixture
def emu() -> Iterator[KusciaEmulator]:
    """A fresh EMULATED API server and Kuscia network for one test (zero-delay handshake)."""
    with KusciaEmulator() as emulator:
        yield emulator


@pytest.fixture
def quick_evidence(monkeypatch: pytest.MonkeyPatch) -> None:
    """Peering gathers evidence after 0.3 s instead of 3 s, so failure tests stay short."""
    monkeypatch.setattr(peering, "EVIDENCE_AFTER_SECONDS", 0.3)
    monkeypatch.setattr(peering, "EVIDENCE_EVERY_SECONDS", 0.3)

"""The dynamic providers as existing stacks hold them: pickled by class path into `__provider`.

Each resource is registered through the real SDK (under mocks that do not run the provider), so
`__provider` is exactly what `pulumi up` writes to the state (dill, base64; see
pulumi/dynamic/dynamic.py `serialize_provider`). It is then unpickled in a fresh interpreter
that has imported nothing of ours, as the provider host does on refresh and destroy. Moving a
provider class breaks every stack that holds the old path: this test fails first, so a move
comes with an alias module on purpose. (No stack has been deployed from these paths yet, so none
is kept today; a later move adds its old path to the pinned paths below with an alias.)
"""

from __future__ import annotations

import base64
import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kuscia_components.core import pki
from kuscia_components.node.identity import DomainIdentity, IdentityProps
from kuscia_components.node.passwords import GeneratedPassword, PasswordProps
from kuscia_components.node.storage_guard import StorageGuard
from kuscia_components.offline.mocks import OfflineMocks, run_offline
from kuscia_components.peering.props import LinkProps
from kuscia_components.peering.readiness import LinkReadiness
from kuscia_components.peering.resource import PartnerLink
from tests.helpers import parse_source

REPO = Path(__file__).resolve().parent.parent
CLASS_PATHS = {
    "pulumi-python:dynamic/kuscia:PartnerLink": "kuscia_components.peering.provider.PartnerLinkProvider",
    "pulumi-python:dynamic/kuscia:DomainIdentity": "kuscia_components.node.identity.DomainIdentityProvider",
    "pulumi-python:dynamic/kuscia:GeneratedPassword": "kuscia_components.node.passwords.GeneratedPasswordProvider",
    "pulumi-python:dynamic/kuscia:StorageGuard": "kuscia_components.node.storage_guard.StorageGuardProvider",
    "pulumi-python:dynamic/kuscia:LinkReadiness": "kuscia_components.peering.readiness.LinkReadinessProvider",
}
TOKEN = "token-in-the-program-0123456789abcdef"
PARTNER_TOKEN = "partner-token-0123456789abcdef"
KEEPER = "keeper-value-0123456789"
UNPICKLE = """
import base64, json, sys
import dill
ours_before = sorted(m for m in sys.modules if m.startswith("kuscia_components"))
provider = dill.loads(base64.b64decode(sys.stdin.read()))
cls = type(provider)
print(json.dumps({"before": ours_before, "path": f"{cls.__module__}.{cls.__qualname__}",
                  "attrs": sorted(vars(provider)), "has_check": callable(getattr(provider, "check", None))}))
"""


def unpickle_fresh(blob: str) -> dict[str, Any]:
    """Unpickle in a new interpreter, as the dynamic provider host does."""
    done = subprocess.run(
        [sys.executable, "-c", UNPICKLE], input=blob, capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def mocks(rsa_key_pem: str, rsa_cert_b64: str) -> OfflineMocks:
    """Every dynamic resource registered through the SDK; their providers never run."""

    def program() -> None:
        DomainIdentity("alice-identity", domain_id="alice", supplied_key=rsa_key_pem)
        GeneratedPassword("alice-db", purpose="db", keepers={"rotation": KEEPER})
        StorageGuard(
            "alice-storage",
            namespace="autonomy-alice",
            claim="data-kuscia-mysql-0",
            storage_size="10Gi",
            storage_class=None,
        )
        link = PartnerLink(
            "alice-link-bob",
            domain_id="alice",
            namespace="autonomy-alice",
            service="kuscia-autonomy-alice",
            protocol="TLS",
            token=TOKEN,
            partner={
                "domainId": "bob",
                "cert": rsa_cert_b64,
                "endpoint": "https://bob:1080",
                "protocol": "TLS",
            },
            partner_node={
                "namespace": "autonomy-bob",
                "service": "kuscia-autonomy-bob",
                "token": PARTNER_TOKEN,
            },
            kubeconfig="/home/alice/.kube/config",
            defer_wait=True,
        )
        LinkReadiness("alice-links-ready", [link])

    recorded = OfflineMocks(execute_dynamic=lambda provider: False)  # register only: nothing runs
    run_offline(program, recorded, stack="pickle")
    return recorded


@pytest.fixture(scope="module")
def registered(mocks: OfflineMocks) -> dict[str, str]:
    """Type -> the `__provider` blob the SDK registered for it."""
    return {typ: str(mocks.of_type(typ)[0].plain_state["__provider"]) for typ in CLASS_PATHS}


def test_each_resource_registers_the_inputs_its_typed_props_read(mocks: OfflineMocks) -> None:
    """The resources build untyped Pulumi inputs; the providers read them as dataclasses: every
    input sent is a field (None inputs are not sent, so this is the one direction to check)."""
    for typ, props in (
        ("pulumi-python:dynamic/kuscia:PartnerLink", LinkProps),
        ("pulumi-python:dynamic/kuscia:DomainIdentity", IdentityProps),
        ("pulumi-python:dynamic/kuscia:GeneratedPassword", PasswordProps),
    ):
        (resource,) = mocks.of_type(typ)
        sent = set(resource.plain_state) - {"__provider"}
        assert sent and sent <= {f.name for f in dataclasses.fields(props)}, typ


@pytest.mark.parametrize("typ", sorted(CLASS_PATHS))
def test_provider_resolves_to_its_class_path_in_a_fresh_interpreter(
    registered: dict[str, str], typ: str
) -> None:
    found = unpickle_fresh(registered[typ])
    assert found["before"] == []  # nothing of ours imported before the unpickling
    assert found["path"] == CLASS_PATHS[typ]
    assert found["attrs"] == [] and found["has_check"]  # stateless: everything arrives as inputs


@pytest.mark.parametrize("typ", sorted(CLASS_PATHS))
def test_pickled_provider_holds_no_secret(registered: dict[str, str], rsa_key_pem: str, typ: str) -> None:
    raw = base64.b64decode(registered[typ]).decode("latin-1")
    key_body = "".join(rsa_key_pem.strip().splitlines()[1:-1])
    for secret in (
        TOKEN,
        PARTNER_TOKEN,
        KEEPER,
        key_body[:64],
        key_body[-64:],
        "PRIVATE KEY",
        ".kube/config",
    ):
        assert secret not in raw
    assert pki.kusciaapi_token(rsa_key_pem, "alice") not in raw
    assert len(raw) < 400  # a class reference, not a pickled class body with its module's globals


def test_registration_uses_the_sdk_serializer(registered: dict[str, str]) -> None:
    """Guard for the test itself: the blob is what serialize_provider makes for a fresh provider."""
    from pulumi.dynamic.dynamic import serialize_provider

    from kuscia_components.peering.provider import PartnerLinkProvider

    assert registered["pulumi-python:dynamic/kuscia:PartnerLink"] == serialize_provider(PartnerLinkProvider())


def test_every_dynamic_provider_of_the_package_is_pinned() -> None:
    """A new dynamic resource must join CLASS_PATHS, so its class path is pinned from day one."""
    import ast

    found = set()
    for path in (REPO / "kuscia_components").rglob("*.py"):
        module = ".".join(path.relative_to(REPO).with_suffix("").parts)
        for node in parse_source(path).body:
            if isinstance(node, ast.ClassDef) and any(
                getattr(b, "id", getattr(b, "attr", "")) == "ResourceProvider" for b in node.bases
            ):
                found.add(f"{module}.{node.name}")
    assert found == set(CLASS_PATHS.values())

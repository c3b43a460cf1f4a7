"""DomainIdentity: the dynamic provider's create/check/diff/update/read and secret handling."""

from __future__ import annotations

import base64
from typing import Any

import pulumi
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime.rpc import UNKNOWN

from kuscia_components.core import pki
from kuscia_components.node.identity import DERIVED_OUTPUTS, DomainIdentity, DomainIdentityProvider
from kuscia_components.offline.mocks import OfflineMocks, contains_secret, run_offline

SECRET_DERIVED = ("private_key_pem", "domain_key_data", "kusciaapi_token", "kusciaapi_client_key_pem")
PUBLIC = ("domain_id", "cert_pem", "cert_b64", "public_key_sha256", "kusciaapi_client_cert_pem")


@pytest.fixture(scope="module")
def key_pem() -> str:
    return pki.generate_domain_key()


@pytest.fixture(scope="module")
def generated() -> dict[str, Any]:
    """State of an identity whose key the provider generated."""
    return DomainIdentityProvider().create({"domain_id": "alice", "supplied_key": None}).outs


@pytest.fixture(scope="module")
def supplied(key_pem: str) -> dict[str, Any]:
    """State of an identity created from a supplied key."""
    return DomainIdentityProvider().create({"domain_id": "alice", "supplied_key": key_pem}).outs


def _pkcs8_b64(key_pem: str) -> str:
    key = serialization.load_pem_private_key(key_pem.encode(), None)
    pkcs8 = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return base64.b64encode(pkcs8).decode()


def _secret_fragments(outs: dict[str, Any]) -> list[str]:
    """Strings that must never leak: whole secrets and each base64 line of the key."""
    lines = [line for line in outs["private_key_pem"].splitlines() if not line.startswith("-----")]
    return [*(outs[k] for k in SECRET_DERIVED), *lines]


# -- create -------------------------------------------------------------------------------------


def test_create_generates_a_consistent_identity(generated: dict[str, Any]) -> None:
    outs = generated
    assert set(outs) == {"domain_id", "supplied_key", *DERIVED_OUTPUTS}
    assert outs["domain_id"] == "alice" and outs["supplied_key"] is None
    assert pki.load_domain_key(outs["private_key_pem"]) == outs["private_key_pem"]  # PKCS#1, RSA >= 2048
    cert = x509.load_pem_x509_certificate(outs["cert_pem"].encode())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    assert pki.same_public_key(outs["cert_pem"], outs["private_key_pem"])
    assert base64.b64decode(outs["cert_b64"]).decode() == outs["cert_pem"]
    assert base64.b64decode(outs["domain_key_data"]).decode() == outs["private_key_pem"]
    assert outs["public_key_sha256"] == pki.public_key_sha256(outs["private_key_pem"])
    assert outs["kusciaapi_token"] == pki.kusciaapi_token(outs["private_key_pem"], "alice")


def test_each_create_without_a_supplied_key_generates_a_new_key(generated: dict[str, Any]) -> None:
    again = DomainIdentityProvider().create({"domain_id": "alice", "supplied_key": None}).outs
    assert again["public_key_sha256"] != generated["public_key_sha256"]


def test_create_normalizes_a_supplied_key_to_pkcs1_and_keeps_the_input(key_pem: str) -> None:
    given = _pkcs8_b64(key_pem)
    result = DomainIdentityProvider().create({"domain_id": "bob", "supplied_key": given})
    assert result.id == "domain-identity-bob"
    assert result.outs["supplied_key"] == given
    assert result.outs["private_key_pem"] == key_pem
    assert result.outs["kusciaapi_token"] == pki.kusciaapi_token(key_pem, "bob")


def test_create_refuses_a_bad_supplied_key_without_echoing_it() -> None:
    weak = pki.generate_domain_key(1024)
    with pytest.raises(pki.KeyFormatError) as err:
        DomainIdentityProvider().create({"domain_id": "alice", "supplied_key": weak})
    assert "at least 2048 bits" in str(err.value)
    assert not any(line in str(err.value) for line in weak.splitlines()[1:-1])


# -- check --------------------------------------------------------------------------------------


def test_check_passes_good_and_unknown_inputs_through(key_pem: str) -> None:
    provider = DomainIdentityProvider()
    for news in (
        {"domain_id": "alice"},
        {"domain_id": "alice", "supplied_key": key_pem},
        {"domain_id": UNKNOWN, "supplied_key": UNKNOWN},
    ):
        result = provider.check({}, news)
        assert result.failures == [] and result.inputs == news


def test_check_names_the_property_and_rule_for_bad_inputs() -> None:
    secretish = base64.b64encode(b"not-a-key-but-private-text").decode()
    result = DomainIdentityProvider().check({}, {"domain_id": " ", "supplied_key": secretish})
    reasons = {f.property: f.reason for f in result.failures}
    assert set(reasons) == {"domain_id", "supplied_key"}
    assert "non-empty" in reasons["domain_id"] and "'alice'" in reasons["domain_id"]
    assert "at least 2048 bits" in reasons["supplied_key"] and secretish not in reasons["supplied_key"]


# -- diff / update / read -------------------------------------------------------------------------


def test_unchanged_inputs_are_no_change(
    generated: dict[str, Any], supplied: dict[str, Any], key_pem: str
) -> None:
    provider = DomainIdentityProvider()
    assert provider.diff("id", generated, {"domain_id": "alice"}).changes is False
    result = provider.diff("id", supplied, {"domain_id": "alice", "supplied_key": key_pem})
    assert result.changes is False and result.replaces == []


def test_a_new_domain_id_replaces(generated: dict[str, Any]) -> None:
    result = DomainIdentityProvider().diff("id", generated, {"domain_id": "alice2"})
    assert result.changes is True and result.replaces == ["domain_id"]
    assert result.delete_before_replace is False


def test_a_re_encoded_supplied_key_is_an_update_not_a_replacement(
    supplied: dict[str, Any], key_pem: str
) -> None:
    result = DomainIdentityProvider().diff(
        "id", supplied, {"domain_id": "alice", "supplied_key": _pkcs8_b64(key_pem)}
    )
    assert result.changes is True and result.replaces == []


def test_supplying_the_key_already_in_state_keeps_it(generated: dict[str, Any]) -> None:
    """Bring-your-own-key adoption of the generated key: no new key, peers keep working."""
    news = {"domain_id": "alice", "supplied_key": generated["domain_key_data"]}
    result = DomainIdentityProvider().diff("id", generated, news)
    assert result.changes is True and result.replaces == []


@pytest.mark.parametrize("case", ["different key", "unknown in preview", "unparseable"])
def test_a_different_supplied_key_replaces(
    generated: dict[str, Any], supplied: dict[str, Any], case: str
) -> None:
    new_key = {
        "different key": pki.generate_domain_key(),
        "unknown in preview": UNKNOWN,
        "unparseable": "garbage",
    }
    for olds in (generated, supplied):
        result = DomainIdentityProvider().diff(
            "id", olds, {"domain_id": "alice", "supplied_key": new_key[case]}
        )
        assert result.changes is True and result.replaces == ["supplied_key"]


def test_removing_the_supplied_key_replaces_with_a_generated_one(supplied: dict[str, Any]) -> None:
    result = DomainIdentityProvider().diff("id", supplied, {"domain_id": "alice", "supplied_key": None})
    assert result.changes is True and result.replaces == ["supplied_key"]


def test_update_keeps_the_derived_values_and_records_the_new_input(
    supplied: dict[str, Any], key_pem: str
) -> None:
    news = {"domain_id": "alice", "supplied_key": _pkcs8_b64(key_pem), "__provider": "serialized"}
    outs = DomainIdentityProvider().update("id", supplied, news).outs
    assert outs is not None
    assert set(outs) == set(supplied)  # full outputs, like create
    assert outs["supplied_key"] == news["supplied_key"]
    assert all(outs[k] == supplied[k] for k in DERIVED_OUTPUTS)


def test_read_returns_the_state_unchanged(generated: dict[str, Any]) -> None:
    result = DomainIdentityProvider().read("domain-identity-alice", dict(generated))
    assert result.id == "domain-identity-alice" and result.outs == generated


# -- secrets ---------------------------------------------------------------------------------------


def test_serialized_provider_carries_no_secret_material(
    generated: dict[str, Any], supplied: dict[str, Any]
) -> None:
    """Pulumi stores the provider in state as base64(dill.dumps(...)): serialize it the same way,
    after it has handled secrets in every method."""
    provider = DomainIdentityProvider()
    outs = provider.create({"domain_id": "carol", "supplied_key": None}).outs
    provider.diff("id", supplied, {"domain_id": "alice", "supplied_key": pki.generate_domain_key()})
    provider.update("id", supplied, {"domain_id": "alice", "supplied_key": supplied["domain_key_data"]})
    provider.check({}, {"domain_id": "alice", "supplied_key": supplied["private_key_pem"]})
    assert vars(provider) == {}
    blob = base64.b64decode(serialize_provider(provider))
    for state in (outs, generated, supplied):
        for fragment in _secret_fragments(state):
            assert fragment.encode() not in blob


def test_resource_marks_secret_outputs_and_the_supplied_key_input(key_pem: str) -> None:
    """Under OfflineMocks (which apply additionalSecretOutputs like the engine)."""
    mocks = OfflineMocks()
    outputs_to_check = (*SECRET_DERIVED, *PUBLIC)

    def program() -> None:
        identity = DomainIdentity("alice-identity", domain_id="alice", supplied_key=key_pem)
        for name in outputs_to_check:
            pulumi.export(f"{name}_is_secret", pulumi.Output.from_input(getattr(identity, name).is_secret()))
        pulumi.export("cert_pem", identity.cert_pem)

    exported = run_offline(program, mocks)
    for name in outputs_to_check:
        assert exported[f"{name}_is_secret"] is (name in SECRET_DERIVED), name
    assert pki.same_public_key(exported["cert_pem"], key_pem)

    recorded = mocks.one("pulumi-python:dynamic/kuscia:DomainIdentity")
    assert contains_secret(recorded.inputs["supplied_key"])
    assert all(recorded.is_secret(k) for k in (*SECRET_DERIVED, "supplied_key"))
    assert not any(recorded.is_secret(k) for k in PUBLIC)


def test_resource_without_a_supplied_key_generates_one() -> None:
    mocks = OfflineMocks()

    def program() -> None:
        identity = DomainIdentity("bob-identity", domain_id="bob")
        pulumi.export("token", identity.kusciaapi_token)
        pulumi.export("key", identity.private_key_pem)

    exported = run_offline(program, mocks)
    assert exported["token"] == pki.kusciaapi_token(exported["key"], "bob")
    assert mocks.one("pulumi-python:dynamic/kuscia:DomainIdentity").plain_state["supplied_key"] is None

"""DomainIdentity: a Kuscia domain's key, certificate, KusciaAPI token and MTLS client certificate,
held in Pulumi state.

Generating the key ourselves (instead of letting the pod do it) is what removes `kubectl cp` from
peering: the certificate is known before the pod exists, it is mounted so its bytes survive
restarts, and partners can be given it by StackReference or as a pasted bundle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)
from pulumi.runtime.rpc import UNKNOWN

from kuscia_components.core.preview import unknowns_as_sentinel

DERIVED_OUTPUTS = (
    "cert_pem",
    "cert_b64",
    "public_key_sha256",
    "private_key_pem",
    "domain_key_data",
    "kusciaapi_token",
    "kusciaapi_client_cert_pem",
    "kusciaapi_client_key_pem",
)
SECRET_OUTPUTS = (
    "private_key_pem",
    "domain_key_data",
    "kusciaapi_token",
    "kusciaapi_client_key_pem",
    "supplied_key",
)


@dataclass(frozen=True)
class IdentityProps:
    """DomainIdentity's inputs. `supplied_key` (secret, never in repr) is None for a generated key;
    at preview either may still be the engine's UNKNOWN sentinel (`check` and `diff` allow it)."""

    domain_id: str
    supplied_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_props(cls, props: Mapping[str, Any]) -> IdentityProps:
        return cls(
            domain_id=str(props.get("domain_id") or ""), supplied_key=props.get("supplied_key") or None
        )

    def to_props(self) -> dict[str, Any]:
        """The resource's own inputs, without the serialized provider or computed values."""
        return {"domain_id": self.domain_id, "supplied_key": self.supplied_key}


class DomainIdentityProvider(ResourceProvider):
    """Holds no state of its own: everything it needs arrives as inputs on each call, so the
    provider Pulumi pickles into the state carries no key material."""

    offline_safe: ClassVar[bool] = True  # pure local computation: runs in `render` too

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """Reject a bad domain ID or supplied key at preview, with the rule and no key material."""
        from kuscia_components.core import pki

        failures = []
        seen = unknowns_as_sentinel(news)  # what is checked; the inputs pass through as given
        domain_id = seen.get("domain_id")
        if domain_id != UNKNOWN and (not isinstance(domain_id, str) or not domain_id.strip()):
            failures.append(CheckFailure("domain_id", "domain_id must be a non-empty string, e.g. 'alice'"))
        supplied = seen.get("supplied_key")
        if supplied and supplied != UNKNOWN:
            try:
                pki.load_domain_key(supplied)
            except pki.KeyFormatError as err:
                failures.append(CheckFailure("supplied_key", str(err)))
        return CheckResult(news, failures)

    def create(self, props: dict[str, Any]) -> CreateResult:
        from kuscia_components.core import pki

        inputs = IdentityProps.from_props(props)
        supplied = inputs.supplied_key
        key_pem = pki.load_domain_key(supplied) if supplied else pki.generate_domain_key()
        outs = {**inputs.to_props(), **identity_outputs(key_pem, inputs.domain_id)}
        return CreateResult(id_=f"domain-identity-{inputs.domain_id}", outs=outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """Replace (a new key, or a new cert subject) only when the domain ID or the effective key
        changes; a re-encoded supplied key, or supplying the key already in state, is an update."""
        olds, news = unknowns_as_sentinel(olds), unknowns_as_sentinel(news)
        old, new = IdentityProps.from_props(olds), IdentityProps.from_props(news)
        replaces = []
        if old.domain_id != new.domain_id:
            replaces.append("domain_id")
        if _key_changes(olds, new.supplied_key):
            replaces.append("supplied_key")
        # A state from before the MTLS client certificate: `update` mints one, keeping the key.
        changes = bool(replaces) or old != new or not olds.get("kusciaapi_client_cert_pem")
        return DiffResult(changes=changes, replaces=replaces, delete_before_replace=False)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """Only reached when the key and domain ID stay the same: keep the derived values (so the
        cert bytes, and with them the pod, stay put) and record the new inputs."""
        inputs = IdentityProps.from_props(news).to_props()
        return UpdateResult(outs={**inputs, **kept_outputs(olds)})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """Nothing outside the state to refresh from: the identity exists only here."""
        return ReadResult(id_=id_, outs=props)


def identity_outputs(key_pem: str, domain_id: str) -> dict[str, str]:
    """Everything derived from a key: the cert Kuscia would make, the token it would write."""
    from kuscia_components.core import kusciaapi_certs, pki

    cert_pem = pki.build_domain_cert(key_pem, domain_id)
    client_cert, client_key = kusciaapi_certs.build_client_cert(key_pem, domain_id)
    return {
        "private_key_pem": key_pem,
        "domain_key_data": pki.domain_key_data(key_pem),
        "cert_pem": cert_pem,
        "cert_b64": pki.cert_b64(cert_pem),
        "public_key_sha256": pki.public_key_sha256(cert_pem),
        "kusciaapi_token": pki.kusciaapi_token(key_pem, domain_id),
        "kusciaapi_client_cert_pem": client_cert,  # MTLS: signed by the domain key (its ca.crt)
        "kusciaapi_client_key_pem": client_key,
    }


def kept_outputs(olds: Mapping[str, Any]) -> dict[str, Any]:
    """The derived outputs of an unchanged key, as in state. A state written before the MTLS client
    certificate existed (or one holding a client cert of another key) gets one minted now."""
    from kuscia_components.core import kusciaapi_certs

    kept = {k: olds.get(k) for k in DERIVED_OUTPUTS}
    domain_id, client_cert = str(olds.get("domain_id") or ""), kept["kusciaapi_client_cert_pem"]
    if not (
        client_cert
        and kept["kusciaapi_client_key_pem"]
        and kusciaapi_certs.client_cert_matches(client_cert, kept["cert_pem"] or "", domain_id)
    ):
        minted = kusciaapi_certs.build_client_cert(str(kept["private_key_pem"] or ""), domain_id)
        kept["kusciaapi_client_cert_pem"], kept["kusciaapi_client_key_pem"] = minted
    return kept


def _key_changes(olds: dict[str, Any], new_supplied: str | None) -> bool:
    """Would `new_supplied` give the domain a different key than the one in state?

    Keys compare by public half, so PKCS#8 vs PKCS#1 or base64 re-encoding is no change, and
    supplying the key that was generated earlier keeps it. Removing a supplied key means a new
    generated one. An unparseable or unknown new key counts as a change (check reports it).
    """
    from kuscia_components.core import pki

    if not new_supplied:
        return bool(olds.get("supplied_key"))
    if new_supplied == UNKNOWN:
        return True
    try:
        old_fingerprint = olds.get("public_key_sha256") or pki.public_key_sha256(olds["private_key_pem"])
        return pki.public_key_sha256(new_supplied) != old_fingerprint
    except (KeyError, ValueError):  # no usable key in state, or an unusable new one
        return True


class DomainIdentity(Resource, module="kuscia", name="DomainIdentity"):
    """Key (PKCS#1, RSA-2048), Kuscia-shaped self-signed cert and KusciaAPI token of one domain.

    Replaced only when the domain ID or the supplied key changes; a generated key is kept for
    the life of the stack. Secret outputs: private_key_pem, domain_key_data, kusciaapi_token,
    kusciaapi_client_key_pem.
    """

    domain_id: pulumi.Output[str]
    cert_pem: pulumi.Output[str]
    cert_b64: pulumi.Output[str]
    public_key_sha256: pulumi.Output[str]
    private_key_pem: pulumi.Output[str]  # secret
    domain_key_data: pulumi.Output[str]  # secret: base64 of the PKCS#1 PEM, for kuscia.yaml
    kusciaapi_token: pulumi.Output[str]  # secret
    kusciaapi_client_cert_pem: pulumi.Output[str]  # MTLS client cert, CN KusciaAPIClient
    kusciaapi_client_key_pem: pulumi.Output[str]  # secret: its key (PKCS#8)

    def __init__(
        self,
        name: str,
        *,
        domain_id: pulumi.Input[str],
        supplied_key: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {
            "domain_id": domain_id,
            "supplied_key": pulumi.Output.secret(supplied_key) if supplied_key is not None else None,
            **dict.fromkeys(DERIVED_OUTPUTS),
        }
        secret_opts = pulumi.ResourceOptions(additional_secret_outputs=list(SECRET_OUTPUTS))
        super().__init__(
            DomainIdentityProvider(), name, props, pulumi.ResourceOptions.merge(opts, secret_opts)
        )

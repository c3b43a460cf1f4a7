"""DomainIdentity: a Kuscia domain's key, certificate and KusciaAPI token, held in Pulumi state.

Generating the key ourselves (instead of letting the pod do it) is what removes `kubectl cp` from
peering: the certificate is known before the pod exists, it is mounted so its bytes survive
restarts, and partners can be given it by StackReference or as a pasted bundle.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider

SECRET_OUTPUTS = ("private_key_pem", "domain_key_data", "kusciaapi_token", "supplied_key")


class DomainIdentityProvider(ResourceProvider):
    """Holds no state of its own: everything it needs arrives as inputs on each call."""

    offline_safe: ClassVar[bool] = True  # pure local computation: runs in `render` too

    def create(self, props: dict[str, Any]) -> CreateResult:
        from . import pki

        domain_id = str(props["domain_id"])
        supplied = props.get("supplied_key")
        key_pem = pki.load_domain_key(supplied) if supplied else pki.generate_domain_key()
        outs = {**props, **identity_outputs(key_pem, domain_id)}
        return CreateResult(id_=f"domain-identity-{domain_id}", outs=outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [k for k in ("domain_id",) if olds.get(k) != news.get(k)]
        if _supplied_key_changed(olds.get("supplied_key"), news.get("supplied_key")):
            replaces.append("supplied_key")
        return DiffResult(changes=bool(replaces), replaces=replaces, delete_before_replace=False)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_=id_, outs=props)


def identity_outputs(key_pem: str, domain_id: str) -> dict[str, str]:
    """Everything derived from a key: the cert Kuscia would make, the token it would write."""
    from . import pki

    cert_pem = pki.build_domain_cert(key_pem, domain_id)
    return {
        "private_key_pem": key_pem,
        "domain_key_data": pki.domain_key_data(key_pem),
        "cert_pem": cert_pem,
        "cert_b64": pki.cert_b64(cert_pem),
        "public_key_sha256": pki.public_key_sha256(cert_pem),
        "kusciaapi_token": pki.kusciaapi_token(key_pem, domain_id),
    }


def _supplied_key_changed(old: str | None, new: str | None) -> bool:
    """Compare keys by their public half: re-encoding (PKCS#8 vs PKCS#1, base64) is no change."""
    if not old or not new:
        return bool(old) != bool(new)
    from . import pki

    try:
        return pki.public_key_sha256(pki.load_domain_key(old)) != pki.public_key_sha256(
            pki.load_domain_key(new)
        )
    except pki.KeyFormatError:
        return old != new


class DomainIdentity(Resource, module="kuscia", name="DomainIdentity"):
    """Key (PKCS#1, RSA-2048), Kuscia-shaped self-signed cert and KusciaAPI token of one domain.

    Replaced only when the domain ID or the supplied key changes; a generated key is kept for
    the life of the stack. Secret outputs: private_key_pem, domain_key_data, kusciaapi_token.
    """

    domain_id: pulumi.Output[str]
    cert_pem: pulumi.Output[str]
    cert_b64: pulumi.Output[str]
    public_key_sha256: pulumi.Output[str]
    private_key_pem: pulumi.Output[str]
    domain_key_data: pulumi.Output[str]
    kusciaapi_token: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        domain_id: pulumi.Input[str],
        supplied_key: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            "domain_id": domain_id,
            "supplied_key": pulumi.Output.secret(supplied_key) if supplied_key is not None else None,
            "cert_pem": None,
            "cert_b64": None,
            "public_key_sha256": None,
            "private_key_pem": None,
            "domain_key_data": None,
            "kusciaapi_token": None,
        }
        secret_opts = pulumi.ResourceOptions(additional_secret_outputs=list(SECRET_OUTPUTS))
        super().__init__(
            DomainIdentityProvider(), name, props, pulumi.ResourceOptions.merge(opts, secret_opts)
        )

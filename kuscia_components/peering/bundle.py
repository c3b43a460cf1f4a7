"""The peering bundle: what a party publishes for its partners, and the checks a bundle must pass
before anything touches a node. Pure (no Pulumi): `network/spec.py` and the provider's `check()`
use it alike, so a bundle that can never work fails at preview, with the reason.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

from kuscia_components.config.constants import gateway_scheme

if TYPE_CHECKING:
    from kuscia_components.config import PeerSettings


class PeeringError(Exception):
    """Peering cannot succeed as configured; the message is the diagnosis with the next step."""


class PeeringBundle(TypedDict):
    """What a party publishes for its partners (stack output `peeringBundle`); all public."""

    domainId: str
    cert: str  # base64 of the PEM certificate (Domain.spec.cert form)
    endpoint: str  # http(s)://host:port[/prefix] of the gateway, as partners dial it
    protocol: str  # NOTLS | TLS


def inline_bundle(peer: PeerSettings) -> PeeringBundle | None:
    """A bundle pasted into `kuscia:peers` (across organisations); None for a stack peer."""
    if peer.stack is not None or peer.cert is None or peer.endpoint is None:
        return None
    return {
        "domainId": peer.domain_id,
        "cert": peer.cert,
        "endpoint": peer.endpoint,
        "protocol": peer.protocol or "TLS",
    }


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    is_tls: bool
    path_prefix: str

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        try:
            parts = urllib.parse.urlsplit(url)
            port = parts.port
        except ValueError:
            parts, port = None, None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise PeeringError(
                f"partner endpoint {url!r} must be an http:// or https:// URL with a host, "
                "e.g. https://kuscia-autonomy-bob.autonomy-bob.svc.cluster.local:1080"
            )
        is_tls = parts.scheme == "https"
        return cls(parts.hostname, port or (443 if is_tls else 80), is_tls, parts.path.rstrip("/"))

    def cluster_service(self) -> tuple[str, str] | None:
        """(namespace, service) when the host is a Service's cluster DNS name."""
        labels = self.host.split(".")
        if len(labels) >= 3 and labels[2] == "svc" and labels[3:] in ([], ["cluster", "local"]):
            return labels[1], labels[0]
        return None


@dataclass(frozen=True)
class BundleProblem:
    """One reason a bundle can never work: which input, and the sentence for the user."""

    prop: str
    reason: str


def bundle_problems(
    partner_domain_id: str,
    *,
    bundle_domain_id: str | None,
    cert: str,
    endpoint: str,
    protocol: str | None,
    trusted_network: bool = False,
) -> list[BundleProblem]:
    """Everything wrong with a partner's bundle, checked without any network call. A NOTLS
    partner outside the cluster is one unless `trusted_network` (kuscia:trustedNetwork) says the
    network between the parties is ours: the same rule as for a pasted partner (config/exposure)."""
    from kuscia_components.config.exposure import plaintext_partner
    from kuscia_components.core.pki import CertFormatError, cert_domain_problem, cert_public_key_pem

    dst = partner_domain_id
    problems = []
    if bundle_domain_id and bundle_domain_id != dst:
        problems.append(
            BundleProblem(
                "bundle_domain_id",
                f"the peering bundle given for partner {dst} belongs to domain {bundle_domain_id!r}: check "
                f"kuscia:peers (the stack name, or the bundle pasted for {dst})",
            )
        )
    try:
        cert_public_key_pem(cert)
        mismatch = cert_domain_problem(cert, dst)
        if mismatch:
            problems.append(
                BundleProblem("partner_cert", f"the certificate in {dst}'s peering bundle: {mismatch}")
            )
    except CertFormatError as err:
        problems.append(
            BundleProblem("partner_cert", f"the certificate in {dst}'s peering bundle is unusable: {err}")
        )
    try:
        parsed = Endpoint.parse(endpoint)
    except PeeringError as err:
        problems.append(BundleProblem("partner_endpoint", str(err)))
        return problems
    protocol = protocol or "TLS"
    if parsed.is_tls != (protocol != "NOTLS"):
        want = gateway_scheme(protocol)
        problems.append(
            BundleProblem(
                "partner_endpoint",
                f"partner {dst} runs protocol {protocol}, so its endpoint must start with {want}:// "
                f"(got {endpoint}); an http/https mismatch never becomes Ready (kuscia#450)",
            )
        )
    plaintext = None if trusted_network else plaintext_partner(endpoint, protocol)
    if plaintext:
        problems.append(BundleProblem("partner_endpoint", f"partner {dst}'s endpoint {endpoint} {plaintext}"))
    return problems


def check_bundle(
    partner_domain_id: str,
    *,
    bundle_domain_id: str | None,
    cert: str,
    endpoint: str,
    protocol: str | None,
    trusted_network: bool = False,
) -> Endpoint:
    """The bundle's endpoint, or PeeringError with the first reason it can never work."""
    problems = bundle_problems(
        partner_domain_id,
        bundle_domain_id=bundle_domain_id,
        cert=cert,
        endpoint=endpoint,
        protocol=protocol,
        trusted_network=trusted_network,
    )
    if problems:
        raise PeeringError(problems[0].reason)
    return Endpoint.parse(endpoint)


def key_changed(old: str | None, new: str | None) -> bool:
    """Do two base64 certificates carry different public keys? Bytes change on every restart."""
    if not old or not new:
        return bool(old) != bool(new)
    from kuscia_components.core.pki import CertFormatError, same_public_key

    try:
        return not same_public_key(old, new)
    except CertFormatError:
        return old != new


def same_key(cert: object, expected: object) -> bool | None:
    """Public keys equal? None when we have nothing to compare with; an unusable cert is False."""
    if not expected:
        return None
    if not cert:
        return False
    return not key_changed(str(cert), str(expected))

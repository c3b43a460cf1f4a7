"""PartnerLink's inputs as one typed value: read once from the engine's untyped dict, with every
default declared here, and checked in the provider's `check()` so bad input fails at preview.

The engine hands a dynamic provider plain dicts (numbers as floats, empty maps as None, and at
preview the UNKNOWN sentinel for values not computed yet): `from_props` is the one place that
knows this, `to_props` gives back what goes into the state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from pulumi.runtime.rpc import UNKNOWN

from kuscia_components.core.status import LINK_PHASES, LinkPhase
from kuscia_components.peering.bundle import BundleProblem, PeeringError, bundle_problems

DEFAULT_TIMEOUT_SECONDS = 300.0  # kuscia:peeringTimeoutSeconds' default too
PROTOCOLS = ("TLS", "NOTLS", "MTLS")  # our node's; a partner's MTLS is addressed like TLS
MTLS_NEEDS_PORT_FORWARD = (
    "protocol MTLS needs kusciaApiTransport portForward: under MTLS KusciaAPI requires a client "
    "certificate, which the API server's service proxy cannot present; e.g. kusciaApiTransport: portForward"
)
_REQUIRED_TEXT = {
    "domain_id": "'alice'",
    "namespace": "'autonomy-alice'",
    "service": "'kuscia-autonomy-alice'",
}


@dataclass(frozen=True)
class LinkProps:
    """One side of a peering: our node (how to reach its KusciaAPI), the partner's bundle, and
    the wait policy. Secrets (token, partner_node) never show in repr."""

    domain_id: str
    namespace: str
    service: str
    protocol: str
    token: str | None = field(default=None, repr=False)
    kube_context: str | None = None
    kubeconfig: str | None = None  # a path: the file's credentials are read, never kept
    kusciaapi_transport: str = "portForward"  # kuscia:kusciaApiTransport; older states: the default
    trusted_network: bool = False  # kuscia:trustedNetwork: a NOTLS partner outside the cluster is allowed
    partner_domain_id: str = ""
    bundle_domain_id: str | None = None
    partner_cert: str | None = None
    partner_endpoint: str | None = None
    partner_protocol: str | None = None
    partner_stack: str | None = None
    own_stack: str | None = None
    own_cert: str | None = None
    partner_node: Mapping[str, Any] | None = field(default=None, repr=False)
    # Our node's KusciaAPI TLS (kube/tls.py): the domain certificate as the CA that signed
    # kusciaapi-server.crt, and under MTLS the client certificate and its key (secret). None in a
    # state written before them: then TLS is not verified (as the service proxy never does).
    kusciaapi_ca_pem: str | None = None
    kusciaapi_client_cert_pem: str | None = None
    kusciaapi_client_key_pem: str | None = field(default=None, repr=False)
    phase: LinkPhase = "all"
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    require_ready: bool = False
    health_timeout_seconds: float | None = None  # None: the link's timeout_seconds
    defer_wait: bool = False  # register only; a LinkReadiness waits for all links together

    @classmethod
    def from_props(cls, props: Mapping[str, Any]) -> LinkProps:
        """The typed inputs; unknown numbers and flags read as their defaults (only diff sees them)."""
        phase = props.get("phase") or "all"
        if phase == UNKNOWN:
            phase = "all"
        if phase not in LINK_PHASES:
            raise PeeringError(f"phase must be one of {', '.join(LINK_PHASES)}, e.g. 'all'; got {phase!r}")
        node = props.get("partner_node")
        return cls(
            domain_id=str(props["domain_id"]),
            namespace=str(props.get("namespace") or ""),
            service=str(props.get("service") or ""),
            protocol=str(props.get("protocol") or "TLS"),
            token=_text(props.get("token")),
            kube_context=_text(props.get("kube_context")),
            kubeconfig=_text(props.get("kubeconfig")),
            kusciaapi_transport=_text(props.get("kusciaapi_transport")) or "portForward",
            trusted_network=props.get("trusted_network") is True,
            partner_domain_id=str(props.get("partner_domain_id") or ""),
            bundle_domain_id=_text(props.get("bundle_domain_id")),
            partner_cert=_text(props.get("partner_cert")),
            partner_endpoint=_text(props.get("partner_endpoint")),
            partner_protocol=_text(props.get("partner_protocol")),
            partner_stack=_text(props.get("partner_stack")),
            own_stack=_text(props.get("own_stack")),
            own_cert=_text(props.get("own_cert")),
            partner_node=dict(node) if isinstance(node, Mapping) else None,
            kusciaapi_ca_pem=_text(props.get("kusciaapi_ca_pem")),
            kusciaapi_client_cert_pem=_text(props.get("kusciaapi_client_cert_pem")),
            kusciaapi_client_key_pem=_text(props.get("kusciaapi_client_key_pem")),
            phase=cast(LinkPhase, phase),
            timeout_seconds=_seconds(props.get("timeout_seconds")) or DEFAULT_TIMEOUT_SECONDS,
            require_ready=props.get("require_ready") not in (None, UNKNOWN) and bool(props["require_ready"]),
            health_timeout_seconds=_seconds(props.get("health_timeout_seconds")),
            defer_wait=props.get("defer_wait") not in (None, UNKNOWN) and bool(props["defer_wait"]),
        )

    def to_props(self) -> dict[str, Any]:
        """The inputs as the state holds them (every field, under its own name)."""
        props = dataclasses.asdict(self)
        props["partner_node"] = dict(self.partner_node) if self.partner_node is not None else None
        return props

    @property
    def link_id(self) -> str:
        return f"{self.domain_id}-{self.partner_domain_id or 'unknown'}:{self.phase}"

    @property
    def route_name(self) -> str:
        return f"{self.domain_id}-{self.partner_domain_id}"

    @property
    def registers(self) -> bool:
        """Did (or will) this link register anything? Without a partner and cert it made nothing."""
        return bool(self.partner_domain_id and self.partner_cert)

    @property
    def health_timeout(self) -> float:
        return self.health_timeout_seconds or self.timeout_seconds

    @property
    def partner_protocol_or_default(self) -> str:
        return self.partner_protocol or "TLS"


def input_problems(news: Mapping[str, Any]) -> list[BundleProblem]:
    """Every input that can never work, from the engine's dict as `check()` receives it: values
    still UNKNOWN at preview are skipped (the engine checks again once they are known). A
    missing bundle is no problem: the link then waits for the partner."""
    problems = []
    for prop, example in _REQUIRED_TEXT.items():
        value = news.get(prop)
        if value != UNKNOWN and (not isinstance(value, str) or not value.strip()):
            problems.append(BundleProblem(prop, f"{prop} must be a non-empty string, e.g. {example}"))
    protocol = news.get("protocol")
    if protocol not in (UNKNOWN, *PROTOCOLS):
        problems.append(
            BundleProblem("protocol", f"protocol must be TLS, NOTLS or MTLS, e.g. 'TLS'; got {protocol!r}")
        )
    if protocol == "MTLS" and news.get("kusciaapi_transport") == "serviceProxy":
        problems.append(BundleProblem("kusciaapi_transport", MTLS_NEEDS_PORT_FORWARD))
    elif protocol == "MTLS" and news.get("kusciaapi_client_key_pem") in (None, ""):
        problems.append(
            BundleProblem(
                "kusciaapi_client_key_pem",
                "protocol MTLS needs the KusciaAPI client certificate and key (the node's "
                "kusciaapi_client_cert_pem and kusciaapi_client_key_pem outputs)",
            )
        )
    phase = news.get("phase")
    if phase not in (None, UNKNOWN, *LINK_PHASES):
        problems.append(
            BundleProblem(
                "phase", f"phase must be one of {', '.join(LINK_PHASES)}, e.g. 'all'; got {phase!r}"
            )
        )
    for prop in ("timeout_seconds", "health_timeout_seconds"):
        value = news.get(prop)
        if value not in (None, UNKNOWN) and _seconds(value) is None:
            problems.append(
                BundleProblem(prop, f"{prop} must be a number of seconds >= 0, e.g. 300; got {value!r}")
            )
    bundle = [news.get(k) for k in ("partner_domain_id", "bundle_domain_id", "partner_cert")]
    bundle += [news.get("partner_endpoint"), news.get("partner_protocol")]
    dst, bundle_id, cert, endpoint, partner_protocol = bundle
    if UNKNOWN not in bundle and dst and cert and endpoint:
        problems += bundle_problems(
            str(dst),
            bundle_domain_id=_text(bundle_id),
            cert=str(cert),
            endpoint=str(endpoint),
            protocol=_text(partner_protocol),
            trusted_network=news.get("trusted_network") in (True, UNKNOWN),
        )
    return problems


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _seconds(value: Any) -> float | None:
    """A known, non-negative number of seconds; None for anything else."""
    if value is None or value == UNKNOWN or isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if seconds >= 0 else None

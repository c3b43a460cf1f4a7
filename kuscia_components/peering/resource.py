"""PartnerLink: one side of a peering as a Pulumi resource, in a party's own stack.

The partner's Domain (role partner, its certificate) and our route to it, registered through
KusciaAPI by `provider.PartnerLinkProvider`. The inputs are `props.LinkProps`; this module only
turns Pulumi inputs (the partner's bundle as an Output) into them and marks the secrets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import Resource

from kuscia_components.core.status import LinkPhase
from kuscia_components.peering.props import DEFAULT_TIMEOUT_SECONDS
from kuscia_components.peering.provider import PartnerLinkProvider

SECRET_OUTPUTS = ("token", "partner_node", "kusciaapi_client_key_pem")
STATUS_OUTPUTS = ("route_name", "status", "reason", "diagnosis", "checked_at")


@dataclass(frozen=True)
class WaitPolicy:
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS  # kuscia:peeringTimeoutSeconds
    require_ready: bool = False  # kuscia:requirePeerReady
    health_timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS  # waiting for our own KusciaAPI


@dataclass(frozen=True)
class KusciaApiTlsInputs:
    """Our node's KusciaAPI TLS material (node/component.py outputs): the domain certificate as
    the CA, and the MTLS client certificate and key (secret)."""

    ca_pem: pulumi.Input[str] | None = None
    client_cert_pem: pulumi.Input[str] | None = None
    client_key_pem: pulumi.Input[str] | None = None


class PartnerLink(Resource, module="kuscia", name="PartnerLink"):
    """One side of a peering: partner Domain + route self->partner + readiness (module doc).

    Outputs: every input, plus route_name, status (Ready | WaitingForPartner | Failed after a
    refresh), reason (Kuscia's), diagnosis (ours, with the next step) and checked_at. The token,
    the MTLS client key and the partner node's details are secret outputs.
    """

    route_name: pulumi.Output[str]
    status: pulumi.Output[str]
    reason: pulumi.Output[str]
    diagnosis: pulumi.Output[str]
    checked_at: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        domain_id: pulumi.Input[str],
        namespace: pulumi.Input[str],
        service: pulumi.Input[str],
        protocol: pulumi.Input[str],
        token: pulumi.Input[str] | None,
        partner: pulumi.Input[Mapping[str, Any] | None],
        partner_domain_id: str | None = None,
        own_cert: pulumi.Input[str] | None = None,
        kusciaapi_tls: KusciaApiTlsInputs | None = None,
        partner_node: pulumi.Input[Mapping[str, Any]] | None = None,
        partner_stack: str | None = None,
        own_stack: str | None = None,
        wait: WaitPolicy | None = None,
        phase: LinkPhase = "all",
        defer_wait: bool = False,
        kube_context: str | None = None,
        kubeconfig: str | None = None,
        kusciaapi_transport: str = "portForward",
        trusted_network: bool = False,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        policy = wait or WaitPolicy()
        tls = kusciaapi_tls or KusciaApiTlsInputs()
        bundle = pulumi.Output.from_input(partner).apply(lambda b: dict(b or {}))
        props = {
            "domain_id": domain_id,
            "namespace": namespace,
            "service": service,
            "protocol": protocol,
            "token": pulumi.Output.secret(token) if token is not None else None,
            "kube_context": kube_context,
            "kubeconfig": kubeconfig,
            "kusciaapi_transport": kusciaapi_transport,
            "trusted_network": trusted_network,
            "partner_domain_id": partner_domain_id or bundle.apply(lambda b: b.get("domainId")),
            "bundle_domain_id": bundle.apply(lambda b: b.get("domainId")),
            "partner_cert": bundle.apply(lambda b: b.get("cert")),
            "partner_endpoint": bundle.apply(lambda b: b.get("endpoint")),
            "partner_protocol": bundle.apply(lambda b: b.get("protocol")),
            "partner_stack": partner_stack,
            "own_stack": own_stack if own_stack is not None else pulumi.get_stack(),
            "own_cert": own_cert,
            "partner_node": pulumi.Output.secret(partner_node) if partner_node is not None else None,
            "kusciaapi_ca_pem": tls.ca_pem,
            "kusciaapi_client_cert_pem": tls.client_cert_pem,
            "kusciaapi_client_key_pem": (
                pulumi.Output.secret(tls.client_key_pem) if tls.client_key_pem is not None else None
            ),
            "phase": phase,
            "timeout_seconds": policy.timeout_seconds,
            "require_ready": policy.require_ready,
            "health_timeout_seconds": policy.health_timeout_seconds,
            "defer_wait": defer_wait,
            "route_name": None,
            "status": None,
            "reason": None,
            "diagnosis": None,
            "checked_at": None,
        }
        # What a LinkReadiness needs to wait for this link (`readiness.py`): its own inputs.
        self.wait_inputs = {k: v for k, v in props.items() if k not in STATUS_OUTPUTS}
        secret_opts = pulumi.ResourceOptions(additional_secret_outputs=list(SECRET_OUTPUTS))
        super().__init__(PartnerLinkProvider(), name, props, pulumi.ResourceOptions.merge(opts, secret_opts))

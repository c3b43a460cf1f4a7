"""Advice that does not block a deploy: security trade-offs and likely slips in a valid config."""

from __future__ import annotations

from typing import Any

from kuscia_components.config.constants import DEFAULT_IMAGE, GATEWAY_PORT, gateway_scheme
from kuscia_components.config.model import NetworkPolicySettings, PartyConfig
from kuscia_components.config.rules import default_database_name


def config_warnings(cfg: PartyConfig) -> list[str]:
    """Non-fatal advice about a valid config: security trade-offs and likely slips."""
    warnings: list[str] = []
    add = warnings.append
    if cfg.protocol == "NOTLS":
        add(
            "protocol NOTLS: KusciaAPI (8082) answers anyone who reaches it without any authentication, and "
            "partners talk to the gateway in plain HTTP; use it only inside a trusted network"
            + (
                " and narrow networkPolicy.kusciaApiFrom."
                if cfg.kusciaapi_transport == "serviceProxy"
                else "."
            )
            + (
                " trustedNetwork is true: you have declared the network between the parties trusted."
                if cfg.trusted_network
                else ""
            )
        )
    if not cfg.network_policy.enabled:
        add(
            "networkPolicy.enabled is false: every port of the node, KusciaAPI included, is open to the whole cluster."
        )
    elif cfg.kusciaapi_transport == "portForward":
        if cfg.network_policy.kusciaapi_from != NetworkPolicySettings().kusciaapi_from:
            add(
                "networkPolicy.kusciaApiFrom is set but kusciaApiTransport is portForward, which needs no "
                "opening: KusciaAPI is admitted from the node's own namespace only and the list is not used. "
                "Drop it, or set kusciaApiTransport: serviceProxy."
            )
    elif "0.0.0.0/0" in cfg.network_policy.kusciaapi_from:
        add(
            "networkPolicy.kusciaApiFrom allows 0.0.0.0/0 (kusciaApiTransport serviceProxy): any pod in the "
            "cluster can reach KusciaAPI (the token still protects it under TLS). The service proxy only "
            "needs the API server, so narrow it to the API server addresses: kubectl get endpoints "
            "kubernetes -n default -o jsonpath='{.subsets[*].addresses[*].ip}' (each as /32), or use "
            "kusciaApiTransport: portForward, which needs no opening."
        )
    if "domainKeyData" in cfg.encrypted_settings:
        add(
            "domainKeyData is encrypted, so it was not checked here; offline output shows a stand-in key "
            "(pulumi up uses and checks the real one)."
        )
    if cfg.runtime == "runp" and cfg.image == DEFAULT_IMAGE:
        add(
            "runtime runp runs SecretFlow inside the Kuscia pod and needs the kuscia-secretflow image; the "
            "default image is the plain kuscia image. Set kuscia:image to a kuscia-secretflow tag."
        )
    if cfg.pod_security == "rootless" and cfg.runtime == "runk":
        add(
            "podSecurity rootless with runtime runk: the Kuscia pod passes Pod Security restricted, but "
            "the namespace keeps enforcing baseline, because runk's task pods run there without a "
            "restricted securityContext."
        )
    warnings.extend(_database_warnings(cfg))
    warnings.extend(_reachability_warnings(cfg))
    warnings.extend(_peer_warnings(cfg))
    if cfg.require_peer_ready and cfg.peering_timeout_seconds < 300:
        add(
            f"requirePeerReady with peeringTimeoutSeconds {cfg.peering_timeout_seconds}: the first handshake "
            "often takes several minutes (up to about 5), so the deploy may fail while peering is still "
            "on its way; 300 or more is safer."
        )
    return warnings


def _database_warnings(cfg: PartyConfig) -> list[str]:
    db = cfg.database
    if db.mode != "external":
        return []
    warnings = []
    if db.name == default_database_name(cfg.domain_id):
        warnings.append(
            f"database.name defaults to {db.name}: if another stack with domain ID {cfg.domain_id} (say staging "
            "and production) uses the same MySQL server, both nodes would share one kine database and corrupt "
            "each other. Set database.name explicitly per stack."
        )
    if db.user == "kuscia":
        warnings.append(
            "database.user is kuscia: every party on a shared MySQL server would manage the same "
            f"user and overwrite its password. Give each party its own, e.g. kuscia_{cfg.domain_id.replace('-', '_')}."
        )
    return warnings


def _reachability_warnings(cfg: PartyConfig) -> list[str]:
    default = f"{gateway_scheme(cfg.protocol)}://{cfg.service_dns_name}:{GATEWAY_PORT}"
    if cfg.public_endpoint != default:
        return []
    if cfg.service.type != "ClusterIP":
        return [
            f"service.type is {cfg.service.type} but publicEndpoint is the in-cluster address {default}: "
            "partners in other clusters cannot use it. Set publicEndpoint to the load balancer or "
            "node address, e.g. https://203.0.113.10:31080."
        ]
    if any(p.stack is None for p in cfg.peers):
        return [
            f"publicEndpoint is the in-cluster address {default}: a partner configured with a pasted bundle "
            "can reach it only from this same cluster. For partners elsewhere, expose the gateway "
            "(service.type LoadBalancer or NodePort) and set publicEndpoint."
        ]
    return []


def _peer_warnings(cfg: PartyConfig) -> list[str]:
    """Pasted bundles that look mixed up: a certificate for another domain, or one key twice."""
    from kuscia_components.core.pki import load_certificate, public_key_sha256

    warnings = []
    seen: dict[str, str] = {}
    for peer in cfg.peers:
        if peer.cert is None:
            continue
        try:
            names = load_certificate(peer.cert).subject.get_attributes_for_oid(_common_name_oid())
            fingerprint = public_key_sha256(peer.cert)
        except Exception:  # validated at parse time; nothing to add if it cannot be read again
            continue
        common_name = str(names[0].value) if names else None
        if common_name is not None and common_name != peer.domain_id:
            warnings.append(
                f"peers: the certificate given for {peer.domain_id} is Kuscia's certificate of "
                f"{common_name!r} (CN={common_name}): check that you pasted {peer.domain_id}'s own peering bundle."
            )
        if fingerprint in seen:
            warnings.append(
                f"peers: {seen[fingerprint]} and {peer.domain_id} carry the same public key; each party has "
                "its own key, so one of the pasted certificates is probably the wrong one."
            )
        seen.setdefault(fingerprint, peer.domain_id)
    return warnings


def _common_name_oid() -> Any:
    from cryptography.x509.oid import NameOID

    return NameOID.COMMON_NAME

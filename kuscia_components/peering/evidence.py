"""Evidence for a link that is not Ready: what tells Kuscia's one generic reason apart.

Gathered through KusciaAPI (our node, and the partner's when one program holds both), the
partner's Service through the API server, and the seed's curl from inside our pod
(`inpod.py`). Every look is bounded and optional: what cannot be seen stays None (unknown).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from kuscia_components.peering.bundle import Endpoint, same_key
from kuscia_components.peering.props import LinkProps

if TYPE_CHECKING:
    from kuscia_components.peering.client import KusciaApiClient
    from kuscia_components.peering.diagnosis import Evidence
    from kuscia_components.peering.probe import ProbeResult


def gather_evidence(
    client: KusciaApiClient,
    link: LinkProps | Mapping[str, Any],
    *,
    pod_probe: Callable[[str], ProbeResult | None] | None = None,
) -> Evidence:
    """What tells Kuscia's one generic reason apart, as far as we can look:
    our node's own key, our copy of the partner's key, the partner's Service (a cluster DNS
    endpoint), when one program holds both nodes (`partner_node`) the partner's copy of us, and
    the seed's curl of the partner's endpoint from inside our pod (`pod_probe`, by default
    pods/exec into the client's node: one probe, a few seconds, None when exec is not possible)."""
    from kuscia_components.peering.client import KusciaApiError, NodeTarget, probe_gateway
    from kuscia_components.peering.diagnosis import Evidence
    from kuscia_components.peering.provider import node_client

    link = link if isinstance(link, LinkProps) else LinkProps.from_props(link)
    src, dst = link.domain_id, link.partner_domain_id
    found: dict[str, Any] = {}
    with contextlib.suppress(KusciaApiError):
        found["node_key_matches"] = same_key(client.query_domain(src).get("cert"), link.own_cert)
        found["our_partner_domain_present"], found["our_copy_matches"] = _registration(
            client, dst, link.partner_cert
        )
    if link.partner_node:
        their_node = LinkProps.from_props(
            {
                **link.partner_node,  # namespace, service, protocol, token of the partner's node
                "domain_id": dst,
                "kube_context": link.kube_context,
                "kubeconfig": link.kubeconfig,
                "kusciaapi_transport": link.kusciaapi_transport,
                "timeout_seconds": link.timeout_seconds,
            }
        )
        with node_client(their_node) as theirs, contextlib.suppress(KusciaApiError):
            # The partner's own certificate tells whether the bundle we were given is current.
            if same_key(theirs.query_domain(dst).get("cert"), link.partner_cert) is False:
                found["our_copy_matches"] = False
            found["partner_has_us"], found["partner_copy_matches"] = _registration(theirs, src, link.own_cert)
    endpoint = Endpoint.parse(link.partner_endpoint) if link.partner_endpoint else None
    service = endpoint.cluster_service() if endpoint is not None else None
    if endpoint is not None and service is not None:
        target = NodeTarget(
            service[0],
            service[1],
            dst,
            link.partner_protocol_or_default,
            kube_context=link.kube_context,
            kubeconfig=link.kubeconfig,
            # A port-forward reaches the pods the endpoint's Service selects: its own selector
            # where it can be read, since a gateway Service (kuscia-gateway-<id>) is not the
            # `app` label of the pods it selects.
            transport=link.kusciaapi_transport,
            selector=service_selector(link, *service) if link.kusciaapi_transport != "serviceProxy" else (),
        )
        answers, detail = probe_gateway(target, port=endpoint.port)
        if answers is False:  # only a missing Service or pod is a fact about the partner's side
            found["gateway_reachable"], found["gateway_detail"] = False, detail
    if link.partner_endpoint:
        found["pod_probe"] = (pod_probe or in_pod_probe(client))(link.partner_endpoint)
    return Evidence(**found)


def in_pod_probe(
    client: KusciaApiClient, timeout: float | None = None
) -> Callable[[str], ProbeResult | None]:
    """The in-pod probe from the client's own node (none for a client without a target), with
    at most `timeout` seconds (a wait near its deadline gives what is left)."""
    from kuscia_components.peering.inpod import PROBE_TIMEOUT_SECONDS, probe_from_node

    target = getattr(client, "target", None)
    if target is None:
        return lambda _endpoint: None
    limit = PROBE_TIMEOUT_SECONDS if timeout is None else max(1.0, min(PROBE_TIMEOUT_SECONDS, timeout))
    return lambda endpoint: probe_from_node(target, endpoint, limit)


def _registration(client: KusciaApiClient, domain_id: str, expected_cert: object) -> tuple[bool, bool | None]:
    """Does the client's node hold `domain_id` as a partner, and with the expected key?"""
    from kuscia_components.peering.client import DomainNotFound

    try:
        live = client.query_domain(domain_id)
    except DomainNotFound:
        return False, None
    return live.get("role") == "partner", same_key(live.get("cert"), expected_cert)


SELECTOR_LIMIT = 16  # labels; a Service selector is a handful


def service_selector(link: LinkProps, namespace: str, name: str) -> tuple[tuple[str, str], ...]:
    """The Service's `spec.selector` as the API server has it, or () when it cannot be read
    (missing, forbidden, unreachable: the port-forward then looks for `app: <name>` and says
    what it finds). Bounded: one GET, 5 s, 64 KiB."""
    from kuscia_components.kube.kubeconfig import KubeconfigRef
    from kuscia_components.kube.transport import ApiServerTransport

    try:
        with ApiServerTransport(KubeconfigRef(link.kubeconfig, link.kube_context)) as api:
            answer = api.request(
                "GET", f"/api/v1/namespaces/{namespace}/services/{name}", timeout=5.0, max_bytes=64 * 1024
            )
    except Exception:  # the evidence is best effort; the probe itself reports what it meets
        return ()
    document = answer.json() if answer.status == 200 else None
    spec = document.get("spec") if isinstance(document, dict) else None
    selector = spec.get("selector") if isinstance(spec, dict) else None
    if not isinstance(selector, dict) or not 0 < len(selector) <= SELECTOR_LIMIT:
        return ()
    pairs = tuple(sorted(selector.items()))
    return pairs if all(isinstance(k, str) and isinstance(v, str) for k, v in pairs) else ()

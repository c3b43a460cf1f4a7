"""`verify`: does a deployed node work? The seed's "confirm the deployment succeeded", automated.

The seed ends with checks done by hand on different machines: the pod Running, a `kine` table
with rows, `curl` to the gateway answering 401, and `kubectl get cdr` Ready both ways. Here each
is one function returning a typed `CheckResult` (kubecheck.py, dbcheck.py, and the node checks
below), run in order so that a check whose premise failed is SKIPped instead of piling up
errors: the Kubernetes context and API server, the Deployment and its pod, the node's config
Secret (its DSN and key, read through the Kubernetes API), KusciaAPI `/healthZ` and the gateway
through the API server (`kusciaApiTransport`: a port-forward to the pod, or the service proxy),
the database with the node's own DSN, and for each
configured partner both routes with Kuscia's reason and our diagnosis.

`run_verify` is the library entry (the Automation API helpers call it); the `verify` command
(kuscia_components.cli.checks) prints its report.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kuscia_components.checks.cdr_table import MISSING, UNKNOWN, RouteRow, ready_column
from kuscia_components.checks.database import node_database_checks
from kuscia_components.checks.kube import (
    KubeSession,
    KubeTarget,
    NodeSecret,
    check_api_server,
    check_context,
    check_deployment,
    check_pod,
    read_node_secret,
)
from kuscia_components.checks.report import (
    CheckResult,
    Report,
    Step,
    failed,
    first_line,
    passed,
    run_steps,
    skipped,
    warned,
)
from kuscia_components.config import GATEWAY_PORT, PartyConfig
from kuscia_components.core.redact import Redactor

if TYPE_CHECKING:
    from kuscia_components.config import PeerSettings
    from kuscia_components.kube.tls import KusciaApiTls
    from kuscia_components.peering.client import KusciaApiClient, NodeTarget
    from kuscia_components.peering.diagnosis import Diagnosis
    from kuscia_components.peering.probe import ProbeResult


def run_verify(
    cfg: PartyConfig, *, timeout: float = 5.0, db_address: str | None = None, redactor: Redactor | None = None
) -> Report:
    """Every post-deploy check of one node. Secrets met on the way go into `redactor`."""
    redactor = redactor if redactor is not None else Redactor()
    report = Report("verify", cfg.domain_id, cfg.domain_id)
    found: dict[str, Any] = {}

    def deployment() -> CheckResult:
        result = check_deployment(kube, cfg)
        found["selector"] = result.data.get("selector")
        return result

    def node_config() -> CheckResult:
        result, node = read_node_secret(kube, cfg)
        if node is not None:
            redactor.add(
                node.domain_key_data, node.datastore_endpoint, _dsn_password(node.datastore_endpoint)
            )
        found["node"] = node if not result.failed else None
        return result

    def kusciaapi() -> CheckResult:
        target, problem = node_target(cfg, found.get("node"))
        redactor.add(target.token)
        found["target"] = target
        return problem or check_kusciaapi(target, timeout)

    tls_needs_secret = ("node config",) if cfg.protocol != "NOTLS" else ()
    with KubeSession(KubeTarget.of(cfg, timeout)) as kube:
        report.checks = run_steps(
            [
                Step("kube context", lambda: check_context(kube)),
                Step("API server", lambda: check_api_server(kube), ("kube context",)),
                Step("deployment", deployment, ("API server",)),
                Step("pod", lambda: check_pod(kube, cfg, found.get("selector")), ("API server",)),
                Step("node config", node_config, ("API server",)),
                Step("KusciaAPI", kusciaapi, ("pod", *tls_needs_secret)),
                Step("gateway", lambda: check_gateway(node_target(cfg, None)[0], cfg, timeout), ("pod",)),
            ]
        )
    node: NodeSecret | None = found.get("node")
    if node is None:
        report.checks.append(skipped("database", "not checked: the node's DSN comes from its config Secret"))
    else:
        report.checks += node_database_checks(
            node.datastore_endpoint,
            cfg.domain_id,
            address=db_address,
            timeout=timeout,
            namespace=cfg.namespace,
        )
    if not cfg.peers:
        report.checks.append(skipped("peering", "no partners configured (kuscia:peers)"))
    elif "target" not in found or _status(report.checks, "KusciaAPI") != "PASS":
        report.checks.append(
            skipped("peering", "not checked: routes are read through KusciaAPI, which did not pass")
        )
    else:
        checks, rows = peering_checks(found["target"], cfg, node.cert if node else "", timeout)
        report.checks += checks
        report.routes = rows
    return report


def _status(checks: Sequence[CheckResult], name: str) -> str:
    return next((c.status for c in checks if c.name == name), "")


def _dsn_password(dsn: str) -> str | None:
    from kuscia_components.core.dsn import DsnError, parse_dsn

    try:
        return parse_dsn(dsn).password
    except DsnError:
        return None


# -- KusciaAPI and the gateway, through the API server (port-forward or service proxy) ---------------


def node_target(cfg: PartyConfig, node: NodeSecret | None) -> tuple[NodeTarget, CheckResult | None]:
    """Where KusciaAPI is, and the token TLS nodes want: derived from the key in the node's own
    Secret (NOTES §1.9), so it is the key the pod really runs with, whatever the stack file holds.
    Without a usable key the target has no token, and the second value says why."""
    from kuscia_components.core.pki import KeyFormatError, kusciaapi_token, load_domain_key
    from kuscia_components.peering.client import NodeTarget

    token, problem, tls = None, None, None
    if cfg.protocol != "NOTLS":
        if node is None:
            problem = skipped("KusciaAPI", "not checked: the token comes from the node's config Secret")
        else:
            try:
                key_pem = load_domain_key(node.domain_key_data)
                token = kusciaapi_token(key_pem, cfg.domain_id)
                if cfg.kusciaapi_transport == "portForward":
                    tls = kusciaapi_tls(key_pem, cfg.domain_id, cfg.protocol)
            except KeyFormatError as err:
                problem = failed(
                    "KusciaAPI",
                    f"the domainKeyData in the node's Secret does not load: {err}",
                    "run `pulumi up` to rewrite kuscia.yaml",
                )
    target = NodeTarget(
        namespace=cfg.namespace,
        service=cfg.service_name,
        domain_id=cfg.domain_id,
        protocol=cfg.protocol,
        token=token,
        kube_context=cfg.kube_context,
        kubeconfig=cfg.kubeconfig,
        transport=cfg.kusciaapi_transport,
        tls=tls,
    )
    return target, problem


def kusciaapi_tls(key_pem: str, domain_id: str, protocol: str) -> KusciaApiTls | None:
    """What verifies the node's KusciaAPI, from its domain key alone: the domain certificate
    (the subject and key of the pod's ca.crt) and, under MTLS, a client certificate minted now,
    in memory, for this run only (core/kusciaapi_certs.py)."""
    from kuscia_components.core import kusciaapi_certs, pki
    from kuscia_components.kube.tls import for_node

    client_cert = client_key = None
    if protocol == "MTLS":
        client_cert, client_key = kusciaapi_certs.build_client_cert(key_pem, domain_id)
    return for_node(protocol, domain_id, pki.build_domain_cert(key_pem, domain_id), client_cert, client_key)


def _client(target: NodeTarget, timeout: float = 5.0) -> KusciaApiClient:
    from kuscia_components.peering.client import KusciaApiClient, RetryPolicy

    return KusciaApiClient(
        target, retry=RetryPolicy(attempts=2, base_seconds=0.2, request_timeout_seconds=timeout)
    )


def check_kusciaapi(target: NodeTarget, timeout: float = 5.0, name: str = "KusciaAPI") -> CheckResult:
    """POST /healthZ on port 8082 through the node's transport (NOTES §4.1)."""
    from kuscia_components.peering.client import (
        ApiUnavailable,
        KubernetesAccessDenied,
        KusciaApiError,
        ServiceNotFound,
        TlsFailed,
        Unauthorized,
    )

    where = f"{target.namespace}/{target.service}:{target.port}"
    try:
        ready = _client(target, timeout).health()
    except ServiceNotFound:
        return failed(
            name, f"no Service {target.namespace}/{target.service}", "run `pulumi up` for this stack"
        )
    except KubernetesAccessDenied as err:
        needed = "create on pods/portforward" if target.port_forward else "create on services/proxy"
        return failed(name, str(err), f"ask for {needed} in {target.namespace}")
    except Unauthorized:
        return failed(
            name,
            f"KusciaAPI at {where} refused the token derived from the key in the node's Secret: the pod runs with "
            "another key (the Secret changed but the pod was not rolled)",
            f"kubectl -n {target.namespace} rollout restart deploy/{target.service}",
        )
    except ApiUnavailable as err:
        fix = (
            "wait for the pod to be Ready (--watch); if it is, read the pod log (kubectl logs): KusciaAPI "
            "does not listen on 8082"
            if target.port_forward
            else "wait for the pod to be Ready (--watch); if it is, the NetworkPolicy must admit the API "
            "server to 8082: widen kuscia:networkPolicy.kusciaApiFrom"
        )
        return failed(name, first_line(err), fix)
    except TlsFailed as err:
        fix = {
            "node_ca_mismatch": f"kubectl -n {target.namespace} rollout restart deploy/{target.service} (the pod "
            "runs another key than its Secret holds), or `pulumi up`",
            "protocol_mismatch": "set kuscia:protocol to what the node runs, then `pulumi up`",
            "client_cert_rejected": "`pulumi up` so the pod runs the stack's key and protocol",
        }.get(err.kind, "read the pod log (kubectl logs)")
        return failed(name, f"TLS to {where}: {first_line(err)}", fix)
    except KusciaApiError as err:
        return failed(name, f"/healthZ at {where}: {first_line(err)}", "read the pod log (kubectl logs)")
    if not ready:
        return failed(
            name, f"/healthZ at {where} answers ready=false", "Kuscia is still starting: add --watch"
        )
    how = target.scheme
    if target.verified:
        how += (
            f", {target.protocol}: server certificate verified against {target.domain_id}'s CA as 'kusciaapi'"
        )
    elif target.protocol != "NOTLS":
        how += (
            ", server certificate not verified (service proxy)"
            if not target.port_forward
            else ", not verified"
        )
    return passed(name, f"/healthZ ready at {where} ({how})")


def check_gateway(
    target: NodeTarget, cfg: PartyConfig, timeout: float = 5.0, name: str = "gateway"
) -> CheckResult:
    """The seed's `curl -kvvv <gateway>:1080`: a healthy gateway answers 401 with header
    `kuscia-error-message` and names its domain (NOTES §4.4, network_authorization_check.md)."""
    from kuscia_components.kube.errors import KubeError
    from kuscia_components.peering.client import KusciaApiError, kubernetes_transport

    path = target.request_path("/", port=GATEWAY_PORT)
    where = f"{target.namespace}/{target.service}:{GATEWAY_PORT}"
    try:
        response = kubernetes_transport(target, "GET", path, {"Accept": "*/*"}, None, timeout, GATEWAY_PORT)
    except (OSError, TimeoutError, KusciaApiError, KubeError) as err:
        return failed(name, f"no answer from {where}: {first_line(err)}", "see the API server and pod checks")
    headers = {k.lower(): v for k, v in response.headers.items()}
    body = response.body.decode("utf-8", "replace")
    if response.status == 401 and "kuscia-error-message" in headers:
        try:
            answer = json.loads(body)
        except ValueError:
            answer = {}
        domain = answer.get("domain") if isinstance(answer, dict) else None
        if domain and domain != cfg.domain_id:
            return failed(
                name,
                f"{where} answers for domain {domain!r}, not {cfg.domain_id!r}",
                "two nodes share a Service name or namespace: check kuscia:namespace",
            )
        version = answer.get("kuscia", "?") if isinstance(answer, dict) else "?"
        return passed(
            name, f"{where} answers 401 with kuscia-error-message, like the seed's curl (Kuscia {version})"
        )
    if response.status == 400 and "http request to an https server" in body.lower():
        return failed(
            name,
            f"{where} speaks HTTPS but the node's protocol is {cfg.protocol}",
            "the running config and the stack disagree on the protocol: pulumi up",
        )
    if response.status == 503:
        return failed(
            name,
            f"the API server found no ready endpoint for {where}: {body[:200]}",
            "the pod is not Ready, or envoy inside it did not start: kubectl logs",
        )
    return failed(
        name,
        f"{where} answered HTTP {response.status} without Kuscia's kuscia-error-message header",
        "something other than Kuscia's gateway answers on 1080 (another pod behind the Service, or a proxy)",
    )


# -- peering: the `kubectl get cdr` table ------------------------------------------------------------


def peering_checks(
    target: NodeTarget, cfg: PartyConfig, own_cert: str, timeout: float = 5.0
) -> tuple[list[CheckResult], list[RouteRow]]:
    """Per partner: our route to them and theirs to us (Kuscia makes `<peer>-<self>` with the
    partner Domain), Ready both ways, else Kuscia's reason and our diagnosis with the next step."""
    client = _client(target, timeout)
    checks, rows = [], []
    for peer in cfg.peers:
        outbound = read_route(client, cfg.domain_id, peer.domain_id)
        inbound = read_route(client, peer.domain_id, cfg.domain_id)
        endpoint = peer.endpoint or _route_endpoint(client, cfg.domain_id, peer.domain_id)
        probed = in_pod_probe(target, endpoint) if endpoint else None
        if not outbound.is_ready:
            diagnosis = outbound_diagnosis(client, cfg, peer, outbound, own_cert, probed, endpoint)
            outbound = _with_diagnosis(outbound, diagnosis)
        if not inbound.is_ready:
            inbound = _with_diagnosis(inbound, inbound_diagnosis(cfg, peer, inbound))
        rows += [outbound, inbound]
        checks.append(_peering_result(peer.domain_id, outbound, inbound))
        checks.append(_probe_result(peer.domain_id, endpoint, probed))
    return checks, rows


def in_pod_probe(target: NodeTarget, endpoint: str) -> ProbeResult | None:
    """The seed's `curl -kvvv <endpoint>` from inside the node's pod (pods/exec), once."""
    from kuscia_components.peering.inpod import probe_from_node

    return probe_from_node(target, endpoint)


def _route_endpoint(client: KusciaApiClient, source: str, destination: str) -> str:
    """The URL our route dials (a stack partner's bundle is not at hand here), or ""."""
    from kuscia_components.peering.client import KusciaApiError

    try:
        endpoint = client.query_route(source, destination).get("endpoint") or {}
    except KusciaApiError:
        return ""
    ports = endpoint.get("ports") or [{}]
    host, port = endpoint.get("host"), ports[0].get("port") if ports else None
    if not host or not port:
        return ""
    return f"{'https' if ports[0].get('isTLS') else 'http'}://{host}:{port}"


def _probe_result(peer: str, endpoint: str, probed: ProbeResult | None) -> CheckResult:
    name = f"in-pod probe {peer}"
    if not endpoint:
        return skipped(
            name, f"no endpoint of {peer} is known here (no route, and the bundle comes from a stack)"
        )
    if probed is None:
        return skipped(
            name,
            f"could not run the seed's curl of {endpoint} in the node's pod (pods/exec refused, or no Ready pod)",
            "ask for create and get on pods/exec in the node's namespace",
        )
    seen = f" ({probed.evidence})" if probed.evidence else ""
    if probed.reachable:
        return passed(name, f"{probed.summary}{seen}")
    if probed.reachable is None:
        return warned(name, f"{probed.summary}{seen}", f"from the pod: curl -kvvv {endpoint} must answer 401")
    fix = {
        "not_allow_listed": f"ask {peer} to allow-list this cluster's egress IP (and check our egress firewall)",
        "refused": f"ask {peer} whether their node and its gateway Service are up, and the port is right",
        "dns": f"the host of {endpoint} does not resolve in the cluster: check the bundle's endpoint",
        "protocol_mismatch": f"the endpoint's scheme must follow {peer}'s protocol (NOTLS: http://, TLS/MTLS: https://)",
    }.get(probed.verdict, f"from the pod: curl -kvvv {endpoint} must answer 401")
    return failed(name, f"{probed.summary}{seen}", fix)


def read_route(client: KusciaApiClient, source: str, destination: str) -> RouteRow:
    from kuscia_components.peering.client import KusciaApiError, RouteNotFound

    name = f"{source}-{destination}"
    try:
        live = client.query_route(source, destination)
    except RouteNotFound:
        return RouteRow(name, source, destination, "", "", MISSING)
    except KusciaApiError as err:
        return RouteRow(name, source, destination, "", "", UNKNOWN, reason=first_line(err))
    try:
        status = client.route_status([(source, destination)]).get(name) or {}
    except KusciaApiError:
        status = live.get("status") or {}
    reason = str(status.get("reason") or "")
    endpoint = live.get("endpoint") or {}
    host = str(endpoint.get("host") or "")
    ports: list[dict[str, Any]] = endpoint.get("ports") or [{}]
    port = ports[0].get("port") if ports else None
    return RouteRow(
        name,
        source,
        destination,
        host,
        str(live.get("authentication_type") or ""),
        ready_column(str(status.get("status") or ""), reason),
        reason,
        endpoint=f"{host}:{port}" if host and port else host,
    )


def outbound_diagnosis(
    client: KusciaApiClient,
    cfg: PartyConfig,
    peer: PeerSettings,
    row: RouteRow,
    own_cert: str,
    probed: ProbeResult | None = None,
    endpoint: str = "",
) -> Diagnosis:
    from kuscia_components.peering.diagnosis import Diagnosis, LinkContext, diagnose

    if row.ready == MISSING:
        return Diagnosis(
            "pending",
            f"{cfg.domain_id}'s node has no route {row.name}.",
            f"`pulumi up` for {cfg.domain_id} creates it (the partner link; it waits while {peer.domain_id}'s "
            "bundle is unknown).",
            False,
        )
    if row.ready == UNKNOWN:
        return Diagnosis(
            "unknown", f"KusciaAPI could not say: {row.reason}.", "See the KusciaAPI check.", False
        )
    from kuscia_components.peering.provider import gather_evidence

    evidence = gather_evidence(
        client,
        {
            "domain_id": cfg.domain_id,
            "partner_domain_id": peer.domain_id,
            "own_cert": own_cert or None,
            "partner_cert": peer.cert,
            "partner_endpoint": endpoint or None,
        },
        pod_probe=lambda _endpoint: probed,  # probed once per partner, above
    )
    endpoint = (
        endpoint or peer.endpoint or row.endpoint
    )  # a stack peer's bundle is not at hand: what the route dials
    status = "Failed" if row.ready == "False" else ""
    return diagnose(
        status, row.reason, LinkContext(cfg.domain_id, peer.domain_id, endpoint, peer.stack), evidence
    )


def inbound_diagnosis(cfg: PartyConfig, peer: PeerSettings, row: RouteRow) -> Diagnosis:
    """`<peer>-<self>` is Ready once the partner's handshake to us succeeded: their side."""
    from kuscia_components.peering.diagnosis import Diagnosis

    me, them = cfg.domain_id, peer.domain_id
    if row.ready == MISSING:
        return Diagnosis(
            "pending",
            f"{me}'s node has no route {row.name}: Kuscia creates it when the partner Domain {them} is registered.",
            f"`pulumi up` for {me} registers {them} (check {them} is in kuscia:peers).",
            False,
        )
    command = f"`pulumi up -s {peer.stack}`" if peer.stack else "`pulumi up` for their stack"
    return Diagnosis(
        "waiting_for_partner",
        f"{them} has not completed its handshake to {me}: it has not created its route to {me}, holds a stale "
        f"certificate of {me}, or cannot reach {me}'s gateway at {cfg.public_endpoint}.",
        f"Ask {them} to add {me} as a peer and run {command} (give them `pulumi stack output peeringBundle`); from "
        f"their cluster `curl -kvvv {cfg.public_endpoint}` must answer 401.",
        False,
    )


def _with_diagnosis(row: RouteRow, diagnosis: Diagnosis) -> RouteRow:
    from dataclasses import replace

    return replace(row, diagnosis=str(diagnosis))


_STATE = {
    "False": "is not Ready",
    "": "has no status yet",
    MISSING: "is missing",
    UNKNOWN: "could not be read",
}


def _peering_result(peer: str, outbound: RouteRow, inbound: RouteRow) -> CheckResult:
    name = f"peering {peer}"
    if outbound.is_ready and inbound.is_ready:
        return passed(name, f"{outbound.name} and {inbound.name} Ready")
    bad = outbound if not outbound.is_ready else inbound
    summary, _, next_step = bad.diagnosis.partition(" Next: ")
    return failed(
        name, f"{bad.name} {_STATE.get(bad.ready, bad.ready)}: {summary}", next_step or "see the table below"
    )

"""Kubernetes checks: the deployer's kubeconfig, RBAC before `up`, the node's objects after it.

Everything goes through `kuscia_components.kube` (the official client's kubeconfig loading, read at
call time, exec plugins and client certificates included) with short timeouts and no retries,
so an unreachable API server is one FAIL line after `--request-timeout`, not a minute of retries.
Permissions are asked with SelfSubjectAccessReview, the API server's own answer to "may I?",
for each kind the node's program creates and each verb Pulumi uses on it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kuscia_components.checks.report import CheckResult, failed, passed, skipped, warned
from kuscia_components.config import PartyConfig
from kuscia_components.kube.errors import (
    ApiError,
    ApiServerUnreachable,
    Forbidden,
    KubeconfigError,
    NotFound,
    Unauthenticated,
    api_error,
)
from kuscia_components.kube.kubeconfig import KubeconfigRef
from kuscia_components.kube.transport import ApiServerTransport, Response
from kuscia_components.node.manifests import DOMAIN_LABEL, names, needs_runk_rbac, runk_role

MANAGED_BY = "app.kubernetes.io/managed-by"
CRUD = ("get", "create", "patch", "delete")  # read, create (server-side apply), update, destroy
WATCH = ("get", "list", "watch")


@dataclass(frozen=True)
class KubeTarget:
    kubeconfig: str | None
    context: str | None
    timeout: float = 5.0

    @classmethod
    def of(cls, cfg: PartyConfig, timeout: float = 5.0) -> KubeTarget:
        return cls(cfg.kubeconfig, cfg.kube_context, timeout)

    @property
    def ref(self) -> KubeconfigRef:
        return KubeconfigRef(self.kubeconfig, self.context)


class KubeSession:
    """One API-server transport for a run; `check_context` connects it, the `with` block closes it."""

    def __init__(self, target: KubeTarget) -> None:
        self.target = target
        self.transport = ApiServerTransport(target.ref)
        self.context = ""
        self.server = ""

    def __repr__(self) -> str:
        return f"KubeSession({self.context or 'no context'} -> {self.server or '?'})"

    def __enter__(self) -> KubeSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.transport.close()

    def send(
        self, method: str, path: str, *, body: Any = None, query: Iterable[tuple[str, str]] = ()
    ) -> Response:
        """One request with a JSON body; ApiServerUnreachable when no answer came."""
        payload = json.dumps(body).encode() if body is not None else None
        return self.transport.request(
            method, path, body=payload, query=list(query), timeout=self.target.timeout
        )

    def get(self, path: str, query: Iterable[tuple[str, str]] = ()) -> dict[str, Any]:
        """The JSON object at `path`; the typed ApiError (NotFound, Forbidden, ...) otherwise."""
        response = self.send("GET", path, query=query)
        error = api_error(response, f"GET {path}")
        if error is not None:
            raise error
        document = response.json()
        if not isinstance(document, dict):
            raise ApiError(f"GET {path}", response.status, message="the answer is not a JSON object")
        return document

    def allowed(self, verb: str, group: str, resource: str, namespace: str | None) -> bool | None:
        """SelfSubjectAccessReview; None when the API server would not answer it."""
        resource, _, subresource = resource.partition("/")
        attributes = {"verb": verb, "group": group, "resource": resource}
        if subresource:
            attributes["subresource"] = subresource
        if namespace:
            attributes["namespace"] = namespace
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes},
        }
        response = self.send("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body=review)
        answer = response.json()
        if response.status >= 300 or not isinstance(answer, dict):
            return None
        return bool((answer.get("status") or {}).get("allowed"))


def unexpected(name: str, what: str, status: int) -> CheckResult:
    """An answer none of the expected ones (200, 403, 404)."""
    return failed(name, f"reading {what} answered HTTP {status}", "check the API server and your kubeconfig")


# -- the connection ------------------------------------------------------------------------------


def check_context(s: KubeSession, name: str = "kube context") -> CheckResult:
    """The kubeconfig exists, has the context, and its credentials load."""
    try:
        connection = s.transport.connect()
    except KubeconfigError as err:
        return failed(name, err.detail, err.fix)
    s.context, s.server = connection.context, connection.server
    return passed(name, f"{s.context} -> {s.server}")


def check_api_server(s: KubeSession, name: str = "API server") -> CheckResult:
    try:
        response = s.send("GET", "/version")
    except ApiServerUnreachable as err:
        return failed(
            name,
            str(err),
            "check the cluster address in the kubeconfig, your VPN/network, and that the cluster is running",
        )
    error, body = api_error(response, "GET /version"), response.json()
    if isinstance(error, Unauthenticated):
        return failed(
            name,
            f"{s.server} refused the credentials of context {s.context!r} (HTTP 401)",
            f"renew the credentials (expired token or certificate): kubectl --context {s.context} get ns",
        )
    if error is not None or not isinstance(body, dict):
        return failed(
            name, f"{s.server}/version answered HTTP {response.status}", "is this a Kubernetes API server?"
        )
    return passed(
        name, f"Kubernetes {body.get('gitVersion', '?')} at {s.server}", version=body.get("gitVersion")
    )


# -- preflight ----------------------------------------------------------------------------------


def check_namespace_free_or_ours(s: KubeSession, cfg: PartyConfig, name: str = "namespace") -> CheckResult:
    """Free, or labelled by this program for this domain (`kuscia.secretflow/domain-id` and
    `app.kubernetes.io/managed-by=pulumi`). A labelled namespace of an earlier deployment of the
    same domain ID by another stack looks the same: which stack owns it is in Pulumi state."""
    ns = cfg.namespace
    try:
        body = s.get(f"/api/v1/namespaces/{ns}")
    except NotFound:
        return passed(name, f"{ns} does not exist yet: `pulumi up` creates it")
    except Forbidden:
        return warned(
            name,
            f"may not read namespace {ns}, so whether it is free is unknown",
            f"ask for `get` on namespaces, or make sure {ns} does not exist (`pulumi up` creates it)",
        )
    except ApiError as err:
        return unexpected(name, f"namespace {ns}", err.status)
    labels = (body.get("metadata") or {}).get("labels") or {}
    if (body.get("status") or {}).get("phase") == "Terminating":
        return failed(name, f"{ns} is being deleted", f"wait until `kubectl get ns {ns}` says NotFound")
    owner = labels.get(DOMAIN_LABEL)
    if owner == cfg.domain_id and labels.get(MANAGED_BY) == "pulumi":
        return passed(name, f"{ns} exists, labelled for domain {cfg.domain_id} by this program (ours)")
    if owner:
        return failed(
            name,
            f"{ns} belongs to domain {owner}, not {cfg.domain_id}",
            "set kuscia:namespace to a namespace of its own (default autonomy-<domainId>)",
        )
    return failed(
        name,
        f"{ns} already exists and was not created by this program (no {DOMAIN_LABEL} label)",
        f"choose another kuscia:namespace, delete {ns}, or adopt it: pulumi import kubernetes:core/v1:Namespace "
        f"<resource name> {ns}",
    )


@dataclass(frozen=True)
class Access:
    group: str
    resource: str
    verbs: tuple[str, ...]
    namespaced: bool = True
    why: str = ""

    @property
    def label(self) -> str:
        return f"{self.resource}.{self.group}" if self.group else self.resource


def required_access(cfg: PartyConfig) -> list[Access]:
    """Every kind the node's program creates (node.py, database.py) with the verbs Pulumi uses,
    plus what Pulumi's Deployment await and `verify` read."""
    needed = [
        Access("", "namespaces", CRUD, namespaced=False),
        Access("", "serviceaccounts", CRUD),
        Access("", "secrets", CRUD),
        Access("", "services", CRUD),
        Access("apps", "deployments", CRUD),
        Access(
            "",
            "pods",
            WATCH,
            why="Pulumi waits for the Deployment's pods; verify reads them; port-forward and exec find the pod",
        ),
        Access("apps", "replicasets", WATCH, why="Pulumi waits for the Deployment's ReplicaSet"),
    ]
    if cfg.network_policy.enabled:
        needed.append(Access("networking.k8s.io", "networkpolicies", CRUD))
    if needs_runk_rbac(cfg):
        needed += [
            Access("rbac.authorization.k8s.io", "roles", CRUD),
            Access("rbac.authorization.k8s.io", "rolebindings", CRUD),
        ]
    if cfg.database.mode == "in-cluster":
        needed.append(Access("apps", "statefulsets", CRUD))
    return needed


def check_access(s: KubeSession, cfg: PartyConfig) -> list[CheckResult]:
    """One line per kind: which verbs the API server would refuse."""
    needed = required_access(cfg)
    answers = _ask_all(
        s,
        [(a.group, a.resource, v, cfg.namespace if a.namespaced else None) for a in needed for v in a.verbs],
    )
    results = []
    for access in needed:
        name = f"access {access.label}"
        where = f" in {cfg.namespace}" if access.namespaced else " (cluster-wide)"
        denied = [v for v in access.verbs if answers[(access.group, access.resource, v)] is False]
        unknown = [v for v in access.verbs if answers[(access.group, access.resource, v)] is None]
        if denied:
            results.append(
                failed(
                    name,
                    f"denied: {', '.join(denied)}{where}" + (f" ({access.why})" if access.why else ""),
                    f"ask a cluster admin to grant {', '.join(denied)} on {access.label}{where}; confirm with "
                    f"kubectl auth can-i {denied[0]} {access.label}"
                    + (f" -n {cfg.namespace}" if access.namespaced else ""),
                )
            )
        elif unknown:
            results.append(
                warned(
                    name,
                    f"the API server did not answer SelfSubjectAccessReview for {', '.join(unknown)}",
                    f"kubectl auth can-i {unknown[0]} {access.label}",
                )
            )
        else:
            results.append(passed(name, f"{', '.join(access.verbs)}{where}"))
    return results


def check_runk_role_grants(s: KubeSession, cfg: PartyConfig, name: str = "access runk Role") -> CheckResult:
    """Kubernetes refuses to create a Role that grants more than its creator holds, unless the
    creator may `escalate` roles; the runk Role grants task-pod rights in the namespace."""
    if not needs_runk_rbac(cfg):
        return skipped(name, "no runk Role (runtime runp, or runkKubeconfigSecret is set)")
    if s.allowed("escalate", "rbac.authorization.k8s.io", "roles", cfg.namespace):
        return passed(name, f"may escalate roles in {cfg.namespace}")
    wanted = [
        (group, resource, verb)
        for rule in runk_role(cfg)["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    ]
    answers = _ask_all(s, [(g, r, v, cfg.namespace) for g, r, v in wanted])
    denied = sorted({f"{r}: {v}" for g, r, v in wanted if answers[(g, r, v)] is False})
    if denied:
        return failed(
            name,
            f"the runk Role grants rights you do not hold in {cfg.namespace} ({'; '.join(denied[:6])}"
            f"{' ...' if len(denied) > 6 else ''}), so Kubernetes refuses to create it",
            "ask a cluster admin for those rights (or `escalate` on roles) in the namespace, or run with "
            "kuscia:runkKubeconfigSecret",
        )
    return passed(name, f"you hold every right the runk Role grants in {cfg.namespace}")


def _ask_all(
    s: KubeSession, questions: list[tuple[str, str, str, str | None]]
) -> dict[tuple[str, str, str], bool | None]:
    def ask(question: tuple[str, str, str, str | None]) -> bool | None:
        group, resource, verb, namespace = question
        return s.allowed(verb, group, resource, namespace)

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(ask, questions))
    return {(g, r, v): a for (g, r, v, _n), a in zip(questions, answers, strict=True)}


# -- after `up`: the node's objects ----------------------------------------------------------------


def check_deployment(s: KubeSession, cfg: PartyConfig, name: str = "deployment") -> CheckResult:
    ns, deployment = cfg.namespace, names(cfg)["deployment"]
    try:
        body = s.get(f"/apis/apps/v1/namespaces/{ns}/deployments/{deployment}")
    except NotFound:
        return failed(
            name, f"no Deployment {ns}/{deployment}", f"deploy the node: pulumi up (stack of {cfg.domain_id})"
        )
    except Forbidden:
        return failed(name, f"may not read Deployments in {ns}", f"ask for get on deployments.apps in {ns}")
    except ApiError as err:
        return unexpected(name, f"Deployment {deployment}", err.status)
    state = body.get("status") or {}
    wanted = int((body.get("spec") or {}).get("replicas", 1))
    available = int(state.get("availableReplicas") or 0)
    conditions = {c.get("type"): c for c in state.get("conditions") or []}
    progressing = conditions.get("Progressing") or {}
    selector = ((body.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        return failed(
            name,
            f"{deployment}: rollout stuck ({progressing.get('message', 'ProgressDeadlineExceeded')})",
            f"see the pod check below; kubectl -n {ns} describe deploy {deployment}",
            selector=selector,
        )
    if available >= 1 and (conditions.get("Available") or {}).get("status", "True") == "True":
        return passed(name, f"{deployment} available ({available}/{wanted})", selector=selector)
    return failed(
        name,
        f"{deployment} has {available}/{wanted} available replicas",
        "see the pod check below",
        selector=selector,
    )


def check_pod(s: KubeSession, cfg: PartyConfig, selector: dict[str, str] | None = None) -> list[CheckResult]:
    """`pod` (Running and Ready, else why not) and `pod restarts` (count, last termination)."""
    ns = cfg.namespace
    labels = selector or {"app": cfg.service_name}
    query = [("labelSelector", ",".join(f"{k}={v}" for k, v in sorted(labels.items())))]
    try:
        body = s.get(f"/api/v1/namespaces/{ns}/pods", query=query)
    except Forbidden:
        return [failed("pod", f"may not list pods in {ns}", f"ask for list on pods in {ns}")]
    except ApiError:
        body = {}
    items = [p for p in body.get("items") or [] if not (p.get("metadata") or {}).get("deletionTimestamp")]
    if not items:
        return [
            failed(
                "pod",
                f"no Kuscia pod in {ns} (selector {query[0][1]})",
                f"kubectl -n {ns} describe deploy {cfg.service_name} (quota, admission or scheduling errors show there)",
            )
        ]
    items.sort(key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp") or ""), reverse=True)
    pod = PodState.of(items[0])
    results = [_pod_ready(pod, ns), _pod_restarts(pod, ns)]
    if len(items) > 1:
        results.append(
            warned(
                "pod count",
                f"{len(items)} Kuscia pods in {ns}: two Kuscia must never share one kine database",
                f"keep replicas at 1 with strategy Recreate (`pulumi up` sets both); kubectl -n {ns} get pods",
            )
        )
    return results


@dataclass(frozen=True)
class PodState:
    name: str
    phase: str
    ready: bool
    restarts: int
    waiting_reason: str = ""
    waiting_message: str = ""
    last_reason: str = ""
    last_exit_code: int | None = None
    last_finished: str = ""
    unschedulable: str = ""
    conditions: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, pod: dict[str, Any]) -> PodState:
        status = pod.get("status") or {}
        containers = status.get("containerStatuses") or []
        conditions = {str(c.get("type")): c for c in status.get("conditions") or []}
        waiting: dict[str, Any] = next(
            (c["state"]["waiting"] for c in containers if (c.get("state") or {}).get("waiting")), {}
        )
        last: dict[str, Any] = next(
            (
                c["lastState"]["terminated"]
                for c in containers
                if (c.get("lastState") or {}).get("terminated")
            ),
            {},
        )
        scheduled = conditions.get("PodScheduled") or {}
        return cls(
            name=str((pod.get("metadata") or {}).get("name", "?")),
            phase=str(status.get("phase", "Unknown")),
            ready=(conditions.get("Ready") or {}).get("status") == "True",
            restarts=sum(int(c.get("restartCount") or 0) for c in containers),
            waiting_reason=str(waiting.get("reason") or ""),
            waiting_message=str(waiting.get("message") or ""),
            last_reason=str(last.get("reason") or ""),
            last_exit_code=last.get("exitCode"),
            last_finished=str(last.get("finishedAt") or ""),
            unschedulable=str(scheduled.get("message") or "") if scheduled.get("status") == "False" else "",
            conditions={k: str(v.get("status")) for k, v in conditions.items()},
        )

    @property
    def last_termination(self) -> str:
        if not self.last_reason and self.last_exit_code is None:
            return ""
        at = f" at {self.last_finished}" if self.last_finished else ""
        return f"{self.last_reason or 'terminated'} (exit code {self.last_exit_code}){at}"


def _pod_ready(pod: PodState, ns: str) -> CheckResult:
    name = "pod"
    logs = f"kubectl -n {ns} logs {pod.name} --previous"
    if pod.ready:
        return passed(name, f"{pod.name} Running and Ready")
    if pod.waiting_reason == "CrashLoopBackOff":
        last = f"; last exit: {pod.last_termination}" if pod.last_termination else ""
        return failed(
            name,
            f"{pod.name} CrashLoopBackOff after {pod.restarts} restarts{last}: Kuscia keeps exiting; k3s inside it "
            "must start within 30 s, and nearly always cannot because of the database (kuscia#216, #721)",
            f"read the database checks below and `{logs}` (a 'stat .../etc/kubeconfig' error means k3s never started)",
        )
    if pod.waiting_reason in ("ImagePullBackOff", "ErrImagePull", "InvalidImageName"):
        return failed(
            name,
            f"{pod.name} cannot pull its image ({pod.waiting_reason}: {pod.waiting_message[:200]})",
            "check kuscia:image (a pinned, existing tag) and that the cluster can reach the registry",
        )
    if pod.waiting_reason in ("CreateContainerConfigError", "CreateContainerError"):
        return failed(
            name,
            f"{pod.name} {pod.waiting_reason}: {pod.waiting_message[:200]}",
            f"`pulumi up` recreates the config Secret; kubectl -n {ns} describe pod {pod.name}",
        )
    if pod.unschedulable:
        return failed(
            name,
            f"{pod.name} is not scheduled: {pod.unschedulable[:200]}",
            "free capacity or lower kuscia:resources.requests",
        )
    state = pod.waiting_reason or pod.phase
    return failed(
        name,
        f"{pod.name} is {state}, not Ready yet",
        f"still starting? add --watch; else kubectl -n {ns} describe pod {pod.name}",
    )


def _pod_restarts(pod: PodState, ns: str) -> CheckResult:
    name = "pod restarts"
    if not pod.restarts:
        return passed(name, f"{pod.name}: 0 restarts", restarts=0)
    fix = f"kubectl -n {ns} logs {pod.name} --previous"
    if pod.last_reason == "OOMKilled":
        fix = "raise kuscia:resources.limits.memory (Kuscia runs k3s, envoy and the agent in one container)"
    return warned(
        name,
        f"{pod.name}: {pod.restarts} restarts; last termination {pod.last_termination or 'unknown'}",
        fix,
        restarts=pod.restarts,
        last_reason=pod.last_reason,
    )


@dataclass(frozen=True)
class NodeSecret:
    """What verify needs from the node's config Secret (the key and DSN stay out of reprs)."""

    domain_id: str
    protocol: str
    datastore_endpoint: str = field(repr=False)
    domain_key_data: str = field(repr=False)
    cert: str = ""


def read_node_secret(
    s: KubeSession, cfg: PartyConfig, name: str = "node config"
) -> tuple[CheckResult, NodeSecret | None]:
    """kuscia.yaml from Secret `kuscia-autonomy-<id>-config`: the DSN, key and protocol the pod runs with."""
    import yaml

    ns, secret = cfg.namespace, names(cfg)["config_secret"]
    try:
        body = s.get(f"/api/v1/namespaces/{ns}/secrets/{secret}")
    except NotFound:
        return failed(
            name, f"no Secret {ns}/{secret}", f"run `pulumi up` for {cfg.domain_id}; it holds kuscia.yaml"
        ), None
    except Forbidden:
        return failed(
            name,
            f"may not read Secrets in {ns}; verify reads the node's DSN and key from {secret}",
            f"kubectl auth can-i get secrets -n {ns}; ask for it, or run verify with a context that may",
        ), None
    except ApiError as err:
        return unexpected(name, f"Secret {secret}", err.status), None
    data = body.get("data") or {}
    try:
        doc = yaml.safe_load(base64.b64decode(data["kuscia.yaml"]).decode("utf-8"))
        if not isinstance(doc, dict):
            raise ValueError("not a mapping")
    except (KeyError, ValueError, UnicodeDecodeError, yaml.YAMLError) as err:
        reason = "has no key kuscia.yaml" if isinstance(err, KeyError) else "holds no readable kuscia.yaml"
        return failed(
            name, f"Secret {secret} {reason}", f"run `pulumi up` for {cfg.domain_id} to rewrite it"
        ), None
    cert = data.get("domain.crt", "")
    node = NodeSecret(
        domain_id=str(doc.get("domainID", "")),
        protocol=str(doc.get("protocol", "")),
        datastore_endpoint=str(doc.get("datastoreEndpoint", "")),
        domain_key_data=str(doc.get("domainKeyData", "")),
        cert=base64.b64decode(cert).decode("utf-8", "replace") if cert else "",
    )
    if node.domain_id != cfg.domain_id:
        return failed(
            name,
            f"Secret {secret} configures domain {node.domain_id!r}, not {cfg.domain_id!r}",
            f"run `pulumi up` for {cfg.domain_id}; check kuscia:namespace is not shared with another domain",
        ), node
    if node.protocol != cfg.protocol:
        return warned(
            name,
            f"the node runs protocol {node.protocol or '(none)'}, the stack config says {cfg.protocol}",
            "the config change is not deployed yet: pulumi up",
        ), node
    return passed(name, f"Secret {secret}: domain {node.domain_id}, protocol {node.protocol}"), node

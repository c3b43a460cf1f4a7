"""Typed errors for Kubernetes, and the one mapping from API-server answers to them.

No message here ever carries a credential: kubeconfig errors name the file, the context and the
setting to change; API errors carry the API server's own Status message, which names the user
and the object, never a token.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from kuscia_components.kube.transport import Response

KUBECONFIG_SETTING = "kuscia:kubeconfig"
CONTEXT_SETTING = "kuscia:kubeContext"


class KubeError(Exception):
    """Anything this package raises."""


# -- the kubeconfig ----------------------------------------------------------------------------


class KubeconfigError(KubeError):
    """The kubeconfig or its context cannot be used: `detail` says what, `fix` what to do, and
    `setting` which stack setting points at it."""

    def __init__(self, detail: str, fix: str, setting: str = KUBECONFIG_SETTING) -> None:
        super().__init__(f"{detail}. Fix: {fix}")
        self.detail = detail
        self.fix = fix
        self.setting = setting


class KubeconfigNotFound(KubeconfigError):
    """No file at the path, or nothing in it that reads as a kubeconfig."""


class ContextNotSet(KubeconfigError):
    """The kubeconfig has no current-context and none was asked for."""


class ContextNotFound(KubeconfigError):
    """The context asked for is not in the kubeconfig."""


class CredentialsNotLoaded(KubeconfigError):
    """The context is there but its cluster or user does not load (missing certificate, ...)."""


# -- the wire ----------------------------------------------------------------------------------


class ApiServerUnreachable(KubeError, ConnectionError):
    """No HTTP answer came (refused, timed out, TLS failure, unknown host). An OSError, so
    callers that retry connection errors retry this one."""

    def __init__(self, server: str, reason: str) -> None:
        super().__init__(f"{server} does not answer: {reason}")
        self.server = server
        self.reason = reason


class AnswerTooLarge(KubeError):
    """The answer was longer than the caller allowed; the connection was dropped."""

    def __init__(self, what: str, limit: int) -> None:
        super().__init__(f"{what}: the answer is longer than {limit} bytes, so it was not read")
        self.limit = limit


# -- pod streams (port-forward, exec) -----------------------------------------------------------


class PodNotFound(KubeError):
    """No pod carries the node's labels in its namespace: the node is not deployed, or its
    Deployment is between pods (a `Recreate` rollout)."""

    def __init__(self, namespace: str, selector: str) -> None:
        super().__init__(f"no pod with labels {selector} in namespace {namespace}")
        self.namespace = namespace
        self.selector = selector


class PodNotReady(KubeError, ConnectionError):
    """Pods are there but none is Running and Ready yet: transient (an OSError, so retried)."""

    def __init__(self, namespace: str, selector: str, states: str) -> None:
        super().__init__(f"no Running and Ready pod with labels {selector} in {namespace} ({states})")
        self.namespace = namespace
        self.selector = selector


class StreamClosed(KubeError, ConnectionError):
    """The stream ended before a whole answer came: the kubelet's error channel (e.g. the pod
    refused the port), a closed websocket or a timeout. An OSError, so retried as a dropped
    connection is."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"{what}: {reason}")
        self.reason = reason


class StreamTlsError(KubeError):
    """TLS over the pod stream failed (certificate not verified, wrong host name, not TLS at
    all). Not an OSError: retrying does not change a certificate."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"{what}: TLS failed: {reason}")
        self.reason = reason


# -- answers -----------------------------------------------------------------------------------


class ApiError(KubeError):
    """The API server answered with an error: `status` (HTTP), `reason` (the Status reason, e.g.
    NotFound) and `message` (the API server's words)."""

    def __init__(self, what: str, status: int, reason: str = "", message: str = "") -> None:
        words = " ".join(part for part in (reason, message) if part)
        super().__init__(f"{what}: HTTP {status}" + (f" ({words})" if words else ""))
        self.status = status
        self.reason = reason
        self.message = message


class Unauthenticated(ApiError):
    """401: the credentials of the context are not accepted (expired token or certificate)."""


class Forbidden(ApiError):
    """403: authenticated, but RBAC does not allow it."""


class NotFound(ApiError):
    """404: no such object (or no such resource type)."""


class Conflict(ApiError):
    """409: the object exists already, or changed meanwhile."""


class Unavailable(ApiError):
    """503: e.g. a proxied Service without a ready endpoint."""


class StreamForbidden(Forbidden):
    """RBAC refused pods/portforward or pods/exec (the websocket upgrade answered 403)."""


_BY_STATUS: dict[int, type[ApiError]] = {
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    503: Unavailable,
}


def api_error(response: Response, what: str, *, proxied: bool = False) -> ApiError | None:
    """The typed error for an answer of status >= 400, or None for a success.

    With `proxied` (a service-proxy or port-forward request) only the API server's own
    `kind: Status` answers map: anything else is what the proxied service itself answered and is
    for the caller to read.
    """
    if response.status < 400:
        return None
    document = response.json()
    is_status = isinstance(document, dict) and document.get("kind") == "Status"
    if proxied and not is_status:
        return None
    if is_status:
        assert isinstance(document, dict)
        reason, message = str(document.get("reason") or ""), str(document.get("message") or "")
    else:
        reason, message = "", response.text(200)
    return _BY_STATUS.get(response.status, ApiError)(what, response.status, reason, message)


def is_api_status(response: Response) -> bool:
    """The answer is the API server's own Status object (not what a proxied service sent)."""
    document = response.json()
    return isinstance(document, dict) and document.get("kind") == "Status"


# -- what a service-proxy refusal means ---------------------------------------------------------

ProxyProblem = Literal[
    "service_missing",  # 404 services "x" not found: the node is not deployed (or gone)
    "endpoints_missing",  # 404 endpoints "x" not found: the Service exists, its pod is not ready yet
    "no_ready_endpoint",  # 503 no endpoints available for service "x": the pod is not Ready
    "no_service_port",  # 503 no service port N found for service "x": a configuration error
    "unreachable",  # 503 error trying to reach service: the pod refused or dropped the connection
    "",
]

_NO_SERVICE_PORT = re.compile(r'^no service port (?P<port>\S+) found for service "(?P<service>[^"]*)"')


def proxy_problem(error: ApiError | None) -> ProxyProblem:
    """Classify the API server's own refusal of a service-proxy request.

    The texts are the API server's (pkg/registry/core/service/storage ResourceLocation and
    apimachinery/pkg/util/proxy/transport.go): the Service is looked up first, then its port,
    then its Endpoints object, then a ready address, then the pod is dialled.
    """
    if error is None:
        return ""
    message = error.message
    if isinstance(error, NotFound):
        if message.startswith("endpoints "):
            return "endpoints_missing"
        return "service_missing" if message.startswith("services ") else ""
    if error.status != 503:
        return ""
    if _NO_SERVICE_PORT.match(message):
        return "no_service_port"
    if message.startswith("no endpoints available"):
        return "no_ready_endpoint"
    if message.startswith("error trying to reach service") and "tls:" not in message:
        return "unreachable"  # a TLS error there is a scheme mismatch, not a pod that is starting
    return ""


def missing_service_port(error: ApiError) -> tuple[str, str] | None:
    """(port, service) of a `no service port N found for service "x"` refusal, else None."""
    match = _NO_SERVICE_PORT.match(error.message)
    return (match["port"], match["service"]) if match else None

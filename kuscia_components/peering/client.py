"""A small KusciaAPI client that reaches a node through the Kubernetes API server.

No port exposed, no kubectl output to parse: the deployer's own kubeconfig (read when the first
request is sent, never stored in state) authenticates to the API server, which either forwards a
port of the node's pod (`kusciaApiTransport: portForward`, the default: pods/portforward as
`kubectl port-forward` does; the request path is KusciaAPI's own, TLS is held here) or proxies to
the node's Service (`serviceProxy`, DESIGN §5). The proxy path is built the way
kubectl builds it, with a literal `:` and `/` (`/services/https:kuscia-autonomy-alice:8082/proxy/
api/v1/...`): the official client's path parameters would percent-encode them, and API servers
have mishandled encoded slashes in proxy paths (kubernetes#14193). So the whole path goes in as
a resource path without path parameters, which the client sends unchanged.

The request itself goes through `kuscia_components.kube` (the one kubeconfig loader, transport and
API-server error mapping); this module adds KusciaAPI's vocabulary. TLS and MTLS nodes want the
`Token` header (derived offline from the domain key, NOTES §1.9); NOTLS nodes get none. Under
port-forward with the node's TLS material (`NodeTarget.tls`, kube/tls.py) KusciaAPI's certificate
is verified against the node's CA as `kusciaapi` and, under MTLS, the client certificate is
presented; a failed handshake is TlsFailed with kube/tls.py's `kind`. Transient failures (5xx, 429, timeouts, connection errors) are retried with capped
exponential backoff and full jitter inside a bounded time budget; answers (4xx, Kuscia codes)
never are. No message, log line or repr ever carries the token.
"""

from __future__ import annotations

import json
import logging
import random
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from kuscia_components.config import GATEWAY_PORT, KUSCIAAPI_HTTP_PORT, gateway_scheme
from kuscia_components.kube import errors as kube_errors
from kuscia_components.kube.kubeconfig import KubeconfigRef
from kuscia_components.kube.portforward import PortForwardTransport
from kuscia_components.kube.tls import KusciaApiTls, classify, client_context
from kuscia_components.kube.transport import ApiServerTransport, Response, Transport
from kuscia_components.peering import answers

if TYPE_CHECKING:
    from types import TracebackType

log = logging.getLogger(__name__)
_T = TypeVar("_T")

PARTNER_AUTH_CENTER = {"authentication_type": "Token", "token_gen_method": "RSA-GEN"}
# Kuscia's largest answer here is a route status batch or a Domain with its certificate: a few
# KiB. 4 MiB bounds what a broken or hostile answer can cost (memory, parse time).
ANSWER_LIMIT_BYTES = 4 * 1024 * 1024
# API-server refusals that mean "the pod does not serve yet": retried, never read as "gone".
NOT_READY = ("endpoints_missing", "no_ready_endpoint", "unreachable")
MTLS_NEEDS_PORT_FORWARD = (
    "protocol MTLS needs kusciaApiTransport portForward: under MTLS KusciaAPI requires a client "
    "certificate, which the API server's service proxy cannot present"
)


# -- errors ------------------------------------------------------------------------------------


class KusciaApiError(Exception):
    """A KusciaAPI call failed; `code` is Kuscia's status code (or the HTTP status)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class DomainNotFound(KusciaApiError):  # 11305
    pass


class DomainExists(KusciaApiError):  # 11306
    pass


class RouteNotFound(KusciaApiError):  # 11404
    pass


class RouteExists(KusciaApiError):  # 11405
    pass


class ValidationFailed(KusciaApiError):  # 11100 and any other non-zero code, or a 4xx
    pass


class Unauthorized(KusciaApiError):
    """KusciaAPI itself refused the Token header (HTTP 401 without a Kubernetes Status body)."""


class KubernetesAccessDenied(KusciaApiError):
    """The API server refused the deployer's kubeconfig credentials or RBAC (401/403 Status)."""


class ServiceNotFound(KusciaApiError):
    """The API server knows no such Service (404 Status): the node is not deployed, or gone."""


class ApiUnavailable(KusciaApiError):
    """5xx, timeouts or connection errors that outlasted the retry budget."""


class NodeNotReady(ApiUnavailable):
    """The Service exists but its pod does not serve yet (no Endpoints object, no ready endpoint,
    or the pod refused the connection) for longer than the retry budget: transient, never gone."""


class ServicePortMissing(KusciaApiError):
    """The Service has no such port (503 `no service port N found`): a configuration error that
    no retry fixes."""


class UnexpectedAnswer(KusciaApiError):
    """A success (HTTP 2xx) whose body is not what Kuscia sends for that call (its proto,
    proto/api/v1alpha1/kusciaapi/*.proto), or longer than ANSWER_LIMIT_BYTES: something other than
    the Kuscia we know answered. The message names the node, the call and what was wrong."""


class TlsFailed(KusciaApiError):
    """TLS to KusciaAPI over the port-forward failed (certificate not verified, wrong name, not
    TLS, client certificate refused): configuration, so never retried. `kind` is kube/tls.py's
    (node_ca_mismatch, hostname_mismatch, protocol_mismatch, client_cert_rejected, ...)."""

    def __init__(self, message: str, kind: str = "tls") -> None:
        super().__init__(message)
        self.kind = kind


class KubeconfigError(KusciaApiError):
    """The deployer's kubeconfig or context cannot be loaded: `kube.errors.KubeconfigError` (its
    message and, as `__cause__`, the typed error) raised as a KusciaAPI failure."""


_CODES: dict[int, type[KusciaApiError]] = {
    11305: DomainNotFound,
    11306: DomainExists,
    11404: RouteNotFound,
    11405: RouteExists,
}


# -- target and policy -------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeTarget:
    """Which node to talk to and how; the cluster credentials stay in the kubeconfig file."""

    namespace: str
    service: str
    domain_id: str
    protocol: str  # NOTLS | TLS | MTLS
    token: str | None = field(default=None, repr=False)  # KusciaAPI token (secret), TLS and MTLS
    kube_context: str | None = None
    kubeconfig: str | None = None
    port: int = KUSCIAAPI_HTTP_PORT
    transport: str = "portForward"  # kuscia:kusciaApiTransport: portForward | serviceProxy
    # TLS/MTLS nodes under portForward: the node's CA (its domain certificate) and, under MTLS,
    # the client certificate (kube/tls.py); KusciaAPI's certificate is verified against it with
    # the name `kusciaapi`. None: not verified, as the service proxy never does.
    tls: KusciaApiTls | None = field(default=None, repr=False, compare=False)
    # Or a context of the caller's own, and the name to check (tests, tools).
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)
    server_hostname: str | None = None
    # The pods a port-forward picks from, when not the node's own `app: <service>` (a partner's
    # gateway Service, kuscia-gateway-<id>, selects the node's pods by that label, not its name).
    selector: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.protocol == "MTLS" and not self.port_forward:
            raise ValueError(MTLS_NEEDS_PORT_FORWARD)

    @property
    def scheme(self) -> str:
        return gateway_scheme(self.protocol)

    @property
    def pod_labels(self) -> dict[str, str]:
        """The node's pod selector, node.manifests.selector_labels: the seed's `app` label
        (or the Service's own selector, when one was read)."""
        return dict(self.selector) if self.selector else {"app": self.service}

    @property
    def port_forward(self) -> bool:
        return self.transport != "serviceProxy"

    def request_path(self, api_path: str, port: int | None = None) -> str:
        """The path to send: KusciaAPI's own under port-forward, the proxy path otherwise."""
        return api_path if self.port_forward else self.proxy_path(api_path, port)

    def open_transport(self, port: int | None = None) -> Transport:
        """A transport to `port` (KusciaAPI by default) of this node, per `transport`. The gateway
        (1080) of a TLS node is spoken to without verification, like the seed's `curl -k`."""
        if not self.port_forward:
            return ApiServerTransport(self.kubeconfig_ref)
        port = port or self.port
        context, hostname = None, self.server_hostname or self.service
        if self.protocol != "NOTLS":
            context = unverified_context()  # the gateway; KusciaAPI without material (module doc)
            if port == self.port and self.ssl_context is not None:
                context = self.ssl_context
            elif port == self.port and self.tls is not None:
                context, hostname = self._tls_context(self.tls), self.tls.server_name
        return PortForwardTransport(
            self.kubeconfig_ref,
            self.namespace,
            self.pod_labels,
            port,
            ssl_context=context,
            server_hostname=hostname,
        )

    @staticmethod
    def _tls_context(tls: KusciaApiTls) -> ssl.SSLContext:
        try:
            return client_context(tls)
        except ValueError as err:  # a certificate that is no PEM, a client key of another cert
            raise TlsFailed(f"{tls.domain_id}'s KusciaAPI TLS material is unusable: {err}") from None

    @property
    def verified(self) -> bool:
        """Is KusciaAPI's certificate checked (TLS/MTLS under port-forward with the node CA)?"""
        return self.port_forward and self.protocol != "NOTLS" and bool(self.tls or self.ssl_context)

    def proxy_path(self, api_path: str, port: int | None = None) -> str:
        """kubectl's service-proxy path, with a literal `:` and `/`."""
        service_ref = f"{self.scheme}:{self.service}:{port or self.port}"
        return f"/api/v1/namespaces/{self.namespace}/services/{service_ref}/proxy{api_path}"

    def headers(self) -> dict[str, str]:
        """JSON headers, plus `Token` for TLS nodes (NOTLS KusciaAPI takes none, NOTES §4.2)."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.protocol != "NOTLS" and self.token:
            headers["Token"] = self.token
        return headers

    def describe(self) -> str:
        return f"{self.domain_id} ({self.namespace}/{self.service})"

    @property
    def kubeconfig_ref(self) -> KubeconfigRef:
        return KubeconfigRef(self.kubeconfig, self.kube_context)


# The shortest attempt worth making: with less of the budget left, a request can only time out
# (the transports' deadline is whole-request), and its timeout would replace the last real reason.
MIN_ATTEMPT_SECONDS = 0.05


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with full jitter, for 5xx, 429, timeouts and connection errors.

    `budget_seconds` bounds one call's total time (attempts, waits and per-request timeouts), so
    a node that is down costs a known amount of time before the caller's own deadline applies.
    """

    attempts: int | None = 5  # None: as many as `budget_seconds` allows (a link's own deadline)
    base_seconds: float = 0.25
    cap_seconds: float = 4.0
    request_timeout_seconds: float = 10.0
    budget_seconds: float = 30.0

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Wait before retry number `attempt + 1`: uniform in [0, min(cap, base * 2**attempt)]."""
        return rng() * min(self.cap_seconds, self.base_seconds * 2.0**attempt)


RawResponse = Response  # the name earlier callers use


def send(
    transport: Transport,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes | None,
    timeout: float,
    tls: KusciaApiTls | None = None,
) -> Response:
    """One request; a kubeconfig problem becomes KubeconfigError, an answer above
    ANSWER_LIMIT_BYTES UnexpectedAnswer; ConnectionError (an OSError) when no answer came."""
    try:
        return transport.request(
            method, path, body=body, headers=headers, timeout=timeout, max_bytes=ANSWER_LIMIT_BYTES
        )
    except kube_errors.KubeconfigError as err:
        raise KubeconfigError(str(err)) from err
    except kube_errors.AnswerTooLarge as err:
        raise UnexpectedAnswer(f"{err}; no KusciaAPI answer is that long") from None
    except kube_errors.StreamTlsError as err:
        if tls is not None and err.__cause__ is not None:
            typed = classify(err.__cause__, tls)
            raise TlsFailed(str(typed), typed.kind) from None
        raise TlsFailed(str(err)) from None
    except (kube_errors.Unauthenticated, kube_errors.Forbidden) as err:  # the pods list, the upgrade
        what = "pods/portforward" if isinstance(err, kube_errors.StreamForbidden) else "pods"
        raise KubernetesAccessDenied(
            f"the Kubernetes API server refused {path} through port-forward (HTTP {err.status}: "
            f"{err.message}). Check the kubeconfig/context, and that you may list pods and create "
            f"pods/portforward in the node's namespace ({what} was refused); or set "
            "kuscia:kusciaApiTransport serviceProxy.",
            err.status,
        ) from None
    except kube_errors.ApiError as err:
        raise ApiUnavailable(str(err), err.status) from None


def kubernetes_transport(
    target: NodeTarget,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes | None,
    timeout: float,
    port: int | None = None,
) -> Response:
    """One request through the API server (kubeconfig read now, released after); `path` from
    `target.request_path`."""
    transport = target.open_transport(port)
    try:
        return send(
            transport,
            method,
            path,
            headers,
            body,
            timeout,
            target.tls if port in (None, target.port) else None,
        )
    finally:
        transport.close()


def unverified_context() -> ssl.SSLContext:
    """TLS without checking the peer: what kube-apiserver's proxy does (InsecureSkipVerify)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def probe_gateway(
    target: NodeTarget, *, port: int = GATEWAY_PORT, timeout: float = 5.0, transport: Transport | None = None
) -> tuple[bool | None, str]:
    """The seed's `curl -kvvv <gateway>` asked of the API server (NOTES §4.4).

    (True, ...) when Kuscia's gateway answers 401 with `kuscia-error-message`; (False, why) when the
    Service is missing or has no ready endpoint, which no network path can fix; (None, why)
    otherwise. The API server's network is not the node's, so True says the pod serves, not that
    a partner's node can reach it.
    """
    where = f"{target.namespace}/{target.service}:{port}"
    path = target.request_path("/", port=port)
    try:
        if transport is None:
            response = kubernetes_transport(target, "GET", path, {"Accept": "*/*"}, None, timeout, port)
        else:
            response = send(transport, "GET", path, {"Accept": "*/*"}, None, timeout)
    except kube_errors.PodNotFound as err:
        return False, f"no pod serves {where}: {err}"
    except kube_errors.PodNotReady as err:
        return False, f"no Ready pod serves {where}: the Kuscia pod is not Ready ({err})"
    except (OSError, TimeoutError, KusciaApiError) as err:
        return None, f"the API server could not be asked about {where}: {_first_line(err)}"
    refusal = kube_errors.api_error(response, f"GET {where}", proxied=True)
    message = refusal.message if refusal is not None else _body_text(response.body)
    headers = {k.lower() for k in response.headers}
    if response.status == 401 and "kuscia-error-message" in headers:
        return True, f"Kuscia's gateway at {where} answers 401"
    kind = kube_errors.proxy_problem(refusal)
    if kind == "service_missing":
        return False, f"the Service {where} does not exist ({message})"
    if kind in ("no_ready_endpoint", "endpoints_missing"):
        return False, f"the Service {where} has no ready endpoint: the Kuscia pod is not Ready ({message})"
    if kind == "no_service_port":
        return False, f"the Service {target.namespace}/{target.service} has no port {port} ({message})"
    return None, f"{where} answered HTTP {response.status}: {message[:200]}"


# -- client ------------------------------------------------------------------------------------


class KusciaApiClient:
    """KusciaAPI of one node. Build one per operation (a `with` block); never keep it in state."""

    def __init__(
        self,
        target: NodeTarget,
        *,
        retry: RetryPolicy | None = None,
        transport: Transport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.target = target
        self.retry = retry or RetryPolicy()
        self._owned = transport is None
        self._transport: Transport = transport or target.open_transport()
        self._sleep = sleep
        self._clock = clock
        self._rng = rng
        self.calls = 0  # requests sent, retries included (benchmarks count them)

    def __repr__(self) -> str:  # never the token
        t = self.target
        return f"KusciaApiClient({t.scheme}:{t.namespace}/{t.service}:{t.port})"

    def __enter__(self) -> KusciaApiClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._owned:
            self._transport.close()

    # -- endpoints (NOTES §4.1) ----------------------------------------------------------------

    def health(self) -> bool:
        data = self.call("/healthZ", {})
        return self._read("/healthZ", lambda: answers.flag(answers.message(data, "data"), "ready", "data"))

    def create_partner_domain(self, domain_id: str, cert_b64: str) -> None:
        self.call("/api/v1/domain/create", _partner_domain(domain_id, cert_b64))

    def update_partner_domain(self, domain_id: str, cert_b64: str) -> None:
        """Kuscia's update resets role and auth centre unless re-sent (NOTES §4.1): re-send both."""
        self.call("/api/v1/domain/update", _partner_domain(domain_id, cert_b64))

    def query_domain(self, domain_id: str) -> dict[str, Any]:
        """The Domain (QueryDomainResponseData); the strings we read are checked to be strings."""
        path = "/api/v1/domain/query"
        data = self.call(path, {"domain_id": domain_id})
        return self._read(
            path,
            lambda: answers.with_texts(answers.message(data, "data"), "data", "domain_id", "role", "cert"),
        )

    def delete_domain(self, domain_id: str) -> None:
        self.call("/api/v1/domain/delete", {"domain_id": domain_id})

    def create_route(
        self, source: str, destination: str, *, host: str, port: int, is_tls: bool, path_prefix: str = ""
    ) -> None:
        endpoint_port: dict[str, Any] = {"name": "http", "port": port, "protocol": "HTTP", "isTLS": is_tls}
        if path_prefix:
            endpoint_port["path_prefix"] = path_prefix
        self.call(
            "/api/v1/route/create",
            {
                "source": source,
                "destination": destination,
                "authentication_type": "Token",
                "endpoint": {"host": host, "ports": [endpoint_port]},
                "token_config": {"token_gen_method": "RSA-GEN", "rolling_update_period": 86400},
            },
        )

    def query_route(self, source: str, destination: str) -> dict[str, Any]:
        """The route (QueryDomainRouteResponseData), its endpoint and ports checked."""
        path = "/api/v1/route/query"
        data = self.call(path, {"source": source, "destination": destination})
        return self._read(path, lambda: answers.route(answers.message(data, "data")))

    def delete_route(self, source: str, destination: str) -> None:
        self.call("/api/v1/route/delete", {"source": source, "destination": destination})

    def route_status(self, pairs: list[tuple[str, str]]) -> dict[str, dict[str, str]]:
        """{"alice-bob": {"status": "Succeeded"|"Failed", "reason": ...}} for each (source, dest)."""
        path = "/api/v1/route/status/batchQuery"
        data = self.call(path, {"route_keys": [{"source": s, "destination": d} for s, d in pairs]})
        return self._read(path, lambda: answers.statuses(answers.message(data, "data")))

    def _read(self, api_path: str, read: Callable[[], _T]) -> _T:
        """`read()` (a shape check of an answer's `data`), its BadShape as UnexpectedAnswer."""
        try:
            return read()
        except answers.BadShape as err:
            raise self._unexpected(api_path, str(err)) from None

    def _unexpected(self, api_path: str, why: str) -> UnexpectedAnswer:
        return UnexpectedAnswer(
            f"KusciaAPI {api_path} at {self.target.describe()} answered with success, but {why}: this is "
            "not an answer Kuscia sends. Check that the Service's port "
            f"{self.target.port} reaches Kuscia (kubectl -n {self.target.namespace} get endpoints "
            f"{self.target.service}) and that the image is a Kuscia release"
        )

    # -- one call ------------------------------------------------------------------------------

    def call(self, api_path: str, body: dict[str, Any]) -> Any:
        """POST JSON, retrying transient failures; returns `data` or raises a typed error."""
        payload = json.dumps(body).encode()
        headers = self.target.headers()
        path = self.target.request_path(api_path)
        policy = self.retry
        started = self._clock()
        problem, attempts, not_ready = "", 0, False
        while policy.attempts is None or attempts < policy.attempts:
            remaining = policy.budget_seconds - (self._clock() - started)
            if attempts:
                pause = policy.delay(attempts - 1, self._rng)
                if pause + MIN_ATTEMPT_SECONDS >= remaining:
                    break
                self._sleep(pause)
                remaining -= pause
            if remaining < MIN_ATTEMPT_SECONDS:  # an attempt this short only times out, hiding why
                break
            attempts += 1
            self.calls += 1
            try:
                timeout = min(policy.request_timeout_seconds, remaining)
                response = send(self._transport, "POST", path, headers, payload, timeout, self.target.tls)
            except kube_errors.PodNotFound as err:  # gone, or between pods of a rollout
                self._raise_if_gone(timeout)
                problem, not_ready = str(err), True
            except (OSError, TimeoutError) as err:
                problem = f"{type(err).__name__}: {_first_line(err)}"
                not_ready = isinstance(err, kube_errors.PodNotReady) or (
                    isinstance(err, kube_errors.StreamClosed) and "connection refused" in err.reason
                )
            else:
                refusal = kube_errors.api_error(response, api_path, proxied=True)
                kind = kube_errors.proxy_problem(refusal)
                if kind == "no_service_port":
                    assert refusal is not None
                    raise self._port_missing(refusal)
                not_ready = kind in NOT_READY
                if not not_ready and response.status < 500 and response.status != 429:
                    return self._decode(api_path, response)
                said = (
                    refusal.message if refusal is not None and refusal.message else _body_text(response.body)
                )
                problem = f"HTTP {response.status}: {said}"
            log.debug("KusciaAPI %s %s: %s (attempt %d)", self.target.service, api_path, problem, attempts)
        elapsed = self._clock() - started
        error = NodeNotReady if not_ready else ApiUnavailable
        raise error(
            f"KusciaAPI of {self.target.describe()} did not answer {api_path} "
            f"({attempts} attempts in {elapsed:.1f} s): {problem or 'no attempt fit in the time budget'}. "
            f"Is the pod Ready (kubectl -n {self.target.namespace} get pods)?"
        )

    def _raise_if_gone(self, timeout: float) -> None:
        """No pod: ServiceNotFound when the node's Service is gone too (the node is not deployed),
        so callers read "gone" as they do under the service proxy; else the pod is coming."""
        t = self.target
        path = f"/api/v1/namespaces/{t.namespace}/services/{t.service}"
        try:
            with ApiServerTransport(t.kubeconfig_ref) as api:
                response = api.request("GET", path, timeout=timeout)
        except (OSError, kube_errors.KubeError):
            return
        if isinstance(kube_errors.api_error(response, f"GET {path}"), kube_errors.NotFound):
            raise ServiceNotFound(
                f"no Service {t.namespace}/{t.service} and no pod in the cluster; is the node deployed "
                "with this kubeconfig/context?",
                404,
            )

    def _port_missing(self, refusal: kube_errors.ApiError) -> ServicePortMissing:
        port, service = kube_errors.missing_service_port(refusal) or (str(self.target.port), "")
        t = self.target
        return ServicePortMissing(
            f"the Service {t.namespace}/{service or t.service} has no port {port} "
            f"(the API server answered HTTP 503: {refusal.message}). This is configuration, not a "
            f"pod that is starting: KusciaAPI listens on {KUSCIAAPI_HTTP_PORT} and the gateway on "
            f"{GATEWAY_PORT}; check the Service's ports (kubectl -n {t.namespace} get svc {t.service} -o yaml).",
            503,
        )

    def _decode(self, api_path: str, response: RawResponse) -> Any:
        document = answers.parse_json(response.body)
        refusal = kube_errors.api_error(response, api_path, proxied=True)  # the API server's own
        where = self.target.describe()
        if isinstance(refusal, kube_errors.Unauthenticated | kube_errors.Forbidden):
            raise KubernetesAccessDenied(
                f"the Kubernetes API server refused {api_path} for {where} through the service proxy "
                f"(HTTP {response.status}: {refusal.message}). Check the kubeconfig/context and "
                f"that you may create services/proxy in namespace {self.target.namespace}.",
                response.status,
            )
        if response.status == 401:
            raise Unauthorized(
                f"token rejected: the KusciaAPI token derived from the domain key does not match the node "
                f"{where}. The node runs with another domain key than this stack holds: run `pulumi up` for "
                f"{self.target.domain_id} so the pod is rolled with the stack's kuscia.yaml, or set "
                "kuscia:domainKeyData to the key the node really uses.",
                401,
            )
        if isinstance(refusal, kube_errors.NotFound):
            raise ServiceNotFound(
                f"no Service {self.target.namespace}/{self.target.service} in the cluster "
                f"({refusal.message}); is the node deployed with this kubeconfig/context?",
                404,
            )
        if response.status >= 400:
            text = _body_text(response.body)
            raise ValidationFailed(
                f"KusciaAPI {api_path} at {where}: HTTP {response.status}: {text}", response.status
            )
        if document is answers.NOT_JSON:
            raise self._unexpected(api_path, f"the body is not JSON: {_body_text(response.body)[:100]!r}")
        if not isinstance(document, dict):
            raise self._unexpected(api_path, f"the body is {answers.kind_of(document)}, not an object")
        status = self._read(api_path, lambda: answers.message(document.get("status"), "status"))
        code = self._read(api_path, lambda: answers.whole(status, "code", "status"))
        message = self._read(api_path, lambda: answers.text(status, "message", "status"))
        if code != 0:
            error = _CODES.get(code, ValidationFailed)
            raise error(f"KusciaAPI {api_path} at {where}: {code} {message[:300]}".strip(), code)
        return document.get("data")


def _partner_domain(domain_id: str, cert_b64: str) -> dict[str, Any]:
    return {"domain_id": domain_id, "role": "partner", "cert": cert_b64, "auth_center": PARTNER_AUTH_CENTER}


def _body_text(body: bytes) -> str:
    return body.decode("utf-8", "replace").strip()[:300]


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__

"""A small KusciaAPI client that reaches a node through the Kubernetes API server's service proxy.

No exec into pods, no port exposed, no kubectl output to parse: the deployer's own kubeconfig
(read at call time, never stored) authenticates to the API server, which proxies to the node's
KusciaAPI port 8082 (DESIGN §5). The proxy path is built the way kubectl builds it, with a
literal `:` and `/` (`/services/https:kuscia-autonomy-alice:8082/proxy/api/v1/...`): the
client's path parameters would percent-encode them, and API servers have mishandled encoded
slashes in proxy paths (kubernetes#14193).

TLS nodes want the `Token` header (derived offline from the domain key); NOTLS nodes get none.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .config import KUSCIAAPI_HTTP_PORT

log = logging.getLogger(__name__)

PARTNER_AUTH_CENTER = {"authentication_type": "Token", "token_gen_method": "RSA-GEN"}


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


class ValidationFailed(KusciaApiError):  # 11100 and other non-zero codes
    pass


class Unauthorized(KusciaApiError):
    """KusciaAPI refused the Token header (HTTP 401 from Kuscia itself)."""


class KubernetesAccessDenied(KusciaApiError):
    """The API server refused the deployer's kubeconfig credentials or RBAC (401/403)."""


class ServiceNotFound(KusciaApiError):
    """The API server knows no such Service (404): the node is not deployed, or already gone."""


class ApiUnavailable(KusciaApiError):
    """5xx, timeouts or connection errors that outlasted the retry budget."""


_CODES: dict[int, type[KusciaApiError]] = {
    11305: DomainNotFound,
    11306: DomainExists,
    11404: RouteNotFound,
    11405: RouteExists,
}


# -- target and policy -------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeTarget:
    """Which node to talk to and how; credentials stay in the kubeconfig file."""

    namespace: str
    service: str
    domain_id: str
    protocol: str  # NOTLS | TLS
    token: str | None = field(default=None, repr=False)  # KusciaAPI token (secret), TLS only
    kube_context: str | None = None
    kubeconfig: str | None = None
    port: int = KUSCIAAPI_HTTP_PORT

    @property
    def scheme(self) -> str:
        return "http" if self.protocol == "NOTLS" else "https"

    def proxy_path(self, api_path: str, port: int | None = None) -> str:
        """kubectl's service-proxy path with a literal `:` and `/`."""
        return (
            f"/api/v1/namespaces/{self.namespace}/services/{self.scheme}:{self.service}:{port or self.port}"
            f"/proxy{api_path}"
        )


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with full jitter, for 5xx, timeouts and connection errors."""

    attempts: int = 5
    base_seconds: float = 0.25
    cap_seconds: float = 4.0
    request_timeout_seconds: float = 10.0

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        return rng() * min(self.cap_seconds, self.base_seconds * (2**attempt))


@dataclass(frozen=True)
class RawResponse:
    status: int
    body: bytes
    headers: dict[str, str]


Transport = Callable[[NodeTarget, str, str, dict[str, str], bytes | None, float], RawResponse]


# -- client ------------------------------------------------------------------------------------


class KusciaApiClient:
    """KusciaAPI of one node. Cheap to build; build one per operation, never store it in state."""

    def __init__(
        self,
        target: NodeTarget,
        *,
        retry: RetryPolicy | None = None,
        transport: Transport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.target = target
        self.retry = retry or RetryPolicy()
        self._transport = transport or kubernetes_transport
        self._sleep = sleep
        self.calls = 0  # KusciaAPI requests sent (retries included), for benchmarks

    def __repr__(self) -> str:  # never show the token
        t = self.target
        return f"KusciaApiClient({t.scheme}:{t.namespace}/{t.service}:{t.port})"

    # -- endpoints -----------------------------------------------------------------------------

    def health(self) -> bool:
        data = self.call("/healthZ", {})
        return bool((data or {}).get("ready"))

    def create_partner_domain(self, domain_id: str, cert_b64: str) -> None:
        self.call(
            "/api/v1/domain/create",
            {"domain_id": domain_id, "role": "partner", "cert": cert_b64, "auth_center": PARTNER_AUTH_CENTER},
        )

    def update_partner_domain(self, domain_id: str, cert_b64: str) -> None:
        """Kuscia's update resets role and auth centre unless re-sent (NOTES §4.1): re-send both."""
        self.call(
            "/api/v1/domain/update",
            {"domain_id": domain_id, "role": "partner", "cert": cert_b64, "auth_center": PARTNER_AUTH_CENTER},
        )

    def query_domain(self, domain_id: str) -> dict[str, Any]:
        return dict(self.call("/api/v1/domain/query", {"domain_id": domain_id}) or {})

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
                "token_config": {"token_gen_method": "RSA-GEN", "rolling_update_period": 0},
            },
        )

    def query_route(self, source: str, destination: str) -> dict[str, Any]:
        return dict(self.call("/api/v1/route/query", {"source": source, "destination": destination}) or {})

    def delete_route(self, source: str, destination: str) -> None:
        self.call("/api/v1/route/delete", {"source": source, "destination": destination})

    def route_status(self, pairs: list[tuple[str, str]]) -> dict[str, dict[str, str]]:
        """{"alice-bob": {"status": "Succeeded"|"Failed", "reason": ...}} for each (source, dest)."""
        data = self.call(
            "/api/v1/route/status/batchQuery",
            {"route_keys": [{"source": s, "destination": d} for s, d in pairs]},
        )
        routes = (data or {}).get("routes") or []
        return {
            str(r.get("name") or f"{r.get('source')}-{r.get('destination')}"): dict(r.get("status") or {})
            for r in routes
        }

    # -- transport -----------------------------------------------------------------------------

    def call(self, api_path: str, body: dict[str, Any]) -> Any:
        """POST JSON, retrying transient failures; returns `data` or raises a typed error."""
        payload = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.target.protocol != "NOTLS" and self.target.token:
            headers["Token"] = self.target.token
        last_problem = ""
        for attempt in range(self.retry.attempts):
            if attempt:
                self._sleep(self.retry.delay(attempt - 1))
            self.calls += 1
            try:
                response = self._transport(
                    self.target, "POST", self.target.proxy_path(api_path), headers, payload,
                    self.retry.request_timeout_seconds,
                )  # fmt: skip
            except (OSError, TimeoutError) as err:
                last_problem = f"{type(err).__name__}: {_first_line(err)}"
            else:
                if response.status < 500 and response.status != 429:
                    return self._decode(api_path, response)
                last_problem = f"HTTP {response.status}: {_body_text(response.body)}"
            log.debug(
                "KusciaAPI %s %s: %s (attempt %d)", self.target.service, api_path, last_problem, attempt + 1
            )
        raise ApiUnavailable(
            f"KusciaAPI of {self.target.domain_id} ({self.target.namespace}/{self.target.service}) did not answer "
            f"{api_path} after {self.retry.attempts} attempts: {last_problem}. Is the pod Ready "
            f"(kubectl -n {self.target.namespace} get pods)?"
        )

    def _decode(self, api_path: str, response: RawResponse) -> Any:
        text = _body_text(response.body)
        document: Any = None
        try:
            document = json.loads(response.body or b"null")
        except ValueError:
            document = None
        if response.status in (401, 403):
            if isinstance(document, dict) and document.get("kind") == "Status":
                raise KubernetesAccessDenied(
                    f"the Kubernetes API server refused {api_path} through the service proxy "
                    f"(HTTP {response.status}: {document.get('message', '')}). Check the kubeconfig/context and that "
                    f"you may use services/proxy in {self.target.namespace}.",
                    response.status,
                )
            raise Unauthorized(
                f"KusciaAPI of {self.target.domain_id} rejected the Token header (HTTP {response.status}). The token "
                "is derived from the domain key: the node runs with a different key than this stack holds.",
                response.status,
            )
        if response.status == 404 and isinstance(document, dict) and document.get("kind") == "Status":
            raise ServiceNotFound(
                f"no Service {self.target.namespace}/{self.target.service} in the cluster "
                f"({document.get('message', '')}); is the node deployed with this kubeconfig/context?",
                404,
            )
        if response.status >= 400:
            raise ValidationFailed(f"KusciaAPI {api_path}: HTTP {response.status}: {text}", response.status)
        if not isinstance(document, dict):
            raise ValidationFailed(f"KusciaAPI {api_path}: answer is not JSON: {text}")
        status = document.get("status") or {}
        code = int(status.get("code") or 0)
        if code != 0:
            error = _CODES.get(code, ValidationFailed)
            raise error(f"KusciaAPI {api_path}: {code} {status.get('message', '')}".strip(), code)
        return document.get("data")


def kubernetes_transport(
    target: NodeTarget, method: str, path: str, headers: dict[str, str], body: bytes | None, timeout: float
) -> RawResponse:
    """One request through the API server with the deployer's kubeconfig (read now, not stored)."""
    from kubernetes import config as kube_config

    api_client = kube_config.new_client_from_config(
        config_file=target.kubeconfig, context=target.kube_context
    )
    try:
        _method, url, all_headers, _body, _post = api_client.param_serialize(
            method=method, resource_path=path, header_params=dict(headers), auth_settings=["BearerToken"]
        )
        import urllib3

        try:
            response = api_client.rest_client.pool_manager.request(
                method, url, body=body, headers=all_headers, timeout=urllib3.Timeout(total=timeout),
                retries=False, preload_content=True,
            )  # fmt: skip
        except urllib3.exceptions.HTTPError as err:
            raise ConnectionError(_first_line(err)) from None
        return RawResponse(response.status, response.data or b"", dict(response.headers))
    finally:
        api_client.close()


def _body_text(body: bytes) -> str:
    return body.decode("utf-8", "replace").strip()[:300]


def _first_line(err: BaseException) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__

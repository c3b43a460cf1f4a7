"""One request to Kubernetes: the `Transport` protocol and its API-server implementation.

`Transport.request(method, path, ...)` sends one HTTP request and returns the answer whatever
its status, or raises: KubeconfigError (nothing was sent), ApiServerUnreachable (no answer),
AnswerTooLarge. `timeout` bounds the whole request, headers and body (kube/deadline.py), so a
server that drips its answer is cut off there as ApiServerUnreachable. No retries here: callers know which of their requests may be repeated. Turning
an error status into a typed error is `errors.api_error`'s job.

`ApiServerTransport` talks to the API server of the deployer's kubeconfig context. A request
path goes onto the server URL as it is (no path parameters, so nothing is percent-encoded:
service-proxy paths keep their literal `:` and `/` the way kubectl sends them).
`portforward.PortForwardTransport` is the second implementation: its paths are the pod's own.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from kuscia_components.kube.deadline import Deadline, install
from kuscia_components.kube.errors import AnswerTooLarge, ApiServerUnreachable
from kuscia_components.kube.kubeconfig import Connection, KubeconfigRef, import_kubernetes, load

if TYPE_CHECKING:
    from types import TracebackType

    from kubernetes.client import ApiClient

DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_BYTES = 8 * 1024 * 1024  # a namespace's pods, a Secret: far below; a runaway list: above
JSON_HEADERS = {"Accept": "application/json", "Content-Type": "application/json"}


@dataclass(frozen=True)
class Response:
    """An HTTP answer, read in full (up to the caller's bound)."""

    status: int
    body: bytes = field(repr=False)  # may be a Secret
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body or b"null")
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser's stack
            return None

    def text(self, limit: int = 300) -> str:
        return self.body.decode("utf-8", "replace").strip()[:limit]


@dataclass(frozen=True)
class UpgradeTarget:
    """A websocket upgrade's URL and credentials; never logged, never kept past the stream."""

    url: str = field(repr=False)
    server: str  # for messages: the API server without user info
    header: list[str] = field(repr=False)  # "authorization: Bearer ..."
    sslopt: dict[str, Any] = field(repr=False)
    proxy: str = field(default="", repr=False)


class Transport(Protocol):
    """Sends one request; see the module docstring for what it raises."""

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        query: Sequence[tuple[str, str]] = (),
        timeout: float = DEFAULT_TIMEOUT,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> Response: ...

    def close(self) -> None: ...


class ApiServerTransport:
    """Requests to the API server with the deployer's kubeconfig and context.

    The kubeconfig is read on `connect` or the first request and kept for this object's life,
    which is one operation (a `with` block); `close` drops the credentials and the connection
    pool. Pickling keeps only the reference (path and context names), never a credential.
    """

    def __init__(self, ref: KubeconfigRef) -> None:
        self.ref = ref
        self._lock = threading.Lock()
        self._connection: Connection | None = None
        self._client: ApiClient | None = None

    def __repr__(self) -> str:
        where = (
            f"{self._connection.context} -> {self._connection.server}"
            if self._connection
            else "not connected"
        )
        return f"ApiServerTransport({where})"

    def __getstate__(self) -> dict[str, Any]:
        return {"ref": self.ref}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.ref = state["ref"]
        self._lock = threading.Lock()
        self._connection = None
        self._client = None

    def __enter__(self) -> ApiServerTransport:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def connect(self) -> Connection:
        """Load the kubeconfig now (once); raises a KubeconfigError subclass."""
        with self._lock:
            if self._connection is None:
                import_kubernetes()
                from kubernetes.client import ApiClient

                connection = load(self.ref)
                self._client = ApiClient(connection.configuration)
                install(self._client.rest_client.pool_manager)
                self._connection = connection
            return self._connection

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
            self._client = None
            self._connection = None

    def upgrade_target(self, path: str, query: Sequence[tuple[str, str]]) -> UpgradeTarget:
        """What a websocket upgrade to `path` needs (pods/portforward, pods/exec): the URL, the
        Authorization header (a credential plugin's token refreshed now) and the TLS options
        of the kubeconfig's cluster. Lives only as long as the stream it opens."""
        connection = self.connect()
        client = self._client
        assert client is not None
        _method, url, headers, _body, _post = client.param_serialize(
            method="GET",
            resource_path=path,
            query_params=list(query),
            header_params={},
            auth_settings=["BearerToken"],
        )
        config = connection.configuration
        sslopt: dict[str, Any] = {"cert_reqs": ssl.CERT_NONE}
        if url.startswith("https://") and config.verify_ssl:
            sslopt = {"cert_reqs": ssl.CERT_REQUIRED}
            if config.ssl_ca_cert:
                sslopt["ca_certs"] = config.ssl_ca_cert
            if config.assert_hostname is not None:
                sslopt["check_hostname"] = config.assert_hostname
        if config.cert_file:
            sslopt["certfile"] = config.cert_file
        if config.key_file:
            sslopt["keyfile"] = config.key_file
        if config.tls_server_name:
            sslopt["server_hostname"] = config.tls_server_name
        header = [f"{k}: {v}" for k, v in headers.items() if k.lower() == "authorization"]
        proxy = str(config.proxy or "")
        return UpgradeTarget(
            "ws" + url[len("http") :] if url.startswith("http") else url,
            connection.server,
            header,
            sslopt,
            proxy,
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        query: Sequence[tuple[str, str]] = (),
        timeout: float = DEFAULT_TIMEOUT,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> Response:
        import urllib3

        connection = self.connect()
        client = self._client
        assert client is not None
        # No path parameters: the resource path is appended to the server URL unchanged.
        _method, url, all_headers, _body, _post = client.param_serialize(
            method=method,
            resource_path=path,
            query_params=list(query),
            header_params=dict(headers if headers is not None else JSON_HEADERS),
            auth_settings=["BearerToken"],
        )
        what = f"{method} {path} at {connection.server}"
        data = b""
        with Deadline(timeout) as deadline:  # the whole request, not each read (see kube/deadline)
            try:  # the rest client's pool, so the body goes as it is (not JSON-encoded once more)
                answer = client.rest_client.pool_manager.request(
                    method,
                    url,
                    body=body,
                    headers=all_headers,
                    timeout=urllib3.Timeout(connect=timeout, read=timeout),
                    retries=False,
                    preload_content=False,
                )
                try:
                    data = answer.read(max_bytes + 1)
                    if len(data) > max_bytes:
                        answer.close()  # do not hand a half-read connection back to the pool
                        raise AnswerTooLarge(what, max_bytes)
                    if deadline.expired:
                        answer.close()
                finally:
                    answer.release_conn()
            except (urllib3.exceptions.HTTPError, OSError) as err:  # refused, timed out, TLS, unknown host
                if not deadline.expired:
                    raise ApiServerUnreachable(connection.server, _reason(err)) from None
        if deadline.expired:  # the socket was shut down under the read: what came is not whole
            raise ApiServerUnreachable(connection.server, f"no whole answer within {timeout:g} s (timed out)")
        return Response(answer.status, data or b"", dict(answer.headers))


def _reason(err: BaseException) -> str:
    """urllib3's innermost reason, first line (it names the address, never a header)."""
    reason = getattr(err, "reason", None)
    text = str(reason if isinstance(reason, BaseException) else err).strip()
    return text.splitlines()[0] if text else type(err).__name__

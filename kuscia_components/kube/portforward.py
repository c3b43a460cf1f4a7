"""HTTP/1.1 to a port of the node's pod through pods/portforward, as `kubectl port-forward` does.

The second `Transport`: a request path is the pod's own (`/api/v1/domain/query`), not a proxy
path. Each request finds the node's pod by its labels (Running and Ready), opens one
pods/portforward websocket (`v4.channel.k8s.io`, pkg/kubelet/cri/streaming/portforward/
websocket.go: channel 0 carries the data, channel 1 the kubelet's error text, and the first
message on each is the port as two little-endian bytes), writes one request with
`Connection: close`, reads one answer and closes. The kubelet dials the port inside the pod's
own network namespace, so a NetworkPolicy does not stand between; and the client, not the API
server, holds the TLS session: with `ssl_context` the stream is wrapped in TLS (an
`ssl.SSLObject` over memory BIOs), so the server certificate is verified against what the
context trusts and a client certificate can be presented (MTLS), which the service proxy can
do neither of.

Bounded: `timeout` covers finding the pod, the upgrade and the answer; answers longer than
`max_bytes` raise AnswerTooLarge, as does one websocket message longer than `max_bytes` plus
FRAME_MARGIN, before it is read; the kubelet's error text is kept to ERROR_CAP bytes in all. Failures are typed (kube/errors.py): PodNotFound,
PodNotReady, StreamForbidden (RBAC), StreamClosed (the pod refused the port, the stream ended
early, a timeout), StreamTlsError. Pickling keeps the kubeconfig reference and the pod's
address, never a credential or the TLS context.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import ssl
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from kuscia_components.kube.errors import AnswerTooLarge, KubeError, NotFound, StreamClosed, StreamTlsError
from kuscia_components.kube.kubeconfig import KubeconfigRef
from kuscia_components.kube.streams import FRAME_MARGIN, V4_CHANNEL, ChannelSocket, find_pod, open_channels
from kuscia_components.kube.transport import (
    DEFAULT_MAX_BYTES,
    DEFAULT_TIMEOUT,
    JSON_HEADERS,
    ApiServerTransport,
    Response,
)

if TYPE_CHECKING:
    from types import TracebackType

DATA, ERROR = 0, 1
TLS_CHUNK = 64 * 1024
ERROR_CAP = 2000  # bytes of the kubelet's error text kept, over all its messages


class PortForwardTransport:
    """Requests to `port` of the Running+Ready pod labelled `labels` in `namespace`."""

    def __init__(
        self,
        ref: KubeconfigRef,
        namespace: str,
        labels: Mapping[str, str],
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> None:
        self.ref = ref
        self.namespace = namespace
        self.labels = dict(labels)
        self.port = port
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname
        self._tls_lost = False
        self._api = ApiServerTransport(ref)
        self.pod = ""  # the pod the last request went to, used again while it serves

    def __repr__(self) -> str:
        tls = "tls" if self.ssl_context is not None else "plain"
        return f"PortForwardTransport({self.namespace}/{self.pod or '?'}:{self.port}, {tls})"

    def __getstate__(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "namespace": self.namespace,
            "labels": self.labels,
            "port": self.port,
            "server_hostname": self.server_hostname,
            "tls_lost": self.ssl_context is not None or self._tls_lost,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["ref"],
            state["namespace"],
            state["labels"],
            state["port"],
            server_hostname=state["server_hostname"],
        )
        self._tls_lost = bool(state["tls_lost"])

    def __enter__(self) -> PortForwardTransport:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._api.close()

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
        if self._tls_lost:
            raise KubeError(
                "this port-forward transport was unpickled without its TLS context (it is never "
                "pickled); build a new one"
            )
        deadline = time.monotonic() + timeout
        sock, pod = self._open(deadline, max_bytes + FRAME_MARGIN)
        what = f"{method} {path} at pod {self.namespace}/{pod}:{self.port}"
        try:
            stream: _Stream = _PortStream(sock, self.port, what, deadline)
            if self.ssl_context is not None:
                stream = _TlsStream(stream, self.ssl_context, self.server_hostname, what)
            stream.send(_request_bytes(method, path, query, body, headers, self.port, self.server_hostname))
            return _read_response(stream, method, what, max_bytes)
        except StreamClosed:
            self.pod = ""  # look the pod up again next time: it may have been replaced
            raise
        finally:
            sock.close()

    def _open(self, deadline: float, max_message: int) -> tuple[ChannelSocket, str]:
        """A port-forward to the pod found last time (one request fewer), or to the pod found
        now when there is none yet or that one is gone (404: a rollout replaced it)."""
        for cached in (True, False) if self.pod else (False,):
            pod = self.pod if cached else find_pod(self._api, self.namespace, self.labels, _left(deadline))
            try:
                sock = open_channels(
                    self._api,
                    f"/api/v1/namespaces/{self.namespace}/pods/{pod}/portforward",
                    [("ports", str(self.port))],
                    [V4_CHANNEL],
                    _left(deadline),
                    max_message,
                )
            except NotFound as err:
                self.pod = ""
                if cached:
                    continue
                raise StreamClosed(
                    f"pod {self.namespace}/{pod}", f"gone as it was dialled ({err.message})"
                ) from None
            self.pod = pod
            return sock, pod
        raise AssertionError("unreachable")  # the last pass returns or raises


def _left(deadline: float) -> float:
    return max(0.1, deadline - time.monotonic())


def _request_bytes(
    method: str,
    path: str,
    query: Sequence[tuple[str, str]],
    body: bytes | None,
    headers: Mapping[str, str] | None,
    port: int,
    host: str | None,
) -> bytes:
    target = path + (f"?{urlencode(list(query))}" if query else "")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host or 'localhost'}:{port}"]
    for key, value in (headers if headers is not None else JSON_HEADERS).items():
        if "\r" in key + value or "\n" in key + value:
            raise ValueError(f"header {key!r} holds a line break")
        lines.append(f"{key}: {value}")
    lines += [f"Content-Length: {len(body or b'')}", "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1") + (body or b"")


def _read_response(stream: _Stream, method: str, what: str, max_bytes: int) -> Response:
    answer = http.client.HTTPResponse(_SocketLike(stream), method=method)  # type: ignore[arg-type]
    try:
        answer.begin()
        data = answer.read(max_bytes + 1) if answer.length is None else _read_known(answer, max_bytes, what)
    except http.client.IncompleteRead as err:
        raise StreamClosed(what, f"the answer ended after {len(err.partial)} bytes") from None
    except (http.client.BadStatusLine, http.client.LineTooLong, http.client.HTTPException) as err:
        if isinstance(err, http.client.RemoteDisconnected):
            raise StreamClosed(what, "the pod closed the connection before answering") from None
        raise StreamClosed(what, f"not an HTTP answer ({type(err).__name__})") from None
    if len(data) > max_bytes:
        raise AnswerTooLarge(what, max_bytes)
    return Response(answer.status, data, dict(answer.getheaders()))


def _read_known(answer: http.client.HTTPResponse, max_bytes: int, what: str) -> bytes:
    if answer.length is not None and answer.length > max_bytes:
        raise AnswerTooLarge(what, max_bytes)
    return answer.read()


# -- byte streams --------------------------------------------------------------------------------


class _Stream:
    def send(self, data: bytes) -> None:
        raise NotImplementedError

    def recv(self) -> bytes:
        """The next bytes; b"" at the end of the stream."""
        raise NotImplementedError


class _PortStream(_Stream):
    """Channel 0 of a port-forward websocket as a byte stream; channel 1's text is the
    kubelet's error (e.g. `error forwarding port 8082 to pod ...: connection refused`)."""

    def __init__(self, sock: ChannelSocket, port: int, what: str, deadline: float) -> None:
        self.sock, self.port, self.what, self.deadline = sock, port, what, deadline
        self._headed: set[int] = set()
        self._error = b""
        self._ended = False

    def send(self, data: bytes) -> None:
        self.sock.send(DATA, data)

    def recv(self) -> bytes:
        while not self._ended:
            frame = self.sock.read(self.deadline)
            if frame is None:
                self._ended = True
                break
            channel, data = frame
            if channel not in (DATA, ERROR):
                raise StreamClosed(self.what, f"a message on unknown channel {channel}")
            if channel not in self._headed:  # the first message of each channel names the port
                if len(data) < 2 or int.from_bytes(data[:2], "little") != self.port:
                    raise StreamClosed(self.what, "the stream does not start with the port asked for")
                self._headed.add(channel)
                data = data[2:]
                if not data:
                    continue
            if channel == ERROR:
                self._error += data[: ERROR_CAP - len(self._error)]
                continue
            return data
        if self._error:
            text = self._error.decode("utf-8", "replace").strip()[:500]
            if "connection refused" in text:  # the kubelet dialled the port inside the pod: nothing listens
                text = f"connection refused: nothing listens on port {self.port} in the pod (kubelet: {text})"
            raise StreamClosed(self.what, text)
        return b""


class _TlsStream(_Stream):
    """TLS over another stream: an SSLObject whose records travel through memory BIOs."""

    def __init__(self, inner: _Stream, context: ssl.SSLContext, hostname: str | None, what: str) -> None:
        self.inner, self.what = inner, what
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._in, self._out, server_side=False, server_hostname=hostname)
        self._step(self._tls.do_handshake)
        if self._tls.version() is None:  # the stream ended inside the handshake
            raise StreamClosed(what, "the pod closed the connection during the TLS handshake")

    def _flush(self) -> None:
        pending = self._out.read()
        if pending:
            self.inner.send(pending)

    def _step(self, action: Any) -> Any:
        while True:
            try:
                result = action()
            except ssl.SSLWantReadError:
                self._flush()
                data = self.inner.recv()
                if not data:
                    self._in.write_eof()
                else:
                    self._in.write(data)
                continue
            except ssl.SSLZeroReturnError:
                return b""
            except ssl.SSLEOFError:
                return b""  # the peer closed without close_notify: the answer's length tells
            except ssl.SSLError as err:
                self._flush_quietly()
                if isinstance(err, ssl.SSLCertVerificationError):
                    reason = f"certificate verify failed: {err.verify_message}"
                else:
                    reason = str(err.reason or err)
                # The ssl error as the cause: kube/tls.py `classify` names it for the user.
                raise StreamTlsError(self.what, reason) from err
            self._flush()
            return result

    def _flush_quietly(self) -> None:
        with contextlib.suppress(StreamClosed):
            self._flush()

    def send(self, data: bytes) -> None:
        self._step(lambda: self._tls.write(data))

    def recv(self) -> bytes:
        data: bytes = self._step(lambda: self._tls.read(TLS_CHUNK))
        return data


class _SocketLike:
    """What http.client.HTTPResponse needs of a socket: `makefile('rb')`."""

    def __init__(self, stream: _Stream) -> None:
        self.stream = stream

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(_Raw(self.stream))


class _Raw(io.RawIOBase):
    def __init__(self, stream: _Stream) -> None:
        self.stream = stream
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._pending:
            self._pending = self.stream.recv()
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n
